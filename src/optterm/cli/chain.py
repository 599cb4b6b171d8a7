"""`optterm chain`: one option chain fetched now, as a table, JSON or CSV."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from optterm.cli.context import load_settings, parse_date, print_json
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.model import ChainSnapshot

__all__ = ["chain"]


def chain(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Underlying, e.g. NIFTY.")],
    expiry: Annotated[
        str | None,
        typer.Option(
            "--expiry", "-e", help="YYYY-MM-DD, DD-Mon-YYYY, or 1 for the nearest, 2 the next…"
        ),
    ] = None,
    strikes: Annotated[
        int, typer.Option("--strikes", "-n", min=1, max=300, help="Strikes each side of ATM.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    greeks: Annotated[
        bool, typer.Option("--greeks", "-g", help="Add delta, gamma, theta/day and vega columns.")
    ] = False,
) -> None:
    """Fetch one option chain now and print it with IV, Greeks and the chain's metrics
    (CE | strike | PE, ATM marked, MP = max pain)."""
    if as_json and as_csv:
        raise UsageProblem("--json and --csv cannot be used together; pick one.")
    settings = load_settings(ctx)
    snap = asyncio.run(_fetch_chain(settings, symbol.upper(), expiry, strikes))
    if as_csv:
        from optterm.present.chain import write_csv

        write_csv(sys.stdout, [snap])
        return
    from optterm.engine.analytics.chain import AnalyticsParams, enrich

    enriched = enrich(snap, params=AnalyticsParams.from_settings(settings)) if len(snap) else None
    if as_json:
        from optterm.present.chain import snapshot_to_dict

        print_json(snapshot_to_dict(snap, enriched=enriched))
    else:
        from rich.console import Console

        from optterm.present.chain import chain_table, metrics_lines

        console = Console()
        console.print(chain_table(snap, enriched=enriched, greeks=greeks))
        if enriched is not None:
            for line in metrics_lines(enriched.metrics):
                console.print(line, highlight=False)


async def _fetch_chain(
    settings: Settings, symbol: str, expiry_arg: str | None, strikes: int
) -> ChainSnapshot:
    from optterm.providers.factory import build_provider

    provider = build_provider(settings)
    try:
        await provider.underlying(symbol)
        expiries = await provider.list_expiries(symbol)
        if not expiries:
            raise UsageProblem(f"{symbol} has no listed expiries at {provider.name}.")
        listed = ", ".join(e.isoformat() for e in expiries)
        if expiry_arg is None:
            expiry = expiries[0]
        elif expiry_arg.isdigit():
            n = int(expiry_arg)
            if not 1 <= n <= len(expiries):
                raise UsageProblem(
                    f"--expiry {n}: {symbol} has {len(expiries)} listed expiries ({listed}); "
                    f"use 1 to {len(expiries)} or a date."
                )
            expiry = expiries[n - 1]
        else:
            expiry = parse_date(expiry_arg, "--expiry")
            if expiry not in expiries:
                raise UsageProblem(f"{symbol} has no expiry on {expiry}; listed: {listed}.")
        snap = await provider.fetch_chain(symbol, expiry)
        return snap.window(strikes) if len(snap) else snap
    finally:
        await provider.close()
