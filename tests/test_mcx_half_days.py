"""MCX holidays that close one session only: on Holi the morning is shut and the evening (from
17:00) trades; on New Year's Day the morning trades and the evening is shut. The calendar's open,
close, open/closed status, session length and "today" follow the session left."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from optterm.market import IST, calendar_for, combined, holiday_list, shipped_holidays

MCX = calendar_for("commodity")
NSE = calendar_for(None)
HOLI = date(2026, 3, 3)  # Tue: MCX morning closed, evening open (US DST not yet: to 23:55)
NEW_YEAR = date(2026, 1, 1)  # Thu: MCX morning open, evening closed
DUSSEHRA = date(2026, 10, 20)  # Tue, under US DST: evening 17:00-23:30


def ist(d: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(d.year, d.month, d.day, h, m, tzinfo=IST)


def test_a_morning_closed_day_opens_at_1700() -> None:
    assert MCX.is_trading_day(HOLI) and HOLI not in MCX.holidays
    assert MCX.hours_on(HOLI) == (time(17, 0), time(23, 55))
    assert MCX.session_bounds(HOLI) == (ist(HOLI, "17:00").astimezone(UTC),
                                       ist(HOLI, "23:55").astimezone(UTC))  # fmt: skip
    assert not MCX.is_open(ist(HOLI, "10:00"))
    assert not MCX.is_open(ist(HOLI, "16:59"))
    assert MCX.is_open(ist(HOLI, "17:00")) and MCX.is_open(ist(HOLI, "21:00"))
    assert MCX.session_seconds(HOLI) == 6 * 3600 + 55 * 60
    assert MCX.session_label(HOLI) == "MCX 17:00–23:55 (morning session closed)"
    # Before the evening opens "today" is still the last session's day (Mon 2 Mar).
    assert MCX.session_day(ist(HOLI, "12:00")) == date(2026, 3, 2)
    assert MCX.session_day(ist(HOLI, "17:30")) == HOLI
    assert MCX.hours_on(DUSSEHRA) == (time(17, 0), time(23, 30))  # US DST: the earlier close


def test_an_evening_closed_day_closes_at_1700_and_expiries_stop_then() -> None:
    assert MCX.hours_on(NEW_YEAR) == (time(9, 0), time(17, 0))
    assert MCX.is_open(ist(NEW_YEAR, "16:59")) and not MCX.is_open(ist(NEW_YEAR, "17:00"))
    assert not MCX.is_open(ist(NEW_YEAR, "21:00"))
    assert MCX.expiry_moment(NEW_YEAR) == ist(NEW_YEAR, "17:00").astimezone(UTC)
    # An ordinary day keeps the full hours; NSE's calendar never splits a day.
    assert MCX.hours_on(date(2026, 3, 4)) == (time(9, 0), time(23, 55))
    assert NSE.closed_sessions == {} and NSE.hours_on(date(2026, 3, 4)) == (
        time(9, 15),
        time(15, 40),
    )


def test_a_watchlist_of_nifty_and_crude_on_holi_trades_only_the_mcx_evening() -> None:
    both = combined([NSE, MCX])
    assert both.is_trading_day(HOLI)  # NSE shut all day, MCX's evening trades
    assert both.hours_on(HOLI) == (time(17, 0), time(23, 55))
    assert not both.is_open(ist(HOLI, "11:00")) and both.is_open(ist(HOLI, "20:00"))


def test_the_shipped_2026_list_names_each_split_day() -> None:
    listed = shipped_holidays("mcx")[2026]
    assert listed.complete
    assert set(listed.days) == {date(2026, 1, 26), date(2026, 4, 3), date(2026, 10, 2),
                                date(2026, 12, 25)}  # fmt: skip
    assert listed.sessions[HOLI] == ("morning", "Holi")
    assert listed.sessions[NEW_YEAR] == ("evening", "New Year Day")
    assert sum(closed == "morning" for closed, _ in listed.sessions.values()) == 11


def test_a_bad_closed_value_is_one_clear_error() -> None:
    doc = {"year": 2026, "holidays": [{"date": "2026-03-03", "name": "Holi", "closed": "noon"}]}
    with pytest.raises(ValueError, match=r"2026-03-03 has closed = 'noon'; write \"morning\""):
        holiday_list(doc, "mcx-2026.toml")
