"""Exchange calendars: NSE F&O (index and stock options), MCX (commodity options on futures) and
NSE CDS (currency options), each with its time zone, trading days, session hours, holidays and
expiry dates.

Everything here is pure date arithmetic over configurable rules (hours, holidays, expiry weekday),
so the same class serves the poller's market-hours logic and the simulator's clock. Real expiry
lists should still come from the exchange when a live provider is available:
this calendar is the fallback and the simulator's source of truth.

The exchange's holiday lists ship as package data, one file per exchange and year
(data/holidays/nse-fo-YYYY.toml, mcx-YYYY.toml, cds-YYYY.toml); a year the exchange has not
announced yet is missing or marked incomplete, and optterm says so.

Each segment has its own session: `calendar_for(segment)` gives it, and a calendar's
`for_symbol(symbol)` gives the calendar of the segment an underlying trades in (MCX and CDS from
the known lists below, everything else NSE F&O), so code holding the configured NSE calendar
reaches an instrument's own session without more plumbing. `for_symbols` combines a watchlist's
sessions (open while any is), which is what the scheduler and the market-open status follow.

Why one long module: the three segments' sessions, holiday lists and expiry rules are one
calendar read together (a watchlist's combined session, a symbol's own segment), and the model
and config import it, so it may import nothing of optterm to be split against.

The module stays light (no numpy): the config imports it for the session's default hours, and
`NSE_INDICES`, which needs the model, is built on first use.
"""

from __future__ import annotations

import calendar as _stdcal
import functools
import itertools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from optterm.model import Underlying

__all__ = [
    "CDS_LISTS",
    "CDS_SYMBOLS",
    "CDS_UNDERLYINGS",
    "CLOSED_SESSIONS",
    "COMMODITY",
    "CURRENCY",
    "DEFAULT_CLOSE",
    "DEFAULT_OPEN",
    "IST",
    "MCX_LISTS",
    "MCX_SYMBOLS",
    "MCX_UNDERLYINGS",
    "NSE_FO_LISTS",
    "NSE_INDICES",
    "OI_INTERVAL_CYCLE",
    "OI_INTERVAL_MINUTES",
    "CombinedCalendar",
    "HolidayList",
    "MarketCalendar",
    "OiInterval",
    "all_days",
    "calendar_for",
    "closed_sessions",
    "combined",
    "contract_text",
    "holiday_list",
    "parse_day",
    "segment_of",
    "segment_year_warning",
    "shipped_holidays",
    "us_dst_in_force",
]

# The exchange's zone: the one definition. Code that has the settings at hand uses
# `settings.market.tz` (the configured zone, this one by default); code that interprets what the
# exchange itself publishes (NSE and Angel One timestamps are IST wall times) uses this.
IST = ZoneInfo("Asia/Kolkata")


def utc_now() -> datetime:
    """The wall clock, UTC-aware: the default `now` of everything that takes an injectable clock."""
    return datetime.now(UTC)


def _shown(text: str) -> str:
    """`text` quoted, or its start and length when long (as infra.clip.quoted does; the market
    module may not import infra): a 100,000-character --interval is not echoed in full."""
    return repr(text) if len(text) <= 20 else f"{text[:20] + '…'!r} ({len(text):,} characters)"


@dataclass(frozen=True)
class HolidayList:
    """One year's NSE F&O trading holidays: the weekdays without a session, each with the
    exchange's name for it, and where the list came from.

    `complete` is False for a list known to be partial (the fixed-date holidays of a year whose
    list the exchange has not published yet): optterm then warns. `source` says where it came
    from (a circular, the exchange's holiday endpoint, the config)."""

    year: int
    days: Mapping[date, str]
    complete: bool
    source: str
    # Weekdays on which only one session is closed (MCX: "morning", the evening from 17:00 still
    # trading, or "evening"), with the exchange's name for the day: trading days, on other hours.
    sessions: Mapping[date, tuple[str, str]] = field(default_factory=dict)


# A holiday row's `closed`: the whole day (the default), or one session of a split day.
CLOSED_SESSIONS = ("morning", "evening")


def holiday_list(doc: Mapping[str, object], source: str) -> HolidayList:
    """A HolidayList from its TOML/JSON form (`year`, `complete`, `holidays = [{date, name}]`,
    a row's optional `closed = "morning"` or `"evening"` for a day with one session closed);
    ValueError naming what is wrong."""
    year = doc.get("year")
    rows = doc.get("holidays")
    if not isinstance(year, int) or not isinstance(rows, list):
        raise ValueError(f"{source}: needs a whole-number year and a holidays list")
    days: dict[date, str] = {}
    sessions: dict[date, tuple[str, str]] = {}
    for row in rows:
        day = row.get("date") if isinstance(row, dict) else None
        if isinstance(day, str):
            day = parse_day(day)
        if not isinstance(day, date) or isinstance(day, datetime) or day.year != year:
            raise ValueError(f"{source}: {row!r} is not a holiday of {year}")
        closed = row.get("closed", "all")
        if closed == "all":
            days[day] = str(row.get("name", ""))
        elif closed in CLOSED_SESSIONS:
            sessions[day] = (str(closed), str(row.get("name", "")))
        else:
            raise ValueError(
                f'{source}: {day.isoformat()} has closed = {closed!r}; write "morning" or '
                '"evening" for one session, or leave it out for the whole day'
            )
    return HolidayList(
        year,
        dict(sorted(days.items())),
        bool(doc.get("complete", True)),
        source,
        dict(sorted(sessions.items())),
    )


# The holiday files of each exchange segment: data/holidays/<prefix>-YYYY.toml.
NSE_FO_LISTS = "nse-fo"
MCX_LISTS = "mcx"
CDS_LISTS = "cds"
_YEAR_FILE_RE = re.compile(r"(?P<prefix>[a-z-]+)-(?P<year>\d{4})\.toml")


@functools.cache
def shipped_holidays(prefix: str = NSE_FO_LISTS) -> dict[int, HolidayList]:
    """The holiday lists shipped with optterm for one exchange segment (src/optterm/data/
    holidays/, one TOML file per year named `<prefix>-YYYY.toml`), by year: NSE F&O by default.
    The exchange announces a year's list in December and sometimes amends it: with a live
    provider optterm refreshes the NSE F&O lists from the exchange (providers/nse/holidays.py)."""
    folder = resources.files("optterm").joinpath("data", "holidays")
    lists: dict[int, HolidayList] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        named = _YEAR_FILE_RE.fullmatch(entry.name)
        if named is not None and named.group("prefix") == prefix:
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
            listed = holiday_list(doc, f"{doc.get('source', 'shipped')} ({entry.name})")
            lists[listed.year] = listed
    return lists


def all_days(lists: Mapping[int, HolidayList]) -> frozenset[date]:
    """Every holiday of every list."""
    return frozenset(day for listed in lists.values() for day in listed.days)


def closed_sessions(lists: Mapping[int, HolidayList]) -> dict[date, str]:
    """Every day with one session closed, of every list: the day → "morning" or "evening"."""
    return {
        day: closed for listed in lists.values() for day, (closed, _) in listed.sessions.items()
    }


if TYPE_CHECKING:
    NSE_INDICES: dict[str, Underlying]


def _nse_indices() -> dict[str, Underlying]:
    from optterm.model import Segment, Underlying

    # Lot sizes in force from the Jan-2026 expiries (NSE circular of 03-Oct-2025); SEBI reviews them
    # twice a year, so live providers should read them from the
    # instrument master.
    return {
        "NIFTY": Underlying("NIFTY", Segment.INDEX, lot_size=65, strike_step=50.0),
        "BANKNIFTY": Underlying("BANKNIFTY", Segment.INDEX, lot_size=30, strike_step=100.0),
        "FINNIFTY": Underlying("FINNIFTY", Segment.INDEX, lot_size=60, strike_step=50.0),
        "MIDCPNIFTY": Underlying("MIDCPNIFTY", Segment.INDEX, lot_size=120, strike_step=25.0),
    }


# MCX option underlyings (options on futures) and NSE CDS currency pairs: the symbols optterm
# knows to be in those segments, so a watchlist can mix segments by symbol alone. Live providers
# read lots and strike steps from the instrument master (they change: GOLD and SILVER steps did
# in Jan-2026); these are the fallback and the simulator's. Lot = the units one contract's price
# is multiplied by: GOLD is quoted per 10 g on a 1 kg contract (100), SILVER per kg on 30 kg,
# CRUDEOIL per barrel on 100 bbl, USDINR per dollar on 1,000 USD.
MCX_SYMBOLS: tuple[str, ...] = (
    "CRUDEOIL",
    "CRUDEOILM",
    "NATURALGAS",
    "NATGASMINI",
    "GOLD",
    "GOLDM",
    "SILVER",
    "SILVERM",
    "COPPER",
    "ZINC",
)
CDS_SYMBOLS: tuple[str, ...] = ("USDINR", "EURINR", "GBPINR", "JPYINR")

if TYPE_CHECKING:
    MCX_UNDERLYINGS: dict[str, Underlying]
    CDS_UNDERLYINGS: dict[str, Underlying]


def _mcx_underlyings() -> dict[str, Underlying]:
    from optterm.model import Segment, Underlying

    # (lot multiplier, strike step): steps from the reference (crude ₹50, gold ₹500 and silver
    # ₹1,000 from Jan-2026); NATURALGAS, COPPER and ZINC steps are unverified guesses.
    rows = {
        "CRUDEOIL": (100, 50.0),
        "CRUDEOILM": (10, 50.0),
        "NATURALGAS": (1250, 5.0),
        "NATGASMINI": (250, 5.0),
        "GOLD": (100, 500.0),
        "GOLDM": (10, 500.0),
        "SILVER": (30, 1000.0),
        "SILVERM": (5, 1000.0),
        "COPPER": (2500, 5.0),
        "ZINC": (5000, 2.5),
    }
    return {
        sym: Underlying(sym, Segment.COMMODITY, lot_size=lot, strike_step=step, exchange="MCX")
        for sym, (lot, step) in rows.items()
    }


def _cds_underlyings() -> dict[str, Underlying]:
    from optterm.model import Segment, Underlying

    # Contract size 1,000 units of the foreign currency (JPYINR: 100,000 yen, quoted per 100);
    # strike step 0.25 is NSE IFSC's INRUSD interval, unverified for NSE's USDINR.
    return {
        sym: Underlying(sym, Segment.CURRENCY, lot_size=1000, strike_step=0.25, exchange="CDS")
        for sym in CDS_SYMBOLS
    }


_LAZY = {
    "NSE_INDICES": _nse_indices,
    "MCX_UNDERLYINGS": _mcx_underlyings,
    "CDS_UNDERLYINGS": _cds_underlyings,
}


def __getattr__(name: str) -> object:
    # The underlying tables are made on first access (PEP 562) and then kept as plain module
    # attributes, so importing the calendar never imports the model (and numpy with it).
    make = _LAZY.get(name)
    if make is not None:
        value = globals()[name] = make()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Segment names as model.Segment spells them (a StrEnum, so they compare equal to it); the
# market module may not import the model at import time.
COMMODITY = "commodity"
CURRENCY = "currency"


# What one lot is, as the exchange's contract specification says it: the header's "1 lot = …".
_CONTRACT: dict[str, str] = {
    "CRUDEOIL": "100 bbl",
    "CRUDEOILM": "10 bbl",
    "NATURALGAS": "1,250 mmBtu",
    "NATGASMINI": "250 mmBtu",
    "GOLD": "1 kg",
    "GOLDM": "100 g",
    "SILVER": "30 kg",
    "SILVERM": "5 kg",
    "COPPER": "2,500 kg",
    "ZINC": "5 MT",
    "USDINR": "1,000 USD",
    "EURINR": "1,000 EUR",
    "GBPINR": "1,000 GBP",
    "JPYINR": "100,000 JPY",
}


def contract_text(symbol: str) -> str | None:
    """ "1 lot = 100 bbl", "1 lot = 1,000 USD": an MCX or CDS contract's size; None for NSE F&O
    (whose lot is a number of units, shown as such)."""
    size = _CONTRACT.get(symbol.strip().upper())
    return None if size is None else f"1 lot = {size}"


def segment_of(symbol: str) -> str | None:
    """The segment a known MCX or CDS underlying trades in ("commodity", "currency"); None for
    every other symbol (NSE F&O: index or stock options, told apart by the provider)."""
    sym = symbol.strip().upper()
    if sym in MCX_SYMBOLS:
        return COMMODITY
    if sym in CDS_SYMBOLS:
        return CURRENCY
    return None


def parse_day(text: str) -> date | None:
    """A day as people and the exchange write it: 2026-11-24 or 24-Nov-2026 (NSE's form); None
    when the text is neither."""
    raw = text.strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    try:
        return datetime.strptime(raw, "%d-%b-%Y").date()
    except ValueError:
        return None


_MINUTES_RE = re.compile(r"(\d+)\s*m(?:in)?")
_PIN_RE = re.compile(r"(\d{1,2}):(\d{2})")
# The minute intervals offered: the engine keeps history for the longest (engine/analytics/
# changes.py), so this list bounds its memory.
OI_INTERVAL_MINUTES: tuple[int, ...] = (5, 15, 30)


@dataclass(frozen=True, slots=True)
class OiInterval:
    """What ΔOI and buildups are measured over: the day (`minutes` 0 and no `at`: since the
    previous close, as the provider reports the day's change), the last `minutes` minutes, or
    since `at`, an exchange-local time of today ("pinned").

    Written `day`, `5m`, `15m`, `30m` or `HH:MM` (config, `--interval`, labels)."""

    minutes: int = 0
    at: time | None = None

    @classmethod
    def parse(cls, text: str) -> OiInterval:
        """`day`, `5m`/`15m`/`30m` or `HH:MM`; ValueError with a sentence saying so otherwise."""
        raw = text.strip().lower()
        if raw in ("day", "d"):
            return cls()
        match = _MINUTES_RE.fullmatch(raw)
        if match is not None and int(match.group(1)) in OI_INTERVAL_MINUTES:
            return cls(minutes=int(match.group(1)))
        match = _PIN_RE.fullmatch(raw)
        if match is not None and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return cls(at=time(int(match.group(1)), int(match.group(2))))
        minutes = ", ".join(f"{m}m" for m in OI_INTERVAL_MINUTES)
        raise ValueError(
            f"{_shown(text)} is not an OI interval; use day, {minutes} or a time of today as HH:MM"
        )

    @property
    def is_day(self) -> bool:
        return not self.minutes and self.at is None

    @property
    def name(self) -> str:
        if self.at is not None:
            return f"{self.at:%H:%M}"
        return f"{self.minutes}m" if self.minutes else "day"

    def next(self) -> OiInterval:
        """The next interval of the cycle day → 5m → 15m → 30m → day (a pinned time → day)."""
        if self.at is not None:
            return OI_INTERVAL_CYCLE[0]
        i = OI_INTERVAL_CYCLE.index(self) if self in OI_INTERVAL_CYCLE else -1
        return OI_INTERVAL_CYCLE[(i + 1) % len(OI_INTERVAL_CYCLE)]

    def __str__(self) -> str:
        return self.name


OI_INTERVAL_CYCLE: tuple[OiInterval, ...] = (
    OiInterval(),
    *(OiInterval(minutes=m) for m in OI_INTERVAL_MINUTES),
)


# The session's default hours, exchange-local: the one definition, read by the config's defaults
# (`[market] open`/`close`) and by a bare MarketCalendar(). Options settle at the close, so this
# is also the default expiry time of every option (analytics, the simulator).
DEFAULT_OPEN = time(9, 15)
# The F&O close moved from 15:30 to 15:40 on 03-Aug-2026.
DEFAULT_CLOSE = time(15, 40)
_DEFAULT_WEEKLY = frozenset({"NIFTY"})

# A search for a trading day gives up after this many calendar days: only a misconfigured
# holiday list (every weekday a holiday) can get that far, and it must not hang the poller.
_SEARCH_LIMIT_DAYS = 3660
_ADJUST_MARGIN = timedelta(days=31)

# MCX's internationally linked (non-agri) contracts follow the US markets: they close at 23:30
# while US daylight saving time is in force and at 23:55 otherwise. Whether it is in force is the
# time-zone database's answer for New York, never a table of dates.
US_EASTERN = ZoneInfo("America/New_York")
MCX_OPEN = time(9, 0)
MCX_CLOSE = time(23, 55)
MCX_DST_CLOSE = time(23, 30)
# MCX's day is two sessions, the evening from 17:00: on some exchange holidays only the morning
# (or only the evening) is closed, and the calendar's hours that day are the other session's.
MCX_EVENING = time(17, 0)
CDS_OPEN = time(9, 0)
CDS_CLOSE = time(17, 0)
# Currency options stop trading at 12:30 on their expiry day (the monthly rule in NSE's CDS
# contract specification; the weeklies are taken to stop at the same time).
CDS_EXPIRY_TIME = time(12, 30)
# MCX energy options expire two business days before their futures; the futures' nominal
# expiry day of the month (moved back to a business day). Approximate days for the simulator and
# the fallback: a live provider maps every option series to its futures from the master.
_MCX_ENERGY_FUTURES_DAY = {"CRUDEOIL": 19, "CRUDEOILM": 19, "NATURALGAS": 26, "NATGASMINI": 26}
# Bullion and base-metal options: about the 27th (GOLDM "May" options expired 27-May-2026, on the
# June futures), moved back to a business day.
_MCX_OPTION_DAY = 27

ExpiryRule = Literal["nse", "cds", "mcx"]
_RULE_SEGMENT: dict[str, str | None] = {"nse": None, "mcx": COMMODITY, "cds": CURRENCY}


def us_dst_in_force(d: date) -> bool:
    """True while US daylight saving time is in force on `d` (at New York's noon of that date):
    from the second Sunday of March to the first Sunday of November under the current US rule,
    so MCX's Monday session after each switch is the first one on the new hours."""
    return bool(datetime.combine(d, time(12), tzinfo=US_EASTERN).dst())


@dataclass(frozen=True)
class MarketCalendar:
    """Trading days, session hours and expiry rules of one exchange segment.

    `open`/`close` are exchange-local wall times in `tz`; every datetime this class returns is
    timezone-aware UTC so it can be stored and compared directly. A session never crosses
    midnight (MCX's latest close is 23:55), so a trading day is an exchange-local date.
    """

    tz: ZoneInfo = IST
    open: time = DEFAULT_OPEN
    close: time = DEFAULT_CLOSE
    # By default the shipped NSE lists (every year); the configured calendar adds the exchange's
    # refreshed lists and `[market] holidays` (providers/factory.py).
    holidays: frozenset[date] = field(default_factory=lambda: all_days(shipped_holidays()))
    weekly_symbols: frozenset[str] = _DEFAULT_WEEKLY
    expiry_weekday: int = 1  # Tuesday, as datetime.weekday() numbers it
    name: str = "NSE F&O"
    # The close while US daylight saving time is in force (MCX non-agri); `close` otherwise.
    dst_close: time | None = None
    # When an option stops trading on its expiry day, when that is not the close (CDS: 12:30).
    expiry_time: time | None = None
    # Which expiry calendar: NSE F&O (weekly/last weekday), CDS (weekly Friday, monthly two
    # business days before the month's last) or MCX (per commodity, see mcx_option_expiry).
    expiry_rule: ExpiryRule = "nse"
    # Days with one session closed ("morning" or "evening") and when the evening session starts
    # (MCX 17:00); without `evening_from` a split day keeps the normal hours.
    closed_sessions: Mapping[date, str] = field(default_factory=dict, hash=False)
    evening_from: time | None = None

    def __post_init__(self) -> None:
        for t in (self.open, self.close, self.dst_close, self.expiry_time):
            if t is not None and t.tzinfo is not None:
                raise ValueError("market open/close must be naive exchange-local times")
        for close in (self.close, self.dst_close):
            if close is not None and self.open >= close:
                raise ValueError(
                    f"market open ({self.open:%H:%M}) must be earlier than close ({close:%H:%M})"
                )
        if not 0 <= self.expiry_weekday <= 6:
            raise ValueError(f"expiry_weekday must be 0 (Monday) to 6, got {self.expiry_weekday}")
        # Accept any iterable from callers but keep hashable, case-normalised sets internally.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(
            self, "weekly_symbols", frozenset(s.upper() for s in self.weekly_symbols)
        )

    @property
    def segment(self) -> str | None:
        """The segment this calendar is for ("commodity", "currency"; None: NSE F&O)."""
        return _RULE_SEGMENT[self.expiry_rule]

    # -- segments -----------------------------------------------------------------------------

    def for_symbol(self, symbol: str) -> MarketCalendar:
        """The calendar of the segment `symbol` trades in: this one for NSE F&O symbols (so the
        configured hours and holidays apply), the shipped MCX or CDS calendar otherwise."""
        segment = segment_of(symbol)
        return self if segment == self.segment else calendar_for(segment)

    def for_symbols(self, symbols: Iterable[str]) -> MarketCalendar:
        """The sessions of a watchlist as one calendar: this one when every symbol is in one
        segment, else a CombinedCalendar, open while any of the segments is."""
        members: list[MarketCalendar] = []
        for symbol in symbols:
            cal = self.for_symbol(symbol)
            if all(cal is not m for m in members):
                members.append(cal)
        if len(members) <= 1:
            return members[0] if members else self
        return combined(members)

    # -- trading days -------------------------------------------------------------------------

    def is_trading_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before `d`."""
        return self._search(d, -1)

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after `d`."""
        return self._search(d, +1)

    def _search(self, d: date, direction: int) -> date:
        step = timedelta(days=direction)
        candidate = d + step
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_trading_day(candidate):
                return candidate
            candidate += step
        raise ValueError(f"no trading day within {_SEARCH_LIMIT_DAYS} days of {d}")

    def _on_or_before(self, d: date) -> date:
        return d if self.is_trading_day(d) else self.previous_trading_day(d)

    # -- sessions -----------------------------------------------------------------------------

    def hours_on(self, d: date) -> tuple[time, time]:
        """The exchange-local open and close of the session on `d`: the normal hours (MCX's
        close earlier under US DST), or the one session left on a day with the other closed
        (MCX: from 17:00 when the morning is closed, to 17:00 when the evening is)."""
        close = self.dst_close if self.dst_close is not None and us_dst_in_force(d) else self.close
        shut = self.closed_sessions.get(d)
        if shut is None or self.evening_from is None:
            return self.open, close
        return (self.evening_from, close) if shut == "morning" else (self.open, self.evening_from)

    def open_on(self, d: date) -> time:
        """The exchange-local open of the session on `d` (MCX: 17:00 on a morning-closed day)."""
        return self.hours_on(d)[0]

    def close_on(self, d: date) -> time:
        """The exchange-local close of the session on `d` (MCX: earlier under US DST, 17:00 on
        an evening-closed day)."""
        return self.hours_on(d)[1]

    def session_bounds(self, d: date) -> tuple[datetime, datetime]:
        """Open and close of the session on `d`, as UTC-aware datetimes."""
        opens, closes = self.hours_on(d)
        opened = datetime.combine(d, opens, tzinfo=self.tz).astimezone(UTC)
        closed = datetime.combine(d, closes, tzinfo=self.tz).astimezone(UTC)
        return opened, closed

    def is_open(self, at: datetime) -> bool:
        """True while the normal market is open at `at` (open inclusive, close exclusive)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"is_open needs a timezone-aware datetime, got {at!r}")
        local = at.astimezone(self.tz)
        day = local.date()
        if not self.is_trading_day(day):
            return False
        opens, closes = self.hours_on(day)
        return opens <= local.time() < closes

    def session_seconds(self, d: date | None = None) -> float:
        """Length of the normal session on `d` in seconds (without `d`: of a session on the
        standard hours, which is every session's length but MCX's under US DST)."""
        anchor = d or date(2000, 1, 3)
        opens, close = self.hours_on(d) if d is not None else (self.open, self.close)
        span = datetime.combine(anchor, close) - datetime.combine(anchor, opens)
        return span.total_seconds()

    def local_date(self, at: datetime) -> date:
        """The exchange-local calendar date of an aware datetime."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"local_date needs a timezone-aware datetime, got {at!r}")
        return at.astimezone(self.tz).date()

    def session_day(self, at: datetime) -> date:
        """The trading day that is "today" at `at`: the session `at` falls in, or the last one
        opened before it. Overnight and over a weekend it stays the last session's day until the
        next open, so an MCX evening watched past midnight does not roll to a day without data."""
        day = self.local_date(at)
        if self.is_trading_day(day) and at >= self.session_bounds(day)[0]:
            return day
        return self.previous_trading_day(day)

    def session_label(self, d: date) -> str:
        """The session's hours on `d` for a header: "MCX 09:00–23:30"."""
        opens, closes = self.hours_on(d)
        shut = self.closed_sessions.get(d) if self.evening_from is not None else None
        note = f" ({shut} session closed)" if shut else ""
        return f"{self.name} {opens:%H:%M}–{closes:%H:%M}{note}"

    # -- expiries -----------------------------------------------------------------------------

    def expiry_moment(self, d: date) -> datetime:
        """When an option expiring on `d` stops trading, UTC-aware: the close, or the segment's
        own expiry time (CDS 12:30)."""
        local = self.expiry_time or self.close_on(d)
        return datetime.combine(d, local, tzinfo=self.tz).astimezone(UTC)

    def expiries(self, symbol: str, today: date, count: int) -> list[date]:
        """The next `count` expiries of `symbol` on or after `today`, nearest first.

        NSE F&O: weekly symbols expire on every `expiry_weekday`; the others only on the last one
        of each month. An expiry that falls on a holiday or weekend moves to the previous trading
        day. CDS and MCX: see cds_monthly_expiry and mcx_option_expiry. An expiry is still live on
        its own day, hence ">= today".
        """
        if count <= 0:
            return []
        if self.expiry_rule == "cds":
            return self._cds_expiries(symbol, today, count)
        if self.expiry_rule == "mcx":
            months = itertools.islice(_months(today), count + 2)
            found = {self.mcx_option_expiry(symbol, y, m) for y, m in months}
            return sorted(d for d in found if d >= today)[:count]
        weekly = symbol.upper() in self.weekly_symbols
        nominals = self._weekly_nominals(today) if weekly else self._monthly_nominals(today)
        found = set()
        for _, day in zip(range(_SEARCH_LIMIT_DAYS), nominals, strict=False):
            actual = self._on_or_before(day)
            if actual >= today:
                found.add(actual)
            # A holiday moves an expiry back by days, never by a month: once `count` dates are in
            # hand and the nominal dates have run a month past them, none can still sort earlier.
            if len(found) >= count and day > sorted(found)[count - 1] + _ADJUST_MARGIN:
                break
        return sorted(found)[:count]

    def _cds_expiries(self, symbol: str, today: date, count: int) -> list[date]:
        # Weekly contracts expire every Friday but in the week of the monthly expiry; a count of
        # weeks is always within count + 2 months.
        months = list(itertools.islice(_months(today), count + 2))
        monthly = {self.cds_monthly_expiry(y, m) for y, m in months}
        found = set(monthly)
        if symbol.upper() in self.weekly_symbols:
            monthly_weeks = {d.isocalendar()[:2] for d in monthly}
            day = today + timedelta(days=(self.expiry_weekday - today.weekday()) % 7)
            end = date(*months[-1], 1) + _ADJUST_MARGIN
            while day < end:
                if day.isocalendar()[:2] not in monthly_weeks:
                    found.add(self._on_or_before(day))
                day += timedelta(days=7)
        return sorted(d for d in found if d >= today)[:count]

    def cds_monthly_expiry(self, year: int, month: int) -> date:
        """A currency option's monthly expiry: two business days before the month's last
        business day (NSE CDS), trading until 12:30 that day."""
        last = self._on_or_before(date(year, month, _stdcal.monthrange(year, month)[1]))
        return self.previous_trading_day(self.previous_trading_day(last))

    def mcx_option_expiry(self, symbol: str, year: int, month: int) -> date:
        """The expiry of `symbol`'s options of a month on this calendar's days: energy options
        two business days before their futures' expiry, bullion and base metals about the 27th.
        A fallback (the simulator's): live providers take each series' expiry and underlying
        futures from the instrument master."""
        futures_day = _MCX_ENERGY_FUTURES_DAY.get(symbol.upper())
        if futures_day is None:
            return self._on_or_before(date(year, month, _MCX_OPTION_DAY))
        futures = self._on_or_before(date(year, month, futures_day))
        return self.previous_trading_day(self.previous_trading_day(futures))

    def _weekly_nominals(self, today: date) -> Iterator[date]:
        day = today + timedelta(days=(self.expiry_weekday - today.weekday()) % 7)
        while True:
            yield day
            day += timedelta(days=7)

    def _monthly_nominals(self, today: date) -> Iterator[date]:
        for year, month in _months(today):
            yield self.last_weekday_of_month(year, month)

    def last_weekday_of_month(self, year: int, month: int) -> date:
        """The last `expiry_weekday` of a month, before any holiday adjustment."""
        last = date(year, month, _stdcal.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - self.expiry_weekday) % 7)


def _months(today: date) -> Iterator[tuple[int, int]]:
    year, month = today.year, today.month
    while True:
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class CombinedCalendar(MarketCalendar):
    """Several segments' sessions as one (a watchlist mixing NSE, MCX and CDS): a trading day
    when any member trades, open while any member is, the session from the earliest open to the
    latest close of the members trading that day. Per-symbol questions (expiries) go to the
    symbol's own member."""

    members: tuple[MarketCalendar, ...] = ()

    def _trading(self, d: date) -> list[MarketCalendar]:
        return [m for m in self.members if m.is_trading_day(d)] or list(self.members)

    def for_symbol(self, symbol: str) -> MarketCalendar:
        segment = segment_of(symbol)
        for member in self.members:
            if member.segment == segment:
                return member
        return self.members[0].for_symbol(symbol)

    def is_trading_day(self, d: date) -> bool:
        return any(m.is_trading_day(d) for m in self.members)

    def hours_on(self, d: date) -> tuple[time, time]:
        hours = [m.hours_on(d) for m in self._trading(d)]
        return min(h[0] for h in hours), max(h[1] for h in hours)

    def session_bounds(self, d: date) -> tuple[datetime, datetime]:
        bounds = [m.session_bounds(d) for m in self._trading(d)]
        return min(b[0] for b in bounds), max(b[1] for b in bounds)

    def is_open(self, at: datetime) -> bool:
        return any(m.is_open(at) for m in self.members)

    def expiries(self, symbol: str, today: date, count: int) -> list[date]:
        return self.for_symbol(symbol).expiries(symbol, today, count)


def combined(members: Iterable[MarketCalendar]) -> CombinedCalendar:
    """One calendar over several segments' (see CombinedCalendar)."""
    cals = tuple(members)
    if not cals:
        raise ValueError("a combined calendar needs at least one segment's calendar")
    return CombinedCalendar(
        tz=cals[0].tz,
        open=min(c.open for c in cals),
        close=max(c.close for c in cals),
        holidays=frozenset.intersection(*(c.holidays for c in cals)),
        weekly_symbols=frozenset().union(*(c.weekly_symbols for c in cals)),
        expiry_weekday=cals[0].expiry_weekday,
        name=" + ".join(c.name for c in cals),
        expiry_rule=cals[0].expiry_rule,
        members=cals,
    )


def calendar_for(segment: str | None, exchange: str | None = None) -> MarketCalendar:
    """The shipped calendar of a segment ("commodity" or exchange "MCX": MCX non-agri; "currency"
    or "CDS": NSE CDS; anything else: NSE F&O on the default hours), the same object every time.
    The configured NSE calendar (providers.factory.market_calendar) reaches these through
    `for_symbol`."""
    seg = str(segment).lower() if segment is not None else None
    exch = exchange.upper() if exchange else None
    if seg == COMMODITY or exch == "MCX":
        return _segment_calendar(COMMODITY)
    if seg == CURRENCY or exch == "CDS":
        return _segment_calendar(CURRENCY)
    return _segment_calendar(None)


@functools.cache
def _segment_calendar(seg: str | None) -> MarketCalendar:
    if seg == COMMODITY:
        return MarketCalendar(
            open=MCX_OPEN,
            close=MCX_CLOSE,
            dst_close=MCX_DST_CLOSE,
            holidays=all_days(shipped_holidays(MCX_LISTS)),
            closed_sessions=closed_sessions(shipped_holidays(MCX_LISTS)),
            evening_from=MCX_EVENING,
            weekly_symbols=frozenset(),
            name="MCX",
            expiry_rule="mcx",
        )
    if seg == CURRENCY:
        return MarketCalendar(
            open=CDS_OPEN,
            close=CDS_CLOSE,
            holidays=all_days(shipped_holidays(CDS_LISTS)),
            weekly_symbols=frozenset(CDS_SYMBOLS),
            expiry_weekday=4,  # Friday
            expiry_time=CDS_EXPIRY_TIME,
            name="NSE CDS",
            expiry_rule="cds",
        )
    return MarketCalendar()


def segment_year_warning(segment: str, year: int) -> str | None:
    """Why the shipped MCX or CDS holiday list of `year` cannot be trusted (a sentence for the
    TUI and `optterm doctor`), or None when it is complete. The NSE F&O list has its own, which
    also offers the exchange's fetched list (providers/nse/holidays.year_warning)."""
    prefix, label = {COMMODITY: (MCX_LISTS, "MCX"), CURRENCY: (CDS_LISTS, "NSE CDS")}[segment]
    listed = shipped_holidays(prefix).get(year)
    if listed is not None and listed.complete:
        return None
    if listed is None:
        return (
            f"No {label} holiday list for {year}: every weekday counts as a {label} trading day "
            "(expiries, market hours). Update optterm for the exchange's list."
        )
    # A count, not the days: this is a toast over the chain, and `optterm doctor` says the same.
    known = len(listed.days)
    return (
        f"The {label} holiday list for {year} is incomplete ({known} day{'s' * (known != 1)} "
        f"known); {label} expiries and market hours may be wrong on the other holidays. Update "
        "optterm for the exchange's list."
    )
