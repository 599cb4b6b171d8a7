"""The simulator's F&O universe: a few hundred underlyings played together, vectorised.

Every quantity is one numpy array across the underlyings (no Python object per stock), so a tick
of 250 names costs a few dozen array operations. Determinism as in the chain simulator: the
universe's make-up comes from (seed, size), the random shocks of step k of a session from
(seed, session date, k), so the state at any step depends only on those, never on how it was
reached; asking for an earlier step replays the session from its open.

The quiet market moves inside fixed bands (price within ±0.8 % of the previous close, futures OI
within ±3 %, ATM IV within ±5 %, PCR 0.7–1.4, volume pace at most ~2× normal), so a preset's
threshold outside those bands finds only the names a *flow* drives there. Flows play on a few
names each from about 09:45, reaching full size by about 11:10 (`FLOWS`): long/short buildup,
short covering, long unwinding, an OI spurt, an IV spike, a PCR extreme (one high, one low) and
unusual activity. `flows=False` gives a quiet universe.

The columns are the scanner's raw fields (engine/scanner/fields.py `RAW_FIELDS`); this module
does not import the engine, tests/test_scanner_sim.py keeps the two equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np

from optterm.market import NSE_INDICES, MarketCalendar

__all__ = [
    "DEFAULT_SIZE",
    "FLOWS",
    "FLOW_NAMES_EACH",
    "UniverseSim",
    "UniverseSpec",
    "make_spec",
]

DEFAULT_SIZE: Final = 216  # today's count (Sep-2026); the scanner is designed for 250
FLOWS: Final = (
    "long_buildup",
    "short_buildup",
    "short_covering",
    "long_unwinding",
    "oi_spurt",
    "iv_spike",
    "pcr_extreme",
    "unusual_activity",
)
FLOW_NAMES_EACH: Final = 2
_RAMP: Final = (0.08, 0.30)  # share of the session: ~09:45 → ~11:10
_TAU_S: Final = 7200.0  # the quiet processes' memory (2 h)
_CARRY: Final = 0.055
# Quiet bands (log amplitudes of tanh-bounded processes).
_A_PRICE_STOCK, _A_PRICE_INDEX, _GAP = 0.006, 0.004, 0.002
_A_OI, _A_IV, _A_PCR, _A_VOL = 0.03, 0.05, 0.10, 0.25
# Flow sizes at full ramp (log): chosen outside the quiet bands with room on both sides.
_FLOW_PRICE, _FLOW_OI, _FLOW_SPURT, _FLOW_IV, _FLOW_VOL = 0.025, 0.09, 0.25, 0.45, 9.0
_PCR_HIGH, _PCR_LOW = 2.2, 0.35
_SYLLABLES: Final = tuple(
    c + v for c in "BDGHKLMNPRSTV" for v in "AEIOU"
)  # pseudo-tickers, e.g. KAVERI; seeded, never a real list


@dataclass(frozen=True)
class UniverseSpec:
    """The universe's make-up: names and per-name constants (arrays)."""

    names: tuple[str, ...]
    is_index: np.ndarray
    lot_size: np.ndarray
    strike_step: np.ndarray
    prev_close: np.ndarray
    prev_oi: np.ndarray
    avg_volume: np.ndarray
    prev_iv: np.ndarray
    iv_low: np.ndarray
    iv_high: np.ndarray
    iv_median: np.ndarray
    hv20: np.ndarray
    prev_pcr: np.ndarray
    prev_opt_oi: np.ndarray
    avg_opt_volume: np.ndarray
    max_pain_off: np.ndarray
    wall_up: np.ndarray
    wall_down: np.ndarray
    skew: np.ndarray
    gex: np.ndarray
    flows: dict[str, tuple[str, ...]]


def _step_for(price: np.ndarray) -> np.ndarray:
    edges = np.array([250.0, 500.0, 1000.0, 2500.0, 5000.0])
    steps = np.array([2.5, 5.0, 10.0, 20.0, 50.0, 100.0])
    return steps[np.searchsorted(edges, price)]


def _stock_names(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        parts = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(2, 4)))
        name = "".join(_SYLLABLES[i] for i in parts)
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def make_spec(seed: int, size: int = DEFAULT_SIZE, *, flows: bool = True) -> UniverseSpec:
    """The universe of `size` names for `seed`: the NSE indices, then seeded stocks."""
    if size < len(NSE_INDICES) + 1:
        raise ValueError(f"a universe needs at least {len(NSE_INDICES) + 1} names, got {size}")
    rng = np.random.default_rng([seed, size, 0x5CA9])
    idx = list(NSE_INDICES.values())
    n_idx = len(idx)
    stocks = _stock_names(rng, size - n_idx, {u.symbol for u in idx})
    names = tuple([u.symbol for u in idx] + stocks)
    n = len(names)
    is_index = np.arange(n) < n_idx
    idx_step = np.array([u.strike_step for u in idx])
    stock_px = np.exp(rng.uniform(math.log(60.0), math.log(6000.0), n - n_idx))
    prev_close = np.concatenate(
        [idx_step * 500.0 * np.exp(0.1 * rng.standard_normal(n_idx)), stock_px]
    )
    prev_close = np.round(prev_close, 1)
    step = np.concatenate([idx_step, _step_for(stock_px)])
    lot = np.concatenate(
        [
            np.array([u.lot_size for u in idx], dtype=np.float64),
            np.maximum(25.0, np.round(750_000.0 / stock_px / 25.0) * 25.0),
        ]
    )
    prev_iv = np.where(is_index, rng.uniform(11.0, 17.0, n), rng.uniform(20.0, 45.0, n))
    prev_pcr = rng.uniform(0.75, 1.25, n)
    chosen: dict[str, tuple[str, ...]] = {}
    if flows:
        picks = rng.choice(np.arange(n_idx, n), size=len(FLOWS) * FLOW_NAMES_EACH, replace=False)
        for i, flow in enumerate(FLOWS):
            part = picks[i * FLOW_NAMES_EACH : (i + 1) * FLOW_NAMES_EACH]
            chosen[flow] = tuple(names[j] for j in part)
    return UniverseSpec(
        names=names,
        is_index=is_index.astype(np.float64),
        lot_size=lot,
        strike_step=step,
        prev_close=prev_close,
        prev_oi=np.round(rng.uniform(2e4, 3e5, n)),
        avg_volume=np.round(rng.uniform(5e3, 8e4, n)),
        prev_iv=prev_iv,
        iv_low=prev_iv * rng.uniform(0.6, 0.8, n),
        iv_high=prev_iv * rng.uniform(1.8, 2.4, n),
        iv_median=prev_iv * rng.uniform(0.95, 1.1, n),
        hv20=prev_iv * rng.uniform(0.7, 1.1, n),
        prev_pcr=prev_pcr,
        prev_opt_oi=np.round(rng.uniform(2e5, 4e6, n)),
        avg_opt_volume=np.round(rng.uniform(1e5, 3e6, n)),
        max_pain_off=rng.uniform(-0.01, 0.01, n),
        wall_up=rng.integers(2, 9, n).astype(np.float64),
        wall_down=rng.integers(2, 9, n).astype(np.float64),
        skew=rng.uniform(1.0, 4.0, n),
        gex=rng.uniform(-50.0, 200.0, n),
        flows=chosen,
    )


def _last_tuesday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 1) % 7)


def _dte(day: date, weekly: bool) -> int:
    if weekly:
        return (1 - day.weekday()) % 7
    expiry = _last_tuesday(day.year, day.month)
    if expiry < day:
        expiry = _last_tuesday(day.year + (day.month == 12), day.month % 12 + 1)
    return (expiry - day).days


def _phi(x: np.ndarray) -> np.ndarray:
    # The standard normal CDF without scipy (erf over an array).
    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0)))


class UniverseSim:
    """One session of the universe, stepped every `step_seconds` of trading time."""

    def __init__(
        self,
        *,
        seed: int = 42,
        size: int = DEFAULT_SIZE,
        flows: bool = True,
        day: date,
        step_seconds: float = 15.0,
        calendar: MarketCalendar | None = None,
    ) -> None:
        if not step_seconds > 0:
            raise ValueError(f"step_seconds must be > 0, got {step_seconds!r}")
        self.seed = int(seed)
        self.spec = make_spec(self.seed, size, flows=flows)
        self.day = day
        self.step_seconds = float(step_seconds)
        cal = calendar or MarketCalendar()
        self.session_seconds = cal.session_seconds()
        self.steps = int(self.session_seconds // self.step_seconds)
        self.open_at = cal.session_bounds(day)[0]
        n = len(self.spec.names)
        s = self.spec
        self._phi_decay = math.exp(-self.step_seconds / _TAU_S)
        self._shock = math.sqrt(1.0 - self._phi_decay**2)
        self.dte = np.where(s.is_index > 0, float(_dte(day, True)), float(_dte(day, False)))
        gap_rng = np.random.default_rng([self.seed, day.toordinal(), 0xA9])
        self._gap = _GAP * np.tanh(gap_rng.standard_normal(n))
        self._a_price = np.where(s.is_index > 0, _A_PRICE_INDEX, _A_PRICE_STOCK)
        self._flow = {
            f: np.isin(np.array(s.names), np.array(names)) for f, names in s.flows.items()
        }
        low = np.zeros(n, dtype=bool)
        if "pcr_extreme" in s.flows:  # the first name is driven high, the second low
            low[s.names.index(s.flows["pcr_extreme"][-1])] = True
        self._pcr_target = np.where(low, _PCR_LOW, _PCR_HIGH)
        self.reset()

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    def reset(self) -> None:
        n = len(self.spec.names)
        self.step = 0
        self._x = np.zeros((7, n))  # price, OI, IV, PCR, volume pace, options OI, put-volume tilt
        self._volume = np.zeros(n)
        self._opt_volume = np.zeros(n)
        self._pv = np.zeros(n)  # Σ price × volume, for VWAP
        self._sv = np.zeros(n)  # Σ straddle × options volume, for the straddle's VWAP
        self._cols = self._state(np.zeros(n), np.zeros(n), first=True)

    def time_at(self, step: int) -> float:
        """Epoch seconds of step `step` of the session."""
        return self.open_at.timestamp() + step * self.step_seconds

    def seek(self, step: int) -> dict[str, np.ndarray]:
        """The raw columns at `step` (replaying from the open if it is behind the current)."""
        step = max(0, min(step, self.steps))
        if step < self.step:
            self.reset()
        while self.step < step:
            self.advance()
        return self._cols

    def columns(self) -> dict[str, np.ndarray]:
        return self._cols

    def advance(self) -> dict[str, np.ndarray]:
        """Step once and return the raw columns (the last step repeats once the session ends)."""
        if self.step >= self.steps:
            return self._cols
        self.step += 1
        z = np.random.default_rng([self.seed, self.day.toordinal(), self.step]).standard_normal(
            self._x.shape
        )
        self._x *= self._phi_decay
        self._x += self._shock * z
        frac = self.step / self.steps
        profile = 1.0 + 0.6 * math.cos(2.0 * math.pi * frac)  # U-shaped day, mean 1
        pace = np.exp(_A_VOL * np.tanh(self._x[4]))
        r = self._ramp(frac)
        if "unusual_activity" in self._flow:
            pace = pace * (1.0 + _FLOW_VOL * r * self._flow["unusual_activity"])
        dv = self.spec.avg_volume / self.steps * profile * pace
        dov = self.spec.avg_opt_volume / self.steps * profile * pace
        self._cols = self._state(dv, dov, first=False)
        return self._cols

    def _ramp(self, frac: float) -> float:
        a, b = _RAMP
        return min(max((frac - a) / (b - a), 0.0), 1.0)

    def _state(self, dv: np.ndarray, dov: np.ndarray, *, first: bool) -> dict[str, np.ndarray]:
        s, x = self.spec, self._x
        frac = self.step / self.steps
        r = self._ramp(frac)
        flow = self._flow
        log_p = self._gap + self._a_price * np.tanh(x[0])
        log_oi = _A_OI * np.tanh(x[1])
        log_iv = _A_IV * np.tanh(x[2])
        log_pcr = _A_PCR * np.tanh(x[3])
        for name, dp, doi in (
            ("long_buildup", _FLOW_PRICE, _FLOW_OI),
            ("short_buildup", -_FLOW_PRICE, _FLOW_OI),
            ("short_covering", _FLOW_PRICE, -_FLOW_OI),
            ("long_unwinding", -_FLOW_PRICE, -_FLOW_OI),
            ("oi_spurt", 0.0, _FLOW_SPURT),
        ):
            if name in flow:
                log_p = log_p + dp * r * flow[name]
                log_oi = log_oi + doi * r * flow[name]
        if "iv_spike" in flow:
            log_iv = log_iv + _FLOW_IV * r * flow["iv_spike"]
        if "pcr_extreme" in flow:
            log_pcr = log_pcr + r * flow["pcr_extreme"] * np.log(self._pcr_target / s.prev_pcr)
        spot = s.prev_close * np.exp(log_p)
        price = np.round(spot * math.exp(_CARRY * 10 / 365.0), 2)
        if first:
            self._open = price.copy()
            self._high = price.copy()
            self._low = price.copy()
        else:
            # New arrays, not in place: a caller may still hold the last tick's columns.
            self._high = np.maximum(self._high, price)
            self._low = np.minimum(self._low, price)
        iv = s.prev_iv * np.exp(log_iv)
        pcr = s.prev_pcr * np.exp(log_pcr)
        years = (self.dte + 1.0 - frac) / 365.0
        straddle = 0.8 * price * iv / 100.0 * np.sqrt(years)
        self._volume += dv
        self._opt_volume += dov
        self._pv += price * dv
        self._sv += straddle * dov
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = np.where(self._volume > 0, self._pv / self._volume, price)
            svwap = np.where(self._opt_volume > 0, self._sv / self._opt_volume, straddle)
        opt_oi = s.prev_opt_oi * np.exp(_A_OI * np.tanh(x[5]))
        ce_oi = opt_oi / (1.0 + pcr)
        pcr_vol = pcr * np.exp(0.1 * np.tanh(x[6]))
        ce_vol = self._opt_volume / (1.0 + pcr_vol)
        step = s.strike_step
        atm = np.round(price / step) * step
        ivp = 100.0 * _phi(np.log(iv / s.iv_median) / 0.25)
        prev_ce = s.prev_opt_oi / (1.0 + s.prev_pcr)
        return {
            "is_index": s.is_index,
            "lot_size": s.lot_size,
            "strike_step": step,
            "dte": self.dte,
            "price": price,
            "spot": np.round(spot, 2),
            "prev_close": np.round(s.prev_close * math.exp(_CARRY * 11 / 365.0), 2),
            "open": self._open,
            "high": self._high,
            "low": self._low,
            "vwap": vwap,
            "fut_oi": np.round(s.prev_oi * np.exp(log_oi)),
            "prev_oi": s.prev_oi,
            "volume": np.round(self._volume),
            "avg_volume": s.avg_volume,
            "session_frac": np.full(len(s.names), frac),
            "atm_strike": atm,
            "atm_iv": iv,
            "prev_iv": s.prev_iv,
            "iv_low": s.iv_low,
            "iv_high": s.iv_high,
            "ivp": ivp,
            "hv20": s.hv20,
            "straddle": straddle,
            "prev_straddle": 0.8 * s.prev_close * s.prev_iv / 100.0 * np.sqrt((self.dte + 1) / 365),
            "straddle_vwap": svwap,
            "skew": s.skew,
            "ce_oi": np.round(ce_oi),
            "pe_oi": np.round(opt_oi - ce_oi),
            "prev_ce_oi": np.round(prev_ce),
            "prev_pe_oi": np.round(s.prev_opt_oi - prev_ce),
            "ce_volume": np.round(ce_vol),
            "pe_volume": np.round(self._opt_volume - ce_vol),
            "avg_opt_volume": s.avg_opt_volume,
            "prev_pcr": s.prev_pcr,
            "max_pain": np.round(s.prev_close * (1.0 + s.max_pain_off) / step) * step,
            "call_wall": atm + s.wall_up * step,
            "put_wall": atm - s.wall_down * step,
            "gex": s.gex,
        }

    def previous_close(self) -> dict[str, np.ndarray]:
        """The raw columns as they stood at the previous session's close (for `1d ago`)."""
        s, cols = self.spec, self._cols
        return cols | {"price": cols["prev_close"], "spot": s.prev_close, "fut_oi": s.prev_oi,
                       "open": cols["prev_close"], "high": cols["prev_close"],
                       "low": cols["prev_close"], "vwap": cols["prev_close"],
                       "atm_iv": s.prev_iv, "straddle": cols["prev_straddle"],
                       "straddle_vwap": cols["prev_straddle"],
                       "ce_oi": cols["prev_ce_oi"], "pe_oi": cols["prev_pe_oi"],
                       "volume": s.avg_volume, "ce_volume": s.avg_opt_volume / 2.0,
                       "pe_volume": s.avg_opt_volume / 2.0,
                       "session_frac": np.ones(len(s.names))}  # fmt: skip
