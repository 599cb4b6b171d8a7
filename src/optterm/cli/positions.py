"""`optterm positions`: the broker's positions (Angel One), read-only.

    optterm positions [--json]

Grouped by underlying and expiry (cash holdings of an underlying last), each row with its net
quantity in units and lots, the average price of what is held, the last price and its P&L
(sell - buy + net qty x LTP, the broker's own amounts); each group and the book with their P&L
and the broker's beside it. Needs Angel One credentials (`optterm creds set angelone`); nothing
is ordered, changed or stored.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import load_settings, print_json, run_async

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.providers.angelone.positions import BrokerPosition, PositionGroup

__all__ = ["positions"]


def positions(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the broker's positions (Angel One, read-only), grouped by underlying and expiry, with
    their P&L beside the broker's."""
    from optterm.providers.angelone.positions import group_positions

    settings = load_settings(ctx)
    rows = run_async(_fetch(settings))
    doc = report(group_positions(rows))
    if as_json:
        print_json(doc)
    else:
        _print_text(doc)


async def _fetch(settings: Settings) -> list[BrokerPosition]:
    from optterm.providers.factory import build_one

    provider: Any = build_one(settings, "angelone")
    try:
        return list(await provider.positions())
    finally:
        await provider.close()


def _num(x: float, digits: int = 2) -> float | None:
    return round(x, digits) if math.isfinite(x) else None


def report(groups: list[PositionGroup]) -> dict[str, Any]:
    def row(r: BrokerPosition) -> dict[str, Any]:
        return {
            "tradingsymbol": r.tradingsymbol,
            "exchange": r.exchange,
            "product": r.product,
            "kind": r.kind,
            "strike": _num(r.strike),
            "quantity": r.net_qty,
            "lots": _num(r.lots, 4),
            "lot_size": r.lot_size,
            "average": _num(r.entry),
            "ltp": _num(r.ltp),
            "pnl": _num(r.pnl()),
            "broker_pnl": _num(r.broker_pnl),
        }

    out = [
        {
            "symbol": g.symbol,
            "expiry": g.expiry.isoformat() if g.expiry else None,
            "rows": [row(r) for r in g.rows],
            "pnl": _num(g.pnl),
            "broker_pnl": _num(g.broker_pnl),
        }
        for g in groups
    ]
    total = sum(g.pnl for g in groups)
    broker = sum(g.broker_pnl for g in groups)
    return {
        "source": "angelone",
        "groups": out,
        "pnl": _num(total),
        "broker_pnl": _num(broker),
    }


def _money(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{'-' if x < 0 else ''}₹{abs(x):,.2f}"


def _print_text(doc: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if not doc["groups"]:
        out.print("No positions at Angel One.", highlight=False)
        return
    for g in doc["groups"]:
        when = g["expiry"] or "cash"
        table = Table(
            title=f"{g['symbol']} · {when}", title_justify="left", box=box.SIMPLE_HEAD,
            pad_edge=False,
        )  # fmt: skip
        for col in ("contract", "product", "qty", "lots", "avg", "LTP", "P&L", "broker P&L"):
            table.add_column(col, justify="left" if col in ("contract", "product") else "right")
        for r in g["rows"]:
            table.add_row(
                r["tradingsymbol"],
                r["product"],
                f"{r['quantity']:+,}",
                "" if r["lots"] is None else f"{r['lots']:+g}",
                "" if r["average"] is None else f"{r['average']:,.2f}",
                "" if r["ltp"] is None else f"{r['ltp']:,.2f}",
                _money(r["pnl"]),
                _money(r["broker_pnl"]),
            )
        table.add_row("total", "", "", "", "", "", _money(g["pnl"]), _money(g["broker_pnl"]))
        out.print(table)
    out.print(
        f"Book P&L {_money(doc['pnl'])} (broker {_money(doc['broker_pnl'])}) · Angel One, "
        "read-only",
        highlight=False,
    )
