"""Backtests of optterm's own signals over stored history: what the spot did after an alert
rule fired, and how often each of the eight pattern detectors pointed the right way.

Every stored day in the span is replayed through the live engine (engine/replay: the same
Poller, Analyzer, detectors and alert evaluation over the store, nothing written or sent), one
fresh engine per day as a daemon started each morning. A rule or detector judged at a point
sees only what was stored up to it: the replay's source answers "the chain at or before the
cursor" and its history reads stop before the cursor. The forward moves are measured after the
day's replay, from the spot of the day's later stored points (`SpotPath.forward`); they never
feed back into a firing.

A move after h minutes is the spot of the first stored point at or after t + h minus the spot at
t (points, and percent of the spot at t). It is n/a when the day's history ends first, or when
that point is more than 2 × h after t (a gap in the history: it would not be an h-minute move).
A detector's firing is a *hit* at h when its direction was bullish and the move was above zero,
or bearish and below zero; neutral signals are counted but not scored (they point nowhere).
A run cancelled part-way (Ctrl-C cancels the command's task) returns what it found up to the
last point it finished, saying where it stopped. docs/backtest-signals.md defines every figure.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from optterm.engine.alerts.rules import RuleError, build_rule, parse_rule_text
from optterm.model import AlertEvent, AlertKind, AlertRule, Direction, Feed, PatternKind, Signal
from optterm.store.replay import stored_chains
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.events import Tick
    from optterm.engine.replay import Replay
    from optterm.store import Store

__all__ = [
    "HORIZONS_MIN",
    "BacktestProblem",
    "DetectorRow",
    "Forward",
    "HorizonStats",
    "MoveStats",
    "PatternsResult",
    "RuleFiring",
    "RuleResult",
    "SignalOutcome",
    "Source",
    "SpotPath",
    "backtest_patterns",
    "backtest_rule",
    "rule_from_text",
]

HORIZONS_MIN: Final = (5, 15, 60)
# A forward point further than this many horizons after the firing is a gap, not a move.
_GAP_HORIZONS: Final = 2.0
_SIMULATOR: Final = "simulator"

Progress = Callable[[int], None]  # called with the number of points just replayed


class BacktestProblem(ValueError):
    """What was asked cannot be backtested (no data in the span, an unknown symbol, SIMULATED
    history not allowed); the message is one line saying what to do instead."""


@dataclass(frozen=True, slots=True)
class Source:
    """What a backtest read: providers and feeds, the span actually stored, days, snapshots."""

    providers: tuple[str, ...]
    feeds: tuple[str, ...]
    first: datetime
    last: datetime
    days: tuple[date, ...]
    snapshots: int
    # Pauses in a day's stored points over 3 × its usual spacing (the replay timeline's gaps):
    # forward moves across them are n/a when they stretch past 2 × the horizon.
    gaps: tuple[datetime, ...] = ()

    @property
    def simulated(self) -> bool:
        return Feed.SIMULATED.value in self.feeds


@dataclass(frozen=True, slots=True)
class Forward:
    """The spot move `minutes` after a firing; every number None when it is n/a."""

    minutes: int
    at: datetime | None = None
    spot: float | None = None
    points: float | None = None
    pct: float | None = None


class SpotPath:
    """One symbol's spot at each replayed point of one day (point times in epoch µs)."""

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.spot: list[float] = []

    def add(self, us: int, spot: float) -> None:
        if self.ts and us <= self.ts[-1]:
            self.spot[-1] = spot  # the same point seen again: the newest value wins
            return
        self.ts.append(us)
        self.spot.append(spot)

    def at(self, us: int) -> float | None:
        i = bisect.bisect_right(self.ts, us) - 1
        return None if i < 0 else self.spot[i]

    def forward(self, us: int, minutes: int) -> Forward:
        """The move from the point in force at `us` to the first point at or after
        `us` + `minutes` (see the module docstring for n/a)."""
        base = self.at(us)
        span = minutes * 60_000_000
        j = bisect.bisect_left(self.ts, us + span)
        if base is None or j >= len(self.ts) or self.ts[j] > us + _GAP_HORIZONS * span:
            return Forward(minutes)
        spot = self.spot[j]
        points = spot - base
        pct = points / base * 100.0 if base else None
        return Forward(minutes, from_us(self.ts[j]), spot, points, pct)

    def forwards(self, us: int) -> tuple[Forward, ...]:
        return tuple(self.forward(us, m) for m in HORIZONS_MIN)


@dataclass(frozen=True, slots=True)
class RuleFiring:
    event: AlertEvent
    at: datetime  # the replayed point it fired at: nothing stored after it was read
    spot: float | None  # the spot at the firing
    forward: tuple[Forward, ...]


@dataclass(frozen=True, slots=True)
class MoveStats:
    """A rule's firings at one horizon: how many have a move (`measured`), how many of those
    went up and down, and the mean move (points, percent of spot)."""

    minutes: int
    measured: int
    up: int
    down: int
    mean_points: float | None
    mean_pct: float | None


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: AlertRule
    source: Source
    firings: list[RuleFiring]
    stopped_at: datetime | None = None  # the run was stopped (Ctrl-C) after this point

    def summary(self) -> tuple[MoveStats, ...]:
        out = []
        for k, minutes in enumerate(HORIZONS_MIN):
            moves = [f.forward[k] for f in self.firings if f.forward[k].points is not None]
            pts = [m.points for m in moves if m.points is not None]
            pcts = [m.pct for m in moves if m.pct is not None]
            out.append(
                MoveStats(
                    minutes,
                    measured=len(pts),
                    up=sum(1 for p in pts if p > 0),
                    down=sum(1 for p in pts if p < 0),
                    mean_points=sum(pts) / len(pts) if pts else None,
                    mean_pct=sum(pcts) / len(pcts) if pcts else None,
                )
            )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    signal: Signal
    at: datetime  # the point it was first detected at
    spot: float | None
    forward: tuple[Forward, ...]


@dataclass(frozen=True, slots=True)
class HorizonStats:
    """One detector at one horizon: directional firings with a move (`scored`), how many went
    the signal's way (`hits`), and the mean move in the signal's direction (percent, points)."""

    minutes: int
    scored: int
    hits: int
    mean_pct: float | None
    mean_points: float | None

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.scored if self.scored else None


@dataclass(frozen=True, slots=True)
class DetectorRow:
    kind: PatternKind
    firings: int
    bullish: int
    bearish: int
    neutral: int
    horizons: tuple[HorizonStats, ...]


@dataclass(frozen=True, slots=True)
class PatternsResult:
    symbols: tuple[str, ...]
    source: Source
    rows: tuple[DetectorRow, ...]
    outcomes: list[SignalOutcome] = field(default_factory=list)
    stopped_at: datetime | None = None  # the run was stopped (Ctrl-C) after this point


# ------------------------------------------------------------------------------------ the rule


def rule_from_text(text: str, settings: Settings, today: date) -> AlertRule:
    """The rule a one-line alert text describes (RuleError, the alert grammar's one line, when
    it is not one), made recurring so that every firing over the span is listed; `today` is the
    span's first day (an expiry before it is refused as for a new alert)."""
    kw = parse_rule_text(text, settings)
    if kw.get("strategy") is not None:
        raise RuleError(
            "a strategy rule is not backtested on its firings; backtest the strategy itself "
            '(optterm backtest "NIFTY short strangle …" --from DAY --to DAY)'
        )
    kw.setdefault("condition", None)
    kw.setdefault("threshold", None)
    kw["recurring"] = True
    rule = build_rule(settings, **kw, channels=None, today=today)
    return dataclasses.replace(rule, id=1)  # the evaluator keeps its memory by rule id


# ------------------------------------------------------------------------------------ the span


async def _open_days(
    store: Store,
    settings: Settings,
    start: date,
    end: date,
    symbols: Sequence[str] | None,
    *,
    judge: Sequence[AlertRule] | None = None,
    pick: Callable[[date, list[date]], list[date]] | None = None,
) -> list[Replay]:
    """One Replay per stored day of the span (axes only: nothing decoded yet); BacktestProblem
    when the span has nothing, or nothing of `symbols`."""
    from optterm.engine.replay import Replay

    if end < start:
        raise BacktestProblem(
            f"--to {end.isoformat()} is before --from {start.isoformat()}; give the span in order."
        )
    tz = settings.market.tz
    days: list[tuple[date, list[tuple[str, date]]]] = []
    seen: set[str] = set()
    day = start
    while day <= end:
        lo = datetime.combine(day, time(0), tzinfo=tz)
        found = await stored_chains(store, lo, lo + timedelta(days=1))
        if found:
            days.append((day, found))
            seen.update(s for s, _ in found)
        day += timedelta(days=1)
    span = f"between {start.isoformat()} and {end.isoformat()}"
    if not days:
        raise BacktestProblem(
            f"Nothing is stored {span}; `optterm history list` shows the days stored."
        )
    wanted = sorted({s.upper() for s in symbols}) if symbols else sorted(seen)
    missing = [s for s in wanted if s not in seen]
    if missing:
        raise BacktestProblem(
            f"{', '.join(missing)} has nothing stored {span}; stored: {', '.join(sorted(seen))}."
        )
    replays = []
    rules = judge is not None
    passed: set[date] = set()
    for day, found in days:
        here = sorted({s for s, _ in found if s in wanted})
        if not here:
            continue
        r = await Replay.open(store, settings, day, here, rules=rules, judge=judge)
        if pick is not None:
            expiries = sorted({e for _, e in r.windows})
            passed.update(expiries)
            keep = set(pick(day, expiries))
            if not keep:
                continue
            if len(keep) < len(expiries):
                windows = {k: w for k, w in r.windows.items() if k[1] in keep}
                r = Replay(
                    store, settings, day, windows, rules=rules, calendar=r.calendar, judge=judge
                )
        replays.append(r)
    if not replays:
        stored = ", ".join(e.isoformat() for e in sorted(passed))
        raise BacktestProblem(
            f"The rule's expiry has nothing stored {span} (a rule on an expiry reads only that "
            f"expiry); stored {'/'.join(wanted)} expiries: {stored}."
        )
    return replays


async def _source(replays: Sequence[Replay], allow_simulated: bool) -> Source:
    """What the span holds; BacktestProblem when it is SIMULATED and that was not allowed."""
    providers: set[str] = set()
    feeds: set[str] = set()
    count = 0
    for r in replays:
        for w in r.windows.values():
            providers.update(w.times.providers)
            feeds.add(str((await w.get(0)).feed))
            count += len(w.times)
    if _SIMULATOR in providers:
        feeds.add(Feed.SIMULATED.value)
    source = Source(
        providers=tuple(sorted(providers)),
        feeds=tuple(sorted(feeds)),
        first=replays[0].first,
        last=replays[-1].last,
        days=tuple(r.day for r in replays),
        snapshots=count,
        gaps=tuple(m.at for r in replays for m in r.marks() if m.kind == "gap"),
    )
    if source.simulated and not allow_simulated:
        raise BacktestProblem(
            "The stored history in this span is SIMULATED (the simulator's, not the market's); "
            "add --allow-simulated to backtest it anyway."
        )
    return source


def _stopped(source: Source, days: Sequence[_Day], at: datetime | None) -> Source:
    """`source` with the feeds of every snapshot replayed (before the run, only each chain's
    first was looked at), and as far as a stopped run read: its days, snapshots, last point."""
    feeds = set().union(*(d.feeds for d in days))
    if _SIMULATOR in source.providers:
        feeds.add(Feed.SIMULATED.value)
    source = dataclasses.replace(source, feeds=tuple(sorted(feeds | set(source.feeds))))
    if at is None:
        return source
    us = to_us(at, "stopped")
    count = sum(w.times.index_at(us) + 1 for d in days for w in d.replay.windows.values())
    days_read = tuple(d.replay.day for d in days)
    gaps = tuple(g for g in source.gaps if g <= at)
    return dataclasses.replace(source, last=at, days=days_read, snapshots=count, gaps=gaps)


def _track(tick: Tick, paths: dict[str, SpotPath], us: int) -> None:
    newest: dict[str, tuple[datetime, float]] = {}
    for u in tick.updates:
        s = u.snapshot
        if s.symbol not in newest or s.provider_ts > newest[s.symbol][0]:
            newest[s.symbol] = (s.provider_ts, s.spot)
    for sym, (_, spot) in newest.items():
        paths.setdefault(sym, SpotPath()).add(us, spot)


@dataclass(slots=True)
class _Day:
    """What one replayed day gave: each symbol's spot path and what was collected, with the
    point time (epoch µs) it came at."""

    replay: Replay
    paths: dict[str, SpotPath] = field(default_factory=dict)
    found: list[tuple[Any, int]] = field(default_factory=list)
    done: int | None = None  # the last point whose tick was finished and collected
    feeds: set[str] = field(default_factory=set)  # of every snapshot replayed


async def _replay_span(
    replays: Sequence[Replay],
    allow_simulated: bool,
    progress: Progress | None,
    collect: Callable[[Tick], Iterable[Any]],
) -> tuple[list[_Day], datetime | None]:
    """Every day in order (`_replay_day`), and None; or, when the run is cancelled (Ctrl-C
    cancels the command's task), the days replayed so far, the last one partly, and the point
    it stopped at: a long backtest stopped keeps what it found."""
    days: list[_Day] = []
    for r in replays:
        day = _Day(r)
        days.append(day)
        try:
            await _replay_day(day, allow_simulated, progress, collect)
        except asyncio.CancelledError:
            if day.done is None:
                days.pop()  # stopped before its first point was finished
            if not days:
                raise  # nothing replayed: nothing to keep
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            last = days[-1].done
            assert last is not None
            return days, from_us(last)
    return days, None


async def _replay_day(
    day: _Day,
    allow_simulated: bool,
    progress: Progress | None,
    collect: Callable[[Tick], Iterable[Any]],
) -> None:
    """Step through the day in order: each tick's spot per symbol, and what `collect` takes
    from each tick with the tick's point time (what fired there saw nothing later)."""
    r, paths, found = day.replay, day.paths, day.found

    def each(tick: Tick) -> None:
        us = to_us(r.cursor_time(), "cursor")
        if not allow_simulated and any(u.snapshot.feed is Feed.SIMULATED for u in tick.updates):
            raise BacktestProblem(
                f"The stored history of {r.day.isoformat()} turns SIMULATED at "
                f"{r.cursor_time().astimezone(r.settings.market.tz):%H:%M}; add "
                "--allow-simulated to backtest it anyway."
            )
        _track(tick, paths, us)
        day.feeds.update(str(u.snapshot.feed) for u in tick.updates)
        found.extend((x, us) for x in collect(tick))
        day.done = us
        if progress is not None:
            progress(1)

    await r.run(on_tick=each)


def _alerts(tick: Tick) -> Iterable[AlertEvent]:
    return tick.alerts


def _new_signals(tick: Tick) -> Iterable[Signal]:
    return (s for s in tick.signals if s.updates == 0)


def _nearest(day: date, expiries: list[date]) -> list[date]:
    live = [e for e in expiries if e >= day]
    return [(live or expiries)[0]]


async def backtest_rule(
    store: Store,
    settings: Settings,
    rule: AlertRule,
    start: date,
    end: date,
    *,
    allow_simulated: bool = False,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RuleResult:
    """Every firing of `rule` over the stored days from `start` to `end` (exchange days,
    inclusive) with the spot move after each horizon. Only the chains the rule reads are
    replayed: its expiry, or (a level rule without one) the nearest expiry of each day, as the
    live evaluator reads the nearest; a pattern rule without an expiry reads every chain."""

    def named(_day: date, expiries: list[date]) -> list[date]:
        return [e for e in expiries if e == rule.expiry]

    pick: Callable[[date, list[date]], list[date]] | None
    if rule.expiry is not None:
        pick = named
    elif rule.kind is AlertKind.PATTERN_DETECTED:
        pick = None
    else:
        pick = _nearest
    replays = await _open_days(store, settings, start, end, [rule.symbol], judge=[rule], pick=pick)
    source = await _source(replays, allow_simulated)
    if on_total is not None:
        on_total(sum(len(r) for r in replays))
    days, stopped = await _replay_span(replays, allow_simulated, progress, _alerts)
    firings: list[RuleFiring] = []
    for d in days:
        path = d.paths.get(rule.symbol, SpotPath())
        firings.extend(
            RuleFiring(a, from_us(us), path.at(us), path.forwards(us)) for a, us in d.found
        )
    return RuleResult(rule, _stopped(source, days, stopped), firings, stopped)


# ------------------------------------------------------------------------------------ patterns

_SIGN: Final = {Direction.BULLISH: 1.0, Direction.BEARISH: -1.0}


def detector_rows(outcomes: Sequence[SignalOutcome]) -> tuple[DetectorRow, ...]:
    """The hit-rate table: one row per detector (all eight, in their order), see the module
    docstring for a hit."""
    rows = []
    for kind in PatternKind:
        mine = [o for o in outcomes if o.signal.kind is kind]
        stats = []
        for k, minutes in enumerate(HORIZONS_MIN):
            moves = [
                (_SIGN[o.signal.direction], o.forward[k])
                for o in mine
                if o.signal.direction in _SIGN and o.forward[k].points is not None
            ]
            pts = [sign * f.points for sign, f in moves if f.points is not None]
            pcts = [sign * f.pct for sign, f in moves if f.pct is not None]
            stats.append(
                HorizonStats(
                    minutes,
                    scored=len(pts),
                    hits=sum(1 for p in pts if p > 0),
                    mean_pct=sum(pcts) / len(pcts) if pcts else None,
                    mean_points=sum(pts) / len(pts) if pts else None,
                )
            )
        rows.append(
            DetectorRow(
                kind,
                firings=len(mine),
                bullish=sum(1 for o in mine if o.signal.direction is Direction.BULLISH),
                bearish=sum(1 for o in mine if o.signal.direction is Direction.BEARISH),
                neutral=sum(1 for o in mine if o.signal.direction is Direction.NEUTRAL),
                horizons=tuple(stats),
            )
        )
    return tuple(rows)


async def backtest_patterns(
    store: Store,
    settings: Settings,
    start: date,
    end: date,
    symbol: str | None = None,
    *,
    allow_simulated: bool = False,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> PatternsResult:
    """Every new signal of the eight detectors over the stored days from `start` to `end`
    (every stored chain of `symbol`, or of every symbol), with its forward moves, and the
    per-detector table."""
    replays = await _open_days(store, settings, start, end, [symbol] if symbol else None)
    source = await _source(replays, allow_simulated)
    if on_total is not None:
        on_total(sum(len(r) for r in replays))
    days, stopped = await _replay_span(replays, allow_simulated, progress, _new_signals)
    outcomes: list[SignalOutcome] = []
    symbols: set[str] = set()
    for d in days:
        symbols.update(s for s, _ in d.replay.windows)
        for sig, us in d.found:
            path = d.paths.get(sig.symbol, SpotPath())
            outcomes.append(SignalOutcome(sig, from_us(us), path.at(us), path.forwards(us)))
    return PatternsResult(
        tuple(sorted(symbols)),
        _stopped(source, days, stopped),
        detector_rows(outcomes),
        outcomes,
        stopped,
    )
