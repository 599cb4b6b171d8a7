"""The scanner on the tick path: one universe, its history, the saved scans and their trackers.

`tick` takes one set of raw columns (a source's futures/ATM/chain fields for every underlying),
derives every field once, pushes the tick into the history ring and runs every scan against one
shared `Context` (so a look-back two scans read is looked up once), then feeds each scan's
matches to its tracker. The result is what a front end shows and a store records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from optterm.engine.scanner.evaluate import CompiledScan, ScanResult, compile_scan
from optterm.engine.scanner.fields import FIELDS, derive
from optterm.engine.scanner.frame import DEFAULT_DEPTH, Context, History
from optterm.engine.scanner.grammar import Scan, parse_scan
from optterm.engine.scanner.tracker import (
    DEFAULT_ENTER_AFTER,
    DEFAULT_LEAVE_AFTER,
    ScanEvent,
    Tracker,
)

__all__ = ["ScanTick", "Scanner"]


@dataclass(frozen=True)
class ScanTick:
    at: datetime
    values: np.ndarray  # every field × every underlying, this tick
    results: dict[str, ScanResult]
    events: list[ScanEvent]
    unavailable: Mapping[str, str] = field(default_factory=dict)


class Scanner:
    def __init__(
        self,
        names: Sequence[str],
        *,
        depth: int = DEFAULT_DEPTH,
        enter_after: int = DEFAULT_ENTER_AFTER,
        leave_after: int = DEFAULT_LEAVE_AFTER,
    ) -> None:
        if not names:
            raise ValueError("a scanner needs a universe of at least one underlying")
        self.names = tuple(names)
        self.history = History(len(FIELDS), len(self.names), depth=depth)
        self.enter_after, self.leave_after = enter_after, leave_after
        self._scans: dict[str, tuple[CompiledScan, Tracker]] = {}
        self._last: np.ndarray | None = None

    def add(self, name: str, scan: Scan | str) -> CompiledScan:
        """Add (or replace) scan `name`; ScanError for text that does not read."""
        parsed = parse_scan(scan) if isinstance(scan, str) else scan
        compiled = compile_scan(parsed, self.names)
        tracker = Tracker(
            name, self.names, enter_after=self.enter_after, leave_after=self.leave_after
        )
        self._scans[name] = (compiled, tracker)
        return compiled

    def remove(self, name: str) -> None:
        self._scans.pop(name, None)

    @property
    def scans(self) -> tuple[str, ...]:
        return tuple(self._scans)

    def compiled(self, name: str) -> CompiledScan:
        return self._scans[name][0]

    def members(self, name: str) -> tuple[str, ...]:
        return self._scans[name][1].members()

    def tick(self, raw: Mapping[str, np.ndarray], at: datetime) -> ScanTick:
        values, unavailable = derive(raw, len(self.names))
        self.history.push(values, at.timestamp())
        self._last = values
        ctx = Context(values, self.history)
        results: dict[str, ScanResult] = {}
        events: list[ScanEvent] = []
        for name, (compiled, tracker) in self._scans.items():
            result = compiled.run(ctx, unavailable)
            results[name] = result
            events += tracker.update(result.matched, at)
        return ScanTick(at, values, results, events, unavailable)

    def close_session(self, raw: Mapping[str, np.ndarray] | None = None) -> None:
        """Keep the session's closing values for `Nd ago` (the last tick's, or `raw`'s)."""
        values = derive(raw, len(self.names))[0] if raw is not None else self._last
        if values is not None:
            self.history.push_close(values)
