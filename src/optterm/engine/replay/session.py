"""A replay of one stored day: the live engine's Poller over a ReplaySource, stepped or played.

The cursor is an index into the day's time axis: the union of every replayed chain's stored
provider times. A tick at a point fetches, for each chain, the snapshot in force then, and runs
the live tick over them (analytics, the eight detectors, alert evaluation) with the clock set to
when the live engine had fetched it. Stepping forward is one tick on the running state, so a
replay from the open reproduces what the live engine computed, tick by tick. A jump starts a
fresh state a little before the target (`warm`: the detectors' window) and runs up to it:
baselines, the view shown last and IV rank are read from what was stored before the cursor.
"""

from __future__ import annotations

import asyncio
import re
import time as _time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.poller import EXPIRY_TTL_S, Poller, Watch
from optterm.engine.replay.source import AsOfHistory, ReplayAlerts, ReplaySource
from optterm.market import OiInterval
from optterm.model import AlertEvent, AlertRule, Signal
from optterm.store.replay import SnapshotWindow, last_before, stored_chains
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.events import Tick
    from optterm.market import MarketCalendar
    from optterm.store import Store

__all__ = ["DayEvents", "Mark", "Replay", "ReplayProblem"]

# Deep enough for any stored window (the watch's `strikes` is at most 300): nothing is cut.
_ALL_STRIKES = 300
_RELATIVE = re.compile(r"([+-])\s*(\d+(?:\.\d+)?)\s*(s|m|h)?")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
# Points read and decoded together per chain when a run goes as fast as it can (see
# SnapshotWindow.ahead): batch decoding costs a fraction of decoding blob by blob.
_AHEAD = 120
# A pause this many times the usual spacing between snapshots is a gap on the timeline.
_GAP_FACTOR = 3.0


class ReplayProblem(ValueError):
    """What was asked cannot be replayed (nothing stored, unknown chain, time outside the
    session); the message is one line saying what is stored instead."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A point of note on the timeline: a signal, an alert firing, a provider switch or a gap."""

    at: datetime
    kind: str  # "signal", "alert", "provider", "gap"
    text: str


@dataclass(slots=True)
class DayEvents:
    """What a whole replay produced: new signals and alert firings, in order."""

    signals: list[Signal] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    ticks: int = 0

    def add(self, tick: Tick) -> None:
        self.ticks += 1
        self.signals.extend(s for s in tick.signals if s.updates == 0)
        self.alerts.extend(tick.alerts)


class Replay:
    """One stored day of some chains, replayed through the engine (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        day: date,
        windows: dict[tuple[str, date], SnapshotWindow],
        *,
        rules: bool = True,
        calendar: MarketCalendar | None = None,
        interval: OiInterval | None = None,
        judge: Sequence[AlertRule] | None = None,
    ) -> None:
        from optterm.providers.factory import market_calendar

        self.store = store
        self.settings = settings
        self.day = day
        self.rules = rules
        self.judge = judge  # rules judged instead of the store's enabled ones (a backtest's)
        self.interval = interval  # ΔOI and buildups over this (default: [display] oi_interval)
        # The day's sessions are its chains' own: an MCX day runs into the evening.
        self.calendar = (calendar or market_calendar(settings)).for_symbols(
            symbol for symbol, _ in windows
        )
        self.windows = windows
        self.source = ReplaySource(windows)
        clock: dict[int, int] = {}
        for w in windows.values():
            for t, f in zip(w.times.ts, w.times.fetched, strict=True):
                clock[t] = max(clock.get(t, f), f)
        self.times: list[int] = sorted(clock)
        # When the live engine had each point (its fetch time): the clock of the replayed tick.
        self._clock = clock
        self.index = -1
        self.poller = self._fresh()

    # ------------------------------------------------------------------------------ opening

    @classmethod
    async def open(
        cls,
        store: Store,
        settings: Settings,
        day: date,
        symbols: Sequence[str] | None = None,
        expiry: date | None = None,
        *,
        rules: bool = True,
        radius: int = 50,
        interval: OiInterval | None = None,
        judge: Sequence[AlertRule] | None = None,
    ) -> Replay:
        """The replay of `day` (exchange-local) for `symbols` (default: every symbol stored
        that day), every expiry stored that day or only `expiry`. ReplayProblem when there is
        nothing to replay, naming what is stored."""
        tz = settings.market.tz
        start = datetime.combine(day, time(0), tzinfo=tz)
        # The calendar's last day has no next day to end at: an empty range (nothing stored).
        end = start + timedelta(days=1) if day < date.max else start
        found = await stored_chains(store, start, end)
        if not found:
            raise ReplayProblem(
                f"Nothing is stored for {day.isoformat()}; `optterm history list` shows the "
                "days stored."
            )
        stored = sorted({s for s, _ in found})
        wanted = [s.upper() for s in symbols] if symbols else stored
        for sym in wanted:
            if sym not in stored:
                raise ReplayProblem(
                    f"{sym} has nothing stored on {day.isoformat()}; stored that day: "
                    f"{', '.join(stored)}."
                )
        chains = [(s, e) for s, e in found if s in wanted]
        if expiry is not None:
            have = sorted({e.isoformat() for s, e in chains})
            chains = [(s, e) for s, e in chains if e == expiry]
            if not chains:
                raise ReplayProblem(
                    f"No {'/'.join(wanted)} expiry {expiry.isoformat()} is stored on "
                    f"{day.isoformat()}; stored expiries: {', '.join(have)}."
                )
        windows = {
            (s, e): await SnapshotWindow.open(store, s, e, start, end, radius=radius)
            for s, e in chains
        }
        return cls(store, settings, day, windows, rules=rules, interval=interval, judge=judge)

    @staticmethod
    async def previous_day(
        store: Store, settings: Settings, symbol: str, expiry: date, before: date
    ) -> date | None:
        """The newest day before `before` with (symbol, expiry) stored (for "previous close")."""
        tz = settings.market.tz
        last = await last_before(store, symbol, expiry, datetime.combine(before, time(0), tz))
        return None if last is None else last.astimezone(tz).date()

    def only(self, symbol: str, expiry: date) -> Replay:
        """The same day for one of its chains."""
        windows = {k: w for k, w in self.windows.items() if k == (symbol, expiry)}
        return Replay(
            self.store,
            self.settings,
            self.day,
            windows,
            rules=self.rules,
            calendar=self.calendar,
            interval=self.interval,
            judge=self.judge,
        )

    def _fresh(self) -> Poller:
        """A poller with a state of its own: nothing stored, nothing sent."""
        history = AsOfHistory(self.store, self.cursor_time)
        analyzer = Analyzer.from_settings(
            self.settings, history=history, baselines=self.store.snapshots
        )
        if self.interval is not None:
            analyzer.use_interval(self.interval)
        by_symbol: dict[str, int] = {}
        for s, _ in self.windows:
            by_symbol[s] = by_symbol.get(s, 0) + 1
        return Poller(
            self.source,
            None,
            [Watch(s, n, _ALL_STRIKES) for s, n in sorted(by_symbol.items())],
            interval=self.settings.poller.interval,
            timeout=max(self.settings.poller.timeout, 60.0),
            # A chain that starts later (shown on demand mid-session) must be listed from its
            # first point on: the poller's expiry cache is made to expire at every point.
            clock=lambda: (self.index + 1) * 2 * EXPIRY_TTL_S,
            now=self.now,
            analyzer=analyzer,
            alerts=ReplayAlerts(self.store, self.calendar, self.judge) if self.rules else None,
            local=True,
        )

    # ------------------------------------------------------------------------------ the clock

    def cursor_time(self) -> datetime:
        """The cursor: the provider time of the point the replay is at (UTC)."""
        return from_us(self.source.at)

    def now(self) -> datetime:
        """The replayed engine's wall clock: when the live engine fetched the current point."""
        return from_us(self._clock.get(self.source.at, self.source.at))

    @property
    def first(self) -> datetime:
        return from_us(self.times[0])

    @property
    def last(self) -> datetime:
        return from_us(self.times[-1])

    def __len__(self) -> int:
        return len(self.times)

    def index_at(self, at: datetime) -> int:
        """The point in force at `at` (the newest at or before it); -1 before the first."""
        import bisect

        return bisect.bisect_right(self.times, to_us(at, "at")) - 1

    # ------------------------------------------------------------------------------ moving

    async def _tick(self, i: int) -> Tick:
        self.index = i
        self.source.at = self.times[i]
        return await self.poller.tick_once()

    async def step(self) -> Tick | None:
        """One point forward on the running state; None at the end of the day."""
        if self.index + 1 >= len(self.times):
            return None
        return await self._tick(self.index + 1)

    async def go(self, i: int, warm: timedelta | None = None) -> Tick:
        """To point `i`: one step when it is the next one, else a jump (see the module
        docstring) warmed over `warm` (default: the detectors' window)."""
        i = max(0, min(i, len(self.times) - 1))
        if i == self.index + 1:
            return await self._tick(i)
        if warm is None:
            warm = timedelta(seconds=self.settings.patterns.window + 60)
        self.poller = self._fresh()
        lo = self.index_at(from_us(self.times[i]) - warm) + 1
        tick = None
        for j in range(max(lo, 0), i + 1):
            tick = await self._tick(j)
        assert tick is not None
        return tick

    def check(self, at: datetime) -> int:
        """The point in force at `at`; ReplayProblem when `at` is outside the day's session
        or before the first snapshot stored that day."""
        tz = self.settings.market.tz
        opened, closed = self.calendar.session_bounds(self.day)
        local = at.astimezone(tz)
        if local.date() != self.day or not opened <= at <= closed:
            raise ReplayProblem(
                f"{local:%H:%M} on {local.date().isoformat()} is outside the session of "
                f"{self.day.isoformat()} ({opened.astimezone(tz):%H:%M}–"
                f"{closed.astimezone(tz):%H:%M} {local.tzname()}); give a time within it."
            )
        i = self.index_at(at)
        if i < 0:
            raise ReplayProblem(
                f"Nothing is stored at or before {local:%H:%M} on {self.day.isoformat()}; the "
                f"first snapshot is at {self.first.astimezone(tz):%H:%M:%S}."
            )
        return i

    async def seek(self, at: datetime, warm: timedelta | None = None) -> Tick:
        """To the point in force at `at` (see `check`)."""
        return await self.go(self.check(at), warm)

    async def to(self, at: datetime) -> Tick:
        """To the point in force at `at`, clamped to the day's stored points (a step when that
        is the next one). For relative moves (±5 min), which may run off either end."""
        i = max(0, min(self.index_at(at), len(self.times) - 1))
        return await self.go(i)

    async def pin(self, at: datetime | None) -> Tick | None:
        """Measure ΔOI and buildups since `at` (a pinned baseline; None: back to the
        configured interval), and the current point's redone over it."""
        if at is None:
            interval = self.settings.display.interval
        else:
            local = at.astimezone(self.settings.market.tz)
            interval = OiInterval(at=local.time().replace(microsecond=0))
        self.interval = interval
        return await self.poller.set_oi_interval(interval)

    def resolve(self, text: str) -> datetime:
        """A go-to time typed by a trader: `10:45` (or `10:45:30`) on the replayed day, `-30m`,
        `+5m`, `-1h`, `-90s` from the cursor, `open` or `close` (the day's first or last
        stored point). ReplayProblem (one line) for anything else."""
        raw = text.strip().lower().lstrip("@")
        if raw in ("open", "o"):
            return self.first
        if raw in ("close", "end"):
            return self.last
        rel = _RELATIVE.fullmatch(raw)
        if rel is not None:
            n = float(rel.group(2)) * _UNIT_S[rel.group(3) or "m"]
            return self.cursor_time() + timedelta(seconds=n if rel.group(1) == "+" else -n)
        clock = _CLOCK.fullmatch(raw)
        if clock is not None and int(clock.group(1)) < 24 and int(clock.group(2)) < 60:
            t = time(int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0))
            return datetime.combine(self.day, t, tzinfo=self.settings.market.tz)
        raise ReplayProblem(
            f"{text.strip()[:20]!r} is not a time to go to; write 10:45, -30m, +5m, open or close."
        )

    async def run(
        self,
        speed: float | None = None,
        on_tick: Callable[[Tick], Awaitable[None] | None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> DayEvents:
        """From the cursor to the end of the day: as fast as possible, or `speed` times the
        session's own pace. Returns the new signals and alert firings."""
        events = DayEvents()
        started = _time.monotonic()
        if speed is None:  # every point in order, none shown on the way: read and decode ahead
            for w in self.windows.values():
                w.ahead = _AHEAD
        try:
            await self._run(events, speed, on_tick, sleep, started)
        finally:
            for w in self.windows.values():
                w.ahead = 0
        return events

    async def _run(
        self,
        events: DayEvents,
        speed: float | None,
        on_tick: Callable[[Tick], Awaitable[None] | None] | None,
        sleep: Callable[[float], Awaitable[None]],
        started: float,
    ) -> None:
        origin = None
        while self.index + 1 < len(self.times):
            if speed is not None:
                t = self.times[self.index + 1]
                origin = t if origin is None else origin
                due = (t - origin) / 1e6 / speed - (_time.monotonic() - started)
                if due > 0:
                    await sleep(due)
            tick = await self.step()
            assert tick is not None
            events.add(tick)
            if on_tick is not None:
                done = on_tick(tick)
                if done is not None:
                    await done

    # ------------------------------------------------------------------------------ timeline

    def marks(self, events: DayEvents | None = None) -> list[Mark]:
        """Provider switches and gaps (from the axis), and `events`' signals and alerts."""
        out: list[Mark] = []
        for (sym, exp), w in self.windows.items():
            p = w.times.providers
            for k in range(1, len(p)):
                if p[k] != p[k - 1]:
                    out.append(
                        Mark(from_us(w.times.ts[k]), "provider", f"{sym} {exp}: {p[k - 1]}→{p[k]}")
                    )
        gaps = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
        if gaps:
            usual = sorted(gaps)[len(gaps) // 2]
            for k, g in enumerate(gaps):
                if usual and g > _GAP_FACTOR * usual:
                    text = f"no data for {g / 6e7:.0f} min"
                    out.append(Mark(from_us(self.times[k]), "gap", text))
        if events is not None:
            out.extend(Mark(s.first_seen, "signal", s.summary) for s in events.signals)
            out.extend(Mark(a.fired_at, "alert", a.title) for a in events.alerts)
        return sorted(out, key=lambda m: m.at)
