"""Calendar backtests: legs on two expiries, each filled from its own expiry's stored chain.

The near chain is tests/backtest_history.py's (expiry 24 Nov); the far chain (1 Dec) is stored
5 seconds after each near snapshot, its 25000 CE mid 50 above the near one's (spread 1.00, the
wings as in `flat`). Fills: mid -/+ half a half-spread on the 0.05 tick against the trader;
costs: the shipped [[rates]] 2024-10-01 row (brokerage 20, STT 0.1 % sell, exchange 0.03503 %,
stamp 0.003 % buy, SEBI 10/crore, GST 18 % on brokerage + exchange + SEBI), to the paisa.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from optterm.engine.backtest.calendar import FAR_STALE
from optterm.engine.backtest.results import to_document
from optterm.engine.backtest.simulate import Outcome, run_backtest
from optterm.engine.backtest.spec import SpecError, parse_spec
from optterm.market import IST
from optterm.model import ChainSnapshot
from optterm.store import Store
from tests.backtest_history import DAYS, PRICES, at, costs_oct_2024, flat, store_history, three_days

FAR = date(2026, 12, 1)
CALENDAR = "NIFTY call calendar enter at 09:20 exit at 15:15"


def far_chain(skip: frozenset[tuple[date, str]] = frozenset()) -> list[ChainSnapshot]:
    return [
        flat(at(day, t) + timedelta(seconds=5), spot, ce + 50, pe + 40, expiry=FAR)
        for day in DAYS
        for t, spot, ce, pe in PRICES[day]
        if (day, t) not in skip
    ]


async def _run(store: Store, text: str, start: date, end: date) -> Outcome:
    return await run_backtest(store, parse_spec(text), start, end, costs_oct_2024(), IST)


async def test_a_calendar_matches_the_hand_computation_to_the_paisa(store: Store) -> None:
    await store_history(store, three_days() + far_chain())
    out = await _run(store, CALENDAR, DAYS[0], DAYS[0])
    (trade,) = out.trades
    near, far = trade.legs
    # Signal 09:20:00. Near: its next snapshot 09:20:15, ATM 25000 CE 115.50/116.50 -> sell
    # 115.75. Far: ITS next snapshot, 09:20:05 (09:20:00's 118 + 50), 167.50/168.50 -> buy
    # 168.25. Exit signal 15:15:00: near 15:15:15 CE 101.50/102.50 -> buy 102.25; far 15:15:05
    # (104 + 50) 153.50/154.50 -> sell 153.75.
    assert (near.qty, near.strike, near.expiry) == (-75, 25000.0, None)
    assert (far.qty, far.strike, far.expiry) == (75, 25000.0, FAR)
    assert (near.entry.ts, far.entry.ts) == (at(DAYS[0], "09:20:15"),
                                             at(DAYS[0], "09:20:05"))  # fmt: skip
    assert (near.entry.price, far.entry.price) == (115.75, 168.25)
    assert (near.exit_price, far.exit_price) == (102.25, 153.75)
    assert far.exit is not None and far.exit.ts == at(DAYS[0], "15:15:05")
    # Gross: near -75 x -13.50 = 1012.50; far 75 x -14.50 = -1087.50; -75.00.
    assert (near.gross, far.gross, trade.gross) == (1012.50, -1087.50, -75.00)
    # Near sell 8681.25: 20 + STT 8.68 + exch 3.04 + SEBI 0.01 + GST 4.15 = 35.88; near buy
    # 7668.75: 20 + stamp 0.23 + 2.69 + 0.01 + 4.09 = 27.02. Far buy 12618.75: 20 + stamp 0.38
    # + exch 4.42 + SEBI 0.01 + GST 4.40 = 29.21; far sell 11531.25: 20 + STT 11.53 + exch 4.04
    # + SEBI 0.01 + GST 4.33 = 39.91. 132.02 in all.
    assert [g.entry_costs.total for g in trade.legs] == [35.88, 29.21]
    assert [g.exit_costs.total for g in trade.legs] == [27.02, 39.91]
    assert (trade.costs, trade.net) == (132.02, -207.02)
    assert far.label() == "B 75 25000CE 01Dec"
    legs = to_document(out, IST)["trades"][0]["legs"]
    assert [g["expiry"] for g in legs] == ["2026-11-24", "2026-12-01"]


async def test_held_to_the_near_expiry_the_near_leg_settles_and_the_far_is_closed(
    store: Store,
) -> None:
    """Entered on 24 Nov (the near expiry; spot 25220, so ATM is the top stored strike, 25100)
    and held: the near CE settles at intrinsic 25200 - 25100 = 100 on the last spot (short: no
    exercise STT, no charges); the far CE is sold on its chain's last snapshot, 15:29:50."""
    await store_history(store, three_days() + far_chain())
    out = await _run(store, CALENDAR.replace("exit at 15:15", "hold expiry"), DAYS[2], DAYS[2])
    (trade,) = out.trades
    near, far = trade.legs
    assert near.strike == 25100.0
    assert (near.exit_price, near.exit_reason) == (100.0, "expiry settlement")
    assert near.exit_costs.total == 0.0
    assert far.exit is not None
    assert far.exit.ts == at(DAYS[2], "15:29:50")
    assert far.exit_reason == "near expiry: far leg closed on its chain's last snapshot"
    # The far 25100 CE at 15:29:50 is `flat`'s wing: (200.5 + 50) / 2 = 125.25 mid, quoted
    # 124.75/125.75 -> sell 125.00.
    assert far.exit_price == 125.0
    assert trade.reason == "near expiry settlement"


async def test_a_far_chain_without_a_snapshot_near_the_fill_skips_the_entry(store: Store) -> None:
    """Day 1's far chain has nothing stored from 09:15 to 12:00: its next snapshot after the
    09:20 signal is hours after the near fill, older than the stale limit allows: skipped."""
    gone = frozenset((DAYS[0], t) for t in ("09:15:00", "09:20:00", "09:20:15"))
    await store_history(store, three_days() + far_chain(gone))
    out = await _run(store, CALENDAR, DAYS[0], DAYS[0])
    assert out.trades == []
    assert out.skipped == {FAR_STALE: 1}


def test_what_a_calendar_backtest_does_not_take_is_refused_in_one_line() -> None:
    assert parse_spec("NIFTY -1 25000CE@1 +1 25000CE@2").calendar
    assert parse_spec("NIFTY call diagonal expiry 2").leg_ranks == (2, 3)
    for text, said in (
        (CALENDAR + " sl 30%", "sl on a calendar"),
        ("NIFTY -1 25000CE@1 +1 FUT@2", "futures leg with legs on two expiries"),
        ("NIFTY -1 25000CE@1 +1 25000CE@2 +1 25000CE@3", "on 3 expiries"),
        ("NIFTY -1 25000CE@2026-11-24", "not a date"),
    ):
        with pytest.raises(SpecError, match=said):
            parse_spec(text)


async def test_a_calendar_held_over_days_to_the_near_expiry(store: Store) -> None:
    """Entered on 20 Nov (as in the first test: sell the near 25000 CE 115.75, buy the far
    168.25) and held to 24 Nov: the near CE settles at 25200 - 25000 = 200 (short: no exercise
    STT); the far 25000 CE is sold on its chain's last snapshot, 15:29:50, 250.00/251.00 ->
    250.25. Gross: -75 x 84.25 = -6318.75 and 75 x 82.00 = 6150.00, -168.75. Costs: the
    entries 35.88 + 29.21; the far sale 18768.75: 20 + STT 18.77 + exch 6.57 + SEBI 0.02 + GST
    4.79 = 50.15; 115.24 in all; net -283.99."""
    await store_history(store, three_days() + far_chain())
    out = await _run(store, CALENDAR.replace("exit at 15:15", "hold expiry"), DAYS[0], DAYS[2])
    (trade,) = out.trades
    near, far = trade.legs
    assert (near.exit_price, far.exit_price) == (200.0, 250.25)
    assert far.exit_costs.total == 50.15
    assert (trade.gross, trade.costs, trade.net) == (-168.75, 115.24, -283.99)
    assert trade.exit_ts == at(DAYS[2], "15:29:50")
