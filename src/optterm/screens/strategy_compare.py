"""The strategy screen's comparison: the strategy built and saved ones side by side (`V`),
their figures in columns and their expiry payoffs overlaid on the chart in their own colours."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.text import Text

from optterm.present.money import rupees_whole as _money
from optterm.widgets.payoff_chart import money_short

if TYPE_CHECKING:
    from optterm.strategy.analysis import Analysis

__all__ = ["COMPARE_STYLES", "compare_lines", "compare_text"]


def _short(x: float | None) -> str:
    return money_short(math.nan if x is None else x)


# The compared strategies' payoff lines, in the order they were added.
COMPARE_STYLES = ("magenta", "yellow", "bright_blue", "bright_cyan", "white")


def compare_text(rows: list[tuple[str, Analysis | str]]) -> Text:
    """The strategy built and the compared ones side by side: one column each (as many as the
    side panel holds, 11 cells each), the figures as rows; a strategy that cannot be priced
    says why under the table."""
    from optterm.strategy.report import report

    shown = [(n, report(a)) for n, a in rows if not isinstance(a, str)][:3]
    text = Text()
    text.append(f"{'':<11}" + "".join(f"{n[:10]:>11}" for n, _ in shown) + "\n", "bold")

    def row(label: str, cells: list[str]) -> None:
        text.append(f"{label:<11}", "dim")
        text.append("".join(f"{c:>11}" for c in cells) + "\n")

    def money(doc: dict[str, Any], key: str) -> str:
        unlimited = doc.get(f"{key}_unlimited", False)
        return "Unlimited" if unlimited else _short(doc[key])

    docs = [d for _, d in shown]
    row("P&L now", [_short(d["pnl_now"]) for d in docs])
    row("Max profit", [money(d, "max_profit") for d in docs])
    row("Max loss", [money(d, "max_loss") for d in docs])
    row("POP", ["n/a" if d["pop_pct"] is None else f"{d['pop_pct']:.1f} %" for d in docs])
    row("EV", [_short(d["expected_pnl"]) for d in docs])
    row("Premium", [_short(d["net_premium"]) for d in docs])
    row("Δ lots", [f"{d['greeks']['delta_lots'] or 0:+.2f}" for d in docs])
    row("Θ ₹/day", [_short(d["greeks"]["theta_per_day"]) for d in docs])
    row("V ₹/pt", [_short(d["greeks"]["vega_per_vol_pt"]) for d in docs])
    for n, d in shown:
        bes = ", ".join(f"{b['spot']:,.0f}" for b in d["breakevens"]) or "none"
        text.append(f"{n[:10]} breakevens ", "dim")
        text.append(bes + "\n", "yellow")
    if len([a for _, a in rows if not isinstance(a, str)]) > len(shown):
        text.append("(more compared than fit: the first three shown)\n", "dim")
    for n, a in rows:
        if isinstance(a, str):
            text.append(f"{n}: {a}\n", "red")
    text.rstrip()
    return text


def compare_lines(rows: list[tuple[str, Analysis | str]]) -> Text:
    """The comparison for a narrow screen: one line a strategy."""
    from optterm.strategy.report import report

    text = Text()
    for i, (n, a) in enumerate(rows):
        if i:
            text.append("\n")
        if isinstance(a, str):
            text.append(f"{n}: {a}", "red")
            continue
        d = report(a)
        pop = "n/a" if d["pop_pct"] is None else f"{d['pop_pct']:.1f} %"
        text.append(f"{n[:14]:<15}", "bold")
        text.append(
            f"P&L {_short(d['pnl_now'])}  max +{_money(d['max_profit'], d['max_profit_unlimited'])}"
            f" / {_money(d['max_loss'], d['max_loss_unlimited'])}  POP {pop}  "
            f"Δ {d['greeks']['delta_lots'] or 0:+.2f}"
        )
    return text
