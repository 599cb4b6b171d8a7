"""The settings schema: one strict, frozen pydantic model per TOML table.

These classes are the only place a setting's default, range and meaning are written down; the
engine and the providers read the sections as they are rather than copying their fields.
`config.example.toml` documents every key, and a test keeps the two in step.

Validation is strict: the file is written by a person, and "15" where 15 was meant is a
mistake worth reporting rather than guessing at. Each field carries a description (`meta`) that
messages.py turns into "expects a number of seconds" rather than pydantic's own wording.

The module is longer than most on purpose: it reads top to bottom in the order of
config.example.toml, one class per table, and the tables refer to each other.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from optterm.config.checks import (
    apprise_refusal,
    choice,
    clock_time,
    did_you_mean,
    exchange_symbol,
    meta,
    parsed,
    problem,
    redact_url,
)
from optterm.infra import paths
from optterm.infra.clip import quoted
from optterm.infra.filemode import FileMode
from optterm.market import (
    CDS_SYMBOLS,
    COMMODITY,
    DEFAULT_CLOSE,
    DEFAULT_OPEN,
    MCX_SYMBOLS,
    OiInterval,
    segment_of,
)

__all__ = [
    "ANGELONE_BASE_URL",
    "ANGELONE_MASTER_URL",
    "FILE_MODES",
    "GEX_CONVENTIONS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "NSE_BASE_URL",
    "NSE_ENDPOINTS",
    "OI_UNIT_NAMES",
    "PROVIDER_NAMES",
    "SCENARIO_NAMES",
    "SOLVE_IV",
    "WEEKDAYS",
    "AnalyticsSettings",
    "AngelOneSettings",
    "DisplaySettings",
    "FailoverSettings",
    "HttpProviderSettings",
    "LogSettings",
    "MarketSettings",
    "NotifySettings",
    "NseSettings",
    "PatternSettings",
    "PollerSettings",
    "ProvidersSettings",
    "SchedulerSettings",
    "Settings",
    "SimulatorSettings",
    "StoreSettings",
    "StrategySettings",
    "StreamSettings",
    "WatchItem",
]

SCENARIO_NAMES: tuple[str, ...] = (
    "quiet",
    "call_writing",
    "put_writing",
    "short_covering",
    "long_unwinding",
    "gamma_squeeze",
    "max_pain_pin",
    "unusual_activity",
    "momentum_shift",
)
PROVIDER_NAMES: tuple[str, ...] = ("angelone", "nse", "simulator")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[str, ...] = ("text", "json")
# Exchanges trade Monday to Friday, so an expiry can only fall on one of these.
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")


NSE_BASE_URL = "https://www.nseindia.com"
ANGELONE_BASE_URL = "https://apiconnect.angelone.in"
ANGELONE_STREAM_URL = "wss://smartapisocket.angelone.in/smart-stream"
STREAM_MODES: tuple[str, ...] = ("ltp", "quote", "snap_quote")

FILE_MODES = tuple(m.value for m in FileMode)
_SQLALCHEMY_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://")


class _Section(BaseModel):
    # strict: the file is written by a person, and "15" where 15 was meant is a mistake worth
    # reporting rather than guessing at. Environment values are coerced before validation.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Field factories for the common shapes: a bounded number with the description messages use.


def _seconds(default: float, lo: float, hi: float) -> Any:
    return Field(
        default=default,
        ge=lo,
        le=hi,
        json_schema_extra=meta("a number of seconds", unit="seconds"),
    )


def _number(default: float, lo: float, hi: float, expect: str = "a number") -> Any:
    return Field(default=default, ge=lo, le=hi, json_schema_extra=meta(expect))


def _count(default: int, lo: int, hi: int) -> Any:
    return Field(default=default, ge=lo, le=hi, json_schema_extra=meta("a whole number"))


class StoreSettings(_Section):
    """``[store]``: where history, alerts and the outbox live."""

    url: str | None = Field(
        default=None,
        validate_default=True,
        json_schema_extra=meta("an SQLAlchemy URL such as 'postgresql+asyncpg://host/optterm'"),
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, json_schema_extra=meta("a whole number of days", unit="days")
    )
    # Who may read the database, its folder and the logs optterm creates (infra/filemode.py).
    file_mode: str = Field(
        default="private", json_schema_extra=meta(f"one of {', '.join(FILE_MODES)}")
    )

    @field_validator("file_mode")
    @classmethod
    def _check_file_mode(cls, value: str) -> str:
        return choice(value, FILE_MODES)

    @property
    def files(self) -> FileMode:
        """`file_mode` as the FileMode the store and the logs create their files with."""
        return FileMode(self.file_mode)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str:
        # None means "the embedded default"; resolving it here means every consumer sees a
        # usable URL in `settings.store.url` instead of re-implementing the fallback.
        if value is None:
            return paths.default_store_url()
        url = value.strip()
        if "://" not in url and url:
            # A trader writes a file's path; the store takes it as a SQLite file. A relative
            # path would move with the directory each command runs in (the daemon's is /), so
            # only an absolute or ~ path is taken.
            path = Path(url).expanduser()
            if not path.is_absolute():
                raise problem(
                    f"is a relative path ({redact_url(url)!r}): give the SQLite file's "
                    "absolute path or one under ~ (for example '~/optterm/optterm.db'), or a "
                    "URL such as 'postgresql+asyncpg://user@host/optterm'"
                )
            return "sqlite+aiosqlite:///" + str(path)
        if not _SQLALCHEMY_URL_RE.match(url):
            raise problem(
                "must be a SQLite file's path or an SQLAlchemy URL of the form "
                "dialect[+driver]://…, such as '~/optterm/optterm.db', "
                "'sqlite+aiosqlite:///path/to/optterm.db' or "
                f"'postgresql+asyncpg://user@host/optterm'; got {redact_url(value)!r}"
            )
        return url

    @property
    def effective_url(self) -> str:
        """The store URL, typed as ``str`` (``url`` is already resolved after validation)."""
        return self.url or paths.default_store_url()


# The segments a watched underlying may name (model.Segment's values).
WATCH_SEGMENTS = ("index", "equity", "commodity", "currency")


class WatchItem(_Section):
    """One ``[[poller.watch]]`` entry: an underlying and how much of its chain to poll."""

    symbol: str = Field(json_schema_extra=meta("an underlying symbol such as 'NIFTY'"))
    expiries: int = Field(
        default=1,
        ge=1,
        le=12,
        json_schema_extra=meta("a whole number of expiries", unit="expiries"),
    )
    strikes: int = Field(
        default=20,
        ge=1,
        le=300,
        json_schema_extra=meta("a whole number of strikes", unit="strikes on each side of ATM"),
    )

    # The segment, normally left out: MCX commodities and currency pairs optterm knows are found
    # by symbol (market.segment_of), everything else is NSE F&O. Given, it must agree.
    segment: str | None = Field(
        default=None,
        json_schema_extra=meta(f"one of {', '.join(WATCH_SEGMENTS)}"),
    )

    @field_validator("symbol")
    @classmethod
    def _check_symbol(cls, value: str) -> str:
        return exchange_symbol(value)

    @field_validator("segment")
    @classmethod
    def _check_segment(cls, value: str | None) -> str | None:
        return None if value is None else choice(value, WATCH_SEGMENTS)

    @model_validator(mode="after")
    def _segment_agrees(self) -> WatchItem:
        known = segment_of(self.symbol)
        given = self.segment
        if given is None or given == known or (known is None and given in ("index", "equity")):
            return self
        if known is not None:
            raise problem(
                f"says {given}, but {self.symbol} trades in the {known} segment; leave "
                "segment out (optterm knows it) or correct it",
                "segment",
            )
        listed = ", ".join(MCX_SYMBOLS if given == COMMODITY else CDS_SYMBOLS)
        raise problem(
            f"says {given}, but optterm knows no {given} underlying {self.symbol}; the "
            f"{given} underlyings it serves are {listed}",
            "segment",
        )


# A feed is never called stale before this many poll intervals have passed without new data.
STALE_INTERVALS = 3


def _default_watch() -> list[WatchItem]:
    return [
        WatchItem(symbol=symbol, expiries=3, strikes=50)
        for symbol in ("NIFTY", "BANKNIFTY", "FINNIFTY")
    ]


class PollerSettings(_Section):
    """``[poller]``: how often chains are fetched, and which."""

    interval: float = Field(
        default=15.0,
        ge=0.2,
        le=3600,
        json_schema_extra=meta("a number of seconds", unit="seconds"),
    )
    timeout: float = Field(
        default=15.0,
        ge=0.1,
        le=120,
        json_schema_extra=meta("a number of seconds", unit="seconds"),
    )
    stale_after: float = Field(
        default=60.0,
        ge=1,
        le=86400,
        json_schema_extra=meta("a number of seconds", unit="seconds"),
    )
    watch: list[WatchItem] = Field(
        default_factory=_default_watch,
        min_length=1,
        json_schema_extra=meta("an array of [[poller.watch]] tables"),
    )

    @field_validator("watch")
    @classmethod
    def _unique_symbols(cls, value: list[WatchItem]) -> list[WatchItem]:
        first_index: dict[str, int] = {}
        for index, item in enumerate(value):
            if item.symbol in first_index:
                raise problem(
                    f"repeats {item.symbol!r}, already watched at "
                    f"poller.watch[{first_index[item.symbol]}]; each symbol may appear once "
                    "(raise its expiries or strikes instead)",
                    index,
                    "symbol",
                )
            first_index[item.symbol] = index
        return value

    @property
    def stale_seconds(self) -> float:
        """Seconds without new data after which the feed is STALE (the header, `optterm
        status`): `stale_after`, or three poll intervals when that is longer — a slow poll is
        not a stuck feed."""
        return max(self.stale_after, STALE_INTERVALS * self.interval)


class SimulatorSettings(_Section):
    """``[providers.simulator]``: the offline, deterministic market."""

    seed: int = Field(default=42, json_schema_extra=meta("a whole number"))
    scenario: str = Field(
        default="quiet", json_schema_extra=meta(f"one of {', '.join(SCENARIO_NAMES)}")
    )
    speed: float = Field(
        default=1.0,
        ge=0.1,
        le=10000,
        json_schema_extra=meta(
            "a number of simulated seconds per real second",
            unit="simulated seconds per real second",
        ),
    )
    step_seconds: float = Field(
        default=1.0,
        ge=0.1,
        le=3600,
        json_schema_extra=meta("a number of simulated seconds", unit="seconds"),
    )
    start: datetime | None = Field(
        default=None,
        json_schema_extra=meta("a date-time with a UTC offset, like 2026-07-14T09:15:00+05:30"),
    )

    @field_validator("scenario")
    @classmethod
    def _check_scenario(cls, value: str) -> str:
        return choice(value, SCENARIO_NAMES)

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: object) -> object:
        return parsed(datetime.fromisoformat, value)

    @field_validator("start")
    @classmethod
    def _check_aware(cls, value: datetime | None) -> datetime | None:
        # A naive start would be read in whatever zone the host runs in; simulated data must
        # be reproducible across machines, so the offset has to be spelled out.
        if value is not None and value.utcoffset() is None:
            raise problem(
                "must include a UTC offset, like 2026-07-14T09:15:00+05:30; "
                f"got {value.isoformat()} without one"
            )
        return value


class HttpProviderSettings(_Section):
    """``[providers.nse]`` / ``[providers.angelone]``: where an HTTP provider lives."""

    base_url: str = Field(json_schema_extra=meta("an http:// or https:// URL"))
    timeout: float = Field(
        default=5.0,
        ge=0.1,
        le=120,
        json_schema_extra=meta("a number of seconds", unit="seconds"),
    )
    # A bound on what one answer may cost in memory (providers/http.py reads no further).
    max_body_mb: float = Field(
        default=16.0, ge=1, le=1024, json_schema_extra=meta("a number of megabytes", unit="MB")
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise problem(
                "must be an http:// or https:// URL with a host, like "
                f"'https://www.nseindia.com'; got {redact_url(value)!r}"
            )
        # Providers join paths onto it; a trailing slash would double up.
        return url.rstrip("/")


# The NSE provider's endpoint families, in the order it tries them (providers/nse/client.py).
NSE_ENDPOINTS: tuple[str, ...] = ("getquote", "v3", "legacy")


class NseSettings(HttpProviderSettings):
    """``[providers.nse]``: the public website, its pacing and the endpoints to try."""

    min_interval: float = Field(
        default=1.0, ge=0.2, le=60, json_schema_extra=meta("a number of seconds", unit="seconds")
    )
    endpoints: list[str] = Field(
        default_factory=lambda: list(NSE_ENDPOINTS),
        json_schema_extra=meta(
            f"an array drawn from {', '.join(NSE_ENDPOINTS)}",
            item=f"one of {', '.join(NSE_ENDPOINTS)}",
        ),
    )
    cache_ttl: float = Field(
        default=5.0, ge=0, le=300, json_schema_extra=meta("a number of seconds", unit="seconds")
    )
    # How long a chain waits for the futures / equity quote refreshed beside it (the rest of
    # the answer is used by the next chain).
    quote_wait: float = Field(
        default=2.0, ge=0, le=60, json_schema_extra=meta("a number of seconds", unit="seconds")
    )
    lot_sizes: dict[str, int] = Field(
        default_factory=dict,
        json_schema_extra=meta("a table of SYMBOL = lot size, like { RELIANCE = 500 }"),
    )

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for index, name in enumerate(value):
            family = choice(name, NSE_ENDPOINTS, index)
            if family in seen:
                raise problem(f"repeats {family!r}; list each endpoint once", index)
            seen.append(family)
        if not seen:
            raise problem(f"must name at least one of {', '.join(NSE_ENDPOINTS)}")
        return seen

    @field_validator("lot_sizes")
    @classmethod
    def _check_lots(cls, value: dict[str, int]) -> dict[str, int]:
        out = {}
        for symbol, lot in value.items():
            if lot <= 0:
                raise problem(f"lot sizes must be positive; got {lot}", symbol)
            out[exchange_symbol(symbol, symbol)] = lot
        return out


ANGELONE_MASTER_URL = (
    "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
)


class AngelOneSettings(HttpProviderSettings):
    """``[providers.angelone]``: SmartAPI's address and its instrument master's."""

    master_url: str = Field(
        default=ANGELONE_MASTER_URL, json_schema_extra=meta("an http:// or https:// URL")
    )
    greeks_interval: float = Field(
        default=60.0, ge=5, le=3600, json_schema_extra=meta("a number of seconds", unit="seconds")
    )

    @field_validator("master_url")
    @classmethod
    def _check_master_url(cls, value: str) -> str:
        return HttpProviderSettings._check_base_url(value)


class FailoverSettings(_Section):
    """``[providers.failover]``: when a provider is set aside and when it is tried again."""

    threshold: int = Field(default=3, ge=1, le=100, json_schema_extra=meta("a whole number"))
    cooldown: float = _seconds(30.0, 1, 3600)
    max_cooldown: float = _seconds(600.0, 1, 86400)
    rate_limit_cooldown: float = _seconds(180.0, 1, 86400)
    auth_cooldown: float = _seconds(300.0, 1, 86400)
    retries: int = Field(default=1, ge=0, le=5, json_schema_extra=meta("a whole number"))


class ProvidersSettings(_Section):
    """``[providers]``: which data sources to use, in failover order."""

    order: list[str] = Field(
        default_factory=lambda: ["simulator"],
        min_length=1,
        json_schema_extra=meta(
            f"an array of provider names ({', '.join(PROVIDER_NAMES)})",
            item=f"a provider name ({', '.join(PROVIDER_NAMES)})",
        ),
    )
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    nse: NseSettings = Field(default_factory=lambda: NseSettings(base_url=NSE_BASE_URL))
    angelone: AngelOneSettings = Field(
        default_factory=lambda: AngelOneSettings(base_url=ANGELONE_BASE_URL)
    )
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    # Strikes one expiry may list before its chain is refused (providers/validate.py).
    max_strikes: int = Field(
        default=1000, ge=10, le=100_000, json_schema_extra=meta("a whole number")
    )

    @model_validator(mode="before")
    @classmethod
    def _default_base_urls(cls, data: object) -> object:
        # `[providers.nse]` with only `timeout = 5` should keep NSE's address, not demand one:
        # a table replaces the whole default object, so put the default URL back in.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, url in (("nse", NSE_BASE_URL), ("angelone", ANGELONE_BASE_URL)):
            table = data.get(name)
            if isinstance(table, dict) and "base_url" not in table:
                data[name] = {**table, "base_url": url}
        return data

    @field_validator("order")
    @classmethod
    def _check_order(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for index, name in enumerate(value):
            normalized = choice(name, PROVIDER_NAMES, index)
            if normalized in seen:
                raise problem(f"repeats {normalized!r}; list each provider once", index)
            seen.append(normalized)
        return seen


class MarketSettings(_Section):
    """``[market]``: exchange hours, holidays and expiry rules."""

    timezone: str = Field(
        default="Asia/Kolkata",
        json_schema_extra=meta("an IANA time zone name such as 'Asia/Kolkata'"),
    )
    open: time = Field(
        default=DEFAULT_OPEN, json_schema_extra=meta("a time of day written HH:MM, like 09:15")
    )
    # Options settle at the close: analytics and the simulator take every expiry time from here.
    close: time = Field(
        default=DEFAULT_CLOSE, json_schema_extra=meta("a time of day written HH:MM, like 15:40")
    )
    # Closures beyond the exchange's lists (shipped, refreshed from NSE with a live provider):
    # added to them, never replacing them (providers/factory.py market_calendar).
    holidays: list[date] = Field(
        default_factory=list,
        json_schema_extra=meta(
            "an array of dates like [2026-01-26, 2026-03-03]", item="a date like 2026-01-26"
        ),
    )
    weekly_expiry_symbols: list[str] = Field(
        default_factory=lambda: ["NIFTY"],
        json_schema_extra=meta(
            'an array of symbols like ["NIFTY"]', item="a symbol such as 'NIFTY'"
        ),
    )
    expiry_weekday: str = Field(
        default="tuesday", json_schema_extra=meta(f"one of {', '.join(WEEKDAYS)}")
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        key = value.strip()
        try:
            zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            hint = did_you_mean(key, zoneinfo.available_timezones()) if key else ""
            raise problem(
                f"must be an IANA time zone name such as 'Asia/Kolkata'; {value!r} is not one{hint}"
            ) from None
        return key

    @field_validator("open", "close", mode="before")
    @classmethod
    def _parse_times(cls, value: object) -> object:
        return parsed(clock_time, value)

    @field_validator("open", "close")
    @classmethod
    def _check_local(cls, value: time) -> time:
        # Hours are exchange-local by definition (see `timezone`); an offset here would
        # contradict it.
        if value.tzinfo is not None:
            raise problem(f"must be a local time without a UTC offset; got {value.isoformat()}")
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _parse_holidays(cls, value: object) -> object:
        # TOML has native dates, but quoted "2026-01-26" is an easy habit; accept both.
        if not isinstance(value, list):
            return value
        return [parsed(date.fromisoformat, item) for item in value]

    @field_validator("weekly_expiry_symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        return [exchange_symbol(symbol, index) for index, symbol in enumerate(value)]

    @field_validator("expiry_weekday")
    @classmethod
    def _check_weekday(cls, value: str) -> str:
        abbreviations = {day[:3]: day for day in WEEKDAYS}
        normalized = abbreviations.get(value.strip().lower(), value)
        return choice(normalized, WEEKDAYS)

    @model_validator(mode="after")
    def _open_before_close(self) -> MarketSettings:
        if self.open >= self.close:
            raise problem(
                f"must be later than market.open ({self.open:%H:%M}); "
                f"got {self.close:%H:%M}. Both are exchange-local times in {self.timezone}",
                "close",
            )
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The exchange time zone as a ``ZoneInfo``."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def expiry_weekday_number(self) -> int:
        """The expiry weekday as ``datetime.weekday()`` numbers it (Monday is 0)."""
        return WEEKDAYS.index(self.expiry_weekday)


SOLVE_IV = ("missing", "all")
GEX_CONVENTIONS = ("dealer_long_calls", "dealer_short_all")


class AnalyticsSettings(_Section):
    """``[analytics]``: pricing inputs, gamma-exposure sign and the market-view votes."""

    rate: float = _number(0.065, -0.05, 0.5, "an annual rate as a decimal, like 0.065")
    dividend_yield: float = _number(0.0, 0.0, 0.5, "an annual yield as a decimal, like 0.012")
    solve_iv: str = Field(
        default="missing", json_schema_extra=meta(f"one of {', '.join(SOLVE_IV)}")
    )
    gex_convention: str = Field(
        default="dealer_long_calls", json_schema_extra=meta(f"one of {', '.join(GEX_CONVENTIONS)}")
    )
    pcr_bullish: float = _number(1.2, 0.01, 100.0)
    pcr_bearish: float = _number(0.8, 0.01, 100.0)
    max_pain_band_pct: float = _number(0.5, 0.0, 50.0)
    range_width_pct: float = _number(3.0, 0.0, 50.0)
    iv_rank_days: int = _count(252, 5, 2520)
    iv_rank_min_days: int = _count(20, 2, 2520)

    @field_validator("solve_iv")
    @classmethod
    def _check_solve(cls, value: str) -> str:
        return choice(value, SOLVE_IV)

    @field_validator("gex_convention")
    @classmethod
    def _check_gex(cls, value: str) -> str:
        return choice(value, GEX_CONVENTIONS)

    @model_validator(mode="after")
    def _ordered(self) -> AnalyticsSettings:
        if self.pcr_bearish >= self.pcr_bullish:
            raise problem(
                f"must be lower than analytics.pcr_bullish ({self.pcr_bullish:g}); "
                f"got {self.pcr_bearish:g}",
                "pcr_bearish",
            )
        if self.iv_rank_min_days > self.iv_rank_days:
            raise problem(
                f"must be at most analytics.iv_rank_days ({self.iv_rank_days}); "
                f"got {self.iv_rank_min_days}",
                "iv_rank_min_days",
            )
        return self


OI_UNIT_NAMES = ("lots", "lakh")


class DisplaySettings(_Section):
    """``[display]``: how the chain's figures are shown by default (CLI and TUI)."""

    oi_unit: str = Field(
        default="lots",
        json_schema_extra=meta(f"one of {', '.join(OI_UNIT_NAMES)}"),
    )

    oi_interval: str = Field(
        default="day",
        json_schema_extra=meta("an OI interval: day, 5m, 15m, 30m or a time HH:MM"),
    )

    @field_validator("oi_interval")
    @classmethod
    def _check_interval(cls, value: str) -> str:
        try:
            return OiInterval.parse(value).name
        except ValueError as exc:
            raise problem(str(exc)) from None

    @field_validator("oi_unit")
    @classmethod
    def _check_oi_unit(cls, value: str) -> str:
        return choice(value, OI_UNIT_NAMES)

    @property
    def interval(self) -> OiInterval:
        """`oi_interval` as the engine reads it."""
        return OiInterval.parse(self.oi_interval)


class PatternSettings(_Section):
    """``[patterns]``: the detectors' window, lifetime and thresholds (docs/patterns.md)."""

    window: float = _seconds(300.0, 30, 7200)
    ttl: float = _seconds(900.0, 30, 86400)
    min_confidence: int = _count(40, 0, 100)
    band: int = _count(5, 1, 50)
    buildup_min_pct: float = _number(5.0, 0.1, 1000.0)
    unwinding_min_pct: float = _number(5.0, 0.1, 100.0)
    min_breadth: float = _number(0.6, 0.0, 1.0)
    flow_min_moves: float = _number(1.0, 0.0, 20.0)
    flow_max_strike_share: float = _number(0.5, 0.05, 1.0)
    squeeze_min_move_pct: float = _number(0.3, 0.01, 20.0)
    squeeze_wall_strikes: int = _count(2, 0, 20)
    squeeze_min_oi_drop_pct: float = _number(10.0, 0.1, 100.0)
    max_pain_near_pct: float = _number(0.15, 0.0, 10.0)
    max_pain_converge_pct: float = _number(0.35, 0.01, 20.0)
    max_pain_far_pct: float = _number(1.0, 0.0, 50.0)
    max_pain_diverge_pct: float = _number(0.5, 0.01, 20.0)
    max_pain_days_scale: float = _number(7.0, 0.1, 365.0)
    unusual_volume_oi: float = _number(1.5, 0.01, 1000.0)
    unusual_vs_average: float = _number(5.0, 1.0, 1000.0)
    unusual_min_oi_share: float = _number(0.05, 0.0, 1.0)
    unusual_vs_neighbours: float = _number(4.0, 1.0, 1000.0)
    unusual_min_session: float = _seconds(900.0, 0, 23400)
    momentum_min_pct: float = _number(3.0, 0.1, 100.0)
    momentum_memory: float = _seconds(3600.0, 60, 86400)


class NotifySettings(_Section):
    """``[notify]``: where alerts are delivered and how failed deliveries are retried."""

    channels: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra=meta(
            'a table of name = "Apprise URL" pairs, like ops = "ntfy://ntfy.sh/my-topic"',
            item="an Apprise URL such as 'tgram://TOKEN/CHAT_ID'",
        ),
    )
    retry_schedule: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 15.0],
        json_schema_extra=meta(
            "an array of seconds like [1, 5, 15]", unit="seconds", item="a number of seconds"
        ),
    )
    timeout: float = _seconds(15.0, 1, 300)

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
                raise problem(
                    f"channel names are 1-32 letters, digits, '_' or '-'; {name!r} is not one",
                    name,
                )
            if "://" not in url:
                # Never echo the value: an Apprise URL usually carries a token.
                raise problem(
                    "must be an Apprise URL such as 'ntfy://ntfy.sh/topic' (scheme://...); "
                    "this value has no '://'",
                    name,
                )
            # Checked now, not when an alert fires: a rule's tag:NAME must lead somewhere.
            if (refusal := apprise_refusal(url)) is not None:
                raise problem(f"channel tag:{name}: {refusal}", name)
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: list[float]) -> list[float]:
        if len(value) > 10:
            raise problem(f"at most 10 retries; got {len(value)}")
        for index, delay in enumerate(value):
            if not 0 <= delay <= 3600:
                raise problem(f"each delay must be 0..3600 seconds; got {delay:g}", index)
        return value


class LogSettings(_Section):
    """``[log]``: how much to log, and in which shape."""

    level: str = Field(default="info", json_schema_extra=meta(f"one of {', '.join(LOG_LEVELS)}"))
    format: str = Field(default="text", json_schema_extra=meta(f"one of {', '.join(LOG_FORMATS)}"))

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        return choice(value, LOG_LEVELS)

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        return choice(value, LOG_FORMATS)


class SchedulerSettings(_Section):
    """``[scheduler]``: the daemon's cadence outside market hours and its housekeeping jobs."""

    idle_interval: float = _seconds(300.0, 1, 3600)
    eod_delay: float = _seconds(600.0, 0, 21600)
    checkpoint_every: float = _seconds(1800.0, 60, 86400)
    retry_after: float = _seconds(300.0, 10, 86400)


class StreamSettings(_Section):
    """``[stream]``: watched chains tick by tick over SmartAPI's WebSocket, polling as fallback."""

    enabled: bool = Field(default=False, json_schema_extra=meta("true or false"))
    url: str = Field(default=ANGELONE_STREAM_URL, json_schema_extra=meta("a wss:// or ws:// URL"))
    mode: str = Field(
        default="snap_quote", json_schema_extra=meta(f"one of {', '.join(STREAM_MODES)}")
    )
    max_updates_per_s: float = _number(4.0, 0.2, 50.0, "a number of updates a second")
    stale_after_s: float = _seconds(10.0, 1, 600)
    storm_errors: int = _count(50, 1, 100000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("wss://", "ws://")):
            raise problem(
                f"must start with wss:// (or ws:// on a test network); got {quoted(value)}"
            )
        return value

    @field_validator("mode")
    @classmethod
    def _check_mode(cls, value: str) -> str:
        return choice(value, STREAM_MODES)


FILL_MODELS = ("ltp", "mid", "touch")


class StrategySettings(_Section):
    """``[strategy]``: the strategy builder's defaults (the TUI's legs and `optterm strategy`)."""

    rate: float | None = Field(
        default=None,
        ge=-0.05,
        le=0.5,
        json_schema_extra=meta("an annual rate as a decimal, like 0.065"),
    )
    fill: str = Field(default="ltp", json_schema_extra=meta(f"one of {', '.join(FILL_MODELS)}"))
    lots: int = _count(1, 1, 10_000)
    span_file: str | None = Field(
        default=None,
        json_schema_extra=meta("a path to NSE Clearing's SPAN file (.spn or its .zip)"),
    )

    @field_validator("fill")
    @classmethod
    def _check_fill(cls, value: str) -> str:
        return choice(value, FILL_MODELS)


class Settings(_Section):
    """All of optterm's settings. Build with :func:`load_settings`; ``Settings()`` = defaults."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    poller: PollerSettings = Field(default_factory=PollerSettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    patterns: PatternSettings = Field(default_factory=PatternSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)

    _source: Path | None = PrivateAttr(default=None)

    @classmethod
    def validated(cls, data: object, source: Path | None = None) -> Settings:
        """Validate ``data`` (raising pydantic's ValidationError) and remember its file."""
        settings = cls.model_validate(data)
        settings._source = source
        return settings

    @property
    def source(self) -> Path | None:
        """The config file these settings were read from, or None for defaults (+ environment)."""
        return self._source

    def __eq__(self, other: object) -> bool:
        # Where settings came from is provenance, not configuration: the example file loaded
        # from disk must equal `Settings()`.
        if not isinstance(other, Settings):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # lists inside make settings unhashable anyway
