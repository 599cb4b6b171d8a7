"""The simulator's state: per-symbol spot/IV paths and per-chain OI/volume books.

Over 600 lines because the paths and the books share one determinism scheme (random streams
seeded per purpose and addressed by step, state advanced forward and replayed from birth), and
the previous closes are read off the same walk; splitting them would spread that invariant
over modules that must then be audited together.

Determinism is by construction. Every random number is drawn from a generator seeded with
(seed, crc32(symbol), a purpose tag, [expiry], block index) and addressed by step, so the state at
step k depends only on the configuration and k, never on how often or in which order chains were
fetched. State is cached and advanced forward; asking for an earlier step than the cached one
replays from the chain's birth.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from optterm.market import MarketCalendar
from optterm.model import Legs, Underlying
from optterm.providers.simulator.clock import SessionClock
from optterm.providers.simulator.pricing import (
    TICK,
    VIX_YEARS,
    black76,
    smile,
    spread_fraction,
    term_factor,
    tick_ceil,
    tick_floor,
    tick_round,
    vix_level,
)
from optterm.providers.simulator.scenarios import (
    PIN_AWAY,
    Episode,
    FlowStep,
    Scenario,
    SymbolPlan,
)

__all__ = [
    "CARRY",
    "YEAR_SECONDS",
    "ChainState",
    "Close",
    "SymbolPath",
    "make_plan",
]

YEAR_SECONDS = 365.0 * 86400.0
_MIN_T = 60.0 / YEAR_SECONDS  # an option on its last step still has a minute of time value
_RATE = 0.065  # INR risk-free rate for discounting
CARRY = 0.055  # forward = spot * exp(carry * T): rate minus index dividend yield

# Purpose tags keep the random streams of different quantities independent.
(_TAG_PLAN, _TAG_SPOT, _TAG_GAP, _TAG_PROFILE, _TAG_CHAIN, _TAG_BIAS, _TAG_DEPTH, _TAG_DAY) = range(
    1, 9
)
_SPOT_BLOCK = 1024
_CHAIN_BLOCK = 64
_EPS = 1e-9
# Stored spot history beyond this many steps behind every chain is dropped (see SymbolPath.trim).
TRIM_STEPS = 1 << 16
# OI of the n-th listed expiry relative to the nearest one (the far months are thin).
_RANK_OI = (1.0, 0.45, 0.3, 0.2, 0.15, 0.1)


@dataclass(frozen=True, slots=True)
class _Defaults:
    spot: float
    iv: float
    oi_peak: float
    round_small: float
    round_big: float


# Late-2026 levels, vols and OI magnitudes calibrated on the NSE samples in fixtures/providers.
_KNOWN: dict[str, _Defaults] = {
    "NIFTY": _Defaults(25_900.0, 0.125, 100_000.0, 100.0, 500.0),
    "BANKNIFTY": _Defaults(58_500.0, 0.135, 30_000.0, 500.0, 1000.0),
    "FINNIFTY": _Defaults(27_600.0, 0.13, 9_000.0, 100.0, 500.0),
    "MIDCPNIFTY": _Defaults(13_600.0, 0.16, 7_000.0, 100.0, 500.0),
    # MCX options on futures (the spot is the underlying futures, in rupees per quoted unit:
    # barrel, mmBtu, 10 g, kg) and NSE currency options (rupees per dollar, euro, pound, 100
    # yen): each with its own level and a commodity's or a currency's vol. Illustrative levels.
    "CRUDEOIL": _Defaults(5_450.0, 0.34, 20_000.0, 100.0, 500.0),
    "CRUDEOILM": _Defaults(5_450.0, 0.34, 6_000.0, 100.0, 500.0),
    "NATURALGAS": _Defaults(330.0, 0.55, 30_000.0, 10.0, 50.0),
    "NATGASMINI": _Defaults(330.0, 0.55, 8_000.0, 10.0, 50.0),
    "GOLD": _Defaults(131_000.0, 0.17, 3_000.0, 1_000.0, 5_000.0),
    "GOLDM": _Defaults(131_000.0, 0.17, 2_000.0, 1_000.0, 5_000.0),
    "SILVER": _Defaults(172_000.0, 0.27, 2_500.0, 2_000.0, 10_000.0),
    "SILVERM": _Defaults(172_000.0, 0.27, 2_000.0, 2_000.0, 10_000.0),
    "COPPER": _Defaults(1_010.0, 0.22, 1_500.0, 10.0, 50.0),
    "ZINC": _Defaults(285.0, 0.22, 1_000.0, 5.0, 25.0),
    "USDINR": _Defaults(89.50, 0.045, 150_000.0, 0.5, 1.0),
    "EURINR": _Defaults(104.0, 0.06, 20_000.0, 0.5, 1.0),
    "GBPINR": _Defaults(119.0, 0.07, 15_000.0, 0.5, 1.0),
    "JPYINR": _Defaults(58.5, 0.09, 10_000.0, 0.5, 1.0),
}


def stable_hash(text: str) -> int:
    """crc32, because Python's hash() of a str changes from process to process."""
    return zlib.crc32(text.encode("utf-8"))


def _rng(seed: int, symbol: str, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**64, stable_hash(symbol), *parts])


def make_plan(
    seed: int, underlying: Underlying, *, spot: float | None = None, iv: float | None = None
) -> SymbolPlan:
    """The symbol's constants. `spot` and `iv` (a decimal) place a name the table does not know
    (a stock of the simulated F&O universe) where its universe row has it."""
    sym = underlying.symbol.upper()
    step = float(underlying.strike_step)
    known = _KNOWN.get(sym) or _Defaults(
        step * 400.0 if spot is None else spot,
        0.2 if iv is None else iv,
        10_000.0,
        step * 2,
        step * 10,
    )
    rng = _rng(seed, sym, _TAG_PLAN)
    z_spot, z_iv = rng.standard_normal(2)
    spot0 = round(known.spot * (1.0 + 0.004 * z_spot), 2)
    atm0 = step * round(spot0 / step)
    atm_iv = known.iv * math.exp(0.05 * z_iv)
    rng.integers(2, 4)  # no longer used; drawn so the values after it stay the same per seed
    pin_side = 1 if rng.random() < 0.5 else -1
    return SymbolPlan(
        symbol=sym,
        strike_step=step,
        spot0=spot0,
        atm0=atm0,
        sigma=0.95 * atm_iv,
        atm_iv=atm_iv,
        pcr=float(rng.uniform(0.9, 1.25)),
        round_small=known.round_small,
        round_big=known.round_big,
        oi_peak=known.oi_peak,
        pin=step * round(spot0 * (1.0 + pin_side * PIN_AWAY) / step),
        unusual_side=1 if rng.random() < 0.5 else -1,
    )


@dataclass(frozen=True, slots=True)
class Close:
    """The market at the close of the session before a given one: what its previous close is."""

    spot: float  # unrounded, like the path
    atm30: float  # 30-day ATM IV at that close
    epoch: float  # time of the session's last quote (epoch seconds)


def ladder(plan: SymbolPlan) -> np.ndarray:
    """Listed strikes: +-12 % of the starting spot at the symbol's strike step."""
    half = math.ceil(0.12 * plan.spot0 / plan.strike_step)
    strikes = plan.atm0 + plan.strike_step * np.arange(-half, half + 1)
    return strikes[strikes > 0]


class SymbolPath:
    """Spot and IV-level path of one underlying, one value per step, grown on demand."""

    def __init__(
        self,
        *,
        seed: int,
        plan: SymbolPlan,
        scenario: Scenario,
        clock: SessionClock,
        step_seconds: float,
        episode_seconds: float,
    ) -> None:
        self.seed = seed
        self.plan = plan
        self.scenario = scenario
        self.clock = clock
        self.step_seconds = step_seconds
        self.episode_seconds = episode_seconds
        year_trading = 252.0 * clock.session_length
        self._sd = plan.sigma * scenario.vol_scale * math.sqrt(step_seconds / year_trading)
        self._iv_keep = math.exp(-step_seconds / 3600.0)  # IV level mean-reverts over ~1 h
        self._iv_sd = 0.04 * math.sqrt(1.0 - self._iv_keep**2)
        self._du = step_seconds / episode_seconds
        # The close before each session index, recorded as the path crosses into it (so a trim
        # never loses one, and a replay records the same values again).
        self._closes: dict[int, Close] = {}
        self._vix: tuple[int, float] | None = None
        self._vix_close: tuple[int, float] | None = None
        self._restart()

    def _restart(self) -> None:
        # Values for steps [first, count) are stored at index step - first.
        self.first = 0
        self.count = 0
        self._spot = np.empty(0)
        self._ivx = np.empty(0)
        self._plan = np.empty(0)  # the scenario's planned log move since step 0 (no noise)
        self._episodes: dict[int, Episode] = {}
        self._block = -1
        self._noise = np.empty((0, 2))

    # Phase bookkeeping shared with the chains.
    def episode_of(self, k: int) -> tuple[int, float]:
        pos = k * self.step_seconds / self.episode_seconds
        e = math.floor(pos + _EPS)
        return e, min(max(pos - e, 0.0), 1.0 - _EPS)

    def episode(self, e: int) -> Episode:
        return self._episodes[e]

    def _z(self, k: int) -> np.ndarray:
        b = k // _SPOT_BLOCK
        if b != self._block:
            self._noise = _rng(self.seed, self.plan.symbol, _TAG_SPOT, b).standard_normal(
                (_SPOT_BLOCK, 2)
            )
            self._block = b
        return self._noise[k - b * _SPOT_BLOCK]

    def trim(self, keep_from: int) -> None:
        """Forget steps before `keep_from` once there are many of them, so a long fast demo
        does not grow without bound; a later request for them recomputes from step 0."""
        if keep_from - self.first < TRIM_STEPS or keep_from >= self.count:
            return
        cut = keep_from - self.first
        self._spot = self._spot[cut : self.count - self.first].copy()
        self._ivx = self._ivx[cut : self.count - self.first].copy()
        self._plan = self._plan[cut : self.count - self.first].copy()
        self.first = keep_from

    def ensure(self, k: int) -> None:
        """Make sure steps up to k are computed (and step k is stored)."""
        if k < self.first:
            self._restart()
        if k < self.count:
            return
        need = k + 1 - self.first
        if need > self._spot.shape[0]:
            size = max(need, 2 * self._spot.shape[0], 256)
            self._spot = np.resize(self._spot, size)
            self._ivx = np.resize(self._ivx, size)
            self._plan = np.resize(self._plan, size)
        spot_arr, ivx_arr, plan_arr, base = self._spot, self._ivx, self._plan, self.first
        plan, scen, clock = self.plan, self.scenario, self.clock
        for j in range(self.count, k + 1):
            i = j - base
            if j == 0:
                spot_arr[0], ivx_arr[0], plan_arr[0] = plan.spot0, 0.0, 0.0
                self._episodes[0] = Episode(0, plan.spot0, plan.spot0)
                continue
            s_prev = float(spot_arr[i - 1])
            e0, u0 = self.episode_of(j - 1)
            e1, u1 = self.episode_of(j)
            ep0 = self._episodes[e0]
            if e1 == e0:
                drift = scen.log_path(u1, ep0, plan) - scen.log_path(u0, ep0, plan)
            else:
                ep1 = Episode(e1, s_prev, ep0.start_spot)
                self._episodes[e1] = ep1
                drift = scen.log_path(1.0, ep0, plan) - scen.log_path(u0, ep0, plan)
                drift += scen.log_path(u1, ep1, plan)
            pull = scen.pull_at(self._episodes[e1])
            if pull:
                drift -= pull * self._du * math.log(s_prev / plan.pin)
            plan_arr[i] = plan_arr[i - 1] + drift
            z_spot, z_iv = self._z(j)
            shock = self._sd * z_spot
            n0 = clock.session_index((j - 1) * self.step_seconds)
            n1 = clock.session_index(j * self.step_seconds)
            if n1 != n0:
                # The last step of a session is its close: the next one's previous close.
                self._closes.setdefault(n1, self._close_at(j - 1, i - 1))
                # Overnight news: an opening gap of ~0.4 % (damped like the intraday moves).
                shock += self._gap(n1)
            spot_arr[i] = s_prev * math.exp(drift + shock)
            ivx_arr[i] = self._iv_keep * ivx_arr[i - 1] + self._iv_sd * z_iv
        self.count = k + 1

    def _gap(self, n: int) -> float:
        """The opening gap (log move) of session n."""
        gap = _rng(self.seed, self.plan.symbol, _TAG_GAP, n).standard_normal()
        return 0.004 * self.scenario.vol_scale * float(gap)

    def _close_at(self, k: int, i: int) -> Close:
        # The same arithmetic, in the same order, as atm_iv_at: a contract's previous close is
        # then exactly its last quote of the session before.
        e, u = self.episode_of(k)
        scen = self.scenario.iv_scale(u, self._episodes[e])
        level = self.plan.atm_iv * math.exp(float(self._ivx[i])) * scen
        return Close(float(self._spot[i]), level, self.clock.epoch(k * self.step_seconds))

    def close_before(self, session: int) -> Close:
        """The close of the session before session index `session` (0 = the start's). Before
        the start there is no simulated path: that close is the start's spot with its opening
        gap taken back, and an IV level of its own, on the previous trading day."""
        close = self._closes.get(session)
        if close is not None:
            return close
        if session > 0:
            # Not crossed yet: walk the path to the session's first step.
            start = self.clock.session_start(session)
            first = max(math.ceil(start / self.step_seconds - _EPS), 1)
            while self.session_of(first) < session:
                first += 1
            self.ensure(first)
            return self._closes[self.session_of(first)]
        self.ensure(0)
        cal = self.clock.calendar
        before = cal.previous_trading_day(self.clock.session_date(0))
        # The IV level wanders around its base by ~4 % (the path's stationary spread): the
        # evening before the start had its own.
        z_iv = _rng(self.seed, self.plan.symbol, _TAG_GAP, 0, 1).standard_normal()
        scen = self.scenario.iv_scale(0.0, self._episodes[0])
        close = Close(
            self.plan.spot0 * math.exp(-self._gap(0)),
            self.plan.atm_iv * math.exp(0.04 * float(z_iv)) * scen,
            cal.session_bounds(before)[1].timestamp(),
        )
        self._closes[0] = close
        return close

    def session_of(self, k: int) -> int:
        return self.clock.session_index(k * self.step_seconds)

    def prev_close_at(self, k: int) -> float:
        """The underlying's previous close as of step k, rounded like every quoted spot."""
        return round(self.close_before(self.session_of(k)).spot, 2)

    def vix_at(self, k: int) -> float:
        """India VIX at step k, from this path's spot and 30-day ATM IV."""
        if self._vix is None or self._vix[0] != k:
            self._vix = (k, vix_level(self.spot_at(k), self.atm_iv_at(k, VIX_YEARS), CARRY, _RATE))
        return self._vix[1]

    def vix_prev_close_at(self, k: int) -> float:
        session = self.session_of(k)
        if self._vix_close is None or self._vix_close[0] != session:
            close = self.close_before(session)
            self._vix_close = (session, vix_level(round(close.spot, 2), close.atm30, CARRY, _RATE))
        return self._vix_close[1]

    def raw_spot(self, k: int) -> float:
        """Unrounded spot at step k (the state the chains evolve on)."""
        self.ensure(k)
        return float(self._spot[k - self.first])

    def planned_move(self, k0: int, k1: int) -> float:
        """The scenario's own log move of the spot from step k0 to k1: what its order flow is
        meant to do to the price, without the random part (the ground truth for tests)."""
        self.ensure(max(k0, k1))
        if min(k0, k1) < self.first:
            self._restart()
            self.ensure(max(k0, k1))
        return float(self._plan[k1 - self.first] - self._plan[k0 - self.first])

    def spot_at(self, k: int) -> float:
        return round(self.raw_spot(k), 2)

    def atm_iv_at(self, k: int, t_years: float) -> float:
        """ATM implied vol for an expiry `t_years` away: base level, its slow random drift, the
        scenario's IV move and a gentle upward term structure."""
        self.ensure(k)
        e, u = self.episode_of(k)
        scen = self.scenario.iv_scale(u, self._episodes[e])
        level = self.plan.atm_iv * math.exp(float(self._ivx[k - self.first])) * scen
        return level * term_factor(t_years)


@dataclass(frozen=True, slots=True)
class ChainSetup:
    symbol: str
    expiry: date
    birth: int  # first step the chain is simulated from
    rank: int  # position among the symbol's listed expiries at birth (0 = nearest)
    monthly_of_weekly: bool  # the monthly expiry of a symbol that also has weeklies


def chain_setup(
    calendar: MarketCalendar,
    clock: SessionClock,
    step_seconds: float,
    sym: str,
    expiry: date,
    listing: int,
) -> ChainSetup:
    """When the chain was first listed (at or after the start) and how liquid it is."""
    n = 0
    while expiry not in calendar.expiries(sym, clock.session_date(n), listing):
        n += 1
        if clock.session_date(n) > expiry:
            raise ValueError(f"{sym} {expiry} is never listed")
    birth = 0
    if n:
        birth = max(math.ceil(clock.session_start(n) / step_seconds - _EPS), 0)
        while clock.session_index(birth * step_seconds) < n:
            birth += 1
    listed = calendar.expiries(sym, clock.session_date(n), listing)
    later = calendar.expiries(sym, expiry + timedelta(days=1), 1)
    monthly = sym in calendar.weekly_symbols and (not later or later[0].month != expiry.month)
    return ChainSetup(sym, expiry, birth, listed.index(expiry), monthly)


class ChainState:
    """OI and volume book of one (symbol, expiry) chain, advanced step by step."""

    def __init__(
        self,
        *,
        seed: int,
        setup: ChainSetup,
        path: SymbolPath,
        lot_size: int = 1,
        tick: float = TICK,
        carry: float = CARRY,
    ) -> None:
        self.seed = seed
        self.setup = setup
        self.path = path
        self.lot_size = lot_size
        self.tick = tick  # the option price tick (0.05; currency options 0.0025)
        # Spot to forward: the index's carry; 0 for MCX, whose spot is the option's own futures.
        self.carry = carry
        plan = path.plan
        self.strikes = ladder(plan)
        self.n = self.strikes.shape[0]
        self.ref = (
            plan.oi_peak
            * _RANK_OI[min(setup.rank, len(_RANK_OI) - 1)]
            * (1.3 if setup.monthly_of_weekly else 1.0)
        )
        self.illiquidity = 1.0 + 0.6 * setup.rank
        self.close_epoch = path.clock.close_epoch(setup.expiry)
        self._exp_ord = setup.expiry.toordinal()
        self._log_k = np.log(self.strikes)
        self._block = -1
        self._noise = np.empty((0, 4, self.n))
        self._ep_atm: dict[int, int] = {}
        self._priced: tuple[int, Legs, Legs, float] | None = None
        self._depth_block = -1
        self._depth = np.empty((0, 4, self.n))
        self._closing: tuple[int, np.ndarray, np.ndarray] | None = None
        self.reset()

    # -- setup --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the chain's birth: the previous day's OI book, nothing traded yet."""
        path, setup, plan = self.path, self.setup, self.path.plan
        scen = path.scenario
        spot = path.raw_spot(setup.birth)
        t = self._t_years(setup.birth)
        width = max(plan.atm_iv * math.sqrt(t), 0.006)
        rng = _rng(self.seed, plan.symbol, _TAG_PROFILE, self._exp_ord)
        if scen.mirrored_profile:
            centre = plan.pin
            offsets = np.rint((self.strikes - centre) / plan.strike_step).astype(int)
            m = int(np.abs(offsets).max())
            g = np.exp(0.3 * rng.standard_normal(2 * m + 1) - 0.045)
            noise_c, noise_p = g[offsets + m], g[-offsets + m]
            rel = self.strikes - centre
            pcr = 1.0
        else:
            centre = plan.strike_step * round(spot / plan.strike_step)
            noise_c, noise_p = np.exp(0.3 * rng.standard_normal((2, self.n)) - 0.045)
            rel = self.strikes
            pcr = plan.pcr
        d = np.log(self.strikes / centre) / width
        bump = 1.0 + 0.5 * _multiple(rel, plan.round_small) + 0.9 * _multiple(rel, plan.round_big)
        # Writers sit out of the money: call OI peaks ~0.8 expected moves above the centre and
        # tails off slowly further out, quickly into the money; puts mirror it.
        ce = self.ref * (_hump(d) * bump * noise_c + 0.002 * noise_c)
        pe = self.ref * pcr * (_hump(-d) * bump * noise_p + 0.002 * noise_p)
        ep_index, _ = path.episode_of(setup.birth)
        episode = path.episode(ep_index)
        if scen.mirrored_profile:
            # A straddle wall at the pin makes it the max-pain strike beyond doubt.
            i = int(np.argmin(np.abs(self.strikes - centre)))
            ce[i] += ce.max()
            pe[i] += pe.max()
        scen.shape_profile(ce, pe, self.strikes, episode, plan)
        self.oi_ce, self.oi_pe = np.rint(ce), np.rint(pe)
        self.prev_ce, self.prev_pe = self.oi_ce.copy(), self.oi_pe.copy()
        self.vol_ce, self.vol_pe = np.zeros(self.n), np.zeros(self.n)
        self._base_ce, self._base_pe = self.oi_ce.copy(), self.oi_pe.copy()
        self._episode = ep_index
        self.k = setup.birth
        self.session = path.clock.session_index(setup.birth * path.step_seconds)
        self._bias = self._session_bias(self.session)
        self._traded_since_open(spot, t)
        self._priced = None

    def _traded_since_open(self, spot: float, t: float) -> None:
        """A chain first simulated mid-session (a simulator started at 10:10) has traded since
        the open, as every real chain has: its OI has moved from the previous close and volume
        has built. The book at birth (shaped by the scenario) is today's; the previous close is
        played back from it with what the steps since the open would have done in sum: the
        same turnover, the same drift of the day per leg (`_bias`), and the noise of that many
        steps (the per-step noise, summed, shrinks as 1/sqrt(steps) against the volume).
        A chain born at the open has traded nothing yet, like the exchange's at 09:15."""
        path, plan = self.path, self.path.plan
        _, into = path.clock.locate(self.setup.birth * path.step_seconds)
        steps = into / path.step_seconds
        if steps < 1.0:
            return
        # The turnover of _step over `into` seconds, at the birth's spot and time to expiry.
        t_days = max(t * 365.0, 0.25)
        turnover = min(40.0 * t_days**-0.9, 80.0) * into / path.clock.session_length
        d = (self._log_k - math.log(spot)) / max(plan.atm_iv * math.sqrt(t), 0.004)
        act = turnover * (0.4 + 2.0 * np.exp(-0.5 * d * d))
        floor = 0.01 * self.ref
        z = _rng(self.seed, plan.symbol, _TAG_DAY, self._exp_ord, self.session).standard_normal(
            (2, self.n)
        )
        prev, vol = [], []
        for i, oi in enumerate((self.oi_ce, self.oi_pe)):
            traded = act * (oi + floor)
            net = traded * (self._bias[i] + 0.08 * z[i] / math.sqrt(steps))
            before = np.rint(np.maximum(oi - net, 0.0))
            prev.append(before)
            vol.append(np.maximum(traded, 1.2 * np.abs(oi - before)))
        self.prev_ce, self.prev_pe = prev
        self.vol_ce, self.vol_pe = vol

    def _session_bias(self, session: int) -> np.ndarray:
        # Each leg gets a drift for the day (some strikes add OI, some shed it), as real chains do.
        rng = _rng(self.seed, self.path.plan.symbol, _TAG_BIAS, self._exp_ord, session)
        return rng.normal(0.005, 0.02, (2, self.n))

    def _t_years(self, k: int) -> float:
        now = self.path.clock.epoch(k * self.path.step_seconds)
        return max((self.close_epoch - now) / YEAR_SECONDS, _MIN_T)

    def _z(self, k: int) -> np.ndarray:
        b = k // _CHAIN_BLOCK
        if b != self._block:
            rng = _rng(self.seed, self.path.plan.symbol, _TAG_CHAIN, self._exp_ord, b)
            self._noise = rng.standard_normal((_CHAIN_BLOCK, 4, self.n))
            self._block = b
        return self._noise[k - b * _CHAIN_BLOCK]

    def _depth_z(self, k: int) -> np.ndarray:
        # Its own stream: the book's quantities never disturb the OI and volume draws.
        b = k // _CHAIN_BLOCK
        if b != self._depth_block:
            rng = _rng(self.seed, self.path.plan.symbol, _TAG_DEPTH, self._exp_ord, b)
            self._depth = rng.standard_normal((_CHAIN_BLOCK, 4, self.n))
            self._depth_block = b
        return self._depth[k - b * _CHAIN_BLOCK]

    def closing_prices(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(CE, PE) previous close per strike as of step k: each contract priced like every
        quote (Black-76 on the forward, the smile, tick rounding) at the close of the session
        before step k's, with that close's spot, IV level and time to expiry."""
        session = self.path.session_of(k)
        if self._closing is not None and self._closing[0] == session:
            return self._closing[1], self._closing[2]
        close = self.path.close_before(session)
        t = max((self.close_epoch - close.epoch) / YEAR_SECONDS, _MIN_T)
        call, put = self._price(round(close.spot, 2), close.atm30 * term_factor(t), t)[:2]
        tick = self.tick
        ce, pe = np.maximum(tick_round(call, tick), tick), np.maximum(tick_round(put, tick), tick)
        self._closing = (session, ce, pe)
        return ce, pe

    def _price(
        self, spot: float, atm: float, t: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """(call, put, smile vols, standardised moneyness, forward) at one market state."""
        forward = spot * math.exp(self.carry * t)
        vol = smile(atm, self.strikes, forward, t)
        call, put = black76(forward, self.strikes, t, vol, math.exp(-_RATE * t))
        # A steep wing can make the smile price a hair non-monotone; real quotes never are.
        call = np.minimum.accumulate(call)
        put = np.maximum.accumulate(put)
        x = np.log(self.strikes / forward) / (atm * math.sqrt(t))
        return call, put, vol, x, forward

    def _episode_atm(self, e: int) -> int:
        idx = self._ep_atm.get(e)
        if idx is None:
            s = self.path.episode(e).start_spot
            idx = int(np.argmin(np.abs(self.strikes - s)))
            self._ep_atm[e] = idx
        return idx

    # -- evolution ----------------------------------------------------------------------------

    def advance_to(self, k: int) -> None:
        if k < self.setup.birth:
            raise ValueError(f"step {k} is before the chain was listed (step {self.setup.birth})")
        if k < self.k:
            self.reset()
        if k == self.k:
            return
        path = self.path
        path.ensure(k)
        for j in range(self.k + 1, k + 1):
            self._step(j)
        self.k = k

    def _step(self, j: int) -> None:
        path, plan, scen = self.path, self.path.plan, self.path.scenario
        clock = path.clock
        session = clock.session_index(j * path.step_seconds)
        if session != self.session:
            # New trading day: yesterday's closing OI becomes the baseline, volume restarts.
            self.prev_ce, self.prev_pe = np.rint(self.oi_ce), np.rint(self.oi_pe)
            self.vol_ce, self.vol_pe = np.zeros(self.n), np.zeros(self.n)
            self.session = session
            self._bias = self._session_bias(session)
        spot = path.raw_spot(j)
        t = self._t_years(j)
        z = self._z(j)
        # Traded volume: heavier near the money and near expiry (weekly ATM strikes turn over
        # their OI dozens of times on their last days, far months less than once).
        t_days = max(t * 365.0, 0.25)
        turnover = min(40.0 * t_days**-0.9, 80.0) * path.step_seconds / clock.session_length
        d = (self._log_k - math.log(spot)) / max(plan.atm_iv * math.sqrt(t), 0.004)
        act = turnover * (0.4 + 2.0 * np.exp(-0.5 * d * d))
        floor = 0.01 * self.ref
        bv_ce = act * (self.oi_ce + floor) * np.exp(0.5 * z[0] - 0.125)
        bv_pe = act * (self.oi_pe + floor) * np.exp(0.5 * z[1] - 0.125)
        # Net opening/closing is a small, noisy share of what trades.
        new_ce = self.oi_ce + bv_ce * (self._bias[0] + 0.08 * z[2])
        new_pe = self.oi_pe + bv_pe * (self._bias[1] + 0.08 * z[3])
        # Extra volume a scenario trades beyond the OI it moves: none, or one per strike.
        xv_ce: float | np.ndarray = 0.0
        xv_pe: float | np.ndarray = 0.0
        e, u = path.episode_of(j)
        episode = path.episode(e)
        du = path.step_seconds / path.episode_seconds
        if e != self._episode:
            self._episode = e
            if scen.active(episode):
                self._base_ce, self._base_pe = self.oi_ce.copy(), self.oi_pe.copy()
        if scen.has_flow and not scen.active(episode):
            # Cooldown: the positions the pattern built (or closed) drift 70 % of the way back,
            # so OI stays bounded however many episodes a demo runs.
            relax = -math.log1p(-0.7) * du
            new_ce += (self._base_ce - self.oi_ce) * relax
            new_pe += (self._base_pe - self.oi_pe) * relax
        if scen.has_flow and scen.active(episode):
            f = FlowStep(
                u=u,
                du=du,
                episode=episode,
                spot=spot,
                strikes=self.strikes,
                ep_atm=self._episode_atm(e),
                oi_ce=self.oi_ce,
                oi_pe=self.oi_pe,
                ref=self.ref,
                nearest=self.setup.rank == 0,
                plan=plan,
                d_ce=np.zeros(self.n),
                d_pe=np.zeros(self.n),
                xv_ce=np.zeros(self.n),
                xv_pe=np.zeros(self.n),
            )
            scen.flow(f)
            new_ce += f.d_ce
            new_pe += f.d_pe
            xv_ce, xv_pe = f.xv_ce, f.xv_pe
        np.maximum(new_ce, 0.0, out=new_ce)
        np.maximum(new_pe, 0.0, out=new_pe)
        # Every contract opened or closed was traded, so volume covers the OI change.
        self.vol_ce += np.maximum(bv_ce, 1.2 * np.abs(new_ce - self.oi_ce)) + xv_ce
        self.vol_pe += np.maximum(bv_pe, 1.2 * np.abs(new_pe - self.oi_pe)) + xv_pe
        self.oi_ce, self.oi_pe = new_ce, new_pe

    # -- the chain as a provider would report it ----------------------------------------------

    def priced_at(self, k: int) -> bool:
        """Are the quotes of step k made already (`legs_at(k)` answers without work)?"""
        return self._priced is not None and self._priced[0] == k

    def legs_at(self, k: int) -> tuple[Legs, Legs, float]:
        """(CE legs, PE legs, spot) at step k."""
        if self._priced is not None and self._priced[0] == k:
            return self._priced[1], self._priced[2], self._priced[3]
        self.advance_to(k)
        spot = self.path.spot_at(k)
        t = self._t_years(k)
        call, put, vol, x, _ = self._price(spot, self.path.atm_iv_at(k, t), t)
        iv = np.round(vol, 4)
        close_ce, close_pe = self.closing_prices(k)
        ce, pe = self._legs(
            np.array((call, put)),
            np.array((np.maximum(spot - self.strikes, 0.0), np.maximum(self.strikes - spot, 0.0))),
            x,
            iv,
            np.array((self.oi_ce, self.oi_pe)),
            np.array((self.prev_ce, self.prev_pe)),
            np.array((self.vol_ce, self.vol_pe)),
            np.array((close_ce, close_pe)),
            self._depth_z(k),
        )
        self._priced = (k, ce, pe, spot)
        return ce, pe, spot

    def _legs(
        self,
        fair: np.ndarray,
        intrinsic: np.ndarray,
        x: np.ndarray,
        iv: np.ndarray,
        oi: np.ndarray,
        prev: np.ndarray,
        volume: np.ndarray,
        prev_close: np.ndarray,
        depth: np.ndarray,
    ) -> tuple[Legs, Legs]:
        """Both sides' quotes at once: row 0 of each (2, n) input is CE, row 1 PE (x and iv
        are shared); `depth` holds the CE bid, CE ask, PE bid and PE ask draws."""
        block = _quote_block(
            fair,
            intrinsic,
            x,
            iv,
            oi,
            prev,
            volume,
            prev_close,
            depth,
            self.tick,
            self.illiquidity,
            self.lot_size,
        )
        return Legs.of_block(block[0]), Legs.of_block(block[1])


def _quote_block(
    fair: np.ndarray,
    intrinsic: np.ndarray,
    x: np.ndarray,
    iv: np.ndarray,
    oi: np.ndarray,
    prev: np.ndarray,
    volume: np.ndarray,
    prev_close: np.ndarray,
    depth: np.ndarray,
    tick: float,
    illiquidity: float | np.ndarray,
    lot_size: int | np.ndarray,
) -> np.ndarray:
    """Both sides' columns, frozen, as a (2, len(LEG_FIELDS), n) block (CE then PE). Element
    by element the same arithmetic as one side at a time, in half the numpy calls; and as one
    chain at a time when the rows hold several chains' strikes end to end (`illiquidity` and
    `lot_size` then given per strike: ChainState.legs_together)."""
    half = 0.5 * np.maximum(fair * spread_fraction(x, illiquidity), tick)
    ltp = np.maximum(tick_round(fair, tick), tick)
    bid = tick_floor(fair - half, tick)
    ask = np.maximum(tick_ceil(fair + half, tick), np.maximum(ltp, bid + tick))
    bid = np.where(bid >= tick, np.minimum(bid, ltp), np.nan)
    # NSE reports IV 0 (we: missing) when there is no time value to solve from.
    iv = np.where(ltp - intrinsic < 2 * tick, np.nan, iv)
    oi_now = np.rint(oi)
    # Lots resting at the best bid and offer: a few dozen near the money, a handful in the
    # wings and on thin far expiries, whole lots as the exchange shows them.
    typical = (30.0 * np.exp(-0.5 * np.minimum(x * x, 50.0)) + 3.0) / illiquidity
    bid_lots = np.floor(typical * np.exp(0.7 * depth[0::2] - 0.245)) + 1.0
    ask_lots = np.floor(typical * np.exp(0.7 * depth[1::2] - 0.245)) + 1.0
    oi_change = oi_now - prev
    traded = np.floor(volume)
    bid_qty = np.where(np.isnan(bid), np.nan, bid_lots * lot_size)
    ask_qty = ask_lots * lot_size
    # Both sides' columns in one block, side by side (LEG_FIELDS order): one copy.
    block = np.stack(
        (oi_now, oi_change, traded, ltp, bid, ask, iv, prev_close, bid_qty, ask_qty), axis=1
    )
    block.flags.writeable = False
    return block


def legs_together(states: list[ChainState], k: int) -> None:
    """Price the chains of `states` at step k together (each then answers `legs_at(k)` from
    what is set here): their strikes end to end in one row, every per-chain number spread
    over its strikes, so each numpy call of the quote runs once for all of them instead of
    once per chain. Element by element the arithmetic is `legs_at`'s (the per-chain scalars
    are the same floats, computed the same way), so the quotes are the same to the bit. The
    states share one price tick."""
    for st in states:
        st.advance_to(k)
    spots, ts, atms = [], [], []
    for st in states:
        t = st._t_years(k)
        spots.append(st.path.spot_at(k))
        ts.append(t)
        atms.append(st.path.atm_iv_at(k, t))
    sizes = [st.n for st in states]

    def spread(values: list[float]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=np.float64), sizes)

    strikes = np.concatenate([st.strikes for st in states])
    forward = spread(
        [s * math.exp(st.carry * t) for st, s, t in zip(states, spots, ts, strict=True)]
    )
    t_e, atm_e = spread(ts), spread(atms)
    vol = smile(atm_e, strikes, forward, t_e)
    call, put = black76(forward, strikes, t_e, vol, spread([math.exp(-_RATE * t) for t in ts]))
    bounds = np.cumsum([0, *sizes]).tolist()
    for lo, hi in itertools.pairwise(bounds):
        # A steep wing can make the smile price a hair non-monotone; real quotes never are.
        call[lo:hi] = np.minimum.accumulate(call[lo:hi])
        put[lo:hi] = np.maximum.accumulate(put[lo:hi])
    x = np.log(strikes / forward) / spread(
        [a * math.sqrt(t) for a, t in zip(atms, ts, strict=True)]
    )
    iv = np.round(vol, 4)
    closes = [st.closing_prices(k) for st in states]
    spot_e = spread(spots)
    block = _quote_block(
        np.array((call, put)),
        np.array((np.maximum(spot_e - strikes, 0.0), np.maximum(strikes - spot_e, 0.0))),
        x,
        iv,
        np.array(
            (
                np.concatenate([st.oi_ce for st in states]),
                np.concatenate([st.oi_pe for st in states]),
            )
        ),
        np.array(
            (
                np.concatenate([st.prev_ce for st in states]),
                np.concatenate([st.prev_pe for st in states]),
            )
        ),
        np.array(
            (
                np.concatenate([st.vol_ce for st in states]),
                np.concatenate([st.vol_pe for st in states]),
            )
        ),
        np.array((np.concatenate([c[0] for c in closes]), np.concatenate([c[1] for c in closes]))),
        np.concatenate([st._depth_z(k) for st in states], axis=1),
        states[0].tick,
        spread([st.illiquidity for st in states]),
        spread([float(st.lot_size) for st in states]),
    )
    for st, spot, (lo, hi) in zip(states, spots, itertools.pairwise(bounds), strict=True):
        # Each chain's columns as its own frozen block (a copy: a chain must not keep the
        # others' quotes alive).
        own = np.array(block[:, :, lo:hi])
        own.flags.writeable = False
        st._priced = (k, Legs.of_block(own[0]), Legs.of_block(own[1]), spot)


def _hump(d: np.ndarray) -> np.ndarray:
    inner = np.exp(-((d - 0.8) ** 2) / (2 * 0.55**2))
    outer = np.exp(-((d - 0.8) ** 2) / (2 * 1.8**2))
    return np.where(d >= 0.8, outer, inner)


def _multiple(values: np.ndarray, unit: float) -> np.ndarray:
    return (np.abs(values / unit - np.rint(values / unit)) < 1e-6).astype(float)
