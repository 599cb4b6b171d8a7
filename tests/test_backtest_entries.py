"""Entries on an alert rule's firings (`enter when rule "…"`) and on a scan condition (`enter
when scan "…"`), on the small stored history with known prices (tests/backtest_history.py).

Costs as in tests/test_backtest.py: the shipped table's 2024-10-01 row (brokerage 20/order,
STT 0.1 % sell, exchange 0.03503 %, stamp 0.003 % buy, SEBI 10/crore, GST 18 % on brokerage +
exchange + SEBI; each charge to the paisa, half up). Fills: mid -/+ 0.5 half-spread (every
quote here is mid -/+ 0.50, so 0.25 against the trader), on the 0.05 tick.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from typing import Any

import pytest

from optterm.config import load_settings
from optterm.engine.backtest.entries import replayed_firings
from optterm.engine.backtest.service import run_and_save
from optterm.engine.backtest.simulate import UNFILLED, BacktestProblem, run_backtest
from optterm.engine.backtest.spec import SpecError, parse_spec, parse_toml_spec
from optterm.market import IST, MarketCalendar
from optterm.providers.factory import market_calendar
from optterm.store import Store, open_store
from optterm.store.timecodec import from_us
from tests.backtest_history import DAYS, PRICES, at, costs_oct_2024, flat, store_history, three_days
from tests.conftest import Home, run_cli

# Day 1's spot: 25010, 25005, 25000 (09:20:15), 25020 (12:00:00), 25030, 25040, 25050; days
# 2 and 3 never go below 25100. The rule crosses once: at the 12:00:00 snapshot.
RULE_SPEC = 'NIFTY short straddle enter when rule "NIFTY spot crosses above 25015" exit at 15:20'
SPAN = (DAYS[0], DAYS[2])


def _settings() -> Any:
    return load_settings(None, env={})


def _calendar() -> MarketCalendar:
    return market_calendar(_settings())


async def _save(store: Store, text: str, start: date = DAYS[0], end: date = DAYS[2]) -> Any:
    return await run_and_save(store, parse_spec(text), start, end, costs_oct_2024(), _settings())


async def test_an_alert_rule_entry_matches_the_hand_computation_to_the_paisa(
    store: Store,
) -> None:
    await store_history(store, three_days())
    doc = await _save(store, RULE_SPEC)
    # The firing: 12:00:00 (spot 25000 -> 25020). It fills on the next snapshot, 15:15:00
    # (spot 25030, ATM 25000): sell CE 103.50/104.50 -> 103.75, PE 95.50/96.50 -> 95.75. Exit
    # signal 15:20, filled at 15:29:45: buy CE 100.50/101.50 -> 101.25, PE 92.50/93.50 ->
    # 93.25. Gross 75 x (2.50 + 2.50) = 375.00.
    # Sell CE 7781.25: 20 + STT 7.78 + exch 2.73 + SEBI 0.01 + GST 4.09 = 34.61; sell PE
    # 7181.25: 20 + 7.18 + 2.52 + 0.01 + 4.06 = 33.77; buy CE 7593.75: 20 + stamp 0.23 + 2.66
    # + 0.01 + 4.08 = 26.98; buy PE 6993.75: 20 + 0.21 + 2.45 + 0.01 + 4.04 = 26.71.
    # Costs 122.07, net 252.93. Days 2 and 3: the rule never fires (spot above all day).
    assert doc["rule_firings"] == 1
    (trade,) = doc["trades"]
    assert trade["signal_at"] == at(DAYS[0], "12:00:00").isoformat()
    assert trade["entry_at"] == at(DAYS[0], "15:15:00").isoformat()
    legs = {g["kind"]: g for g in trade["legs"]}
    assert (legs["CE"]["strike"], legs["PE"]["strike"]) == (25000.0, 25000.0)
    assert (legs["CE"]["entry_price"], legs["PE"]["entry_price"]) == (103.75, 95.75)
    assert (legs["CE"]["exit_price"], legs["PE"]["exit_price"]) == (101.25, 93.25)
    assert [legs[k]["entry_costs"]["total"] for k in ("CE", "PE")] == [34.61, 33.77]
    assert [legs[k]["exit_costs"]["total"] for k in ("CE", "PE")] == [26.98, 26.71]
    f = doc["figures"]
    assert (f["gross_pnl"], f["costs"], f["net_pnl"]) == (375.00, 122.07, 252.93)
    assert doc["rule"] == 'rule "NIFTY spot crosses above 25015"'


async def test_a_rule_firing_never_fills_on_its_own_snapshot(store: Store) -> None:
    """The history cut right after the firing: the firing is the same (nothing later was
    read to find it), and with no snapshot after it the day cannot enter (never at the
    firing's own 12:00:00 quote)."""
    full = three_days()
    cut = [s for s in full if s.provider_ts <= at(DAYS[0], "12:00:00")]
    await store_history(store, cut)
    spec = parse_spec(RULE_SPEC)
    times = await replayed_firings(store, _settings(), spec, DAYS[0], DAYS[0], _calendar())
    assert [from_us(t) for t in times] == [at(DAYS[0], "12:00:00")]

    async def replayed() -> list[int]:
        return times

    out = await run_backtest(
        store, spec, DAYS[0], DAYS[0], costs_oct_2024(), IST, replayed=replayed
    )
    assert out.trades == []
    assert out.firings == 1
    assert out.skipped == {UNFILLED: 1}


async def test_later_history_does_not_move_a_firing(store: Store) -> None:
    """Everything after the firing rewritten (the spot dives back under 25015 at 15:15):
    the firing and its fill snapshot are the same."""
    changed = [
        flat(at(DAYS[0], t), 24000.0 if t >= "15:15:00" else spot, ce, pe)
        for t, spot, ce, pe in PRICES[DAYS[0]]
    ]
    await store_history(store, changed)
    spec = parse_spec(RULE_SPEC)
    times = await replayed_firings(store, _settings(), spec, DAYS[0], DAYS[0], _calendar())
    assert [from_us(t) for t in times] == [at(DAYS[0], "12:00:00")]


async def test_a_rule_that_never_fires_is_refused_and_nothing_is_stored(store: Store) -> None:
    await store_history(store, three_days())
    never = RULE_SPEC.replace("25015", "30000")
    with pytest.raises(BacktestProblem, match="never fired from 2026-11-20 to 2026-11-24"):
        await _save(store, never)
    assert await store.backtests.recent() == []


async def test_a_scan_entry_fires_when_the_underlying_enters_the_scan(store: Store) -> None:
    """`spot > 25015` holds from 12:00:00 on day 1 and all day on days 2 and 3; the scanner's
    tracker lets a name in after two matching ticks in a row: 15:15:00, 09:20:00, 09:20:00.
    Each fills on the snapshot after it."""
    await store_history(store, three_days())
    doc = await _save(store, 'NIFTY short straddle enter when scan "spot > 25015" exit at 15:20')
    assert doc["rule_firings"] == 3
    assert [t["signal_at"] for t in doc["trades"]] == [
        at(DAYS[0], "15:15:00").isoformat(),
        at(DAYS[1], "09:20:00").isoformat(),
        at(DAYS[2], "09:20:00").isoformat(),
    ]
    assert [t["entry_at"] for t in doc["trades"]] == [
        at(DAYS[0], "15:15:15").isoformat(),
        at(DAYS[1], "09:20:15").isoformat(),
        at(DAYS[2], "09:20:15").isoformat(),
    ]
    # Day 1: sell at 15:15:15 (ATM 25000) CE 101.75, PE 93.75; buy at 15:29:45 CE 101.25, PE
    # 93.25: gross 75 x (0.50 + 0.50) = 75.00.
    assert doc["trades"][0]["gross"] == 75.00


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('enter when rule "NIFTY spot crossez above 1"', "at word 3 ('crossez')"),
        ('enter when rule "NIFTY spot crosses above 1', "no closing quote"),
        ("enter when rule", "`when rule` needs text"),
        ('enter when scan "spot >> 1"', "at word 3 ('>', column 7)"),
        ('enter when scan "fut_oi_chg% > 10"', "fut_oi_chg%, which cannot be computed"),
        ('enter when scan "spot > 1 sort spot"', "needs a condition only"),
    ],
)
def test_bad_rule_text_names_the_word(text: str, says: str) -> None:
    with pytest.raises(SpecError, match=None) as err:
        parse_spec(f"NIFTY short straddle {text} exit at 15:15")
    assert says in str(err.value)
    assert "\n" not in str(err.value)


def test_clause_words_inside_a_quoted_rule_stay_the_rules() -> None:
    spec = parse_spec(
        'NIFTY short straddle enter when rule "NIFTY pcr crosses below 0.7 cooldown 10m" '
        "exit at 15:00 on mon"
    )
    assert spec.rule is not None and spec.rule.alert.endswith("cooldown 10m")
    assert spec.exit_at is not None and spec.exit_at.hour == 15
    same = parse_toml_spec(
        'symbol = "NIFTY"\nstrategy = "short straddle"\n'
        "enter_when = 'rule \"NIFTY pcr crosses below 0.7 cooldown 10m\"'\n"
        'exit = "15:00"\non = ["mon"]\n',
        "x.toml",
    )
    assert same.rule == spec.rule


def _write(home: Home) -> None:
    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            await store_history(store, three_days())
        finally:
            await store.close()

    home.write_config()
    home.db.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(go())


def _runs(home: Home) -> int:
    with sqlite3.connect(home.db) as db:
        return int(db.execute("select count(*) from backtests").fetchone()[0])


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (RULE_SPEC.replace("crosses", "crossez"), "at word 3 ('crossez')"),
        (RULE_SPEC.replace("25015", "30000"), "never fired"),
        (RULE_SPEC.replace('"NIFTY', '"ZZZNIFTY'), "ZZZNIFTY"),
    ],
)
def test_the_cli_refuses_in_one_line_exit_2_nothing_stored(
    home: Home, spec: str, says: str
) -> None:
    _write(home)
    span = ("--from", SPAN[0].isoformat(), "--to", SPAN[1].isoformat())
    out = run_cli(home, "--config", str(home.config), "backtest", spec, *span)
    assert out.returncode == 2, out.stdout + out.stderr
    assert says in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert _runs(home) == 0


@pytest.mark.parametrize("entry", ['rule "NIFTY spot crosses above 30000"', 'scan "spot > 30000"'])
async def test_stopping_during_the_replay_keeps_an_interrupted_run(
    store: Store, entry: str
) -> None:
    """Ctrl-C (or the screen's x) while the firings are being found: the replay ends there,
    the run stops with no trades and is kept marked interrupted. (The rule never fires here:
    a replay that ran on to the end would refuse it as never fired instead.)"""
    await store_history(store, three_days())
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    doc = await run_and_save(
        store,
        parse_spec(f"NIFTY short straddle enter when {entry} exit at 15:20"),
        DAYS[0],
        DAYS[2],
        costs_oct_2024(),
        _settings(),
        stop=stop,
    )
    assert asked
    assert doc["interrupted"] is True
    assert (doc["trades"], doc["rule_firings"], doc["days_with_data"]) == ([], 0, 0)
    assert [r.id for r in await store.backtests.recent()] == [doc["id"]]


async def test_a_scan_reads_the_chain_metrics_stored_beside_each_snapshot(store: Store) -> None:
    """`pcr` (pe_oi / ce_oi, from the stored metrics): under 0.7 at day 1's 12:00:00 and
    15:15:00 snapshots, so the underlying enters the scan at 15:15:00 (two ticks in a row) and
    the entry fills at 15:15:15. A snapshot without its metrics is n/a, never the last value."""
    import dataclasses

    from optterm.model import Bias, Feed, MarketView, Metrics
    from optterm.store.schema import METRIC_FLOATS
    from tests.backtest_history import EXPIRY

    await store_history(store, three_days())
    base = Metrics(
        symbol="NIFTY", expiry=EXPIRY, ts=at(DAYS[0], "09:15:00"), provider="nse",
        feed=Feed.LIVE, forward_source="parity", view=MarketView(Bias.NEUTRAL, 0.0, ()),
        **dict.fromkeys(METRIC_FLOATS, 1000.0),
    )  # fmt: skip
    pe = {"09:15:00": 900.0, "09:20:00": 650.0, "12:00:00": 600.0, "15:15:00": 500.0}
    # 09:20:15 has no metrics stored: 09:20:00 and 12:00:00 are not two in a row.
    await store.analytics.save_metrics(
        [dataclasses.replace(base, ts=at(DAYS[0], t), pe_oi=v) for t, v in pe.items()]
    )
    doc = await _save(
        store, 'NIFTY short straddle enter when scan "pcr < 0.7" exit at 15:20', DAYS[0], DAYS[0]
    )
    assert doc["rule_firings"] == 1
    (trade,) = doc["trades"]
    assert trade["signal_at"] == at(DAYS[0], "15:15:00").isoformat()
    assert trade["entry_at"] == at(DAYS[0], "15:15:15").isoformat()


async def test_a_scan_ticks_on_the_traded_underlyings_snapshots_only(store: Store) -> None:
    """A BANKNIFTY snapshot stored at 12:00:05 is not a second NIFTY tick: NIFTY's 12:00:00
    match seen again would let it into the scan there. It enters at 15:15:00 as alone."""
    import dataclasses

    other = flat(at(DAYS[0], "12:00:05"), 52000.0, 300.0, 300.0)
    await store_history(
        store,
        [s for s in three_days() if s.provider_ts.date() == at(DAYS[0], "12:00:00").date()]
        + [dataclasses.replace(other, symbol="BANKNIFTY")],
    )
    doc = await _save(
        store, 'NIFTY short straddle enter when scan "spot > 25015" exit at 15:20', DAYS[0], DAYS[0]
    )
    (trade,) = doc["trades"]
    assert trade["signal_at"] == at(DAYS[0], "15:15:00").isoformat()
