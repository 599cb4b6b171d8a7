"""Exchange calendar for NSE index F&O: the exchange's time zone, trading days, session hours,
holidays and expiry dates.

Everything here is pure date arithmetic over configurable rules (hours, holidays, expiry weekday),
so the same class serves the poller's market-hours logic and the simulator's clock. Real expiry
lists should still come from the exchange when a live provider is available:
this calendar is the fallback and the simulator's source of truth.

The exchange's holiday lists ship as package data, one file per year (data/holidays/); a year the
exchange has not announced yet is missing or marked incomplete, and optterm says so.

The module stays light (no numpy): the config imports it for the session's default hours, and
`NSE_INDICES`, which needs the model, is built on first use.
"""

from __future__ import annotations

import calendar as _stdcal
import functools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from optterm.model import Underlying

__all__ = [
    "DEFAULT_CLOSE",
    "DEFAULT_OPEN",
    "IST",
    "NSE_INDICES",
    "OI_INTERVAL_CYCLE",
    "OI_INTERVAL_MINUTES",
    "HolidayList",
    "MarketCalendar",
    "OiInterval",
    "all_days",
    "holiday_list",
    "parse_day",
    "shipped_holidays",
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


def holiday_list(doc: Mapping[str, object], source: str) -> HolidayList:
    """A HolidayList from its TOML/JSON form (`year`, `complete`, `holidays = [{date, name}]`);
    ValueError naming what is wrong."""
    year = doc.get("year")
    rows = doc.get("holidays")
    if not isinstance(year, int) or not isinstance(rows, list):
        raise ValueError(f"{source}: needs a whole-number year and a holidays list")
    days: dict[date, str] = {}
    for row in rows:
        day = row.get("date") if isinstance(row, dict) else None
        if isinstance(day, str):
            day = parse_day(day)
        if not isinstance(day, date) or isinstance(day, datetime) or day.year != year:
            raise ValueError(f"{source}: {row!r} is not a holiday of {year}")
        days[day] = str(row.get("name", ""))
    return HolidayList(year, dict(sorted(days.items())), bool(doc.get("complete", True)), source)


@functools.cache
def shipped_holidays() -> dict[int, HolidayList]:
    """The NSE F&O holiday lists shipped with optterm (src/optterm/data/holidays/, one TOML
    file per year), by year. The exchange announces a year's list in December and sometimes
    amends it: with a live provider optterm refreshes these from the exchange
    (providers/nse/holidays.py)."""
    folder = resources.files("optterm").joinpath("data", "holidays")
    lists: dict[int, HolidayList] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
            listed = holiday_list(doc, f"{doc.get('source', 'shipped')} ({entry.name})")
            lists[listed.year] = listed
    return lists


def all_days(lists: Mapping[int, HolidayList]) -> frozenset[date]:
    """Every holiday of every list."""
    return frozenset(day for listed in lists.values() for day in listed.days)


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


def __getattr__(name: str) -> object:
    # NSE_INDICES is made on first access (PEP 562) and then kept as a plain module attribute,
    # so importing the calendar never imports the model (and numpy with it).
    if name == "NSE_INDICES":
        value = globals()[name] = _nse_indices()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@dataclass(frozen=True)
class MarketCalendar:
    """Trading days, session hours and expiry rules of one exchange segment.

    `open`/`close` are exchange-local wall times in `tz`; every datetime this class returns is
    timezone-aware UTC so it can be stored and compared directly.
    """

    tz: ZoneInfo = IST
    open: time = DEFAULT_OPEN
    close: time = DEFAULT_CLOSE
    # By default the shipped NSE lists (every year); the configured calendar adds the exchange's
    # refreshed lists and `[market] holidays` (providers/factory.py).
    holidays: frozenset[date] = field(default_factory=lambda: all_days(shipped_holidays()))
    weekly_symbols: frozenset[str] = _DEFAULT_WEEKLY
    expiry_weekday: int = 1  # Tuesday, as datetime.weekday() numbers it

    def __post_init__(self) -> None:
        if self.open.tzinfo is not None or self.close.tzinfo is not None:
            raise ValueError("market open/close must be naive exchange-local times")
        if self.open >= self.close:
            raise ValueError(
                f"market open ({self.open:%H:%M}) must be earlier than close ({self.close:%H:%M})"
            )
        if not 0 <= self.expiry_weekday <= 6:
            raise ValueError(f"expiry_weekday must be 0 (Monday) to 6, got {self.expiry_weekday}")
        # Accept any iterable from callers but keep hashable, case-normalised sets internally.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(
            self, "weekly_symbols", frozenset(s.upper() for s in self.weekly_symbols)
        )

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

    # -- sessions -----------------------------------------------------------------------------

    def session_bounds(self, d: date) -> tuple[datetime, datetime]:
        """Open and close of the session on `d`, as UTC-aware datetimes."""
        opened = datetime.combine(d, self.open, tzinfo=self.tz).astimezone(UTC)
        closed = datetime.combine(d, self.close, tzinfo=self.tz).astimezone(UTC)
        return opened, closed

    def is_open(self, at: datetime) -> bool:
        """True while the normal market is open at `at` (open inclusive, close exclusive)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"is_open needs a timezone-aware datetime, got {at!r}")
        local = at.astimezone(self.tz)
        return self.is_trading_day(local.date()) and self.open <= local.time() < self.close

    def session_seconds(self) -> float:
        """Length of one normal session in seconds (the same every trading day)."""
        anchor = date(2000, 1, 3)
        span = datetime.combine(anchor, self.close) - datetime.combine(anchor, self.open)
        return span.total_seconds()

    def local_date(self, at: datetime) -> date:
        """The exchange-local calendar date of an aware datetime."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"local_date needs a timezone-aware datetime, got {at!r}")
        return at.astimezone(self.tz).date()

    # -- expiries -----------------------------------------------------------------------------

    def expiries(self, symbol: str, today: date, count: int) -> list[date]:
        """The next `count` expiries of `symbol` on or after `today`, nearest first.

        Weekly symbols expire on every `expiry_weekday`; the others only on the last one of each
        month. An expiry that falls on a holiday or weekend moves to the previous trading day. An
        expiry is still live on its own day, hence ">= today".
        """
        if count <= 0:
            return []
        weekly = symbol.upper() in self.weekly_symbols
        nominals = self._weekly_nominals(today) if weekly else self._monthly_nominals(today)
        found: set[date] = set()
        for _, day in zip(range(_SEARCH_LIMIT_DAYS), nominals, strict=False):
            actual = day if self.is_trading_day(day) else self.previous_trading_day(day)
            if actual >= today:
                found.add(actual)
            # A holiday moves an expiry back by days, never by a month: once `count` dates are in
            # hand and the nominal dates have run a month past them, none can still sort earlier.
            if len(found) >= count and day > sorted(found)[count - 1] + _ADJUST_MARGIN:
                break
        return sorted(found)[:count]

    def _weekly_nominals(self, today: date) -> Iterator[date]:
        day = today + timedelta(days=(self.expiry_weekday - today.weekday()) % 7)
        while True:
            yield day
            day += timedelta(days=7)

    def _monthly_nominals(self, today: date) -> Iterator[date]:
        year, month = today.year, today.month
        while True:
            yield self.last_weekday_of_month(year, month)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def last_weekday_of_month(self, year: int, month: int) -> date:
        """The last `expiry_weekday` of a month, before any holiday adjustment."""
        last = date(year, month, _stdcal.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - self.expiry_weekday) % 7)
