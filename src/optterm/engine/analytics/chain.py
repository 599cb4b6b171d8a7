"""Chain analytics: IV and Greeks per leg, chain metrics, OI buildups and a market view.

Everything is vectorised over the columnar snapshot. Pricing is Black-76 on the forward, and the
forward comes from put-call parity near the money (C - P = D(F - K)) rather than spot x e^(rt): an
index forward carries the dividend yield and the market's own financing, and an ITM quote read
against a wrong forward sits "below intrinsic" and has no IV at all.

Definitions (PCR, max pain, walls, GEX, risk reversal) are the standard ones and are restated in
docs/analytics.md, so every number on screen can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import numpy as np

from optterm.config.settings import Settings
from optterm.engine.analytics.blackmath import greeks as bs_greeks
from optterm.engine.analytics.blackmath import implied_vol
from optterm.market import IST
from optterm.model import Bias, Buildup, ChainSnapshot, Legs, MarketView, Metrics

__all__ = [
    "AnalyticsParams",
    "Enriched",
    "SideAnalytics",
    "buildups",
    "enrich",
    "gamma_flip",
    "iv_rank",
    "max_pain",
    "time_to_expiry",
]

_YEAR_S = 365.0 * 86400.0
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class AnalyticsParams:
    """The knobs of `enrich`, read once from `[analytics]` (see config.example.toml)."""

    rate: float = 0.065  # annual, continuously compounded: discounting and the carry fallback
    dividend_yield: float = 0.0  # only used when no parity forward can be read from the chain
    solve_iv: str = (
        "missing"  # "missing": keep the provider's IV where given; "all": solve every leg
    )
    gex_convention: str = "dealer_long_calls"  # or "dealer_short_all"
    parity_strikes: int = 3  # strikes nearest spot used for the parity forward
    pcr_bullish: float = 1.2
    pcr_bearish: float = 0.8
    max_pain_band_pct: float = 0.5  # spot further than this from max pain votes toward it
    buildup_strikes: int = 5  # strikes each side of ATM read for the buildup vote
    range_width_pct: float = 3.0  # support..resistance narrower than this, spot inside: "range"
    iv_rank_min_days: int = 20
    expiry_time: time = time(15, 30)  # options stop trading (and are settled) at this local time
    tz: ZoneInfo = IST  # the exchange zone; from_settings uses [market] timezone

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalyticsParams:
        a, market = settings.analytics, settings.market
        return cls(
            rate=a.rate,
            dividend_yield=a.dividend_yield,
            solve_iv=a.solve_iv,
            gex_convention=a.gex_convention,
            pcr_bullish=a.pcr_bullish,
            pcr_bearish=a.pcr_bearish,
            max_pain_band_pct=a.max_pain_band_pct,
            range_width_pct=a.range_width_pct,
            iv_rank_min_days=a.iv_rank_min_days,
            expiry_time=market.close,
            tz=market.tz,
        )


@dataclass(frozen=True, slots=True, eq=False)
class SideAnalytics:
    """Per-strike analytics of one side; arrays aligned with the snapshot's strikes."""

    iv: np.ndarray  # the IV used (provider's where kept, else solved); NaN where unknown
    iv_solved: np.ndarray  # our own solve from LTP (NaN where not solved or not solvable)
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray  # rupees per calendar day, per unit
    vega: np.ndarray  # rupees per vol point, per unit
    gex: np.ndarray  # rupees of delta per 1 % spot move, signed by the convention
    buildup: np.ndarray  # int8 Buildup codes against the previous snapshot


@dataclass(frozen=True, slots=True, eq=False)
class Enriched:
    """A snapshot with everything computed from it (and from the snapshot before it)."""

    snapshot: ChainSnapshot
    ce: SideAnalytics
    pe: SideAnalytics
    pain: np.ndarray  # total payout to option holders if expiry settled at each strike
    metrics: Metrics

    def side(self, side: str) -> SideAnalytics:
        return self.ce if side == "CE" else self.pe


def time_to_expiry(snap: ChainSnapshot, params: AnalyticsParams) -> float:
    """Calendar years from the data's timestamp to the expiry's settlement time; 0 once past."""
    settle = datetime.combine(snap.expiry, params.expiry_time, tzinfo=params.tz)
    return max((settle - snap.provider_ts).total_seconds(), 0.0) / _YEAR_S


def _mid(legs: Legs) -> np.ndarray:
    """Mid where a sane two-sided quote exists, else the last traded price."""
    bid, ask = legs.bid, legs.ask
    ok = (bid > 0) & (ask >= bid)
    return np.where(ok, 0.5 * (bid + ask), legs.ltp)


def parity_forward(
    snap: ChainSnapshot, t: float, params: AnalyticsParams
) -> tuple[float, str, float]:
    """(forward, source, discount). Median of F = K + (C - P)/D over the strikes nearest spot
    where both legs are priced; the carry forward S e^((r-q)t) when none are."""
    discount = math.exp(-params.rate * t)
    futures = snap.meta.get("futures")
    if futures:
        try:
            value = float(futures)
        except ValueError:
            value = _NAN
        if value > 0:
            return value, "futures", discount
    n = len(snap)
    if n and t > 0:
        call, put = _mid(snap.ce), _mid(snap.pe)
        both = np.flatnonzero((call > 0) & (put > 0))
        if both.size:
            near = both[np.argsort(np.abs(snap.strikes[both] - snap.spot), kind="stable")]
            near = near[: params.parity_strikes]
            estimates = snap.strikes[near] + (call[near] - put[near]) / discount
            forward = float(np.median(estimates))
            # A stale quote can make parity nonsense; a forward more than 5 % off spot is not
            # a forward of any listed index or stock expiry.
            if forward > 0 and abs(forward / snap.spot - 1.0) < 0.05:
                return forward, "parity", discount
    carry = params.rate - params.dividend_yield
    return snap.spot * math.exp(carry * t), "carry", discount


def max_pain(strikes: np.ndarray, ce_oi: np.ndarray, pe_oi: np.ndarray) -> tuple[float, np.ndarray]:
    """The settlement strike that pays option holders least, and the payout at every strike.

    payout(S) = sum_i CE_i max(S - K_i, 0) + PE_i max(K_i - S, 0), evaluated at S = each strike
    with prefix sums after one sort: O(N log N), exact. Missing OI counts as none. Ties go to the
    lower strike. Strikes need not be sorted; the curve is returned in the input order."""
    k = np.asarray(strikes, dtype=np.float64)
    if k.size == 0:
        return _NAN, np.empty(0)
    order = np.argsort(k, kind="stable")
    ks = k[order]
    c = np.nan_to_num(np.asarray(ce_oi, dtype=np.float64)[order])
    p = np.nan_to_num(np.asarray(pe_oi, dtype=np.float64)[order])
    c0 = np.cumsum(c)
    c1 = np.cumsum(c * ks)
    p0 = np.cumsum(p[::-1])[::-1]  # suffix sums: strikes at or above
    p1 = np.cumsum((p * ks)[::-1])[::-1]
    # Calls strictly below S pay S - K; puts strictly above pay K - S (at K = S both pay 0).
    curve_sorted = (ks * c0 - c1) + (p1 - ks * p0)
    curve = np.empty_like(curve_sorted)
    curve[order] = curve_sorted
    return float(ks[int(np.argmin(curve_sorted))]), curve


def buildups(prev: ChainSnapshot | None, cur: ChainSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Buildup code per strike and side of `cur` against `prev` (0 where either is missing).

    Price up & OI up: long buildup; price down & OI up: short buildup; price up & OI down: short
    covering; price down & OI down: long unwinding. An unchanged OI or price classifies nothing."""
    n = len(cur)
    if prev is None or not len(prev) or not n:
        zero = np.zeros(n, dtype=np.int8)
        return zero, zero.copy()
    pos = np.searchsorted(prev.strikes, cur.strikes)
    pos_c = np.minimum(pos, len(prev) - 1)
    hit = prev.strikes[pos_c] == cur.strikes

    def classify(now: Legs, before: Legs) -> np.ndarray:
        d_oi = now.oi - np.where(hit, before.oi[pos_c], np.nan)
        d_px = now.ltp - np.where(hit, before.ltp[pos_c], np.nan)
        up_oi, dn_oi = d_oi > 0, d_oi < 0
        up_px, dn_px = d_px > 0, d_px < 0
        out = np.zeros(n, dtype=np.int8)
        out[up_px & up_oi] = Buildup.LONG_BUILDUP
        out[dn_px & up_oi] = Buildup.SHORT_BUILDUP
        out[up_px & dn_oi] = Buildup.SHORT_COVERING
        out[dn_px & dn_oi] = Buildup.LONG_UNWINDING
        return out

    return classify(cur.ce, prev.ce), classify(cur.pe, prev.pe)


def _gex(gamma: np.ndarray, oi: np.ndarray, lot: int, spot: float, sign: float) -> np.ndarray:
    # Rupee delta dealers must trade per 1 % spot move: Γ x OI x lot x S² x 1 %.
    return sign * np.nan_to_num(gamma * oi) * (lot * spot * spot * 0.01)


def _gamma_only(
    forward: float, strikes: np.ndarray, t: float, sigma: np.ndarray, spot: float
) -> np.ndarray:
    # Spot gamma without discounting detail: D (F/S)² φ(d1) / (F σ √t) with the carry F/S fixed.
    sd = sigma * math.sqrt(t)
    d1 = (np.log(forward / strikes) + 0.5 * sd * sd) / sd
    return (forward / spot) * np.exp(-0.5 * d1 * d1) / (spot * sd * math.sqrt(2.0 * math.pi))


def gamma_flip(
    snap: ChainSnapshot,
    forward: float,
    t: float,
    iv_ce: np.ndarray,
    iv_pe: np.ndarray,
    call_sign: float,
    put_sign: float,
    span_pct: float = 5.0,
    points: int = 41,
) -> float:
    """The spot level nearest spot where net gamma exposure changes sign, NaN if none within
    ±span_pct. Gamma is re-evaluated at each hypothetical spot with IVs held (sticky strike)."""
    if t <= 0 or not len(snap):
        return _NAN
    levels = snap.spot * np.linspace(1 - span_pct / 100, 1 + span_pct / 100, points)
    carry = forward / snap.spot
    oi_c = np.nan_to_num(snap.ce.oi)
    oi_p = np.nan_to_num(snap.pe.oi)
    ok_c = np.isfinite(iv_ce) & (iv_ce > 0)
    ok_p = np.isfinite(iv_pe) & (iv_pe > 0)
    k = snap.strikes
    s = levels[:, None]
    g_c = _gamma_only(carry * s, k[ok_c][None, :], t, iv_ce[ok_c][None, :], s)
    g_p = _gamma_only(carry * s, k[ok_p][None, :], t, iv_pe[ok_p][None, :], s)
    net = (call_sign * g_c @ oi_c[ok_c] + put_sign * g_p @ oi_p[ok_p]) * levels * levels
    sign = np.sign(net)
    cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if not cross.size:
        return _NAN
    mid = points // 2
    i = int(cross[np.argmin(np.abs(cross + 0.5 - mid))])
    x0, x1, y0, y1 = levels[i], levels[i + 1], net[i], net[i + 1]
    return float(x0 - y0 * (x1 - x0) / (y1 - y0))


def iv_rank(current: float, history: Sequence[float], min_days: int) -> tuple[float | None, ...]:
    """(IV rank, IV percentile) of `current` against daily history, None until `min_days` exist.

    Rank = (current - min) / (max - min) x 100; percentile = share of days below current x 100."""
    hist = np.asarray([h for h in history if math.isfinite(h)], dtype=np.float64)
    if hist.size < min_days or not math.isfinite(current):
        return None, None
    lo, hi = float(hist.min()), float(hist.max())
    rank = 100.0 * (current - lo) / (hi - lo) if hi > lo else 50.0
    pct = 100.0 * float(np.count_nonzero(hist < current)) / hist.size
    return min(max(rank, 0.0), 100.0), pct


def _interp_at_delta(delta: np.ndarray, iv: np.ndarray, target: float) -> float:
    ok = np.isfinite(delta) & np.isfinite(iv)
    if np.count_nonzero(ok) < 2:
        return _NAN
    d, v = delta[ok], iv[ok]
    order = np.argsort(d)
    d, v = d[order], v[order]
    if not d[0] <= target <= d[-1]:
        return _NAN
    return float(np.interp(target, d, v))


def _argmax_strike(strikes: np.ndarray, values: np.ndarray, positive: bool = False) -> float:
    v = np.nan_to_num(values, nan=-np.inf)
    if not v.size:
        return _NAN
    i = int(np.argmax(v))
    if not np.isfinite(v[i]) or (positive and v[i] <= 0):
        return _NAN
    return float(strikes[i])


def _ratio(num: float, den: float) -> float:
    return num / den if den else _NAN


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


def _buildup_vote(
    snap: ChainSnapshot, prev: ChainSnapshot | None, b_ce: np.ndarray, b_pe: np.ndarray, width: int
) -> float:
    """OI-weighted vote of the buildups within `width` strikes of ATM, in -1..1."""
    if prev is None or not len(snap):
        return 0.0
    atm = snap.atm_index()
    sl = slice(max(atm - width, 0), atm + width + 1)
    pos = np.minimum(np.searchsorted(prev.strikes, snap.strikes[sl]), len(prev) - 1)
    hit = prev.strikes[pos] == snap.strikes[sl]
    w_c = np.abs(np.nan_to_num(snap.ce.oi[sl] - np.where(hit, prev.ce.oi[pos], np.nan)))
    w_p = np.abs(np.nan_to_num(snap.pe.oi[sl] - np.where(hit, prev.pe.oi[pos], np.nan)))
    total = float(w_c.sum() + w_p.sum())
    if not total:
        return 0.0
    return float((w_c @ _VOTE_CE[b_ce[sl]] + w_p @ _VOTE_PE[b_pe[sl]]) / total)


def market_view(
    spot: float,
    pcr: float,
    pain: float,
    support: float,
    resistance: float,
    vote: float,
    params: AnalyticsParams,
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
        reasons.append(f"buildups lean bullish ({vote:+.2f})")
    elif vote <= -0.25:
        score -= 1.0 if vote <= -0.5 else 0.5
        reasons.append(f"buildups lean bearish ({vote:+.2f})")
    if score >= 1.0:
        bias = Bias.BULLISH
    elif score <= -1.0:
        bias = Bias.BEARISH
    elif boxed:
        bias = Bias.RANGE
    else:
        bias = Bias.NEUTRAL
    return MarketView(bias, score, tuple(reasons))


def enrich(
    snap: ChainSnapshot,
    prev: ChainSnapshot | None = None,
    params: AnalyticsParams | None = None,
    iv_history: Sequence[float] = (),
) -> Enriched:
    """Everything the trader reads first, for one snapshot (and against the one before it)."""
    p = params or AnalyticsParams()
    n = len(snap)
    t = time_to_expiry(snap, p)
    forward, f_source, discount = parity_forward(snap, t, p)
    k2 = np.concatenate((snap.strikes, snap.strikes))
    is_call = np.zeros(2 * n, dtype=bool)
    is_call[:n] = True
    price = np.concatenate((snap.ce.ltp, snap.pe.ltp))
    given = np.concatenate((snap.ce.iv, snap.pe.iv))
    if t > 0 and n:
        solved = implied_vol(price, forward, k2, t, discount, is_call)
    else:
        solved = np.full(2 * n, np.nan)
    iv = solved if p.solve_iv == "all" else np.where(np.isfinite(given), given, solved)
    if t > 0 and n:
        g = bs_greeks(forward, k2, t, iv, discount, is_call, snap.spot)
        delta, gamma, theta, vega = g.delta, g.gamma, g.theta, g.vega
    else:
        delta = gamma = theta = vega = np.full(2 * n, np.nan)

    call_sign, put_sign = (1.0, -1.0) if p.gex_convention == "dealer_long_calls" else (-1.0, -1.0)
    gex_c = _gex(gamma[:n], snap.ce.oi, snap.lot_size, snap.spot, call_sign)
    gex_p = _gex(gamma[n:], snap.pe.oi, snap.lot_size, snap.spot, put_sign)
    b_ce, b_pe = buildups(prev, snap)

    ce = SideAnalytics(iv[:n], solved[:n], delta[:n], gamma[:n], theta[:n], vega[:n], gex_c, b_ce)
    pe = SideAnalytics(iv[n:], solved[n:], delta[n:], gamma[n:], theta[n:], vega[n:], gex_p, b_pe)

    ce_oi = float(np.nansum(snap.ce.oi))
    pe_oi = float(np.nansum(snap.pe.oi))
    ce_chg = float(np.nansum(snap.ce.oi_change))
    pe_chg = float(np.nansum(snap.pe.oi_change))
    ce_vol = float(np.nansum(snap.ce.volume))
    pe_vol = float(np.nansum(snap.pe.volume))
    pain_strike, pain = max_pain(snap.strikes, snap.ce.oi, snap.pe.oi)
    support = _argmax_strike(snap.strikes, snap.pe.oi, positive=True)
    resistance = _argmax_strike(snap.strikes, snap.ce.oi, positive=True)
    if n:
        atm = snap.atm_index()
        atm_strike = float(snap.strikes[atm])
        atm_ivs = (ce.iv[atm], pe.iv[atm])
        finite = [v for v in atm_ivs if math.isfinite(v)]
        atm_iv = sum(finite) / len(finite) if finite else _NAN
        straddle = float(snap.ce.ltp[atm] + snap.pe.ltp[atm])
    else:
        atm_strike = atm_iv = straddle = _NAN
    rr25 = _interp_at_delta(ce.delta, ce.iv, 0.25) - _interp_at_delta(-pe.delta, pe.iv, 0.25)
    flip = gamma_flip(snap, forward, t, ce.iv, pe.iv, call_sign, put_sign) if n else _NAN
    rank, pct = iv_rank(atm_iv, iv_history, p.iv_rank_min_days)
    pcr = _ratio(pe_oi, ce_oi)
    vote = _buildup_vote(snap, prev, b_ce, b_pe, p.buildup_strikes)
    view = market_view(snap.spot, pcr, pain_strike, support, resistance, vote, p)

    metrics = Metrics(
        symbol=snap.symbol,
        expiry=snap.expiry,
        ts=snap.provider_ts,
        provider=snap.provider,
        feed=snap.feed,
        spot=snap.spot,
        forward=forward,
        forward_source=f_source,
        t_years=t,
        ce_oi=ce_oi,
        pe_oi=pe_oi,
        ce_oi_change=ce_chg,
        pe_oi_change=pe_chg,
        ce_volume=ce_vol,
        pe_volume=pe_vol,
        pcr_oi=pcr,
        pcr_volume=_ratio(pe_vol, ce_vol),
        pcr_oi_change=_ratio(pe_chg, ce_chg),
        max_pain=pain_strike,
        support=support,
        resistance=resistance,
        support_change=_argmax_strike(snap.strikes, snap.pe.oi_change, positive=True),
        resistance_change=_argmax_strike(snap.strikes, snap.ce.oi_change, positive=True),
        atm_strike=atm_strike,
        atm_iv=atm_iv,
        straddle=straddle,
        rr25=rr25,
        gex=float(gex_c.sum() + gex_p.sum()),
        gamma_flip=flip,
        call_wall=_argmax_strike(snap.strikes, np.abs(gex_c), positive=True),
        put_wall=_argmax_strike(snap.strikes, np.abs(gex_p), positive=True),
        iv_rank=rank,
        iv_percentile=pct,
        view=view,
    )
    return Enriched(snap, ce, pe, pain, metrics)
