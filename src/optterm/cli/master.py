"""`optterm master`: download Angel One's instrument master now, with progress."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import load_settings, print_json, run_async

if TYPE_CHECKING:
    from optterm.providers.angelone.master import InstrumentMaster, MasterIndex

__all__ = ["master"]


def master(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Download even if today's is cached.")
    ] = False,
    universe: Annotated[
        bool,
        typer.Option(
            "--universe",
            help="Also list the scanner's F&O universe and what changed since the last one.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Download Angel One's instrument master now (with progress); keeps the last good copy."""
    from optterm.providers.factory import angel_master

    store = angel_master(load_settings(ctx), every_name=universe)
    index = run_async(_download(store, force))
    status = store.status()
    doc: dict[str, Any] = {
        "cache": str(status.cache_path),
        "downloaded_at": status.downloaded_at.isoformat() if status.downloaded_at else None,
        "current": status.current,
        "rows": status.rows,
        "options": status.options,
        "names": sorted(index.names()),
        "last_error": status.last_error,
    }
    if universe:
        doc["universe"] = _universe(store, index)
    if as_json:
        print_json(doc)
        return
    typer.echo(f"{doc['rows']:,} rows, {doc['options']:,} options, in {doc['cache']}")
    if doc["last_error"]:
        typer.echo(f"the download failed, using the last good copy: {doc['last_error']}", err=True)
    if universe:
        u = doc["universe"]
        typer.echo(
            f"F&O universe: {len(u['members'])} underlyings ({u['indices']} indices, "
            f"{len(u['members']) - u['indices']} stocks); {u['change']}"
        )


def _universe(store: InstrumentMaster, index: MasterIndex) -> dict[str, Any]:
    """The scanner's universe from this master, cached beside it, and what changed."""
    from datetime import UTC, datetime

    from optterm.cli.errors import UsageProblem
    from optterm.engine.scanner.universe import UniverseError, refresh_universe

    today = store.edition(datetime.now(UTC))
    try:
        u, change = refresh_universe(index, today, store.cache_dir)
    except UniverseError as exc:
        raise UsageProblem(str(exc)) from None
    return {
        "edition": u.edition.isoformat(),
        "indices": int(u.is_index.sum()),
        "members": [m.to_dict() for m in u.members],
        "added": list(change.added),
        "removed": list(change.removed),
        "lot_changed": [list(c) for c in change.lot_changed],
        "change": change.summary(),
    }


async def _download(store: InstrumentMaster, force: bool) -> MasterIndex:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    console = Console(file=sys.stderr)
    columns = ("master", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    quiet = not console.is_terminal  # no bar in a pipe or a log
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("download", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return await store.ensure(progress=progress, force=force)
