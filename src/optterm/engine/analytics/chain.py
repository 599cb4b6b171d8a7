"""Chain analytics: IV and Greeks per leg, chain metrics, OI buildups and a market view.

Chain-level figures (totals, PCR, max pain, walls, GEX, flip, view) are computed over the chain
as the provider gave it, every strike; what is shown or stored is a window of it cut afterwards
(`Enriched.window`), which keeps the whole-chain metrics. Everything is vectorised over the
columnar snapshot. Pricing is Black-76 on the forward, which comes from put-call parity near
the money rather than spot x e^(rt) (forward.py says why).

Definitions (PCR, max pain, walls, GEX, risk reversal) are the standard ones and are restated in
docs/analytics.md, so every number on screen can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from optterm.config import AnalyticsSettings, MarketSettings
from optterm.engine.analytics.blackmath import greeks as bs_greeks
from optterm.engine.analytics.blackmath import implied_vol
from optterm.engine.analytics.changes import ChangeBasis, Changes, Sample, between, day_change
from optterm.engine.analytics.forward import parity_forward, parity_forwards
from optterm.engine.analytics.gammaflip import flip_from_legs, gamma_flip, signed_oi
from optterm.engine.analytics.nanops import nansums, nz
from optterm.engine.analytics.view import buildup_vote, market_view
from optterm.market import OiInterval, calendar_for, segment_of
from optterm.model import ChainSnapshot, Metrics

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = [
    "AnalyticsParams",
    "Enriched",
    "SideAnalytics",
    "buildups",
    "enrich",
    "gamma_flip",
    "iv_rank",
    "max_pain",
    "parity_forward",
    "since_previous",
    "time_to_expiry",
]

_YEAR_S = 365.0 * 86400.0
_NAN = float("nan")
# A fixed part of the method rather than a setting: how many strikes on each side of ATM the
# buildup vote reads (the parity forward's own is forward.PARITY_STRIKES).
BUILDUP_STRIKES = 5


@dataclass(frozen=True, slots=True)
class AnalyticsParams:
    """What `enrich` reads: the `[analytics]` section as configured, and from `[market]` the
    exchange clock (expiries settle at `market.close`, exchange-local). The defaults are the
    schema's own, so a bare `AnalyticsParams()` is exactly an unconfigured install."""

    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    market: MarketSettings = field(default_factory=MarketSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalyticsParams:
        return cls(settings.analytics, settings.market)


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
    oi_change: np.ndarray  # ΔOI over the chosen interval (`Enriched.change`); NaN: no baseline
    buildup: np.ndarray  # int8 Buildup codes over the same interval as `oi_change`

    def take(self, index: slice) -> SideAnalytics:
        # Every column cut alike, without the constructor (nothing in it to check again): the
        # window of every chain, every tick, is one.
        cut = object.__new__(SideAnalytics)
        for f in _SIDE_FIELDS:
            object.__setattr__(cut, f, getattr(self, f)[index])
        return cut


_SIDE_FIELDS = tuple(SideAnalytics.__dataclass_fields__)


@dataclass(frozen=True, slots=True, eq=False)
class Enriched:
    """A snapshot with everything computed from it (and from its baselines).

    `metrics` are over the whole chain (`chain_strikes` strikes, None when not known: metrics
    read back from the store); the per-strike arrays are aligned with `snapshot`, which may be a
    window of that chain. `change` says what `oi_change` and `buildup` are measured against."""

    snapshot: ChainSnapshot
    ce: SideAnalytics
    pe: SideAnalytics
    pain: np.ndarray  # total payout to option holders if expiry settled at each strike
    metrics: Metrics
    change: ChangeBasis = field(
        default_factory=lambda: ChangeBasis(OiInterval(), "n/a", None, False, False)
    )
    chain_strikes: int | None = None

    def side(self, side: str) -> SideAnalytics:
        return self.ce if side == "CE" else self.pe

    def window(self, strikes_each_side: int, cut: ChainSnapshot | None = None) -> Enriched:
        """The same analytics cut to the snapshot's window around ATM; the metrics stay those
        of the whole chain. `cut`, when given, is that window of the snapshot already made
        (`snapshot.window(strikes_each_side)`: the poller has it), so it is not made twice."""
        n = len(self.snapshot)
        if not n:
            return self
        atm = self.snapshot.atm_index()
        lo, hi = max(0, atm - strikes_each_side), atm + strikes_each_side + 1
        if lo == 0 and hi >= n and cut is self.snapshot:
            return self  # the chain is its own window (the poller's when the provider cut it)
        sl = slice(lo, hi)
        return replace(
            self,
            snapshot=self.snapshot.window(strikes_each_side) if cut is None else cut,
            ce=self.ce.take(sl),
            pe=self.pe.take(sl),
            pain=self.pain[sl],
        )

    def with_changes(self, changes: Changes) -> Enriched:
        """The same chain with ΔOI and buildups over another interval (the metrics, and the
        view, do not depend on it)."""
        return replace(
            self,
            ce=replace(self.ce, oi_change=changes.ce.oi, buildup=changes.ce.buildup),
            pe=replace(self.pe, oi_change=changes.pe.oi, buildup=changes.pe.buildup),
            change=changes.basis,
        )


def time_to_expiry(snap: ChainSnapshot, market: MarketSettings) -> float:
    """Calendar years from the data's timestamp to when the option stops trading; 0 once past.
    NSE F&O: the configured close. MCX and currency options: their segment's own moment (an MCX
    option trades into the evening of its expiry day, a currency option stops at 12:30)."""
    segment = segment_of(snap.symbol)
    if segment is None:
        settle = datetime.combine(snap.expiry, market.close, tzinfo=market.tz)
    else:
        settle = calendar_for(segment).expiry_moment(snap.expiry)
    return max((settle - snap.provider_ts).total_seconds(), 0.0) / _YEAR_S


def _strike_order(k: np.ndarray) -> np.ndarray | None:
    """The stable ascending order of strikes `k`: None when they are ascending already; placed
    by index, without a sort, when they are distinct points of one evenly spaced grid (a
    listing in another order); else a stable sort."""
    n = k.size
    step = np.diff(k)
    if (step >= 0).all():
        return None
    lo, hi = k.min(), k.max()
    if n > 1 and hi > lo and np.isfinite(hi - lo):
        span = (hi - lo) / (n - 1)
        pos = np.rint((k - lo) / span)
        if (lo + pos * span == k).all() and pos.max() <= n - 1:
            order = np.full(n, -1, dtype=np.intp)
            order[pos.astype(np.intp)] = np.arange(n)
            if (order >= 0).all():  # each grid point exactly once: a permutation
                return order
    return np.argsort(k, kind="stable")


def max_pain(
    strikes: np.ndarray, ce_oi: np.ndarray, pe_oi: np.ndarray, *, ascending: bool = False
) -> tuple[float, np.ndarray]:
    """The settlement strike that pays option holders least, and the payout at every strike.

    payout(S) = sum_i CE_i max(S - K_i, 0) + PE_i max(K_i - S, 0), evaluated at S = each strike
    with prefix sums after one sort: O(N log N), exact. Missing OI counts as none. Ties go to the
    lower strike. Strikes need not be sorted; the curve is returned in the input order. With no
    OI at all every strike "pays least": there is no max pain (NaN), not the lowest strike.
    `ascending` says the caller knows the strikes are ascending (a ChainSnapshot's are checked
    when it is made), so they are not checked again."""
    k = np.asarray(strikes, dtype=np.float64)
    if k.size == 0:
        return _NAN, np.empty(0)
    order = None if ascending else _strike_order(k)
    if order is None:  # already ascending, as every provider lists them
        ks, c, p = k, nz(np.asarray(ce_oi, dtype=np.float64)), nz(np.asarray(pe_oi, np.float64))
    else:
        ks = k[order]
        c = nz(np.asarray(ce_oi, dtype=np.float64)[order])
        p = nz(np.asarray(pe_oi, dtype=np.float64)[order])
    # One accumulate over four rows (the same left-to-right sums as four cumsum calls): prefix
    # sums of the calls, suffix sums (strikes at or above) of the puts.
    rows = np.empty((4, ks.size))
    rows[0] = c
    np.multiply(c, ks, out=rows[1])
    rows[2] = p[::-1]
    np.multiply(p[::-1], ks[::-1], out=rows[3])
    rows.cumsum(axis=1, out=rows)  # the method: np.cumsum's dispatch costs more than the sums
    c0, c1 = rows[0], rows[1]
    p0, p1 = rows[2, ::-1], rows[3, ::-1]
    # Calls strictly below S pay S - K; puts strictly above pay K - S (at K = S both pay 0).
    curve_sorted = (ks * c0 - c1) + (p1 - ks * p0)
    if order is None:
        curve = curve_sorted
    else:
        curve = np.empty_like(curve_sorted)
        curve[order] = curve_sorted
    if not (np.any(c > 0) or np.any(p > 0)):
        return _NAN, curve
    return float(ks[int(np.argmin(curve_sorted))]), curve


def since_previous(prev: ChainSnapshot, cur: ChainSnapshot) -> Changes:
    """Changes of `cur` against one earlier chain `prev` (strike by strike)."""
    basis = ChangeBasis(OiInterval(), "since the previous chain", prev.provider_ts, True)
    return between(cur, Sample.of(prev), basis)


def buildups(prev: ChainSnapshot | None, cur: ChainSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Buildup code per strike and side of `cur` against `prev` (0 where either is missing);
    the classes are `changes.classify`'s."""
    if prev is None or not len(prev) or not len(cur):
        zero = np.zeros(len(cur), dtype=np.int8)
        return zero, zero.copy()
    ch = since_previous(prev, cur)
    return ch.ce.buildup, ch.pe.buildup


def _gex(
    gamma: np.ndarray,
    oi: np.ndarray,
    lot: int,
    spot: float,
    call_sign: float,
    put_sign: float,
    n: int,
) -> np.ndarray:
    """Per leg (CE rows then PE rows), the rupee delta dealers must trade per 1 % spot move:
    Γ x OI x lot x S² x 1 %, signed by the convention (a sign of ±1 changes no digit)."""
    gex = nz(gamma * oi) * (lot * spot * spot * 0.01)  # a new array: negated in place below
    if call_sign < 0:
        np.negative(gex[:n], out=gex[:n])
    if put_sign < 0:
        np.negative(gex[n:], out=gex[n:])
    return gex


def _total_gex(gex_c: np.ndarray, gex_p: np.ndarray, gamma: np.ndarray, oi: np.ndarray) -> float:
    # A strike without gamma or OI adds nothing; a chain where no strike has both (a gamma and
    # some open interest) has no GEX at all (NaN, shown "n/a"), which is not a GEX of zero.
    # (`oi > 0` with a NaN raises no flag: no np.errstate, which costs more than the test.)
    if not (np.isfinite(gamma) & (oi > 0)).any():
        return _NAN
    return float(gex_c.sum() + gex_p.sum())


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


def _argmax_strikes(strikes: np.ndarray, rows: np.ndarray) -> list[float]:
    """Per row of values aligned with `strikes`, the strike of its largest positive value (the
    first of equals); NaN where the row has no positive value. NaN values count as none."""
    if not rows.shape[1]:
        return [_NAN] * rows.shape[0]
    v = np.where(np.isnan(rows), -np.inf, rows)
    if np.isinf(rows).any():  # nan_to_num also maps ±inf to the largest finite floats
        v = np.nan_to_num(rows, nan=-np.inf)
    best = v.argmax(axis=1)
    top = v[np.arange(v.shape[0]), best]
    return [
        float(strikes[i]) if math.isfinite(x) and x > 0 else _NAN
        for i, x in zip(best.tolist(), top.tolist(), strict=True)
    ]


def _ratio(num: float, den: float) -> float:
    return num / den if den else _NAN


@dataclass(frozen=True, slots=True, eq=False)
class Pricing:
    """One chain's per-leg IV and Greeks (CE rows then PE rows), with what they were read
    against: `enrich_many` computes them for every chain of a tick in one call of each solver."""

    t: float
    forward: float
    forward_source: str
    discount: float
    solved: np.ndarray
    iv: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray


def _pricing_inputs(
    snaps: Sequence[ChainSnapshot], params: AnalyticsParams
) -> list[tuple[float, float, str, float, bool]]:
    """Per chain: (t, forward, its source, discount, whether IV and Greeks are computed)."""
    ts = [time_to_expiry(snap, params.market) for snap in snaps]
    forwards = parity_forwards(snaps, ts, params.analytics)
    return [
        (t, forward, f_source, discount, bool(t > 0 and len(snap)))
        for snap, t, (forward, f_source, discount) in zip(snaps, ts, forwards, strict=True)
    ]


def price_chains(snaps: Sequence[ChainSnapshot], params: AnalyticsParams) -> list[Pricing]:
    """IV and Greeks of every leg of every chain, with one `implied_vol` and one `greeks` call
    over all of them: per call the solvers cost ~100 numpy calls, which on a 200-option chain is
    most of the work; over a tick's chains it is paid once. Element by element the arithmetic is
    the one a per-chain call does, so the numbers are the same to the bit."""
    inputs = _pricing_inputs(snaps, params)
    live = [i for i, inp in enumerate(inputs) if inp[4]]
    results: dict[int, tuple[np.ndarray, ...]] = {}
    if live:
        sizes = [len(snaps[i]) for i in live]
        # Each chain's CE rows then its PE rows (one concatenate per column, no per-chain call).
        strikes = np.concatenate([k for i in live for k in (snaps[i].strikes,) * 2])
        price = np.concatenate([c for i in live for c in (snaps[i].ce.ltp, snaps[i].pe.ltp)])
        given = np.concatenate([c for i in live for c in (snaps[i].ce.iv, snaps[i].pe.iv)])
        reps = [2 * n for n in sizes]
        is_call = np.repeat(np.tile((True, False), len(live)), [n for n in sizes for _ in "cp"])
        # Per-chain scalars spread over its legs (one chain: passed as scalars, the same values).
        scalars = [(inputs[i][0], inputs[i][1], inputs[i][3], snaps[i].spot) for i in live]
        t: float | np.ndarray
        forward: float | np.ndarray
        discount: float | np.ndarray
        spot: float | np.ndarray
        if len(live) == 1:
            t, forward, discount, spot = scalars[0]
        else:
            owner = np.repeat(np.arange(len(live)), reps)
            table = np.array(scalars, dtype=np.float64)[owner]
            t, forward, discount, spot = table.T
        solved = implied_vol(price, forward, strikes, t, discount, is_call)
        iv = solved if params.analytics.solve_iv == "all" else _given_else(given, solved)
        g = bs_greeks(forward, strikes, t, iv, discount, is_call, spot)
        cols = (solved, iv, g.delta, g.gamma, g.theta, g.vega)
        bounds = np.cumsum([0, *reps]).tolist()
        for k, i in enumerate(live):
            lo, hi = bounds[k], bounds[k + 1]
            results[i] = tuple(c[lo:hi] for c in cols)
    out = []
    for i, (snap, (t_i, f_i, src, disc, _)) in enumerate(zip(snaps, inputs, strict=True)):
        cols_i = results.get(i)
        if cols_i is None:
            n2 = 2 * len(snap)
            given = np.concatenate((snap.ce.iv, snap.pe.iv))
            solved = np.full(n2, np.nan)
            iv = solved if params.analytics.solve_iv == "all" else _given_else(given, solved)
            nan = np.full(n2, np.nan)
            cols_i = (solved, iv, nan, nan, nan, nan)
        out.append(Pricing(t_i, f_i, src, disc, *cols_i))
    return out


def _given_else(given: np.ndarray, solved: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(given), given, solved)


def enrich_many(
    snaps: Sequence[ChainSnapshot],
    params: AnalyticsParams | None = None,
    iv_history: Sequence[Sequence[float]] | None = None,
    *,
    changes: Sequence[Changes | None] | None = None,
    day: Sequence[Changes | None] | None = None,
) -> list[Enriched]:
    """`enrich` of each chain, with the IV and Greeks of all of them computed together
    (`price_chains`): the same results as one `enrich` per chain, for less."""
    params = params or AnalyticsParams()
    pricing = price_chains(snaps, params)
    m = len(snaps)
    hist = iv_history or [()] * m
    ch = changes or [None] * m
    dy = day or [None] * m
    return [
        enrich(snaps[i], None, params, hist[i], changes=ch[i], day=dy[i], pricing=pricing[i])
        for i in range(m)
    ]


def enrich(
    snap: ChainSnapshot,
    prev: ChainSnapshot | None = None,
    params: AnalyticsParams | None = None,
    iv_history: Sequence[float] = (),
    *,
    changes: Changes | None = None,
    day: Changes | None = None,
    pricing: Pricing | None = None,
) -> Enriched:
    """Everything the trader reads first, for one chain: pass the whole chain, as the provider
    gave it (cut a window for display with `Enriched.window`).

    `changes` are the ΔOI and buildups to show (default: since `prev` when given, else the day's
    change as far as the snapshot alone tells it); `day` are the day's changes the market view's
    buildup vote reads (default: `changes` when they are the day's, else the snapshot's own).
    `pricing` is the chain's IV and Greeks when already computed (`price_chains`)."""
    params = params or AnalyticsParams()
    p = params.analytics
    n = len(snap)
    if pricing is None:
        pricing = price_chains([snap], params)[0]
    t, forward, f_source = pricing.t, pricing.forward, pricing.forward_source
    solved, iv = pricing.solved, pricing.iv
    delta, gamma, theta, vega = pricing.delta, pricing.gamma, pricing.theta, pricing.vega

    call_sign, put_sign = (1.0, -1.0) if p.gex_convention == "dealer_long_calls" else (-1.0, -1.0)
    oi = np.concatenate((snap.ce.oi, snap.pe.oi))
    gex = _gex(gamma, oi, snap.lot_size, snap.spot, call_sign, put_sign, n)
    gex_c, gex_p = gex[:n], gex[n:]
    if changes is None:
        changes = since_previous(prev, snap) if prev is not None else day_change(snap, None)
    if day is None:
        day = changes if changes.basis.interval.is_day else day_change(snap, None)

    c_ch, p_ch = changes.ce, changes.pe
    ce = SideAnalytics(
        iv[:n], solved[:n], delta[:n], gamma[:n], theta[:n], vega[:n], gex_c, c_ch.oi, c_ch.buildup
    )
    pe = SideAnalytics(
        iv[n:], solved[n:], delta[n:], gamma[n:], theta[n:], vega[n:], gex_p, p_ch.oi, p_ch.buildup
    )

    # The totals and the walls of six columns in one pass each: per column, numpy's per-call
    # cost would be most of the work on a chain's few hundred strikes.
    cols = np.array(
        (
            snap.ce.oi,
            snap.pe.oi,
            snap.ce.oi_change,
            snap.pe.oi_change,
            snap.ce.volume,
            snap.pe.volume,
            np.abs(gex_c),
            np.abs(gex_p),
        )
    )
    ce_oi, pe_oi, ce_chg, pe_chg, ce_vol, pe_vol = nansums(cols[:6])
    walls = _argmax_strikes(snap.strikes, cols)
    pain_strike, pain = max_pain(snap.strikes, snap.ce.oi, snap.pe.oi, ascending=True)
    support, resistance = walls[1], walls[0]
    atm: int | None = None
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
    flip = (
        flip_from_legs(
            snap.spot,
            forward,
            t,
            np.concatenate((snap.strikes, snap.strikes)),
            iv,
            signed_oi(oi, n, call_sign, put_sign),
        )
        if n
        else _NAN
    )
    rank, pct = iv_rank(atm_iv, iv_history, p.iv_rank_min_days)
    pcr = _ratio(pe_oi, ce_oi)
    vote = buildup_vote(snap, day, BUILDUP_STRIKES, atm)
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
        support_change=walls[3],
        resistance_change=walls[2],
        atm_strike=atm_strike,
        atm_iv=atm_iv,
        straddle=straddle,
        rr25=rr25,
        gex=_total_gex(gex_c, gex_p, gamma, oi),
        gamma_flip=flip,
        call_wall=walls[6],
        put_wall=walls[7],
        iv_rank=rank,
        iv_percentile=pct,
        view=view,
    )
    return Enriched(snap, ce, pe, pain, metrics, changes.basis, n)
