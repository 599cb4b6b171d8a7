"""The backtester on a small stored history with known prices (tests/backtest_history.py).

Every expected rupee below is worked out by hand in the comments from the history's quotes, the
fill model (mid -/+ 0.5 half-spread, on the 0.05 tick against the trader) and the shipped cost
table's 2026-04-01 row (brokerage 20/order, STT 0.15 % sell and 0.15 % of an exercised option's
intrinsic value, exchange 0.03503 %, stamp 0.003 % buy, SEBI 10/crore, GST 18 % on brokerage +
exchange + SEBI; each charge to the paisa, half up).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from optterm.engine.backtest.costs import CostError, load_costs, parse_costs
from optterm.engine.backtest.results import to_document
from optterm.engine.backtest.simulate import BacktestProblem, Outcome, run_backtest
from optterm.engine.backtest.spec import SpecError, parse_spec, parse_toml_spec
from optterm.market import IST
from optterm.model import Direction, Feed, PatternKind, Signal, Strength
from optterm.store import Store
from tests.backtest_history import DAYS, EXPIRY, at, flat, store_history, three_days

STRADDLE = "NIFTY short straddle enter at 09:20 exit at 15:15"


async def _run(
    store: Store, text: str, start: date = DAYS[0], end: date = DAYS[2], **kw: object
) -> Outcome:
    return await run_backtest(
        store,
        parse_spec(text),
        start,
        end,
        load_costs(),
        IST,
        **kw,  # type: ignore[arg-type]
    )


async def test_three_days_match_the_hand_computation_to_the_paisa(store: Store) -> None:
    await store_history(store, three_days())
    out = await _run(store, STRADDLE)
    # Day 1, ATM 25000 (spot 25000 at 09:20:15). Sell CE 115.50/116.50 -> 115.75, sell PE
    # 113.50/114.50 -> 113.75; buy back at 15:15:15 CE 101.50/102.50 -> 102.25, PE 93.50/94.50
    # -> 94.25. Gross 75 x (13.50 + 19.50) = 2475.00.
    # Costs: sell CE 8681.25 turnover: 20 + STT 13.02 + exch 3.04 + SEBI 0.01 + GST 4.15 =
    # 40.22; sell PE 8531.25: 20 + 12.80 + 2.99 + 0.01 + 4.14 = 39.94; buy CE 7668.75: 20 +
    # stamp 0.23 + 2.69 + 0.01 + 4.09 = 27.02; buy PE 7068.75: 20 + 0.21 + 2.48 + 0.01 + 4.05 =
    # 26.75. 133.93 in all; net 2341.07.
    # Day 2, ATM 25100 (spot 25100). Sell CE 42.50/43.50 -> 42.75, PE 127.50/128.50 -> 127.75;
    # buy CE 79.50/80.50 -> 80.25, PE 55.50/56.50 -> 56.25. Gross 75 x (-37.50 + 71.50) =
    # 2550.00. Sells 3206.25 and 9581.25 pay STT 4.81 and 14.37: costs 29.73 + 41.95 + 26.28 +
    # 25.48 = 123.44; net 2426.56.
    # Day 3 (expiry), ATM 25100 (spot 25220, strikes 24900-25100). Sell CE 104.50/105.50 ->
    # 104.75, PE 5.50/6.50 -> 5.75; buy CE 113.50/114.50 -> 114.25, PE 2.50/3.50 -> 3.25.
    # Gross 75 x (-9.50 + 2.50) = -525.00. Sells 7856.25 and 431.25 pay STT 11.78 and 0.65:
    # costs 38.64 + 24.43 + 27.41 + 23.72 = 114.20; net -639.20.
    assert [t.gross for t in out.trades] == [2475.00, 2550.00, -525.00]
    assert [t.costs for t in out.trades] == [133.93, 123.44, 114.20]
    assert [t.net for t in out.trades] == [2341.07, 2426.56, -639.20]
    assert [[g.entry_costs.total for g in t.legs] for t in out.trades] == [
        [40.22, 39.94],
        [29.73, 41.95],
        [38.64, 24.43],
    ]
    assert [[g.exit_costs.total for g in t.legs] for t in out.trades] == [
        [27.02, 26.75],
        [26.28, 25.48],
        [27.41, 23.72],
    ]
    doc = to_document(out, IST)
    f = doc["figures"]
    assert f["net_pnl"] == 4128.43
    assert f["gross_pnl"] == 4500.00
    assert f["costs"] == 371.57
    # Slippage: a quarter rupee a unit on each of 4 fills of 75, per trade: 3 x 75.00.
    assert f["slippage"] == 225.00
    assert (f["trades"], f["win_pct"], f["loss_pct"]) == (3, 66.67, 33.33)
    assert f["average_win"] == round((2341.07 + 2426.56) / 2, 2)
    assert f["average_loss"] == 639.20
    assert f["max_drawdown"] == 639.20
    assert f["profit_factor"] == round((2341.07 + 2426.56) / 639.20, 2)
    assert f["equity"] == [
        ["2026-11-20", 2341.07],
        ["2026-11-23", 4767.63],
        ["2026-11-24", 4128.43],
    ]
    assert (f["win_streak"], f["loss_streak"]) == (2, 1)
    assert doc["source"] == [{"provider": "nse", "feed": "LIVE", "snapshots": 21}]
    assert doc["snapshots_read"] == 21
    assert [t["reason"] for t in doc["trades"]] == ["exit time"] * 3


async def test_a_signal_never_fills_on_its_own_snapshot(store: Store) -> None:
    """09:20 entry and 15:15 exit both have a snapshot at exactly that time: the fills come
    from the next ones (09:20:15 and 15:15:15), whose quotes differ."""
    await store_history(store, three_days())
    out = await _run(store, STRADDLE, DAYS[0], DAYS[0])
    (trade,) = out.trades
    assert trade.signal_at == datetime(2026, 11, 20, 9, 20, tzinfo=IST)
    assert trade.entry_ts == at(DAYS[0], "09:20:15")
    ce = trade.legs[0]
    assert (ce.entry.bid, ce.entry.ask) == (115.5, 116.5)  # not 09:20:00's 117.50/118.50
    assert ce.exit is not None
    assert ce.exit.ts == at(DAYS[0], "15:15:15")
    assert (ce.exit.bid, ce.exit.ask) == (101.5, 102.5)  # not 15:15:00's 103.50/104.50


async def test_a_rule_firing_fills_on_the_next_snapshot(store: Store) -> None:
    """A MAX_PAIN signal first seen at 12:00:00 (a snapshot's time) enters at 15:15:00."""
    await store_history(store, three_days())
    seen = at(DAYS[0], "12:00:00")
    await store.analytics.save_signals(
        [
            Signal(
                key="k1", kind=PatternKind.MAX_PAIN, symbol="NIFTY", expiry=EXPIRY,
                direction=Direction.NEUTRAL, strikes=(25000.0,), confidence=80,
                strength=Strength.STRONG, evidence=(("x", 1.0),), summary="s",
                first_seen=seen, last_seen=seen, expires_at=seen + timedelta(hours=1),
                provider="nse", feed=Feed.LIVE,
            )
        ]
    )  # fmt: skip
    spec = "NIFTY enter short straddle when pattern MAX_PAIN confidence >= 70 exit at 15:20"
    out = await _run(store, spec, DAYS[0], DAYS[0])
    (trade,) = out.trades
    assert trade.signal_at == seen
    assert trade.entry_ts == at(DAYS[0], "15:15:00")
    assert out.firings == 1
    none = await _run(store, spec.replace(">= 70", ">= 90"), DAYS[0], DAYS[0])
    assert none.trades == [] and none.firings == 0


async def test_the_lot_size_comes_from_the_snapshot(store: Store) -> None:
    """NIFTY's lot changes 75 -> 65 before the last day: that day's quantities are 65."""
    await store_history(store, three_days(lots=(75, 75, 65)))
    out = await _run(store, STRADDLE)
    assert [t.lot_size for t in out.trades] == [75, 75, 65]
    assert [g.qty for g in out.trades[2].legs] == [-65, -65]
    assert out.trades[2].gross == -455.00  # 65 x (-9.50 + 2.50)


async def test_an_itm_long_leg_held_to_expiry_pays_exercise_stt(store: Store) -> None:
    await store_history(store, three_days())
    out = await _run(store, "NIFTY long call enter at 09:20 hold expiry", DAYS[1], DAYS[2])
    (trade,) = out.trades
    (leg,) = trade.legs
    # Bought Mon 09:20:15 at ATM 25100: 42.50/43.50 -> 43.25. Settles Tue at the last spot
    # 25200: intrinsic 100.00. Exercise STT 0.15 % x 100 x 75 = 11.25.
    assert (leg.strike, leg.entry.price, leg.settled) == (25100.0, 43.25, 100.0)
    assert leg.exit_costs.stt == 11.25
    assert leg.exit_costs.total == 11.25
    # Entry costs, buy 3243.75: 20 + stamp 0.10 + exch 1.14 + SEBI 0.00 + GST 3.81 = 25.05.
    assert leg.entry_costs.total == 25.05
    assert trade.gross == 4256.25  # 75 x (100 - 43.25)
    assert trade.net == round(4256.25 - 25.05 - 11.25, 2)
    assert trade.reason == "expiry settlement"


async def test_a_short_itm_leg_at_expiry_pays_no_exercise_stt(store: Store) -> None:
    await store_history(store, three_days())
    out = await _run(store, "NIFTY short call enter at 09:20 hold expiry", DAYS[1], DAYS[2])
    (leg,) = out.trades[0].legs
    assert leg.settled == 100.0
    assert leg.exit_costs.total == 0.0


async def test_simulated_data_is_refused_unless_allowed(store: Store) -> None:
    snaps = [flat(at(DAYS[0], t), 25000, 100, 100, feed=Feed.SIMULATED) for t in
             ("09:15:00", "09:20:15", "15:15:15")]  # fmt: skip
    await store_history(store, snaps)
    with pytest.raises(BacktestProblem, match=r"SIMULATED.*--allow-simulated"):
        await _run(store, STRADDLE, DAYS[0], DAYS[0])
    out = await _run(store, STRADDLE, DAYS[0], DAYS[0], allow_simulated=True)
    assert len(out.trades) == 1
    assert out.sources == [("nse", "SIMULATED", 3)]


async def test_a_span_with_no_data_is_refused(store: Store) -> None:
    await store_history(store, three_days())
    with pytest.raises(BacktestProblem, match="no NIFTY snapshots are stored"):
        await _run(store, STRADDLE, date(2026, 10, 1), date(2026, 10, 5))


async def test_stopping_keeps_the_trades_so_far(store: Store) -> None:
    await store_history(store, three_days())
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # after the first day's checks

    out = await _run(store, STRADDLE, stop=stop)
    assert out.interrupted
    assert [t.net for t in out.trades] == [2341.07]


async def test_stops_and_targets(store: Store) -> None:
    await store_history(store, three_days())
    # Day 2: the short 25100 straddle (sold 42.75 + 127.75 = 170.50) is marked at 12:00 at CE
    # 60 + PE 80 = 140: +30.50 a unit x 75 = 2287.50 >= a 10 % target (1278.75): exits on
    # the next snapshot (15:15:00) at CE 74.50/75.50 -> 75.25, PE 59.50/60.50 -> 60.25.
    out = await _run(store, "NIFTY short straddle enter at 09:20 target 10%", DAYS[1], DAYS[1])
    (trade,) = out.trades
    assert trade.reason == "target"
    assert trade.exit_ts == at(DAYS[1], "15:15:00")
    assert [g.exit_price for g in trade.legs] == [75.25, 60.25]
    # A leg stop of 30 %: the CE (sold 42.75) is marked 60 at 12:00: +40 % against, it alone
    # is bought back at 15:15:00; the PE runs to the exit time.
    out = await _run(store, "NIFTY short straddle enter at 09:20 leg sl 30%", DAYS[1], DAYS[1])
    ce, pe = out.trades[0].legs
    assert (ce.exit_reason, ce.exit_ts) == ("leg stop-loss", at(DAYS[1], "15:15:00"))
    assert (pe.exit_reason, pe.exit_ts) == ("exit time", at(DAYS[1], "15:15:15"))


async def test_reentry_after_a_stop(store: Store) -> None:
    await store_history(store, three_days())
    spec = "NIFTY short straddle enter at 09:20 exit at 15:20 sl 1000 reenter 1"
    out = await _run(store, spec, DAYS[2], DAYS[2])
    # Day 3 short 25100 straddle sold 104.75 + 5.75; at 12:00 CE 120 + PE 4 = 124: -13.50 a
    # unit x 75 = -1012.50 <= -1000: stopped, filled 15:15:00; re-entered on the next snapshot
    # (15:15:15), out at the exit time on the first snapshot after 15:20 (15:29:45).
    assert [t.reason for t in out.trades] == ["stop-loss", "exit time"]
    assert out.trades[1].entry_ts == at(DAYS[2], "15:15:15")
    assert out.trades[1].exit_ts == at(DAYS[2], "15:29:45")
    once = await _run(store, spec.replace(" reenter 1", ""), DAYS[2], DAYS[2])
    assert [t.reason for t in once.trades] == ["stop-loss"]


def test_specs_parse_and_bad_ones_say_what_is_wrong() -> None:
    s = parse_spec("NIFTY enter short_straddle when pattern MAX_PAIN confidence >= 70")
    assert s.line.template is not None and s.line.template.name == "short_straddle"
    assert s.rule is not None and s.rule.pattern is PatternKind.MAX_PAIN
    assert s.rule.min_confidence == 70 and s.enter_at is None
    s = parse_spec("NIFTY iron condor by delta 0.2 width 3 on mon,thu dte 0-3 fill mid sl 2000")
    assert (s.placement.by, s.placement.amount, s.placement.width) == ("delta", 0.2, 3)
    assert s.weekdays == frozenset({0, 3}) and s.dte == (0, 3) and s.fill.k == 0
    assert s.sl is not None and (s.sl.value, s.sl.pct) == (2000, False)
    with pytest.raises(SpecError, match="unknown strategy"):
        parse_spec("NIFTY moon butterfly enter at 09:20")
    with pytest.raises(SpecError, match="can never fire: pcr_oi cannot be both"):
        parse_spec("NIFTY short straddle enter when pcr > 2 and pcr < 1")
    with pytest.raises(SpecError, match="can never fire: atm_iv is never negative"):
        parse_spec("NIFTY short straddle enter when iv < 0")
    with pytest.raises(SpecError, match=r"can never fire.*at most 100"):
        parse_spec("NIFTY short straddle enter when pattern MAX_PAIN confidence >= 101")
    with pytest.raises(SpecError, match=r"on a calendar .* not simulated yet"):
        parse_spec("NIFTY call calendar sl 30%")  # a calendar runs; its stops do not yet


def test_a_toml_spec_is_the_same_spec() -> None:
    text = (
        'symbol = "NIFTY"\nstrategy = "short straddle"\nenter = "09:20"\nexit = "15:15"\n'
        'sl = "30%"\non = ["mon", "tue"]\n'
    )
    s = parse_toml_spec(text, "spec.toml")
    line = parse_spec(STRADDLE + " sl 30% on mon,tue")
    assert (s.enter_at, s.exit_at, s.sl, s.weekdays) == (
        line.enter_at,
        line.exit_at,
        line.sl,
        line.weekdays,
    )


def test_cost_tables_are_dated_and_checked(tmp_path: Path) -> None:
    table = load_costs()
    assert table.rates(date(2024, 9, 30)).stt_sell_pct == 0.0625
    assert table.rates(date(2024, 10, 1)).stt_sell_pct == 0.1
    shipped = (Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml").read_text()
    bad = shipped.replace("from = 2024-10-01", 'from = "2024-13-01"')
    with pytest.raises(CostError, match=r"row 2: `from` must be a date written 2024-10-01"):
        parse_costs(bad, "costs.toml")
    with pytest.raises(CostError, match="distinct and in order"):
        parse_costs(shipped.replace("from = 2024-10-01", "from = 2022-01-01"), "costs.toml")
    with pytest.raises(CostError, match="starts on 2023-04-01, after 2020-01-01"):
        table.rates(date(2020, 1, 1))


async def test_the_gap_report_names_holes_stale_data_and_provider_switches(store: Store) -> None:
    times = ["09:15:00", "09:15:15", "09:15:30", "09:15:45", "09:20:00", "09:20:15", "09:20:30"]
    snaps = [flat(at(DAYS[0], t), 25000, 100, 100) for t in times[:4]]
    snaps += [flat(at(DAYS[0], t), 25000, 100, 100, provider="angelone") for t in times[4:]]
    await store_history(store, snaps)
    out = await _run(store, STRADDLE, DAYS[0], DAYS[1])
    g = out.gaps.summary()
    # The usual step is 15 s; 09:15:45 -> 09:20:00 (255 s) is the one hole.
    assert (g["missing_spans"], g["missing_seconds"]) == (1, 255.0)
    assert g["longest_missing"] == [
        {"after": at(DAYS[0], "09:15:45").isoformat(), "seconds": 255.0}
    ]
    assert g["provider_switches"] == [
        {"at": at(DAYS[0], "09:20:00").isoformat(), "from": "nse", "to": "angelone"}
    ]
    assert g["stale_snapshots"] == 0
    assert g["days_without_data"] == ["2026-11-23"]
    holiday = await _run(
        store, STRADDLE, DAYS[0], DAYS[1], trading_day=lambda d: d.weekday() < 5 and d != DAYS[1]
    )
    assert holiday.gaps.summary()["days_without_data"] == []


async def test_weekday_and_days_to_expiry_filters(store: Store) -> None:
    await store_history(store, three_days())
    out = await _run(store, STRADDLE + " on mon,tue")
    assert [t.entry_ts.astimezone(IST).date() for t in out.trades] == [DAYS[1], DAYS[2]]
    out = await _run(store, STRADDLE + " dte 0-1")  # Mon is 1 day from the Tue expiry
    assert [t.entry_ts.astimezone(IST).date() for t in out.trades] == [DAYS[1], DAYS[2]]
    assert out.skipped == {"days-to-expiry filter": 1}


async def test_strikes_by_premium_and_fixed_strikes(store: Store) -> None:
    await store_history(store, three_days())
    # Fri 09:20:15, ATM 25000: CE mids 232 / 116 / 58 (24900/25000/25100), PE 57 / 114 / 228.
    # A strangle by premium 60: the call at or above ATM nearest 60 is 25100 (58), the put at
    # or below nearest 60 is 24900 (57).
    out = await _run(store, "NIFTY short strangle by premium 60 " + STRADDLE[20:], DAYS[0], DAYS[0])
    assert sorted((g.kind, g.strike) for g in out.trades[0].legs) == [
        ("CE", 25100.0),
        ("PE", 24900.0),
    ]
    out = await _run(store, "NIFTY short strangle 24900/25100 " + STRADDLE[20:], DAYS[0], DAYS[0])
    assert sorted((g.kind, g.strike) for g in out.trades[0].legs) == [
        ("CE", 25100.0),
        ("PE", 24900.0),
    ]


async def test_a_metric_rule_enters_after_the_first_tick_it_holds(store: Store) -> None:
    import dataclasses

    from optterm.model import Bias, MarketView, Metrics
    from optterm.store.schema import METRIC_FLOATS

    await store_history(store, three_days())
    base = Metrics(
        symbol="NIFTY", expiry=EXPIRY, ts=at(DAYS[0], "09:15:00"), provider="nse",
        feed=Feed.LIVE, forward_source="parity", view=MarketView(Bias.NEUTRAL, 0.0, ()),
        **dict.fromkeys(METRIC_FLOATS, 1.0),
    )  # fmt: skip
    pcr = {"09:15:00": 0.9, "09:20:15": 0.8, "12:00:00": 0.6, "15:15:00": 0.5}
    await store.analytics.save_metrics(
        [dataclasses.replace(base, ts=at(DAYS[0], t), pcr_oi=v) for t, v in pcr.items()]
    )
    out = await _run(
        store, "NIFTY short straddle enter when pcr < 0.7 exit at 15:20", DAYS[0], DAYS[0]
    )
    (trade,) = out.trades
    assert trade.signal_at == at(DAYS[0], "12:00:00")
    assert trade.entry_ts == at(DAYS[0], "15:15:00")
    assert out.firings == 2


async def test_a_position_held_past_the_span_closes_on_its_last_quote(store: Store) -> None:
    await store_history(store, three_days())
    out = await _run(store, "NIFTY long call enter at 09:20 hold expiry", DAYS[0], DAYS[1])
    (trade,) = out.trades
    (leg,) = trade.legs
    # Bought Fri at ATM 25000 (115.50/116.50 -> 116.25); Mon's last quote of 25000 CE is
    # 169.50/170.50: closed at its mid, 170.00, reason span end.
    assert (leg.entry.price, leg.exit_price) == (116.25, 170.0)
    assert leg.exit_reason.startswith("span end") and trade.reason == "span end"
    stopped = await _run(
        store, "NIFTY long call enter at 09:20 hold expiry", DAYS[0], DAYS[1],
        stop=iter([False, False, True, True]).__next__,
    )  # fmt: skip
    assert stopped.interrupted and stopped.trades[0].exit_ts is None  # open, not counted
    assert to_document(stopped, IST)["figures"]["open_trades"] == 1


@pytest.mark.process
async def test_runs_are_stored_on_postgresql_too(pg_url: str) -> None:
    from datetime import UTC

    from optterm.store import open_store

    async with await open_store(pg_url) as pg:
        await store_history(pg, three_days())
        doc = to_document(await _run(pg, STRADDLE), IST)
        at_ = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
        n = await pg.backtests.save(doc, at_)
        (run,) = await pg.backtests.recent()
        assert (run.id, run.spec, run.net_pnl, run.trades) == (n, STRADDLE, 4128.43, 3)
        assert run.document == doc and run.created_at == at_


async def test_days_whose_chain_cannot_hold_the_strategy_say_so(store: Store) -> None:
    from optterm.engine.backtest.simulate import UNFILLED

    await store_history(store, three_days())
    # An iron condor 2 strikes out with 2-strike wings needs 9 strikes; 3 are stored.
    out = await _run(store, "NIFTY iron condor" + STRADDLE[20:])
    assert out.trades == []
    assert out.skipped == {UNFILLED: 3}


async def test_a_trailing_stop_follows_the_best_open_profit(store: Store) -> None:
    await store_history(store, three_days())
    # Mon: the 25100 straddle sold for 170.50 is marked 140 at 12:00 (+2287.50), 135 at
    # 15:15:00 (+2662.50, the best), 136 at 15:15:15 (+2587.50: 75 below the best >= 50):
    # out on the next snapshot, 15:29:45.
    spec = "NIFTY short straddle enter at 09:20 exit at 15:20 trail 50"
    out = await _run(store, spec, DAYS[1], DAYS[1])
    (trade,) = out.trades
    assert (trade.reason, trade.exit_ts) == ("trailing stop", at(DAYS[1], "15:29:45"))
    assert trade.peak == 2662.5
    wide = await _run(store, spec.replace("trail 50", "trail 100"), DAYS[1], DAYS[1])
    assert wide.trades[0].reason == "exit time"
