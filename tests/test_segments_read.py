"""A trader's read of MCX and CDS screens: USDINR's spot to four decimals in the header and over
the strike column, strikes of one grid written alike (86.00, 86.25, 86.50, not 86, 86.25,
86.5), the footer's straddle and forward to the pair's four decimals, and no India VIX on a
commodity or currency chain."""

from __future__ import annotations

from datetime import UTC, datetime

from optterm.config import load_settings
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.events import ChainUpdate, Tick
from optterm.engine.state import EngineState
from optterm.market import CDS_UNDERLYINGS, MCX_UNDERLYINGS, NSE_INDICES, MarketCalendar
from optterm.present.chain import metrics_lines, strike_decimals, strike_text
from optterm.present.header import header_figures
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.widgets.status_bar import status_text

START = datetime(2026, 11, 18, 5, 30, tzinfo=UTC)  # Wednesday 11:00 IST: all three open


def _chains():
    sim = SimulatorProvider(
        seed=42, step_seconds=15, start=START, clock=lambda: 0.0, now=lambda: START,
        underlyings={**NSE_INDICES, "CRUDEOIL": MCX_UNDERLYINGS["CRUDEOIL"],
                     "USDINR": CDS_UNDERLYINGS["USDINR"]},
    )  # fmt: skip
    cal = MarketCalendar()
    return {
        s: sim.chain_at_step(s, cal.for_symbol(s).expiries(s, START.date(), 1)[0], 0)
        for s in ("NIFTY", "CRUDEOIL", "USDINR")
    }


def test_a_strike_grid_is_written_alike() -> None:
    assert strike_decimals([86.0, 86.25, 86.5]) == 2
    assert [strike_text(x, 2) for x in (86.0, 86.25, 86.5)] == ["86.00", "86.25", "86.50"]
    assert strike_decimals([25_650.0, 25_700.0]) == 0
    assert strike_text(25_700.0, 0) == "25,700"
    assert strike_decimals([100.0, 102.5, 105.0]) == 1  # a stock's 2.5-rupee grid
    assert strike_text(88.75) == "88.75" and strike_text(89.0) == "89"  # a single level


def test_the_usdinr_header_and_footer_read_to_the_pair_s_decimals() -> None:
    chains = _chains()
    usd = chains["USDINR"]
    state = EngineState(load_settings(None, env={}), now=lambda: START)
    state.apply(Tick(1, START, START, tuple(ChainUpdate(s, True) for s in chains.values())))
    first, _, second = str(status_text(state, "USDINR")[0]).partition("\n")
    assert f" USDINR {usd.expiry:%d-%b} {usd.spot:,.4f} " in first  # was 2 decimals: 88.98
    assert "VIX" not in second and second.lstrip().startswith("1 lot = 1,000 USD")
    assert "VIX" not in " ".join(f.text for f in header_figures(chains["CRUDEOIL"], START))
    assert "VIX" in " ".join(f.text for f in header_figures(chains["NIFTY"], START))
    m = Analyzer().process(usd)[0].metrics
    lines = metrics_lines(m)
    assert f"straddle {m.straddle:,.4f}" in lines[2]  # 0.2075, not 0.21
    assert f"forward {m.forward:,.4f}" in lines[3]
    assert f"max pain {m.max_pain:.2f}" in lines[0] and f"ATM {m.atm_strike:.2f}" in lines[2]
    nifty = metrics_lines(Analyzer().process(chains["NIFTY"])[0].metrics)
    assert "straddle" in nifty[2] and ".00 ·" not in nifty[0]  # NIFTY's strikes as ever


def test_a_currency_option_s_theta_and_vega_keep_four_places() -> None:
    from optterm.widgets.chain_columns import COLUMNS

    four = {c.key: c.in_decimals(4) for c in COLUMNS}
    two = {c.key: c.in_decimals(2) for c in COLUMNS}
    assert four["vega"].text(0.0234).strip() == "0.0234"  # was 0.02 (and 0.0049 read 0.00)
    assert four["theta"].text(-0.0123).strip() == "-0.0123"
    assert two["vega"].text(12.3456).strip() == "12.35"  # NIFTY's as ever
    assert four["delta"].text(0.4712).strip() == two["delta"].text(0.4712).strip()


def test_the_cli_chain_s_greeks_keep_a_currency_option_s_places() -> None:
    from rich.console import Console

    from optterm.present.chain import chain_table

    usd = _chains()["USDINR"]
    enriched = Analyzer().process(usd)[0]
    console = Console(width=260, record=True)
    console.print(chain_table(usd, now=START, enriched=enriched, greeks=True))
    text = console.export_text()
    atm = usd.atm_index()
    vega = float(enriched.side("CE").vega[atm])
    theta = float(enriched.side("CE").theta[atm])
    assert f" {vega:.4f} │" in text and f" {theta:.4f} │" in text  # was 0.03 and -0.00


def test_a_usdinr_strategy_reads_in_quarter_paise_and_says_what_a_lot_is(home) -> None:
    import re

    from tests.conftest import run_cli

    home.write_config('[[poller.watch]]\nsymbol = "NIFTY"\n[[poller.watch]]\nsymbol = "USDINR"\n')
    env = {"OPTTERM_PROVIDERS_SIMULATOR_START": "2026-11-18T11:00:00+05:30",
           "OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600", "COLUMNS": "160"}  # fmt: skip
    out = run_cli(home, "--config", str(home.config), "strategy", "USDINR short straddle",
                  env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"USDINR short straddle · spot \d+\.\d{4} · 1 lot = 1,000 USD", text)
    # Entries at their quoted quarter paise, and breakevens strike ± the credit to the tick
    # (were 0.11 and 88.80 for a 0.1075 premium and a 88.7925 breakeven).
    entries = re.findall(r"S1 [\d.]+[CP]E\s+\S+\s+-1,000\s+(\d+\.\d+)", text)
    assert len(entries) == 2 and all(len(e.split(".")[1]) == 4 for e in entries)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("Breakevens")]
    strike = float(re.search(r"S1 ([\d.]+)CE", text).group(1))  # type: ignore[union-attr]
    credit = sum(float(e) for e in entries)
    low, high = (float(x) for x in re.findall(r"(\d+\.\d{4}) \(", line))
    assert (low, high) == (round(strike - credit, 4), round(strike + credit, 4))
    assert re.search(r"Γ", text) and "1481.88" not in text


def test_the_strategy_screen_s_figures_read_a_currency_pair_s_levels(home) -> None:
    import json

    from optterm.market import IST
    from optterm.screens.strategy import figures_line, figures_text, tables_text
    from tests.conftest import run_cli

    home.write_config('[[poller.watch]]\nsymbol = "NIFTY"\n[[poller.watch]]\nsymbol = "USDINR"\n')
    env = {"OPTTERM_PROVIDERS_SIMULATOR_START": "2026-11-18T11:00:00+05:30",
           "OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600"}  # fmt: skip
    out = run_cli(home, "--config", str(home.config), "strategy", "USDINR short straddle",
                  "--json", env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    low, high = (b["spot"] for b in doc["breakevens"])
    shown = f"{low:,.4f}, {high:,.4f}"  # was "89, 89"
    assert shown in str(figures_text(None, doc)) and shown in str(figures_line(doc))  # type: ignore[arg-type]
    bands = doc["sigma_bands"]
    assert f"{bands['-1σ']:,.4f} – {bands['+1σ']:,.4f}" in str(figures_text(None, doc))  # type: ignore[arg-type]
    table = str(tables_text(doc, IST))
    assert all(f"{s:,.4f}" in table for s in doc["payoff_table"]["spots"])
    assert f"{doc['greeks']['gamma']:+,.0f}" in str(figures_line(doc))  # -2,964, not -2963.76759
