"""`optterm providers` and `optterm scenarios`: each configured provider's health (or a probe
of each now), and the simulator's scenarios."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from optterm.cli.context import load_settings, print_json, run_async, run_with_store

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = ["providers", "scenarios"]


def providers(
    ctx: typer.Context,
    probe: Annotated[
        str | None,
        typer.Option("--probe", help="Fetch SYMBOL's nearest chain from each provider now."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each configured provider: breaker, requests, success rate, latency, last error."""
    settings = load_settings(ctx)
    if probe:
        _probe(settings, probe.upper(), as_json)
        return
    from optterm.engine.provider_status import status_rows

    rows = run_with_store(settings, lambda store: status_rows(settings, store))
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("#", "Provider", "Breaker", "Requests", "Success", "Latency (mean/last)",
                  "Last error", title="Providers (today, as recorded by the poller)")  # fmt: skip
    for r in rows:
        if not r["available"]:
            table.add_row(str(r["order"]), r["provider"], "unavailable", "", "", "",
                          r["unavailable_reason"])  # fmt: skip
            continue
        rate = "" if r["success_rate"] is None else f"{r['success_rate']:.0%}"
        lat = (
            ""
            if r["latency_ms_mean"] is None
            else f"{r['latency_ms_mean']:.0f} / {r['latency_ms_last']:.0f} ms"
        )
        err = r["last_error"] or ""
        if r["last_error_at"]:
            err = f"{err} ({r['last_error_at'][11:19]} UTC)"
        table.add_row(str(r["order"]), r["provider"], r["breaker"] or "no data yet",
                      str(r["requests"]), rate, lat, err)  # fmt: skip
    Console().print(table)


def _probe(settings: Settings, symbol: str, as_json: bool) -> None:
    """Fetch `symbol`'s nearest chain from each provider now; exit 0 when any answered."""
    from optterm.engine.provider_status import probe

    rows = run_async(probe(settings, symbol))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        verdict = (
            f"OK  {r['ms']:>7.1f} ms  {r['feed']} {r['expiry']} {r['strikes']} strikes"
            if r["ok"]
            else f"FAIL {r.get('ms', 0):>6.1f} ms  {r.get('error')}"
        )
        typer.echo(f"{r['provider']:<10} {verdict}")
    raise typer.Exit(0 if any(r["ok"] for r in rows) else 1)


def scenarios(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the simulator's scenarios (choose one with --scenario or \\[providers.simulator])."""
    from optterm.providers.simulator.provider import SCENARIOS

    if as_json:
        print_json(SCENARIOS)
        return
    width = max(map(len, SCENARIOS))
    for name, text in SCENARIOS.items():
        typer.echo(f"{name:<{width}}  {text}")
