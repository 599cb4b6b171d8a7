"""NaN-aware reductions for a chain's few hundred values, cheaper than numpy's general ones:
at that size `np.nan_to_num` and `np.nansum` cost more in per-call machinery than in work, and
a tick calls them for every chain."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["nansum", "nz"]


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
