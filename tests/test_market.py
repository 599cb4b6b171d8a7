"""The NSE market calendar: trading days, session hours in UTC and the Tuesday expiry rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.market import IST, NSE_INDICES, MarketCalendar, all_days, shipped_holidays
from optterm.model import Segment

CAL = MarketCalendar()


def ist(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=IST)


@pytest.mark.parametrize(
    ("symbol", "lot", "step"),
    [("NIFTY", 65, 50), ("BANKNIFTY", 30, 100), ("FINNIFTY", 60, 50), ("MIDCPNIFTY", 120, 25)],
)
def test_nse_indices_carry_2026_lot_sizes_and_strike_steps(symbol: str, lot: int, step: int):
    u = NSE_INDICES[symbol]
    assert (u.symbol, u.lot_size, u.strike_step) == (symbol, lot, step)
    assert u.segment is Segment.INDEX and u.exchange == "NSE"


def test_the_shipped_holiday_lists_are_weekdays_of_their_year_and_the_default_calendar():
    lists = shipped_holidays()
    assert sorted(lists) == [2025, 2026, 2027]
    for year, listed in lists.items():
        assert all(d.year == year and d.weekday() < 5 for d in listed.days), year
        assert all(listed.days.values()), year  # every day named as the exchange names it
    assert (len(lists[2025].days), len(lists[2026].days)) == (14, 15)
    assert lists[2025].complete and lists[2026].complete
    # 2027: NSE had not announced the year; only its fixed-date weekday holidays, marked so.
    assert not lists[2027].complete
    assert list(lists[2027].days) == [date(2027, 1, 26), date(2027, 4, 14)]
    assert CAL.holidays == all_days(lists)


def test_republic_day_2027_is_never_an_expiry():
    """The last Tuesday of January 2027 is Republic Day: BANKNIFTY's monthly moves to Monday."""
    expiries = CAL.expiries("BANKNIFTY", date(2026, 12, 3), 3)
    assert date(2027, 1, 26) not in expiries
    assert expiries[1] == date(2027, 1, 25)
    assert not CAL.is_trading_day(date(2027, 1, 26))


def test_trading_days_exclude_weekends_and_holidays():
    assert CAL.is_trading_day(date(2026, 11, 20))  # Friday
    assert not CAL.is_trading_day(date(2026, 11, 21))  # Saturday
    assert not CAL.is_trading_day(date(2026, 11, 22))  # Sunday
    assert not CAL.is_trading_day(date(2026, 11, 24))  # Tuesday, holiday


def test_previous_and_next_trading_day_are_strict_and_skip_closures():
    assert CAL.next_trading_day(date(2026, 11, 20)) == date(2026, 11, 23)  # over the weekend
    assert CAL.next_trading_day(date(2026, 11, 23)) == date(2026, 11, 25)  # over a holiday
    assert CAL.previous_trading_day(date(2026, 11, 25)) == date(2026, 11, 23)
    assert CAL.previous_trading_day(date(2026, 11, 23)) == date(2026, 11, 20)
    assert CAL.next_trading_day(date(2026, 11, 18)) == date(2026, 11, 19)  # strictly after


def test_session_bounds_are_utc():
    opened, closed = CAL.session_bounds(date(2026, 11, 18))
    assert opened == datetime(2026, 11, 18, 3, 45, tzinfo=UTC)  # 09:15 IST
    assert closed == datetime(2026, 11, 18, 10, 10, tzinfo=UTC)  # 15:40 IST
    assert opened.utcoffset() == timedelta(0)
    assert CAL.session_seconds() == 6 * 3600 + 25 * 60


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ist(2026, 11, 18, 9, 15), True),  # at the open
        (ist(2026, 11, 18, 15, 39, 59), True),
        (ist(2026, 11, 18, 9, 14, 59), False),  # before the open
        (ist(2026, 11, 18, 15, 40), False),  # the close itself is closed
        (ist(2026, 11, 21, 11, 0), False),  # Saturday
        (ist(2026, 11, 24, 11, 0), False),  # holiday
        (datetime(2026, 11, 18, 6, 0, tzinfo=UTC), True),  # 11:30 IST, given in UTC
        (datetime(2026, 11, 18, 2, 0, tzinfo=UTC), False),  # 07:30 IST
    ],
)
def test_is_open(at: datetime, expected: bool):
    assert CAL.is_open(at) is expected


def test_is_open_rejects_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.is_open(datetime(2026, 11, 18, 11, 0))


def test_open_must_precede_close():
    with pytest.raises(ValueError, match="earlier than close"):
        MarketCalendar(open=time(15, 30), close=time(9, 15))
    with pytest.raises(ValueError, match="earlier than close"):
        MarketCalendar(open=time(9, 15), close=time(9, 15))


def test_nifty_weeklies_match_the_exchange_dropdown():
    # fixtures/providers/nse_GetQuoteApi_getOptionChainDropdown_NIFTY_2026-07.json starts
    # 14-Jul, 21-Jul, 28-Jul, 04-Aug, 11-Aug.
    got = CAL.expiries("NIFTY", date(2026, 7, 10), 5)
    assert got == [date(2026, 7, d) for d in (14, 21, 28)] + [date(2026, 8, 4), date(2026, 8, 11)]
    assert CAL.expiries("nifty", date(2026, 7, 10), 5) == got  # symbols are case-insensitive


def test_banknifty_has_only_monthly_last_tuesday_expiries():
    got = CAL.expiries("BANKNIFTY", date(2026, 7, 10), 3)
    assert got == [date(2026, 7, 28), date(2026, 8, 25), date(2026, 9, 29)]
    assert all(d.weekday() == 1 for d in got)


def test_monthly_on_a_holiday_moves_to_the_previous_trading_day():
    # Tuesday 24-Nov-2026 is a holiday and the last Tuesday of November.
    assert CAL.expiries("BANKNIFTY", date(2026, 11, 1), 2) == [
        date(2026, 11, 23),
        date(2026, 12, 29),
    ]
    assert date(2026, 11, 23) in CAL.expiries("NIFTY", date(2026, 11, 18), 3)
    assert date(2026, 11, 24) not in CAL.expiries("NIFTY", date(2026, 11, 18), 3)


def test_weekly_on_a_holiday_moves_and_a_holiday_before_a_weekend_goes_further_back():
    # Tuesday 03-Mar-2026 is a holiday: that weekly expires on Monday 02-Mar.
    assert CAL.expiries("NIFTY", date(2026, 2, 26), 2) == [date(2026, 3, 2), date(2026, 3, 10)]
    # A custom calendar where both the Tuesday and the Monday are shut: back to Friday.
    cal = MarketCalendar(holidays=frozenset({date(2026, 9, 7), date(2026, 9, 8)}))
    assert cal.expiries("NIFTY", date(2026, 9, 2), 2) == [date(2026, 9, 4), date(2026, 9, 15)]


def test_an_expiry_is_live_on_its_own_day_and_gone_the_day_after():
    assert CAL.expiries("NIFTY", date(2026, 11, 23), 1) == [date(2026, 11, 23)]
    # On the holiday itself the moved expiry (Monday) is already past.
    assert CAL.expiries("NIFTY", date(2026, 11, 24), 1) == [date(2026, 12, 1)]
    assert CAL.expiries("BANKNIFTY", date(2026, 11, 24), 1) == [date(2026, 12, 29)]


def test_expiry_weekday_and_weekly_symbols_are_configurable():
    cal = MarketCalendar(expiry_weekday=3, weekly_symbols=frozenset({"banknifty"}))
    got = cal.expiries("BANKNIFTY", date(2026, 7, 6), 3)
    assert got == [date(2026, 7, 9), date(2026, 7, 16), date(2026, 7, 23)]  # Thursdays
    assert cal.expiries("NIFTY", date(2026, 7, 6), 1) == [date(2026, 7, 30)]  # monthly only now


def test_zero_count_gives_no_expiries():
    assert CAL.expiries("NIFTY", date(2026, 7, 10), 0) == []


@settings(max_examples=200, deadline=None)
@given(
    today=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
    symbol=st.sampled_from(["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"]),
    count=st.integers(min_value=1, max_value=8),
)
def test_expiries_are_distinct_ascending_live_trading_days(today: date, symbol: str, count: int):
    got = CAL.expiries(symbol, today, count)
    assert len(got) == count
    assert got == sorted(set(got))
    assert got[0] >= today
    for d in got:
        assert CAL.is_trading_day(d)
        # Either the Tuesday itself or moved back from the next Tuesday over closed days.
        tuesday = d + timedelta(days=(1 - d.weekday()) % 7)
        assert all(
            not CAL.is_trading_day(d + timedelta(days=i)) for i in range(1, (tuesday - d).days + 1)
        )
    if symbol != "NIFTY":
        assert len({(d.year, d.month) for d in got}) == count  # one per month
