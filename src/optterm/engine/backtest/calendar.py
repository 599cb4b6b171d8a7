"""Calendars and diagonals: a strategy's legs on two expiries, each priced from its own chain.

Each expiry is stored as its own chain. On a day, both chains are read whole; the near chain's
snapshots are the clock the signals are judged on (entry time, rule firings, exit time). An
order fills each leg at the next stored snapshot strictly after the signal **of that leg's
chain**; when the far chain has no such snapshot within STALE_S of the near one's, the entry is
skipped with that reason (never priced from a quote that old). Strikes are placed on the near
chain's fill snapshot (a calendar's far leg takes the same strike, which its chain must list).

Exits: at the exit time (intraday), each leg at its chain's next snapshot after it; held to
the near expiry (`hold expiry`), the near legs settle at intrinsic value on the day's last spot
(long ITM legs pay exercise STT, as every option) and the far legs are sold or bought back on
their chain's last snapshot of that day with the fill model, charged as any order. Stops and
targets on calendars are refused by the spec (not simulated yet).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np

from optterm.engine.backtest.costs import CostTable
from optterm.engine.backtest.gaps import STALE_S
from optterm.engine.backtest.simulate import (
    PRICE_BATCH,
    PRICE_COLUMNS,
    UNFILLED,
    WITH_IV,
    DayState,
    Outcome,
    close_on_last,
    fill_leg,
    settle,
    skip,
)
from optterm.engine.backtest.spec import Spec
from optterm.engine.backtest.strikes import place, quote
from optterm.engine.backtest.trades import LegTrade, Trade
from optterm.store.timecodec import from_us

if TYPE_CHECKING:
    from optterm.store import Store

__all__ = ["FAR_STALE", "play_calendar_day"]

_STALE_US = int(STALE_S * 1_000_000)
FAR_STALE = f"far expiry: no snapshot within {STALE_S:g} s of the near one's fill (entry skipped)"


@dataclass(slots=True)
class _Chain:
    """One expiry's day, read whole: per snapshot its time, spot, lot and strike bounds."""

    ts: list[int] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    spot: list[float] = field(default_factory=list)
    lot: list[int] = field(default_factory=list)
    bounds: list[int] = field(default_factory=lambda: [0])
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    def strikes(self, i: int) -> np.ndarray:
        return self.cols["strike"][self.bounds[i] : self.bounds[i + 1]]

    def quote(self, i: int, g: LegTrade | tuple[str, float]) -> tuple[float, float, float] | None:
        kind, strike = (g.kind, g.strike) if isinstance(g, LegTrade) else g
        return quote(self.cols, self.bounds[i], self.strikes(i), kind, strike)

    def after(self, t: int) -> int | None:
        """The first snapshot strictly after `t`."""
        i = bisect.bisect_right(self.ts, t)
        return i if i < len(self.ts) else None

    def at_or_before(self, t: int) -> int | None:
        i = bisect.bisect_right(self.ts, t) - 1
        return i if i >= 0 else None


async def _read(
    store: Store, spec: Spec, expiry: date, span: tuple[datetime, datetime], names: tuple[str, ...]
) -> _Chain:
    c = _Chain()
    async for b in store.snapshots.iterate_price_batches(
        spec.symbol, expiry, span[0], span[1], names, PRICE_BATCH
    ):
        c.ts += b.ts
        c.fetched += b.fetched
        c.providers += b.providers
        c.spot += b.spot
        c.lot += b.lot_size
        c.bounds += (c.bounds[-1] + np.cumsum(b.counts)).tolist()
        for n in names:
            c.parts.setdefault(n, []).append(b.columns[n])
    c.cols = {n: np.concatenate(v) if v else np.empty(0) for n, v in c.parts.items()}
    if not c.cols:
        c.cols = {n: np.empty(0) for n in names}
    return c


async def play_calendar_day(
    store: Store,
    spec: Spec,
    out: Outcome,
    state: DayState,
    expiries: tuple[date, date],
    span: tuple[datetime, datetime],
    trade: Trade | None,
    costs: CostTable,
    stop: Callable[[], bool] | None,
) -> Trade | None:
    """One day of a calendar: the trade still open at its end (held on), else None."""
    near_exp, far_exp = expiries
    names = WITH_IV if spec.placement.by == "delta" else PRICE_COLUMNS
    near = await _read(store, spec, near_exp, span, names)
    far = await _read(store, spec, far_exp, span, names)
    out.gaps.day(state.day).see_many(near.ts, near.fetched, near.providers)
    out.snapshots += len(near.ts) + len(far.ts)
    if stop is not None and stop():
        out.interrupted = True
        return trade
    on_far = [r != min(spec.leg_ranks) for r in spec.leg_ranks]
    chain_of = {near_exp: near, far_exp: far}
    pending: int | None = None
    for k, ts in enumerate(near.ts):
        if trade is None:
            if pending is None:
                pending = state.entry_signal(ts)
                if pending is not None and pending == ts:
                    continue  # seen on this snapshot: it fills on the next one
            if pending is None or ts <= pending:
                continue
            j = far.after(max(pending, ts - _STALE_US))
            if j is None or abs(far.ts[j] - ts) > _STALE_US:
                skip(out, FAR_STALE)
                state.entries = spec.reenter + 1
                pending = None
                continue
            trade = _enter(spec, near, k, far, j, on_far, pending, costs, expiries)
            if trade is None:
                continue  # no price for a leg here: the next snapshot tries again
            state.entries += 1
            state.used_until = ts
            pending = None
            out.trades.append(trade)
            continue
        for g in trade.legs:  # the last quotes seen, for a close on them
            c = chain_of[g.expiry or near_exp]
            i = k if c is near else c.at_or_before(ts)
            q = None if i is None else c.quote(i, g)
            if q is not None:
                g.last = (*q, from_us(c.ts[i] if i is not None else ts))
        if spec.hold == "intraday" and state.exit_us is not None and ts >= state.exit_us:
            for g in trade.legs:
                c = chain_of[g.expiry or near_exp]
                i = c.after(state.exit_us)
                q = None if i is None else c.quote(i, g)
                f = None if q is None or i is None else fill_leg(spec.fill, g.kind, g.qty < 0, q,
                                                              from_us(c.ts[i]))  # fmt: skip
                if f is None:
                    close_on_last(g, costs, state.day, "exit time (no price after it that day)")
                    continue
                g.exit, g.exit_ts, g.exit_reason = f, f.ts, "exit time"
                g.exit_costs = costs.order(f.ts.date(), f.price, abs(g.qty), buy=g.qty < 0)
            trade.reason = "exit time"
            return None
    if trade is None:
        if pending is not None:
            skip(out, UNFILLED)
        return None
    last_spot = near.spot[-1] if near.spot else math.nan
    if near_exp == state.day and math.isfinite(last_spot):
        i = len(far.ts) - 1
        for g in trade.legs:
            if g.expiry is None or g.closed:
                continue
            q = far.quote(i, g) if i >= 0 else None
            f = None if q is None else fill_leg(spec.fill, g.kind, g.qty < 0, q, from_us(far.ts[i]))
            why = "near expiry: far leg closed on its chain's last snapshot"
            if f is None:
                close_on_last(g, costs, state.day, why)
                continue
            g.exit, g.exit_ts, g.exit_reason = f, f.ts, why
            g.exit_costs = costs.order(f.ts.date(), f.price, abs(g.qty), buy=g.qty < 0)
        settle(trade, last_spot, state.day, costs, ())
        trade.reason = "near expiry settlement"
        return None
    if spec.hold == "intraday":
        for g in trade.legs:
            if not g.closed:
                close_on_last(g, costs, state.day, "session end (no snapshot after it that day)")
        trade.reason = "session end"
        return None
    return trade


def _enter(
    spec: Spec,
    near: _Chain,
    k: int,
    far: _Chain,
    j: int,
    on_far: list[bool],
    signal: int,
    costs: CostTable,
    expiries: tuple[date, date],
) -> Trade | None:
    lo = near.bounds[k]
    part = {n: c[lo : near.bounds[k + 1]] for n, c in near.cols.items()}
    legs_at = place(spec, near.strikes(k), part, near.spot[k])
    if not legs_at:
        return None
    legs = []
    for (kind, strike, lots), is_far in zip(legs_at, on_far, strict=True):
        c, i = (far, j) if is_far else (near, k)
        q = c.quote(i, (kind, strike))
        when = from_us(c.ts[i])
        f = None if q is None else fill_leg(spec.fill, kind, lots > 0, q, when)
        if q is None or f is None:
            return None
        qty = lots * c.lot[i]
        entry_costs = costs.order(when.date(), f.price, abs(qty), buy=qty > 0)
        legs.append(
            LegTrade(
                kind,
                strike,
                qty,
                f,
                entry_costs,
                last=(*q, when),
                expiry=expiries[1] if is_far else None,
            )
        )
    return Trade(spec.symbol, expiries[0], near.lot[k], from_us(signal), legs)
