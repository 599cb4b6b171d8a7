"""A backtest result for the terminal: the header that says what it ran on, the figures, an
equity curve drawn in text, the monthly and weekday breakdowns, the trade log; and the trade
log as CSV (one row per leg). Reads the result document (engine/backtest/results.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, tzinfo
from typing import Any, Final

__all__ = ["curve_lines", "duration", "header_lines", "rupees", "trades_csv"]

_BLOCKS: Final = " ▁▂▃▄▅▆▇█"


def rupees(x: float | None) -> str:
    if x is None:
        return "-"
    return f"-₹{-x:,.2f}" if x < 0 else f"₹{x:,.2f}"


def header_lines(doc: dict[str, Any]) -> list[str]:
    """What the result is of: source, span, snapshots, gaps, fill model, costs."""
    src = ", ".join(f"{s['feed']} via {s['provider']} ({s['snapshots']:,})" for s in doc["source"])
    lines = [
        f"BACKTEST {doc['symbol']} {doc['strategy']}  {doc['from']} → {doc['to']}"
        + ("  (INTERRUPTED: partial)" if doc["interrupted"] else ""),
        f"  spec: {doc['spec']}",
        f"  data: {src}; {doc['snapshots_read']:,} snapshots read over "
        f"{doc['days_with_data']} days",
        f"  gaps: {_gap_line(doc['gaps'])}",
        f"  fills: {doc['fill_model']}",
        f"  costs: {doc['costs_table']}",
    ]
    if doc["rule"] is not None:
        fired = doc["rule_firings"]
        lines.append(
            f"  entry rule: {doc['rule']} — fired {fired} times"
            + (" (never: no trade could enter)" if not fired else "")
        )
    if doc["skipped_days"]:
        lines.append(
            "  days not entered: "
            + ", ".join(f"{n} {why}" for why, n in sorted(doc["skipped_days"].items()))
        )
    return lines


def _gap_line(g: dict[str, Any]) -> str:
    parts = [
        f"{g['missing_spans']} missing spans ({duration(g['missing_seconds'])})",
        f"{g['stale_snapshots']} stale snapshots",
        f"{len(g['provider_switches'])} provider switches",
    ]
    if g["days_without_data"]:
        parts.append(f"trading days without data: {', '.join(g['days_without_data'])}")
    return ", ".join(parts)


def duration(seconds: float) -> str:
    """Seconds as a trader reads a gap: 45 s, 12 m 05 s, 17 h 44 m."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:g} s"
    if s < 3600:
        return f"{s // 60} m {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} m"


def curve_lines(values: list[float], width: int = 60, height: int = 6) -> list[str]:
    """`values` (the equity after each day) as `height` rows of block characters, at most
    `width` columns (days are sampled evenly when there are more), lowest value at the bottom."""
    if not values:
        return []
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int((i + 1) * step) - 1)] for i in range(width)]
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    span = (hi - lo) or 1.0
    levels = [round((v - lo) / span * height * 8) for v in values]
    rows = []
    for r in range(height - 1, -1, -1):
        base = r * 8
        row = "".join(_BLOCKS[max(0, min(8, lv - base))] for lv in levels)
        label = hi if r == height - 1 else lo if r == 0 else None
        rows.append(f"{'' if label is None else f'{label:>12,.0f}':>12} │{row}")
    return rows


def trades_csv(doc: dict[str, Any], tz: tzinfo) -> str:
    """The trade log, one row per leg, times in exchange time."""

    def clock(iso: str | None) -> str:
        return "" if iso is None else datetime.fromisoformat(iso).astimezone(tz).isoformat()

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([
        "trade", "expiry", "lot_size", "signal_at", "entry_at", "exit_at", "reason", "leg",
        "qty", "entry_price", "entry_quote", "exit_price", "exit_quote", "leg_exit_reason",
        "leg_costs", "trade_gross", "trade_costs", "trade_slippage", "trade_net",
    ])  # fmt: skip
    for t in doc["trades"]:
        for g in t["legs"]:
            w.writerow([
                t["n"], t["expiry"], t["lot_size"], clock(t["signal_at"]), clock(t["entry_at"]),
                clock(t["exit_at"]), t["reason"], g["leg"], g["qty"], g["entry_price"],
                g["entry_quote"], g["exit_price"], g["exit_quote"], g["exit_reason"],
                round(g["entry_costs"]["total"] + g["exit_costs"]["total"], 2), t["gross"],
                t["costs"], t["slippage"], t["net"],
            ])  # fmt: skip
    return buf.getvalue()
