"""Run one scan now, for every front end: `optterm scan "…"` and the scanner screen.

Over the simulator (`UniverseSim`, here): its session is played from the open to the moment
asked for, through a `Scanner`, so look-backs, crossings and averages have the history they
would have had live. The scan's universe picks the session: `scan fno` (and `indices`,
`stocks`) the NSE F&O one, `scan mcx` MCX's (09:00 to 23:30/23:55), `scan all` both; a segment
closed at the moment is named in `ScanRun.closed` (its names stand at their close). Over the
live universe feed: liveframe.py `run_on_frame`. A `ScanRun` carries its source and each raw
column's age either way (`column_age`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from optterm.engine.scanner.evaluate import ScanResult
from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS, TEXT_FIELDS
from optterm.engine.scanner.grammar import Scan, parse_scan
from optterm.engine.scanner.scanner import Scanner
from optterm.engine.scanner.tracker import ScanEvent
from optterm.market import MarketCalendar
from optterm.providers.simulator.universe import DEFAULT_SIZE, UniverseSim, universe_calendar
from optterm.store.scans import ScanEventRow, ScanRunRow

__all__ = [
    "PlayedSession",
    "ScanRun",
    "SessionMomentError",
    "play_on_simulator",
    "run_on_simulator",
    "scan_calendar",
    "session_moment",
    "sim_universe",
]

_STEP_S = 15.0  # the tick of the universe feed


class SessionMomentError(ValueError):
    """`--at` names a time outside the session; the message says which times are valid."""


@dataclass(frozen=True)
class ScanRun:
    scan: Scan
    result: ScanResult
    values: np.ndarray  # fields × underlyings at `at`
    names: tuple[str, ...]
    at: datetime
    source: str
    # The scan's enter/leave log over the session played to `at` (its tracker's hysteresis).
    events: tuple[ScanEvent, ...] = ()
    # The segments closed at `at`: (name, "closed at 15:40"), and their names, which stand at
    # their last values (never fresh).
    closed: tuple[tuple[str, str], ...] = ()
    closed_names: frozenset[str] = frozenset()
    # Each raw field's age in seconds at `at` (None: the source never gave it).
    ages: Mapping[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what a reader must know besides (the live source down)

    def column_age(self, column: str, now: datetime | None = None) -> float | None:
        """Seconds since `column` was refreshed, as of `now` (default: the run's `at`)."""
        from optterm.engine.scanner.liveframe import field_age

        age = field_age(column, self.ages)
        if age is None or now is None:
            return age
        return age + max(0.0, (now - self.at).total_seconds())

    @property
    def columns(self) -> tuple[str, ...]:
        """The fields shown for each match: those the scan reads, in the order written."""
        return self.scan.fields()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per match, ranked: symbol, then each column (None where n/a; text fields
        as their word)."""
        out = []
        for rank, i in enumerate(self.result.rows, 1):
            row: dict[str, Any] = {"rank": rank, "symbol": self.names[i]}
            for f in self.columns:
                row[f] = _cell(f, float(self.values[FIELD_INDEX[f], i]))
            out.append(row)
        return out


def _cell(field: str, value: float) -> Any:
    if math.isnan(value):
        return None
    words = TEXT_FIELDS.get(field)
    if words is not None:
        # The shortest word for the code: "lb", not "long_buildup".
        return min((w for w, code in words.items() if code == value), key=len, default=None)
    return round(value, 4)


def sim_universe(universes: Iterable[str]) -> str:
    """The simulated universe ("fno", "mcx" or "all") that serves scans over `universes`."""
    wanted = {"mcx" if u == "mcx" else "all" if u == "all" else "fno" for u in universes}
    if wanted <= {"fno"}:
        return "fno"
    return "mcx" if wanted == {"mcx"} else "all"


def scan_calendar(calendar: MarketCalendar, scans: Iterable[Scan]) -> MarketCalendar:
    """The session `scans` run on: the configured NSE F&O `calendar`, MCX's, or both."""
    return universe_calendar(calendar, sim_universe(s.universe for s in scans))


def session_moment(calendar: MarketCalendar, now: datetime, at: time | None) -> datetime:
    """The simulated session's moment: `at` (exchange time) on the latest trading day, or now
    during a session, or the latest close."""
    day = calendar.local_date(now)
    if not calendar.is_trading_day(day) or now < calendar.session_bounds(day)[0]:
        day = calendar.previous_trading_day(day)
    opens, closes = calendar.session_bounds(day)
    if at is None:
        return min(max(now, opens), closes)
    tz = calendar.tz
    moment = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    if not opens <= moment <= closes:
        raise SessionMomentError(
            f"--at {at:%H:%M} is outside the session; choose a time from "
            f"{opens.astimezone(tz):%H:%M} to {closes.astimezone(tz):%H:%M}"
        )
    return moment


def run_on_simulator(
    text: str,
    *,
    seed: int,
    moment: datetime,
    calendar: MarketCalendar | None = None,
    size: int = DEFAULT_SIZE,
) -> ScanRun:
    """Parse `text` (ScanError if it does not read) and run it over the simulator's universe
    as it stands at `moment` (a time inside a session, see `session_moment`)."""
    scan = parse_scan(text)
    nse = calendar or MarketCalendar()
    universe = sim_universe([scan.universe])
    day: date = universe_calendar(nse, universe).local_date(moment)
    sim = UniverseSim(seed=seed, size=size, day=day, step_seconds=_STEP_S, calendar=nse,
                      universe=universe)  # fmt: skip
    scanner = Scanner(sim.names)
    scanner.add("scan", scan)
    # Past the close the session stands at its last step (a later moment would never be reached).
    target = min(int((moment - sim.open_at).total_seconds() // _STEP_S), sim.steps)
    # Yesterday's close for `1d ago`: the simulator's previous-close columns.
    scanner.close_session(sim.previous_close())
    cols = sim.columns()
    tick = scanner.tick(cols, sim.open_at)
    events = list(tick.events)
    while sim.step < target:
        cols = sim.advance()
        tick = scanner.tick(cols, sim.open_at + timedelta(seconds=sim.step * _STEP_S))
        events += tick.events
    closed = sim.closed_at()
    # Every simulated column is as old as the universe's last step before `moment`.
    age = max(0.0, (moment - tick.at).total_seconds())
    ages = {f.name: age if f.name in cols else None for f in FIELDS if f.derived is None}
    return ScanRun(
        scan=scan,
        result=tick.results["scan"],
        values=tick.values,
        names=sim.names,
        at=tick.at.astimezone(UTC),
        source="simulator",
        events=tuple(events),
        closed=tuple((label, when) for label, _, when in closed),
        closed_names=frozenset(
            name for _, mask, _ in closed for name, m in zip(sim.names, mask, strict=True) if m
        ),
        ages=ages,
    )


@dataclass(frozen=True)
class PlayedSession:
    """Saved scans played through the simulated session up to a moment: every run (one a
    minute) and every enter/leave event, ready for `store.scans.replace_session`."""

    opened: datetime
    at: datetime
    universe: int
    runs: list[ScanRunRow]
    events: list[ScanEventRow]
    members: dict[str, tuple[str, ...]]  # who is inside each scan at the end


def play_on_simulator(
    scans: Mapping[str, str],
    *,
    seed: int,
    moment: datetime,
    calendar: MarketCalendar | None = None,
    size: int = DEFAULT_SIZE,
    record_every: int = 4,
) -> PlayedSession:
    """Play the simulated session from the open to `moment` through `scans` (name → text;
    ScanError for one that does not read), with their enter/leave trackers."""
    nse = calendar or MarketCalendar()
    parsed = {name: parse_scan(text) for name, text in scans.items()}
    universe = sim_universe(p.universe for p in parsed.values())
    day = universe_calendar(nse, universe).local_date(moment)
    sim = UniverseSim(seed=seed, size=size, day=day, step_seconds=_STEP_S, calendar=nse,
                      universe=universe)  # fmt: skip
    scanner = Scanner(sim.names)
    for name, scan in parsed.items():
        scanner.add(name, scan)
    scanner.close_session(sim.previous_close())
    # Past the close the session stands at its last step (a later moment would never be reached).
    target = min(int((moment - sim.open_at).total_seconds() // _STEP_S), sim.steps)
    runs: list[ScanRunRow] = []
    events: list[ScanEventRow] = []
    cols = sim.columns()
    while True:
        at = (sim.open_at + timedelta(seconds=sim.step * _STEP_S)).astimezone(UTC)
        tick = scanner.tick(cols, at)
        events += [ScanEventRow(e.scan, e.symbol, e.kind, e.at) for e in tick.events]
        if sim.step % record_every == 0 or sim.step >= target:
            runs += [
                ScanRunRow(name, at, len(sim.names), r.count, r.names)
                for name, r in tick.results.items()
            ]
        if sim.step >= target:
            break
        cols = sim.advance()
    return PlayedSession(
        opened=sim.open_at.astimezone(UTC),
        at=at,
        universe=len(sim.names),
        runs=runs,
        events=events,
        members={name: scanner.members(name) for name in scans},
    )
