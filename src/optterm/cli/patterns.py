"""`optterm patterns`: pattern signals from the store, the active ones first, then recent expired
ones."""

from __future__ import annotations

from datetime import UTC, datetime, time, tzinfo
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import load_settings, print_json, read_store
from optterm.cli.errors import UsageProblem
from optterm.infra.clip import clip
from optterm.present.time import SINCE_HELP

if TYPE_CHECKING:
    from optterm.model import Signal
    from optterm.store import Store
    from optterm.store.plainread import PlainReader

__all__ = ["patterns"]

_COLUMNS = ("Time", "Symbol", "Expiry", "Kind", "Direction", "Strength", "Confidence",
            "Strikes", "Summary", "Source")  # fmt: skip
_FEED_STYLE = {"SIMULATED": "[bold yellow]SIMULATED[/]", "DELAYED": "[yellow]DELAYED[/]"}
_DIRECTION_STYLE = {"bullish": "green", "bearish": "red"}


def patterns(
    ctx: typer.Context,
    symbol: Annotated[
        str | None, typer.Argument(metavar="SYMBOL", help="Only this underlying, e.g. NIFTY.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            "-k",
            metavar="KIND",
            help="Only this pattern kind, e.g. CALL_BUILDUP (repeatable).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help=f"Also list expired signals seen since {SINCE_HELP}. Default: today's session.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pattern signals from the store: the active ones, then recent expired ones."""
    kinds = _kinds(kind or [])
    settings = load_settings(ctx)
    tz = settings.market.tz
    now = datetime.now(UTC)
    start = _start(since, now, tz)
    sym = symbol.strip().upper() if symbol else None
    rows = read_store(
        settings,
        lambda r: _plain_rows(r, sym, kinds or None, start, now, limit),
        lambda s: _rows(s, sym, kinds or None, start, now, limit),
    )
    if as_json:
        print_json(rows)
        return
    if not rows:
        scope = " ".join(filter(None, [sym and clip(sym), ", ".join(kinds)])) or "pattern"
        typer.echo(
            f"No {scope} signals active now or seen since {start.astimezone(tz):%d-%b %H:%M %Z}. "
            "Signals are recorded by `optterm serve` or the TUI while they run."
        )
        return
    _print_tables(rows, start, now, tz)


def _kinds(given: list[str]) -> list[str]:
    """The --kind values as pattern kinds (call-buildup reads as CALL_BUILDUP)."""
    from optterm.model import PatternKind

    valid = [k.value for k in PatternKind]
    kinds = []
    for k in given:
        name = k.strip().upper().replace("-", "_")
        if name not in valid:
            raise UsageProblem(
                f"--kind {k!r} is not a pattern kind; choose from {', '.join(valid)}."
            )
        kinds.append(name)
    return kinds


def _start(since: str | None, now: datetime, tz: tzinfo) -> datetime:
    """Expired signals are listed from here: --since, or the start of today's session."""
    from optterm.present.time import SinceError, parse_since

    if since is None:
        return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    try:
        return parse_since(since, now=now, tz=tz)
    except SinceError as exc:
        raise UsageProblem(str(exc)) from None


async def _rows(
    store: Store,
    symbol: str | None,
    kinds: list[str] | None,
    since: datetime,
    now: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    active = await store.analytics.load_signals(symbol, kinds, active_at=now, limit=limit)
    seen = await store.analytics.load_signals(symbol, kinds, since=since, limit=limit + len(active))
    return _docs(active, seen, now, limit)


def _plain_rows(
    reader: PlainReader,
    symbol: str | None,
    kinds: list[str] | None,
    since: datetime,
    now: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """_rows on the plain reader (cli/context.py read_store)."""
    active = reader.load_signals(symbol, kinds, active_at=now, limit=limit)
    seen = reader.load_signals(symbol, kinds, since=since, limit=limit + len(active))
    return _docs(active, seen, now, limit)


def _docs(
    active: list[Signal], seen: list[Signal], now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The active signals, then the expired ones among those seen since the start, up to limit."""
    keys = {s.key for s in active}
    expired = [s for s in seen if s.key not in keys][: limit - len(active)]
    from optterm.present.patterns import signal_to_dict

    return [
        {
            **signal_to_dict(s),
            "active": s.key in keys,
            "age_seconds": round((now - s.first_seen).total_seconds(), 3),
        }
        for s in (*active, *expired)
    ]


def _print_tables(rows: list[dict[str, Any]], start: datetime, now: datetime, tz: tzinfo) -> None:
    """The active signals, then the expired ones, each as a table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for active in (True, False):
        part = [r for r in rows if r["active"] is active]
        if active and not part:
            console.print("No signals are active now.")
        if not part:
            continue
        title = (
            "Current signals (active now)"
            if active
            else f"Expired since {start.astimezone(tz):%d-%b %H:%M %Z}"
        )
        table = Table(*_COLUMNS, title=title, title_justify="left")
        for r in part:
            table.add_row(*_cells(r, now, tz))
        console.print(table)


def _cells(r: dict[str, Any], now: datetime, tz: tzinfo) -> tuple[str, ...]:
    from rich.markup import escape

    from optterm.present.patterns import confidence_bar
    from optterm.present.time import age_text, when_text

    colour = _DIRECTION_STYLE.get(r["direction"], "dim")
    feed = _FEED_STYLE.get(r["feed"], r["feed"])
    return (
        when_text(datetime.fromisoformat(r["last_seen"]), tz, now),
        escape(r["symbol"]),
        r["expiry"],
        r["kind"],
        f"[{colour}]{r['direction']}[/]",
        r["strength"].replace("_", " ").lower(),
        confidence_bar(r["confidence"]),
        ", ".join(f"{k:g}" for k in r["strikes"]),
        escape(r["summary"]),
        f"{escape(r['provider'] or '?')} {feed} · age {age_text(r['age_seconds'])}",
    )
