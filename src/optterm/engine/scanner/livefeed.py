"""The universe feed as the engine runs it over a live provider (Angel One first in the order).

Each session day the member list is built from the instrument master, never written down: the
universe of NFO index and stock options (universe.py, cached beside the master with additions
and removals reported once), each member's near future (the first listed future in the month of
one of its next expiries) and its near expiry's CE and PE tokens by strike (the ATM legs the
feed quotes as the futures price moves). A member with no listed future is left out, said once.

`step` runs one UniverseFeed tick (feed.py: the quote plan of budget.py, each tick's calls
spread over the tick, through the provider's own rate limiters, so the watched chains' quote
calls always find room) and hands the scanner its raw columns: the quoted ones, the universe's
static ones (lot size, strike step, days to expiry) and, when an OI-spurts source is given
(NSE's one-call market-wide page, providers/nse/spurts.py), `prev_oi`. `ages` says how old
each column is.

`source()` names the provider that answered the watched chains last (the failover's `active`):
the feed's columns are Angel One's, so the live scans run only while that is Angel One, and say
so when it is not (live.py), rather than mixing a failed-over source into the same scan.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from optterm.engine.scanner.budget import plan_quotes
from optterm.engine.scanner.feed import FeedMember, Quotes, UniverseFeed
from optterm.engine.scanner.liveframe import LiveFrame
from optterm.engine.scanner.universe import Member, Universe, UniverseChange, load_universe
from optterm.providers.angelone.master import InstrumentMaster, MasterIndex

__all__ = ["LIVE_SOURCE", "FeedPlan", "LiveFeed", "OiSpurtsSource", "feed_plan"]

log = logging.getLogger("optterm.scanner")

LIVE_SOURCE: Final = "angelone"


class OiSpurtsSource(Protocol):
    """A one-call market-wide OI source: by underlying, (latest OI, previous OI)."""

    async def oi_spurts(self) -> Mapping[str, tuple[float, float]]: ...


@dataclass(frozen=True)
class FeedPlan:
    """The members a feed quotes, in the universe's order, and the ATM legs by strike."""

    universe: Universe
    members: tuple[FeedMember, ...]
    legs: Mapping[str, Mapping[float, tuple[str, str]]]  # name → strike → (CE token, PE token)
    near: Mapping[str, date]  # name → the expiry whose legs are quoted
    left_out: tuple[str, ...]  # universe names with no listed near future


def feed_plan(index: MasterIndex, universe: Universe) -> FeedPlan:
    """The feed's members from the master `index` for `universe`."""
    members: list[FeedMember] = []
    legs: dict[str, dict[float, tuple[str, str]]] = {}
    near: dict[str, date] = {}
    left_out: list[str] = []
    kept: list[Member] = []
    for m in universe.members:
        future = next(
            (
                f
                for f in (index.future(m.name, e) for e in m.expiries)
                if f is not None and f.exchange == "NFO"
            ),
            None,
        )
        if future is None:
            left_out.append(m.name)
            continue
        kept.append(m)
        expiry = m.expiries[0]
        members.append(FeedMember(m.name, future.exchange, future.token, m.strike_step))
        near[m.name] = expiry
        by_strike: dict[float, tuple[str, str]] = {}
        for strike in index.strikes(m.name, expiry):
            ce = index.option(m.name, expiry, strike, "CE")
            pe = index.option(m.name, expiry, strike, "PE")
            if ce is not None and pe is not None:
                by_strike[float(strike)] = (ce.token, pe.token)
        legs[m.name] = by_strike
    if kept and len(kept) != len(universe.members):
        universe = Universe(tuple(kept), universe.edition, universe.source)
    return FeedPlan(universe, tuple(members), legs, near, tuple(left_out))


class LiveFeed:
    """The universe feed of one provider over its session days; see the module docstring.

    `quotes` is the provider's quote call (AngelOneProvider.quotes), `master` the instrument
    master indexing every name, `cache_dir` where the universe list is cached; `tick_s` the
    engine's tick and `watched_calls` the quote calls the watched chains make each tick (the
    plan leaves them room); `source` names the provider serving now."""

    name = LIVE_SOURCE

    def __init__(
        self,
        quotes: Quotes,
        master: InstrumentMaster,
        cache_dir: Path,
        *,
        tick_s: float,
        watched_calls: int,
        source: Callable[[], str | None],
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[object]],
        spurts: OiSpurtsSource | None = None,
        spurts_every_s: float = 180.0,
    ) -> None:
        self._quotes, self.master, self.cache_dir = quotes, master, cache_dir
        self.tick_s, self.watched_calls = tick_s, watched_calls
        self.source, self._now, self._sleep = source, now, sleep
        self.spurts, self.spurts_every_s = spurts, spurts_every_s
        self.plan: FeedPlan | None = None
        self.feed: UniverseFeed | None = None
        self.change: UniverseChange | None = None
        self._day: date | None = None
        self._spurts_at: datetime | None = None
        self._spurts: dict[str, tuple[float, float]] = {}
        self.spurts_error: str | None = None
        # Told (calls made, calls the first sweep plans) after each quote call: a CLI's
        # progress line.
        self.progress: Callable[[int, int], None] | None = None
        self.calls = 0

    @property
    def names(self) -> tuple[str, ...]:
        return () if self.plan is None else self.plan.universe.names

    async def start(self, day: date) -> FeedPlan:
        """Today's members from the master (downloaded at most once a day); the change in
        the universe since the cached list is logged once."""
        universe, change = await load_universe(self.master, day, self.cache_dir)
        # ~50k token lookups over the day's master: off the loop, as the universe build is.
        plan = await asyncio.to_thread(feed_plan, await self.master.ensure(), universe)
        if change:
            log.info("scanner universe %s", change.summary())
        if plan.left_out:
            log.warning(
                "scanner universe: no listed near future for %s; left out of the live feed",
                ", ".join(plan.left_out),
            )
        quote_plan = plan_quotes(
            len(plan.members), tick_s=self.tick_s, watched_calls=self.watched_calls
        )
        self.feed = UniverseFeed(
            plan.members, quote_plan, self._counted, atm_tokens=self._atm_tokens,
            now=self._now, sleep=self._sleep,
        )  # fmt: skip
        self.plan, self.change, self._day = plan, change, day
        self._spurts_at, self._spurts = None, {}
        log.info(
            "scanner live feed: %d underlyings from %s; futures every %gs, ATM %s",
            len(plan.members),
            self.name,
            quote_plan.futures_age_s,
            "never (no budget)"
            if quote_plan.atm_age_s is None
            else f"every {quote_plan.atm_age_s:g}s",
        )
        return plan

    async def _counted(self, tokens: Mapping[str, list[str]]) -> Mapping[str, Mapping[str, Any]]:
        got = await self._quotes(tokens)
        self.calls += 1
        if self.progress is not None and self.feed is not None:
            plan = self.feed.plan
            self.progress(self.calls, plan.futures_calls + plan.atm_calls)
        return got

    def frame(self, cols: Mapping[str, np.ndarray]) -> LiveFrame:
        """The sweep `step` just gave (`cols`) as a frame taken now (the feed's clock: after
        its calls), with each raw column's age and what is n/a because a source is down."""
        now = self._now()
        notes = (f"prev_oi: n/a ({self.spurts_error})",) if self.spurts_error else ()
        return LiveFrame(self.name, self.names, dict(cols), self.previous_close(), now,
                         self.ages(now), notes)  # fmt: skip

    def _atm_tokens(self, name: str, strike: float) -> tuple[str, str] | None:
        assert self.plan is not None
        return self.plan.legs.get(name, {}).get(float(strike))

    def previous_close(self) -> dict[str, np.ndarray]:
        """What is known of the previous close before the first sweep: the statics only."""
        return self._statics()

    def _statics(self) -> dict[str, np.ndarray]:
        assert self.plan is not None
        u = self.plan.universe
        assert self._day is not None
        dte = [max((self.plan.near[n] - self._day).days, 0) for n in u.names]
        return {
            "is_index": u.is_index.astype(np.float64),
            "lot_size": u.lot_size.copy(),
            "strike_step": u.strike_step.copy(),
            "dte": np.array(dte, dtype=np.float64),
        }

    async def step(self, now: datetime) -> dict[str, np.ndarray]:
        """One feed tick; the raw columns of every member after it."""
        assert self.feed is not None
        await self.feed.tick()
        cols = self.feed.columns() | self._statics()
        if self.spurts is not None:
            await self._refresh_spurts(now)
            if self._spurts:
                cols["prev_oi"] = self._prev_oi(cols["fut_oi"])
        return cols

    async def _refresh_spurts(self, now: datetime) -> None:
        assert self.spurts is not None
        due = self._spurts_at is None or (now - self._spurts_at).total_seconds() >= (
            self.spurts_every_s
        )
        if not due:
            return
        try:
            got = await self.spurts.oi_spurts()
        except Exception as exc:  # the futures columns go on without it; said once a change
            message = f"NSE OI spurts unavailable: {exc}"
            if message != self.spurts_error:
                log.warning("scanner: %s (prev_oi and the OI-change fields stay n/a)", message)
            self.spurts_error = message
            self._spurts_at = now  # not retried before the next interval: NSE is 1 req/s
            return
        self.spurts_error = None
        self._spurts, self._spurts_at = dict(got), now

    def _prev_oi(self, fut_oi: np.ndarray) -> np.ndarray:
        """The near future's previous OI: NSE's OI change of the underlying applied to the
        near future's OI (latest / previous of the spurts row), NaN where NSE has no row."""
        ratio = np.full(len(fut_oi), np.nan)
        for i, name in enumerate(self.names):
            row = self._spurts.get(name)
            if row is None:
                continue
            latest, prev = row
            if math.isfinite(latest) and math.isfinite(prev) and latest > 0 and prev > 0:
                ratio[i] = prev / latest
        return fut_oi * ratio

    def ages(self, now: datetime) -> dict[str, float | None]:
        """Seconds since each raw field was last refreshed (None: never, or not given)."""
        assert self.feed is not None
        ages = self.feed.ages(now)
        for static in ("lot_size", "strike_step", "dte"):
            ages[static] = 0.0  # the day's master
        if self._spurts and self._spurts_at is not None:
            ages["prev_oi"] = (now - self._spurts_at).total_seconds()
        return ages
