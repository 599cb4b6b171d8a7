"""`optterm scan "…"` (run a scan now) and `optterm scans add|list|rm|enable|disable` (saved scans).

The scan runs over one sweep of the live F&O universe when Angel One comes first in the
provider order (engine/scanner/sweep.py), else over the simulator's universe, labelled
SIMULATED (docs/scanner.md, "Sources"); the language and its errors are the engine's
(engine/scanner/grammar.py), shown as one line with exit 2.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import replace
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import (
    load_settings,
    print_json,
    run_reading_store,
    run_with_existing_store,
    run_with_store,
)
from optterm.cli.errors import UsageProblem
from optterm.infra.clip import quoted

if TYPE_CHECKING:
    from optterm.engine.scanner.run import ScanRun

__all__ = ["scan", "scans_app"]

scans_app = typer.Typer(
    help="Saved scans: add, list, remove, enable, disable, run, log.", no_args_is_help=True
)


def scan(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(
            metavar="SCAN",
            help='The scan, e.g. "scan fno where fut_oi_chg% > 10 sort fut_oi_chg% desc '
            "limit 20\", a preset (long_buildup) or a saved scan's name.",
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="HH:MM", help="The session's moment (exchange time). Default: now."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    day: Annotated[
        str | None,
        typer.Option(
            "--day",
            metavar="DAY",
            help="Play the scan over a stored day (the watched chains recorded that day, "
            "through the replay) and list when each name entered and left.",
        ),
    ] = None,
) -> None:
    """Run a scan over the F&O universe now and list the matches, ranked."""
    from optterm.cli.scan_live import live_run
    from optterm.engine.scanner.grammar import ScanError, parse_scan
    from optterm.engine.scanner.run import (
        SessionMomentError,
        run_on_simulator,
        scan_calendar,
        session_moment,
    )
    from optterm.engine.scanner.sweep import LiveUnavailable
    from optterm.providers.base import ProviderError
    from optterm.providers.factory import market_calendar

    if as_json and as_csv:
        raise UsageProblem("choose one of --json and --csv.")
    if day is not None and at is not None:
        raise UsageProblem("choose one of --day and --at.")
    settings = load_settings(ctx)
    text = _saved_text(settings, text)
    calendar = market_calendar(settings)
    if day is not None:
        _scan_day(settings, text, day, calendar, as_json=as_json, as_csv=as_csv)
        return
    order = list(settings.providers.order)
    notes: tuple[str, ...] = ()
    if order[0] == "angelone":
        if at is not None:
            raise UsageProblem(
                "--at plays the simulated session, but angelone comes first in providers.order: "
                "the scan reads the live universe now; drop --at (or use --day DAY for a "
                "stored day)"
            )
        _check(text)  # before any request: a typo is said at once
        try:
            run = live_run(settings, text, calendar)
        except LiveUnavailable as exc:
            if "simulator" not in order:
                raise ProviderError("angelone", f"live universe unavailable: {exc}") from None
            notes = (f"live universe unavailable ({exc}); scanning the simulator instead "
                     "(next in providers.order): SIMULATED data",)  # fmt: skip
            if as_json or as_csv:  # the table prints it under the results itself
                typer.echo(notes[0], err=True)
        else:
            _print_run(run, calendar, as_json=as_json, as_csv=as_csv)
            return
    try:
        # The scan's session: NSE F&O's, MCX's (`scan mcx`) or both (`scan all`).
        session = scan_calendar(calendar, [parse_scan(text)])
        moment = session_moment(session, datetime.now(UTC), _clock(at))
        run = run_on_simulator(
            text, seed=settings.providers.simulator.seed, moment=moment, calendar=calendar
        )
    except (ScanError, SessionMomentError) as exc:
        raise UsageProblem(str(exc)) from None
    _print_run(replace(run, notes=notes), calendar, as_json=as_json, as_csv=as_csv)


def _print_run(run: ScanRun, calendar: Any, *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        print_json(_doc(run, calendar.tz))
    elif as_csv:
        _print_csv(run)
    else:
        _print_table(run, calendar.tz)


def _scan_day(
    settings: Any, text: str, day: str, calendar: Any, *, as_json: bool, as_csv: bool
) -> None:
    from optterm.cli.context import parse_date
    from optterm.engine.replay import ReplayProblem
    from optterm.engine.scanner.grammar import ScanError, parse_scan
    from optterm.engine.scanner.stored import scan_stored_day

    wanted = parse_date(day, "--day")
    try:
        parse_scan(text)  # before the store is opened: a typo is said at once
    except ScanError as exc:
        raise UsageProblem(str(exc)) from None

    async def go(store: Any) -> Any:
        try:
            return await scan_stored_day(store, settings, wanted, text, calendar)
        except ReplayProblem as exc:
            raise UsageProblem(str(exc)) from None

    played = run_reading_store(settings, go)
    tz = calendar.tz
    spans = played.spans()
    if as_json:
        print_json(
            {
                "scan": played.scan.text,
                "day": played.day.isoformat(),
                "source": "store",
                "universe": list(played.names),
                "ticks": played.ticks,
                "unavailable": played.unavailable,
                "entries": [
                    {
                        "symbol": s,
                        "entered": a.isoformat(),
                        "left": None if b is None else b.isoformat(),
                    }
                    for s, a, b in spans
                ],
            }
        )
        return
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["symbol", "entered", "left"])
        for s, a, b in spans:
            out.writerow([s, a.isoformat(), "" if b is None else b.isoformat()])
        return
    head = (
        f"{played.day:%d-%b-%Y} from the store ({played.ticks} ticks of {', '.join(played.names)})"
    )
    if not spans:
        typer.echo(f"No name entered the scan on {head}.")
    else:
        typer.echo(f"Entered and left the scan on {head}:")
        for s, a, b in spans:
            left = (
                "still inside at the last tick"
                if b is None
                else f"left {b.astimezone(tz):%H:%M:%S}"
            )
            typer.echo(f"  {s:<12} entered {a.astimezone(tz):%H:%M:%S}, {left}")
    for field, reason in played.unavailable.items():
        typer.echo(f"{field}: n/a ({reason})")


def _clock(at: str | None) -> time | None:
    if at is None:
        return None
    try:
        return time.fromisoformat(at.strip())
    except ValueError:
        raise UsageProblem(
            f"--at {quoted(at)} is not a time; write it as HH:MM in exchange time, e.g. 11:30."
        ) from None


def _saved_text(settings: Any, text: str) -> str:
    """A saved scan's text when `text` is one's name (and not a preset or a field)."""
    from optterm.engine.scanner.fields import FIELD_INDEX
    from optterm.engine.scanner.grammar import UNIVERSES
    from optterm.engine.scanner.presets import PRESETS
    from optterm.store.scans import NAME_PATTERN, UnknownScan

    word = text.strip()
    if not NAME_PATTERN.match(word) or word.lower() in PRESETS or word.lower() in FIELD_INDEX:
        return text
    if word.lower() in ("scan", *UNIVERSES):
        return text

    async def lookup(store: Any) -> str:
        try:
            return str((await store.scans.get(word)).text)
        except UnknownScan:
            return text

    from optterm.store import StoreError

    try:  # no database yet: no saved scans, and a scan run must not create one
        return run_with_existing_store(settings, lookup)
    except StoreError:
        return text


def _ages(run: ScanRun) -> dict[str, float | None]:
    from optterm.present.scan import column_ages

    return {c: None if a is None else round(a, 1) for c, a in column_ages(run, run.at).items()}


def _doc(run: ScanRun, tz: Any) -> dict[str, Any]:
    from optterm.present.scan import feed_word

    return {
        "scan": run.scan.text,
        "at": run.at.isoformat(),
        "source": run.source,
        "feed": feed_word(run.source),
        "universe": len(run.names),
        "matched": run.result.count,
        "columns": list(run.columns),
        # Each column's age in seconds at `at` (null: n/a, the reason under "unavailable").
        "ages": _ages(run),
        "unavailable": dict(run.result.unavailable),
        # A segment closed at `at` (`scan all` at 21:00: NSE F&O): its names show their close.
        "closed": [{"segment": seg, "session": when} for seg, when in run.closed],
        "notes": list(run.notes),
        "rows": [
            row | {"session": "closed" if row["symbol"] in run.closed_names else "open"}
            for row in run.rows()
        ],
    }


def _print_csv(run: ScanRun) -> None:
    from optterm.present.scan import feed_word

    # Every row says where it came from and how old each column is (seconds at the run's time).
    ages = _ages(run)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["rank", "symbol", *run.columns, "source", "feed",
                  *(f"{c}_age_s" for c in run.columns)])  # fmt: skip
    tail = [run.source, feed_word(run.source), *("" if a is None else a for a in ages.values())]
    for row in run.rows():
        out.writerow([*("" if v is None else v for v in row.values()), *tail])


def _print_table(run: ScanRun, tz: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from optterm.present.scan import ages_line, cell_text, source_label, tiers_line

    console = Console()
    when = run.at.astimezone(tz)
    head = (
        f"{run.result.count} of {len(run.names)} underlyings match at {when:%d-%b %H:%M %Z} "
        f"({source_label(run.source)})"
    )
    rows = run.rows()
    if not rows:
        console.print(
            escape(f"No underlying matches. {head[head.index('match') + 6 :]}"), soft_wrap=True
        )
    else:
        console.print(escape(head), soft_wrap=True)  # one line, never the table's width
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("Symbol")
        for c in run.columns:
            text = any(isinstance(row[c], str) for row in rows)
            table.add_column(escape(c), justify="left" if text else "right")
        for row in rows:
            # A closed segment's name stands at its close: say so beside it, never as fresh.
            closed = " (closed)" if row["symbol"] in run.closed_names else ""
            cells = [str(row["rank"]), escape(row["symbol"] + closed)]
            cells += [cell_text(row[c], c) for c in run.columns]
            table.add_row(*cells)
        console.print(table)
    for segment, closed_text in run.closed:
        console.print(
            escape(f"{segment}: {closed_text}; its names show their last values, not live ones."),
            soft_wrap=True,
        )
    for field, reason in run.result.unavailable.items():
        console.print(escape(f"{field}: n/a ({reason})"))
    # Ages as of the run (the sweep just made, or the simulated moment).
    console.print(escape(f"{source_label(run.source)}: {tiers_line(run, run.at)}"), soft_wrap=True)
    ages = ages_line(run, run.at)
    if ages:
        console.print(escape(ages), soft_wrap=True)
    for note in run.notes:
        console.print(escape(note), soft_wrap=True)


# --- saved scans -------------------------------------------------------------------------------


def _check(text: str) -> None:
    from optterm.engine.scanner.grammar import ScanError, parse_scan

    try:
        parse_scan(text)
    except ScanError as exc:
        raise UsageProblem(str(exc)) from None


def _name(name: str) -> str:
    from optterm.store.scans import check_scan_name

    try:
        return check_scan_name(name)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


@scans_app.command("add")
def scans_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the scan, e.g. oi_spurts.")],
    text: Annotated[str, typer.Argument(metavar="SCAN", help="The scan (docs/scanner.md).")],
    disabled: Annotated[bool, typer.Option("--disabled", help="Save it disabled.")] = False,
    notify: Annotated[
        list[str] | None,
        typer.Option(
            "--notify",
            metavar="CHANNEL",
            help="Alert each name that enters the scan: app or tag:NAME (\\[notify] channels). "
            "Repeat for several.",
        ),
    ] = None,
    cooldown: Annotated[
        str,
        typer.Option(
            "--cooldown",
            metavar="DURATION",
            help="The same name entering again within this is not alerted again (e.g. 30m, 2h, 0).",
        ),
    ] = "30m",
) -> None:
    """Save a scan under a name (checked before it is saved)."""
    from optterm.store.scans import DuplicateScan

    _name(name)
    _check(text)
    settings = load_settings(ctx)
    channels = _channels(settings, notify or [])
    cooldown_s = _cooldown(cooldown)

    async def add(store: Any) -> Any:
        try:
            return await store.scans.add(name, text, datetime.now(UTC), enabled=not disabled,
                                         channels=channels, cooldown_s=cooldown_s)  # fmt: skip
        except DuplicateScan as exc:
            raise UsageProblem(str(exc)) from None

    saved = run_with_store(settings, add)
    state = "enabled" if saved.enabled else "disabled"
    typer.echo(f"Saved scan {saved.name} ({state}): {saved.text}")
    if saved.channels:
        typer.echo(f"  alerts each entry to: {', '.join(c.label for c in saved.channels)} "
                   f"(again for the same name after {cooldown.strip()})")  # fmt: skip


def _channels(settings: Any, specs: list[str]) -> list[Any]:
    """app or tag:NAME, checked against the config; a URL is refused (a saved scan keeps no
    secret: the URL goes in [notify] channels and the scan names its tag)."""
    from optterm.engine.notify.channels import ChannelError, parse_channel_spec

    out = []
    for spec in specs:
        spec = spec.strip()
        if "://" in spec:
            raise UsageProblem(
                "--notify takes app or tag:NAME for a scan; put the URL in the config under "
                '[notify] channels as NAME = "URL" and pass --notify tag:NAME'
            )
        if spec.lower() != "app" and not spec.startswith("tag:"):
            raise UsageProblem(f"--notify {quoted(spec)} is not a channel; use app or tag:NAME")
        try:
            out.append(parse_channel_spec(spec, settings, None))
        except ChannelError as exc:
            raise UsageProblem(str(exc)) from None
    return out


def _cooldown(text: str) -> float:
    from optterm.engine.alerts.rules import parse_duration

    seconds = 0.0 if text.strip() == "0" else parse_duration(text)
    if seconds is None or seconds < 0:
        raise UsageProblem(
            f"--cooldown {quoted(text)} is not a duration; write it as 30m, 2h or 0 (every entry)"
        )
    return seconds


@scans_app.command("list")
def scans_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the saved scans."""
    settings = load_settings(ctx)
    saved = run_reading_store(settings, lambda s: s.scans.saved())
    if as_json:
        print_json([s.to_dict() for s in saved])
        return
    if not saved:
        typer.echo('No saved scans. Add one with `optterm scans add NAME "SCAN"`.')
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("Name", "State", "Scan", "Alerts")
    for s in saved:
        alerts = ", ".join(c.label for c in s.channels) if s.channels else "[dim]none[/]"
        table.add_row(escape(s.name), "enabled" if s.enabled else "[dim]disabled[/]",
                      escape(s.text), alerts if not s.channels else escape(alerts))  # fmt: skip
    Console().print(table)


def _change(ctx: typer.Context, name: str, verb: str) -> None:
    from optterm.store.scans import UnknownScan

    settings = load_settings(ctx)

    async def change(store: Any) -> bool:
        try:
            if verb == "removed":
                await store.scans.remove(name)
                return True
            return bool(await store.scans.set_enabled(name, verb == "enabled", datetime.now(UTC)))
        except UnknownScan as exc:
            raise UsageProblem(str(exc)) from None

    changed = run_with_store(settings, change)
    typer.echo(f"Scan {name} {verb}." if changed else f"Scan {name} was already {verb}.")


@scans_app.command("rm")
def scans_rm(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The scan.")]) -> None:
    """Remove a saved scan (what it found stays in the history)."""
    _change(ctx, name, "removed")


@scans_app.command("enable")
def scans_enable(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The scan.")]
) -> None:
    """Enable a saved scan."""
    _change(ctx, name, "enabled")


@scans_app.command("disable")
def scans_disable(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The scan.")]
) -> None:
    """Disable a saved scan."""
    _change(ctx, name, "disabled")


@scans_app.command("run")
def scans_run(
    ctx: typer.Context,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="HH:MM", help="Play up to this moment (exchange time). Default: now."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Play today's simulated session through the enabled saved scans and record their runs
    and enter/leave log."""
    from optterm.engine.scanner.grammar import ScanError, parse_scan
    from optterm.engine.scanner.run import (
        SessionMomentError,
        play_on_simulator,
        scan_calendar,
        session_moment,
    )
    from optterm.providers.factory import market_calendar

    settings = load_settings(ctx)
    calendar = market_calendar(settings)
    clock = _clock(at)

    async def play(store: Any) -> Any:
        saved = await store.scans.saved(enabled_only=True)
        if not saved:
            raise UsageProblem(
                'no enabled saved scans; add one with `optterm scans add NAME "SCAN"`.'
            )
        try:
            # The scans' session: NSE F&O's, MCX's, or both when one scans MCX and one F&O.
            sessions = scan_calendar(calendar, [parse_scan(s.text) for s in saved])
            moment = session_moment(sessions, datetime.now(UTC), clock)
        except (ScanError, SessionMomentError) as exc:
            raise UsageProblem(str(exc)) from None
        try:
            session = play_on_simulator(
                {s.name: s.text for s in saved},
                seed=settings.providers.simulator.seed,
                moment=moment,
                calendar=calendar,
            )
        except ScanError as exc:
            raise UsageProblem(str(exc)) from None
        await store.scans.replace_session(
            [s.name for s in saved], session.opened, session.runs, session.events
        )
        return session

    session = run_with_store(settings, play)
    if as_json:
        print_json(
            {
                "at": session.at.isoformat(),
                "universe": session.universe,
                "members": {k: list(v) for k, v in session.members.items()},
                "events": [e.to_dict() for e in session.events],
            }
        )
        return
    when = session.at.astimezone(calendar.tz)
    typer.echo(f"Played the simulated session to {when:%d-%b %H:%M %Z} ({session.universe} names):")
    for name, members in session.members.items():
        entries = sum(1 for e in session.events if e.scan == name and e.kind == "enter")
        inside = ", ".join(members) if members else "none"
        typer.echo(f"  {name}: {entries} entries; inside now: {inside}")


@scans_app.command("log")
def scans_log(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this scan.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The enter/leave log of the saved scans, oldest first."""
    from optterm.providers.factory import market_calendar

    settings = load_settings(ctx)
    tz = market_calendar(settings).tz
    events = run_reading_store(settings, lambda s: s.scans.events(name, limit=limit))
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        typer.echo("No scan has recorded an enter or a leave yet (`optterm scans run` plays one).")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("Time", "Scan", "Symbol", "Event")
    for e in events:
        colour = "green" if e.kind == "enter" else "yellow"
        table.add_row(f"{e.at.astimezone(tz):%d-%b %H:%M:%S}", escape(e.scan), escape(e.symbol),
                      f"[{colour}]{e.kind}[/]")  # fmt: skip
    Console().print(table)
