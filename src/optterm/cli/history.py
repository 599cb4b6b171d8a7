"""`optterm history`: what the store holds, and exporting it as CSV or JSON."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import (
    load_settings,
    parse_date,
    print_json,
    read_store,
    run_reading_store,
    stderr_progress,
)
from optterm.cli.errors import OutputFailed, UsageProblem
from optterm.infra.clip import clip, quoted

if TYPE_CHECKING:
    from optterm.infra.atomicfile import NotARegularFile
    from optterm.infra.filemode import FileMode
    from optterm.store import HistoryRow, Store
    from optterm.store.plainread import DayRow

__all__ = ["day_bounds", "export", "history_app", "summary_of", "summary_rows"]

history_app = typer.Typer(help="Inspect and export the stored history.", no_args_is_help=True)


@history_app.command("list")
def history_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Stored snapshots per symbol, expiry and day."""
    settings = load_settings(ctx)
    rows = read_store(settings, lambda r: summary_of(r.history()), summary_rows)
    if as_json:
        print_json(rows)  # ISO times with their UTC offset: unambiguous as they are
        return
    from rich.console import Console
    from rich.table import Table

    tz = settings.market.tz
    zone = datetime.now(tz).tzname() or str(tz)  # "IST"

    def clock(iso: str) -> str:  # stored in UTC; the table is in exchange time
        return datetime.fromisoformat(iso).astimezone(tz).strftime("%H:%M:%S")

    table = Table("Symbol", "Expiry", f"Date ({zone})", "Provider", "Snapshots", "First", "Last")
    for r in rows:
        table.add_row(
            r["symbol"],
            r["expiry"],
            r["date"],
            r["provider"],
            str(r["snapshots"]),
            clock(r["first"]),
            clock(r["last"]),
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
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Regular file to write, replaced in one step (default or -: stdout).",
        ),
    ] = None,
) -> None:
    """Export stored snapshots (every strike of every tick) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise UsageProblem(f"--format {quoted(fmt)} is not supported; use csv or json.")
    if day and (since or until):
        raise UsageProblem("--date cannot be combined with --from/--to; use one or the other.")
    settings = load_settings(ctx)
    tz = settings.market.tz
    first_text, last_text = (day, day) if day else (since, until)
    first = parse_date(first_text, "--date" if day else "--from") if first_text else None
    last = parse_date(last_text, "--date" if day else "--to") if last_text else None
    # The store's whole range; a day past its end is clamped (9999-12-31 + 1 day overflows).
    floor, ceiling = datetime(1970, 1, 2, tzinfo=tz), datetime(9998, 12, 30, tzinfo=tz)
    start = max(day_bounds(min(first, ceiling.date()), tz)[0], floor) if first else floor
    end = day_bounds(min(last, ceiling.date()), tz)[1] if last else ceiling
    if end <= start:
        raise UsageProblem("--to is before --from; nothing to export.")
    exp = parse_date(expiry, "--expiry") if expiry else None
    sym = symbol.upper()
    if output is not None and str(output) == "-":
        output = None
    if output is not None:
        _check_output(output, settings.store.effective_url)
    mode = settings.store.files
    written = run_reading_store(
        settings, lambda s: _export_to(s, sym, exp, start, end, fmt, output, mode)
    )
    if written == 0:
        typer.echo(
            f"No stored snapshots for {clip(sym)} in that range; see `optterm history list`.",
            err=True,
        )


_PATH_ERRORS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EISDIR,
        errno.ENAMETOOLONG,
    }
)


def _check_output(output: Path, store_url: str) -> None:
    """Refuse, before opening the store, a path that is not a regular file, or that is the
    database itself or one of its companion files (usage errors)."""
    from optterm.infra.atomicfile import NotARegularFile, check_target
    from optterm.store.db import resolve_url

    try:
        check_target(output)
    except NotARegularFile as exc:
        raise UsageProblem(_refusal(exc)) from None
    except OSError as exc:  # the path cannot even be looked at: too long, not a folder, …
        raise UsageProblem(_path_problem(output, exc)) from None
    db = resolve_url(store_url).path
    if db is None:
        return
    target = output.absolute().resolve()
    for name in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal", ".lease"))):
        if target == name.resolve():
            what = "" if name == db else f" file {name.name}"
            raise UsageProblem(
                f"{output} is the optterm database{what}; exporting over it would destroy the "
                "history. Name another file."
            )


def _refusal(exc: NotARegularFile) -> str:
    return (
        f"{exc.path} is {exc.kind}, and --output only replaces regular files; nothing was "
        "written. Name a new or existing regular file, or use -o - to write to stdout."
    )


async def _export_to(
    store: Store,
    symbol: str,
    expiry: date | None,
    start: datetime,
    end: datetime,
    fmt: str,
    output: Path | None,
    mode: FileMode,
) -> int:
    if output is None:
        return await export(store, symbol, expiry, start, end, fmt, sys.stdout)
    from optterm.infra.atomicfile import NotARegularFile, replace_file

    # A temporary file beside the target, renamed over it: an interrupted or failed export
    # never leaves half a file, and never writes through a link, pipe or device.
    try:
        with replace_file(output, mode) as fh:
            return await export(store, symbol, expiry, start, end, fmt, fh)
    except NotARegularFile as exc:
        raise UsageProblem(_refusal(exc)) from None
    except OSError as exc:
        if exc.errno in _PATH_ERRORS:  # the path is wrong: a usage error
            raise UsageProblem(_path_problem(output, exc)) from None
        raise OutputFailed(  # the disk failed part-way: a runtime failure
            f"cannot write {output}: {exc.strerror or exc}. Nothing was written and {output} "
            "is as it was; free some space or choose another folder."
        ) from None


def _path_problem(output: Path, exc: OSError) -> str:
    return (
        f"cannot write {clip(str(output), 120)}: {exc.strerror or exc}. Nothing was written; "
        "name a file (of a sensible length) in an existing folder you can write to."
    )


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of one exchange-local calendar day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, start + timedelta(days=1)


async def summary_rows(store: Store) -> list[dict[str, Any]]:
    return summary_of(await store.snapshots.history())


def summary_of(rows: Iterable[HistoryRow | DayRow]) -> list[dict[str, Any]]:
    """`history list --json`'s rows, from the Store's history or the plain reader's."""
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
    """Stream snapshots to `out`; returns how many were written. Shows a progress bar on stderr.

    Formatted column-wise a batch of snapshots at a time (present/export.py): the same text as
    `write_csv` / `snapshot_to_dict` per snapshot, without their per-cell cost."""
    from optterm.present.export import CsvWriter, JsonWriter

    total = await store.snapshots.count(symbol, expiry, start, end)
    written = 0
    bar = stderr_progress("exporting", total) if progress and total > 0 else None
    writer: CsvWriter | JsonWriter
    if fmt == "json":
        writer = JsonWriter(out)
        head = {
            "symbol": symbol,
            "expiry": expiry.isoformat() if expiry else None,
            "from": start.isoformat(),
            "to": end.isoformat(),
        }
        # Streamed: the snapshots array is written a batch at a time, never held whole.
        out.write(json.dumps(head)[:-1] + ', "snapshots": [')
    else:
        writer = CsvWriter(out)
        writer.header()
    try:
        batches = store.snapshots.iterate_batches(symbol, expiry, start, end, _BATCH)
        async for batch in batches:
            writer.write(batch)
            written += len(batch.heads)
            if bar is not None:
                bar[0].update(bar[1], advance=len(batch.heads))
        if fmt == "json":
            out.write("\n]}\n")
    finally:
        if bar is not None:
            bar[0].stop()
    return written


# Snapshots read, decoded and formatted together: enough that numpy's per-call cost vanishes
# (~40k rows of a 100-strike chain), few enough that the byte matrices stay ~8 MB each (kept
# from batch to batch). A NIFTY day's CSV: 0.85-0.89 s of CPU in a fresh process at 400,
# 0.92 s at 200, no better at 600.
_BATCH = 400
