"""The figures of a backtest, from its trades (docs/backtest.md defines each one).

Everything is in rupees after costs unless named gross. Daily P&L books a trade's net on the day
it closed; days with data and no trade count as zero days (they were days the strategy could have
traded), so Sharpe and Sortino see the idle days too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from optterm.engine.backtest.costs import round_paisa
from optterm.engine.backtest.simulate import Outcome
from optterm.engine.backtest.trades import Trade

__all__ = ["WEEKDAYS", "figures", "to_document", "trade_rows"]

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_YEAR_DAYS: Final = 252


def _closed(out: Outcome) -> list[Trade]:
    return [t for t in out.trades if t.exit_ts is not None]


def _streak(nets: list[float], win: bool) -> int:
    best = run = 0
    for x in nets:
        run = run + 1 if (x > 0 if win else x < 0) else 0
        best = max(best, run)
    return best


def daily_pnl(out: Outcome, tz: ZoneInfo) -> dict[date, float]:
    days: dict[date, float] = dict.fromkeys(out.days, 0.0)
    for t in _closed(out):
        assert t.exit_ts is not None
        d = t.exit_ts.astimezone(tz).date()
        days[d] = round_paisa(days.get(d, 0.0) + t.net)
    return dict(sorted(days.items()))


def figures(out: Outcome, tz: ZoneInfo) -> dict[str, Any]:
    trades = _closed(out)
    nets = [t.net for t in trades]
    wins = [x for x in nets if x > 0]
    losses = [x for x in nets if x < 0]
    n = len(nets)
    net = round_paisa(sum(nets))
    win_pct = 100 * len(wins) / n if n else math.nan
    loss_pct = 100 * len(losses) / n if n else math.nan
    avg_win = sum(wins) / len(wins) if wins else 0.0
    avg_loss = -sum(losses) / len(losses) if losses else 0.0
    daily = daily_pnl(out, tz)
    equity, peak, mdd, mdd_days = 0.0, 0.0, 0.0, 0
    peak_day: date | None = None
    curve = []
    for d, x in daily.items():
        equity += x
        curve.append((d, round_paisa(equity)))
        if peak_day is None:
            peak_day = d
        if equity >= peak:
            peak, peak_day = equity, d
        else:
            mdd = max(mdd, peak - equity)
            # Duration: calendar days from the peak to now, while still under it.
            mdd_days = max(mdd_days, (d - peak_day).days)
    values = list(daily.values())
    mean = sum(values) / len(values) if values else math.nan
    sd = (
        math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))
        if len(values) > 1
        else math.nan
    )
    down = math.sqrt(sum(min(0.0, x) ** 2 for x in values) / len(values)) if values else math.nan
    capital = out.spec.capital
    margin_pct = (lambda x: round(100 * x / capital, 2)) if capital else (lambda x: None)
    costs = round_paisa(sum(t.costs for t in trades))
    return {
        "net_pnl": net,
        "net_pnl_pct_of_capital": margin_pct(net),
        "gross_pnl": round_paisa(sum(t.gross for t in trades)),
        "costs": costs,
        "slippage": round_paisa(sum(t.slippage for t in trades)),
        "trades": n,
        "open_trades": len(out.trades) - n,
        "win_pct": _r(win_pct),
        "loss_pct": _r(loss_pct),
        "average": _r(net / n if n else math.nan),
        "average_win": _r(avg_win),
        "average_loss": _r(avg_loss),
        "max_win": max(nets, default=0.0),
        "max_loss": min(nets, default=0.0),
        "expectancy": _r(
            (win_pct / 100) * avg_win - (loss_pct / 100) * avg_loss if n else math.nan
        ),
        "profit_factor": _r(sum(wins) / -sum(losses) if losses else math.inf if wins else math.nan),
        "max_drawdown": round_paisa(mdd),
        "max_drawdown_pct": margin_pct(mdd),
        "max_drawdown_days": mdd_days,
        "return_over_drawdown": _r(net / mdd if mdd > 0 else math.nan),
        "win_streak": _streak(nets, True),
        "loss_streak": _streak(nets, False),
        "sharpe": _r(mean / sd * math.sqrt(_YEAR_DAYS) if sd and sd > 0 else math.nan),
        "sortino": _r(mean / down * math.sqrt(_YEAR_DAYS) if down and down > 0 else math.nan),
        "days": len(daily),
        "equity": [[d.isoformat(), v] for d, v in curve],
        "monthly": _by(trades, tz, lambda d: d.strftime("%Y-%m")),
        "weekday": _by(trades, tz, lambda d: WEEKDAYS[d.weekday()]),
    }


def _r(x: float) -> float | None:
    """Two decimals; None for a figure that does not exist (no trades; no losses for the
    profit factor)."""
    if math.isnan(x):
        return None
    return round(x, 2) if math.isfinite(x) else None


def _by(trades: list[Trade], tz: ZoneInfo, key: Any) -> list[dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for t in trades:
        groups[key(t.entry_ts.astimezone(tz).date())].append(t.net)
    order = list(WEEKDAYS)
    keys = sorted(groups, key=lambda k: order.index(k) if k in order else k)
    return [
        {
            "key": k,
            "trades": len(groups[k]),
            "net_pnl": round_paisa(sum(groups[k])),
            "win_pct": round(100 * sum(1 for x in groups[k] if x > 0) / len(groups[k]), 2),
        }
        for k in keys
    ]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def trade_rows(out: Outcome) -> list[dict[str, Any]]:
    """The per-trade log: times, legs with both fills and the quotes they used, why it closed,
    costs."""
    rows = []
    for n, t in enumerate(out.trades, 1):
        rows.append(
            {
                "n": n,
                "symbol": t.symbol,
                "expiry": t.expiry.isoformat(),
                "lot_size": t.lot_size,
                "signal_at": _iso(t.signal_at),
                "entry_at": _iso(t.entry_ts),
                "exit_at": _iso(t.exit_ts),
                "reason": t.reason or "open",
                "gross": t.gross if t.exit_ts else None,
                "costs": t.costs,
                "slippage": t.slippage,
                "net": t.net if t.exit_ts else None,
                "legs": [
                    {
                        "leg": g.label(),
                        "kind": g.kind,
                        "strike": None if g.kind == "FUT" else g.strike,
                        # Each leg's own expiry (a calendar's far leg differs from the trade's)
                        # and a future's contract as its quote named it.
                        "expiry": (g.expiry or t.expiry).isoformat(),
                        "contract": g.contract or None,
                        "qty": g.qty,
                        "entry_price": g.entry.price,
                        "entry_quote": g.entry.quote_text(),
                        "entry_basis": g.entry.basis,
                        "exit_price": None if math.isnan(g.exit_price) else g.exit_price,
                        "exit_quote": None if g.exit is None else g.exit.quote_text(),
                        "exit_at": _iso(g.exit_ts),
                        "exit_reason": g.exit_reason,
                        "entry_costs": g.entry_costs.to_dict(),
                        "exit_costs": g.exit_costs.to_dict(),
                    }
                    for g in t.legs
                ],
            }
        )
    return rows


def to_document(out: Outcome, tz: ZoneInfo) -> dict[str, Any]:
    """Everything a result says, as JSON-ready data (the --json output and the stored row)."""
    return {
        "spec": out.spec.text,
        "symbol": out.spec.symbol,
        "strategy": out.spec.strategy_text,
        "from": out.start.isoformat(),
        "to": out.end.isoformat(),
        "source": [{"provider": p, "feed": f, "snapshots": n} for p, f, n in out.sources],
        "snapshots_read": out.snapshots,
        "days_with_data": len(out.days),
        "fill_model": out.spec.fill.describe(futures=out.spec.has_futures),
        "costs_table": out.costs_source,
        "gaps": out.gaps.summary(),
        "rule": None if out.spec.rule is None else out.spec.rule.text,
        "rule_firings": out.firings if out.spec.rule is not None else None,
        "skipped_days": out.skipped,
        "interrupted": out.interrupted,
        "notes": out.notes,
        "figures": figures(out, tz),
        "trades": trade_rows(out),
    }
