"""Settings: a TOML file plus ``OPTTERM_*`` environment overrides, strictly validated.

Where the file comes from, first match wins:

1. the ``path`` argument of :func:`load_settings` (the CLI's ``--config``);
2. the ``OPTTERM_CONFIG`` environment variable;
3. :func:`optterm.infra.paths.config_file` (``$XDG_CONFIG_HOME/optterm/config.toml`` on Linux),
   if it exists;
4. otherwise no file: the built-in defaults.

A file named by 1 or 2 must exist. Every key in the file is optional; ``config.example.toml``
at the top of the repository documents them all with their defaults.

Environment overrides are applied on top of the file and validated together with it. A variable
is ``OPTTERM_`` followed by the dotted key with ``_`` for ``.`` (case-insensitive), e.g.
``OPTTERM_POLLER_INTERVAL=5`` or ``OPTTERM_PROVIDERS_SIMULATOR_SEED=7``. Lists are comma
separated (``OPTTERM_PROVIDERS_ORDER=nse,simulator``); an empty value is an empty list, or
"unset" (the default) for an optional key such as ``OPTTERM_STORE_URL``. The watch list is
written ``SYMBOL[:EXPIRIES[:STRIKES]]``, e.g. ``OPTTERM_POLLER_WATCH=NIFTY:3:50,RELIANCE``, and
replaces the whole ``[[poller.watch]]`` list. Names in :data:`RESERVED_ENV_NAMES` or starting
with one of :data:`RESERVED_ENV_PREFIXES` belong to other parts of optterm and are ignored; any
other ``OPTTERM_*`` variable that is not a key is an error, because a typo in an override would
otherwise be silently ignored.

Validation is strict: a string where a number belongs is an error rather than a silent
conversion (environment values are the exception; they can only be strings). Every problem
is reported as :class:`ConfigError` whose message names the file or variable, the dotted key
(``poller.watch[2].strikes``) and what is allowed, without pydantic's own wording.

This module must stay cheap to import (``serve`` and every non-TUI command load settings
first), so it imports neither Textual nor numpy nor SQLAlchemy.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from optterm.infra import paths
from optterm.market import NSE_HOLIDAYS_2026

__all__ = [
    "ENV_PREFIX",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "NSE_HOLIDAYS_2026",
    "PROVIDER_NAMES",
    "RESERVED_ENV_NAMES",
    "RESERVED_ENV_PREFIXES",
    "SCENARIO_NAMES",
    "WEEKDAYS",
    "AnalyticsSettings",
    "ConfigError",
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
    "WatchItem",
    "is_reserved_env_name",
    "load_settings",
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

ENV_PREFIX = "OPTTERM_"
# Variables that share the prefix but are not settings. OPTTERM_CONFIG picks the file;
# OPTTERM_LOG_FILE is read by logging setup. Broker credentials (OPTTERM_ANGELONE_*, and the
# OPTTERM_ANGEL_* spelling used in reference/reliability.md) are deliberately kept out of the
# settings so they can never be echoed back in a config dump or error message. OPTTERM_TEST_*
# are the crash-test hooks of the notification dispatcher (engine/notify.py).
RESERVED_ENV_NAMES: frozenset[str] = frozenset({"OPTTERM_CONFIG", "OPTTERM_LOG_FILE"})
RESERVED_ENV_PREFIXES: tuple[str, ...] = ("OPTTERM_ANGELONE_", "OPTTERM_ANGEL_", "OPTTERM_TEST_")

_SYMBOL_RE = re.compile(r"[A-Z0-9&-]+")
_SQLALCHEMY_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
# Enough problems to fix in one go without burying the first one.
_MAX_PROBLEMS = 5


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _problem(reason: str, *subloc: str | int) -> PydanticCustomError:
    """A validation error whose text is ours; ``subloc`` points below the validated field.

    Cross-field checks run on the containing list or model, but the message should name the
    offending element (``poller.watch[2].symbol``), so the extra path travels in the context.
    """
    return PydanticCustomError("optterm", "{reason}", {"reason": reason, "subloc": subloc})


def _meta(expect: str, *, unit: str = "", item: str = "") -> dict[str, Any]:
    """Describe a field for error messages: what it expects, its unit, what a list item is."""
    return {"expect": expect, "unit": unit, "item": item}


def _suggest(value: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    match = _suggest(value, choices)
    return f" (did you mean '{match}'?)" if match else ""


def _choice(value: str, choices: Sequence[str], *subloc: str | int) -> str:
    normalized = value.strip().lower()
    if normalized not in choices:
        raise _problem(
            f"must be one of {', '.join(choices)}; got {value!r}{_did_you_mean(value, choices)}",
            *subloc,
        )
    return normalized


def _symbol(value: str, *subloc: str | int) -> str:
    normalized = value.strip().upper()
    if not _SYMBOL_RE.fullmatch(normalized):
        raise _problem(
            "must be an exchange symbol made of letters, digits, '&' and '-' "
            f"(like NIFTY or M&M); got {value!r}",
            *subloc,
        )
    return normalized


def _redact_url(url: str) -> str:
    # Database and broker URLs may embed a password; never echo it back, and match loosely
    # because a malformed URL is exactly the kind that ends up quoted in an error.
    return re.sub(r"([^/@:\s]+:)[^/@\s]*@", r"\1***@", url)


# The parsers below turn strings into dates and times where they can and otherwise hand the
# value on unchanged: the strict type check then reports it with the field's own description,
# and every bad element of a list is reported, not just the first.


def _parse_time(value: object) -> object:
    if not isinstance(value, str) or not (match := _TIME_RE.fullmatch(value.strip())):
        return value
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return time(hour, minute, second)
    except ValueError:
        return value


def _parse_date(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return value


def _parse_datetime(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return value


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class _Section(BaseModel):
    # strict: the file is written by a person, and "15" where 15 was meant is a mistake worth
    # reporting rather than guessing at. Environment values are coerced before validation.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StoreSettings(_Section):
    """``[store]``: where history, alerts and the outbox live."""

    url: str | None = Field(
        default=None,
        validate_default=True,
        json_schema_extra=_meta("an SQLAlchemy URL such as 'postgresql+asyncpg://host/optterm'"),
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, json_schema_extra=_meta("a whole number of days", unit="days")
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str:
        # None means "the embedded default"; resolving it here means every consumer sees a
        # usable URL in `settings.store.url` instead of re-implementing the fallback.
        if value is None:
            return paths.default_store_url()
        url = value.strip()
        if not _SQLALCHEMY_URL_RE.match(url):
            raise _problem(
                "must be an SQLAlchemy URL of the form dialect[+driver]://…, such as "
                "'sqlite+aiosqlite:///path/to/optterm.db' or "
                f"'postgresql+asyncpg://user@host/optterm'; got {_redact_url(value)!r}"
            )
        return url

    @property
    def effective_url(self) -> str:
        """The store URL, typed as ``str`` (``url`` is already resolved after validation)."""
        return self.url or paths.default_store_url()


class WatchItem(_Section):
    """One ``[[poller.watch]]`` entry: an underlying and how much of its chain to poll."""

    symbol: str = Field(json_schema_extra=_meta("an underlying symbol such as 'NIFTY'"))
    expiries: int = Field(
        default=1,
        ge=1,
        le=12,
        json_schema_extra=_meta("a whole number of expiries", unit="expiries"),
    )
    strikes: int = Field(
        default=20,
        ge=1,
        le=300,
        json_schema_extra=_meta("a whole number of strikes", unit="strikes on each side of ATM"),
    )

    @field_validator("symbol")
    @classmethod
    def _check_symbol(cls, value: str) -> str:
        return _symbol(value)


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
        json_schema_extra=_meta("a number of seconds", unit="seconds"),
    )
    timeout: float = Field(
        default=15.0,
        ge=0.1,
        le=120,
        json_schema_extra=_meta("a number of seconds", unit="seconds"),
    )
    watch: list[WatchItem] = Field(
        default_factory=_default_watch,
        min_length=1,
        json_schema_extra=_meta("an array of [[poller.watch]] tables"),
    )

    @field_validator("watch")
    @classmethod
    def _unique_symbols(cls, value: list[WatchItem]) -> list[WatchItem]:
        first_index: dict[str, int] = {}
        for index, item in enumerate(value):
            if item.symbol in first_index:
                raise _problem(
                    f"repeats {item.symbol!r}, already watched at "
                    f"poller.watch[{first_index[item.symbol]}]; each symbol may appear once "
                    "(raise its expiries or strikes instead)",
                    index,
                    "symbol",
                )
            first_index[item.symbol] = index
        return value


class SimulatorSettings(_Section):
    """``[providers.simulator]``: the offline, deterministic market."""

    seed: int = Field(default=42, json_schema_extra=_meta("a whole number"))
    scenario: str = Field(
        default="quiet", json_schema_extra=_meta(f"one of {', '.join(SCENARIO_NAMES)}")
    )
    speed: float = Field(
        default=1.0,
        ge=0.1,
        le=10000,
        json_schema_extra=_meta(
            "a number of simulated seconds per real second",
            unit="simulated seconds per real second",
        ),
    )
    step_seconds: float = Field(
        default=1.0,
        ge=0.1,
        le=3600,
        json_schema_extra=_meta("a number of simulated seconds", unit="seconds"),
    )
    start: datetime | None = Field(
        default=None,
        json_schema_extra=_meta("a date-time with a UTC offset, like 2026-07-14T09:15:00+05:30"),
    )

    @field_validator("scenario")
    @classmethod
    def _check_scenario(cls, value: str) -> str:
        return _choice(value, SCENARIO_NAMES)

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: object) -> object:
        return _parse_datetime(value)

    @field_validator("start")
    @classmethod
    def _check_aware(cls, value: datetime | None) -> datetime | None:
        # A naive start would be read in whatever zone the host runs in; simulated data must
        # be reproducible across machines, so the offset has to be spelled out.
        if value is not None and value.utcoffset() is None:
            raise _problem(
                "must include a UTC offset, like 2026-07-14T09:15:00+05:30; "
                f"got {value.isoformat()} without one"
            )
        return value


class HttpProviderSettings(_Section):
    """``[providers.nse]`` / ``[providers.angelone]``: where an HTTP provider lives."""

    base_url: str = Field(json_schema_extra=_meta("an http:// or https:// URL"))
    timeout: float = Field(
        default=5.0,
        ge=0.1,
        le=120,
        json_schema_extra=_meta("a number of seconds", unit="seconds"),
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _problem(
                "must be an http:// or https:// URL with a host, like "
                f"'https://www.nseindia.com'; got {_redact_url(value)!r}"
            )
        # Providers join paths onto it; a trailing slash would double up.
        return url.rstrip("/")


NSE_ENDPOINTS: tuple[str, ...] = ("getquote", "v3", "legacy")  # = providers.nse.ENDPOINT_FAMILIES


class NseSettings(HttpProviderSettings):
    """``[providers.nse]``: the public website, its pacing and the endpoints to try."""

    min_interval: float = Field(
        default=1.0, ge=0.2, le=60, json_schema_extra=_meta("a number of seconds", unit="seconds")
    )
    endpoints: list[str] = Field(
        default_factory=lambda: list(NSE_ENDPOINTS),
        json_schema_extra=_meta(
            f"an array drawn from {', '.join(NSE_ENDPOINTS)}",
            item=f"one of {', '.join(NSE_ENDPOINTS)}",
        ),
    )
    cache_ttl: float = Field(
        default=5.0, ge=0, le=300, json_schema_extra=_meta("a number of seconds", unit="seconds")
    )
    lot_sizes: dict[str, int] = Field(
        default_factory=dict,
        json_schema_extra=_meta("a table of SYMBOL = lot size, like { RELIANCE = 500 }"),
    )

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for index, name in enumerate(value):
            family = _choice(name, NSE_ENDPOINTS, index)
            if family in seen:
                raise _problem(f"repeats {family!r}; list each endpoint once", index)
            seen.append(family)
        if not seen:
            raise _problem(f"must name at least one of {', '.join(NSE_ENDPOINTS)}")
        return seen

    @field_validator("lot_sizes")
    @classmethod
    def _check_lots(cls, value: dict[str, int]) -> dict[str, int]:
        out = {}
        for symbol, lot in value.items():
            if lot <= 0:
                raise _problem(f"lot sizes must be positive; got {lot}", symbol)
            out[_symbol(symbol, symbol)] = lot
        return out


ANGELONE_MASTER_URL = (
    "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
)


class AngelOneSettings(HttpProviderSettings):
    """``[providers.angelone]``: SmartAPI's address and its instrument master's."""

    master_url: str = Field(
        default=ANGELONE_MASTER_URL, json_schema_extra=_meta("an http:// or https:// URL")
    )
    greeks_interval: float = Field(
        default=60.0, ge=5, le=3600, json_schema_extra=_meta("a number of seconds", unit="seconds")
    )

    @field_validator("master_url")
    @classmethod
    def _check_master_url(cls, value: str) -> str:
        return HttpProviderSettings._check_base_url(value)


def _seconds(default: float, lo: float, hi: float) -> Any:
    return Field(
        default=default,
        ge=lo,
        le=hi,
        json_schema_extra=_meta("a number of seconds", unit="seconds"),
    )


class FailoverSettings(_Section):
    """``[providers.failover]``: when a provider is set aside and when it is tried again."""

    threshold: int = Field(default=3, ge=1, le=100, json_schema_extra=_meta("a whole number"))
    cooldown: float = _seconds(30.0, 1, 3600)
    max_cooldown: float = _seconds(600.0, 1, 86400)
    rate_limit_cooldown: float = _seconds(180.0, 1, 86400)
    auth_cooldown: float = _seconds(300.0, 1, 86400)
    retries: int = Field(default=1, ge=0, le=5, json_schema_extra=_meta("a whole number"))


class ProvidersSettings(_Section):
    """``[providers]``: which data sources to use, in failover order."""

    order: list[str] = Field(
        default_factory=lambda: ["simulator"],
        min_length=1,
        json_schema_extra=_meta(
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
            normalized = _choice(name, PROVIDER_NAMES, index)
            if normalized in seen:
                raise _problem(f"repeats {normalized!r}; list each provider once", index)
            seen.append(normalized)
        return seen


class MarketSettings(_Section):
    """``[market]``: exchange hours, holidays and expiry rules."""

    timezone: str = Field(
        default="Asia/Kolkata",
        json_schema_extra=_meta("an IANA time zone name such as 'Asia/Kolkata'"),
    )
    open: time = Field(
        default=time(9, 15), json_schema_extra=_meta("a time of day written HH:MM, like 09:15")
    )
    close: time = Field(
        default=time(15, 40), json_schema_extra=_meta("a time of day written HH:MM, like 15:40")
    )
    holidays: list[date] = Field(
        default_factory=lambda: list(NSE_HOLIDAYS_2026),
        json_schema_extra=_meta(
            "an array of dates like [2026-01-26, 2026-03-03]", item="a date like 2026-01-26"
        ),
    )
    weekly_expiry_symbols: list[str] = Field(
        default_factory=lambda: ["NIFTY"],
        json_schema_extra=_meta(
            'an array of symbols like ["NIFTY"]', item="a symbol such as 'NIFTY'"
        ),
    )
    expiry_weekday: str = Field(
        default="tuesday", json_schema_extra=_meta(f"one of {', '.join(WEEKDAYS)}")
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        key = value.strip()
        try:
            zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            hint = _did_you_mean(key, zoneinfo.available_timezones()) if key else ""
            raise _problem(
                f"must be an IANA time zone name such as 'Asia/Kolkata'; {value!r} is not one{hint}"
            ) from None
        return key

    @field_validator("open", "close", mode="before")
    @classmethod
    def _parse_times(cls, value: object) -> object:
        return _parse_time(value)

    @field_validator("open", "close")
    @classmethod
    def _check_local(cls, value: time) -> time:
        # Hours are exchange-local by definition (see `timezone`); an offset here would
        # contradict it.
        if value.tzinfo is not None:
            raise _problem(f"must be a local time without a UTC offset; got {value.isoformat()}")
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _parse_holidays(cls, value: object) -> object:
        # TOML has native dates, but quoted "2026-01-26" is an easy habit; accept both.
        if not isinstance(value, list):
            return value
        return [_parse_date(item) for item in value]

    @field_validator("weekly_expiry_symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        return [_symbol(symbol, index) for index, symbol in enumerate(value)]

    @field_validator("expiry_weekday")
    @classmethod
    def _check_weekday(cls, value: str) -> str:
        abbreviations = {day[:3]: day for day in WEEKDAYS}
        normalized = abbreviations.get(value.strip().lower(), value)
        return _choice(normalized, WEEKDAYS)

    @model_validator(mode="after")
    def _open_before_close(self) -> MarketSettings:
        if self.open >= self.close:
            raise _problem(
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


def _number(default: float, lo: float, hi: float, expect: str = "a number") -> Any:
    return Field(default=default, ge=lo, le=hi, json_schema_extra=_meta(expect))


def _count(default: int, lo: int, hi: int) -> Any:
    return Field(default=default, ge=lo, le=hi, json_schema_extra=_meta("a whole number"))


SOLVE_IV = ("missing", "all")
GEX_CONVENTIONS = ("dealer_long_calls", "dealer_short_all")


class AnalyticsSettings(_Section):
    """``[analytics]``: pricing inputs, gamma-exposure sign and the market-view votes."""

    rate: float = _number(0.065, -0.05, 0.5, "an annual rate as a decimal, like 0.065")
    dividend_yield: float = _number(0.0, 0.0, 0.5, "an annual yield as a decimal, like 0.012")
    solve_iv: str = Field(
        default="missing", json_schema_extra=_meta(f"one of {', '.join(SOLVE_IV)}")
    )
    gex_convention: str = Field(
        default="dealer_long_calls", json_schema_extra=_meta(f"one of {', '.join(GEX_CONVENTIONS)}")
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
        return _choice(value, SOLVE_IV)

    @field_validator("gex_convention")
    @classmethod
    def _check_gex(cls, value: str) -> str:
        return _choice(value, GEX_CONVENTIONS)

    @model_validator(mode="after")
    def _ordered(self) -> AnalyticsSettings:
        if self.pcr_bearish >= self.pcr_bullish:
            raise _problem(
                f"must be lower than analytics.pcr_bullish ({self.pcr_bullish:g}); "
                f"got {self.pcr_bearish:g}",
                "pcr_bearish",
            )
        if self.iv_rank_min_days > self.iv_rank_days:
            raise _problem(
                f"must be at most analytics.iv_rank_days ({self.iv_rank_days}); "
                f"got {self.iv_rank_min_days}",
                "iv_rank_min_days",
            )
        return self


class PatternSettings(_Section):
    """``[patterns]``: the detectors' window, lifetime and thresholds (docs/patterns.md)."""

    window: float = _seconds(300.0, 30, 7200)
    ttl: float = _seconds(900.0, 30, 86400)
    min_confidence: int = _count(40, 0, 100)
    band: int = _count(5, 1, 50)
    buildup_min_pct: float = _number(5.0, 0.1, 1000.0)
    unwinding_min_pct: float = _number(5.0, 0.1, 100.0)
    min_breadth: float = _number(0.6, 0.0, 1.0)
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
    unusual_min_session: float = _seconds(900.0, 0, 23400)
    momentum_min_pct: float = _number(3.0, 0.1, 100.0)
    momentum_memory: float = _seconds(3600.0, 60, 86400)


class NotifySettings(_Section):
    """``[notify]``: where alerts are delivered and how failed deliveries are retried."""

    channels: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra=_meta(
            'a table of name = "Apprise URL" pairs, like ops = "ntfy://ntfy.sh/my-topic"',
            item="an Apprise URL such as 'tgram://TOKEN/CHAT_ID'",
        ),
    )
    retry_schedule: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 15.0],
        json_schema_extra=_meta(
            "an array of seconds like [1, 5, 15]", unit="seconds", item="a number of seconds"
        ),
    )
    timeout: float = _seconds(15.0, 1, 300)

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
                raise _problem(
                    f"channel names are 1-32 letters, digits, '_' or '-'; {name!r} is not one",
                    name,
                )
            if "://" not in url:
                # Never echo the value: an Apprise URL usually carries a token.
                raise _problem(
                    "must be an Apprise URL such as 'ntfy://ntfy.sh/topic' (scheme://...); "
                    "this value has no '://'",
                    name,
                )
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: list[float]) -> list[float]:
        if len(value) > 10:
            raise _problem(f"at most 10 retries; got {len(value)}")
        for index, delay in enumerate(value):
            if not 0 <= delay <= 3600:
                raise _problem(f"each delay must be 0..3600 seconds; got {delay:g}", index)
        return value


class LogSettings(_Section):
    """``[log]``: how much to log, and in which shape."""

    level: str = Field(default="info", json_schema_extra=_meta(f"one of {', '.join(LOG_LEVELS)}"))
    format: str = Field(default="text", json_schema_extra=_meta(f"one of {', '.join(LOG_FORMATS)}"))

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        return _choice(value, LOG_LEVELS)

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        return _choice(value, LOG_FORMATS)


class SchedulerSettings(_Section):
    """``[scheduler]``: the daemon's cadence outside market hours and its housekeeping jobs."""

    idle_interval: float = _seconds(300.0, 1, 3600)
    eod_delay: float = _seconds(600.0, 0, 21600)
    checkpoint_every: float = _seconds(1800.0, 60, 86400)
    retry_after: float = _seconds(300.0, 10, 86400)


class Settings(_Section):
    """All of optterm's settings. Build with :func:`load_settings`; ``Settings()`` = defaults."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    poller: PollerSettings = Field(default_factory=PollerSettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    patterns: PatternSettings = Field(default_factory=PatternSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    _source: Path | None = PrivateAttr(default=None)

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


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """Settings could not be loaded. ``message`` is one self-contained paragraph.

    ``problems`` holds one sentence per problem (the message joins them); ``path`` is the
    config file involved, if any.
    """

    def __init__(
        self, message: str, *, problems: Sequence[str] = (), path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems) or (message,)
        self.path = path

    def __str__(self) -> str:
        return self.message


def _error(problems: Sequence[str], path: Path | None) -> ConfigError:
    shown = list(problems[:_MAX_PROBLEMS])
    if len(problems) > len(shown):
        shown.append(f"(And {len(problems) - len(shown)} more.)")
    return ConfigError(
        "Invalid optterm configuration. " + " ".join(shown), problems=problems, path=path
    )


# --------------------------------------------------------------------------------------------
# Walking the model: keys, types and field descriptions by location
# --------------------------------------------------------------------------------------------


def _without_none(annotation: Any) -> tuple[bool, Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return True, args[0]
    return False, annotation


def _list_item(annotation: Any) -> Any | None:
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@dataclass(frozen=True)
class _Target:
    """What a location in the settings tree designates."""

    model: type[BaseModel] | None  # the table at this location, if it is one
    field: FieldInfo | None  # the nearest field at or above it
    item: bool  # True when the location is an element of the field's list


def _target(loc: Sequence[str | int]) -> _Target:
    model: type[BaseModel] | None = Settings
    field: FieldInfo | None = None
    item = False
    for part in loc:
        if isinstance(part, int):
            item_type = _list_item(field.annotation) if field is not None else None
            model, item = _as_model(item_type), True
            continue
        if model is None or part not in model.model_fields:
            return _Target(None, None, False)
        field, item = model.model_fields[part], False
        model = _as_model(_without_none(field.annotation)[1])
    return _Target(model, field, item)


def _key(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _table_name(loc: Sequence[str | int]) -> str:
    if not loc:
        return "the top-level table"
    dotted = ".".join(p for p in loc if isinstance(p, str))
    return f"[[{dotted}]]" if isinstance(loc[-1], int) else f"[{dotted}]"


def _extra(field: FieldInfo | None, name: str) -> str:
    extra = field.json_schema_extra if field is not None else None
    return str(extra.get(name, "")) if isinstance(extra, dict) else ""


def _expectation(loc: Sequence[str | int]) -> str:
    target = _target(loc)
    if target.model is not None:
        return f"a table ({_table_name(loc)})"
    if target.field is None:
        return "a value of another type"
    annotation = _without_none(target.field.annotation)[1]
    if target.item:
        return _extra(target.field, "item") or "a value of another type"
    item = _list_item(annotation)
    if item is not None and _as_model(item) is not None:
        return f"an array of tables ([[{_key(loc)}]])"
    return _extra(target.field, "expect") or "a value of another type"


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _found(value: object, loc: Sequence[str | int] = ()) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {_number(value)}"
    if isinstance(value, str):
        is_url = bool(loc) and str(loc[-1]).endswith("url")
        text = _redact_url(value) if is_url else value
        if len(text) > 60:
            text = text[:57] + "..."
        return f"the string {text!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, time):
        return f"the time {value.isoformat()}"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def _bounds(field: FieldInfo | None) -> tuple[object, object]:
    low = high = None
    for constraint in field.metadata if field is not None else ():
        low = getattr(constraint, "ge", getattr(constraint, "gt", low))
        high = getattr(constraint, "le", getattr(constraint, "lt", high))
    return low, high


_RANGE_ERRORS = frozenset(
    {"greater_than_equal", "greater_than", "less_than_equal", "less_than", "finite_number"}
)


def _describe(error: Mapping[str, Any], loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    key = _key(loc)
    if kind == "extra_forbidden":
        parent, name = loc[:-1], str(loc[-1])
        model = _target(parent).model
        allowed = list(model.model_fields) if model is not None else []
        match = _suggest(name, allowed)
        hint = f"; did you mean '{_key((*parent, match))}'?" if match else "."
        return (
            f"unknown key '{key}'{hint} The keys allowed "
            f"{'in ' + _table_name(parent) if parent else 'at the top level'} are: "
            f"{', '.join(allowed)}."
        )
    if kind == "missing":
        parent = loc[:-1]
        # Array-of-tables entries are known by their index, plain tables by their header.
        where = _key(parent) if parent and isinstance(parent[-1], int) else _table_name(parent)
        return f"{where} is missing the required key '{loc[-1]}'."
    if kind == "optterm":
        return f"{key} {error['ctx']['reason']}."
    if kind in _RANGE_ERRORS:
        target = _target(loc)
        low, high = _bounds(target.field)
        unit = _extra(target.field, "unit")
        unit = f" {unit}" if unit else ""
        return (
            f"{key} must be between {_number(low)} and {_number(high)}{unit}; "
            f"got {_found(value, loc)}."
        )
    if kind == "too_short":
        return f"{key} must not be empty; give {_expectation(loc)}."
    if kind.endswith(("_type", "_parsing")) or kind in {"int_from_float", "is_instance_of"}:
        return f"{key} expects {_expectation(loc)}; got {_found(value, loc)}."
    # Anything not anticipated above: pydantic's one-line summary, never its full dump.
    return f"{key}: {error['msg']}."


# --------------------------------------------------------------------------------------------
# Environment overrides
# --------------------------------------------------------------------------------------------


def _env_keys() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Map every valid variable name to its key path: (leaf keys, section tables)."""
    leaves: dict[str, tuple[str, ...]] = {}
    sections: dict[str, tuple[str, ...]] = {}

    def walk(model: type[BaseModel], loc: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            sub_loc = (*loc, name)
            env_name = ENV_PREFIX + "_".join(sub_loc).upper()
            sub_model = _as_model(field.annotation)
            if sub_model is None:
                leaves[env_name] = sub_loc
            else:
                sections[env_name] = sub_loc
                walk(sub_model, sub_loc)

    walk(Settings, ())
    return leaves, sections


def is_reserved_env_name(name: str) -> bool:
    """True for ``OPTTERM_*`` names that belong to other parts of optterm, not to settings."""
    upper = name.upper()
    return upper in RESERVED_ENV_NAMES or upper.startswith(RESERVED_ENV_PREFIXES)


class _EnvValueError(Exception):
    pass


def _coerce_scalar(raw: str, annotation: Any, expect: str) -> Any:
    text = raw.strip()
    # Strings, and the date/time types whose model validators parse strings strictly, pass
    # through; only numbers need converting before the strict model sees them.
    if annotation in (str, date, time, datetime):
        return text
    try:
        return TypeAdapter(annotation).validate_python(text)
    except ValidationError:
        raise _EnvValueError(f"expects {expect}; got {raw!r}") from None


def _coerce_watch(raw: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for index, entry in enumerate(part.strip() for part in raw.split(",") if part.strip()):
        pieces = [piece.strip() for piece in entry.split(":")]
        try:
            if len(pieces) > 3 or not pieces[0]:
                raise ValueError
            numbers = [int(piece) for piece in pieces[1:]]
        except ValueError:
            raise _EnvValueError(
                f"item {index} ({entry!r}) must be written SYMBOL[:EXPIRIES[:STRIKES]] with "
                "whole numbers, like NIFTY:3:50; items are separated by commas"
            ) from None
        item: dict[str, Any] = {"symbol": pieces[0]}
        item.update(zip(("expiries", "strikes"), numbers, strict=False))
        items.append(item)
    return items


def _coerce_env(raw: str, loc: tuple[str, ...]) -> Any:
    field = _target(loc).field
    assert field is not None  # loc comes from walking the model
    optional, annotation = _without_none(field.annotation)
    if optional and not raw.strip():
        return None
    item = _list_item(annotation)
    if item is WatchItem:
        return _coerce_watch(raw)
    if item is not None:
        parts = [part for part in raw.split(",") if part.strip()]
        try:
            return [_coerce_scalar(part, item, _extra(field, "item")) for part in parts]
        except _EnvValueError as exc:
            raise _EnvValueError(f"{exc} (as one of the comma-separated items)") from None
    return _coerce_scalar(raw, annotation, _extra(field, "expect"))


def _env_overrides(
    environ: Mapping[str, str], labels: Mapping[str, str]
) -> tuple[dict[tuple[str, ...], Any], dict[tuple[str, ...], str], list[str]]:
    """Read ``OPTTERM_*`` variables: (values by key path, origin label by key path, problems)."""
    leaves, sections = _env_keys()
    values: dict[tuple[str, ...], Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    problems: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or is_reserved_env_name(upper):
            continue
        if upper in sections:
            loc = sections[upper]
            model = _target(loc).model
            keys = ", ".join(
                f"{upper}_{key.upper()}" for key in (model.model_fields if model else ())
            )
            problems.append(
                f"{_origin(name, labels)} names the table {_table_name(loc)}, not a key; "
                f"set one of {keys}."
            )
            continue
        if upper not in leaves:
            match = _suggest(upper, leaves)
            hint = f"; did you mean {match}?" if match else "."
            problems.append(
                f"{_origin(name, labels)} does not name an optterm setting{hint} "
                f"Settings are {ENV_PREFIX}<SECTION>_<KEY> for the keys in "
                "config.example.toml; unset the variable or fix its name."
            )
            continue
        loc = leaves[upper]
        try:
            values[loc] = _coerce_env(environ[name], loc)
        except _EnvValueError as exc:
            problems.append(f"{_origin(name, labels)}: {_key(loc)} {exc}.")
            continue
        origins[loc] = _origin(name, labels)
    return values, origins, problems


def _origin(name: str, labels: Mapping[str, str]) -> str:
    """How to name where an override came from: a CLI flag, or an environment variable."""
    flag = labels.get(name)
    return f"Command-line option {flag}" if flag else f"Environment variable {name}"


def _apply(data: dict[str, Any], overrides: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    merged = dict(data)
    for loc, value in overrides.items():
        table = merged
        for part in loc[:-1]:
            child = table.get(part, {})
            if not isinstance(child, dict):
                # The file has a non-table here; leave it so its own error is reported.
                break
            table[part] = child = dict(child)
            table = child
        else:
            table[loc[-1]] = value
    return merged


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------

_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _locate_file(path: Path | str | None, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """The file to read and how it was chosen (for messages); None when there is none."""
    if path is not None:
        return Path(path).expanduser().absolute(), "named explicitly"
    named = next((value for name, value in environ.items() if name.upper() == "OPTTERM_CONFIG"), "")
    if named.strip():
        return Path(named.strip()).expanduser().absolute(), "named by OPTTERM_CONFIG"
    default = paths.config_file()
    if default.exists():
        return default, "the default location"
    return None, ""


def _read_toml(file: Path, how: str) -> dict[str, Any]:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {file} ({how}) does not exist. Create it (config.example.toml "
            "documents every key), or name another file.",
            path=file,
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"Config file {file} ({how}) is a directory; name the TOML file inside it.",
            path=file,
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Config file {file} ({how}) cannot be read: {exc.strerror or exc}.", path=file
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {file} is not UTF-8 text (bad byte at offset {exc.start}); "
            "TOML files must be UTF-8.",
            path=file,
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        complaint = str(exc)
        match = _TOML_POSITION_RE.search(complaint)
        if match is None:
            where = complaint.replace("(at end of document)", "at the end of the file").strip()
        else:
            line, column = int(match.group(1)), int(match.group(2))
            source_lines = text.splitlines()
            shown = source_lines[line - 1].strip() if 0 < line <= len(source_lines) else ""
            shown = _redact_url(shown)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            where = f"{complaint[: match.start()]} at line {line}, column {column}"
            if shown:
                where += f" (the line reads: {shown})"
        raise ConfigError(
            f"Config file {file} is not valid TOML: {where}. Fix the syntax and try again.",
            path=file,
        ) from None


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def load_settings(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate settings; raise :class:`ConfigError` on any problem.

    ``path`` is an explicit config file (the CLI's ``--config``); ``env`` replaces
    ``os.environ`` as the source of ``OPTTERM_*`` variables (the default config location
    still comes from the process environment, through platformdirs). ``labels`` names the
    command-line flag behind an ``OPTTERM_*`` entry of ``env`` so messages say ``--scenario``
    rather than a variable the user never set. Nothing is written.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    file, how = _locate_file(path, environ)
    data = _read_toml(file, how) if file is not None else {}
    overrides, origins, problems = _env_overrides(environ, labels or {})
    try:
        settings = Settings.model_validate(_apply(data, overrides))
    except ValidationError as exc:
        problems += _translate(exc, file, origins)
    else:
        if not problems:
            settings._source = file
            return settings
    raise _error(problems, file) from None


def _translate(
    exc: ValidationError, file: Path | None, origins: Mapping[tuple[str, ...], str]
) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        error_loc = tuple(error["loc"])
        loc = error_loc
        if error["type"] == "optterm":
            loc = (*error_loc, *error["ctx"].get("subloc", ()))
        problems.append(f"{_source_of(loc, error_loc, file, origins)}: {_describe(error, loc)}")
    return problems


def _source_of(
    loc: tuple[str | int, ...],
    error_loc: tuple[str | int, ...],
    file: Path | None,
    origins: Mapping[tuple[str, ...], str],
) -> str:
    for size in range(len(loc), 0, -1):
        if loc[:size] in origins:
            return origins[loc[:size]]
    # A cross-field check (close before open) can fail because of a variable that set the
    # *other* field; name it too so the reader looks in both places.
    related = ", ".join(sorted(v for k, v in origins.items() if k[: len(error_loc)] == error_loc))
    if file is None:
        return related or "The built-in defaults"
    if related:
        return f"Config file {file} together with {related[0].lower()}{related[1:]}"
    return f"Config file {file}"
