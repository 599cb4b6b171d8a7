"""`optterm patterns`: signals recorded in the store, listed by the real command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from optterm.model import Direction, Feed, PatternKind, Signal, Strength
from optterm.store import open_store
from tests.conftest import Home, run_cli

IST = timezone(timedelta(hours=5, minutes=30))
EXPIRY = date(2026, 12, 1)


def signal(
    kind: PatternKind,
    symbol: str,
    *,
    first_seen: datetime,
    last_seen: datetime,
    expires_at: datetime,
    confidence: int = 60,
    provider: str = "simulator",
    feed: Feed = Feed.SIMULATED,
    strikes: tuple[float, ...] = (25_000.0,),
) -> Signal:
    return Signal(
        key=f"{kind}:{symbol}:{EXPIRY}:{strikes[0]:g}",
        kind=kind,
        symbol=symbol,
        expiry=EXPIRY,
        direction=Direction.BEARISH if kind is PatternKind.CALL_BUILDUP else Direction.BULLISH,
        strikes=strikes,
        confidence=confidence,
        strength=Strength.from_confidence(confidence),
        evidence=(("oi_change_pct", 21.5), ("price_change_pct", -4.0)),
        summary=f"{kind.value.replace('_', ' ').lower()} near {strikes[0]:g}",
        first_seen=first_seen,
        last_seen=last_seen,
        expires_at=expires_at,
        updates=3,
        provider=provider,
        feed=feed,
    )


def seed(home: Home, signals: list[Signal]) -> None:
    async def write() -> None:
        async with await open_store(str(home.db)) as store:
            await store.analytics.save_signals(signals)

    asyncio.run(write())


@pytest.fixture
def seeded(home: Home) -> datetime:
    """Two active signals, one that expired just now, one from three days ago."""
    home.write_config()
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    seed(
        home,
        [
            signal(
                PatternKind.CALL_BUILDUP, "NIFTY", confidence=82,
                first_seen=now - timedelta(minutes=10), last_seen=now - timedelta(minutes=2),
                expires_at=now + hour, strikes=(24_500.0, 24_550.0),
            ),
            signal(
                PatternKind.PUT_BUILDUP, "BANKNIFTY", provider="angelone", feed=Feed.LIVE,
                first_seen=now - timedelta(minutes=1), last_seen=now - timedelta(minutes=1),
                expires_at=now + hour, strikes=(51_000.0,),
            ),
            # Expires the moment it is written: expired by the time the CLI runs.
            signal(
                PatternKind.MAX_PAIN, "NIFTY", first_seen=now - hour, last_seen=now,
                expires_at=now,
            ),
            signal(
                PatternKind.GAMMA_SQUEEZE, "NIFTY", first_seen=now - timedelta(days=3),
                last_seen=now - timedelta(days=3), expires_at=now - timedelta(days=3) + hour,
            ),
        ],
    )  # fmt: skip
    return now


def patterns(home: Home, *args: str) -> tuple[int, str, str]:
    out = run_cli(home, "--config", str(home.config), "patterns", *args)
    return out.returncode, out.stdout, out.stderr


def listed(home: Home, *args: str) -> list[dict]:
    code, stdout, stderr = patterns(home, *args, "--json")
    assert code == 0, stderr
    return json.loads(stdout)


def test_table_lists_active_signals_then_todays_expired_ones(home: Home, seeded: datetime) -> None:
    code, out, err = patterns(home)
    assert code == 0, err
    assert "Traceback" not in err
    current, _, expired = out.partition("Expired since")
    assert "Current signals" in current
    # Active: newest last_seen first.
    assert current.index("BANKNIFTY") < current.index("CALL_BUILDUP")
    assert "MAX_PAIN" not in current and "MAX_PAIN" in expired
    assert "GAMMA_SQUEEZE" not in out  # three days old: before today's session
    assert "82 ████████░░" in current
    assert "24500, 24550" in current
    assert "bearish" in current and "strong" in current
    assert "SIMULATED" in current and "LIVE" in current and "angelone" in current
    assert "age 10m" in current  # since first seen
    seen = (seeded - timedelta(minutes=2)).astimezone(IST)
    assert f"{seen:%H:%M:%S} IST" in current
    assert "IST" in expired


def test_json_has_every_field_with_iso_times(home: Home, seeded: datetime) -> None:
    rows = listed(home)
    assert [(r["kind"], r["active"]) for r in rows] == [
        ("PUT_BUILDUP", True),
        ("CALL_BUILDUP", True),
        ("MAX_PAIN", False),
    ]
    call = rows[1]
    assert call["key"] == "CALL_BUILDUP:NIFTY:2026-12-01:24500"
    assert call["symbol"] == "NIFTY" and call["expiry"] == "2026-12-01"
    assert call["direction"] == "bearish" and call["strength"] == "STRONG"
    assert call["confidence"] == 82 and call["strikes"] == [24_500.0, 24_550.0]
    assert call["evidence"] == [["oi_change_pct", 21.5], ["price_change_pct", -4.0]]
    assert call["provider"] == "simulator" and call["feed"] == "SIMULATED"
    assert call["updates"] == 3
    assert datetime.fromisoformat(call["first_seen"]) == seeded - timedelta(minutes=10)
    assert datetime.fromisoformat(call["last_seen"]) == seeded - timedelta(minutes=2)
    assert datetime.fromisoformat(call["expires_at"]) == seeded + timedelta(hours=1)
    assert 600 <= call["age_seconds"] < 660


def test_filters(home: Home, seeded: datetime) -> None:
    assert {r["symbol"] for r in listed(home, "nifty")} == {"NIFTY"}
    assert [r["kind"] for r in listed(home, "--kind", "put_buildup")] == ["PUT_BUILDUP"]
    kinds = listed(home, "-k", "call-buildup", "--kind", "MAX_PAIN", "NIFTY")
    assert [r["kind"] for r in kinds] == ["CALL_BUILDUP", "MAX_PAIN"]
    assert [r["kind"] for r in listed(home, "--limit", "1")] == ["PUT_BUILDUP"]
    assert [r["kind"] for r in listed(home, "--since", "4d")][-1] == "GAMMA_SQUEEZE"
    three_days_ago = (seeded - timedelta(days=3)).astimezone(IST).date()
    rows = listed(home, "--since", three_days_ago.isoformat(), "--kind", "GAMMA_SQUEEZE")
    assert [(r["kind"], r["active"]) for r in rows] == [("GAMMA_SQUEEZE", False)]
    # The active ones are listed whatever --since says; expired ones only within it.
    rows = listed(home, "--since", "30s")
    assert [r["kind"] for r in rows] == ["PUT_BUILDUP", "CALL_BUILDUP", "MAX_PAIN"]


def test_no_signals_is_a_helpful_line_not_an_error(home: Home) -> None:
    home.write_config()
    code, out, err = patterns(home, "NIFTY")
    assert code == 0, err
    assert "No NIFTY signals" in out and "optterm serve" in out
    assert len(out.strip().splitlines()) == 1
    assert listed(home) == []


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--kind", "CALL_BUILDIP"], ["CALL_BUILDIP", "CALL_BUILDUP", "GAMMA_SQUEEZE"]),
        (["--since", "yesterday"], ["--since", "YYYY-MM-DD", "2h"]),
        (["--since", "2x"], ["--since", "30m"]),
        (["--since", "2026-13-01"], ["--since", "YYYY-MM-DD"]),
        (["--since", "99999999999d"], ["--since"]),
    ],
    ids=["kind", "since-word", "since-unit", "since-date", "since-overflow"],
)
def test_bad_kind_or_since_exits_2_with_a_message(
    home: Home, args: list[str], needles: list[str]
) -> None:
    home.write_config()
    code, _out, err = patterns(home, *args)
    assert code == 2
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert not home.db.exists()  # rejected before the store is opened
