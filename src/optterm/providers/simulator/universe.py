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

MCX commodities (`universe="mcx"`, or `"all"` beside the F&O names): the MCX underlyings' near
futures, each name on its own segment's session. A name trades (its shocks, volume and session
share move) only while its session is open: at 21:00 IST the MCX names tick and the NSE names
stand at their 15:40 close (`closed_at` says which are closed). MCX flows play in the evening,
from about 17:00 to 20:00 IST (`MCX_FLOWS`), one name each, when the US markets open.

The columns are the scanner's raw fields (engine/scanner/fields.py `RAW_FIELDS`); this module
does not import the engine, tests/test_scanner_sim.py keeps the two equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Final

import numpy as np

from optterm.market import MCX_UNDERLYINGS, NSE_INDICES, MarketCalendar

__all__ = [
    "DEFAULT_SIZE",
    "FLOWS",
    "FLOW_NAMES_EACH",
    "MCX_FLOWS",
    "SIM_UNIVERSES",
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
# The flows MCX names play, one name each (a universe of ten has no room for two of each).
MCX_FLOWS: Final = ("long_buildup", "short_buildup", "short_covering", "long_unwinding",
                    "oi_spurt", "iv_spike")  # fmt: skip
SIM_UNIVERSES: Final = ("fno", "mcx", "all")  # NSE F&O, MCX commodities, both
_MCX_FAMILY: Final = {"CRUDEOILM": "CRUDEOIL", "NATGASMINI": "NATURALGAS", "GOLDM": "GOLD",
                      "SILVERM": "SILVER"}  # fmt: skip
_RAMP: Final = (0.08, 0.30)  # share of the session: ~09:45 → ~11:10
# MCX's evening, when the US markets open: ~17:00 → ~20:00 IST of a 09:00–23:30 session.
_MCX_RAMP: Final = (0.55, 0.76)
# The MCX near futures' levels (the chain simulator's, providers/simulator/state.py) and vols
# in points; illustrative, like every simulated price.
_MCX_LEVELS: Final = {
    "CRUDEOIL": (5_450.0, 34.0),
    "CRUDEOILM": (5_450.0, 34.0),
    "NATURALGAS": (330.0, 55.0),
    "NATGASMINI": (330.0, 55.0),
    "GOLD": (131_000.0, 17.0),
    "GOLDM": (131_000.0, 17.0),
    "SILVER": (172_000.0, 27.0),
    "SILVERM": (172_000.0, 27.0),
    "COPPER": (1_010.0, 22.0),
    "ZINC": (285.0, 22.0),
}
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
    is_commodity: np.ndarray  # 1.0 for the MCX names
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


def make_spec(
    seed: int, size: int = DEFAULT_SIZE, *, flows: bool = True, universe: str = "fno"
) -> UniverseSpec:
    """The universe of `size` names for `seed`: the NSE indices, then seeded stocks ("fno");
    the MCX underlyings ("mcx"); or the F&O names followed by the MCX ones ("all"). The F&O
    part is the same whichever: its draws never depend on the MCX part."""
    if universe not in SIM_UNIVERSES:
        raise ValueError(f"universe must be one of {', '.join(SIM_UNIVERSES)}, got {universe!r}")
    if universe == "mcx":
        return _mcx_spec(seed, flows)
    fno = _fno_spec(seed, size, flows)
    return fno if universe == "fno" else _joined(fno, _mcx_spec(seed, flows))


def _fno_spec(seed: int, size: int, flows: bool) -> UniverseSpec:
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
        is_commodity=np.zeros(n),
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


def _mcx_spec(seed: int, flows: bool) -> UniverseSpec:
    """The MCX underlyings' near futures: lots and steps from market.MCX_UNDERLYINGS, levels
    and vols per commodity, the rest seeded (a stream of its own, so the F&O part is unmoved)."""
    rng = np.random.default_rng([seed, 0x3C5])
    under = list(MCX_UNDERLYINGS.values())
    names = tuple(u.symbol for u in under)
    n = len(names)
    level = np.array([_MCX_LEVELS[u.symbol][0] for u in under])
    prev_iv = np.array([_MCX_LEVELS[u.symbol][1] for u in under]) * rng.uniform(0.9, 1.1, n)
    step = np.array([u.strike_step for u in under])
    # A mini contract closes where its big one does (GOLDM with GOLD, CRUDEOILM with CRUDEOIL):
    # one draw per commodity, so the two never sit 4 % apart.
    family = [_MCX_FAMILY.get(name, name) for name in names]
    draw = dict(zip(names, 0.03 * rng.standard_normal(n), strict=True))
    prev_close = np.round(level * np.exp([draw[f] for f in family]), 1)
    chosen: dict[str, tuple[str, ...]] = {}
    if flows:
        picks = rng.permutation(n)[: len(MCX_FLOWS)]
        chosen = {flow: (names[int(j)],) for flow, j in zip(MCX_FLOWS, picks, strict=True)}
    return UniverseSpec(
        names=names,
        is_index=np.zeros(n),
        is_commodity=np.ones(n),
        lot_size=np.array([float(u.lot_size) for u in under]),
        strike_step=step,
        prev_close=prev_close,
        prev_oi=np.round(rng.uniform(2e3, 3e4, n)),
        avg_volume=np.round(rng.uniform(2e3, 4e4, n)),
        prev_iv=prev_iv,
        iv_low=prev_iv * rng.uniform(0.6, 0.8, n),
        iv_high=prev_iv * rng.uniform(1.8, 2.4, n),
        iv_median=prev_iv * rng.uniform(0.95, 1.1, n),
        hv20=prev_iv * rng.uniform(0.7, 1.1, n),
        prev_pcr=rng.uniform(0.75, 1.25, n),
        prev_opt_oi=np.round(rng.uniform(2e4, 4e5, n)),
        avg_opt_volume=np.round(rng.uniform(1e4, 3e5, n)),
        max_pain_off=rng.uniform(-0.01, 0.01, n),
        wall_up=rng.integers(2, 9, n).astype(np.float64),
        wall_down=rng.integers(2, 9, n).astype(np.float64),
        skew=rng.uniform(1.0, 4.0, n),
        gex=rng.uniform(-20.0, 50.0, n),
        flows=chosen,
    )


def _joined(a: UniverseSpec, b: UniverseSpec) -> UniverseSpec:
    """`a`'s names then `b`'s, every per-name constant concatenated, the flows merged."""
    parts: dict[str, object] = {"names": a.names + b.names}
    for f in fields(UniverseSpec):
        if f.name not in ("names", "flows"):
            parts[f.name] = np.concatenate([getattr(a, f.name), getattr(b, f.name)])
    flows = {k: a.flows.get(k, ()) + b.flows.get(k, ()) for k in (*a.flows, *b.flows)}
    return UniverseSpec(flows=flows, **parts)  # type: ignore[arg-type]


def universe_calendar(calendar: MarketCalendar, universe: str) -> MarketCalendar:
    """The session a simulated universe plays: `calendar` (the configured NSE F&O one) for
    "fno", MCX's for "mcx", both combined (open while either is) for "all"."""
    mcx, nse = next(iter(MCX_UNDERLYINGS)), next(iter(NSE_INDICES))
    if universe == "mcx":
        return calendar.for_symbol(mcx)
    if universe == "all":
        return calendar.for_symbols([nse, mcx])
    # NSE F&O's own session, also when `calendar` is a watchlist's combined one.
    return calendar.for_symbol(nse)


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


@dataclass(frozen=True)
class _Group:
    """The names of one segment in the universe and their session, in steps of the universe's
    clock (which runs from the earliest open to the latest close of the day)."""

    label: str  # the calendar's name: "NSE F&O", "MCX"
    members: np.ndarray  # bool per name
    start: int  # the step the session opens at
    steps: int  # its length in steps (0: no session that day)
    ramp: tuple[float, float]  # when its flows build, as shares of its session
    close_text: str  # "15:40"


class UniverseSim:
    """One session of the universe, stepped every `step_seconds` of trading time.

    The session is the universe's: the F&O names' (09:15–15:40), the MCX names' (09:00–23:30 or
    23:55) or, for "all", from the earliest open to the latest close; each name moves only
    inside its own segment's session."""

    def __init__(
        self,
        *,
        seed: int = 42,
        size: int = DEFAULT_SIZE,
        flows: bool = True,
        day: date,
        step_seconds: float = 15.0,
        calendar: MarketCalendar | None = None,
        universe: str = "fno",
    ) -> None:
        if not step_seconds > 0:
            raise ValueError(f"step_seconds must be > 0, got {step_seconds!r}")
        self.seed = int(seed)
        self.universe = universe
        self.spec = make_spec(self.seed, size, flows=flows, universe=universe)
        self.day = day
        self.step_seconds = float(step_seconds)
        nse = (calendar or MarketCalendar()).for_symbol(next(iter(NSE_INDICES)))
        mcx = nse.for_symbol(next(iter(MCX_UNDERLYINGS)))
        cal = universe_calendar(nse, universe)
        self.calendar = cal
        opens, closes = cal.session_bounds(day)
        self.session_seconds = (closes - opens).total_seconds()
        self.steps = int(self.session_seconds // self.step_seconds)
        self.open_at = opens
        n = len(self.spec.names)
        s = self.spec
        commodity = s.is_commodity > 0
        self._groups = tuple(
            self._group(c, members, day, ramp, universe == "all")
            for c, members, ramp in ((nse, ~commodity, _RAMP), (mcx, commodity, _MCX_RAMP))
            if members.any()
        )
        self._phi_decay = math.exp(-self.step_seconds / _TAU_S)
        self._shock = math.sqrt(1.0 - self._phi_decay**2)
        self.dte = np.where(s.is_index > 0, float(_dte(day, True)), float(_dte(day, False)))
        if commodity.any():
            for i in np.flatnonzero(commodity):
                near = mcx.expiries(s.names[i], day, 1)
                self.dte[i] = float((near[0] - day).days) if near else np.nan
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

    def _group(
        self,
        cal: MarketCalendar,
        members: np.ndarray,
        day: date,
        ramp: tuple[float, float],
        mixed: bool,
    ) -> _Group:
        if mixed and not cal.is_trading_day(day):  # this segment's holiday: closed all day
            return _Group(cal.name, members, 0, 0, ramp, "closed all day (a holiday)")
        opens, closes = cal.session_bounds(day)
        start = int((opens - self.open_at).total_seconds() // self.step_seconds)
        steps = int((closes - opens).total_seconds() // self.step_seconds)
        return _Group(cal.name, members, start, steps, ramp, f"{cal.close_on(day):%H:%M}")

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

    def closed_at(self, step: int | None = None) -> list[tuple[str, np.ndarray, str]]:
        """The segments whose session is not open at `step` (default: the current one), each
        as (its name, its members as a bool mask, "closed at 15:40" or "not open until 09:15"):
        their names stand at their last values and must not be shown as fresh."""
        k = self.step if step is None else step
        out = []
        for g in self._groups:
            if g.steps == 0:
                out.append((g.label, g.members, g.close_text))
            elif k < g.start:
                opens = self.open_at + timedelta(seconds=g.start * self.step_seconds)
                local = opens.astimezone(self.calendar.tz)
                out.append((g.label, g.members, f"not open until {local:%H:%M}"))
            elif k >= g.start + g.steps:  # the close itself is after the session (exclusive)
                out.append((g.label, g.members, f"closed at {g.close_text}"))
        return out

    def _fracs(self, step: int) -> list[float]:
        """Each group's share of its session elapsed at `step` (0 before it opens, 1 after)."""
        return [
            0.0 if g.steps == 0 else min(max((step - g.start) / g.steps, 0.0), 1.0)
            for g in self._groups
        ]

    def _per_name(self, values: list[float]) -> np.ndarray | float:
        """One value per group as one per name (the scalar itself for a one-group universe, so
        the F&O universe computes exactly as it always has)."""
        if len(self._groups) == 1:
            return values[0]
        out = np.empty(len(self.spec.names))
        for g, v in zip(self._groups, values, strict=True):
            out[g.members] = v
        return out

    def advance(self) -> dict[str, np.ndarray]:
        """Step once and return the raw columns (the last step repeats once the session ends)."""
        if self.step >= self.steps:
            return self._cols
        self.step += 1
        z = np.random.default_rng([self.seed, self.day.toordinal(), self.step]).standard_normal(
            self._x.shape
        )
        live = [g.start < self.step <= g.start + g.steps for g in self._groups]
        if all(live):
            self._x *= self._phi_decay
            self._x += self._shock * z
        else:  # a closed segment's names keep their state: no shock, no volume, no time
            moving = np.zeros(len(self.spec.names), dtype=bool)
            for g, on in zip(self._groups, live, strict=True):
                moving |= g.members & on
            self._x[:, moving] = self._x[:, moving] * self._phi_decay + self._shock * z[:, moving]
        fracs = self._fracs(self.step)
        # U-shaped day, mean 1; nothing traded while a segment is closed.
        profile = self._per_name([
            1.0 + 0.6 * math.cos(2.0 * math.pi * f) if on else 0.0
            for f, on in zip(fracs, live, strict=True)
        ])  # fmt: skip
        steps = self._per_name([float(max(g.steps, 1)) for g in self._groups])
        pace = np.exp(_A_VOL * np.tanh(self._x[4]))
        r = self._ramps(fracs)
        if "unusual_activity" in self._flow:
            pace = pace * (1.0 + _FLOW_VOL * r * self._flow["unusual_activity"])
        dv = self.spec.avg_volume / steps * profile * pace
        dov = self.spec.avg_opt_volume / steps * profile * pace
        self._cols = self._state(dv, dov, first=False)
        return self._cols

    def _ramps(self, fracs: list[float]) -> np.ndarray | float:
        out = []
        for g, frac in zip(self._groups, fracs, strict=True):
            a, b = g.ramp
            out.append(min(max((frac - a) / (b - a), 0.0), 1.0))
        return self._per_name(out)

    def _state(self, dv: np.ndarray, dov: np.ndarray, *, first: bool) -> dict[str, np.ndarray]:
        s, x = self.spec, self._x
        fracs = self._fracs(self.step)
        frac = self._per_name(fracs)
        r = self._ramps(fracs)
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
            "is_commodity": s.is_commodity,
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
            "session_frac": np.broadcast_to(frac, (len(s.names),)).copy(),
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
