"""What every command needs: the settings its global options make, the store, JSON output and
dates typed on the command line.

Light on purpose: `optterm --help` imports every command module, and each of those imports only
this, typer and the errors at the top; the rest is imported where a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from optterm.cli.errors import UsageProblem
from optterm.engine.compose import CliOptions
from optterm.infra.clip import quoted
from optterm.market import parse_day

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store
    from optterm.store.plainread import PlainReader

__all__ = [
    "check_span",
    "load_settings",
    "options",
    "parse_date",
    "print_json",
    "read_store",
    "run_async",
    "run_reading_store",
    "run_with_existing_store",
    "run_with_store",
    "stderr_progress",
]

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro), with the result kept out of the event loop's main task.

    On its way out asyncio.run asks signal.getsignal for the SIGINT handler it installed (a
    partial holding the main task); turning that handler into a signal.Handlers member fails, and
    the failure's message is built from repr(handler), so from repr(task) and repr(its result).
    For a chain's snapshot and analytics that is ~90 kB of numpy array printing, twice: 40 ms of
    `optterm chain NIFTY`. Here the task returns None and the result travels in a list.
    """
    import asyncio  # here: the plain read path (read_store) runs without an event loop

    out: list[T] = []

    async def main() -> None:
        out.append(await coro)

    asyncio.run(main())
    return out[0]


def options(ctx: typer.Context) -> CliOptions:
    """The global options (`optterm --scenario … COMMAND`), as the root command kept them."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliOptions) else CliOptions()


def load_settings(ctx: typer.Context) -> Settings:
    """Settings from the config file and environment, with the global options applied."""
    from optterm.engine.compose import load

    return load(options(ctx))


def run_with_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store (creating it if need be), run `use` on it, close it."""

    async def go() -> T:
        from optterm.engine.compose import open_configured_store

        store = await open_configured_store(settings)
        try:
            return await use(store)
        finally:
            await store.close()

    return run_async(go())


def run_reading_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    """Like run_with_store, for commands that only read: an existing database is opened
    read-only, so they work for a user who may read it but not write it (store/access.py)."""

    async def go() -> T:
        from optterm.engine.compose import store_url
        from optterm.store import open_store

        store = await open_store(
            store_url(settings), read_only=True, file_mode=settings.store.files
        )
        try:
            return await use(store)
        finally:
            await store.close()

    return run_async(go())


def read_store(
    settings: Settings,
    plain: Callable[[PlainReader], T],
    store: Callable[[Store], Awaitable[T]],
) -> T:
    """For the commands that only read: `plain` on the plain reader when the store is a SQLite
    file at the current schema (store/plainread.py: no SQLAlchemy to import, ~0.4 s saved), else
    `store` through run_reading_store. Both must read the same thing."""
    from optterm.engine.compose import store_url
    from optterm.store.plainread import open_plain

    reader = open_plain(store_url(settings))
    if reader is None:
        return run_reading_store(settings, store)
    with reader:
        return plain(reader)


def run_with_existing_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    """Like run_reading_store, but never creates a database: a status check must not make one."""

    async def go() -> T:
        from optterm.engine.compose import store_url
        from optterm.store import open_store

        store = await open_store(store_url(settings), create=False, read_only=True)
        try:
            return await use(store)
        finally:
            await store.close()

    return run_async(go())


def print_json(doc: Any, *, ensure_ascii: bool = True) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=ensure_ascii) + "\n")


def parse_date(value: str, flag: str) -> date:
    """A date typed after `flag`: 2026-11-24 or 24-Nov-2026; a usage error otherwise."""
    day = parse_day(value)
    if day is None:
        raise UsageProblem(
            f"{flag} {quoted(value)} is not a date; write it as YYYY-MM-DD (e.g. 2026-11-24) "
            "or DD-Mon-YYYY (e.g. 24-Nov-2026)."
        )
    return day


def check_span(first: date, last: date) -> None:
    """Refuse a --from/--to span that no store can hold (engine/backtest/service.check_span:
    reversed, in year 9999, longer than its MAX_SPAN_YEARS): a usage error."""
    from optterm.engine.backtest.service import check_span as check
    from optterm.engine.backtest.simulate import BacktestProblem

    try:
        check(first, last)
    except BacktestProblem as exc:
        raise UsageProblem(str(exc)) from None


def stderr_progress(description: str, total: int) -> tuple[Any, Any]:
    """A started progress bar on stderr (so stdout stays the command's data), drawn only on a
    terminal and gone when stopped; with its task, for `advance`."""
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
    return progress, progress.add_task(description, total=total)
