"""Segments with their own sessions: MCX hours that follow US daylight saving time, the CDS
expiry calendar, each segment's holiday list, and a watchlist's combined session."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from optterm.market import (
    CDS_UNDERLYINGS,
    IST,
    MCX_UNDERLYINGS,
    MarketCalendar,
    calendar_for,
    segment_of,
    segment_year_warning,
    shipped_holidays,
    us_dst_in_force,
)
from optterm.model import Segment

MCX = calendar_for(Segment.COMMODITY)
CDS = calendar_for(Segment.CURRENCY)


def ist(d: date, hh: int, mm: int) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=IST)


# US DST 2026: from Sunday 08-Mar to Sunday 01-Nov. MCX's Monday sessions after each switch are
# the first on the new hours.
@pytest.mark.parametrize(
    ("day", "close"),
    [
        (date(2026, 3, 6), time(23, 55)),  # Friday before DST starts: winter hours
        (date(2026, 3, 9), time(23, 30)),  # Monday after: summer hours
        (date(2026, 10, 30), time(23, 30)),  # Friday before DST ends
        (date(2026, 11, 2), time(23, 55)),  # Monday after: back to 23:55
        (date(2027, 3, 12), time(23, 55)),
        (date(2027, 3, 15), time(23, 30)),  # 2027: DST from 14-Mar, from the zone data
    ],
)
def test_the_mcx_session_switches_at_the_us_dst_dates(day: date, close: time) -> None:
    assert MCX.close_on(day) == close
    assert MCX.session_bounds(day) == (
        ist(day, 9, 0).astimezone(UTC),
        ist(day, close.hour, close.minute).astimezone(UTC),
    )
    assert MCX.is_open(ist(day, 23, 29))
    # 23:40 is open only on winter hours
    assert MCX.is_open(ist(day, 23, 40)) is (close == time(23, 55))
    assert not MCX.is_open(ist(day, 23, 55))
    assert MCX.session_label(day) == f"MCX 09:00–{close:%H:%M}"


def test_us_dst_comes_from_the_zone_database_not_a_table() -> None:
    assert [us_dst_in_force(date(2026, 3, d)) for d in (7, 8)] == [False, True]
    assert [us_dst_in_force(date(2026, 10, 31)), us_dst_in_force(date(2026, 11, 1))] == [
        True,
        False,
    ]


def test_an_mcx_evening_is_market_open_and_its_day_does_not_roll_at_midnight() -> None:
    thu = date(2026, 12, 3)
    assert MCX.is_open(ist(thu, 21, 0))
    assert not MarketCalendar().is_open(ist(thu, 21, 0))  # NSE F&O closed at 15:40
    # "today" after the close and past midnight is still the session's day until the next open
    assert MCX.session_day(ist(thu, 23, 54)) == thu
    assert MCX.session_day(ist(date(2026, 12, 4), 0, 5)) == thu
    assert MCX.session_day(ist(date(2026, 12, 4), 9, 0)) == date(2026, 12, 4)


def test_cds_session_and_expiry_time() -> None:
    wed = date(2026, 12, 2)
    assert CDS.session_label(wed) == "NSE CDS 09:00–17:00"
    assert CDS.is_open(ist(wed, 16, 59)) and not CDS.is_open(ist(wed, 17, 0))
    assert CDS.expiry_moment(date(2026, 12, 24)) == ist(date(2026, 12, 24), 12, 30)
    assert MarketCalendar().expiry_moment(wed) == ist(wed, 15, 40)


def test_a_year_of_usdinr_expiries() -> None:
    """2026: weeklies every Friday (a Friday holiday moves to Thursday) but in the week of the
    monthly, which is two business days before the month's last business day."""
    got = CDS.expiries("USDINR", date(2026, 1, 1), 100)
    year = [d for d in got if d.year == 2026]
    monthly = [
        date(2026, 1, 28),  # last business day Fri 30 → Wed 28
        date(2026, 2, 25),  # Fri 27 → Wed 25
        date(2026, 3, 25),  # Tue 31 Mahavir Jayanti: last Mon 30 → Fri 27 → Wed 25 (26 a holiday)
        date(2026, 4, 28),  # Thu 30 → Tue 28
        date(2026, 5, 26),  # Fri 29 → Wed 27 (Thu 28 is Bakri Id) → Tue 26
        date(2026, 6, 25),  # Tue 30 → Mon 29 (Fri 26 is Muharram) → Thu 25
        date(2026, 7, 29),
        date(2026, 8, 27),
        date(2026, 9, 28),
        date(2026, 10, 28),
        date(2026, 11, 26),
        date(2026, 12, 29),
    ]
    for d in monthly:
        assert d in year, d
        assert CDS.cds_monthly_expiry(d.year, d.month) == d
    weeklies = sorted(set(year) - set(monthly))
    monthly_weeks = {d.isocalendar()[:2] for d in monthly}
    assert all(d.isocalendar()[:2] not in monthly_weeks for d in weeklies)
    assert all(d.weekday() == 4 or not CDS.is_trading_day(_friday(d)) for d in weeklies)
    assert date(2026, 4, 2) in weeklies  # Good Friday 03-Apr: the Thursday before
    assert date(2026, 1, 30) not in year  # the week of the January monthly
    # 2026 has 52 Fridays; the December monthly (Tue 29) is in ISO week 53, whose Friday is in
    # 2027, so eleven Fridays give way to a monthly.
    assert len(weeklies) == 52 - 11
    assert CDS.expiries("USDINR", date(2026, 12, 4), 1) == [date(2026, 12, 4)]  # live on its day


def _friday(d: date) -> date:
    return date.fromordinal(d.toordinal() + (4 - d.weekday()) % 7)


def test_mcx_options_expire_before_their_futures() -> None:
    # CRUDEOIL futures about the 19th; options two business days before.
    assert MCX.expiries("CRUDEOIL", date(2026, 1, 1), 3) == [
        date(2026, 1, 15),  # futures Mon 19 → options Thu 15
        date(2026, 2, 17),  # futures Thu 19 → options Tue 17
        date(2026, 3, 17),
    ]
    assert MCX.expiries("GOLD", date(2026, 5, 1), 1) == [date(2026, 5, 27)]


def test_each_segment_has_its_own_holidays_and_the_missing_year_warning() -> None:
    assert date(2026, 1, 26) in MCX.holidays and date(2026, 3, 3) not in MCX.holidays  # Holi
    assert date(2026, 3, 3) in CDS.holidays
    assert set(shipped_holidays("mcx")) == {2026}
    assert shipped_holidays()[2026].complete  # the NSE F&O lists are not mixed with them
    assert segment_year_warning("commodity", 2026) is None  # the exchange's 2026 list is shipped
    assert "No MCX holiday list for 2027" in (segment_year_warning("commodity", 2027) or "")
    assert "No NSE CDS holiday list for 2031" in (segment_year_warning("currency", 2031) or "")


def test_symbols_find_their_segment_and_calendar() -> None:
    nse = MarketCalendar()
    assert segment_of("crudeoil") == Segment.COMMODITY
    assert segment_of("USDINR") == Segment.CURRENCY
    assert segment_of("NIFTY") is None
    assert nse.for_symbol("NIFTY") is nse
    assert nse.for_symbol("GOLD") is MCX and nse.for_symbol("USDINR") is CDS
    assert MCX_UNDERLYINGS["GOLD"].strike_step == 500.0
    assert MCX_UNDERLYINGS["CRUDEOIL"].exchange == "MCX"
    assert CDS_UNDERLYINGS["USDINR"].lot_size == 1000
    assert CDS_UNDERLYINGS["USDINR"].segment is Segment.CURRENCY


def test_a_mixed_watchlist_is_open_while_any_segment_is() -> None:
    nse = MarketCalendar()
    both = nse.for_symbols(["NIFTY", "CRUDEOIL"])
    assert nse.for_symbols(["NIFTY", "BANKNIFTY"]) is nse
    thu = date(2026, 12, 3)
    assert both.is_open(ist(thu, 9, 5))  # MCX opens first
    assert both.is_open(ist(thu, 21, 0))
    assert not both.is_open(ist(thu, 23, 56))
    assert both.session_bounds(thu) == (ist(thu, 9, 0), ist(thu, 23, 55))
    assert both.for_symbol("CRUDEOIL") is MCX and both.for_symbol("NIFTY") is nse
    assert both.expiries("CRUDEOIL", thu, 1) == MCX.expiries("CRUDEOIL", thu, 1)
    # Holi (03-Mar): NSE shut, MCX trading on its shipped list, so the watchlist has a session
    holi = date(2026, 3, 3)
    assert both.is_trading_day(holi)
    assert both.session_bounds(holi) == MCX.session_bounds(holi)


def test_a_watchlist_mixes_segments_found_by_symbol(tmp_path) -> None:
    from optterm.config import load_settings
    from optterm.providers.factory import simulated_underlyings

    path = tmp_path / "config.toml"
    path.write_text(
        "[[poller.watch]]\nsymbol = 'NIFTY'\n"
        "[[poller.watch]]\nsymbol = 'crudeoil'\n"
        "[[poller.watch]]\nsymbol = 'USDINR'\nsegment = 'currency'\n",
        encoding="utf-8",
    )
    settings = load_settings(path, env={})
    assert [w.symbol for w in settings.poller.watch] == ["NIFTY", "CRUDEOIL", "USDINR"]
    table = simulated_underlyings(settings)
    assert table["CRUDEOIL"].exchange == "MCX" and table["USDINR"].exchange == "CDS"
    assert "GOLD" not in table  # only the watched ones are added to the NSE indices


@pytest.mark.parametrize(
    ("item", "says"),
    [
        (
            "symbol = 'CRUDEOIL'\nsegment = 'currency'\n",
            "poller.watch[0].segment says currency, but CRUDEOIL trades in the commodity segment",
        ),
        (
            "symbol = 'COCOA'\nsegment = 'commodity'\n",
            "segment says commodity, but optterm knows no commodity underlying COCOA; the "
            "commodity underlyings it serves are CRUDEOIL",
        ),
        ("symbol = 'NIFTY'\nsegment = 'comodity'\n", "did you mean 'commodity'?"),
    ],
)
def test_a_bad_segment_is_one_line_naming_symbol_and_segment(tmp_path, item, says) -> None:
    from optterm.config import ConfigError, load_settings

    path = tmp_path / "config.toml"
    path.write_text("[[poller.watch]]\n" + item, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    text = str(info.value)
    assert says in text, text
    assert "\n" not in text and "pydantic" not in text


def test_doctor_reports_the_watched_segments_holiday_lists(tmp_path) -> None:
    from optterm.cli.creds import holiday_report
    from optterm.config import load_settings

    path = tmp_path / "config.toml"
    path.write_text(
        "[[poller.watch]]\nsymbol = 'NIFTY'\n[[poller.watch]]\nsymbol = 'GOLD'\n",
        encoding="utf-8",
    )
    lines = holiday_report(load_settings(path, env={}), now=datetime(2026, 6, 1, tzinfo=UTC))
    at = lines.index("holiday lists (MCX):")
    assert lines[at + 1].startswith(
        "  2026: 4 weekday holidays and 12 with one session closed, complete"
    )
    assert not any(line.startswith("WARNING: The MCX") for line in lines)
    assert not any("NSE CDS" in line for line in lines)  # no currency pair watched
    plain = load_settings(None, env={})
    assert not any("MCX" in line for line in holiday_report(plain, now=datetime.now(UTC)))


def test_the_header_names_the_instruments_session() -> None:
    from optterm.present.header import session_text

    nse = MarketCalendar()
    at = ist(date(2026, 12, 3), 21, 0)
    crude = nse.for_symbol("CRUDEOIL")
    assert session_text(crude, at, crude.is_open(at)) == " MCX 09:00–23:55 open "
    assert session_text(nse, at, nse.is_open(at)) == " market closed "
    summer = ist(date(2026, 6, 3), 23, 40)
    assert session_text(crude, summer, crude.is_open(summer)) == " MCX 09:00–23:30 closed "


def test_contract_sizes_say_what_one_lot_is() -> None:
    from optterm.market import contract_text

    assert contract_text("usdinr") == "1 lot = 1,000 USD"
    assert contract_text("GOLD") == "1 lot = 1 kg"
    assert contract_text("CRUDEOIL") == "1 lot = 100 bbl"
    assert contract_text("NIFTY") is None


async def test_optterm_status_counts_an_mcx_evening_as_market_open(tmp_path) -> None:
    from optterm.cli.status import gather_status
    from optterm.config import load_settings
    from optterm.store import open_store

    path = tmp_path / "config.toml"
    path.write_text("[[poller.watch]]\nsymbol = 'NIFTY'\n", encoding="utf-8")
    nifty_only = load_settings(path, env={})
    path.write_text(
        "[[poller.watch]]\nsymbol = 'NIFTY'\n[[poller.watch]]\nsymbol = 'CRUDEOIL'\n",
        encoding="utf-8",
    )
    with_crude = load_settings(path, env={})
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        at = ist(date(2026, 12, 3), 21, 0)
        assert not (await gather_status(nifty_only, store, now=at)).doc["market_open"]
        report = await gather_status(with_crude, store, now=at)
        assert report.doc["market_open"]
        assert "the market is open and no snapshot has been stored yet" in report.doc["problems"]
    finally:
        await store.close()
