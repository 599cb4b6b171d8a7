"""MCX options on futures and CDS currency options in the Angel One instrument master: each option
series maps to the futures contract it is written on, read from the master's own futures
expiries (never from a month name); strike steps, lots and ticks come from the master.

The rows are constructed in the exact master format (tests/mcx_cds_rows.py says why and how).
"""

from __future__ import annotations

import numpy as np
import pytest

from optterm.providers.angelone.master import MasterIndex
from tests.mcx_cds_rows import CDS_SERIES, MCX_SERIES, Series, future_symbol, mcx_cds_rows
from tests.test_angel_master import master_rows


@pytest.fixture(scope="module")
def idx() -> MasterIndex:
    return MasterIndex.from_rows(master_rows() + mcx_cds_rows())


def _id(s: Series) -> str:
    return f"{s.name}-{s.expiry:%d%b%y}"


def test_every_mcx_underlying_of_the_master_is_indexed_with_its_expiries(idx: MasterIndex):
    names = {s.name for s in MCX_SERIES}
    assert names == {
        "CRUDEOIL", "CRUDEOILM", "NATURALGAS", "NATGASMINI", "GOLD", "GOLDM", "SILVER",
        "SILVERM", "COPPER", "ZINC",
    }  # fmt: skip
    assert names <= set(idx.names())
    for name in names:
        assert idx.expiries(name) == sorted(s.expiry for s in MCX_SERIES if s.name == name)


@pytest.mark.parametrize("s", MCX_SERIES + CDS_SERIES, ids=_id)
def test_each_option_series_maps_to_the_futures_it_is_written_on(idx: MasterIndex, s: Series):
    assert idx.on_futures(s.name, s.expiry)
    future = idx.underlying_future(s.name, s.expiry)
    assert future is not None
    assert (future.expiry, future.tradingsymbol) == (
        s.future_expiry,
        future_symbol(s.name, s.future_expiry),
    )
    assert future.exchange == ("CDS" if s.kind == "currency" else "MCX")
    assert future.expiry >= s.expiry


@pytest.mark.parametrize("s", [s for s in MCX_SERIES if s.kind == "energy"], ids=_id)
def test_energy_options_expire_two_business_days_before_their_futures(idx, s: Series):
    future = idx.underlying_future(s.name, s.expiry)
    assert future is not None
    assert np.busday_count(s.expiry, future.expiry) == 2


@pytest.mark.parametrize("s", [s for s in MCX_SERIES if s.kind == "bullion"], ids=_id)
def test_bullion_options_sit_on_the_next_futures_not_their_month_name(idx, s: Series):
    future = idx.underlying_future(s.name, s.expiry)
    assert future is not None
    assert (future.expiry.year, future.expiry.month) > (s.expiry.year, s.expiry.month)
    # The futures of the option's own month, where one is listed, expires before the option
    # does: it cannot be what the option devolves into.
    same_month = idx.future(s.name, s.expiry)
    if same_month is not None:
        assert same_month.expiry < s.expiry
        assert same_month.token != future.token


def test_goldm_december_options_are_on_january_futures(idx: MasterIndex):
    from datetime import date

    dec = date(2026, 12, 28)
    assert idx.future("GOLDM", dec).tradingsymbol == "GOLDM04DEC26FUT"  # by month name: wrong
    assert idx.underlying_future("GOLDM", dec).tradingsymbol == "GOLDM05JAN27FUT"


@pytest.mark.parametrize("s", MCX_SERIES + CDS_SERIES, ids=_id)
def test_strike_steps_lots_and_strikes_come_from_the_master(idx: MasterIndex, s: Series):
    assert idx.strikes(s.name, s.expiry) == list(s.strikes)
    assert idx.strike_step(s.name, s.expiry) == pytest.approx(s.strikes[1] - s.strikes[0])
    assert idx.lot_size(s.name, s.expiry) == s.lot


def test_cds_strikes_are_scaled_by_1e7_and_tick_is_a_quarter_paisa(idx: MasterIndex):
    s = CDS_SERIES[1]
    row = idx.option("USDINR", s.expiry, 84.25, "CE")
    assert row is not None and row.strike == 84.25 and row.instrument_type == "OPTCUR"
    assert idx.tick_size("USDINR", s.expiry) == pytest.approx(0.0025)
    assert idx.strike_step("USDINR", s.expiry) == pytest.approx(0.25)


def test_index_options_are_not_on_futures(idx: MasterIndex):
    from datetime import date

    july = date(2026, 7, 28)
    assert not idx.on_futures("NIFTY", july)
    assert idx.underlying_future("NIFTY", july) is None


def test_a_series_whose_futures_is_not_listed_has_no_underlying():
    s = MCX_SERIES[0]
    rows = [r for r in mcx_cds_rows([s]) if r["instrumenttype"] != "FUTCOM"]
    idx = MasterIndex.from_rows(rows)
    assert idx.on_futures(s.name, s.expiry)
    assert idx.underlying_future(s.name, s.expiry) is None
