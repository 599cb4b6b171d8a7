"""NaN-aware reductions (and a median of a few values) for a chain, cheaper than numpy's own:
at that size `np.nan_to_num` and `np.nansum` cost more in per-call machinery than in work, and
a tick calls them for every chain."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["median_of_few", "nansum", "nansums", "nz"]


def nz(x: np.ndarray) -> np.ndarray:
    """`np.nan_to_num(x)` (NaN → 0, ±inf → the largest finite float) for less: its general
    machinery costs more than the work on a chain's few hundred values. An array with nothing to
    replace (a finite sum: no NaN, no inf) is returned as it is, not copied: read it only."""
    if math.isfinite(x.sum()):
        return x
    out = np.where(np.isnan(x), 0.0, x)
    if np.isinf(out).any():
        return np.nan_to_num(x)
    return out


def nansum(x: np.ndarray) -> float:
    """`np.nansum(x)`, the same sum of the same array, without its per-call machinery."""
    return float(np.where(np.isnan(x), 0.0, x).sum())


def nansums(rows: np.ndarray) -> list[float]:
    """`nansum` of each row (the same sums: a row of a 2-D array is summed as the 1-D array)."""
    return np.where(np.isnan(rows), 0.0, rows).sum(axis=1).tolist()


def median_of_few(values: list[float]) -> float:
    """`np.median` of a few values (a parity forward's estimates), the same float without its
    machinery: the middle one, or the mean of the middle two computed as numpy does, (a+b)/2."""
    if any(math.isnan(x) for x in values):
        return math.nan  # as np.median: sorting would misplace a NaN
    v = sorted(values)
    mid = len(v) // 2
    if len(v) % 2:
        return v[mid]
    return (v[mid - 1] + v[mid]) / 2.0
