"""`optterm serve` and `optterm status`: run the headless daemon, and ask whether it is healthy.

The commands only turn options into settings and results into an exit status; the daemon's
term is cli/serve.py and the health report cli/status.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from optterm.cli.context import load_settings, options, print_json, run_with_existing_store
from optterm.cli.errors import UsageProblem

__all__ = ["STATUS_HELP", "serve", "status"]

STATUS_HELP = (
    "Is the daemon healthy? Lease holder and heartbeat, last tick, provider health and "
    "the notification outbox.\n\n"
    "Exit status 0 when healthy, 1 when unhealthy (including a database server that cannot "
    "be reached, or a disk error), 2 for usage or configuration errors (including a store that "
    "cannot be opened). Unhealthy when: no optterm serve holds the "
    "store's poller lease (none running, released, or its holder died); the lease heartbeat "
    "is older than 3 of the daemon's own poll intervals (its --interval, as it reports; at "
    "least 10 s); its last tick is older than that plus a poll timeout; its latest write to "
    "snapshots, metrics or signals failed; during market hours, the newest stored "
    "snapshot was fetched more than \\[poller] stale_after seconds ago (60 by default, never "
    "less than 3 poll intervals); or a notification "
    "delivery FAILED in the last hour."
)


def serve(
    ctx: typer.Context,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between ticks (default from config).")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="text or json lines.")
    ] = None,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby",
            help="If another serve holds this store's lease, wait as a hot spare and take over "
            "within seconds when it stops (instead of exiting with status 2).",
        ),
    ] = False,
) -> None:
    """Poll the watchlist headless and keep the history, until Ctrl-C or SIGTERM.

    One serve per store: it takes the store's poller lease first; exit status 2 if another
    serve holds it (unless --standby), 1 if the lease is lost while polling."""
    opts = options(ctx)
    opts.set("OPTTERM_POLLER_INTERVAL", "--interval", interval)
    opts.set("OPTTERM_LOG_FORMAT", "--log-format", log_format)
    settings = load_settings(ctx)
    from optterm.cli.serve import serve as run_serve
    from optterm.engine.compose import store_url
    from optterm.store.db import resolve_url

    if resolve_url(store_url(settings)).in_memory:
        raise UsageProblem(
            "optterm serve keeps history for other processes to read, so it cannot use an "
            "in-memory store; set [store] url to a file path or a postgresql:// URL."
        )
    from optterm.infra.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    import asyncio

    raise typer.Exit(asyncio.run(run_serve(settings, standby=standby, freeze_heap=True)))


def status(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    from optterm.cli.status import gather_status, plain_status, render_text
    from optterm.engine.compose import store_url
    from optterm.store.plainread import open_plain

    settings = load_settings(ctx)
    # A current SQLite store is read with sqlite3 alone (store/plainread.py); anything else
    # through the Store, which never creates a database here.
    reader = open_plain(store_url(settings))
    if reader is None:
        report = run_with_existing_store(settings, lambda s: gather_status(settings, s))
    else:
        with reader:
            report = plain_status(settings, reader)
    if as_json:
        print_json(report.doc)
    else:
        for line in render_text(report, settings.market.tz):
            typer.echo(line)
    raise typer.Exit(report.exit_code)
