"""Year fractions under the two day counts a trader compares against.

- calendar/365: seconds to the expiry's settlement over a 365-day year (optterm's chain analytics);
- trading/252: trading sessions to the settlement over a 252-session year, each session counting
  by the fraction of its hours still ahead (what Sensibull's probabilities reproduce with).

The day count is the volatility clock only: forwards carry and discounting always run on calendar
time (money accrues every day, the market moves on trading days).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np

from optterm.market import MarketCalendar

__all__ = ["DAY_COUNTS", "DayClock", "DayCount", "calendar_years"]

DayCount = Literal["calendar", "trading"]
DAY_COUNTS: tuple[DayCount, ...] = ("calendar", "trading")
_YEAR_S = 365.0 * 86400.0
_BASIS = {"calendar": 365.0, "trading": 252.0}


def calendar_years(start: datetime, end: datetime) -> float:
    """Calendar years from `start` to `end`; 0 once past."""
    return max((end - start).total_seconds(), 0.0) / _YEAR_S


class DayClock:
    """Year fractions in one day count on one exchange calendar. Trading days are counted with
    numpy's business-day calendar (holidays included), so a fraction costs microseconds however
    far the expiry is."""

    __slots__ = ("_busdays", "_cal", "_session_s", "basis", "day_count")

    def __init__(self, calendar: MarketCalendar, day_count: DayCount = "calendar") -> None:
        if day_count not in _BASIS:
            raise ValueError(f"day count must be one of {', '.join(DAY_COUNTS)}, got {day_count!r}")
        self.day_count: DayCount = day_count
        self.basis = _BASIS[day_count]  # days per year: theta per day divides by it
        self._cal = calendar
        self._session_s = calendar.session_seconds()
        holidays = np.array(sorted(calendar.holidays), dtype="datetime64[D]")
        self._busdays = np.busdaycalendar(weekmask="1111100", holidays=holidays)

    def years(self, start: datetime, end: datetime) -> float:
        """The year fraction from `start` to `end` (0 once past)."""
        if self.day_count == "calendar":
            return calendar_years(start, end)
        return self.trading_days(start, end) / self.basis

    def trading_days(self, start: datetime, end: datetime) -> float:
        """Sessions between `start` and `end`: whole sessions count 1, the first and last by the
        share of their hours inside the span."""
        if end <= start:
            return 0.0
        d0 = self._cal.local_date(start)
        d1 = self._cal.local_date(end)
        if d0 == d1:
            return self._part(d0, start, end)
        inner = int(np.busday_count(d0 + timedelta(days=1), d1, busdaycal=self._busdays))
        return self._part(d0, start, end) + inner + self._part(d1, start, end)

    def _part(self, d: date, start: datetime, end: datetime) -> float:
        if not self._cal.is_trading_day(d):
            return 0.0
        opened, closed = self._cal.session_bounds(d)
        lo, hi = max(opened, start.astimezone(UTC)), min(closed, end.astimezone(UTC))
        return max((hi - lo).total_seconds(), 0.0) / self._session_s
