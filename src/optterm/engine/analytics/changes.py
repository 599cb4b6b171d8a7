"""ΔOI and buildups over one chosen interval, and the history they are measured from.

A leg's buildup compares its OI and premium now with the same leg at the interval's start (the
baseline); its ΔOI is that same OI difference. So the ΔOI shown beside a buildup always carries
the buildup's OI sign: long/short buildup ⇔ ΔOI ≥ +1, short covering/long unwinding ⇔ ΔOI ≤ −1.

The intervals (`OiInterval`) and their baselines:

* **day** (the default): OI since the previous close, as the provider reports the day's change
  (OI − ΔOI is the close's OI, exactly); premium since the previous close where the provider gives
  one, else since the leg's first premium seen today (the label says so). A provider with no day
  change (Angel One) gets both from the first chain seen today.
* **5m / 15m / 30m**: the newest chain at or before now − N minutes, of the same exchange day.
  Until the session is that old, the oldest chain of the day, labelled "since 10:12:00 (3m of
  15m)".
* **a pinned time HH:MM**: the newest chain at or before that time today; if there is none, the
  first one after it (labelled).

`ChangeBook` keeps, per chain and in memory, what those baselines need: one sample (strikes, OI
and last price per side) at most every `SAMPLE_SPACING_S` seconds over the longest minute
interval, the day's first sample and the pinned one: at most `MAX_SAMPLES` samples per chain
whatever the poll rate. It is seeded from the store's snapshots when it first sees a chain, so a
restart in the middle of a session measures from where the history is.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol

import numpy as np

from optterm.config import MarketSettings
from optterm.market import OI_INTERVAL_MINUTES, OiInterval
from optterm.model import Buildup, ChainSnapshot, Feed, Legs

__all__ = [
    "MAX_SAMPLES",
    "SAMPLE_SPACING_S",
    "ChangeBasis",
    "ChangeBook",
    "Changes",
    "LegChange",
    "SnapshotHistory",
    "between",
    "classify",
    "day_change",
    "previous_close",
]

log = logging.getLogger("optterm.analytics")

SAMPLE_SPACING_S = 15.0
_KEEP = timedelta(minutes=max(OI_INTERVAL_MINUTES))
# The ring holds one sample per spacing over the longest interval, plus the one at its start.
MAX_SAMPLES = int(_KEEP.total_seconds() // SAMPLE_SPACING_S) + 2
# A change smaller than one contract, or than half a paisa of premium, is no change: the table
# shows ΔOI to the contract, so a buildup is never printed beside a ΔOI that reads "+0".
OI_STEP = 1.0
PRICE_STEP = 0.005
# How far before a pinned time the store is searched for the chain in force at that time.
_PIN_LOOKBACK = timedelta(minutes=30)
_NAN = float("nan")


class SnapshotHistory(Protocol):
    """Where baselines are seeded from (the store's `snapshots` repository)."""

    def iterate(
        self, symbol: str, expiry: date | None, start: datetime, end: datetime
    ) -> AsyncIterator[ChainSnapshot]: ...


def previous_close(legs: Legs) -> np.ndarray | None:
    """Each strike's previous-day closing premium, when the snapshot carries one (None: it does
    not). The one place the day interval reads it from."""
    col = getattr(legs, "prev_close", None)
    if col is None:
        return None
    arr = np.asarray(col, dtype=np.float64)
    return arr if np.isfinite(arr).any() else None


def classify(d_oi: np.ndarray, d_px: np.ndarray) -> np.ndarray:
    """Buildup codes from OI and premium changes (NaN or a change below a step: no class).

    Premium up & OI up: long buildup; down & up: short buildup; up & down: short covering;
    down & down: long unwinding."""
    up_oi, dn_oi = d_oi >= OI_STEP, d_oi <= -OI_STEP
    up_px, dn_px = d_px >= PRICE_STEP, d_px <= -PRICE_STEP
    out = np.zeros(d_oi.shape, dtype=np.int8)
    out[up_px & up_oi] = Buildup.LONG_BUILDUP
    out[dn_px & up_oi] = Buildup.SHORT_BUILDUP
    out[up_px & dn_oi] = Buildup.SHORT_COVERING
    out[dn_px & dn_oi] = Buildup.LONG_UNWINDING
    return out


@dataclass(frozen=True, slots=True)
class ChangeBasis:
    """What a chain's ΔOI and buildups are measured against, in words and as a time."""

    interval: OiInterval
    label: str  # "since prev close", "since 10:05:00 (15m)", "since 10:12:00 (3m of 15m)" …
    since: datetime | None  # the baseline chain's time; None for the provider's day change
    complete: bool  # the baseline is as old as the interval asks (or exactly the close)
    available: bool = True  # False: nothing to compare with yet; every ΔOI and buildup is blank


@dataclass(frozen=True, slots=True, eq=False)
class LegChange:
    """One side's changes over the interval, aligned with the snapshot's strikes (NaN: none)."""

    oi: np.ndarray
    price: np.ndarray
    buildup: np.ndarray  # int8 Buildup codes, from `oi` and `price`

    @classmethod
    def of(cls, d_oi: np.ndarray, d_px: np.ndarray) -> LegChange:
        return cls(d_oi, d_px, classify(d_oi, d_px))

    @classmethod
    def both(
        cls, ce_oi: np.ndarray, ce_px: np.ndarray, pe_oi: np.ndarray, pe_px: np.ndarray
    ) -> tuple[LegChange, LegChange]:
        """(CE, PE) changes, both sides classified in one pass (the same codes: `classify`
        works element by element; per side, its per-call cost was most of the work)."""
        if ce_oi.shape != pe_oi.shape:
            return cls.of(ce_oi, ce_px), cls.of(pe_oi, pe_px)
        codes = classify(np.array((ce_oi, pe_oi)), np.array((ce_px, pe_px)))
        return cls(ce_oi, ce_px, codes[0]), cls(pe_oi, pe_px, codes[1])

    def take(self, index: slice) -> LegChange:
        return LegChange(self.oi[index], self.price[index], self.buildup[index])


@dataclass(frozen=True, slots=True, eq=False)
class Changes:
    basis: ChangeBasis
    ce: LegChange
    pe: LegChange

    def side(self, side: str) -> LegChange:
        return self.ce if side == "CE" else self.pe

    def take(self, index: slice) -> Changes:
        return Changes(self.basis, self.ce.take(index), self.pe.take(index))

    @classmethod
    def none(cls, n: int, basis: ChangeBasis) -> Changes:
        nan = np.full(n, np.nan)
        return cls(basis, LegChange.of(nan, nan), LegChange.of(nan, nan.copy()))


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """What a baseline needs of one chain: its time, strikes and each side's OI and premium."""

    ts: datetime
    simulated: bool
    strikes: np.ndarray
    ce_oi: np.ndarray
    ce_ltp: np.ndarray
    pe_oi: np.ndarray
    pe_ltp: np.ndarray

    @classmethod
    def of(cls, snap: ChainSnapshot) -> Sample:
        return cls(
            snap.provider_ts,
            snap.feed is Feed.SIMULATED,
            snap.strikes,
            snap.ce.oi,
            snap.ce.ltp,
            snap.pe.oi,
            snap.pe.ltp,
        )

    @classmethod
    def kept(cls, snap: ChainSnapshot) -> Sample:
        """A sample to keep (the book's): its columns copied. A chain's own columns are rows of
        one block holding every leg field of both sides (Legs.of_block), so a view kept here
        kept all 20 rows alive for 4, for as long as the book keeps the sample (half an hour):
        that was the daemon's memory growth (bench_serve_soak)."""
        s = cls.of(snap)
        return cls(
            s.ts,
            s.simulated,
            s.strikes,
            np.array(s.ce_oi),
            np.array(s.ce_ltp),
            np.array(s.pe_oi),
            np.array(s.pe_ltp),
        )

    def at(self, strikes: np.ndarray, column: np.ndarray) -> np.ndarray:
        """`column` (one of ours) at `strikes`, NaN where this sample has no such strike."""
        if not self.strikes.size:
            return np.full(strikes.shape, np.nan)
        pos = np.minimum(np.searchsorted(self.strikes, strikes), self.strikes.size - 1)
        return np.where(self.strikes[pos] == strikes, column[pos], np.nan)


def _hms(ts: datetime, market: MarketSettings) -> str:
    return ts.astimezone(market.tz).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 60 else f"{int(seconds // 60)}m"


def between(cur: ChainSnapshot, base: Sample, basis: ChangeBasis) -> Changes:
    """Changes of `cur` against the baseline sample `base`, strike by strike."""
    k = cur.strikes
    ce, pe = LegChange.both(
        cur.ce.oi - base.at(k, base.ce_oi),
        cur.ce.ltp - base.at(k, base.ce_ltp),
        cur.pe.oi - base.at(k, base.pe_oi),
        cur.pe.ltp - base.at(k, base.pe_ltp),
    )
    return Changes(basis, ce, pe)


def day_change(
    cur: ChainSnapshot, first: Sample | None, market: MarketSettings | None = None
) -> Changes:
    """Changes on the day. OI: the provider's change on the day, else against `first` (the
    chain's first sample of today). Premium: against the previous close, else against `first`.
    The label names what each is measured from; see the module docstring."""
    market = market or MarketSettings()
    interval = OiInterval()
    n, k = len(cur), cur.strikes
    first = first if first is not None and first.ts < cur.provider_ts else None
    has_day = bool(np.isfinite(cur.ce.oi_change).any() or np.isfinite(cur.pe.oi_change).any())
    if not has_day and first is None:
        basis = ChangeBasis(interval, "day: no change on the day yet", None, False, False)
        return Changes.none(n, basis)
    legs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    closes = True
    for side, now in (("ce", cur.ce), ("pe", cur.pe)):
        if has_day:
            d_oi = now.oi_change
        else:
            assert first is not None
            d_oi = now.oi - first.at(k, getattr(first, f"{side}_oi"))
        close = previous_close(now)
        if close is not None:
            d_px = now.ltp - close
        else:
            closes = False
            base = None if first is None else first.at(k, getattr(first, f"{side}_ltp"))
            d_px = np.full(n, np.nan) if base is None else now.ltp - base
        legs[side] = (d_oi, d_px)
    ce, pe = LegChange.both(*legs["ce"], *legs["pe"])
    when = "" if first is None or (has_day and closes) else _hms(first.ts, market)
    if has_day and closes:
        label = "since prev close"
    elif has_day:
        tail = f"premium since {when}" if first else "premium change n/a: no earlier chain today"
        label = f"since prev close ({tail})"
    elif closes:
        label = f"since {when} (OI: first chain today, no day change given; premium: prev close)"
    else:
        label = f"since {when} (first chain today; no day change given)"
    since = None if has_day and closes else (first.ts if first is not None else None)
    return Changes(ChangeBasis(interval, label, since, has_day and closes), ce, pe)


@dataclass(slots=True)
class _Chain:
    day: date | None = None
    first: Sample | None = None
    ring: deque[Sample] = field(default_factory=deque)
    pinned: Sample | None = None  # the newest sample at or before the pin (else the first after)
    pin: datetime | None = None  # the pinned time, today
    seeded: date | None = None  # the day the store was read for
    seeded_pin: datetime | None = None


class ChangeBook:
    """Per-chain baselines for every interval, bounded; see the module docstring."""

    def __init__(
        self, market: MarketSettings | None = None, history: SnapshotHistory | None = None
    ) -> None:
        self.market = market or MarketSettings()
        self.history = history
        self.interval = OiInterval()
        self._chains: dict[tuple[str, date], _Chain] = {}

    # -- history ------------------------------------------------------------------------------

    def _day(self, ts: datetime) -> date:
        return ts.astimezone(self.market.tz).date()

    def _chain(self, symbol: str, expiry: date, ts: datetime) -> _Chain:
        c = self._chains.setdefault((symbol, expiry), _Chain())
        day = self._day(ts)
        if c.day != day:
            c.day, c.first, c.pinned = day, None, None
            c.ring.clear()
            c.pin = self._pin_time(day)
        return c

    def _pin_time(self, day: date) -> datetime | None:
        at = self.interval.at
        return None if at is None else datetime.combine(day, at, tzinfo=self.market.tz)

    def set_interval(self, interval: OiInterval) -> None:
        """The interval `changes` measures over; a new pinned time forgets the old pin."""
        self.interval = interval
        for c in self._chains.values():
            pin = None if c.day is None else self._pin_time(c.day)
            if pin != c.pin:
                c.pin, c.pinned, c.seeded_pin = pin, None, None
                # What is in memory may already hold the chain in force at the new pin.
                for s in sorted((*c.ring, *((c.first,) if c.first else ())), key=lambda s: s.ts):
                    self._offer_pin(c, s)

    def _offer_pin(self, c: _Chain, s: Sample) -> None:
        if c.pin is None:
            return
        p = c.pinned
        if p is None:
            c.pinned = s
        elif s.ts <= c.pin:
            if p.ts > c.pin or s.ts > p.ts:
                c.pinned = s
        elif p.ts > c.pin and s.ts < p.ts:
            c.pinned = s  # none at or before the pin yet: the earliest after it

    def observe(self, snap: ChainSnapshot) -> None:
        """Remember this chain (if it is new enough to be a sample) for later baselines."""
        if not len(snap):
            return
        c = self._chain(snap.symbol, snap.expiry, snap.provider_ts)
        self._add(c, Sample.kept(snap))

    def _add(self, c: _Chain, s: Sample) -> None:
        if c.first is None or s.ts < c.first.ts:
            c.first = s
        self._offer_pin(c, s)
        ring = c.ring
        if ring and s.ts <= ring[-1].ts:
            if s.ts < ring[0].ts and (ring[0].ts - s.ts).total_seconds() >= SAMPLE_SPACING_S:
                ring.appendleft(s)  # seeding may add older samples after newer ones
            else:
                return
        elif not ring or (s.ts - ring[-1].ts).total_seconds() >= SAMPLE_SPACING_S:
            ring.append(s)
        cutoff = ring[-1].ts - _KEEP
        # Keep exactly one sample at or before the longest interval's start.
        while len(ring) >= 2 and ring[1].ts <= cutoff:
            ring.popleft()
        while len(ring) > MAX_SAMPLES:
            ring.popleft()

    async def seed(self, snaps: Iterable[ChainSnapshot]) -> None:
        """Read from the store what the baselines of these chains need, once per chain and
        day (and again for a newly pinned time), on the data's own clock: everything stored
        before each snapshot's time that day. A failed read costs the baselines, never the
        feed."""
        if self.history is None:
            return
        for snap in snaps:
            symbol, expiry, now = snap.symbol, snap.expiry, snap.provider_ts
            c = self._chain(symbol, expiry, now)
            day = c.day
            try:
                if c.seeded != day:
                    c.seeded = day
                    await self._seed_day(symbol, expiry, c, now)
                if c.pin is not None and c.seeded_pin != c.pin:
                    c.seeded_pin = c.pin
                    await self._seed_pin(symbol, expiry, c, now)
            except Exception as exc:
                log.warning("%s %s: could not read OI baselines: %s", symbol, expiry, exc)

    async def _read(
        self, symbol: str, expiry: date, start: datetime, end: datetime, first_only: bool = False
    ) -> list[Sample]:
        assert self.history is not None
        out: list[Sample] = []
        it = self.history.iterate(symbol, expiry, start, end)
        try:
            async for snap in it:
                if len(snap):
                    out.append(Sample.kept(snap))
                    if first_only:
                        break
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
        return out

    async def _seed_day(self, symbol: str, expiry: date, c: _Chain, now: datetime) -> None:
        assert c.day is not None
        start = datetime.combine(c.day, time(0), tzinfo=self.market.tz)
        recent = max(start, now - _KEEP - timedelta(seconds=2 * SAMPLE_SPACING_S))
        samples = await self._read(symbol, expiry, recent, now)
        if recent > start:
            samples[:0] = await self._read(symbol, expiry, start, recent, first_only=True)
        for s in samples:
            self._add(c, s)

    async def _seed_pin(self, symbol: str, expiry: date, c: _Chain, now: datetime) -> None:
        assert c.pin is not None
        if c.pin > now:
            return
        before = await self._read(symbol, expiry, c.pin - _PIN_LOOKBACK, c.pin + timedelta(0, 1))
        for s in before or await self._read(symbol, expiry, c.pin, now, first_only=True):
            self._offer_pin(c, s)

    def samples(self, symbol: str, expiry: date) -> int:
        """How many samples the ring of one chain holds (its memory bound is MAX_SAMPLES)."""
        c = self._chains.get((symbol, expiry))
        return 0 if c is None else len(c.ring)

    # -- changes ------------------------------------------------------------------------------

    def _comparable(self, c: _Chain, snap: ChainSnapshot) -> list[Sample]:
        """Samples of the chain's day strictly before `snap`, of the same kind of data
        (simulated data is never compared with market data), oldest first."""
        sim = snap.feed is Feed.SIMULATED
        pool = {s.ts: s for s in (*c.ring, *((c.first,) if c.first else ()))}
        return [pool[t] for t in sorted(pool) if t < snap.provider_ts and pool[t].simulated == sim]

    def day(self, snap: ChainSnapshot) -> Changes:
        """Changes of `snap` on the day."""
        c = self._chain(snap.symbol, snap.expiry, snap.provider_ts)
        first = c.first  # the day's oldest sample (ring samples are never older): the usual case
        sim = snap.feed is Feed.SIMULATED
        if first is not None and first.ts < snap.provider_ts and first.simulated == sim:
            return day_change(snap, first, self.market)
        pool = self._comparable(c, snap)
        return day_change(snap, pool[0] if pool else None, self.market)

    def changes(self, snap: ChainSnapshot, interval: OiInterval | None = None) -> Changes:
        """Changes of `snap` over `interval` (default: the book's), with the basis in words."""
        interval = self.interval if interval is None else interval
        if interval.is_day:
            return self.day(snap)
        c = self._chain(snap.symbol, snap.expiry, snap.provider_ts)
        n, now = len(snap), snap.provider_ts
        if interval.at is not None:
            return self._pinned(c, snap, interval)
        target = now - timedelta(minutes=interval.minutes)
        pool = self._comparable(c, snap)
        if not pool:
            label = f"{interval.name}: no earlier chain yet"
            return Changes.none(n, ChangeBasis(interval, label, None, False, False))
        older = [s for s in pool if s.ts <= target]
        base = older[-1] if older else pool[0]
        when = _hms(base.ts, self.market)
        if older:
            label = f"since {when} ({interval.name})"
        else:
            label = f"since {when} ({_span((now - base.ts).total_seconds())} of {interval.name})"
        return between(snap, base, ChangeBasis(interval, label, base.ts, bool(older)))

    def _pinned(self, c: _Chain, snap: ChainSnapshot, interval: OiInterval) -> Changes:
        assert interval.at is not None
        pin = datetime.combine(self._day(snap.provider_ts), interval.at, tzinfo=self.market.tz)
        n = len(snap)
        if pin > snap.provider_ts:
            basis = ChangeBasis(interval, f"{interval.name}: not reached yet", None, False, False)
            return Changes.none(n, basis)
        sim = snap.feed is Feed.SIMULATED
        base = c.pinned if c.pin == pin else None
        if base is None or base.ts >= snap.provider_ts or base.simulated != sim:
            # Not pinned in the book (yet): the best the samples in memory offer.
            pool = self._comparable(c, snap)
            older = [s for s in pool if s.ts <= pin]
            later = [s for s in pool if s.ts > pin]
            base = older[-1] if older else (later[0] if later else None)
        if base is None:
            basis = ChangeBasis(interval, f"{interval.name}: no chain yet", None, False, False)
            return Changes.none(n, basis)
        when = _hms(base.ts, self.market)
        if base.ts <= pin:
            label = f"since {when} (pinned {interval.name})"
        else:
            label = f"since {when} (first chain after {interval.name})"
        return between(snap, base, ChangeBasis(interval, label, base.ts, base.ts <= pin))
