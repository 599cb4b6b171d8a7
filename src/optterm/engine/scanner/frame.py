"""The scanner's memory: the current columns × underlyings and a ring of past ticks and closes,
which look-backs (`price 15m ago`, `price[-1]`, `price 1d ago`) and `avg/min/max(field, N)` read.

The ring is one preallocated float32 array (ticks × fields × underlyings): pushing a tick is one
copy, reading a look-back one index, and 256 ticks of 71 fields over 250 names is 18 MB. float32
keeps 7 significant digits, plenty for a threshold on a price or an OI figure; the current tick is
kept in float64. A look-back the ring does not reach is n/a (NaN), never a guess.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["DEFAULT_DAYS", "DEFAULT_DEPTH", "Context", "History"]

DEFAULT_DEPTH: Final = 256  # ticks: an hour at 15 s
DEFAULT_DAYS: Final = 30  # sessions' closes


class History:
    """Past ticks (newest first by `back`) and session closes, for one universe."""

    def __init__(
        self, fields: int, names: int, *, depth: int = DEFAULT_DEPTH, days: int = DEFAULT_DAYS
    ) -> None:
        if depth < 1 or days < 1:
            raise ValueError("depth and days must be at least 1")
        self.fields, self.names, self.depth = fields, names, depth
        self._ticks = np.full((depth, fields, names), np.nan, dtype=np.float32)
        self._times = np.full(depth, np.nan)
        self._head = -1
        self.count = 0
        self._closes = np.full((days, fields, names), np.nan, dtype=np.float32)
        self._close_head = -1
        self.close_count = 0

    def push(self, values: np.ndarray, at: float) -> None:
        """Add the tick taken at epoch second `at` (values: fields × names)."""
        self._head = (self._head + 1) % self.depth
        self._ticks[self._head] = values
        self._times[self._head] = at
        self.count = min(self.count + 1, self.depth)

    def push_close(self, values: np.ndarray) -> None:
        """Add a session's closing values (what `1d ago` reads next)."""
        self._close_head = (self._close_head + 1) % len(self._closes)
        self._closes[self._close_head] = values
        self.close_count = min(self.close_count + 1, len(self._closes))

    def tick(self, back: int) -> np.ndarray | None:
        if back >= self.count:
            return None
        return self._ticks[(self._head - back) % self.depth]

    def time(self, back: int) -> float | None:
        if back >= self.count:
            return None
        return float(self._times[(self._head - back) % self.depth])

    def back_at(self, seconds: float, back: int) -> int | None:
        """How many ticks back the latest tick at least `seconds` older than tick `back` is."""
        ref = self.time(back)
        if ref is None:
            return None
        order = (self._head - np.arange(self.count)[::-1]) % self.depth  # oldest → newest
        times = self._times[order]
        i = int(np.searchsorted(times, ref - seconds + 1e-6, side="right")) - 1
        if i < 0:
            return None
        return self.count - 1 - i

    def window(self, field: int, n: int, back: int) -> np.ndarray | None:
        """The last `n` values of `field` from tick `back` on (n × names); None if the ring
        holds fewer."""
        if back + n > self.count:
            return None
        newest = (self._head - back) % self.depth
        oldest = newest - n + 1
        if oldest >= 0:  # one slice of the ring: a view, no copy
            return self._ticks[oldest : newest + 1, field]
        rows = (newest - np.arange(n)) % self.depth
        return self._ticks[rows, field]

    def close(self, days: int) -> np.ndarray | None:
        if days > self.close_count:
            return None
        return self._closes[(self._close_head - days + 1) % len(self._closes)]


class Context:
    """One evaluation: the current values, the history, and a cache of looked-up columns shared
    by every rule of the tick (100 rules reading `price 15m ago` look it up once)."""

    def __init__(self, values: np.ndarray, history: History | None = None) -> None:
        self.values = values
        self.history = history
        self.n = values.shape[1]
        self._nan = np.full(self.n, np.nan)
        self._nan.setflags(write=False)
        self._cache: dict[tuple[object, ...], np.ndarray] = {}
        self._backs: dict[tuple[object, ...], int | None] = {}

    def column(self, field: int, back: int = 0, ago_s: float = 0.0, days: int = 0) -> np.ndarray:
        if not (back or ago_s or days):
            return self.values[field]
        key = (field, back, ago_s, days)
        col = self._cache.get(key)
        if col is None:
            col = self._cache[key] = self._lookup(field, back, ago_s, days)
        return col

    def _lookup(self, field: int, back: int, ago_s: float, days: int) -> np.ndarray:
        h = self.history
        if h is None:
            return self._nan
        if days:
            row = h.close(days)
            return self._nan if row is None else row[field].astype(np.float64)
        if ago_s:
            key = ("at", ago_s, back)
            if key in self._backs:
                found = self._backs[key]
            else:
                found = self._backs[key] = h.back_at(ago_s, back)
            if found is None:
                return self._nan
            back = found
        row = h.tick(back)
        return self._nan if row is None else row[field].astype(np.float64)

    def aggregate(self, fn: str, field: int, n: int, back: int) -> np.ndarray:
        key = ("agg", fn, field, n, back)
        col = self._cache.get(key)
        if col is None:
            win = None if self.history is None else self.history.window(field, n, back)
            if win is None:
                col = self._nan
            elif fn == "avg":  # summed in float64 straight from the float32 ring
                col = win.mean(0, dtype=np.float64)
            else:
                col = (win.min(0) if fn == "min" else win.max(0)).astype(np.float64)
            self._cache[key] = col
        return col
