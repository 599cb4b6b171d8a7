"""The unusual-activity detector's neighbours' median, taken at the few strikes that could be
a hit, is numpy's nanmedian of the same neighbourhood, to the bit (NaN, inf and edges too)."""

from __future__ import annotations

import warnings

import numpy as np

from optterm.engine.analytics.patterns import UNUSUAL_NEIGHBOURS, _neighbours_median


def test_neighbours_median_is_nanmedian_of_the_neighbourhood() -> None:
    rng = np.random.default_rng(5)
    n = UNUSUAL_NEIGHBOURS
    for _ in range(300):
        row = rng.lognormal(0.0, 1.0, int(rng.integers(1, 12)))
        row[rng.random(row.size) < 0.3] = np.nan
        row[rng.random(row.size) < 0.05] = np.inf
        values = row.tolist()
        for j in range(row.size):
            near = np.concatenate((row[max(j - n, 0) : j], row[j + 1 : j + n + 1]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: numpy warns
                want = float(np.nanmedian(near)) if near.size else float("nan")
            got = _neighbours_median(values, j, n)
            assert got == want or (np.isnan(got) and np.isnan(want)), (values, j, got, want)
