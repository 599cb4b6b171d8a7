"""Run one scan now, for every front end: `optterm scan "…"` and the scanner screen.

Over the simulator (`UniverseSim`, here): its session is played from the open to the moment
asked for, through a `Scanner`, so look-backs, crossings and averages have the history they
would have had live. Over the live universe feed: liveframe.py `run_on_frame`. A `ScanRun`
carries its source and each raw column's age either way (`column_age`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from optterm.providers.simulator.universe import DEFAULT_SIZE, UniverseSim
from optterm.store.scans import ScanEventRow, ScanRunRow

__all__ = [
    "PlayedSession",
    "ScanRun",
    "SessionMomentError",
    "play_on_simulator",
    "run_on_simulator",
    "session_moment",
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
    cal = calendar or MarketCalendar()
    day: date = cal.local_date(moment)
    sim = UniverseSim(seed=seed, size=size, day=day, step_seconds=_STEP_S, calendar=cal)
    scanner = Scanner(sim.names)
    scanner.add("scan", scan)
    target = int((moment - sim.open_at).total_seconds() // _STEP_S)
    # Yesterday's close for `1d ago`: the simulator's previous-close columns.
    scanner.close_session(sim.previous_close())
    cols = sim.columns()
    tick = scanner.tick(cols, sim.open_at)
    events = list(tick.events)
    while sim.step < target:
        cols = sim.advance()
        tick = scanner.tick(cols, sim.open_at + timedelta(seconds=sim.step * _STEP_S))
        events += tick.events
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
    cal = calendar or MarketCalendar()
    sim = UniverseSim(seed=seed, size=size, day=cal.local_date(moment), step_seconds=_STEP_S,
                      calendar=cal)  # fmt: skip
    scanner = Scanner(sim.names)
    for name, text in scans.items():
        scanner.add(name, text)
    scanner.close_session(sim.previous_close())
    target = int((moment - sim.open_at).total_seconds() // _STEP_S)
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
