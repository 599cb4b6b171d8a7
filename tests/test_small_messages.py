"""Small things a hostile tester found (issue 14, defect 11): `history list` times in IST under
its IST header, a config file saved with a UTF-8 byte-order mark, and a 100,000-character symbol
echoed back in full."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from optterm.config import load_settings
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from tests.conftest import Home, run_cli

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST


async def _fill(home: Home) -> None:
    sim = SimulatorProvider(seed=2, step_seconds=60, start=START)
    expiry = sim._listed("NIFTY", 0)[0]
    store = await open_store(str(home.db))
    try:
        for step in (0, 30):  # 09:15 and 09:45 IST
            assert await store.snapshots.write(sim.chain_at_step("NIFTY", expiry, step).window(3))
    finally:
        await store.close()


def test_history_list_shows_exchange_time_under_its_ist_header(home: Home) -> None:
    home.write_config()
    asyncio.run(_fill(home))
    out = run_cli(home, "--config", str(home.config), "history", "list")
    assert out.returncode == 0, out.stderr
    assert "Date (IST)" in out.stdout and "2026-11-20" in out.stdout
    assert "09:15:00" in out.stdout and "09:45:00" in out.stdout
    assert "03:45:00" not in out.stdout and "04:15:00" not in out.stdout  # UTC, as it was
    doc = run_cli(home, "--config", str(home.config), "history", "list", "--json").stdout
    assert "2026-11-20T03:45:00+00:00" in doc  # JSON keeps the unambiguous UTC stamp


def test_a_config_saved_with_a_byte_order_mark_is_read(home: Home) -> None:
    home.config.write_bytes(
        b"\xef\xbb\xbf"
        + f'[store]\nurl = "sqlite+aiosqlite:///{home.db}"\n[poller]\ninterval = 7.0\n'.encode()
    )
    assert load_settings(home.config).poller.interval == 7.0
    out = run_cli(home, "--config", str(home.config), "history", "list", "--json")
    assert (out.returncode, out.stderr) == (0, "")


def test_a_byte_order_mark_inside_the_file_is_still_an_error(home: Home) -> None:
    home.config.write_text("[poller]\ninterval = 7.0\n\ufeff[store]\n", encoding="utf-8")
    out = run_cli(home, "--config", str(home.config), "history", "list")
    assert out.returncode == 2 and "not valid TOML" in out.stderr and "line 3" in out.stderr


LONG = "A" * 100_000


@pytest.mark.parametrize(
    "args",
    [
        ("chain", LONG),
        ("history", "export", LONG),
        ("alerts", "add", f"{LONG} spot above 25000"),
        ("alerts", "add", f"NIFTY spot above 25000 expiry {LONG}"),
        ("alerts", "list", "--symbol", LONG),
        ("patterns", LONG),
        ("chain", "NIFTY", "--expiry", LONG),
    ],
    ids=["chain", "export", "alert-symbol", "alert-word", "alerts-list", "patterns", "expiry"],
)
def test_a_huge_symbol_is_not_echoed_in_full(home: Home, args: tuple[str, ...]) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "--provider", "simulator", *args)
    said = out.stdout + out.stderr
    assert "Traceback" not in said
    assert len(said) < 1500, said[:300]
    assert "AAAAAAAAAAAAAAAAAAAA…" in said and "100,000 characters" in said, said


def test_a_huge_symbol_in_the_config_is_not_echoed_in_full(home: Home) -> None:
    home.write_config(f'[[poller.watch]]\nsymbol = "{LONG}!"\n')
    out = run_cli(home, "--config", str(home.config), "status")
    assert out.returncode == 2 and len(out.stderr) < 1500, out.stderr[:300]
    assert "100,001 characters" in out.stderr
