"""The column-wise number text of the export equals the per-cell text for every float64."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.present.export import format_numbers


def _expected(x: float, missing: str) -> str:
    if not math.isfinite(x):
        return missing
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def _texts(values: np.ndarray, missing: bytes) -> list[str]:
    chars, mask = format_numbers(values, missing)
    return [chars[i][mask[i]].tobytes().decode() for i in range(values.shape[0])]


def _check(values: list[float]) -> None:
    v = np.array(values, dtype=np.float64)
    for missing in (b"", b"null"):
        assert _texts(v, missing) == [_expected(x, missing.decode()) for x in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40))
def test_any_float_formats_like_repr(values: list[float]) -> None:
    _check(values)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**15), 10**15), st.integers(0, 8)).map(
            lambda t: t[0] / 10 ** t[1]
        ),
        max_size=40,
    )
)
def test_decimals_format_like_repr(values: list[float]) -> None:
    _check(values)


def test_edges() -> None:
    _check(
        [0.0, -0.0, 1e-4, 9.99999e-5, 1e9, 999999999.999999, 2.0**53, 2.0**53 - 1, -(2.0**53) + 1,
         0.1 + 0.2, 5e-324, 1.7976931348623157e308, 123.456789, 0.000123, -0.05, 1e15 + 0.5]
    )  # fmt: skip
    assert _texts(np.empty(0), b"") == []
