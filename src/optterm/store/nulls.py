"""NaN ↔ NULL for the store's float columns.

SQLite cannot store NaN (it becomes NULL, or an error), so the store writes NULL where the model
has NaN and reads NULL back as NaN. Columns whose model value is Optional (None meaning "not
known yet", not a failed number) read NULL as None and do not use `none_to_nan`.
"""

from __future__ import annotations

import math

__all__ = ["nan_to_none", "none_to_nan"]


def nan_to_none(value: float | None) -> float | None:
    """What to write: NULL for None and NaN, else the float."""
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f


def none_to_nan(value: float | None) -> float:
    """What to read back: NaN for NULL, else the float."""
    return math.nan if value is None else float(value)
