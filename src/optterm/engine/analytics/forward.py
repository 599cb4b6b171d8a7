"""The forward a chain's options are priced on: a listed future where the chain has one, else
put-call parity near the money (C - P = D(F - K)), else the carry forward. An index forward
carries the dividend yield and the market's own financing, so it is read from the chain's own
quotes rather than spot x e^(rt): an ITM quote read against a wrong forward sits "below
intrinsic" and has no IV at all."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from optterm.config import AnalyticsSettings
from optterm.engine.analytics.nanops import median_of_few
from optterm.model import ChainSnapshot

__all__ = ["PARITY_STRIKES", "parity_forward", "parity_forwards"]

# A fixed part of the method rather than a setting: how many strikes nearest spot the parity
# forward is read from.
PARITY_STRIKES = 3
_QUOTE = ("bid", "ask", "ltp")  # what a leg's mid is read from
_NAN = float("nan")


def _mid(bid: np.ndarray, ask: np.ndarray, ltp: np.ndarray) -> np.ndarray:
    """Mid where a sane two-sided quote exists, else the last traded price."""
    ok = (bid > 0) & (ask >= bid)
    return np.where(ok, 0.5 * (bid + ask), ltp)


def parity_forward(
    snap: ChainSnapshot, t: float, params: AnalyticsSettings
) -> tuple[float, str, float]:
    """(forward, source, discount). For options on a futures contract (MCX), that future's
    price, which is the chain's spot (Black-76 on it, no carry). Otherwise the median of
    F = K + (C - P)/D over the strikes nearest spot where both legs are priced; the carry
    forward S e^((r-q)t) when none are."""
    return parity_forwards([snap], [t], params)[0]


def parity_forwards(
    snaps: Sequence[ChainSnapshot], ts: Sequence[float], params: AnalyticsSettings
) -> list[tuple[float, str, float]]:
    """`parity_forward` of each chain (at its time to expiry in `ts`), the parity reads of a
    tick's chains in one pass: their columns end to end, each chain's strikes ordered nearest
    spot first by one stable sort on (chain, distance), which orders each chain's as its own
    stable sort would. Element by element the arithmetic is the same, so are the forwards."""
    out: list[tuple[float, str, float]] = []
    read: list[int] = []  # the chains whose forward is read from parity
    for i, (snap, t) in enumerate(zip(snaps, ts, strict=True)):
        discount = math.exp(-params.rate * t)
        out.append((_NAN, "", discount))
        if snap.underlying_future and snap.spot > 0:
            out[i] = (snap.spot, "futures", discount)
            continue
        futures = snap.meta.get("futures")
        if futures:
            try:
                value = float(futures)
            except ValueError:
                value = _NAN
            if value > 0:
                out[i] = (value, "futures", discount)
                continue
        if len(snap) and t > 0:
            read.append(i)
    estimates: dict[int, list[float]] = {}
    if read:
        chains = [snaps[i] for i in read]
        sizes = [len(s) for s in chains]
        strikes = np.concatenate([s.strikes for s in chains])
        call = _mid(*(np.concatenate([getattr(s.ce, f) for s in chains]) for f in _QUOTE))
        put = _mid(*(np.concatenate([getattr(s.pe, f) for s in chains]) for f in _QUOTE))
        both = np.flatnonzero((call > 0) & (put > 0))
        owner = np.repeat(np.arange(len(read)), sizes)[both]
        spot = np.array([s.spot for s in chains])[owner]
        order = np.lexsort((np.abs(strikes[both] - spot), owner))
        near, owner = both[order], owner[order]
        discounts = np.array([out[i][2] for i in read])[owner]
        values = (strikes[near] + (call[near] - put[near]) / discounts).tolist()
        starts = np.searchsorted(owner, np.arange(len(read) + 1)).tolist()
        for c, i in enumerate(read):
            lo, hi = starts[c], starts[c + 1]
            if hi > lo:
                estimates[i] = values[lo : min(hi, lo + PARITY_STRIKES)]
    for i, found in estimates.items():
        forward = median_of_few(found)
        # A stale quote can make parity nonsense; a forward more than 5 % off spot is not
        # a forward of any listed index or stock expiry.
        if forward > 0 and abs(forward / snaps[i].spot - 1.0) < 0.05:
            out[i] = (forward, "parity", out[i][2])
    carry = params.rate - params.dividend_yield
    for i, (snap, t) in enumerate(zip(snaps, ts, strict=True)):
        if not out[i][1]:  # neither a future nor parity: the carry forward
            out[i] = (snap.spot * math.exp(carry * t), "carry", out[i][2])
    return out
