"""The enabled saved scans on the engine's tick: who enters and leaves, recorded, and each entry
into a scan with channels alerted through the outbox (store/scans.py writes both at once).

Two sources, one per engine, by the first provider of the order (engine/compose.py):

* live (Angel One first): the universe feed (livefeed.py) sweeps the F&O universe's quotes on
  each engine tick of a session, within the request budget it shares with the watched chains
  (with no saved scan too: its newest sweep, `frame`, is what the scanner screen's typed scans
  read), and the scans are evaluated over its columns, each with its age (`ages`); entries go
  out as LIVE. When the
  watched chains fail over to another provider the scans pause and say their source changed
  (`status`), and resume when Angel One serves again: a scan never mixes two sources.
* simulated (the simulator first): the simulator's universe (providers/simulator/universe.py:
  the F&O names, and the MCX ones on their own session when a saved scan covers MCX), stepped
  to the wall clock's moment of today's session on every engine tick; its entries are
  SIMULATED, never sent as if they were the market's. The session's steps are played on a
  worker thread (the first tick of a session catches up from the open: about a second of CPU
  late in the day), so the watched chains' tick never waits for it. Entries found while
  catching up, before this process's first tick of the session, are logged but not notified:
  they are history, not news.

The live feed sweeps the NSE F&O universe only: a saved scan over MCX finds its names on the
simulator, not (yet) on Angel One's feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from optterm.engine.scanner.grammar import ScanError, parse_scan
from optterm.engine.scanner.run import sim_universe
from optterm.engine.scanner.scanner import Scanner
from optterm.engine.scanner.tracker import ScanEvent
from optterm.market import MarketCalendar
from optterm.model import Feed
from optterm.providers.simulator.universe import DEFAULT_SIZE, UniverseSim, universe_calendar
from optterm.store.errors import StoreError

if TYPE_CHECKING:
    from optterm.engine.events import Subscription
    from optterm.engine.scanner.livefeed import LiveFeed
    from optterm.engine.scanner.liveframe import LiveFrame
    from optterm.store import Store
    from optterm.store.scans import SavedScan

__all__ = ["RECORD_EVERY", "STEP_S", "LiveScans"]

log = logging.getLogger("optterm.scanner")

Run = tuple[str, int, tuple[str, ...]]  # scan, how many matched, the ranked matches

STEP_S: Final = 15.0  # the universe's tick
RECORD_EVERY: Final = 4  # a run recorded a minute; every enter/leave as it happens


def _universe(text: str) -> str:
    """A saved scan's universe ("fno" for one that does not read any more: it is skipped)."""
    try:
        return parse_scan(text).universe
    except ScanError:
        return "fno"


class LiveScans:
    def __init__(
        self,
        store: Store,
        calendar: MarketCalendar,
        *,
        seed: int,
        size: int = DEFAULT_SIZE,
        on_recorded: Callable[[], None] | None = None,
        feed: LiveFeed | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.status = ""  # what a front end says of the scans' source ("" while all is well)
        self.ages: dict[str, float | None] = {}  # each raw column's age at the last live tick
        # The live feed's newest sweep, for the scanner screen's typed scans (None: none yet).
        self.frame: LiveFrame | None = None
        self._feed_day: date | None = None
        self._feed_ticks = 0
        self.calendar = calendar
        self.seed, self.size = seed, size
        self.on_recorded = on_recorded
        self._day: date | None = None
        self._sim: UniverseSim | None = None
        self._scanner: Scanner | None = None
        self._texts: dict[str, str] = {}
        self._quiet_until: datetime | None = None  # entries up to here are not notified
        self._fresh = False  # the session's first step (the open) not played yet

    async def run(self, ticks: Subscription, stop: asyncio.Event) -> None:
        """On every tick of `ticks` until `stop`: step the scans to the tick's time."""
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                got = asyncio.create_task(ticks.get())
                await asyncio.wait({got, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not got.done():
                    got.cancel()
                    return
                try:
                    await self.on_tick(got.result().finished_at)
                except StoreError as err:  # an outage: one line, the feed rides it out
                    log.warning("the saved scans could not run this tick: %s", err)
                except Exception:  # the scans failing must never stop the feed; it is logged
                    log.exception("the saved scans could not run this tick")
        finally:
            stopped.cancel()

    async def on_tick(self, now: datetime) -> int:
        """Step the enabled saved scans to `now` and record what happened; how many entries
        were queued as alerts (0 outside a session or with no enabled scan)."""
        day = self.calendar.local_date(now)
        # Any segment a saved scan may cover open (`scan mcx` trades into the evening); the
        # scans' own session is checked below, once their universe is known.
        if not universe_calendar(self.calendar, "all").is_open(now):
            return 0
        saved = await self.store.scans.saved(enabled_only=True)
        texts = {s.name: s.text for s in saved}
        if self.feed is not None:  # swept with no saved scan too: the screen's scans read it
            return await self._on_feed_tick(now, day, texts, saved)
        if not texts:
            self._day, self._texts, self._sim = None, {}, None
            return 0
        if day != self._day or texts != self._texts:
            self._restart(day, texts, saved, now)
        assert self._sim is not None
        if not self._sim.calendar.is_open(now):  # F&O scans only, and NSE closed
            return 0
        events, runs = await asyncio.to_thread(self._step_to, now)
        if not events and not runs:
            return 0
        quiet = self._quiet_until
        loud = [e for e in events if quiet is None or e.at > quiet]
        queued = await self.store.scans.record(
            now,
            len(self._sim.names),
            runs,
            [(e.scan, e.symbol, e.kind, e.at) for e in loud],
            provider="simulator",
            feed=Feed.SIMULATED,
        )
        history = [e for e in events if quiet is not None and e.at <= quiet]
        if history:  # logged without a notification (record skips what is already logged)
            await self.store.scans.record(
                now, len(self._sim.names), [], [(e.scan, e.symbol, e.kind, e.at) for e in history]
            )
        if queued and self.on_recorded is not None:
            self.on_recorded()
        return queued

    async def _on_feed_tick(
        self, now: datetime, day: date, texts: dict[str, str], saved: list[SavedScan]
    ) -> int:
        """One sweep of the live feed and the scans over it (see the module docstring)."""
        feed = self.feed
        assert feed is not None
        source = feed.source()
        if source is not None and source != feed.name:
            status = (
                f"scanner source changed: the chains come from {source}, the universe feed "
                f"from {feed.name}; scans paused until {feed.name} serves again"
            )
            if status != self.status:
                log.warning("%s", status)
            self.status = status
            return 0
        try:
            if day != self._feed_day:
                await feed.start(day)
                self._feed_day, self._texts = day, {}
            if texts and (texts != self._texts or self._scanner is None):
                self._texts, self._day = texts, day
                self._scanner = _scanner_of(feed.names, saved)
                self._scanner.close_session(feed.previous_close())
                self._feed_ticks = 0
            cols = await feed.step(now)
        except Exception as exc:  # no master, no budget, a failed quote: said once, retried
            status = f"scanner live feed from {feed.name} failed: {exc}"
            if status != self.status:
                log.warning("%s; retried on the next tick", status)
            self.status = status
            return 0
        if self.status:
            log.info("scanner live feed from %s runs again", feed.name)
            self.status = ""
        self.frame = feed.frame(cols)
        self.ages = dict(self.frame.ages)
        scanner = self._scanner
        if not texts or scanner is None:
            self._texts, self._scanner = {}, None
            return 0
        tick = scanner.tick(cols, now)
        runs: list[Run] = []
        if self._feed_ticks % RECORD_EVERY == 0:
            runs = [(name, r.count, r.names) for name, r in tick.results.items()]
        self._feed_ticks += 1
        queued = await self.store.scans.record(
            now,
            len(scanner.names),
            runs,
            [(e.scan, e.symbol, e.kind, e.at) for e in tick.events],
            provider=feed.name,
            feed=Feed.LIVE,
        )
        if queued and self.on_recorded is not None:
            self.on_recorded()
        return queued

    def _restart(
        self, day: date, texts: dict[str, str], saved: list[SavedScan], now: datetime
    ) -> None:
        """A new session or a changed set of scans: the universe and trackers from the open."""
        self._day, self._texts = day, texts
        universe = sim_universe(_universe(s.text) for s in saved)
        sim = UniverseSim(seed=self.seed, size=self.size, day=day, step_seconds=STEP_S,
                          calendar=self.calendar, universe=universe)  # fmt: skip
        scanner = _scanner_of(sim.names, saved)
        scanner.close_session(sim.previous_close())
        self._sim, self._scanner = sim, scanner
        self._quiet_until = now - timedelta(seconds=STEP_S)
        self._fresh = True

    def _step_to(self, now: datetime) -> tuple[list[ScanEvent], list[Run]]:
        """Play the universe's steps up to `now` (worker thread): the enter/leave events, and
        each scan's run as of the last step when a minute's step was passed."""
        sim, scanner = self._sim, self._scanner
        assert sim is not None
        assert scanner is not None
        target = int((now - sim.open_at).total_seconds() // STEP_S)
        events: list[ScanEvent] = []
        runs: list[Run] = []
        minute = False
        while self._fresh or sim.step < target:
            cols = sim.columns() if self._fresh else sim.advance()
            self._fresh = False
            at = (sim.open_at + timedelta(seconds=sim.step * STEP_S)).astimezone(UTC)
            tick = scanner.tick(cols, at)
            events += tick.events
            minute = minute or sim.step % RECORD_EVERY == 0
            if minute and sim.step >= target:
                runs = [(name, r.count, r.names) for name, r in tick.results.items()]
        return events, runs


def _scanner_of(names: tuple[str, ...], saved: list[SavedScan]) -> Scanner:
    scanner = Scanner(names)
    for s in saved:
        try:
            scanner.add(s.name, s.text)
        except ScanError as exc:  # saved before a language change: skipped, said once
            log.warning("saved scan %s does not read any more, skipped: %s", s.name, exc)
    return scanner
