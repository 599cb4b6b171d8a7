"""A chain's legs are frozen copies of what the provider gave: nothing outside can change them,
and a bad column is named."""

from __future__ import annotations

import numpy as np
import pytest

from optterm.model import LEG_FIELDS, Legs


def test_columns_are_frozen_copies_that_cannot_be_made_writeable() -> None:
    given = [np.arange(5, dtype=float) + i for i in range(len(LEG_FIELDS))]
    legs = Legs(*given)
    given[0][0] = 99.0
    assert legs.oi[0] == 0.0
    for name in LEG_FIELDS:
        col = legs.column(name)
        with pytest.raises(ValueError, match="read-only"):
            col[0] = 1.0
        with pytest.raises(ValueError, match="WRITEABLE"):
            col.flags.writeable = True
    assert np.array_equal(legs.ask_qty, given[-1])


def test_missing_optional_columns_are_nan_and_numbers_become_floats() -> None:
    legs = Legs(*([1, 2, 3] for _ in range(7)))
    assert legs.oi.dtype == np.float64 and list(legs.iv) == [1.0, 2.0, 3.0]
    for name in ("prev_close", "bid_qty", "ask_qty"):
        assert np.isnan(legs.column(name)).all() and len(legs.column(name)) == 3
    assert len(legs.take(slice(1, 3))) == 2


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([np.zeros(3)] * 6 + [np.zeros(4)], "column 'iv' has 4 values, expected 3"),
        ([np.zeros((2, 2))] * 7, "column 'oi' must be one-dimensional"),
        ([1.0] * 7, "column 'oi' must be one-dimensional"),
    ],
)
def test_a_bad_column_is_named(columns: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Legs(*columns)  # type: ignore[arg-type]
