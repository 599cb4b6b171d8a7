"""Repricing a position over dates x spots (x IV shifts) in one numpy pass with Black-76.

Every leg is priced on its own expiry's forward: at date d and spot S the forward of expiry e is
S e^(c_e tcal), where c_e is the carry read from that expiry's chain now and tcal the calendar
years still to its settlement; discounting runs on the same calendar time, volatility on the day
count's. Legs whose expiry has settled by d are worth their intrinsic value (the forward of a
settled expiry is the spot). All legs, dates and spots go through one `black_price` call.

IV rules: sticky strike keeps each leg's IV; sticky moneyness reads today's smile of the leg's
expiry at the strike of the same moneyness, K F0 / F, plus the leg's own offset from the smile
at its strike (so both rules agree now, at today's spot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from optterm.engine.analytics.blackmath import black_price
from optterm.engine.analytics.blackmath import greeks as black_greeks
from optterm.strategy.daycount import DayClock, calendar_years
from optterm.strategy.errors import StrategyError
from optterm.strategy.marketdata import StrategyMarket
from optterm.strategy.position import Position
from optterm.strategy.settings import ModelSettings

__all__ = ["LegGreeks", "Pricer"]

# An IV shifted to zero or below prices as (almost) intrinsic value instead of NaN.
_MIN_VOL = 1e-4


@dataclass(frozen=True, slots=True, eq=False)
class LegGreeks:
    """Per-leg Greeks of the position (arrays aligned with its legs), quantity applied:
    delta in units of the underlying, `delta_lots` in lots, `delta_rupees` per 1 % spot move,
    gamma in units of delta per point, theta in rupees per day of the day count, vega in rupees
    per vol point. `iv` is each leg's IV under the day count (NaN for futures)."""

    delta: np.ndarray
    delta_lots: np.ndarray
    delta_rupees: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    iv: np.ndarray

    def total(self) -> dict[str, float]:
        names = ("delta", "delta_lots", "delta_rupees", "gamma", "theta", "vega")
        return {n: float(np.sum(getattr(self, n))) for n in names}


class Pricer:
    """The position's legs as arrays, ready to be repriced many times."""

    def __init__(
        self,
        position: Position,
        market: StrategyMarket,
        settings: ModelSettings | None = None,
    ) -> None:
        self.position = position
        self.market = market
        self.settings = settings or ModelSettings()
        self.clock = DayClock(market.calendar, self.settings.day_count)
        legs = position.legs
        for g in legs:
            e = market.expiry(g.expiry)
            if g.is_option:
                e.index(g.strike)
        self.units = np.array([position.units(g) for g in legs], dtype=np.float64)
        self.entry = np.array([g.price for g in legs], dtype=np.float64)
        self.is_option = np.array([g.is_option for g in legs])
        self.is_call = np.array([g.is_call for g in legs])
        self.strike = np.array([g.strike if g.is_option else 0.0 for g in legs])
        self.settle = [market.expiry(g.expiry).settle for g in legs]
        self.carry = np.array([market.carry(g.expiry) for g in legs])
        self.rate = np.array([market.expiry(g.expiry).rate for g in legs])
        self.forward0 = np.array([market.expiry(g.expiry).forward for g in legs])
        # Calendar-time IV -> day-count IV with the same total variance now.
        ratio = np.array([self.variance_ratio(s) for s in self.settle])
        vol = []
        for g, r in zip(legs, ratio, strict=True):
            if not g.is_option:
                vol.append(math.nan)
                continue
            base = g.iv if g.iv is not None else market.expiry(g.expiry).iv(g.kind, g.strike)
            if not (math.isfinite(base) and base > 0):
                raise StrategyError(
                    f"{g.strike:g} {g.kind} {g.expiry.isoformat()} has no IV in the chain "
                    "(no traded price); give the leg an IV or pick a traded strike."
                )
            vol.append(base * r + g.iv_shift / 100.0)
        self.vol = np.array(vol, dtype=np.float64)
        self.vol_ratio = ratio
        self._smiles = [self._smile(i) for i in range(len(legs))]

    # -- time --------------------------------------------------------------------------------

    def variance_ratio(self, settle: datetime) -> float:
        """sqrt(calendar years / day-count years) to `settle` now: a calendar-time IV times
        this is the day-count IV with the same total variance (the same price)."""
        tcal = calendar_years(self.market.now, settle)
        tdc = self.clock.years(self.market.now, settle)
        return math.sqrt(tcal / tdc) if tcal > 0 and tdc > 0 else 1.0

    def times(self, dates: Sequence[datetime]) -> tuple[np.ndarray, np.ndarray]:
        """(calendar years, day-count years) from each date to each leg's settlement, (L, D)."""
        tcal = np.array([[calendar_years(d, s) for d in dates] for s in self.settle])
        tdc = np.array([[self.clock.years(d, s) for d in dates] for s in self.settle])
        return tcal.reshape(len(self.settle), len(dates)), tdc.reshape(tcal.shape)

    def _smile(self, i: int) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(strikes, day-count IVs, this leg's offset from the smile at its strike)."""
        if self.settings.iv_rule != "sticky_moneyness" or not self.is_option[i]:
            return None
        g = self.position.legs[i]
        k, v = self.market.expiry(g.expiry).smile()
        if not k.size:
            return None
        v = v * self.vol_ratio[i]
        return k, v, float(self.vol[i] - np.interp(g.strike, k, v))

    # -- values ------------------------------------------------------------------------------

    def values_at(
        self, tcal: np.ndarray, tdc: np.ndarray, spots: np.ndarray, iv_shift: float | np.ndarray
    ) -> np.ndarray:
        """Per-unit value of each leg, (L, D, S), for times (L, D), spots (S,) and a global IV
        shift in vol points (a scalar, or one per D column)."""
        spots = np.asarray(spots, dtype=np.float64)
        n_dates = tcal.shape[1]
        growth = np.exp(self.carry[:, None] * tcal)  # F/S per leg and date
        fwd = growth[:, :, None] * spots[None, None, :]
        out = np.array(fwd)  # futures legs are worth their forward
        opt = np.flatnonzero(self.is_option)
        if not opt.size:
            return out
        shift = np.broadcast_to(np.asarray(iv_shift, dtype=np.float64) / 100.0, (n_dates,))
        vol = self._vols(opt, fwd[opt], shift)
        t_o = tdc[opt][:, :, None]
        disc = np.exp(-self.rate[opt, None] * tcal[opt])[:, :, None]
        k = self.strike[opt][:, None, None]
        c = self.is_call[opt][:, None, None]
        f_o = fwd[opt]
        with np.errstate(invalid="ignore"):
            price = black_price(f_o, k, t_o, np.maximum(vol, _MIN_VOL), disc, c)
        intrinsic = disc * np.maximum(np.where(c, f_o - k, k - f_o), 0.0)
        # Settled, or at spot 0 (where the lognormal has no density): intrinsic value.
        out[opt] = np.where((t_o > 0) & (f_o > 0), price, intrinsic)
        return out

    def _vols(self, opt: np.ndarray, fwd: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """IV of each option leg at each date and spot (or per date under sticky strike)."""
        base = self.vol[opt][:, None, None] + shift[None, :, None]
        if self.settings.iv_rule != "sticky_moneyness":
            return base
        out = np.broadcast_to(base, fwd.shape).copy()
        for row, i in enumerate(opt):
            smile = self._smiles[i]
            if smile is None:
                continue
            k, v, offset = smile
            with np.errstate(divide="ignore"):  # spot 0: the far right of the smile
                moved = self.strike[i] * self.forward0[i] / fwd[row]
            out[row] = np.interp(moved, k, v) + offset + shift[:, None]
        return out

    def values(
        self, dates: Sequence[datetime], spots: np.ndarray, iv_shift: float | np.ndarray = 0.0
    ) -> np.ndarray:
        tcal, tdc = self.times(dates)
        return self.values_at(tcal, tdc, spots, iv_shift)

    def pnl(
        self, dates: Sequence[datetime], spots: np.ndarray, iv_shift: float | np.ndarray = 0.0
    ) -> np.ndarray:
        """P&L in rupees, (D, S): sum over legs of units x (value - entry price)."""
        v = self.values(dates, spots, iv_shift)
        return np.einsum("l,lds->ds", self.units, v - self.entry[:, None, None])

    def iv_matrix(self, at: datetime, spots: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """P&L in rupees at date `at`, (len(shifts), S): one row per global IV shift."""
        shifts = np.asarray(shifts, dtype=np.float64)
        tcal, tdc = self.times([at])
        n = shifts.size
        v = self.values_at(np.repeat(tcal, n, axis=1), np.repeat(tdc, n, axis=1), spots, shifts)
        return np.einsum("l,lds->ds", self.units, v - self.entry[:, None, None])

    # -- Greeks ------------------------------------------------------------------------------

    def greeks(self, at: datetime, spot: float, iv_shift: float = 0.0) -> LegGreeks:
        """Per-leg Greeks at date `at` and spot `spot` (quantity applied)."""
        tcal, tdc = self.times([at])
        tcal, tdc = tcal[:, 0], tdc[:, 0]
        growth = np.exp(self.carry * tcal)
        fwd = growth * spot
        disc = np.exp(-self.rate * tcal)
        vol = np.maximum(self.vol + iv_shift / 100.0, _MIN_VOL)
        if self.settings.iv_rule == "sticky_moneyness":
            opt = np.flatnonzero(self.is_option)
            vol[opt] = np.maximum(
                self._vols(opt, fwd[opt][:, None, None], np.array([iv_shift / 100.0]))[:, 0, 0],
                _MIN_VOL,
            )
        g = black_greeks(fwd, np.where(self.is_option, self.strike, fwd), tdc, vol, disc,
                         self.is_call, spot)  # fmt: skip
        live = self.is_option & (tdc > 0)
        # Futures: dF/dS = F/S; F decays towards spot by its carry, c F per year.
        delta = np.where(live, g.delta, np.where(self.is_option, 0.0, growth))
        delta = np.where(self.is_option & ~live, self._settled_delta(fwd), delta)
        gamma = np.where(live, g.gamma, 0.0)
        per_day = 365.0 / self.clock.basis
        theta = np.where(live, g.theta * per_day, 0.0)
        theta = np.where(self.is_option, theta, -self.carry * fwd / self.clock.basis)
        vega = np.where(live, g.vega, 0.0)
        u = self.units
        return LegGreeks(
            delta=u * delta,
            delta_lots=u * delta / self.position.lot_size,
            delta_rupees=u * delta * spot * 0.01,
            gamma=u * gamma,
            theta=u * theta,
            vega=u * vega,
            iv=np.where(self.is_option, vol, np.nan),
        )

    def _settled_delta(self, fwd: np.ndarray) -> np.ndarray:
        """Delta of a settled option: 1 (call) or -1 (put) in the money, else 0."""
        itm = np.where(self.is_call, fwd > self.strike, fwd < self.strike)
        return np.where(itm, np.where(self.is_call, 1.0, -1.0), 0.0)
