"""Market scenarios for the simulator: the order flow each OI-pattern detector looks for.

Time inside a scenario is measured in *episodes* (30 simulated minutes by default) so a pattern is
as visible to a 15 s poller at speed 1 as to a demo at speed 60. Directional scenarios play their
pattern in even episodes and retrace the planned spot move in the odd ones ("cooldown"), so a
long demo neither trends off the strike ladder nor loses the pattern after the first half hour.

Flows are expressed against the chain's reference OI `ref` (its typical peak OI per strike) and
against strikes anchored at the ATM strike of the episode's first step, so "writing at/above ATM"
keeps hitting the same strikes while the spot drifts away from them, as positions do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PIN_AWAY",
    "SCENARIOS",
    "SCENARIO_OBJECTS",
    "Episode",
    "FlowStep",
    "Scenario",
    "SymbolPlan",
    "smooth",
]


@dataclass(frozen=True, slots=True)
class SymbolPlan:
    """Per-symbol constants drawn once from the seed."""

    symbol: str
    strike_step: float
    spot0: float
    atm0: float  # strike nearest spot0; the ladder is centred on it
    sigma: float  # annualised spot volatility of the random part
    atm_iv: float  # base ATM implied vol (30-day)
    pcr: float  # put OI relative to call OI in the initial profile
    round_small: float  # strikes that collect more OI (100s on NIFTY)
    round_big: float  # strikes that collect much more OI (500s on NIFTY)
    oi_peak: float  # typical peak OI per strike, nearest expiry, in contracts
    pin: float  # max_pain_pin: the strike the spot is pulled to
    unusual_side: int  # unusual_activity: +1 an OTM call, -1 an OTM put

    def strike_above(self, level: float) -> float:
        return self.strike_step * math.ceil(level / self.strike_step - 1e-9)


@dataclass(frozen=True, slots=True)
class Episode:
    index: int
    start_spot: float  # spot just before the episode's first step
    prev_start_spot: float  # the previous episode's start spot (for retracing it)

    def previous(self) -> Episode:
        return Episode(self.index - 1, self.prev_start_spot, self.prev_start_spot)


@dataclass(slots=True)
class FlowStep:
    """What a scenario sees at one step of one chain, and where it writes its flows."""

    u: float  # phase in the episode, 0 <= u < 1
    du: float  # one step as a fraction of an episode
    episode: Episode
    spot: float
    strikes: np.ndarray
    ep_atm: int  # index of the strike nearest the episode's start spot
    oi_ce: np.ndarray
    oi_pe: np.ndarray
    ref: float
    nearest: bool  # the chain is the symbol's nearest expiry at its birth
    plan: SymbolPlan
    d_ce: np.ndarray  # scenario OI change this step (added to the random flow)
    d_pe: np.ndarray
    xv_ce: np.ndarray  # extra traded volume this step
    xv_pe: np.ndarray

    def band(self, offsets: np.ndarray, *, now: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Strike indices at `offsets` from the episode ATM (or, with `now`, from the strike
        nearest the spot now) that exist, and the mask of kept offsets (to cut a weight vector
        the same way)."""
        atm = int(np.argmin(np.abs(self.strikes - self.spot))) if now else self.ep_atm
        idx = atm + offsets
        keep = (idx >= 0) & (idx < self.strikes.shape[0])
        return idx[keep], keep

    def rate(self, p0: float, p1: float) -> float:
        """Share of a phase [p0, p1) that this step covers (0 outside the phase)."""
        return self.du / (p1 - p0) if p0 <= self.u < p1 else 0.0

    def decay(self, p0: float, p1: float, fraction: float) -> float:
        """Per-step proportional cut that removes `fraction` of OI over the phase."""
        return -math.log1p(-fraction) * self.rate(p0, p1)


def smooth(u: float, a: float, b: float) -> float:
    """Smoothstep from 0 at u<=a to 1 at u>=b: planned moves start and end without a kink."""
    x = min(max((u - a) / (b - a), 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


# Weights over 5 strikes from the money outward: writers concentrate at and just beyond ATM.
_W5 = np.array([1.0, 0.85, 0.7, 0.5, 0.3])
_UP5 = np.arange(5)
_DOWN5 = -np.arange(5)


class Scenario:
    """Base: no planned move, no flow beyond the random market."""

    name = ""
    summary = ""
    vol_scale = 1.0  # multiplies the random part of the spot's volatility
    iv_bump = 0.0  # relative ATM IV change: at mid-episode (a bump), over it for _Flow
    cooldown = True  # pattern in even episodes, retrace in odd ones
    pull = 0.0  # mean reversion toward plan.pin, per pattern episode
    mirrored_profile = False  # initial OI symmetric around plan.pin (max pain exactly there)
    has_flow = False

    def active(self, ep: Episode) -> bool:
        return not self.cooldown or ep.index % 2 == 0

    def pull_at(self, ep: Episode) -> float:
        """Mean reversion toward plan.pin during `ep`, per episode."""
        return self.pull if self.active(ep) else 0.0

    def log_path(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        """Planned log move of the spot since the episode started, at phase `u`."""
        if self.active(ep):
            return self.move(u, ep, plan)
        return -self.move(1.0, ep.previous(), plan) * self.retrace(u)

    def retrace(self, u: float) -> float:
        """Share of the previous episode's move undone by phase `u` of a cooldown."""
        return smooth(u, 0.1, 0.9)

    def move(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        return 0.0

    def iv_scale(self, u: float, ep: Episode) -> float:
        if not self.iv_bump or not self.active(ep):
            return 1.0
        # A bump that is back to 1 at both ends of the episode keeps IV continuous.
        return 1.0 + self.iv_bump * math.sin(math.pi * u)

    def shape_profile(
        self, ce: np.ndarray, pe: np.ndarray, strikes: np.ndarray, ep: Episode, plan: SymbolPlan
    ) -> None:
        """Adjust a freshly listed chain's OI profile in place."""

    def flow(self, f: FlowStep) -> None:
        """Add this step's scenario flow into f.d_* and f.xv_*."""


class Quiet(Scenario):
    """Nothing but the random market: small two-way OI flow, spot a plain random walk."""

    name = "quiet"
    summary = "random two-way flow only; spot a plain random walk"
    cooldown = False


class _Flow(Scenario):
    """Base of the four buildup/unwinding scenarios. Through a pattern episode the spot drifts
    `spot_move` and the ATM IV moves `iv_bump` (relative) at a steady rate, and positions follow
    the move at a pace that grows as it goes on (`pace`: more writers, or more covering shorts,
    join the longer the market keeps going their way). The cooldown closes 70 % of those positions
    again (fastest at its start, see ChainState) while the spot and the IV go back in step with
    them, so the flow reverses and so does the price."""

    has_flow = True
    spot_move = 0.0  # planned log move of the spot over a pattern episode

    @staticmethod
    def pace(f: FlowStep) -> float:
        """This step's share of the episode's flow: 2u per unit of u, so it sums to one."""
        return 2.0 * f.u * f.rate(0.0, 1.0)

    def move(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        return self.spot_move * u

    def retrace(self, u: float) -> float:
        # The cooldown relaxes positions by a constant fraction per step, 70 % over the episode.
        return (1.0 - 0.3**u) / 0.7

    def iv_scale(self, u: float, ep: Episode) -> float:
        done = u if self.active(ep) else 1.0 - self.retrace(u)
        return 1.0 + self.iv_bump * done


class CallWriting(_Flow):
    """Writers sell calls at and just above ATM (per episode 0.6x ref OI plus 60 % of the
    strike's own OI, tapering outward) while the spot drifts 0.6 % lower and IV eases 4 %: call
    premiums fall as call OI rises, the "call short buildup" pattern."""

    name = "call_writing"
    summary = "call OI builds at/above ATM while premiums fall (spot drifts down)"
    iv_bump = -0.04
    spot_move = -0.006

    def flow(self, f: FlowStep) -> None:
        idx, keep = f.band(_UP5)
        add = _W5[keep] * (0.6 * f.ref + 0.6 * f.oi_ce[idx]) * self.pace(f)
        f.d_ce[idx] += add
        f.xv_ce[idx] += 1.5 * add


class PutWriting(_Flow):
    """Mirror of call_writing: puts written at and below ATM while the spot drifts 0.6 % higher
    and IV eases 4 %, so put premiums fall as put OI rises (bullish "put short buildup")."""

    name = "put_writing"
    summary = "put OI builds at/below ATM while premiums fall (spot drifts up)"
    iv_bump = -0.04
    spot_move = 0.006

    def flow(self, f: FlowStep) -> None:
        idx, keep = f.band(_DOWN5)
        add = _W5[keep] * (0.6 * f.ref + 0.6 * f.oi_pe[idx]) * self.pace(f)
        f.d_pe[idx] += add
        f.xv_pe[idx] += 1.5 * add


class ShortCovering(_Flow):
    """Call writers from one strike below the money to four above buy back 60 % of their OI on
    heavy volume while the spot rallies 0.7 % and IV firms 3 %: call OI falls as call premiums
    rise. The covering follows the spot (the writers who cover are those the rally is reaching or
    has just run over), where writing stays at the strikes it started at."""

    name = "short_covering"
    summary = "call OI falls at/above ATM while premiums rise (spot rallies)"
    iv_bump = 0.03
    spot_move = 0.007
    _offsets = np.arange(-1, 5)  # the strike the rally just passed, and the five it is reaching

    def flow(self, f: FlowStep) -> None:
        idx, _ = f.band(self._offsets, now=True)
        cut = f.oi_ce[idx] * math.log1p(-0.60) * self.pace(f)
        f.d_ce[idx] += cut
        f.xv_ce[idx] += 3.0 * np.abs(cut)


class LongUnwinding(_Flow):
    """Put buyers around ATM sell out (40 % of put OI from one strike above ATM to four below)
    while the spot climbs 0.6 % and IV eases 2 %: put OI and put premiums fall together. (The
    call side's unwinding is short_covering; this one gives the put-unwinding detector its
    market.)"""

    name = "long_unwinding"
    summary = "put OI and put premiums fall together (put longs exit as spot rises)"
    iv_bump = -0.02
    spot_move = 0.006
    _offsets = -np.arange(-1, 5)

    def flow(self, f: FlowStep) -> None:
        idx, _ = f.band(self._offsets)
        cut = f.oi_pe[idx] * math.log1p(-0.40) * self.pace(f)
        f.d_pe[idx] += cut
        f.xv_pe[idx] += 2.0 * np.abs(cut)


class GammaSqueeze(Scenario):
    """A call wall (the heaviest call-OI strike, ~0.6 % above spot) is run over: the spot climbs
    through it to 0.7 % beyond, and once it is within two strikes the wall's writers cover (60 %
    of OI at the wall and its neighbours) on a volume spike while IV pumps ~10 %. ATM call
    premiums rise sharply. Later pattern episodes first rebuild the wall (1.4x the heaviest other
    call OI) in their first 15 %."""

    name = "gamma_squeeze"
    summary = "spot runs through the heaviest call-OI strike; calls there covered on a volume spike"
    vol_scale = 0.8  # the squeeze dominates; noise must not stall it short of the wall
    iv_bump = 0.10
    has_flow = True
    _near = np.array([-1, 0, 1])
    _near_w = np.array([0.5, 1.0, 0.5])

    @staticmethod
    def wall(ep: Episode, plan: SymbolPlan) -> float:
        return plan.strike_above(ep.start_spot * 1.006)

    def move(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        target = math.log(self.wall(ep, plan) * 1.007 / ep.start_spot)
        return target * smooth(u, 0.15, 0.85)

    def shape_profile(
        self, ce: np.ndarray, pe: np.ndarray, strikes: np.ndarray, ep: Episode, plan: SymbolPlan
    ) -> None:
        i = int(np.searchsorted(strikes, self.wall(ep, plan)))
        if 0 < i < strikes.shape[0] - 1:
            ce[i] = np.rint(1.6 * ce.max())
            ce[i - 1 : i + 2 : 2] *= 1.3

    def flow(self, f: FlowStep) -> None:
        w = float(self.wall(f.episode, f.plan))
        centre = int(np.searchsorted(f.strikes, w))
        idx = centre + self._near
        keep = (idx >= 0) & (idx < f.strikes.shape[0])
        idx, weight = idx[keep], self._near_w[keep]
        if f.episode.index > 0:
            # Rebuild the wall to clearly the heaviest call strike (95 % of the gap to 1.4x the
            # largest other call OI over the first 15 % of the episode).
            others = np.delete(f.oi_ce, centre) if 0 <= centre < f.oi_ce.shape[0] else f.oi_ce
            gap = np.maximum(1.4 * others.max() * weight - f.oi_ce[idx], 0.0)
            build = gap * -math.log(0.05) * f.rate(0.0, 0.15)
            f.d_ce[idx] += build
            f.xv_ce[idx] += 1.5 * build
        if f.u >= 0.15 and f.spot >= w - 2 * f.plan.strike_step:
            cut = -f.oi_ce[idx] * f.decay(0.15, 1.0, 0.6)
            f.d_ce[idx] += cut
            f.xv_ce[idx] += 10.0 * np.abs(cut) + 3.0 * f.ref * weight * f.rate(0.15, 1.0)


# How far from the max-pain strike the max_pain_pin market opens, and where each of its
# cooldowns takes the spot back to: far enough that the pull covers the detector's 0.35 points
# in one 5-minute window whatever the index's strike step.
PIN_AWAY = 0.007


class MaxPainPin(Scenario):
    """OI is laid out symmetrically around a strike about 0.7 % from the opening spot, with a
    heavy straddle there, so max pain is that strike. In pattern episodes the spot is pulled to it
    (time constant a tenth of an episode) and held with damped volatility; in the cooldowns it
    drifts back out to 0.7 % from the pin, on the side it opened, so every pattern episode
    converges afresh (as an expiry-day index keeps returning to its pin). No scenario OI flow."""

    name = "max_pain_pin"
    summary = "spot pulled to the max-pain strike and pinned there; OI roughly stable"
    vol_scale = 0.6
    pull = 10.0
    mirrored_profile = True

    def log_path(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        if self.active(ep):
            return 0.0  # the pull alone moves it
        side = 1.0 if plan.spot0 >= plan.pin else -1.0
        return math.log(plan.pin * (1.0 + side * PIN_AWAY) / ep.start_spot) * smooth(u, 0.1, 0.9)

    def iv_scale(self, u: float, ep: Episode) -> float:
        return 0.95  # a pinned market sells vol


class UnusualActivity(Scenario):
    """In the nearest expiry one OTM strike five steps out (a call or a put, by seed) trades about
    six times its OI between 40 % and 70 % of the episode, adding ~35 % OI, while the spot stays
    quiet (volatility damped)."""

    name = "unusual_activity"
    summary = "one OTM strike's volume explodes (vol/OI > 3) without a big spot move"
    vol_scale = 0.8
    has_flow = True

    def flow(self, f: FlowStep) -> None:
        if not f.nearest:
            return
        side = f.plan.unusual_side
        i = f.ep_atm + 5 * side
        if not 0 <= i < f.strikes.shape[0]:
            return
        oi, d, xv = (f.oi_ce, f.d_ce, f.xv_ce) if side > 0 else (f.oi_pe, f.d_pe, f.xv_pe)
        r = f.rate(0.4, 0.7)
        d[i] += 0.3 * oi[i] * r
        xv[i] += 6.0 * oi[i] * r


class MomentumShift(Scenario):
    """First half: calls written at/above ATM (0.6x ref) with mild put unwinding as the spot
    eases 0.25 %. Second half: puts written at/below ATM (1.2x ref) with calls covered as the
    spot climbs 0.5 %. Sum(put dOI) - Sum(call dOI) around ATM turns from negative to positive."""

    name = "momentum_shift"
    summary = "calls written first, then puts: trending OI flips from bearish to bullish"
    has_flow = True

    def move(self, u: float, ep: Episode, plan: SymbolPlan) -> float:
        return -0.0025 * smooth(u, 0.05, 0.5) + 0.005 * smooth(u, 0.5, 0.95)

    def flow(self, f: FlowStep) -> None:
        up, up_keep = f.band(_UP5)
        down, down_keep = f.band(_DOWN5)
        if f.u < 0.5:
            add = 0.6 * f.ref * _W5[up_keep] * f.rate(0.0, 0.5)
            cut = -f.oi_pe[down] * f.decay(0.0, 0.5, 0.10)
            f.d_ce[up] += add
            f.xv_ce[up] += 1.5 * add
            f.d_pe[down] += cut
            f.xv_pe[down] += 1.5 * np.abs(cut)
        else:
            add = 1.2 * f.ref * _W5[down_keep] * f.rate(0.5, 1.0)
            cut = -f.oi_ce[up] * f.decay(0.5, 1.0, 0.25)
            f.d_pe[down] += add
            f.xv_pe[down] += 1.5 * add
            f.d_ce[up] += cut
            f.xv_ce[up] += 1.5 * np.abs(cut)


SCENARIO_OBJECTS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Quiet(),
        CallWriting(),
        PutWriting(),
        ShortCovering(),
        LongUnwinding(),
        GammaSqueeze(),
        MaxPainPin(),
        UnusualActivity(),
        MomentumShift(),
    )
}

SCENARIOS: dict[str, str] = {name: s.summary for name, s in SCENARIO_OBJECTS.items()}
