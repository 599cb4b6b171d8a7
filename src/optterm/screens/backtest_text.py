"""The backtest screen's result as text: the headline figures, what the result stands on (with
SIMULATED said first and loudly), why a run has no trade, and the gap report with the monthly
and weekday breakdowns. Read from the result document (engine/backtest/results.py), as the
CLI's printout (present/backtest.py) is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

from optterm.present.backtest import duration, header_lines, rupees

__all__ = ["figures_text", "gaps_text", "head_text", "no_trades_text", "simulated"]


def figures_text(doc: dict[str, Any]) -> Text:
    """The headline figures, most telling first (a short panel shows the top lines)."""
    f = doc["figures"]
    out = Text()

    def num(x: float | None, suffix: str = "") -> str:
        return "n/a" if x is None else f"{x:,.2f}{suffix}"

    def row(label: str, value: str, style: str = "") -> None:
        out.append(f"{label:<15}", "dim")
        out.append(value + "\n", style)

    net = f["net_pnl"]
    pct = f["net_pnl_pct_of_capital"]
    row("Net P&L", rupees(net) + (f" ({pct:.2f} % of capital)" if pct is not None else ""),
        "bold " + ("green" if net >= 0 else "red"))  # fmt: skip
    open_note = f" (+{f['open_trades']} open)" if f["open_trades"] else ""
    row("Trades", f"{f['trades']}{open_note} · win {num(f['win_pct'], ' %')}")
    row("Expectancy", f"{rupees(f['expectancy'])} a trade")
    row("Profit factor", num(f["profit_factor"]))
    dd_pct = f" ({f['max_drawdown_pct']:.2f} %)" if f["max_drawdown_pct"] is not None else ""
    row("Max drawdown", f"{rupees(f['max_drawdown'])}{dd_pct} · {f['max_drawdown_days']} d",
        "red" if f["max_drawdown"] else "")  # fmt: skip
    row("Sharpe/Sortino", f"{num(f['sharpe'])} / {num(f['sortino'])} (daily)")
    row("Costs/slippage", f"{rupees(f['costs'])} / {rupees(f['slippage'])}")
    row("Gross P&L", rupees(f["gross_pnl"]))
    row("Avg win/loss", f"{rupees(f['average_win'])} / {rupees(f['average_loss'])}")
    row("Max win/loss", f"{rupees(f['max_win'])} / {rupees(f['max_loss'])}")
    row("Return/DD", num(f["return_over_drawdown"]))
    row("Streaks W/L", f"{f['win_streak']} / {f['loss_streak']}")
    out.rstrip()
    return out


def simulated(doc: dict[str, Any]) -> bool:
    return any(s["feed"] == "SIMULATED" for s in doc["source"])


def head_text(doc: dict[str, Any], stored_at: str = "") -> Text:
    """What the result stands on (present/backtest.header_lines, as the CLI prints it); a run
    on SIMULATED data says so first, in a line nobody misses."""
    out = Text(no_wrap=True, overflow="ellipsis")  # a line each; `g` shows them whole
    if simulated(doc):
        out.append(" SIMULATED DATA: made-up prices, proves nothing about the market ",
                   "bold white on red")  # fmt: skip
        out.append("\n")
    lines = header_lines(doc)
    out.append(lines[0], "bold yellow" if doc["interrupted"] else "bold")
    if stored_at:
        out.append(f"  · {stored_at}", "dim")
    for line in lines[1:]:
        if not line.startswith("  spec:"):  # the spec is in its box above
            out.append("\n" + line)
    return out


def no_trades_text(doc: dict[str, Any]) -> Text:
    """Why a run has no trade: the days it did not enter, by reason."""
    out = Text("No trades: nothing entered in the span.", "bold yellow")
    for why, n in sorted(doc["skipped_days"].items()):
        out.append(f"\n{n} day{'s' if n != 1 else ''}: {why}", "yellow")
    if doc["rule"] is not None and not doc["rule_firings"]:
        out.append(f"\nThe entry rule never fired: {doc['rule']}", "yellow")
    return out


def gaps_text(doc: dict[str, Any], tz: Any) -> Text:
    """The gap report in full, the notes, and the monthly and weekday breakdowns."""
    g = doc["gaps"]
    out = Text("What the result stands on\n", "bold")
    for line in header_lines(doc)[1:]:
        out.append(line + "\n")
    out.append("Data gaps\n", "bold")
    out.append(
        f"  {g['missing_spans']} missing spans ({duration(g['missing_seconds'])}), "
        f"{g['stale_snapshots']} stale snapshots, "
        f"{len(g['provider_switches'])} provider switches\n"
    )
    for m in g["longest_missing"]:
        at = datetime.fromisoformat(m["after"]).astimezone(tz)
        out.append(f"  no snapshot for {duration(m['seconds'])} after {at:%d-%b %H:%M:%S}\n",
                   "yellow")  # fmt: skip
    for s in g["provider_switches"]:
        at = datetime.fromisoformat(s["at"]).astimezone(tz)
        out.append(f"  {at:%d-%b %H:%M:%S} provider {s['from']} → {s['to']}\n", "yellow")
    if g["days_without_data"]:
        out.append(f"  trading days without data: {', '.join(g['days_without_data'])}\n", "yellow")
    for note in doc["notes"]:
        out.append(f"  {note}\n", "dim")
    f = doc["figures"]
    for title, key in (("By month", "monthly"), ("By weekday", "weekday")):
        if f[key]:
            out.append(f"{title}\n", "bold")
            for r in f[key]:
                out.append(f"  {r['key']:<8} {r['trades']:>4} trades  {rupees(r['net_pnl']):>14}"
                           f"  win {r['win_pct']:.1f} %\n")  # fmt: skip
    out.rstrip()
    return out
