"""Default exchange holidays, kept apart so light modules (config) and the calendar share one list.

NSE F&O trading holidays in 2026 that fall on weekdays. This list must be checked every year
against NSE's holiday master (GET /api/holiday-master?type=trading, the "FO" list) because the
exchange announces the next year's holidays only in December and occasionally amends them.
`[market] holidays` in the config overrides it.
"""

from __future__ import annotations

from datetime import date

__all__ = ["NSE_HOLIDAYS_2026"]

NSE_HOLIDAYS_2026: tuple[date, ...] = (
    date(2026, 1, 26),
    date(2026, 3, 3),
    date(2026, 3, 26),
    date(2026, 3, 31),
    date(2026, 4, 3),
    date(2026, 4, 14),
    date(2026, 5, 1),
    date(2026, 5, 28),
    date(2026, 6, 26),
    date(2026, 9, 14),
    date(2026, 10, 2),
    date(2026, 10, 20),
    date(2026, 11, 10),
    date(2026, 11, 24),
    date(2026, 12, 25),
)
