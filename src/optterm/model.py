"""Domain model shared by providers, engine, store and front ends.

A chain travels as aligned numpy columns (one array per field, indexed by strike) so analytics are
vectorised and storing a chain is one write. Every array is float64 and NaN means "no value": a
strike listed with only a CE leg has NaN in all PE columns, and an IV the provider did not give is
NaN, never 0.

One long module (over 600 lines): these are the types every part of optterm shares, and one
place for all of them keeps the import graph flat (model imports nothing of optterm).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:

    class _Numpy:  # numpy on first use: `alerts list`, `patterns`, `status` start 0.1 s sooner
        def __getattr__(self, name: str) -> Any:
            globals()["np"] = numpy = __import__("numpy")  # from now on `np` is numpy itself
            return getattr(numpy, name)

    np = _Numpy()

__all__ = [
    "CHAIN_STRIKES",
    "CONTRACT_SIZE",
    "CONTRACT_UNIT",
    "LEG_FIELDS",
    "UNDERLYING_FUTURE",
    "ChainSnapshot",
    "Feed",
    "Legs",
    "ProviderHealth",
    "Quote",
    "Segment",
    "Side",
    "Underlying",
]


class Segment(enum.StrEnum):
    INDEX = "index"
    EQUITY = "equity"
    COMMODITY = "commodity"
    CURRENCY = "currency"


class Side(enum.StrEnum):
    CE = "CE"
    PE = "PE"


class Feed(enum.StrEnum):
    """How live the data is; shown next to every number on screen."""

    LIVE = "LIVE"
    DELAYED = "DELAYED"
    SIMULATED = "SIMULATED"


@dataclass(frozen=True, slots=True)
class Underlying:
    symbol: str
    segment: Segment
    lot_size: int
    strike_step: float
    exchange: str = "NSE"

    def __post_init__(self) -> None:
        if self.lot_size <= 0:
            raise ValueError(f"{self.symbol}: lot size must be positive, got {self.lot_size}")
        if self.strike_step <= 0:
            raise ValueError(f"{self.symbol}: strike step must be positive, got {self.strike_step}")


# Per-leg columns, in storage order. Units: oi, oi_change and volume in contracts as the exchange
# reports them (fractional OI exists after lot-size changes); ltp, bid, ask and prev_close (the
# previous session's closing price) in rupees; iv as an annualised decimal fraction (0.1234 =
# 12.34 %); bid_qty and ask_qty, the quantity on the best bid and offer, in units of the
# underlying as the exchange reports them (a multiple of the lot size). Append only: the first
# seven are the original columns, and older code and stored data know only those.
LEG_FIELDS: tuple[str, ...] = (
    "oi",
    "oi_change",
    "volume",
    "ltp",
    "bid",
    "ask",
    "iv",
    "prev_close",
    "bid_qty",
    "ask_qty",
)
# A column a provider did not give: filled with NaN of the right length when the Legs is made.
_NO_COLUMN: Any = object()
# Meta key of a window (`ChainSnapshot.window`): how many strikes the chain it was cut from had.
CHAIN_STRIKES = "chain_strikes"
# Meta key of an option on futures (MCX, and CDS as Angel One lists it): the trading symbol of the
# futures contract the options are written on. Its price is the chain's `spot`, which is then a
# forward: analytics price Black-76 on it as it is, never a carry forward from it. Meta, not a
# field, so every stored snapshot (and so replay) keeps it without a schema change.
UNDERLYING_FUTURE = "underlying_future"
# Meta keys of a contract counted in lots of a fixed size that is not one unit (CDS: a lot is one
# contract of 1,000 USD, and the premium is quoted per USD): how many units one contract is, and
# of what. Absent for NSE equity and index options, whose lot size is already in units.
CONTRACT_SIZE = "contract_size"
CONTRACT_UNIT = "contract_unit"


def _frozen_column(name: str, values: object, n: int | None) -> np.ndarray:
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"column {name!r} has {arr.shape[0]} values, expected {n}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class Legs:
    """One side (CE or PE) of a chain: aligned float64 columns, NaN where there is no value."""

    oi: np.ndarray
    oi_change: np.ndarray
    volume: np.ndarray
    ltp: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    iv: np.ndarray
    # Optional: a provider (or old stored data) without them leaves them out, and they are NaN.
    prev_close: np.ndarray = field(default_factory=lambda: _NO_COLUMN)
    bid_qty: np.ndarray = field(default_factory=lambda: _NO_COLUMN)
    ask_qty: np.ndarray = field(default_factory=lambda: _NO_COLUMN)

    def __post_init__(self) -> None:
        # One copy of all the columns into one frozen block, each column a row of it: per
        # column, numpy's per-call cost was most of building a chain (several Legs per chain
        # per tick). Views of a frozen block cannot be made writeable again.
        given = [getattr(self, name) for name in LEG_FIELDS]
        present = [v for v in given if v is not _NO_COLUMN]
        try:
            block = np.array(present, dtype=np.float64)
        except (ValueError, TypeError):
            block = None  # ragged or not numbers: the column by column path says which
        if block is not None and block.ndim == 2 and present:
            block.flags.writeable = False
            rows = iter(block)
            nan: np.ndarray | None = None
            for name, value in zip(LEG_FIELDS, given, strict=True):
                if value is _NO_COLUMN:
                    if nan is None:
                        nan = _frozen_column("nan", np.full(block.shape[1], np.nan), None)
                    object.__setattr__(self, name, nan)
                else:
                    object.__setattr__(self, name, next(rows))
            return
        n = None
        missing = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is _NO_COLUMN:
                missing.append(f.name)
                continue
            col = _frozen_column(f.name, value, n)
            n = col.shape[0]
            object.__setattr__(self, f.name, col)
        if missing:
            nan = _frozen_column("nan", np.full(n or 0, np.nan), None)
            for name in missing:
                object.__setattr__(self, name, nan)

    def __len__(self) -> int:
        return int(self.oi.shape[0])

    @classmethod
    def of_block(cls, block: np.ndarray) -> Legs:
        """Legs whose columns are the rows of `block`, a float64 array of shape
        (len(LEG_FIELDS), n) in LEG_FIELDS order, frozen (not writeable, nor is the array it
        is a view of): what the constructor makes of the columns, without copying them again."""
        if block.dtype != np.float64 or block.ndim != 2 or block.shape[0] != len(LEG_FIELDS):
            raise ValueError(f"a Legs block is float64 ({len(LEG_FIELDS)}, n), got {block.shape}")
        base = block if block.base is None else block.base
        if block.flags.writeable or (isinstance(base, np.ndarray) and base.flags.writeable):
            raise ValueError("a Legs block must be frozen (writeable = False)")
        legs = object.__new__(cls)
        for name, row in zip(LEG_FIELDS, block, strict=True):
            object.__setattr__(legs, name, row)
        return legs

    @classmethod
    def empty(cls, n: int) -> Legs:
        nan = np.full(n, np.nan)
        return cls(*(nan for _ in LEG_FIELDS))

    def take(self, index: slice | np.ndarray) -> Legs:
        if isinstance(index, slice):
            # A slice of frozen columns is a frozen view of them, already checked: no copy and
            # no check again (the window of every chain, every tick, is one).
            cut = object.__new__(Legs)
            for name in LEG_FIELDS:
                object.__setattr__(cut, name, getattr(self, name)[index])
            return cut
        return Legs(*(self.column(n)[index] for n in LEG_FIELDS))

    def column(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def present(self) -> np.ndarray:
        """Mask of strikes where this side has a listed contract."""
        return ~(np.isnan(self.oi) & np.isnan(self.ltp))

    def equals(self, other: Legs) -> bool:
        return all(
            np.array_equal(self.column(n), other.column(n), equal_nan=True) for n in LEG_FIELDS
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """One price shown beside a chain (the future of the expiry's month, India VIX), with where
    and when it came from: it can come from another request, or another source, than the chain.

    `value` and `prev_close` (the previous session's close) are NaN when not given; `ts` is the
    source's own time of `value` (UTC-aware); `source` names the provider (and, where it says
    something, the instrument), e.g. "angelone NIFTY28JUL26FUT".
    """

    value: float
    prev_close: float
    source: str
    ts: datetime

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None or self.ts.utcoffset() is None:
            raise ValueError(f"quote time must be timezone-aware, got {self.ts!r}")

    @property
    def change(self) -> float:
        """`value` minus the previous close (NaN when either is missing)."""
        return self.value - self.prev_close


@dataclass(frozen=True, slots=True, eq=False)
class ChainSnapshot:
    """One option chain (one underlying, one expiry) as the provider reported it at one moment.

    `provider_ts` is the provider's own timestamp of the data (UTC-aware); `fetched_at` is when we
    received it. The age shown to a trader is measured from `provider_ts`.

    What a trader reads around the chain, each optional (NaN, None or empty when the provider has
    no source for it, never a made-up value): `prev_close`, the underlying's previous close (the
    day's change is measured from it); `futures`, the future of the expiry's month; `vix`, India
    VIX; `expiries`, the expiries the provider listed for the symbol when it was asked (to say
    which of them this chain is).
    """

    symbol: str
    expiry: date
    provider: str
    feed: Feed
    provider_ts: datetime
    fetched_at: datetime
    spot: float
    lot_size: int
    strikes: np.ndarray
    ce: Legs
    pe: Legs
    meta: dict[str, str] = field(default_factory=dict)
    prev_close: float = math.nan
    futures: Quote | None = None
    vix: Quote | None = None
    expiries: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        for name in ("provider_ts", "fetched_at"):
            ts = getattr(self, name)
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got {ts!r}")
        object.__setattr__(self, "prev_close", float(self.prev_close))
        object.__setattr__(self, "expiries", tuple(sorted(set(self.expiries))))
        strikes = _frozen_column("strikes", self.strikes, None)
        if strikes.size and (np.isnan(strikes).any() or np.any(np.diff(strikes) <= 0)):
            raise ValueError(f"{self.symbol} {self.expiry}: strikes must be strictly ascending")
        if len(self.ce) != strikes.size or len(self.pe) != strikes.size:
            raise ValueError(
                f"{self.symbol} {self.expiry}: {strikes.size} strikes but "
                f"{len(self.ce)} CE and {len(self.pe)} PE rows"
            )
        object.__setattr__(self, "strikes", strikes)
        object.__setattr__(self, "feed", Feed(self.feed))

    def __len__(self) -> int:
        return int(self.strikes.shape[0])

    def side(self, side: Side | str) -> Legs:
        return self.ce if Side(side) is Side.CE else self.pe

    def atm_index(self) -> int:
        """Index of the strike nearest spot (ties go to the lower strike)."""
        if not len(self):
            raise ValueError(f"{self.symbol} {self.expiry}: empty chain has no ATM strike")
        return int(np.argmin(np.abs(self.strikes - self.spot)))

    def window(self, strikes_each_side: int) -> ChainSnapshot:
        """The chain cut to `strikes_each_side` strikes either side of ATM. Its meta keeps how
        many strikes the whole chain had (`chain_strikes`), so a stored window says it is one."""
        if strikes_each_side < 0:
            raise ValueError("strikes_each_side must be >= 0")
        atm = self.atm_index()
        lo = max(0, atm - strikes_each_side)
        hi = min(len(self), atm + strikes_each_side + 1)
        cut = self.take(slice(lo, hi))
        cut.meta.setdefault(CHAIN_STRIKES, str(len(self)))
        return cut

    @property
    def chain_strikes(self) -> int:
        """How many strikes the whole chain had (this snapshot's own count unless it is a
        window of it)."""
        try:
            return int(self.meta.get(CHAIN_STRIKES, len(self)))
        except ValueError:
            return len(self)

    def take(self, index: slice | np.ndarray) -> ChainSnapshot:
        if isinstance(index, slice):
            # A run of strictly ascending strikes is strictly ascending, and every field was
            # checked and normalised when this chain was made: only the columns are cut.
            cut = object.__new__(ChainSnapshot)
            for f in _SNAPSHOT_FIELDS:
                object.__setattr__(cut, f, getattr(self, f))
            object.__setattr__(cut, "strikes", self.strikes[index])
            object.__setattr__(cut, "ce", self.ce.take(index))
            object.__setattr__(cut, "pe", self.pe.take(index))
            object.__setattr__(cut, "meta", dict(self.meta))
            return cut
        return replace(
            self,
            strikes=self.strikes[index],
            ce=self.ce.take(index),
            pe=self.pe.take(index),
            meta=dict(self.meta),
        )

    def with_context(self, **changes: object) -> ChainSnapshot:
        """The same chain with other context (`prev_close`, `futures`, `vix`, `expiries`, `meta`):
        a provider that learns them from another request adds them this way."""
        allowed = {"prev_close", "futures", "vix", "expiries", "meta"}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"not context fields: {', '.join(sorted(unknown))}")
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def change(self) -> float:
        """Spot minus the previous close: the day's move (NaN when either is missing)."""
        return self.spot - self.prev_close

    @property
    def underlying_future(self) -> str | None:
        """The futures contract the options are written on (its price is `spot`), or None
        when the options are on a spot index or stock."""
        return self.meta.get(UNDERLYING_FUTURE) or None

    @property
    def contract(self) -> tuple[float, str] | None:
        """(units per contract, unit) where the exchange counts in contracts of a fixed size
        (a CDS lot of 1 is 1,000 USD); None where the lot size is already in units."""
        try:
            size = float(self.meta[CONTRACT_SIZE])
        except (KeyError, ValueError):
            return None
        return (size, self.meta.get(CONTRACT_UNIT, "")) if size > 0 else None

    @property
    def expiry_rank(self) -> tuple[int, int] | None:
        """(k, n): this chain is the k-th (1 = nearest) of the n expiries listed; None when the
        provider's list is unknown or does not hold this expiry."""
        if self.expiry not in self.expiries:
            return None
        return self.expiries.index(self.expiry) + 1, len(self.expiries)

    def same_data(self, other: ChainSnapshot) -> bool:
        """True when both carry the same market data (ignoring fetch time)."""
        return (
            self.symbol == other.symbol
            and self.expiry == other.expiry
            and self.provider_ts == other.provider_ts
            and self.spot == other.spot
            and np.array_equal(self.strikes, other.strikes)
            and self.ce.equals(other.ce)
            and self.pe.equals(other.pe)
            and _same_float(self.prev_close, other.prev_close)
            and _same_quote(self.futures, other.futures)
            and _same_quote(self.vix, other.vix)
            and self.expiries == other.expiries
        )


# What `ChainSnapshot.take` carries over as it is (the columns it cuts are set after).
_SNAPSHOT_FIELDS = tuple(f.name for f in fields(ChainSnapshot))


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _same_quote(a: Quote | None, b: Quote | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        _same_float(a.value, b.value)
        and _same_float(a.prev_close, b.prev_close)
        and a.source == b.source
        and a.ts == b.ts
    )


@dataclass(slots=True)
class ProviderHealth:
    """One provider's record for one exchange-local day, as the failover counts it."""

    provider: str
    day: date
    requests: int = 0
    successes: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # error kind -> count
    latency_ms_sum: float = 0.0  # over successful requests
    latency_ms_last: float | None = None
    breaker: str = "closed"
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None

    @property
    def latency_ms_mean(self) -> float | None:
        return self.latency_ms_sum / self.successes if self.successes else None


# --- analytics and patterns --------------------------------------------------------------------


class Buildup(enum.IntEnum):
    """OI buildup of one leg between two snapshots, from the signs of its price and OI changes.

    Stored per strike as small integers (0 = no classification: a leg missing in either snapshot,
    or OI or price unchanged)."""

    NONE = 0
    LONG_BUILDUP = 1  # price up, OI up: fresh longs
    SHORT_BUILDUP = 2  # price down, OI up: fresh writers
    SHORT_COVERING = 3  # price up, OI down: writers buying back
    LONG_UNWINDING = 4  # price down, OI down: longs exiting

    @property
    def label(self) -> str:
        return "" if self is Buildup.NONE else self.name.replace("_", " ").lower()


class Bias(enum.StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    NEUTRAL = "neutral"
    RANGE = "range"


@dataclass(frozen=True, slots=True)
class MarketView:
    """A one-line bias with the reasons that produced it, so the trader sees why."""

    bias: Bias
    score: float  # > 0 bullish, < 0 bearish; the sum of the reasons' votes
    reasons: tuple[str, ...]

    def line(self) -> str:
        if not self.reasons:
            return self.bias.value
        return f"{self.bias.value}: " + "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Chain-level analytics of one snapshot. NaN (floats) or None where not computable.

    Strikes are prices; OI and volume in contracts; IVs annualised decimals; premiums in rupees per
    unit of the underlying; gamma exposure in rupees of delta per 1 % spot move."""

    symbol: str
    expiry: date
    ts: datetime  # the snapshot's provider_ts
    provider: str
    feed: Feed
    spot: float
    forward: float
    forward_source: str  # "parity" (from near-the-money quotes), "futures" or "carry"
    t_years: float  # time to expiry in years (calendar, to the settlement: `[market] close`)
    ce_oi: float
    pe_oi: float
    ce_oi_change: float
    pe_oi_change: float
    ce_volume: float
    pe_volume: float
    pcr_oi: float
    pcr_volume: float
    pcr_oi_change: float
    max_pain: float
    support: float  # strike of the highest put OI
    resistance: float  # strike of the highest call OI
    support_change: float  # strike of the largest put OI addition
    resistance_change: float  # strike of the largest call OI addition
    atm_strike: float
    atm_iv: float
    straddle: float  # ATM call + put premium
    rr25: float  # 25-delta risk reversal: IV(25Δ call) - IV(25Δ put)
    gex: float  # net gamma exposure at spot, under the configured sign convention
    gamma_flip: float  # spot level where net gamma exposure changes sign (NaN if none in range)
    call_wall: float  # strike with the largest call gamma exposure
    put_wall: float  # strike with the largest put gamma exposure
    iv_rank: float | None  # 0..100 over the stored history, None until enough exists
    iv_percentile: float | None
    view: MarketView

    @property
    def max_pain_distance_pct(self) -> float:
        return (self.spot / self.max_pain - 1.0) * 100.0 if self.max_pain else float("nan")


class PatternKind(enum.StrEnum):
    CALL_BUILDUP = "CALL_BUILDUP"
    PUT_BUILDUP = "PUT_BUILDUP"
    CALL_UNWINDING = "CALL_UNWINDING"
    PUT_UNWINDING = "PUT_UNWINDING"
    GAMMA_SQUEEZE = "GAMMA_SQUEEZE"
    MAX_PAIN = "MAX_PAIN"
    UNUSUAL_ACTIVITY = "UNUSUAL_ACTIVITY"
    MOMENTUM_SHIFT = "MOMENTUM_SHIFT"


class Direction(enum.StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    NEUTRAL = "neutral"


class Strength(enum.StrEnum):
    WEAK = "WEAK"
    MODERATE = "MODERATE"
    STRONG = "STRONG"
    VERY_STRONG = "VERY_STRONG"

    @classmethod
    def from_confidence(cls, confidence: float) -> Strength:
        """Bands of the 0-100 confidence: <50 weak, <70 moderate, <85 strong, else very strong."""
        if confidence >= 85:
            return cls.VERY_STRONG
        if confidence >= 70:
            return cls.STRONG
        if confidence >= 50:
            return cls.MODERATE
        return cls.WEAK


@dataclass(frozen=True, slots=True)
class Signal:
    """One detected pattern. `key` identifies it across ticks (kind, chain and anchor strike) so a
    pattern that persists updates one signal instead of emitting a new one every tick."""

    key: str
    kind: PatternKind
    symbol: str
    expiry: date
    direction: Direction
    strikes: tuple[float, ...]
    confidence: int  # 0..100, computed from `evidence` as docs/patterns.md states
    strength: Strength
    evidence: tuple[tuple[str, float], ...]  # named numbers that produced the confidence
    summary: str  # one line a trader reads
    first_seen: datetime
    last_seen: datetime
    expires_at: datetime
    updates: int = 0  # how many ticks refreshed it after the first
    provider: str = ""
    feed: Feed = Feed.SIMULATED

    def active(self, now: datetime) -> bool:
        return now < self.expires_at


# --- alerts --------------------------------------------------------------------------------------


class AlertKind(enum.StrEnum):
    PRICE = "PRICE"  # spot, or an option's LTP when strike and side are given
    OI_CHANGE = "OI_CHANGE"  # a leg's OI change on the day (or the chain's, without a strike)
    VOLUME_SPIKE = "VOLUME_SPIKE"  # a leg's (or chain's) volume in the last window / its average
    PATTERN_DETECTED = "PATTERN_DETECTED"  # a signal of `pattern` with confidence >= threshold
    VOLATILITY = "VOLATILITY"  # a leg's IV, the ATM IV or the IV rank (`metric`)
    PCR = "PCR"  # PCR by OI
    MAX_PAIN_SHIFT = "MAX_PAIN_SHIFT"  # max pain moved by at least `threshold` points
    STALE_FEED = "STALE_FEED"  # no fresh data for `threshold` seconds during market hours
    SCAN_ENTER = "SCAN_ENTER"  # a name entered a saved scan (an event's kind, never a rule's)
    STRATEGY = "STRATEGY"  # a saved strategy's P&L or Greek (`metric`), priced on the chains


class Condition(enum.StrEnum):
    ABOVE = "ABOVE"  # fires when the value crosses up through the threshold
    BELOW = "BELOW"  # fires when it crosses down through it
    EQUALS = "EQUALS"  # fires on entering threshold ± tolerance
    PERCENT_CHANGE = "PERCENT_CHANGE"  # |change over `window_s`| >= threshold percent


class RuleState(enum.StrEnum):
    ARMED = "armed"
    COOLING = "cooling down"
    FIRED = "fired"  # one-shot rules after firing, or waiting to re-arm past the hysteresis band
    DISABLED = "disabled"


class Delivery(enum.StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"  # being sent; a crash here leaves it FAILED on restart, never re-sent
    SENT = "SENT"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Channel:
    ref: str  # what the rule stores
    label: str  # what people see (redacted)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert rule. `channels` are references, never secrets: "tag:NAME" names a URL kept in
    the config's [notify.channels]; "keyring:ID" a URL kept in the secret store; "app" the TUI."""

    symbol: str
    kind: AlertKind
    condition: Condition
    threshold: float
    id: int | None = None
    expiry: date | None = None
    strike: float | None = None
    side: Side | None = None
    metric: str = ""  # PRICE: spot|ltp; VOLATILITY: iv|atm_iv|iv_rank; else ""
    pattern: PatternKind | None = None  # PATTERN_DETECTED only
    hysteresis: float = 0.0  # ABOVE/BELOW re-arm band, in the value's units
    tolerance: float = 0.0  # EQUALS band
    window_s: float = 300.0  # PERCENT_CHANGE and VOLUME_SPIKE window
    cooldown_s: float = 300.0
    recurring: bool = True  # False: one-shot, disabled after it fires
    active_from: time | None = None  # None: market hours
    active_to: time | None = None
    channels: tuple[str, ...] = ("app",)
    channel_labels: tuple[str, ...] = ()  # redacted, for display
    owner: str = ""
    enabled: bool = True
    note: str = ""  # the one-line form it was created from, or a description
    created_at: datetime | None = None
    strategy: str | None = None  # STRATEGY: the saved strategy's name


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One firing of a rule, with the values that made it fire."""

    rule_id: int
    symbol: str
    kind: AlertKind
    fired_at: datetime  # the data's time (provider_ts), UTC-aware
    value: float
    threshold: float
    title: str
    body: str
    provider: str
    feed: Feed
    context: tuple[tuple[str, float | str], ...] = ()
    id: int | None = None
