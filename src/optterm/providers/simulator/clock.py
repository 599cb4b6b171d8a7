"""The simulator's clock: trading time laid end to end across sessions.

The simulator counts *trading* seconds since its start and maps them onto wall-clock time by
filling one session after another, so 15:39:59 on Friday is followed by 09:15:00 on Monday (or the
next trading day after a holiday). A demo run at night therefore still moves, and a whole session
at speed 60 takes the 6.5 minutes one would expect.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from optterm.market import MarketCalendar

__all__ = ["SessionClock", "default_start"]

# Float noise in elapsed = k * step (step 0.1 s, say) must not push an exact session boundary into
# the previous session or the last step of a session into the next one.
_EPS = 1e-9


def default_start(calendar: MarketCalendar, now: datetime) -> datetime:
    """The open of the most recent session that opened at or before `now` (UTC)."""
    today = calendar.local_date(now)
    if calendar.is_trading_day(today) and now >= calendar.session_bounds(today)[0]:
        return calendar.session_bounds(today)[0]
    return calendar.session_bounds(calendar.previous_trading_day(today))[0]


class SessionClock:
    """Converts between trading seconds elapsed since `start` and wall-clock time.

    A `start` inside a session keeps its offset into that session; one outside every session
    (night, weekend, holiday) begins at the next session's open.
    """

    def __init__(self, calendar: MarketCalendar, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"simulator start must be timezone-aware, got {start!r}")
        self.calendar = calendar
        self.session_length = calendar.session_seconds()
        day = calendar.local_date(start)
        offset = 0.0
        if calendar.is_trading_day(day):
            opened, closed = calendar.session_bounds(day)
            if opened <= start < closed:
                offset = (start - opened).total_seconds()
            elif start >= closed:
                day = calendar.next_trading_day(day)
        else:
            day = calendar.next_trading_day(day)
        self.offset0 = offset
        self._dates: list[date] = [day]
        self._opens: list[datetime] = [calendar.session_bounds(day)[0]]
        self._close_cache: dict[date, float] = {}

    @property
    def start(self) -> datetime:
        return self._opens[0] + timedelta(seconds=self.offset0)

    def _extend(self, n: int) -> None:
        while len(self._dates) <= n:
            nxt = self.calendar.next_trading_day(self._dates[-1])
            self._dates.append(nxt)
            self._opens.append(self.calendar.session_bounds(nxt)[0])

    def session_date(self, n: int) -> date:
        """Exchange-local date of the n-th session since the start (0 = the start's session)."""
        self._extend(n)
        return self._dates[n]

    def session_open(self, n: int) -> datetime:
        self._extend(n)
        return self._opens[n]

    def locate(self, elapsed: float) -> tuple[int, float]:
        """(session index, seconds since that session's open) after `elapsed` trading seconds."""
        total = self.offset0 + max(elapsed, 0.0)
        n = math.floor(total / self.session_length + _EPS)
        return n, max(total - n * self.session_length, 0.0)

    def session_index(self, elapsed: float) -> int:
        return self.locate(elapsed)[0]

    def at(self, elapsed: float) -> datetime:
        """Wall-clock (UTC) time after `elapsed` trading seconds."""
        n, offset = self.locate(elapsed)
        return self.session_open(n) + timedelta(seconds=offset)

    def epoch(self, elapsed: float) -> float:
        n, offset = self.locate(elapsed)
        return self.session_open(n).timestamp() + offset

    def elapsed_at(self, when: datetime) -> float | None:
        """Trading seconds from the start to `when`; None if `when` is outside every session
        or before the start."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got {when!r}")
        when = when.astimezone(UTC)
        if when < self._opens[0] or not self.calendar.is_open(when):
            return None
        day = self.calendar.local_date(when)
        n = 0
        while self.session_date(n) < day:
            n += 1
        if self.session_date(n) != day:
            return None
        elapsed = n * self.session_length + (when - self.session_open(n)).total_seconds()
        elapsed -= self.offset0
        return elapsed if elapsed >= 0 else None

    def close_epoch(self, d: date) -> float:
        """Epoch seconds of the close on `d` (options expire at the close of their day)."""
        cached = self._close_cache.get(d)
        if cached is None:
            cached = self.calendar.session_bounds(d)[1].timestamp()
            self._close_cache[d] = cached
        return cached
