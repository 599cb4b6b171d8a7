"""Placing a spec's legs on one stored chain, and reading a leg's quote from it.

The strategy builder's symbolic strikes (strategy/templates.py: A, C1, P1, W) on the columns a
backtest decodes: A is the listed strike nearest the spot; C1 / P1 by offset, premium (nearest
mid, else LTP), straddle width (A +/- value x the ATM straddle's mid) or delta (from the stored
IVs); W a number of listed strikes. Fixed strikes and signed legs are taken as written. A
futures leg (FUT) has no strike (0.0 here) and is quoted at the snapshot's stored futures LTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from optterm.engine.backtest.spec import Spec
from optterm.strategy.templates import strike_value

__all__ = ["place", "quote"]


def place(
    spec: Spec, strikes: np.ndarray, cols: Mapping[str, np.ndarray], spot: float
) -> list[tuple[str, float, int]]:
    """(kind, strike, lots) of each leg on one chain (fixed strikes kept), or [] when the
    template does not fit it."""
    line = spec.line
    if line.template is None:
        return [(g.kind, float(g.strike or 0.0), g.lots * line.multiplier) for g in line.legs]
    t = line.template
    if line.strikes:
        given = dict(zip(t.strike_exprs(), line.strikes, strict=True))
        return [
            (g.kind, 0.0 if g.kind == "FUT" else given[g.at], g.lots * line.multiplier)
            for g in t.legs
        ]
    n = strikes.size
    if n == 0:
        return []
    a = int(np.argmin(np.abs(strikes - spot)))
    p = spec.placement
    v = p.amount
    ce_px = np.where(np.isfinite(cols["ce_bid"]) & (cols["ce_bid"] > 0),
                     (cols["ce_bid"] + cols["ce_ask"]) / 2, cols["ce_ltp"])  # fmt: skip
    pe_px = np.where(np.isfinite(cols["pe_bid"]) & (cols["pe_bid"] > 0),
                     (cols["pe_bid"] + cols["pe_ask"]) / 2, cols["pe_ltp"])  # fmt: skip
    if p.by == "offset":
        c1, p1 = a + round(v), a - round(v)
    elif p.by == "straddle":
        width = v * (ce_px[a] + pe_px[a])
        if not math.isfinite(width):
            return []
        c1 = int(np.argmin(np.abs(strikes - (strikes[a] + width))))
        p1 = int(np.argmin(np.abs(strikes - (strikes[a] - width))))
    elif p.by == "premium":
        calls = np.where((strikes >= strikes[a]) & np.isfinite(ce_px), np.abs(ce_px - v), np.inf)
        puts = np.where((strikes <= strikes[a]) & np.isfinite(pe_px), np.abs(pe_px - v), np.inf)
        if not (np.isfinite(calls).any() and np.isfinite(puts).any()):
            return []
        c1, p1 = int(np.argmin(calls)), int(np.argmin(puts))
    else:  # delta: the stored IVs, a quick Black-Scholes delta on the spot
        c1, p1 = _by_delta(strikes, cols, spot, v)
        if c1 < 0:
            return []
    out = []
    for g in t.legs:
        if g.kind == "FUT":
            out.append((g.kind, 0.0, g.lots * line.multiplier))
            continue
        i = int(strike_value(g.at, a, c1, p1, p.width))
        if not 0 <= i < n:
            return []
        out.append((g.kind, float(strikes[i]), g.lots * line.multiplier))
    return out


def _by_delta(
    strikes: np.ndarray, cols: Mapping[str, np.ndarray], spot: float, target: float
) -> tuple[int, int]:
    from optterm.engine.analytics.blackmath import ndtr

    t = 7 / 365  # the stored IV already carries the expiry; a week's horizon orders the strikes
    out = []
    for side in ("ce", "pe"):
        iv = cols[f"{side}_iv"]
        with np.errstate(all="ignore"):
            d1 = (np.log(spot / strikes) + 0.5 * iv * iv * t) / (iv * math.sqrt(t))
            delta = ndtr(d1) if side == "ce" else ndtr(d1) - 1
        gap = np.where(np.isfinite(delta), np.abs(np.abs(delta) - target), np.inf)
        if not np.isfinite(gap).any():
            return -1, -1
        out.append(int(np.argmin(gap)))
    return out[0], out[1]


def quote(
    cols: Mapping[str, np.ndarray],
    lo: int,
    strikes: np.ndarray,
    kind: str,
    k: float,
    futures: float = math.nan,
) -> tuple[float, float, float] | None:
    """(bid, ask, ltp) of a leg on one snapshot; a future's is (NaN, NaN, its stored LTP): no
    futures bid or ask is stored. None when the strike (or the futures quote) is not there."""
    if kind == "FUT":
        return None if not math.isfinite(futures) else (math.nan, math.nan, futures)
    i = int(np.searchsorted(strikes, k))
    if i >= strikes.size or abs(strikes[i] - k) > 1e-6:
        return None
    side = "ce" if kind == "CE" else "pe"
    j = lo + i
    return (
        float(cols[f"{side}_bid"][j]),
        float(cols[f"{side}_ask"][j]),
        float(cols[f"{side}_ltp"][j]),
    )
