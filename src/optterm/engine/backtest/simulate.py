"""The backtest itself: a spec played over the stored snapshots of a span, day by day, in order.

Honesty rules, each tested:
- A signal (the entry time, a rule firing, a stop seen on a snapshot) fills at the next stored
  snapshot strictly after it, never on the quote it was seen on. Strikes are placed on that
  same snapshot, the chain the order is sent into.
- The quantity is lots x the lot size the fill snapshot's contract carries, never a constant.
- Every fill keeps the quote it used (fills.py); every order pays the dated charges (costs.py).
- Options held to expiry settle at intrinsic value on the day's last spot, and a long leg that
  finishes in the money pays exercise STT on that value.
- A futures leg fills at the snapshot's stored futures LTP moved `futslip X %` against the trader
  (no futures bid/ask is stored, and its fills say so), pays the futures cost rows, and at the
  option expiry closes at the last stored futures LTP, or settles at the spot on the future's
  own expiry day. An entry whose fill snapshot has no futures quote is skipped (a gap), never
  filled at a made-up price.

Only the legs held are priced: each day's chain is read in batches with only the strike and
price columns decoded (no analytics are run; a rule reads the metrics and signals the live
engine stored).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import numpy as np

from optterm.engine.backtest.costs import CostTable, round_paisa
from optterm.engine.backtest.fills import Fill, FillModel, mark
from optterm.engine.backtest.futures import futures_expiry
from optterm.engine.backtest.gaps import GapReport
from optterm.engine.backtest.spec import Rule, Spec
from optterm.engine.backtest.strikes import place, quote
from optterm.engine.backtest.trades import LegTrade, Trade
from optterm.store.replay import stored_chains, stored_sources
from optterm.store.snapshots import PriceBatch
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store import Store

__all__ = [
    "FUTURES_NOTE",
    "NO_FUTURES",
    "PRICE_BATCH",
    "PRICE_COLUMNS",
    "UNFILLED",
    "WITH_IV",
    "BacktestProblem",
    "DayState",
    "Outcome",
    "SimulatedRefused",
    "close_on_last",
    "fill_leg",
    "run_backtest",
    "settle",
    "skip",
]

PRICE_COLUMNS: Final = ("strike", "ce_ltp", "ce_bid", "ce_ask", "pe_ltp", "pe_bid", "pe_ask")
WITH_IV: Final = (*PRICE_COLUMNS, "ce_iv", "pe_iv")  # placing strikes by delta reads the IVs
PRICE_BATCH: Final = 400
# A day whose entry signal came but no later snapshot could take the order.
UNFILLED: Final = "entry not filled (the strategy did not fit the stored strikes, or no price)"
# A day whose entry snapshot had no stored futures quote for the strategy's futures leg.
NO_FUTURES: Final = (
    "no futures quote stored at the entry (skipped, never filled at a made-up price)"
)
FUTURES_NOTE: Final = "futures, no bid/ask stored"


class BacktestProblem(ValueError):
    """A backtest that cannot run as asked (no data, SIMULATED data not allowed …): one line
    saying why and what to do; nothing is stored."""


class SimulatedRefused(BacktestProblem):
    """The span's data are (partly) SIMULATED and that was not allowed. The message says how
    to allow it on the command line; `said(how)` with a front end's own way."""

    def __init__(self, simulated: int, symbol: str) -> None:
        self.simulated, self.symbol = simulated, symbol
        super().__init__(self.said("Pass --allow-simulated to run it anyway."))

    def said(self, how: str) -> str:
        return (
            f"{self.simulated} of the {self.symbol} snapshots in the span are SIMULATED (the "
            f"simulator's made-up prices); a backtest on them proves nothing about the market. "
            f"{how}"
        )


@dataclass(slots=True)
class Outcome:
    spec: Spec
    start: date
    end: date
    costs_source: str
    sources: list[tuple[str, str, int]]  # provider, feed, snapshots in the span
    trades: list[Trade] = field(default_factory=list)
    days: list[date] = field(default_factory=list)  # the days with data, in order
    snapshots: int = 0
    gaps: GapReport = field(default_factory=GapReport)
    firings: int = 0  # how often the entry rule fired (None-rule: 0)
    skipped: dict[str, int] = field(default_factory=dict)  # days not traded, by reason
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def source_text(self) -> str:
        return ", ".join(f"{p} {f} ({n} snapshots)" for p, f, n in self.sources)


def skip(out: Outcome, why: str) -> None:
    out.skipped[why] = out.skipped.get(why, 0) + 1


class DayState:
    """The signals of one chain's day while it is played. Times are epoch µs (the store's)."""

    def __init__(self, spec: Spec, tz: ZoneInfo, day: date, firings: list[int]) -> None:
        self.spec = spec
        self.day = day
        self.enter_us = _us(day, spec.enter_at, tz)
        self.exit_us = _us(day, spec.exit_at, tz)
        self.firings = firings
        self.fire_i = 0
        self.entries = 0
        self.used_until: int | None = None  # signals at or before this are spent

    def entry_signal(self, ts: int) -> int | None:
        """The earliest unspent entry signal at or before `ts`, if an entry is still allowed."""
        if self.entries > self.spec.reenter:
            return None
        if self.spec.hold == "intraday" and self.exit_us is not None and ts >= self.exit_us:
            return None
        if self.spec.rule is None:
            if self.entries == 0:  # the day's entry time, once it has come
                return self.enter_us if self.enter_us is not None and self.enter_us <= ts else None
            return self.used_until  # a re-entry: at once after the exit
        while self.fire_i < len(self.firings) and (
            self.used_until is not None and self.firings[self.fire_i] <= self.used_until
        ):
            self.fire_i += 1
        if self.fire_i < len(self.firings) and self.firings[self.fire_i] <= ts:
            return self.firings[self.fire_i]
        return None


def _us(day: date, at: time | None, tz: ZoneInfo) -> int | None:
    return None if at is None else to_us(datetime.combine(day, at, tz), "time")


async def _firings(store: Store, spec: Spec, rule: Rule, expiry: date, day0: datetime) -> list[int]:
    """When the entry rule held on this chain's day, in order."""
    day1 = day0 + timedelta(days=1)
    if rule.pattern is not None:
        sigs = await store.analytics.load_signals(
            spec.symbol, kinds=[rule.pattern], since=day0, limit=None
        )
        return sorted(
            to_us(s.first_seen, "first_seen")
            for s in sigs
            if s.expiry == expiry
            and day0 <= s.first_seen < day1
            and s.confidence >= rule.min_confidence
        )
    rows = await store.analytics.metrics_series(spec.symbol, expiry, day0, day1)
    return [
        to_us(m.ts, "ts")
        for m in rows
        if all(t.holds(float(getattr(m, t.field))) for t in rule.terms)
    ]


async def run_backtest(
    store: Store,
    spec: Spec,
    start: date,
    end: date,
    costs: CostTable,
    tz: ZoneInfo,
    *,
    allow_simulated: bool = False,
    on_day: Callable[[int, int], Any] | None = None,
    stop: Callable[[], bool] | None = None,
    trading_day: Callable[[date], bool] | None = None,
    replayed: Callable[[], Awaitable[list[int]]] | None = None,
) -> Outcome:
    """Play `spec` over the stored days start..end (inclusive, exchange days). A
    BacktestProblem before anything is read when the span has no data or its data are
    SIMULATED and that is not allowed. `stop()` true between batches ends the run early with
    what it has (`interrupted`). `trading_day` (default: Monday to Friday) tells a day with no
    data that should have had some from a holiday, for the gap report. An alert rule or scan
    as the entry rule needs `replayed`: it gives that rule's firings over the span (epoch µs,
    in order; entries.py), awaited once the span's data are known to be there and allowed."""
    if end < start:
        raise BacktestProblem(
            f"--to {end.isoformat()} is before --from {start.isoformat()}; swap them."
        )
    lo = datetime.combine(start, time(0), tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tz)
    sources = await stored_sources(store, spec.symbol, lo, hi)
    if not sources:
        raise BacktestProblem(
            f"no {spec.symbol} snapshots are stored from {start.isoformat()} to "
            f"{end.isoformat()}; `optterm history list` shows what is stored (or run "
            "`optterm serve` to record some)."
        )
    simulated = sum(n for _, f, n in sources if f == "SIMULATED")
    if simulated and not allow_simulated:
        raise SimulatedRefused(simulated, spec.symbol)
    costs = costs.for_symbol(spec.symbol)  # the segment's rows: CTT on MCX, no STT on CDS
    costs.rates(start)  # a table that starts after the span is refused before any work
    if spec.has_futures:
        costs.for_kind("FUT").rates(start)  # and so are missing or later futures rows
    replayed_times: list[int] = []
    if spec.rule is not None and spec.rule.replayed:
        if replayed is None:
            raise BacktestProblem(
                f"the entry rule {spec.rule.text} is judged by replaying the history, which "
                "needs the settings: run it through optterm backtest (engine/backtest/service.py)."
            )
        replayed_times = await replayed()
    out = Outcome(spec, start, end, costs.source, sources)
    open_trade: Trade | None = None
    n_days = (end - start).days + 1
    for d in range(n_days):
        day = start + timedelta(days=d)
        if on_day is not None:
            on_day(d, n_days)
        if stop is not None and stop():
            out.interrupted = True
            break
        day0 = datetime.combine(day, time(0), tz)
        day1 = day0 + timedelta(days=1)
        listed = sorted(
            e for s, e in await stored_chains(store, day0, day1) if s == spec.symbol and e >= day
        )
        if not listed:
            if trading_day(day) if trading_day is not None else day.weekday() < 5:
                skip(out, "no data")
                out.gaps.no_data.append(day)
            continue
        out.days.append(day)
        can_enter, why = True, ""
        ranks = spec.leg_ranks
        if open_trade is not None:
            expiry, far = open_trade.expiry, open_trade.far_expiry
            missing = [e for e in (expiry, far) if e not in listed]
            if missing:
                out.notes.append(f"{day}: the held {missing[0]} chain was not stored that day")
                continue
        elif len(listed) < max(ranks):
            skip(out, f"fewer than {max(ranks)} expiries stored")
            continue
        else:
            expiry, far = listed[min(ranks) - 1], listed[max(ranks) - 1]
        if spec.weekdays is not None and day.weekday() not in spec.weekdays:
            can_enter = False
            why = "weekday filter"
        elif spec.dte is not None and not spec.dte[0] <= (expiry - day).days <= spec.dte[1]:
            can_enter = False
            why = "days-to-expiry filter"
        if not can_enter and open_trade is None:
            skip(out, why)
        firings: list[int] = []
        if spec.rule is not None and spec.rule.replayed and can_enter:
            lo_us, hi_us = to_us(day0, "day"), to_us(day1, "day")
            firings = [t for t in replayed_times if lo_us <= t < hi_us]
            out.firings += len(firings)
        elif spec.rule is not None and can_enter:
            firings = await _firings(store, spec, spec.rule, expiry, day0)
            out.firings += len(firings)
        state = DayState(spec, tz, day, firings)
        if not can_enter:
            state.entries = spec.reenter + 1
        if spec.calendar:
            # calendar.py builds on this module's fills and settlement: imported here.
            from optterm.engine.backtest.calendar import play_calendar_day

            open_trade = await play_calendar_day(
                store, spec, out, state, (expiry, far), (day0, day1), open_trade, costs, stop
            )
        else:
            open_trade = await _play_day(
                store, spec, out, state, expiry, day0, day1, open_trade, costs, stop
            )
        if out.interrupted:
            break
    if open_trade is not None and not out.interrupted:  # interrupted: left open, not counted
        last = out.days[-1] if out.days else end
        for g in open_trade.legs:
            if not g.closed:
                close_on_last(g, costs, last, "span end (closed on its last quote)")
        open_trade.reason = open_trade.reason or "span end"
    return out


def fill_leg(
    model: FillModel, kind: str, buy: bool, q: tuple[float, float, float], when: datetime
) -> Fill | None:
    if kind != "FUT":
        return model.fill(buy, *q, when)
    f = model.for_futures().fill(buy, *q, when)
    if f is not None:
        f = Fill(f.price, f.reference, f.basis, f.bid, f.ask, f.ltp, f.ts, FUTURES_NOTE)
    return f


def close_on_last(g: LegTrade, costs: CostTable, day: date, reason: str) -> None:
    """Close a leg on the last quote seen for it (the data ended before a later one)."""
    if g.last is None:
        bid, ask, ltp, ts = g.entry.bid, g.entry.ask, g.entry.ltp, g.entry.ts
    else:
        bid, ask, ltp, ts = g.last
    model_fill = Fill(
        mark(bid, ask, ltp) if math.isfinite(mark(bid, ask, ltp)) else g.entry.price,
        mark(bid, ask, ltp),
        "last",
        bid,
        ask,
        ltp,
        ts,
        FUTURES_NOTE if g.kind == "FUT" else "",
    )
    g.exit = model_fill
    g.exit_ts = ts
    g.exit_reason = reason
    g.exit_costs = costs.for_kind(g.kind).order(
        ts.date(), model_fill.price, abs(g.qty), buy=g.qty < 0
    )


async def _play_day(
    store: Store,
    spec: Spec,
    out: Outcome,
    state: DayState,
    expiry: date,
    day0: datetime,
    day1: datetime,
    trade: Trade | None,
    costs: CostTable,
    stop: Callable[[], bool] | None,
) -> Trade | None:
    """One chain's day, snapshot by snapshot; the trade still open at its end (held to a later
    expiry), else None. Times are compared as epoch µs; a datetime is made only for a fill."""
    fill = spec.fill
    names = WITH_IV if spec.placement.by == "delta" else PRICE_COLUMNS
    pending_entry: int | None = None
    pending_exit: tuple[int, str, list[LegTrade]] | None = None
    last_spot = math.nan
    gaps = out.gaps.day(state.day)
    has_futures = spec.has_futures
    listed: tuple[date, ...] = ()  # the expiries listed with the last snapshot (futures only)
    async for batch in store.snapshots.iterate_price_batches(
        spec.symbol, expiry, day0, day1, names, PRICE_BATCH, futures=has_futures
    ):
        futs = batch.futures
        if futs is not None and futs.listed:
            listed = futs.listed[-1] or listed
        cols = batch.columns
        starts = np.zeros(len(batch.ts) + 1, dtype=np.int64)
        np.cumsum(batch.counts, out=starts[1:])
        bounds = starts.tolist()
        all_strikes = cols["strike"]
        gaps.see_many(batch.ts, batch.fetched, batch.providers)
        out.snapshots += len(batch.ts)
        for k, ts in enumerate(batch.ts):
            fut = futs.ltp[k] if futs is not None else math.nan
            if trade is None:
                if pending_entry is None:
                    pending_entry = state.entry_signal(ts)
                    if pending_entry is not None and pending_entry == ts:
                        continue  # seen on this snapshot: it fills on the next one
                if pending_entry is None or ts <= pending_entry:
                    continue
                if has_futures and not math.isfinite(fut):
                    skip(out, NO_FUTURES)  # the day's entries: none without a futures price
                    out.gaps.no_futures.append(from_us(ts))
                    state.entries = spec.reenter + 1
                    pending_entry = None
                    continue
                lo, hi = bounds[k], bounds[k + 1]
                trade = _enter(
                    spec, batch, k, cols, lo, hi, all_strikes[lo:hi], pending_entry, expiry, costs
                )
                if trade is None:
                    continue  # no price for a leg here: the next snapshot tries again
                state.entries += 1
                state.used_until = ts
                pending_entry = None
                out.trades.append(trade)
                continue
            lo = bounds[k]
            strikes = all_strikes[lo : bounds[k + 1]]
            when = from_us(ts)
            # Holding: fill an exit signalled earlier, then look for a new one.
            if pending_exit is not None and ts > pending_exit[0]:
                left = _exit(
                    pending_exit[2], cols, lo, strikes, when, pending_exit[1], fill, costs, fut
                )
                if not left:
                    trade.reason = trade.reason or pending_exit[1]
                    pending_exit = None
                else:
                    pending_exit = (pending_exit[0], pending_exit[1], left)
            if all(g.closed for g in trade.legs):
                state.used_until = ts
                trade = None
                pending_entry = state.entry_signal(ts)
                continue
            if pending_exit is not None:
                continue
            signal = _exit_signal(spec, state, trade, cols, lo, strikes, ts, when, fut)
            if signal is not None:
                at, reason, legs = signal
                if at < ts:  # a time already passed: this snapshot is the first after it
                    left = _exit(legs, cols, lo, strikes, when, reason, fill, costs, fut)
                    pending_exit = (at, reason, left) if left else None
                    if not left and all(g.closed for g in trade.legs):
                        trade.reason = trade.reason or reason
                        state.used_until = ts
                        trade = None
                else:
                    pending_exit = (at, reason, legs)
        if batch.spot:
            last_spot = batch.spot[-1]
        if stop is not None and stop():
            out.interrupted = True
            break
    if trade is None:
        if pending_entry is not None and not out.interrupted:
            skip(out, UNFILLED)
        return None
    if out.interrupted:
        return trade
    if expiry == state.day and math.isfinite(last_spot):
        settle(trade, last_spot, state.day, costs, listed)
        return None
    if spec.hold == "intraday" or pending_exit is not None:
        reason = pending_exit[1] if pending_exit is not None else "session end"
        for g in trade.legs:
            if not g.closed:
                close_on_last(g, costs, state.day, f"{reason} (no snapshot after it that day)")
        trade.reason = trade.reason or reason
        return None
    return trade


def _enter(
    spec: Spec,
    batch: PriceBatch,
    k: int,
    cols: Mapping[str, np.ndarray],
    lo: int,
    hi: int,
    strikes: np.ndarray,
    signal: int,
    expiry: date,
    costs: CostTable,
) -> Trade | None:
    part = {n: c[lo:hi] for n, c in cols.items()}
    legs_at = place(spec, strikes, part, batch.spot[k])
    if not legs_at:
        return None
    lot = batch.lot_size[k]
    when = from_us(batch.ts[k])
    day = when.date()
    futs = batch.futures
    fut, fut_name = (futs.ltp[k], futs.source[k]) if futs is not None else (math.nan, "")
    legs = []
    for kind, strike, lots in legs_at:
        q = quote(cols, lo, strikes, kind, strike, fut)
        if q is None:
            return None
        f = fill_leg(spec.fill, kind, lots > 0, q, when)
        if f is None:
            return None
        qty = lots * lot
        entry_costs = costs.for_kind(kind).order(day, f.price, abs(qty), buy=qty > 0)
        contract = fut_name if kind == "FUT" else ""
        legs.append(LegTrade(kind, strike, qty, f, entry_costs, last=(*q, when), contract=contract))
    return Trade(spec.symbol, expiry, lot, from_us(signal), legs)


def _exit(
    legs: list[LegTrade],
    cols: Mapping[str, np.ndarray],
    lo: int,
    strikes: np.ndarray,
    ts: datetime,
    reason: str,
    model: FillModel,
    costs: CostTable,
    fut: float,
) -> list[LegTrade]:
    """Fill the exits of `legs` on this snapshot; the legs it could not price (left for the
    next one)."""
    left = []
    for g in legs:
        if g.closed:
            continue
        q = quote(cols, lo, strikes, g.kind, g.strike, fut)
        f = None if q is None else fill_leg(model, g.kind, g.qty < 0, q, ts)
        if f is None:
            left.append(g)
            continue
        g.exit, g.exit_ts, g.exit_reason = f, ts, reason
        g.exit_costs = costs.for_kind(g.kind).order(ts.date(), f.price, abs(g.qty), buy=g.qty < 0)
    return left


def _exit_signal(
    spec: Spec,
    state: DayState,
    trade: Trade,
    cols: Mapping[str, np.ndarray],
    lo: int,
    strikes: np.ndarray,
    ts: int,
    when: datetime,
    fut: float,
) -> tuple[int, str, list[LegTrade]] | None:
    """An exit seen at this snapshot: (its time, why, which legs)."""
    open_legs = [g for g in trade.legs if not g.closed]
    if spec.hold == "intraday" and state.exit_us is not None and ts >= state.exit_us:
        return state.exit_us, "exit time", open_legs
    pnl = 0.0
    hit: list[LegTrade] = []
    why = ""
    for g in trade.legs:
        if g.closed:
            pnl += g.qty * (g.exit_price - g.entry.price)
            continue
        q = quote(cols, lo, strikes, g.kind, g.strike, fut)
        if q is not None:
            g.last = (*q, when)
        price = math.nan if q is None else mark(*q)
        if not math.isfinite(price):
            price = mark(*g.last[:3]) if g.last is not None else g.entry.price
            price = g.entry.price if not math.isfinite(price) else price
        pnl += g.qty * (price - g.entry.price)
        move = (price - g.entry.price) / g.entry.price * 100 if g.entry.price > 0 else 0.0
        against = move if g.qty < 0 else -move
        if spec.leg_sl is not None and against >= spec.leg_sl:
            hit.append(g)
            why = "leg stop-loss"
        elif spec.leg_target is not None and -against >= spec.leg_target:
            hit.append(g)
            why = why or "leg target"
    premium = trade.premium
    if spec.sl is not None and pnl <= -spec.sl.rupees(premium):
        return ts, "stop-loss", open_legs
    if spec.target is not None and pnl >= spec.target.rupees(premium):
        return ts, "target", open_legs
    if spec.trail is not None:
        trade.peak = max(trade.peak, pnl)
        if trade.peak > 0 and pnl <= trade.peak - spec.trail.rupees(premium):
            return ts, "trailing stop", open_legs
    if hit:
        return ts, why, hit
    return None


def settle(
    trade: Trade, spot: float, day: date, costs: CostTable, listed: tuple[date, ...]
) -> None:
    """Expiry: every open option leg settles at its intrinsic value on the day's last spot; a
    long leg in the money is exercised and pays exercise STT. A futures leg settles at that
    spot (no charges) when the future expires that day too, else the strategy's exit closes
    it at the last stored futures LTP (an order, charged)."""
    for g in trade.legs:
        if g.closed:
            continue
        if g.kind == "FUT":
            if futures_expiry(g.contract, trade.expiry, listed) == day:
                g.settled = round_paisa(spot)
                g.exit_ts = g.last[3] if g.last is not None else g.entry.ts
                g.exit_reason = "futures expiry settlement (at the spot)"
            else:
                close_on_last(g, costs, day, "option expiry: closed at the last futures LTP")
            continue
        intrinsic = max(0.0, spot - g.strike) if g.kind == "CE" else max(0.0, g.strike - spot)
        g.settled = round_paisa(intrinsic)
        g.exit_ts = g.last[3] if g.last is not None else g.entry.ts
        g.exit_reason = "expiry settlement"
        if g.qty > 0 and intrinsic > 0:
            g.exit_costs = costs.exercise(day, g.settled, g.qty)
    trade.reason = trade.reason or "expiry settlement"
