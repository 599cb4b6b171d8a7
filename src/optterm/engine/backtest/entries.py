"""Entry signals found by replaying the stored history: an alert one-liner's firings and a scan
condition's entries, over the whole span, before the strategy is played.

One mechanism each, borrowed rather than rebuilt: an alert rule is judged by
`backtest/signals.backtest_rule` (the live Poller, Analyzer and alert evaluation over the
stored days, as `optterm backtest rule` lists its firings), and a scan by
`scanner/stored.scan_stored_day` (the scanner's language over the columns a stored chain gives,
with the live tracker, as `optterm scan --day` lists who entered). Each firing's time IS the
entry signal: simulate.py fills it on the next stored snapshot strictly after it. Both judge a
point with what was stored up to it and nothing later.

A rule that never fires in the span is refused (BacktestProblem) before anything is played or
stored: a backtest of a signal that never came has nothing to say. `stop()` turning true (the
CLI's Ctrl-C, the screen's x) ends the replay between points or days with the firings found so
far; the run then stops at once, marked interrupted, as it would between days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from optterm.engine.backtest.simulate import BacktestProblem
from optterm.engine.backtest.spec import Spec
from optterm.store.replay import stored_chains
from optterm.store.timecodec import to_us

if TYPE_CHECKING:
    import numpy as np

    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.model import ChainSnapshot, Metrics
    from optterm.store import Store

__all__ = ["FROM_METRICS", "replayed_firings"]

# Scan raw fields a stored chain does not give but the chain metrics the live engine stored
# beside each snapshot do, in the same units (contracts; strikes): scan field -> metric column.
# The scanner's walls are the strikes of the most OI, the metrics' `resistance`/`support`.
# Not mapped (units or meaning differ): gex, ivp, the previous-close fields.
FROM_METRICS: Final = {
    "ce_oi": "ce_oi",
    "pe_oi": "pe_oi",
    "ce_volume": "ce_volume",
    "pe_volume": "pe_volume",
    "max_pain": "max_pain",
    "call_wall": "resistance",
    "put_wall": "support",
}


class _Stopped(Exception):
    """Raised from the replay's progress callback to leave it when `stop()` turned true."""


async def replayed_firings(
    store: Store,
    settings: Settings,
    spec: Spec,
    start: date,
    end: date,
    calendar: MarketCalendar,
    *,
    allow_simulated: bool = False,
    stop: Callable[[], bool] | None = None,
) -> list[int]:
    """The times (epoch µs, in order) the spec's alert rule or scan fired from `start` to
    `end`; BacktestProblem when it cannot be judged or never fired."""
    rule = spec.rule
    if rule is None or not rule.replayed:
        return []
    halt = stop or (lambda: False)
    if rule.alert:
        times = await _alert_firings(store, settings, rule.alert, start, end, allow_simulated, halt)
    else:
        times = await _scan_entries(
            store, settings, spec.symbol, rule.scan, start, end, calendar, halt
        )
    if not times and not halt():
        raise BacktestProblem(
            f"the entry rule {rule.text} never fired from {start.isoformat()} to "
            f"{end.isoformat()}, so there is nothing to backtest (nothing was stored); "
            "`optterm backtest rule` / `optterm scan --day` show what it does on that history."
        )
    return sorted(times)


async def _alert_firings(
    store: Store,
    settings: Settings,
    text: str,
    start: date,
    end: date,
    allow_simulated: bool,
    stop: Callable[[], bool],
) -> list[int]:
    from optterm.engine.alerts.rules import RuleError
    from optterm.engine.backtest import signals

    try:
        alert = signals.rule_from_text(text, settings, start)
    except RuleError as exc:
        raise BacktestProblem(f"enter when rule: {exc}.") from None

    def check(_points: int) -> None:
        if stop():
            raise _Stopped

    try:
        result = await signals.backtest_rule(
            store, settings, alert, start, end, allow_simulated=allow_simulated, progress=check
        )
    except signals.BacktestProblem as exc:
        raise BacktestProblem(f"enter when rule: {exc}") from None
    except _Stopped:
        return []  # stopped: the run ends at once (simulate sees stop() before a day)
    return [to_us(f.at, "fired_at") for f in result.firings]


async def _scan_entries(
    store: Store,
    settings: Settings,
    symbol: str,
    text: str,
    start: date,
    end: date,
    calendar: MarketCalendar,
    stop: Callable[[], bool],
) -> list[int]:
    from optterm.engine.scanner.stored import scan_stored_day

    tz = settings.market.tz
    times: list[int] = []
    day = start
    while day <= end and not stop():
        lo = datetime.combine(day, time(0), tz)
        hi = lo + timedelta(days=1)
        expiries = [e for s, e in await stored_chains(store, lo, hi) if s == symbol]
        if expiries:
            stored: dict[tuple[date, int], Metrics] = {}
            for expiry in expiries:
                for m in await store.analytics.metrics_series(symbol, expiry, lo, hi):
                    stored[m.expiry, to_us(m.ts, "ts")] = m
            found = await scan_stored_day(
                store, settings, day, text, calendar, _with_metrics(symbol, stored), [symbol]
            )
            times += [
                to_us(e.at, "entered")
                for e in found.events
                if e.kind == "enter" and e.symbol == symbol
            ]
        day += timedelta(days=1)
    return times


def _with_metrics(
    symbol: str, stored: dict[tuple[date, int], Metrics]
) -> Callable[[Sequence[ChainSnapshot | None], dict[str, np.ndarray]], None]:
    """The scan's hook adding the FROM_METRICS columns: each of `symbol`'s snapshots gets the
    metrics stored for that very snapshot (same chain, same provider time), or n/a."""
    import numpy as np

    def more(snaps: Sequence[ChainSnapshot | None], cols: dict[str, np.ndarray]) -> None:
        for name in FROM_METRICS:
            cols[name] = np.full(len(snaps), np.nan)
        for i, snap in enumerate(snaps):
            if snap is None or snap.symbol != symbol:
                continue
            m = stored.get((snap.expiry, to_us(snap.provider_ts, "provider_ts")))
            if m is None:
                continue
            for name, column in FROM_METRICS.items():
                value = getattr(m, column)
                cols[name][i] = math.nan if value is None else float(value)

    return more
