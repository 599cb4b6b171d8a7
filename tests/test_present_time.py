"""Times as the CLI and the TUI read and write them: one `--since` grammar for every command, one
way to write an age and one to stamp a moment."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from optterm.cli.root import main
from optterm.config import load_settings
from optterm.engine.alerts.rules import build_rule
from optterm.market import IST
from optterm.model import (
    AlertEvent,
    AlertKind,
    Channel,
    Direction,
    Feed,
    PatternKind,
    Signal,
    Strength,
)
from optterm.present.time import SinceError, age_text, ago_text, parse_since, when_text
from optterm.store import open_store
from tests.conftest import Home

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 11:30 IST


# ---------------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("2min", timedelta(minutes=2)),
        ("2m", timedelta(minutes=2)),
        ("15 m", timedelta(minutes=15)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2 hours", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("0s", timedelta(0)),
    ],
)
def test_a_duration_reaches_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, now=NOW, tz=IST) == NOW - back


@pytest.mark.parametrize("text", ["2026-11-20", "20-Nov-2026", " 2026-11-20 "])
def test_a_date_is_the_start_of_that_exchange_day(text: str) -> None:
    start = parse_since(text, now=NOW, tz=IST)
    assert start == datetime(2026, 11, 20, tzinfo=IST)
    assert start.astimezone(UTC) == datetime(2026, 11, 19, 18, 30, tzinfo=UTC)


def test_the_day_starts_in_the_zone_given() -> None:
    utc = parse_since("2026-11-20", now=NOW, tz=UTC)
    assert utc == datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["90", "-2h", "yesterday", "2x", "2026-13-01", "99999999999d", "", "h"],
    ids=["bare-number", "negative", "word", "unit", "bad-date", "overflow", "empty", "no-number"],
)
def test_anything_else_is_refused_with_how_to_write_it(text: str) -> None:
    with pytest.raises(SinceError) as refused:
        parse_since(text, now=NOW, tz=IST, flag="--since")
    message = str(refused.value)
    assert message.startswith(f"--since {text!r} is neither a date nor a duration")
    assert "YYYY-MM-DD" in message and "30m, 2h, 1h30m or 3d" in message


# ------------------------------------------------------------------------------- ages and stamps


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h00m"), (5400, "1h30m"),
     (86_399, "23h59m"), (86_400, "1d"), (3 * 86_400 + 5, "3d"), (-5, "0s")],
)  # fmt: skip
def test_an_age_is_written_to_the_unit_that_matters(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_ago_says_which_way_and_admits_not_knowing() -> None:
    assert ago_text(125) == "2m ago"
    assert ago_text(-125) == "in 2m"
    assert ago_text(None) == "?"


def test_a_stamp_has_the_date_only_on_another_day() -> None:
    assert when_text(None, IST, NOW) == "never"
    assert when_text(NOW - timedelta(hours=1), IST, NOW) == "10:30:00 IST"
    # 23:59 IST the day before is another exchange day, though the same UTC date.
    assert when_text(datetime(2026, 11, 23, 18, 29, tzinfo=UTC), IST, NOW) == (
        "23-Nov-2026 23:59:00 IST"
    )
    assert when_text(NOW, UTC, NOW) == "06:00:00 UTC"


# ---------------------------------------------------------------------- both commands, one grammar


@pytest.fixture
def seeded(home: Home, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """A rule that fired three minutes ago and a pattern signal last seen three minutes ago (and
    expired since): each command lists its item for a --since that reaches back that far."""
    home.write_config()
    monkeypatch.setenv("COLUMNS", "200")
    seen = datetime.now(UTC) - timedelta(minutes=3)

    async def seed() -> None:
        async with await open_store(str(home.db)) as store:
            rule = await store.alerts.add_rule(
                build_rule(load_settings(home.config, env={}), symbol="NIFTY", kind="PRICE",
                           condition="above", threshold=25_000.0, owner="trader")
            )  # fmt: skip
            assert rule.id is not None
            event = AlertEvent(rule.id, "NIFTY", AlertKind.PRICE, seen, 25_010.0, 25_000.0,
                               "NIFTY spot crossed above 25,000", "body", "simulator",
                               Feed.SIMULATED)  # fmt: skip
            await store.alerts.record_firings([(event, [Channel("app", "in-app")])], [])
            await store.analytics.save_signals([_signal(seen)])

    asyncio.run(seed())
    return seen


def _settings(home: Home):
    from optterm.config import load_settings

    return load_settings(home.config, env={})


def _signal(seen: datetime) -> Signal:
    return Signal(
        key="GAMMA_SQUEEZE:NIFTY:2026-12-01:25000", kind=PatternKind.GAMMA_SQUEEZE,
        symbol="NIFTY", expiry=datetime(2026, 12, 1).date(), direction=Direction.BULLISH,
        strikes=(25_000.0,), confidence=70, strength=Strength.STRONG, evidence=(),
        summary="gamma squeeze near 25000", first_seen=seen, last_seen=seen,
        expires_at=seen + timedelta(seconds=30), provider="simulator", feed=Feed.SIMULATED,
    )  # fmt: skip


def optterm(home: Home, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real `optterm` entry point, in this process (the isolated home's config and dirs)."""
    with pytest.raises(SystemExit) as done:
        main(["--config", str(home.config), *args])
    out = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def listed(home: Home, capsys: pytest.CaptureFixture[str], command: str, since: str) -> int:
    """How many items `command --since SINCE --json` lists (patterns: expired signals only)."""
    args = ["patterns"] if command == "patterns" else ["alerts", "history"]
    code, out, err = optterm(home, capsys, *args, "--since", since, "--json")
    assert code == 0, err
    return len(json.loads(out))


@pytest.mark.parametrize("command", ["patterns", "alerts history"])
def test_both_commands_read_since_the_same_way(
    home: Home, capsys: pytest.CaptureFixture[str], seeded: datetime, command: str
) -> None:
    for since in ("2min", "90s", "0.02h"):  # shorter than three minutes
        assert listed(home, capsys, command, since) == 0, since
    for since in ("5min", "4m", "1.5h", "1h30m", "3d"):
        assert listed(home, capsys, command, since) == 1, since
    day = seeded.astimezone(IST).date()
    for since in (day.isoformat(), f"{day:%d-%b-%Y}"):
        assert listed(home, capsys, command, since) == 1, since
    tomorrow = day + timedelta(days=1)
    assert listed(home, capsys, command, tomorrow.isoformat()) == 0


@pytest.mark.parametrize("since", ["90", "-2h", "yesterday", "2x", "2026-13-01", "99999999999d"])
def test_both_commands_refuse_the_same_text_with_the_same_words(
    home: Home, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    home.write_config()
    said = []
    for args in (["patterns"], ["alerts", "history"]):
        code, out, err = optterm(home, capsys, *args, "--since", since)
        assert code == 2 and out == ""
        assert "Traceback" not in err
        said.append(err)
    assert said[0] == said[1]
    assert said[0].startswith(f"optterm: --since {since!r} is neither a date nor a duration")
    assert not home.db.exists()  # refused before a store is opened
