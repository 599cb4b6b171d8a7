"""The simulator's clock: trading time laid end to end across sessions.

The simulator counts *trading* seconds since its start and maps them onto wall-clock time by
filling one session after another, so 15:39:59 on Friday is followed by 09:15:00 on Monday (or the
next trading day after a holiday). A demo run at night therefore still moves, and a whole session
at speed 60 takes the 6.5 minutes one would expect. Sessions need not be equally long: MCX's
closes at 23:30 under US daylight saving time and at 23:55 otherwise.
"""

from __future__ import annotations

import bisect
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
        # Trading seconds from session 0's open to the open of each session; one more entry
        # than there are sessions known (the last is where the next one would start).
        self._starts: list[float] = [0.0, calendar.session_seconds(day)]
        self._close_cache: dict[date, float] = {}

    @property
    def start(self) -> datetime:
        return self._opens[0] + timedelta(seconds=self.offset0)

    def _extend(self, n: int) -> None:
        while len(self._dates) <= n:
            nxt = self.calendar.next_trading_day(self._dates[-1])
            self._dates.append(nxt)
            self._opens.append(self.calendar.session_bounds(nxt)[0])
            self._starts.append(self._starts[-1] + self.calendar.session_seconds(nxt))

    def session_start(self, n: int) -> float:
        """Trading seconds from the start to the open of session n (negative for session 0
        when the start is into it)."""
        self._extend(n)
        return self._starts[n] - self.offset0

    def session_seconds(self, n: int) -> float:
        """Length of session n in seconds."""
        self._extend(n)
        return self._starts[n + 1] - self._starts[n]

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
        # Sessions are about equally long: a first guess, then the exact one from the starts.
        guess = math.floor(total / self.session_length + _EPS)
        self._extend(guess + 1)
        while self._starts[-1] <= total + _EPS:
            self._extend(len(self._dates))
        n = bisect.bisect_right(self._starts, total + _EPS) - 1
        return n, max(total - self._starts[n], 0.0)

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
        elapsed = self._starts[n] + (when - self.session_open(n)).total_seconds()
        elapsed -= self.offset0
        return elapsed if elapsed >= 0 else None

    def close_epoch(self, d: date) -> float:
        """Epoch seconds of the end of trading of an option expiring on `d`: the close of its
        day, or the segment's own expiry time (currency options: 12:30)."""
        cached = self._close_cache.get(d)
        if cached is None:
            cached = self.calendar.expiry_moment(d).timestamp()
            self._close_cache[d] = cached
        return cached
