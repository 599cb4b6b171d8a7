"""`optterm history`: what the store holds, and exporting it as CSV or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import load_settings, parse_date, print_json, run_reading_store
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.model import ChainSnapshot
    from optterm.store import Store

__all__ = ["day_bounds", "export", "history_app", "summary_rows"]

history_app = typer.Typer(help="Inspect and export the stored history.", no_args_is_help=True)


@history_app.command("list")
def history_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Stored snapshots per symbol, expiry and day."""
    rows = run_reading_store(load_settings(ctx), summary_rows)
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Symbol", "Expiry", "Date (IST)", "Provider", "Snapshots", "First", "Last")
    for r in rows:
        table.add_row(
            r["symbol"],
            r["expiry"],
            r["date"],
            r["provider"],
            str(r["snapshots"]),
            r["first"][11:19],
            r["last"][11:19],
        )
    if not rows:
        typer.echo("No history stored yet. Run `optterm serve` (or the TUI) to start recording.")
        return
    Console().print(table)


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Underlying, e.g. NIFTY.")],
    expiry: Annotated[str | None, typer.Option("--expiry", "-e", help="Only this expiry.")] = None,
    day: Annotated[
        str | None, typer.Option("--date", "-d", help="One exchange-local day (YYYY-MM-DD).")
    ] = None,
    since: Annotated[str | None, typer.Option("--from", help="First day (inclusive).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day (inclusive).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Export stored snapshots (every strike of every tick) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise UsageProblem(f"--format {fmt!r} is not supported; use csv or json.")
    if day and (since or until):
        raise UsageProblem("--date cannot be combined with --from/--to; use one or the other.")
    settings = load_settings(ctx)
    tz = settings.market.tz
    first_text, last_text = (day, day) if day else (since, until)
    first = parse_date(first_text, "--date" if day else "--from") if first_text else None
    last = parse_date(last_text, "--date" if day else "--to") if last_text else None
    start = day_bounds(first, tz)[0] if first else datetime(1970, 1, 2, tzinfo=tz)
    end = day_bounds(last, tz)[1] if last else datetime(9999, 1, 1, tzinfo=tz) - timedelta(days=2)
    if end <= start:
        raise UsageProblem("--to is before --from; nothing to export.")
    exp = parse_date(expiry, "--expiry") if expiry else None
    sym = symbol.upper()
    written = run_reading_store(
        settings, lambda s: _export_to(s, sym, exp, start, end, fmt, output)
    )
    if written == 0:
        typer.echo(
            f"No stored snapshots for {sym} in that range; see `optterm history list`.", err=True
        )


async def _export_to(
    store: Store,
    symbol: str,
    expiry: date | None,
    start: datetime,
    end: datetime,
    fmt: str,
    output: Path | None,
) -> int:
    if output is None:
        return await export(store, symbol, expiry, start, end, fmt, sys.stdout)
    # Write beside the target and rename, so an interrupted export never leaves half a file.
    tmp = output.with_name(f".{output.name}.partial")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            n = await export(store, symbol, expiry, start, end, fmt, fh)
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageProblem(f"cannot write {output}: {exc.strerror or exc}.") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of one exchange-local calendar day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, start + timedelta(days=1)


async def summary_rows(store: Store) -> list[dict[str, Any]]:
    rows = await store.snapshots.history()
    return [
        {
            "symbol": r.symbol,
            "expiry": r.expiry.isoformat(),
            "date": r.trading_date.isoformat(),
            "provider": r.provider,
            "snapshots": r.count,
            "first": r.first_ts.isoformat(),
            "last": r.last_ts.isoformat(),
        }
        for r in rows
    ]


async def export(
    store: Store,
    symbol: str,
    expiry: date | None,
    start: datetime,
    end: datetime,
    fmt: str,
    out: IO[str],
    *,
    progress: bool = True,
) -> int:
    """Stream snapshots to `out`; returns how many were written. Shows a progress bar on stderr."""
    from optterm.present.chain import snapshot_to_dict, write_csv

    total = await store.snapshots.count(symbol, expiry, start, end)
    snaps: AsyncIterator[ChainSnapshot] = store.snapshots.iterate(symbol, expiry, start, end)
    written = 0
    bar = _progress(total) if progress and total > 0 else None
    try:
        if fmt == "json":
            head = {
                "symbol": symbol,
                "expiry": expiry.isoformat() if expiry else None,
                "from": start.isoformat(),
                "to": end.isoformat(),
            }
            # Streamed: the snapshots array is written one element at a time, never held whole.
            out.write(json.dumps(head)[:-1] + ', "snapshots": [')
        async for snap in snaps:
            if fmt == "json":
                doc = snapshot_to_dict(snap)
                doc.pop("age_seconds", None)  # an export is history, not a live view
                out.write(("," if written else "") + "\n" + json.dumps(doc))
            else:
                write_csv(out, [snap], header=written == 0)
            written += 1
            if bar is not None:
                bar[0].update(bar[1], advance=1)
        if fmt == "json":
            out.write("\n]}\n")
        elif written == 0:
            write_csv(out, [], header=True)
    finally:
        if bar is not None:
            bar[0].stop()
    return written


def _progress(total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    progress.start()
    return progress, progress.add_task("exporting", total=total)
