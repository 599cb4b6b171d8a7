"""Who entered and who left a scan, with hysteresis, for every underlying at once.

A name enters after matching `enter_after` runs in a row and leaves after failing `leave_after`
runs in a row (defaults: 30 s in, 2 minutes out at the 15-s tick), so a name hovering at a
threshold (OI change 9.9 %, 10.1 %, 9.8 % against `> 10`) is one entry, not an enter/leave pair
every tick. A name whose fields are n/a does not match: it leaves like any other, after the same
number of runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

__all__ = ["DEFAULT_ENTER_AFTER", "DEFAULT_LEAVE_AFTER", "ScanEvent", "Tracker"]

DEFAULT_ENTER_AFTER: Final = 2  # 30 s at the 15-s tick
DEFAULT_LEAVE_AFTER: Final = 8  # 2 min at the 15-s tick


@dataclass(frozen=True, slots=True)
class ScanEvent:
    scan: str
    symbol: str
    kind: str  # "enter" or "leave"
    at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"scan": self.scan, "symbol": self.symbol, "kind": self.kind,
                "at": self.at.isoformat()}  # fmt: skip


class Tracker:
    """The inside/outside state of one scan over one universe."""

    def __init__(
        self,
        scan: str,
        names: Sequence[str],
        *,
        enter_after: int = DEFAULT_ENTER_AFTER,
        leave_after: int = DEFAULT_LEAVE_AFTER,
    ) -> None:
        if enter_after < 1 or leave_after < 1:
            raise ValueError("enter_after and leave_after must be at least 1")
        self.scan = scan
        self.names = tuple(names)
        self.enter_after, self.leave_after = enter_after, leave_after
        n = len(self.names)
        self.inside = np.zeros(n, dtype=bool)
        self._in = np.zeros(n, dtype=np.int32)
        self._out = np.zeros(n, dtype=np.int32)

    def update(self, matched: np.ndarray, at: datetime) -> list[ScanEvent]:
        """Feed one run's matches; the names that entered or left at `at`."""
        self._in = np.where(matched, self._in + 1, 0)
        self._out = np.where(matched, 0, self._out + 1)
        enter = ~self.inside & (self._in >= self.enter_after)
        leave = self.inside & (self._out >= self.leave_after)
        if not (enter.any() or leave.any()):
            return []
        self.inside = (self.inside | enter) & ~leave
        return [ScanEvent(self.scan, self.names[i], "enter", at) for i in np.flatnonzero(enter)] + [
            ScanEvent(self.scan, self.names[i], "leave", at) for i in np.flatnonzero(leave)
        ]

    def members(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in np.flatnonzero(self.inside))
