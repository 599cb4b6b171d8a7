"""The eight open-interest pattern detectors.

Every detector compares the current enriched chain with a reference chain of the same expiry at
least `patterns.window` seconds older (the newest such chain of the same trading day), so a
pattern is judged on minutes of flow, not on one tick's noise. Each hit carries its evidence as
named numbers, and the confidence is a stated function of them. docs/patterns.md gives every
formula and threshold so a trader can check a signal by hand; a test keeps that document and this
module in step.

A signal is keyed by (kind, chain, anchor): while the pattern persists the same signal is updated
(confidence, evidence, `last_seen`, `expires_at`), and it expires `patterns.ttl` seconds after it
was last seen. The thresholds are the `[patterns]` settings themselves (PatternSettings).

The buildup/unwinding detectors read who traded from the size of the premium moves, weighted by
the open interest they reprice and measured in expected moves, never from a count of strikes;
docs/patterns.md ("With the flow") says why and how that was measured.

This is one module, over 600 lines, because the eight detectors share the chain pair, the
thresholds and the lifecycle that keys their signals, and docs/patterns.md follows it section by
section; splitting it would scatter one definition over several files.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial

import numpy as np

from optterm.config import MarketSettings, PatternSettings
from optterm.engine.analytics.chain import Enriched
from optterm.engine.analytics.nanops import median_of_few, nansums
from optterm.market import calendar_for, segment_of
from optterm.model import ChainSnapshot, Direction, Metrics, PatternKind, Signal, Strength

__all__ = ["DETECTORS", "PatternEngine"]


@dataclass(frozen=True, slots=True)
class _Hit:
    kind: PatternKind
    anchor: str
    direction: Direction
    strikes: tuple[float, ...]
    evidence: tuple[tuple[str, float], ...]
    confidence: float
    summary: str
    # May this hit replace an active signal of its kind and chain with another anchor? The flow
    # detectors allow it only on a decisive reading (see FLOW_REVERSAL).
    reverses: bool = True


def _pts(value: float, threshold: float, full_at: float) -> float:
    """0 at the threshold rising linearly to 1 at `full_at` (clamped)."""
    if not math.isfinite(value) or full_at == threshold:
        return 0.0
    return min(max((value - threshold) / (full_at - threshold), 0.0), 1.0)


@dataclass(slots=True)
class _Pair:
    """The current chain and its reference, aligned on the strikes they share."""

    cur: Enriched
    ref: _Ref
    i1: np.ndarray  # indices into cur
    i0: np.ndarray  # matching indices into ref
    atm: int  # position of the current ATM strike within i1
    dt: float  # seconds between the two
    session_open: datetime  # when the trading day of both chains opened
    year_s: float  # trading seconds in a year (TRADING_DAYS sessions)
    # A band's aligned columns, read once for the buildup and the unwinding detector of a side.
    bands: dict[tuple[str, int, int], _Band | None] = field(default_factory=dict)

    @property
    def s1(self) -> ChainSnapshot:
        return self.cur.snapshot

    @property
    def s0(self) -> ChainSnapshot:
        return self.ref.snapshot

    def band(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = max(self.atm + lo, 0), min(self.atm + hi + 1, self.i1.shape[0])
        return self.i1[a:b], self.i0[a:b]


def _pair(cur: Enriched, ref: _Ref, session_open: datetime, year_s: float) -> _Pair | None:
    s1, s0 = cur.snapshot, ref.snapshot
    if not len(s1) or not len(s0):
        return None
    common, i1, i0 = _common_strikes(s1.strikes, s0.strikes)
    if common.size < 3:
        return None
    atm = int(np.argmin(np.abs(common - s1.spot)))
    dt = (s1.provider_ts - s0.provider_ts).total_seconds()
    return _Pair(cur, ref, i1, i0, atm, dt, session_open, year_s)


def _common_strikes(k1: np.ndarray, k0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the strikes both chains list, their indices in k1, in k0): what `np.intersect1d(k1,
    k0, assume_unique=True, return_indices=True)` gives, for less. A chain's strikes are
    strictly ascending, so each of k1 is looked up in k0 by bisection, in order."""
    if not k0.size:
        empty = np.empty(0, dtype=np.intp)
        return k1[:0], empty, empty
    if k1.shape == k0.shape and np.array_equal(k1, k0):
        # The usual case, a chain listing the same strikes as its reference: every strike
        # matches itself (the same arrays as the lookup's, for a fraction of its calls).
        every = np.arange(k1.size, dtype=np.intp)
        return k1[every], every, every.copy()
    pos = np.searchsorted(k0, k1)
    np.minimum(pos, k0.size - 1, out=pos)
    i1 = np.flatnonzero(k0[pos] == k1)
    return k1[i1], i1, pos[i1]


# -- the four OI-flow detectors ------------------------------------------------------------------

_FLOW = {
    # kind: (side, band lo, band hi, sign of OI change, direction if premiums fall / rise)
    PatternKind.CALL_BUILDUP: ("ce", 0, 1, +1, (Direction.BEARISH, Direction.BULLISH)),
    PatternKind.PUT_BUILDUP: ("pe", -1, 0, +1, (Direction.BULLISH, Direction.BEARISH)),
    PatternKind.CALL_UNWINDING: ("ce", 0, 1, -1, (Direction.BEARISH, Direction.BULLISH)),
    PatternKind.PUT_UNWINDING: ("pe", -1, 0, -1, (Direction.BULLISH, Direction.BEARISH)),
}
_FLOW_WORDS = {
    (PatternKind.CALL_BUILDUP, False): "call writing (short buildup)",
    (PatternKind.CALL_BUILDUP, True): "call long buildup",
    (PatternKind.PUT_BUILDUP, False): "put writing (short buildup)",
    (PatternKind.PUT_BUILDUP, True): "put long buildup",
    (PatternKind.CALL_UNWINDING, False): "call long unwinding",
    (PatternKind.CALL_UNWINDING, True): "call short covering",
    (PatternKind.PUT_UNWINDING, False): "put long unwinding",
    (PatternKind.PUT_UNWINDING, True): "put short covering",
}
# A direction already reported for a chain is reversed only by a premium move this many times
# `patterns.flow_min_moves` (a fixed part of the method: docs/patterns.md).
FLOW_REVERSAL = 2.0
TRADING_DAYS = 252  # a year of sessions, to scale the ATM IV to the window


@dataclass(frozen=True, slots=True, eq=False)
class _Band:
    """One side's strikes of a flow band where both chains have OI, premium and a delta."""

    i1: np.ndarray
    ok: np.ndarray
    oi0: np.ndarray
    px1: np.ndarray
    px0: np.ndarray
    delta: np.ndarray
    base: float  # the band's OI in the reference chain
    d_oi: np.ndarray


def _band(p: _Pair, side: str, lo: int, hi: int) -> _Band | None:
    key = (side, lo, hi)
    if key in p.bands:
        return p.bands[key]
    p.bands[key] = found = _read_band(p, side, lo, hi)
    return found


def _read_band(p: _Pair, side: str, lo: int, hi: int) -> _Band | None:
    i1, i0 = p.band(lo, hi)
    if i1.size < 2:
        return None
    leg1, leg0 = getattr(p.s1, side), getattr(p.s0, side)
    # The five columns as the rows of one array: one finiteness test and one cut for all.
    cols = np.array(
        (leg1.oi[i1], leg0.oi[i0], leg1.ltp[i1], leg0.ltp[i0], getattr(p.cur, side).delta[i1])
    )
    np.abs(cols[4], out=cols[4])
    ok = np.isfinite(cols).all(axis=0)
    if np.count_nonzero(ok) < 2:
        return None
    # C-ordered, so each row is a contiguous column, as each was alone (the dot products
    # below then take the same path).
    oi1, oi0, px1, px0, delta = np.ascontiguousarray(cols[:, ok])
    base = float(oi0.sum())
    if base <= 0:
        return None
    return _Band(i1, ok, oi0, px1, px0, delta, base, oi1 - oi0)


def _flow(kind: PatternKind, p: _Pair, prm: PatternSettings) -> list[_Hit]:
    side, lo, hi, sign, directions = _FLOW[kind]
    band = _band(p, side, lo * prm.band, hi * prm.band)
    if band is None:
        return []
    i1, ok, oi0, px1, px0 = band.i1, band.ok, band.oi0, band.px1, band.px0
    delta, base, d_oi = band.delta, band.base, band.d_oi
    change_pct = sign * float(d_oi.sum()) / base * 100.0
    threshold = prm.buildup_min_pct if sign > 0 else prm.unwinding_min_pct
    breadth = float(np.count_nonzero(sign * d_oi > 0)) / d_oi.size
    if change_pct < threshold or breadth < prm.min_breadth:
        return []
    pushed = np.maximum(sign * d_oi, 0.0)
    top_share = float(pushed.max() / pushed.sum())
    if top_share > prm.flow_max_strike_share:
        return []  # one strike's trade, not a flow across the band (UNUSUAL_ACTIVITY's business)
    # Who traded is read from the premiums, weighted by the open interest they reprice: the
    # band's option value moved by sum(OI x dPremium). Measured against what a one-sigma spot move
    # over the window would do to it (sum(OI x |delta| x spot x sigma)), a move is "decisive"
    # only once it stands clear of the market's own noise.
    d_px = px1 - px0
    value = float(oi0 @ px0)
    moved = float(oi0 @ d_px)
    sigma = float(p.cur.metrics.atm_iv) * math.sqrt(max(p.dt, 0.0) / p.year_s)
    expected = float(oi0 @ delta) * p.s0.spot * sigma
    if not (value > 0 and expected > 0 and math.isfinite(expected)):
        return []
    moves = moved / expected
    if moves == 0 or abs(moves) < prm.flow_min_moves:
        return []  # OI changed but the premiums did not say who traded
    premiums_rise = bool(moves > 0)
    premium_pct = moved / value * 100.0
    along = np.abs(oi0 * d_px)
    agreement = float(along[(d_px > 0) == premiums_rise].sum() / along.sum())
    confidence = (
        40.0
        + 20.0 * _pts(change_pct, threshold, 3.0 * threshold)
        + 10.0 * _pts(breadth, prm.min_breadth, 1.0)
        + 20.0 * _pts(abs(moves), prm.flow_min_moves, prm.flow_min_moves + 2.0)
        + 10.0 * (2.0 * agreement - 1.0)
    )
    strikes = p.s1.strikes[i1][ok]
    top = strikes[np.argsort(-sign * d_oi, kind="stable")[:3]]
    words = _FLOW_WORDS[kind, premiums_rise]
    verb = "added" if sign > 0 else "shed"
    summary = (
        f"{words}: {side.upper()} OI {verb} {change_pct:.1f}% across "
        f"{' '.join(f'{k:g}' for k in sorted(top))} in {p.dt / 60:.0f} min; OI-weighted "
        f"premiums {premium_pct:+.1f}% ({abs(moves):.1f} expected moves)"
    )
    return [
        _Hit(
            kind,
            "up" if premiums_rise else "down",
            directions[premiums_rise],
            tuple(float(k) for k in sorted(top)),
            (
                ("oi_change_pct", round(change_pct, 3)),
                ("breadth", round(breadth, 3)),
                ("top_strike_share", round(top_share, 3)),
                ("premium_change_pct", round(premium_pct, 3)),
                ("premium_moves", round(moves, 3)),
                ("premium_agreement", round(agreement, 3)),
                ("window_s", p.dt),
            ),
            confidence,
            summary,
            reverses=abs(moves) >= FLOW_REVERSAL * prm.flow_min_moves,
        )
    ]


def call_buildup(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    return _flow(PatternKind.CALL_BUILDUP, p, prm)


def put_buildup(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    return _flow(PatternKind.PUT_BUILDUP, p, prm)


def call_unwinding(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    return _flow(PatternKind.CALL_UNWINDING, p, prm)


def put_unwinding(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    return _flow(PatternKind.PUT_UNWINDING, p, prm)


# -- gamma squeeze -------------------------------------------------------------------------------


def gamma_squeeze(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    hits = []
    move_pct = (p.s1.spot / p.s0.spot - 1.0) * 100.0
    step: float | None = None
    for side, sign in (("ce", 1.0), ("pe", -1.0)):
        if sign * move_pct < prm.squeeze_min_move_pct:
            continue
        if step is None:  # the strike step, once: np.median's machinery costs more than it
            step = median_of_few(np.diff(p.s1.strikes).tolist()) if len(p.s1) > 1 else 0.0
        oi_ref = getattr(p.s0, side).oi[p.i0]
        if not np.isfinite(oi_ref).any():
            continue
        w = int(np.nanargmax(oi_ref))
        wall = float(p.s0.strikes[p.i0[w]])
        # The spot has reached the wall's neighbourhood (or run through it) from its side.
        if sign * (p.s1.spot - wall) < -prm.squeeze_wall_strikes * step:
            continue
        if sign * (p.s0.spot - wall) > 0:
            continue  # it was already beyond the wall: nothing left to squeeze
        near = slice(max(w - 1, 0), w + 2)
        oi0 = getattr(p.s0, side).oi[p.i0[near]]
        oi1 = getattr(p.s1, side).oi[p.i1[near]]
        base = float(np.nansum(oi0))
        if base <= 0:
            continue
        drop_pct = (1.0 - float(np.nansum(oi1)) / base) * 100.0
        if drop_pct < prm.squeeze_min_oi_drop_pct:
            continue
        v0 = getattr(p.s0, side).volume[p.i0[near]]
        v1 = getattr(p.s1, side).volume[p.i1[near]]
        traded = float(np.nansum(v1 - v0))
        turnover = traded / base
        confidence = (
            40.0
            + 25.0 * _pts(sign * move_pct, prm.squeeze_min_move_pct, 3 * prm.squeeze_min_move_pct)
            + 20.0 * _pts(drop_pct, prm.squeeze_min_oi_drop_pct, 4 * prm.squeeze_min_oi_drop_pct)
            + 15.0 * _pts(turnover, 0.0, 1.0)
        )
        label = "call wall" if sign > 0 else "put wall"
        hits.append(
            _Hit(
                PatternKind.GAMMA_SQUEEZE,
                f"{side}{wall:g}",
                Direction.BULLISH if sign > 0 else Direction.BEARISH,
                (wall,),
                (
                    ("spot_move_pct", round(move_pct, 4)),
                    ("wall_oi_drop_pct", round(drop_pct, 3)),
                    ("wall_turnover", round(turnover, 3)),
                    ("distance_to_wall_pct", round((p.s1.spot / wall - 1.0) * 100.0, 4)),
                ),
                confidence,
                f"spot {move_pct:+.2f}% into the {label} {wall:g}; its writers cut "
                f"{drop_pct:.1f}% of OI there, turnover {turnover:.1f}x OI",
            )
        )
    return hits


# -- max pain ------------------------------------------------------------------------------------


def max_pain_shift(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    pain1, pain0 = p.cur.metrics.max_pain, p.ref.metrics.max_pain
    if not (math.isfinite(pain1) and pain1 > 0 and pain1 == pain0):
        return []  # a moving max pain is a different story; judge only a stable one
    d1 = abs(p.s1.spot / pain1 - 1.0) * 100.0
    d0 = abs(p.s0.spot / pain0 - 1.0) * 100.0
    days = p.cur.metrics.t_years * 365.0
    weight = 1.0 / (1.0 + days / prm.max_pain_days_scale)
    if d1 <= prm.max_pain_near_pct and d0 - d1 >= prm.max_pain_converge_pct:
        converging, travelled = True, d0 - d1
        threshold = prm.max_pain_converge_pct
    elif d1 >= prm.max_pain_far_pct and d1 - d0 >= prm.max_pain_diverge_pct:
        converging, travelled = False, d1 - d0
        threshold = prm.max_pain_diverge_pct
    else:
        return []
    raw = 50.0 + 50.0 * _pts(travelled, threshold, 3.0 * threshold)
    confidence = raw * (0.5 + 0.5 * weight)
    if converging:
        direction = Direction.BULLISH if p.s0.spot < pain1 else Direction.BEARISH
        summary = f"spot converging on max pain {pain1:g} ({d0:.2f}% → {d1:.2f}% away)"
    else:
        direction = Direction.BULLISH if p.s1.spot > pain1 else Direction.BEARISH
        summary = f"spot diverging from max pain {pain1:g} ({d0:.2f}% → {d1:.2f}% away)"
    summary += f", {days:.1f} days to expiry"
    return [
        _Hit(
            PatternKind.MAX_PAIN,
            f"{'pin' if converging else 'away'}{pain1:g}",
            direction,
            (pain1,),
            (
                ("distance_then_pct", round(d0, 4)),
                ("distance_now_pct", round(d1, 4)),
                ("days_to_expiry", round(days, 3)),
                ("expiry_weight", round(weight, 4)),
            ),
            confidence,
            summary,
        )
    ]


# -- unusual activity ----------------------------------------------------------------------------


# A strike's volume / OI is compared with the median of this many strikes on each side of it
# (a fixed part of the method; the multiple is `patterns.unusual_vs_neighbours`).
UNUSUAL_NEIGHBOURS = 2


def _neighbours_median(row: list[float], j: int, n: int) -> float:
    """The median of the values among the n before and the n after position j of `row` that
    are not NaN (NaN when there are none): `np.nanmedian` of that neighbourhood, the same
    float, as numpy takes it: the middle value, or (a + b) / 2 of the middle two. Only the few
    strikes that could be a hit need it, so it is taken at those alone, in plain Python."""
    near = [v for v in row[max(j - n, 0) : j] + row[j + 1 : j + n + 1] if v == v]
    if not near:
        return math.nan
    near.sort()
    c = len(near)
    lo, hi = (c - 1) // 2, c // 2
    return near[lo] if lo == hi else (near[lo] + near[hi]) / 2.0


def _eligible_peers(
    i: int, ratios: list[float], oi: np.ndarray, traded: np.ndarray, min_oi: float, vs: float
) -> float | None:
    """The neighbours' median of strike i's volume / OI when the strike is eligible to be
    reported (enough OI, some volume traded, `vs` times its neighbours' ratio), else None."""
    if not (oi[i] >= min_oi and traded[i] > 0):
        return None
    med = _neighbours_median(ratios, i, UNUSUAL_NEIGHBOURS)
    return med if ratios[i] >= vs * med else None


def unusual_activity(p: _Pair, prm: PatternSettings) -> list[_Hit]:
    hits = []
    elapsed0 = (p.s0.provider_ts - p.session_open).total_seconds()
    # Both sides in one pass (row 0 CE, row 1 PE): per side, numpy's per-call cost would be
    # most of the work.
    s1, s0 = p.s1, p.s0
    v1_both = np.array((s1.ce.volume, s1.pe.volume))[:, p.i1]
    v0_both = np.array((s0.ce.volume, s0.pe.volume))[:, p.i0]
    oi_both = np.array((s1.ce.oi, s1.pe.oi))[:, p.i1]
    traded_both = v1_both - v0_both
    # Divided by 1 where there is no OI (then NaN): no division by zero to silence, so no
    # np.errstate, whose context switch costs more than the division on a chain.
    pos = oi_both > 0
    vol_oi_both = np.where(pos, traded_both / np.where(pos, oi_both, 1.0), np.nan)
    # A hit is a strike that traded at least `unusual_volume_oi` times its OI: without one
    # (most ticks) nothing else is needed. (A comparison with NaN raises no flag.)
    over = vol_oi_both >= prm.unusual_volume_oi
    if not over.any():
        return []
    top_oi = np.nanmax(oi_both, axis=1).tolist()
    for row, side in enumerate(("ce", "pe")):
        leg1, leg0 = getattr(s1, side), getattr(s0, side)
        v0, traded = v0_both[row], traded_both[row]
        # Of a side's strikes, the one reported is the busiest of those eligible: enough OI
        # (a share of the side's largest), some volume traded, and unusual against its
        # neighbours — near expiry the whole ATM band turns its OI over many times a day,
        # which is the market, not one trader. It is a hit only if it traded
        # `unusual_volume_oi` times its OI, so only the strikes over that (a few) are judged,
        # the busiest first: the first that is eligible is the one.
        over_at = np.flatnonzero(over[row])
        if not over_at.size:
            continue
        ratios = vol_oi_both[row]
        row_vals = ratios.tolist()
        min_oi = prm.unusual_min_oi_share * top_oi[row]
        # i -> the neighbours' median when strike i is eligible, else None
        peers_if_eligible = partial(
            _eligible_peers,
            ratios=row_vals,
            oi=oi_both[row],
            traded=traded,
            min_oi=min_oi,
            vs=prm.unusual_vs_neighbours,
        )
        j, peer = -1, math.nan
        for i in over_at[np.argsort(-ratios[over_at], kind="stable")].tolist():
            found = peers_if_eligible(i)
            if found is not None:
                j, peer = i, found
                break
        if j < 0:
            continue
        # An infinite ratio (a traded volume of inf) is reported only beside an eligible
        # strike with a finite one, as the whole-side reading always did.
        if math.isinf(row_vals[j]) and not any(
            math.isfinite(v) and peers_if_eligible(i) is not None for i, v in enumerate(row_vals)
        ):
            continue
        ratio = row_vals[j]
        # n/a (NaN) when its neighbours traded nothing at all: no ratio to show, and JSON has no inf
        vs_peers = ratio / peer if peer > 0 else math.nan
        spike = math.nan
        if elapsed0 >= prm.unusual_min_session and v0[j] > 0:
            spike = (traded[j] / p.dt) / (v0[j] / elapsed0)
            if spike < prm.unusual_vs_average:
                continue
        strike = float(p.s1.strikes[p.i1[j]])
        d_px = leg1.ltp[p.i1[j]] - leg0.ltp[p.i0[j]]
        if d_px > 0:
            direction = Direction.BULLISH if side == "ce" else Direction.BEARISH
        else:
            direction = Direction.NEUTRAL
        confidence = (
            40.0
            + 30.0 * _pts(ratio, prm.unusual_volume_oi, 4 * prm.unusual_volume_oi)
            + 30.0 * _pts(spike, prm.unusual_vs_average, 4 * prm.unusual_vs_average)
        )
        spike_text = f", {spike:.0f}x its average rate today" if math.isfinite(spike) else ""
        hits.append(
            _Hit(
                PatternKind.UNUSUAL_ACTIVITY,
                f"{side}{strike:g}",
                direction,
                (strike,),
                (
                    ("volume", float(traded[j])),
                    ("volume_to_oi", round(ratio, 3)),
                    ("vs_average", round(spike, 3) if math.isfinite(spike) else math.nan),
                    ("vs_neighbours", round(vs_peers, 3) if math.isfinite(vs_peers) else math.nan),
                    ("premium_change", round(float(d_px), 2)),
                ),
                confidence,
                f"{strike:g} {side.upper()} traded {traded[j]:,.0f} contracts in "
                f"{p.dt / 60:.0f} min = {ratio:.1f}x its OI{spike_text}",
            )
        )
    return hits


# -- momentum shift ------------------------------------------------------------------------------


def trending_oi_pct(p: _Pair, band: int) -> float:
    """(Σ put ΔOI − Σ call ΔOI) over ATM ± band across the window, in % of the band's OI."""
    i1, i0 = p.band(-band, band)
    # Both sides as the rows of one C-ordered array, so each row is summed as the 1-D side
    # would be (`nansums`; a fancy index on the rows' axis would give an F-ordered array).
    oi0 = np.array((p.s0.ce.oi[i0], p.s0.pe.oi[i0]))
    d_ce, d_pe = nansums(np.array((p.s1.ce.oi[i1], p.s1.pe.oi[i1])) - oi0)
    base_ce, base_pe = nansums(oi0)
    base = base_ce + base_pe
    return (d_pe - d_ce) / base * 100.0 if base > 0 else math.nan


@dataclass(slots=True)
class _Regime:
    sign: int = 0  # +1 puts added faster, -1 calls added faster, 0 none established yet
    extreme: float = 0.0  # the strongest reading of the regime
    at: datetime | None = None


def momentum_shift(p: _Pair, prm: PatternSettings, regime: _Regime) -> list[_Hit]:
    m = trending_oi_pct(p, prm.band)
    if not math.isfinite(m):
        return []
    now = p.s1.provider_ts
    sign = 1 if m >= prm.momentum_min_pct else -1 if m <= -prm.momentum_min_pct else 0
    if sign == 0:
        return []
    stale = regime.at is None or (now - regime.at).total_seconds() > prm.momentum_memory
    if sign == regime.sign:
        regime.extreme = max(regime.extreme, abs(m))
        regime.at = now
        return []
    prior, prior_extreme = (0, 0.0) if stale else (regime.sign, regime.extreme)
    regime.sign, regime.extreme, regime.at = sign, abs(m), now
    if prior != -sign:
        return []
    confidence = (
        40.0
        + 30.0 * _pts(abs(m), prm.momentum_min_pct, 3 * prm.momentum_min_pct)
        + 30.0 * _pts(prior_extreme, prm.momentum_min_pct, 3 * prm.momentum_min_pct)
    )
    bullish = sign > 0
    return [
        _Hit(
            PatternKind.MOMENTUM_SHIFT,
            "up" if bullish else "down",
            Direction.BULLISH if bullish else Direction.BEARISH,
            (float(p.s1.strikes[p.i1[p.atm]]),),
            (("trending_oi_pct", round(m, 3)), ("previous_extreme_pct", round(prior_extreme, 3))),
            confidence,
            f"trending OI flipped {'bullish' if bullish else 'bearish'}: put ΔOI − call ΔOI "
            f"{m:+.1f}% of ATM±{prm.band} OI, after {'-' if bullish else '+'}"
            f"{prior_extreme:.1f}%",
        )
    ]


# Each takes (pair, thresholds); momentum_shift also takes the chain's regime (see update).
DETECTORS: dict[PatternKind, Callable[..., list[_Hit]]] = {
    PatternKind.CALL_BUILDUP: call_buildup,
    PatternKind.PUT_BUILDUP: put_buildup,
    PatternKind.CALL_UNWINDING: call_unwinding,
    PatternKind.PUT_UNWINDING: put_unwinding,
    PatternKind.GAMMA_SQUEEZE: gamma_squeeze,
    PatternKind.MAX_PAIN: max_pain_shift,
    PatternKind.UNUSUAL_ACTIVITY: unusual_activity,
    PatternKind.MOMENTUM_SHIFT: momentum_shift,
}


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    """What a reference chain needs to keep: its data and metrics, not its per-leg analytics."""

    snapshot: ChainSnapshot
    metrics: Metrics


# References kept per window: a new one at most every window/HISTORY_POINTS seconds, so memory
# stays flat however fast the poller ticks (a 1 s poller would otherwise keep 300 per chain).
HISTORY_POINTS = 30


@dataclass(slots=True)
class _ChainState:
    history: deque[_Ref] = field(default_factory=deque)
    last_ts: datetime | None = None
    day: date | None = None
    regime: _Regime = field(default_factory=_Regime)


class PatternEngine:
    """Runs the detectors on each enriched chain and keeps the signals' lifecycle."""

    def __init__(
        self, params: PatternSettings | None = None, market: MarketSettings | None = None
    ) -> None:
        self.params = params or PatternSettings()  # thresholds: docs/patterns.md
        self.market = market or MarketSettings()  # the exchange day and when it opens
        self._chains: dict[tuple[str, date], _ChainState] = {}
        self._signals: dict[str, Signal] = {}
        # (day, the market's hours) -> (NSE session open, its seconds): see `_session`.
        self._sessions: dict[tuple[object, ...], tuple[datetime, float]] = {}

    def _reference(self, state: _ChainState, cur: Enriched) -> _Ref | None:
        now = cur.snapshot.provider_ts
        day = now.astimezone(self.market.tz).date()
        if state.day != day:
            state.history.clear()
            state.regime = _Regime()
            state.day = day
            state.last_ts = None
        if state.last_ts is not None and state.last_ts >= now:
            return None  # the same (or an older) snapshot again: nothing new to judge
        state.last_ts = now
        h = state.history
        spacing = self.params.window / HISTORY_POINTS
        if not h or (now - h[-1].snapshot.provider_ts).total_seconds() >= spacing:
            h.append(_Ref(cur.snapshot, cur.metrics))
        cutoff = now - timedelta(seconds=self.params.window)
        # Keep exactly one chain at or before the cutoff: the reference.
        while len(h) >= 2 and h[1].snapshot.provider_ts <= cutoff:
            h.popleft()
        ref = h[0]
        return ref if ref.snapshot.provider_ts <= cutoff else None

    def update(self, cur: Enriched) -> list[Signal]:
        """Feed one enriched chain; returns the signals it created or refreshed."""
        snap = cur.snapshot
        state = self._chains.setdefault((snap.symbol, snap.expiry), _ChainState())
        ref = self._reference(state, cur)
        if ref is None:
            return []
        opened, session_s = self._session(segment_of(snap.symbol), ref.snapshot.provider_ts)
        pair = _pair(cur, ref, opened, TRADING_DAYS * session_s)
        if pair is None:
            return []
        hits: list[_Hit] = []
        prm = self.params
        for kind, detect in DETECTORS.items():
            if kind is PatternKind.MOMENTUM_SHIFT:
                hits.extend(momentum_shift(pair, prm, state.regime))
            else:
                hits.extend(detect(pair, prm))
        return [
            self._record(snap, hit)
            for hit in hits
            if hit.confidence >= prm.min_confidence
            and (hit.reverses or not self._contradicts(snap, hit))
        ]

    def _session(self, segment: str | None, ts: datetime) -> tuple[datetime, float]:
        """(when the session of `ts`'s exchange day opened, its length in seconds) for the
        segment (None: NSE F&O, from the market's hours: every chain of a tick asks for the
        same day's, so they are kept per day and hours)."""
        market = self.market
        tz = market.tz
        day = ts.astimezone(tz).date()
        if segment is not None:  # MCX and CDS: the segment's own session (an MCX day is 14 h+)
            opened, closed = calendar_for(segment).session_bounds(day)
            return opened, (closed - opened).total_seconds()
        key = (day, market.open, market.close, tz)
        found = self._sessions.get(key)
        if found is None:
            opened = datetime.combine(day, market.open, tzinfo=tz)
            session_s = (datetime.combine(day, market.close, tzinfo=tz) - opened).total_seconds()
            if len(self._sessions) > 8:  # a long-running daemon: only today's matters
                self._sessions.clear()
            self._sessions[key] = found = (opened, session_s)
        return found

    def _key(self, snap: ChainSnapshot, kind: PatternKind, anchor: str) -> str:
        return f"{kind.value}:{snap.symbol}:{snap.expiry.isoformat()}:{anchor}"

    def _contradicts(self, snap: ChainSnapshot, hit: _Hit) -> bool:
        """Is a signal of the hit's kind and chain with another anchor still active?"""
        prefix = self._key(snap, hit.kind, "")
        mine = prefix + hit.anchor
        now = snap.provider_ts
        return any(
            key.startswith(prefix) and key != mine and sig.active(now)
            for key, sig in self._signals.items()
        )

    def _record(self, snap: ChainSnapshot, hit: _Hit) -> Signal:
        now = snap.provider_ts
        key = self._key(snap, hit.kind, hit.anchor)
        confidence = round(min(max(hit.confidence, 0.0), 100.0))
        expires = now + timedelta(seconds=self.params.ttl)
        old = self._signals.get(key)
        if old is not None and old.active(now):
            sig = replace(
                old,
                direction=hit.direction,
                strikes=hit.strikes,
                confidence=confidence,
                strength=Strength.from_confidence(confidence),
                evidence=hit.evidence,
                summary=hit.summary,
                last_seen=now,
                expires_at=expires,
                updates=old.updates + 1,
                provider=snap.provider,
                feed=snap.feed,
            )
        else:
            sig = Signal(
                key=key,
                kind=hit.kind,
                symbol=snap.symbol,
                expiry=snap.expiry,
                direction=hit.direction,
                strikes=hit.strikes,
                confidence=confidence,
                strength=Strength.from_confidence(confidence),
                evidence=hit.evidence,
                summary=hit.summary,
                first_seen=now,
                last_seen=now,
                expires_at=expires,
                provider=snap.provider,
                feed=snap.feed,
            )
        self._signals[key] = sig
        return sig

    def active(self, now: datetime, symbol: str | None = None) -> list[Signal]:
        """Signals not yet expired at `now`, strongest first; expired ones are forgotten."""
        for key in [k for k, s in self._signals.items() if not s.active(now)]:
            del self._signals[key]
        found: Iterable[Signal] = self._signals.values()
        if symbol is not None:
            found = (s for s in found if s.symbol == symbol)
        return sorted(found, key=lambda s: (-s.confidence, s.key))
