"""`optterm backtest`: the result printed (text, JSON, CSV) and stored; bad input refused in one
line with exit 2 and nothing stored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from optterm.model import Feed
from optterm.store import open_store
from tests.backtest_history import DAYS, at, flat, store_history, three_days
from tests.conftest import Home, run_cli

SPEC = "NIFTY short straddle enter at 09:20 exit at 15:15"
SPAN = ("--from", DAYS[0].isoformat(), "--to", DAYS[2].isoformat())


def _write(home: Home, snaps: list) -> None:
    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            await store_history(store, snaps)
        finally:
            await store.close()

    home.db.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(go())


@pytest.fixture
def stored(home: Home) -> Home:
    home.write_config()
    _write(home, three_days())
    return home


def _cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.config), *args)


def _runs(home: Home) -> int:
    with sqlite3.connect(home.db) as db:
        return int(db.execute("select count(*) from backtests").fetchone()[0])


def test_json_is_the_whole_result_and_it_is_stored(stored: Home) -> None:
    out = _cli(stored, "backtest", SPEC, *SPAN, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["figures"]["net_pnl"] == 4128.43
    assert doc["source"] == [{"provider": "nse", "feed": "LIVE", "snapshots": 21}]
    assert doc["fill_model"].startswith("next snapshot after the signal")
    assert doc["trades"][0]["legs"][0]["entry_quote"] == "115.50/116.50 ltp 116.00"
    assert doc["id"] == 1 and _runs(stored) == 1
    with sqlite3.connect(stored.db) as db:
        row = db.execute("select spec, net_pnl, document from backtests").fetchone()
    spec, net, document = row
    assert (spec, net) == (SPEC, 4128.43)
    assert json.loads(document)["figures"] == doc["figures"]


def test_text_names_source_span_gaps_fills_and_draws_the_curve(stored: Home) -> None:
    out = _cli(stored, "backtest", SPEC, *SPAN)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "BACKTEST NIFTY short straddle x1  2026-11-20 → 2026-11-24" in text
    assert "LIVE via nse (21)" in text and "21 snapshots read over 3 days" in text
    assert "gaps:" in text and "fills: next snapshot after the signal" in text
    assert "₹4,128.43" in text and "Equity curve (3 days" in text
    assert "Monthly" in text and "By weekday" in text and "Trades (3)" in text
    assert "Saved as backtest #1." in text


def test_csv_is_the_trade_log_one_row_per_leg(stored: Home) -> None:
    out = _cli(stored, "backtest", "run", SPEC, *SPAN, "--csv")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].startswith("trade,expiry,lot_size,signal_at,entry_at")
    assert len(rows) == 1 + 6
    assert rows[1].split(",")[7] == "S 75 25000CE"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("NIFTY moon butterfly", *SPAN), "unknown strategy 'moon butterfly'"),
        (("NIFTY short straddle", "--from", "2026-10-01", "--to", "2026-10-05"),
         "no NIFTY snapshots are stored from 2026-10-01 to 2026-10-05"),
        (("NIFTY short straddle enter when pcr > 2 and pcr < 1", *SPAN),
         "the entry rule 'pcr > 2 and pcr < 1' can never fire"),
        ((SPEC, "--from", "2026-11-24", "--to", "2026-11-20"), "is before --from"),
        ((SPEC, "--from", "20-11-2026", "--to", "2026-11-24"), "--from"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_stored(
    stored: Home, args: tuple[str, ...], message: str
) -> None:
    out = _cli(stored, "backtest", *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert _runs(stored) == 0


def test_a_cost_table_with_a_bad_date_is_refused(stored: Home, tmp_path: Path) -> None:
    shipped = Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml"
    bad = tmp_path / "costs.toml"
    bad.write_text(shipped.read_text().replace("from = 2024-10-01", "from = 2024-10-32"))
    out = _cli(stored, "backtest", SPEC, *SPAN, "--costs", str(bad))
    assert out.returncode == 2
    assert f"the cost table {bad} is not valid TOML" in out.stderr
    bad.write_text(shipped.read_text().replace("from = 2024-10-01", 'from = "1 Oct 2024"'))
    out = _cli(stored, "backtest", SPEC, *SPAN, "--costs", str(bad))
    assert out.returncode == 2
    assert "row 2: `from` must be a date written 2024-10-01" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert _runs(stored) == 0


def test_an_edited_cost_table_beside_the_config_is_used(stored: Home) -> None:
    shipped = Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml"
    beside = stored.root / "xdg_config_home" / "optterm" / "costs.toml"
    beside.parent.mkdir(parents=True, exist_ok=True)
    free = shipped.read_text().replace("brokerage_per_order = 20.0", "brokerage_per_order = 0.0")
    beside.write_text(free)
    out = _cli(stored, "backtest", SPEC, *SPAN, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["costs_table"] == str(beside)
    # 12 orders of 20 brokerage + 18 % GST on it: 12 x 23.60 = 283.20 less than the shipped table.
    assert doc["figures"]["costs"] == round(371.57 - 283.20, 2)


def test_simulated_data_needs_allow_simulated(home: Home) -> None:
    home.write_config()
    _write(home, [flat(at(DAYS[0], t), 25000, 100, 100, feed=Feed.SIMULATED)
                  for t in ("09:15:00", "09:20:15", "15:15:15")])  # fmt: skip
    span = ("--from", DAYS[0].isoformat(), "--to", DAYS[0].isoformat())
    out = _cli(home, "backtest", SPEC, *span)
    assert out.returncode == 2
    assert "SIMULATED" in out.stderr and "--allow-simulated" in out.stderr
    assert _runs(home) == 0
    out = _cli(home, "backtest", SPEC, *span, "--allow-simulated", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["source"][0]["feed"] == "SIMULATED"


def test_the_group_takes_a_spec_or_a_subcommand(home: Home) -> None:
    out = run_cli(home, "backtest", "--help")
    assert out.returncode == 0 and "run" in out.stdout
    out = run_cli(home, "--help")
    assert "backtest" in out.stdout


@pytest.mark.process
def test_ctrl_c_keeps_the_partial_result(stored: Home) -> None:
    """A real process: the spec file is a FIFO, so the command is known to be running (it has
    opened the spec) when Ctrl-C arrives; it stops before the first day, prints the partial
    result and stores it marked interrupted."""
    import os
    import signal
    import subprocess

    from tests.conftest import optterm_cmd

    fifo = stored.root / "spec.toml"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        optterm_cmd("--config", str(stored.config), "backtest", str(fifo), *SPAN, "--json"),
        env=stored.env,
        cwd=stored.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        with open(fifo, "w", encoding="utf-8") as w:  # returns once the command opened it
            proc.send_signal(signal.SIGINT)
            w.write('symbol = "NIFTY"\nstrategy = "short straddle"\nenter = "09:20"\n')
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    assert doc["trades"] == []
    with sqlite3.connect(stored.db) as db:
        assert db.execute("select interrupted from backtests").fetchall() == [(1,)]


def test_list_shows_the_stored_runs(stored: Home) -> None:
    out = _cli(stored, "backtest", "list")
    assert out.returncode == 0 and "No backtests stored yet" in out.stdout
    assert _cli(stored, "backtest", SPEC, *SPAN, "--json").returncode == 0
    out = _cli(stored, "backtest", "list", "--json")
    (run,) = json.loads(out.stdout)
    assert (run["id"], run["spec"], run["trades"], run["net_pnl"]) == (1, SPEC, 3, 4128.43)
    assert (run["from"], run["to"], run["interrupted"]) == ("2026-11-20", "2026-11-24", False)
    text = _cli(stored, "backtest", "list").stdout
    assert "short straddle" in text and "₹4,128.43" in text


def test_a_rule_that_never_fired_says_so(stored: Home) -> None:
    out = _cli(stored, "backtest", "NIFTY short straddle enter when pattern GAMMA_SQUEEZE", *SPAN)
    assert out.returncode == 0, out.stderr
    assert "entry rule: pattern GAMMA_SQUEEZE — fired 0 times (never: no trade could enter)" in (
        out.stdout
    )
    assert "No trades" in out.stdout and "Saved as backtest #1." in out.stdout


def test_a_covered_call_with_no_futures_quote_stored_says_so_in_one_line(stored: Home) -> None:
    """The three days carry no futures quotes: every entry is skipped, none filled at a made-up
    price, and the text result says why in one line; the trade log's CSV stays empty."""
    spec = "NIFTY covered call by offset 0 enter at 09:20 exit at 15:15"
    out = _cli(stored, "backtest", spec, *SPAN)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if "no futures quote stored" in ln]
    assert len(lines) == 1 and "3" in lines[0], out.stdout
    doc = json.loads(_cli(stored, "backtest", spec, *SPAN, "--json").stdout)
    assert doc["trades"] == []
    assert len(doc["gaps"]["entries_without_futures_quote"]) == 3
