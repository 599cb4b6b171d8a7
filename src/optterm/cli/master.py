"""`optterm master`: download Angel One's instrument master now, with progress."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from optterm.cli.context import load_settings, print_json

if TYPE_CHECKING:
    from optterm.providers.angelone.master import InstrumentMaster, MasterIndex

__all__ = ["master"]


def master(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Download even if today's is cached.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Download Angel One's instrument master now (with progress); keeps the last good copy."""
    from optterm.providers.factory import angel_master

    store = angel_master(load_settings(ctx))
    index = asyncio.run(_download(store, force))
    status = store.status()
    doc = {
        "cache": str(status.cache_path),
        "downloaded_at": status.downloaded_at.isoformat() if status.downloaded_at else None,
        "current": status.current,
        "rows": status.rows,
        "options": status.options,
        "names": sorted(index.names()),
        "last_error": status.last_error,
    }
    if as_json:
        print_json(doc)
        return
    typer.echo(f"{doc['rows']:,} rows, {doc['options']:,} options, in {doc['cache']}")
    if doc["last_error"]:
        typer.echo(f"the download failed, using the last good copy: {doc['last_error']}", err=True)


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
