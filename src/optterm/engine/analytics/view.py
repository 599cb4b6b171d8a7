"""The market view of one chain: simple, stated votes (PCR, spot against max pain and the walls,
the day's buildups near the money) added up to a bias, each vote a reason the screen shows.
`viewhold.py` holds the view steady from tick to tick."""

from __future__ import annotations

import math

import numpy as np

from optterm.config import AnalyticsSettings
from optterm.engine.analytics.changes import Changes
from optterm.engine.analytics.nanops import nansum, nz
from optterm.model import Bias, Buildup, ChainSnapshot, MarketView

__all__ = ["VOTE_FULL_PCT", "buildup_vote", "market_view"]

VOTE_FULL_PCT = 10.0  # the share of nearby OI built one way that counts as a full vote


_BULLISH_CODES = {
    # (side, buildup) -> vote: writers of puts and buyers of calls lean bullish, and so on.
    ("CE", Buildup.LONG_BUILDUP): 1.0,
    ("CE", Buildup.SHORT_BUILDUP): -1.0,
    ("CE", Buildup.SHORT_COVERING): 1.0,
    ("CE", Buildup.LONG_UNWINDING): -1.0,
    ("PE", Buildup.LONG_BUILDUP): -1.0,
    ("PE", Buildup.SHORT_BUILDUP): 1.0,
    ("PE", Buildup.SHORT_COVERING): -1.0,
    ("PE", Buildup.LONG_UNWINDING): 1.0,
}
_VOTE_CE = np.array([0.0] + [_BULLISH_CODES["CE", b] for b in list(Buildup)[1:]])
_VOTE_PE = np.array([0.0] + [_BULLISH_CODES["PE", b] for b in list(Buildup)[1:]])


def buildup_vote(snap: ChainSnapshot, day: Changes, width: int, atm: int | None = None) -> float:
    """The day's buildups within `width` strikes of ATM as one number in -1..1: the OI built
    (or shed) in a bullish minus a bearish way, as a share of those strikes' OI, with
    VOTE_FULL_PCT % counting fully. Weighing by the OI rather than by the change alone means a
    quiet day's small changes — premiums following spot on barely moving OI — say little.
    `atm` is `snap.atm_index()` when the caller has it already."""
    if not len(snap) or not day.basis.available:
        return 0.0
    if atm is None:
        atm = snap.atm_index()
    sl = slice(max(atm - width, 0), atm + width + 1)
    w_c = np.abs(nz(day.ce.oi[sl]))
    w_p = np.abs(nz(day.pe.oi[sl]))
    oi = nansum(snap.ce.oi[sl]) + nansum(snap.pe.oi[sl])
    if not oi > 0:
        return 0.0
    net = float(w_c @ _VOTE_CE[day.ce.buildup[sl]] + w_p @ _VOTE_PE[day.pe.buildup[sl]])
    return max(-1.0, min(1.0, net / oi * 100.0 / VOTE_FULL_PCT))


def market_view(
    spot: float,
    pcr: float,
    pain: float,
    support: float,
    resistance: float,
    vote: float,
    params: AnalyticsSettings,
) -> MarketView:
    """Add up simple, stated votes. ≥ +1 is bullish, ≤ -1 bearish; a spot boxed between close
    walls with no strong vote is a range; anything else neutral."""
    score = 0.0
    reasons: list[str] = []
    if math.isfinite(pcr):
        if pcr >= params.pcr_bullish:
            score += 1.0
            reasons.append(f"PCR {pcr:.2f} ≥ {params.pcr_bullish:g} (puts written)")
        elif pcr <= params.pcr_bearish:
            score -= 1.0
            reasons.append(f"PCR {pcr:.2f} ≤ {params.pcr_bearish:g} (calls written)")
        else:
            reasons.append(f"PCR {pcr:.2f} neutral")
    if math.isfinite(pain) and pain > 0:
        dist = (spot / pain - 1.0) * 100.0
        if dist > params.max_pain_band_pct:
            score -= 0.5
            reasons.append(f"spot {dist:.1f}% above max pain {pain:g}")
        elif dist < -params.max_pain_band_pct:
            score += 0.5
            reasons.append(f"spot {-dist:.1f}% below max pain {pain:g}")
        else:
            reasons.append(f"spot at max pain {pain:g}")
    boxed = False
    if math.isfinite(support) and math.isfinite(resistance):
        if spot > resistance:
            score += 1.0
            reasons.append(f"above call wall {resistance:g}")
        elif spot < support:
            score -= 1.0
            reasons.append(f"below put wall {support:g}")
        elif support < resistance:
            width = (resistance - support) / spot * 100.0
            boxed = width <= params.range_width_pct
            reasons.append(f"walls {support:g}–{resistance:g}")
    if vote >= 0.25:
        score += 1.0 if vote >= 0.5 else 0.5
        reasons.append(f"day's buildups lean bullish ({vote:+.2f})")
    elif vote <= -0.25:
        score -= 1.0 if vote <= -0.5 else 0.5
        reasons.append(f"day's buildups lean bearish ({vote:+.2f})")
    if score >= 1.0:
        bias = Bias.BULLISH
    elif score <= -1.0:
        bias = Bias.BEARISH
    elif boxed:
        bias = Bias.RANGE
    else:
        bias = Bias.NEUTRAL
    return MarketView(bias, score, tuple(reasons))
