"""The live universe feed's latest frame, and a scan run over it.

A `LiveFrame` is one sweep of the feed (livefeed.py): its raw columns (copies: the frame is
handed across threads, to the TUI), the previous session's close, when it was taken and each
raw column's age at that moment. The engine keeps its newest one (live.py `frame`) for the
scanner screen; `optterm scan` takes one of its own (sweep.py).

`run_on_frame` evaluates a typed scan over one frame. It has no history behind it: look-backs
(`15m ago`, `price[-1]`), crossings and `avg/min/max` read n/a over it; a saved scan, which the
engine steps on every tick, has that history.

A derived field is as old as the oldest raw column it reads (`field_age`): `price_chg%` is as
old as the futures sweep, `straddle_chg%` as the ATM one; n/a (None) when one of them was
never given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, is_dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from functools import cache
from typing import Final

import numpy as np

from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS
from optterm.engine.scanner.grammar import Agg, Cross, FieldRef, Scan, parse_scan
from optterm.engine.scanner.run import ScanRun
from optterm.engine.scanner.scanner import Scanner

__all__ = [
    "NO_HISTORY",
    "LiveFrame",
    "field_age",
    "field_inputs",
    "needs_history",
    "run_on_frame",
]

Ages = Mapping[str, float | None]


@dataclass(frozen=True, eq=False)
class LiveFrame:
    provider: str
    names: tuple[str, ...]
    columns: Mapping[str, np.ndarray]
    previous_close: Mapping[str, np.ndarray]
    at: datetime
    ages: Ages  # each raw field's age in seconds at `at` (None: never given)
    notes: tuple[str, ...] = field(default=())  # what else a reader must know (a source down)

    def aged(self, seconds: float) -> LiveFrame:
        """The same frame with every quoted column at least `seconds` old (the market closed:
        the quotes are the last session's, however recently they were asked for)."""
        ages = {
            k: None if v is None else (v if k in _STATIC else max(v, seconds))
            for k, v in self.ages.items()
        }
        return replace(self, ages=ages)


_STATIC = frozenset(f.name for f in FIELDS if f.tier == "static")


class _Reads(Mapping[str, np.ndarray]):
    """A column mapping that writes down which names a derived field reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __getitem__(self, key: str) -> np.ndarray:
        self.read.append(key)
        return np.ones(1)

    def __iter__(self) -> Iterator[str]:
        return iter(self.read)

    def __len__(self) -> int:
        return len(self.read)


@cache
def field_inputs(name: str) -> tuple[str, ...]:
    """The raw columns field `name` reads (itself for a raw field)."""
    f = FIELDS[FIELD_INDEX[name]]
    if f.derived is None:
        return (name,)
    reads = _Reads()
    with np.errstate(all="ignore"):
        f.derived(reads)
    return tuple(dict.fromkeys(reads.read))


def field_age(name: str, ages: Ages) -> float | None:
    """Seconds since field `name` was last refreshed: the oldest raw column it reads (the
    universe's own `is_index` and `is_commodity` are static), None when one of them was never
    given."""
    oldest = 0.0
    for raw in field_inputs(name):
        if raw in ("is_index", "is_commodity"):
            continue
        age = ages.get(raw)
        if age is None:
            return None
        oldest = max(oldest, age)
    return oldest


NO_MCX: Final = (
    "the live universe feed sweeps the NSE F&O names only: no MCX commodity is in this scan "
    "(MCX scans run over the simulator's universe)"
)
NO_HISTORY: Final = (
    "look-backs, crossings and averages read n/a over one live sweep (no history behind it); "
    "save the scan (`optterm scans add`) to have the engine step it with its history"
)


def needs_history(scan: Scan) -> bool:
    """Whether `scan` reads past ticks: a look-back by tick or time, a crossing, an average
    (or min/max) over more than this tick. `1d ago` reads the previous close, which a frame has."""

    def reads_past(node: object) -> bool:
        if isinstance(node, FieldRef):
            return node.back > 0 or node.ago_s > 0
        if isinstance(node, Agg):
            return node.n > 1 or reads_past(node.field)
        if isinstance(node, Cross):
            return True
        if is_dataclass(node):
            return any(reads_past(getattr(node, f.name)) for f in dataclass_fields(node))
        if isinstance(node, list | tuple):
            return any(reads_past(n) for n in node)
        return False

    return reads_past(scan.where) or reads_past(scan.sort)


def run_on_frame(text: str, frame: LiveFrame) -> ScanRun:
    """Parse `text` (ScanError if it does not read) and run it over `frame`."""
    scan = parse_scan(text)
    scanner = Scanner(frame.names)
    scanner.add("scan", scan)
    scanner.close_session(frame.previous_close)
    tick = scanner.tick(frame.columns, frame.at)
    notes = (*frame.notes, NO_HISTORY) if needs_history(scan) else frame.notes
    if scan.universe in ("mcx", "all"):  # said, so an empty MCX result never reads as "none"
        notes = (*notes, NO_MCX)
    return ScanRun(
        scan=scan,
        result=tick.results["scan"],
        values=tick.values,
        names=frame.names,
        at=frame.at.astimezone(UTC),
        source=frame.provider,
        ages=dict(frame.ages),
        notes=notes,
    )
