"""`optterm replay DAY [SYMBOL…]`: the engine run over a stored day, headless.

Every stored snapshot of the day goes through the live analytics and detectors in order (and,
with --rules, the alert rules as they are now); what they produced is printed with its time and
values. Nothing is written to the store and nothing is sent: the database is opened read-only.
`optterm chain SYMBOL --at WHEN` (cli/chain.py) shows one stored chain as of a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import (
    load_settings,
    parse_date,
    print_json,
    run_reading_store,
    stderr_progress,
)
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.replay import DayEvents, Replay
    from optterm.model import AlertEvent
    from optterm.store import Store

__all__ = ["parse_at", "replay"]


def replay(
    ctx: typer.Context,
    day: Annotated[
        str, typer.Argument(metavar="DAY", help="The exchange day to replay, e.g. 2026-11-17.")
    ],
    symbols: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SYMBOL]...", help="Only these underlyings (default: all stored that day)."
        ),
    ] = None,
    expiry: Annotated[
        str | None, typer.Option("--expiry", "-e", help="Only this expiry (YYYY-MM-DD).")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            metavar="X",
            help="Play at X times the session's pace, e.g. 60 (default: as fast as possible).",
        ),
    ] = None,
    rules: Annotated[
        bool,
        typer.Option(
            "--rules", help="Also list what the current alert rules would have fired (never sent)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay a stored day through the engine and print the signals (and with --rules the alert
    firings) it would have produced, with their times and values."""
    wanted_day = parse_date(day, "DAY")
    only = None if expiry is None else parse_date(expiry, "--expiry")
    if speed is not None and not 0 < speed <= 1e6:
        raise UsageProblem(f"--speed {speed:g} must be above 0 (e.g. 60: an hour in a minute).")
    settings = load_settings(ctx)

    async def go(store: Store) -> dict[str, Any]:
        from optterm.engine.replay import Replay, ReplayProblem

        try:
            r = await Replay.open(store, settings, wanted_day, symbols, only, rules=rules)
        except ReplayProblem as exc:
            raise UsageProblem(str(exc)) from None
        bar, task = stderr_progress("replaying", len(r))
        try:
            events = await r.run(speed, on_tick=lambda _: bar.advance(task))
        finally:
            bar.stop()
        return _document(r, events, rules)

    doc = run_reading_store(settings, go)
    if as_json:
        print_json(doc)
    else:
        _print(doc, settings)


def parse_at(text: str, settings: Settings, flag: str = "--at") -> datetime:
    """A date and time typed on the command line, in exchange time unless it names an offset."""
    from optterm.infra.clip import quoted

    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageProblem(
            f"{flag} {quoted(text)} is not a date and time; write it as YYYY-MM-DDTHH:MM in "
            "exchange time, e.g. 2026-11-17T10:45."
        ) from None
    return at.replace(tzinfo=settings.market.tz) if at.tzinfo is None else at


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def alert_to_dict(e: AlertEvent) -> dict[str, Any]:
    from optterm.present.alerts import event_value_text

    return {
        "rule_id": e.rule_id,
        "symbol": e.symbol,
        "kind": str(e.kind),
        "fired_at": _iso(e.fired_at),
        "value": None if e.value != e.value else e.value,
        "value_text": event_value_text(e),
        "threshold": e.threshold,
        "title": e.title,
        "body": e.body,
        "provider": e.provider,
        "feed": str(e.feed),
    }


def _document(r: Replay, events: DayEvents, rules: bool) -> dict[str, Any]:
    from optterm.present.patterns import signal_to_dict

    chains = []
    for (symbol, expiry), w in sorted(r.windows.items()):
        t = w.times
        chains.append(
            {
                "symbol": symbol,
                "expiry": expiry.isoformat(),
                "snapshots": len(t),
                "providers": sorted(set(t.providers)),
                "first": _iso(datetime.fromtimestamp(t.ts[0] / 1e6, UTC)),
                "last": _iso(datetime.fromtimestamp(t.ts[-1] / 1e6, UTC)),
            }
        )
    return {
        "day": r.day.isoformat(),
        "replay": True,
        "chains": chains,
        "ticks": events.ticks,
        "signals": [signal_to_dict(s) for s in events.signals],
        "alerts": [alert_to_dict(a) for a in events.alerts] if rules else None,
    }


def _print(doc: dict[str, Any], settings: Settings) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from optterm.present.patterns import confidence_bar

    tz = settings.market.tz

    def clock(iso: str) -> str:
        return datetime.fromisoformat(iso).astimezone(tz).strftime("%H:%M:%S")

    zone = datetime.fromisoformat(doc["chains"][0]["first"]).astimezone(tz).tzname() or ""
    console = Console()
    console.print(f"REPLAY of {doc['day']} ({zone}), {doc['ticks']} ticks:", highlight=False)
    for c in doc["chains"]:
        console.print(
            f"  {escape(c['symbol'])} {c['expiry']}: {c['snapshots']} snapshots "
            f"{clock(c['first'])}–{clock(c['last'])} from {', '.join(c['providers'])}",
            highlight=False,
        )
    signals = doc["signals"]
    if signals:
        table = Table(
            "Time", "Chain", "Kind", "Direction", "Confidence", "Strikes", "Summary",
            title=f"Signals ({len(signals)})", title_justify="left",
        )  # fmt: skip
        for s in signals:
            table.add_row(
                clock(s["first_seen"]),
                f"{escape(s['symbol'])} {s['expiry']}",
                s["kind"],
                s["direction"],
                confidence_bar(s["confidence"]),
                ", ".join(f"{k:g}" for k in s["strikes"]),
                escape(s["summary"]),
            )
        console.print(table)
    else:
        console.print("No signals.")
    alerts = doc["alerts"]
    if alerts is None:
        console.print("Add --rules to see what the current alert rules would have fired.")
    elif alerts:
        table = Table(
            "Time", "Rule", "Symbol", "Value", "Threshold", "Alert",
            title=f"Alert firings the current rules would have produced ({len(alerts)}, "
            "never sent)",
            title_justify="left",
        )  # fmt: skip
        for a in alerts:
            table.add_row(
                clock(a["fired_at"]),
                f"#{a['rule_id']}",
                escape(a["symbol"]),
                a["value_text"],
                f"{a['threshold']:g}",
                escape(a["title"]),
            )
        console.print(table)
    else:
        console.print("The current alert rules would not have fired.")


def stored_expiry(r: Replay, symbol: str, arg: str | None) -> date:
    """The expiry `--expiry` names among those stored that day (a date, or 1 for the nearest,
    2 the next…); without it the nearest one not expired that day."""
    stored = sorted(e for s, e in r.windows if s == symbol)
    listed = ", ".join(e.isoformat() for e in stored)
    if arg is None:
        live = [e for e in stored if e >= r.day]
        return (live or stored)[0]
    if arg.isdigit():
        n = int(arg)
        if not 1 <= n <= len(stored):
            raise UsageProblem(
                f"--expiry {n}: {symbol} has {len(stored)} expiries stored on "
                f"{r.day.isoformat()} ({listed}); use 1 to {len(stored)} or a date."
            )
        return stored[n - 1]
    expiry = parse_date(arg, "--expiry")
    if expiry not in stored:
        raise UsageProblem(
            f"{symbol} has no expiry {expiry.isoformat()} stored on {r.day.isoformat()}; "
            f"stored: {listed}."
        )
    return expiry
