"""`optterm replay` and `optterm chain --at`: a day recorded live is replayed by the real
commands; what they print equals what the live run produced, at the same times."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC

import pytest

from tests.conftest import Home, run_cli
from tests.replay_day import OPEN, STEP, record


@pytest.fixture(scope="module")
def live_day(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A live run of 80 ticks (call writing, three rules) stored once for the module."""
    root = tmp_path_factory.mktemp("live-day")

    async def go() -> dict:
        rec = await record(root, ticks=80)
        try:
            signals = [s for t in rec.ticks for s in t.signals if s.updates == 0]
            alerts = [a for t in rec.ticks for a in t.alerts]
            events = await rec.store.alerts.list_events(limit=1000)
            return {"signals": signals, "alerts": alerts, "events": len(events), "rec": rec}
        finally:
            await rec.store.close()

    return {**asyncio.run(go()), "root": root}


@pytest.fixture
def recorded(home: Home, live_day: dict) -> dict:
    """That day in this test's home: its database and config copied in."""
    for name in ("o.db", "optterm.toml"):
        text = (live_day["root"] / name).read_bytes()
        if name.endswith(".toml"):
            text = text.replace(str(live_day["root"]).encode(), str(home.root).encode())
        (home.root / name).write_bytes(text)
    return live_day


def _cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.config), *args)


@pytest.mark.slow
def test_replay_lists_the_signals_and_firings_of_the_live_run(home: Home, recorded: dict) -> None:
    out = _cli(home, "replay", "2026-11-20", "NIFTY", "--rules", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["replay"] is True and doc["ticks"] == 80
    assert [(s["key"], s["first_seen"], s["confidence"]) for s in doc["signals"]] == [
        (s.key, s.first_seen.astimezone(UTC).isoformat(), s.confidence) for s in recorded["signals"]
    ]
    assert recorded["alerts"]
    assert [(a["rule_id"], a["fired_at"], a["value"]) for a in doc["alerts"]] == [
        (a.rule_id, a.fired_at.astimezone(UTC).isoformat(), a.value) for a in recorded["alerts"]
    ]
    # The text form names the same signals and says the firings were never sent.
    text = _cli(home, "replay", "2026-11-20", "--rules")
    assert text.returncode == 0, text.stderr
    assert "REPLAY of 2026-11-20" in text.stdout
    assert "never sent" in text.stdout
    tz = recorded["rec"].settings.market.tz
    for s in recorded["signals"]:
        assert s.first_seen.astimezone(tz).strftime("%H:%M:%S") in text.stdout
        assert s.kind.value in text.stdout
    for a in recorded["alerts"]:
        assert a.fired_at.astimezone(tz).strftime("%H:%M:%S") in text.stdout

    # Nothing was recorded by the replays.
    async def events() -> int:
        from optterm.store import open_store

        store = await open_store(f"sqlite+aiosqlite:///{home.root / 'o.db'}")
        try:
            return len(await store.alerts.list_events(limit=1000))
        finally:
            await store.close()

    assert asyncio.run(events()) == recorded["events"]


def test_chain_at_prints_the_stored_chain_as_of_then(home: Home, recorded: dict) -> None:
    rec = recorded["rec"]
    k = 30
    live = rec.ticks[k].updates[0]
    out = _cli(home, "chain", "NIFTY", "--at", "2026-11-20T09:22:40", "--json", "-n", "80")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["replay"] is True
    assert doc["provider_ts"] == (OPEN + k * STEP).isoformat()
    assert doc["as_of"].startswith("2026-11-20T09:22:40")
    assert doc["age_seconds"] == 10.0  # how old the chain was at the time asked, not now
    assert [r["ce"]["oi"] for r in doc["rows"]] == live.snapshot.ce.oi.tolist()
    assert doc["metrics"]["pcr_oi"] == pytest.approx(live.enriched.metrics.pcr_oi, abs=0)
    text = _cli(home, "chain", "NIFTY", "--at", "2026-11-20T09:22:40")
    assert text.returncode == 0, text.stderr
    assert "REPLAY NIFTY" in text.stdout and "snapshot 09:22:30" in text.stdout
    assert "via simulator" in text.stdout and "age 10s" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "2026-11-19"), "Nothing is stored for 2026-11-19; "),
        (("replay", "2026-11-20", "BANKNIFTY"), "BANKNIFTY has nothing stored on 2026-11-20; "),
        (("replay", "2026-11-20", "-e", "2030-01-01"), "expiry 2030-01-01 is stored on"),
        (("replay", "20-11"), "DAY '20-11' is not a date"),
        (("replay", "2026-11-20", "--speed", "0"), "--speed 0 must be above 0"),
        (("chain", "NIFTY", "--at", "2026-11-20T08:00"), "08:00 on 2026-11-20 is outside the"),
        (("chain", "NIFTY", "--at", "2026-11-21T10:00"), "Nothing is stored for 2026-11-21"),
        (("chain", "NIFTY", "--at", "yesterday"), "--at 'yesterday' is not a date and time"),
        (("chain", "FOO", "--at", "2026-11-20T10:00"), "FOO has nothing stored on 2026-11-20"),
        (("chain", "NIFTY", "-e", "2030-01-01", "--at", "2026-11-20T10:00"), "no expiry 2030"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(
    home: Home, recorded: dict, args: tuple[str, ...], message: str
) -> None:
    out = _cli(home, *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""


def test_replay_is_in_the_root_help(home: Home) -> None:
    out = run_cli(home, "--help")
    assert "replay" in out.stdout  # tests/test_cli_lazy.py checks the line against the command
