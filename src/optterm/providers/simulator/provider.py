"""The built-in market simulator: deterministic, realistic NSE index option chains offline.

It implements the `Provider` protocol so the whole engine (and a demo) runs without a broker or
the NSE website. Data is always labelled `Feed.SIMULATED`.

Time: the simulator runs on session time only (see sim_clock.py). Simulated trading time advances
`speed` times as fast as the injected monotonic `clock`, and the market state changes in discrete
steps of `step_seconds`; `provider_ts` is the time of the current step, so two fetches within one
step return identical data and the poller can skip the second.

Determinism: the chain at step k depends only on (seed, scenario, symbol, expiry, k) and the
clock configuration (start, step_seconds, calendar), never on fetch order or frequency
(see sim_state.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

from optterm.market import COMMODITY, CURRENCY, NSE_INDICES, MarketCalendar
from optterm.model import ChainSnapshot, Feed, Quote, Segment, Underlying
from optterm.providers.base import BadPayload
from optterm.providers.common import TableProvider
from optterm.providers.segments import segment_of
from optterm.providers.simulator.clock import SessionClock, default_start
from optterm.providers.simulator.pricing import CDS_TICK, TICK
from optterm.providers.simulator.scenarios import SCENARIO_OBJECTS, SCENARIOS
from optterm.providers.simulator.state import (
    CARRY,
    YEAR_SECONDS,
    ChainState,
    SymbolPath,
    SymbolPlan,
    chain_setup,
    legs_together,
    make_plan,
)

__all__ = [
    "DEFAULT_EPISODE_SECONDS",
    "EXPIRIES_LISTED",
    "FUTURES_LISTED",
    "SCENARIOS",
    "VIX_BASE",
    "SimulatorProvider",
]

EXPIRIES_LISTED = 6  # expiries per symbol, like the near end of NSE's dropdown
# How far behind the step asked for another chain may be to be quoted with it (a poller at
# a simulator speed above one can skip steps between ticks).
BATCH_AHEAD = 8
FUTURES_LISTED = 3  # NSE lists index futures for the near, next and far month
VIX_BASE = "NIFTY"  # India VIX is computed from NIFTY options
DEFAULT_EPISODE_SECONDS = 1800.0  # one scenario pattern per 30 simulated minutes
_EPS = 1e-9


class SimulatorProvider(TableProvider):
    """A deterministic simulated NSE index market (see the module docstring).

    `seed` and `scenario` (a key of SCENARIOS) fix the market; `speed` is simulated trading
    seconds per second of `clock`; `step_seconds` is the granularity of market changes; `start`
    defaults to the open of the latest session at or before `now()`; `now` stamps `fetched_at`;
    `episode_seconds` is how long one scenario pattern takes in simulated time.
    """

    name = "simulator"
    feed = Feed.SIMULATED

    def _unserved(self, symbol: str) -> str:
        # The simulator adds MCX/CDS underlyings for the watched symbols only (providers.factory).
        return f'it plays one when it is watched: add [[poller.watch]] symbol = "{symbol}"'

    def __init__(
        self,
        *,
        seed: int = 42,
        scenario: str = "quiet",
        speed: float = 1.0,
        step_seconds: float = 1.0,
        start: datetime | None = None,
        calendar: MarketCalendar | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        underlyings: Mapping[str, Underlying] | None = None,
        episode_seconds: float = DEFAULT_EPISODE_SECONDS,
        universe: int = 0,
    ) -> None:
        if scenario not in SCENARIO_OBJECTS:
            raise ValueError(
                f"unknown simulator scenario {scenario!r}; valid scenarios: "
                + ", ".join(SCENARIO_OBJECTS)
            )
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"simulator speed must be a finite number >= 0, got {speed!r}")
        for label, value in (("step_seconds", step_seconds), ("episode_seconds", episode_seconds)):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"simulator {label} must be a positive number, got {value!r}")
        self.seed = int(seed)
        self.scenario = scenario
        self.speed = float(speed)
        self.step_seconds = float(step_seconds)
        self.episode_seconds = float(episode_seconds)
        self.universe = int(universe)
        self._stocks: dict[str, tuple[Underlying, float, float]] | None = None
        table = NSE_INDICES if underlyings is None else underlyings
        # Each segment plays on its own session (MCX into the evening, CDS to 17:00): a table
        # mixing segments is one simulator per segment behind this one, which routes by symbol.
        base = calendar or MarketCalendar()
        groups: dict[int, tuple[MarketCalendar, dict[str, Underlying]]] = {}
        for key, u in table.items():
            cal = base.for_symbol(key)
            groups.setdefault(id(cal), (cal, {}))[1][key] = u
        self.calendar = next(iter(groups.values()))[0] if groups else base
        self._parts: dict[str, SimulatorProvider] = {}
        if len(groups) > 1:
            for cal, sub in groups.values():
                part = SimulatorProvider(
                    seed=seed,
                    scenario=scenario,
                    speed=speed,
                    step_seconds=step_seconds,
                    start=start,
                    calendar=cal,
                    clock=clock,
                    now=now,
                    underlyings=sub,
                    episode_seconds=episode_seconds,
                )
                self._parts.update(dict.fromkeys((k.strip().upper() for k in sub), part))
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._clock0 = clock()
        if start is None:
            start = default_start(self.calendar, self._now())
        self._session = SessionClock(self.calendar, start)
        super().__init__(table)
        # Option price tick and spot-to-forward carry of this segment's chains: MCX options sit
        # on futures (the simulated spot is that futures price), currency options tick 0.0025.
        self._tick = CDS_TICK if self.calendar.segment == CURRENCY else TICK
        self._carry = 0.0 if self.calendar.segment == COMMODITY else CARRY
        self._paths: dict[str, SymbolPath] = {}
        self._chains: dict[tuple[str, date], ChainState] = {}
        self._symbol_chains: dict[str, list[ChainState]] = {}  # _chains by symbol, for _trim
        # Expiries listed per (symbol, session): the calendar is immutable, so they are
        # worked out once a session rather than on every fetch.
        self._listings: dict[tuple[str, int], list[date]] = {}
        self._future_expiries: dict[tuple[int, int, int], date | None] = {}

    # -- clock --------------------------------------------------------------------------------

    @property
    def start(self) -> datetime:
        """Simulated time of step 0 (UTC)."""
        return self._session.start

    def _elapsed(self) -> float:
        return max(self.speed * (self._clock() - self._clock0), 0.0)

    def current_step(self) -> int:
        """Index of the current step (0 at construction)."""
        return math.floor(self._elapsed() / self.step_seconds + _EPS)

    def step_time(self, step: int) -> datetime:
        """Simulated time (UTC) of a step; this is the provider_ts of its chains."""
        return self._session.at(step * self.step_seconds)

    def sim_now(self) -> datetime:
        """Current simulated time (UTC), continuous rather than quantised to the step."""
        return self._session.at(self._elapsed())

    # -- Provider protocol --------------------------------------------------------------------

    # -- the scanner's universe, on demand ----------------------------------------------------

    def _universe_stocks(self) -> dict[str, tuple[Underlying, float, float]]:
        """The stocks of the seeded F&O universe the scanner plays (universe.py, the same seed
        and size), each with its previous close and IV; built once, on first need."""
        if self._stocks is None:
            from optterm.providers.simulator.universe import make_spec

            spec = make_spec(self.seed, self.universe, flows=False) if self.universe else None
            self._stocks = {}
            if spec is not None:
                for i, name in enumerate(spec.names):
                    if spec.is_index[i] or name in self._underlyings or segment_of(name):
                        continue
                    u = Underlying(name, Segment.EQUITY, int(spec.lot_size[i]),
                                   float(spec.strike_step[i]))  # fmt: skip
                    self._stocks[name] = (u, float(spec.prev_close[i]), spec.prev_iv[i] / 100.0)
        return self._stocks

    def symbols(self) -> list[str]:
        """The table's underlyings, then the universe's stocks it plays on demand."""
        return [*super().symbols(), *(s for s in self._universe_stocks() if s not in self._served)]

    def _resolve(self, symbol: str) -> str:
        """A universe stock joins the table the first time it is asked for: one more seeded
        path, priced like any other (its universe row's close and IV), nothing for the others."""
        key = symbol.strip().upper() if isinstance(symbol, str) else ""
        if key not in self._served and key in self._universe_stocks():
            self._underlyings[key] = self._universe_stocks()[key][0]
        return super()._resolve(symbol)

    def _part(self, symbol: str) -> SimulatorProvider | None:
        """The segment's simulator playing `symbol` when this one mixes segments."""
        return self._parts.get(symbol.strip().upper()) if self._parts else None

    async def list_expiries(self, symbol: str) -> list[date]:
        if (part := self._part(symbol)) is not None:
            return await part.list_expiries(symbol)
        with self._guard():
            return self._listed(self._resolve(symbol), self.current_step())

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        if (part := self._part(symbol)) is not None:
            return await part.fetch_chain(symbol, expiry)
        with self._guard():
            return self._snapshot(self._resolve(symbol), expiry, self.current_step())

    async def fetch_spot(self, symbol: str) -> float:
        if (part := self._part(symbol)) is not None:
            return await part.fetch_spot(symbol)
        with self._guard():
            return self._path(self._resolve(symbol)).spot_at(self.current_step())

    async def close(self) -> None:
        for part in set(self._parts.values()):
            await part.close()
        self._closed = True
        self._chains.clear()
        self._symbol_chains.clear()
        self._paths.clear()

    # -- replay helpers (tests, benchmarks, export checks) -------------------------------------

    def chain_at_step(self, symbol: str, expiry: date, step: int) -> ChainSnapshot:
        """The chain as it was (or will be) at `step`, regardless of the clock."""
        if (part := self._part(symbol)) is not None:
            return part.chain_at_step(symbol, expiry, step)
        with self._guard():
            if step < 0:
                raise BadPayload(self.name, f"step must be >= 0, got {step}")
            return self._snapshot(self._resolve(symbol), expiry, step)

    def chain_at(self, symbol: str, expiry: date, when: datetime) -> ChainSnapshot:
        """The chain whose provider_ts is `when` (a step time of this simulator)."""
        if (part := self._part(symbol)) is not None:
            return part.chain_at(symbol, expiry, when)
        with self._guard():
            elapsed = self._session.elapsed_at(when)
            step = None if elapsed is None else round(elapsed / self.step_seconds)
            if step is None or abs((self.step_time(step) - when).total_seconds()) > 1e-3:
                raise BadPayload(self.name, f"{when.isoformat()} is not a simulated step time")
            return self._snapshot(self._resolve(symbol), expiry, step)

    def planned_move(self, symbol: str, step0: int, step1: int) -> float:
        """The scenario's planned log move of the spot from `step0` to `step1`: the direction its
        order flow is meant to push the market, without the random part. Tests judge whether a
        signal points with the flow by it."""
        if (part := self._part(symbol)) is not None:
            return part.planned_move(symbol, step0, step1)
        with self._guard():
            return self._path(self._resolve(symbol)).planned_move(step0, step1)

    # -- internals ----------------------------------------------------------------------------

    def _path(self, sym: str) -> SymbolPath:
        path = self._paths.get(sym)
        if path is None:
            path = SymbolPath(
                seed=self.seed,
                plan=self._plan(sym),
                scenario=SCENARIO_OBJECTS[self.scenario],
                clock=self._session,
                step_seconds=self.step_seconds,
                episode_seconds=self.episode_seconds,
            )
            self._paths[sym] = path
        return path

    def _plan(self, sym: str) -> SymbolPlan:
        stock = self._universe_stocks().get(sym)
        if stock is None:
            return make_plan(self.seed, self._underlyings[sym])
        return make_plan(self.seed, stock[0], spot=stock[1], iv=stock[2])

    def _listed(self, sym: str, step: int) -> list[date]:
        session = self._session.session_index(step * self.step_seconds)
        listed = self._listings.get((sym, session))
        if listed is None:
            if len(self._listings) > 1024:  # sessions long past: bounded memory
                self._listings.clear()
            today = self._session.session_date(session)
            listed = self.calendar.expiries(sym, today, EXPIRIES_LISTED)
            self._listings[(sym, session)] = listed
        return list(listed)

    def _snapshot(self, sym: str, expiry: date, step: int) -> ChainSnapshot:
        listed = self._listed(sym, step)
        if expiry not in listed:
            shown = ", ".join(d.isoformat() for d in listed)
            raise BadPayload(self.name, f"no expiry {expiry} for {sym}; listed: {shown}")
        state = self._chains.get((sym, expiry))
        if state is None:
            setup = chain_setup(
                self.calendar, self._session, self.step_seconds, sym, expiry, EXPIRIES_LISTED
            )
            state = ChainState(
                seed=self.seed,
                setup=setup,
                path=self._path(sym),
                lot_size=self._underlyings[sym].lot_size,
                tick=self._tick,
                carry=self._carry,
            )
            self._chains[(sym, expiry)] = state
            self._symbol_chains.setdefault(sym, []).append(state)
        if not state.priced_at(step):
            self._price_together(state, step)
        ce, pe, spot = state.legs_at(step)
        prev_close = self._path(sym).prev_close_at(step)
        futures, vix = self._futures(sym, expiry, step), self._vix(step)
        self._trim(sym, step)
        return ChainSnapshot(
            symbol=sym,
            expiry=expiry,
            provider=self.name,
            feed=self.feed,
            provider_ts=self.step_time(step),
            fetched_at=self._now(),
            spot=spot,
            lot_size=self._underlyings[sym].lot_size,
            strikes=state.strikes,
            ce=ce,
            pe=pe,
            meta={"scenario": self.scenario, "seed": str(self.seed), "step": str(step)},
            prev_close=prev_close,
            futures=futures,
            vix=vix,
            expiries=tuple(listed),
        )

    def _price_together(self, state: ChainState, step: int) -> None:
        """Quote at `step`, in one pass with `state`, every other chain kept that a poller is
        stepping along with it (one to BATCH_AHEAD steps behind, listed at `step`, same price
        tick): each then answers its own fetch of this step from what is computed here. A chain
        asked for at another step (a replay helper, a test) is left alone."""
        batch = [state]
        for (sym, expiry), other in self._chains.items():
            if (
                other is not state
                and not other.priced_at(step)
                and other.setup.birth <= other.k <= step <= other.k + BATCH_AHEAD
                and other.tick == state.tick
                and expiry in self._listed(sym, step)
            ):
                batch.append(other)
        if len(batch) > 1:
            legs_together(batch, step)

    def _trim(self, sym: str, step: int) -> None:
        # Spot history older than every chain of this symbol is only needed for a replay.
        behind = min((st.k for st in self._symbol_chains.get(sym, ())), default=step)
        self._path(sym).trim(min(behind, step))

    def _futures(self, sym: str, expiry: date, step: int) -> Quote | None:
        """The future expiring in the option expiry's month, priced at fair value (spot carried
        to its expiry at the simulator's carry rate), as the exchange lists them: the nearest
        FUTURES_LISTED months only."""
        path = self._path(sym)
        if self.calendar.segment == COMMODITY:
            # An MCX option's underlying is a futures contract: the simulated spot is its price.
            return Quote(
                value=path.spot_at(step),
                prev_close=float(path.prev_close_at(step)),
                source=f"{self.name} {sym} futures (the options' underlying)",
                ts=self.step_time(step),
            )
        session = path.session_of(step)
        due = self._future_expiry(session, expiry)
        if due is None:
            return None
        close_epoch = self._session.close_epoch(due)
        now_epoch = self._session.epoch(step * self.step_seconds)
        close = path.close_before(session)

        def fair(spot: float, at_epoch: float) -> float:
            t = max(close_epoch - at_epoch, 0.0) / YEAR_SECONDS
            # On the tick like every simulated price (round half to even, as np.rint).
            tick, places = self._tick, 2 if self._tick >= 0.01 else 4
            return round(round(spot * math.exp(self._carry * t) / tick) * tick, places)

        return Quote(
            value=fair(path.spot_at(step), now_epoch),
            prev_close=fair(round(close.spot, 2), close.epoch),
            source=f"{self.name} {sym} {due:%b} future",
            ts=self.step_time(step),
        )

    def _future_expiry(self, session: int, expiry: date) -> date | None:
        """The expiry of the listed future in `expiry`'s month, on the day of `session`."""
        key = (session, expiry.year, expiry.month)
        if key not in self._future_expiries:
            today = self._session.session_date(session)
            month = (expiry.year, expiry.month)
            listed = self._monthly_expiries(today)
            due = next((d for d in listed if (d.year, d.month) == month), None)
            self._future_expiries[key] = due
        return self._future_expiries[key]

    def _monthly_expiries(self, today: date) -> list[date]:
        """This month's and the next months' monthly expiries still live on `today`."""
        out: list[date] = []
        year, month = today.year, today.month
        while len(out) < FUTURES_LISTED:
            cal = self.calendar
            if cal.segment == CURRENCY:
                day = cal.cds_monthly_expiry(year, month)
            else:
                nominal = cal.last_weekday_of_month(year, month)
                day = nominal if cal.is_trading_day(nominal) else cal.previous_trading_day(nominal)
            if day >= today:
                out.append(day)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def _vix(self, step: int) -> Quote | None:
        """India VIX from the simulated NIFTY (its 30-day IV and smile); none without NIFTY."""
        if VIX_BASE not in self._underlyings:
            return None
        path = self._path(VIX_BASE)
        quote = Quote(
            value=path.vix_at(step),
            prev_close=path.vix_prev_close_at(step),
            source=f"{self.name} India VIX",
            ts=self.step_time(step),
        )
        self._trim(VIX_BASE, step)
        return quote
