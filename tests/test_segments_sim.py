"""The simulator plays every segment on its own session: MCX into the evening (on US-DST
hours), CDS to 17:00 in 0.0025 ticks on 1,000-unit contracts, beside the NSE indices."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

import numpy as np

from optterm.market import CDS_UNDERLYINGS, IST, MCX_UNDERLYINGS, NSE_INDICES, calendar_for
from optterm.providers.simulator.clock import SessionClock
from optterm.providers.simulator.provider import SimulatorProvider

MIXED = {
    **NSE_INDICES,
    "CRUDEOIL": MCX_UNDERLYINGS["CRUDEOIL"],
    "GOLD": MCX_UNDERLYINGS["GOLD"],
    "USDINR": CDS_UNDERLYINGS["USDINR"],
}


def _sim(start: datetime, clock: list[float]) -> SimulatorProvider:
    return SimulatorProvider(
        seed=7, start=start, clock=lambda: clock[0], speed=1.0, underlyings=MIXED
    )


def test_mcx_ticks_in_the_evening_while_nse_waits_for_its_open() -> None:
    clock = [0.0]
    sim = _sim(datetime(2026, 12, 3, 21, 0, tzinfo=IST), clock)

    async def fetch(sym: str):
        return await sim.fetch_chain(sym, (await sim.list_expiries(sym))[0])

    crude = asyncio.run(fetch("CRUDEOIL"))
    assert crude.provider_ts.astimezone(IST) == datetime(2026, 12, 3, 21, 0, tzinfo=IST)
    assert crude.lot_size == 100 and np.allclose(np.diff(crude.strikes), 50.0)
    # The options sit on futures: the spot is the futures price itself.
    assert crude.futures is not None and crude.futures.value == crude.spot
    nifty = asyncio.run(fetch("NIFTY"))
    assert nifty.provider_ts.astimezone(IST) == datetime(2026, 12, 4, 9, 15, tzinfo=IST)
    clock[0] = 2 * 3600.0 + 54 * 60.0  # 23:54: still the session (winter hours, 23:55)
    late = asyncio.run(fetch("CRUDEOIL"))
    assert late.provider_ts.astimezone(IST) == datetime(2026, 12, 3, 23, 54, tzinfo=IST)
    assert late.spot != crude.spot
    clock[0] += 120.0  # past the close: the next session's open, the trading day rolls there
    nxt = asyncio.run(fetch("CRUDEOIL"))
    assert nxt.provider_ts.astimezone(IST) == datetime(2026, 12, 4, 9, 1, tzinfo=IST)


def test_usdinr_quotes_in_quarter_paise_on_1000_unit_contracts() -> None:
    sim = _sim(datetime(2026, 12, 3, 11, 0, tzinfo=IST), [0.0])
    expiries = asyncio.run(sim.list_expiries("USDINR"))
    assert expiries[:3] == [date(2026, 12, 4), date(2026, 12, 11), date(2026, 12, 18)]
    chain = asyncio.run(sim.fetch_chain("USDINR", expiries[1]))
    assert chain.lot_size == 1000
    ltp = chain.ce.ltp[np.isfinite(chain.ce.ltp)]
    ticks = ltp / 0.0025
    assert np.allclose(ticks, np.rint(ticks)) and ltp.min() >= 0.0025
    assert not np.allclose(ltp / 0.05, np.rint(ltp / 0.05))  # finer than the NSE tick
    atm = int(np.argmin(np.abs(chain.strikes - chain.spot)))
    assert 0.02 < chain.ce.iv[atm] < 0.08  # a currency's vol, not an index's


def test_the_mcx_session_clock_follows_us_dst() -> None:
    mcx = calendar_for("commodity")
    # Friday 06-Mar-2026 (23:55 close) then Monday 09-Mar (23:30: US DST from Sunday 08-Mar).
    clock = SessionClock(mcx, datetime(2026, 3, 6, 23, 0, tzinfo=IST))
    assert clock.at(54 * 60).astimezone(IST) == datetime(2026, 3, 6, 23, 54, tzinfo=IST)
    monday_open = clock.at(55 * 60)
    assert monday_open.astimezone(IST) == datetime(2026, 3, 9, 9, 0, tzinfo=IST)
    day = (datetime.combine(date(2026, 3, 9), time(23, 30)) - datetime(2026, 3, 9, 9)).seconds
    assert clock.session_seconds(1) == day
    last = clock.at(55 * 60 + day - 60).astimezone(IST)
    assert last == datetime(2026, 3, 9, 23, 29, tzinfo=IST)
    assert clock.at(55 * 60 + day).astimezone(IST) == datetime(2026, 3, 10, 9, 0, tzinfo=IST)
    assert clock.elapsed_at(monday_open + timedelta(hours=14)) == 55 * 60 + 14 * 3600
