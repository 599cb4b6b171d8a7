"""`optterm jobs`: recent runs of the daemon's scheduled jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from optterm.cli.context import load_settings, print_json, run_reading_store

__all__ = ["jobs"]

_OUTCOME_STYLE = {"ok": "green", "failed": "bold red", "skipped": "yellow", "running": "cyan"}


def jobs(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only this job: eod, retention, checkpoint or holidays."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent runs of the daemon's scheduled jobs (end-of-day summary, retention, checkpoint,
    holiday list)."""
    settings = load_settings(ctx)
    job = name.strip().lower() if name else None
    runs = run_reading_store(settings, lambda s: s.jobs.runs(job, limit))
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        what = f"{job!r} job" if job else "scheduled job"
        typer.echo(f"No {what} runs recorded yet. `optterm serve` runs them and records each run.")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    tz = settings.market.tz
    zone = datetime.now(tz).tzname() or settings.market.timezone
    table = Table("Job", f"Started ({zone})", "Duration", "Outcome", "Detail",
                  title="Scheduled job runs, newest first", title_justify="left")  # fmt: skip
    for r in runs:
        colour = _OUTCOME_STYLE.get(r.outcome, "")
        table.add_row(
            escape(r.name),
            f"{r.started_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
            _took(r.duration_ms),
            f"[{colour}]{r.outcome}[/]" if colour else escape(r.outcome),
            escape(r.detail),
        )
    Console().print(table)


def _took(ms: float | None) -> str:
    """A run's duration: blank while it runs, then <1 ms, 250 ms, 12.5 s."""
    if ms is None:
        return ""
    if ms < 1:
        return "<1 ms"
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
