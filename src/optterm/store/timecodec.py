"""How the store writes time: integer epoch microseconds UTC, on every backend.

Integers order and compare the same way in SQLite and PostgreSQL, so ranges and "newest first"
are plain integer comparisons. `to_us` refuses naive datetimes (their zone would be a guess);
`from_us` gives back tz-aware UTC.

Trading dates: Asia/Kolkata has been UTC+05:30 without DST since 1945, so the exchange-local
date of a stored time is a fixed shift of it. That lets SQL group rows by trading date in
portable integer arithmetic (`ist_day_number`) instead of each backend's date functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "DAY_US",
    "IST_OFFSET_US",
    "from_us",
    "from_us_or_none",
    "ist_date",
    "ist_day_number",
    "ist_day_start_us",
    "now_us",
    "to_us",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY: Final = date(1970, 1, 1)
_US: Final = timedelta(microseconds=1)
IST_OFFSET_US: Final = 19_800_000_000
DAY_US: Final = 86_400_000_000


def to_us(ts: datetime, name: str = "timestamp") -> int:
    """`ts` as epoch microseconds; ValueError (naming the argument) if it is naive."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {ts!r}")
    return (ts - _EPOCH) // _US


def from_us(us: int) -> datetime:
    """Epoch microseconds as a tz-aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def from_us_or_none(us: int | None) -> datetime | None:
    """`from_us` for a nullable column."""
    return None if us is None else from_us(us)


def now_us() -> int:
    return to_us(datetime.now(UTC))


def ist_date(us: int) -> date:
    """The trading date (Asia/Kolkata) of a stored time."""
    return _EPOCH_DAY + timedelta(days=(us + IST_OFFSET_US) // DAY_US)


def ist_day_start_us(day: date) -> int:
    """The stored time of 00:00 Asia/Kolkata on `day`."""
    return (day - _EPOCH_DAY).days * DAY_US - IST_OFFSET_US


def ist_day_number(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL for the trading date of a stored time, as days since 1970-01-01.

    Typed integer literals, inline: `//` on integers renders as plain integer division (FLOOR()
    is not in every SQLite build), and PostgreSQL needs GROUP BY to repeat the SELECT expression
    verbatim, which bound parameters would not."""
    # Imported here: the plain reader (store/plainread.py) uses this module without SQLAlchemy.
    from sqlalchemy import BigInteger, literal_column

    return (column + literal_column(str(IST_OFFSET_US), BigInteger)) // literal_column(
        str(DAY_US), BigInteger
    )
