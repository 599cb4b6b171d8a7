"""The `optterm` command. Wiring only: every command imports what it needs when it runs, so
`optterm --help` stays fast and commands that do not open the TUI never import Textual."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from optterm import __version__
from optterm.cli.errors import UsageProblem
from optterm.engine.compose import CliOptions

app = typer.Typer(
    name="optterm",
    help="Options-intelligence terminal for F&O traders. With no command, opens the TUI.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
history_app = typer.Typer(help="Inspect and export the stored history.", no_args_is_help=True)
app.add_typer(history_app, name="history")


def _creds_app() -> typer.Typer:
    from optterm.cli.creds import creds_app

    return creds_app


app.add_typer(_creds_app(), name="creds")


def _alerts_apps() -> tuple[typer.Typer, typer.Typer]:
    from optterm.cli.alerts import alerts_app, notify_app

    return alerts_app, notify_app


app.add_typer(_alerts_apps()[0], name="alerts")
app.add_typer(_alerts_apps()[1], name="notify")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"optterm {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: OPTTERM_CONFIG or the platform path)."
        ),
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="Simulator scenario (see `optterm scenarios`).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed.")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per real second.")] = None,
    provider: Annotated[
        str | None, typer.Option(help="Use only this provider (angelone, nse, simulator).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    opts = CliOptions(config=config)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SCENARIO", "--scenario", scenario)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SEED", "--seed", seed)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SPEED", "--speed", speed)
    opts.set("OPTTERM_PROVIDERS_ORDER", "--provider", provider)
    opts.set("OPTTERM_LOG_LEVEL", "--log-level", log_level)
    ctx.obj = opts
    if ctx.invoked_subcommand is None:
        from optterm.app import run_tui

        raise typer.Exit(run_tui(ctx.obj))


def _opts(ctx: typer.Context) -> CliOptions:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliOptions) else CliOptions()


def _parse_date(value: str, flag: str) -> date:
    for parse in (date.fromisoformat, lambda v: datetime.strptime(v, "%d-%b-%Y").date()):
        try:
            return parse(value)
        except ValueError:
            continue
    raise UsageProblem(
        f"{flag} {value!r} is not a date; write it as YYYY-MM-DD (e.g. 2026-11-24) "
        "or DD-Mon-YYYY (e.g. 24-Nov-2026)."
    )


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@app.command()
def chain(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Underlying, e.g. NIFTY.")],
    expiry: Annotated[
        str | None,
        typer.Option(
            "--expiry", "-e", help="YYYY-MM-DD, DD-Mon-YYYY, or 1 for the nearest, 2 the next…"
        ),
    ] = None,
    strikes: Annotated[
        int, typer.Option("--strikes", "-n", min=1, max=300, help="Strikes each side of ATM.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    greeks: Annotated[
        bool, typer.Option("--greeks", "-g", help="Add delta, gamma, theta/day and vega columns.")
    ] = False,
) -> None:
    """Fetch one option chain now and print it with IV, Greeks and the chain's metrics
    (CE | strike | PE, ATM marked, MP = max pain)."""
    if as_json and as_csv:
        raise UsageProblem("--json and --csv cannot be used together; pick one.")
    settings = _load(ctx)
    snap = asyncio.run(_fetch_chain(settings, symbol.upper(), expiry, strikes))
    if as_csv:
        from optterm.present.chain import write_csv

        write_csv(sys.stdout, [snap])
        return
    from optterm.engine.analytics.chain import AnalyticsParams, enrich

    enriched = enrich(snap, params=AnalyticsParams.from_settings(settings)) if len(snap) else None
    if as_json:
        from optterm.present.chain import snapshot_to_dict

        _print_json(snapshot_to_dict(snap, enriched=enriched))
    else:
        from rich.console import Console

        from optterm.present.chain import chain_table, metrics_lines

        console = Console()
        console.print(chain_table(snap, enriched=enriched, greeks=greeks))
        if enriched is not None:
            for line in metrics_lines(enriched.metrics):
                console.print(line, highlight=False)


async def _fetch_chain(settings: Any, symbol: str, expiry_arg: str | None, strikes: int):
    from optterm.providers.factory import build_provider

    provider = build_provider(settings)
    try:
        await provider.underlying(symbol)
        expiries = await provider.list_expiries(symbol)
        if not expiries:
            raise UsageProblem(f"{symbol} has no listed expiries at {provider.name}.")
        listed = ", ".join(e.isoformat() for e in expiries)
        if expiry_arg is None:
            expiry = expiries[0]
        elif expiry_arg.isdigit():
            n = int(expiry_arg)
            if not 1 <= n <= len(expiries):
                raise UsageProblem(
                    f"--expiry {n}: {symbol} has {len(expiries)} listed expiries ({listed}); "
                    f"use 1 to {len(expiries)} or a date."
                )
            expiry = expiries[n - 1]
        else:
            expiry = _parse_date(expiry_arg, "--expiry")
            if expiry not in expiries:
                raise UsageProblem(f"{symbol} has no expiry on {expiry}; listed: {listed}.")
        snap = await provider.fetch_chain(symbol, expiry)
        return snap.window(strikes) if len(snap) else snap
    finally:
        await provider.close()


@app.command()
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
    opts = _opts(ctx)
    opts.set("OPTTERM_POLLER_INTERVAL", "--interval", interval)
    opts.set("OPTTERM_LOG_FORMAT", "--log-format", log_format)
    settings = _load(ctx)
    from optterm.cli.serve import serve as run_serve
    from optterm.infra.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    raise typer.Exit(asyncio.run(run_serve(settings, standby=standby)))


@app.command(
    help="Is the daemon healthy? Lease holder and heartbeat, last tick, provider health and "
    "the notification outbox.\n\n"
    "Exit status 0 when healthy, 1 when unhealthy, 2 for usage or configuration errors "
    "(including a store that cannot be opened). Unhealthy when: no optterm serve holds the "
    "store's poller lease (none running, released, or its holder died); the lease heartbeat "
    "is older than 3 poll intervals (at least 10 s); during market hours, the newest stored "
    "snapshot was fetched more than 3 poll intervals (at least 10 s) ago; or a notification "
    "delivery FAILED in the last hour."
)
def status(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    from zoneinfo import ZoneInfo

    from optterm.cli.status import gather_status, render_text

    settings = _load(ctx)
    report = asyncio.run(_with_existing_store(settings, lambda s: gather_status(settings, s)))
    if as_json:
        _print_json(report.doc)
    else:
        for line in render_text(report, ZoneInfo(settings.market.timezone)):
            typer.echo(line)
    raise typer.Exit(report.exit_code)


async def _with_existing_store(settings: Any, fn: Any) -> Any:
    """Like _with_store, but never creates a database: a status check must not make one."""
    from optterm.engine.compose import store_url
    from optterm.store import open_store

    store = await open_store(store_url(settings), create=False)
    try:
        return await fn(store)
    finally:
        await store.close()


@app.command()
def scenarios(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the simulator's scenarios (choose one with --scenario or [providers.simulator])."""
    from optterm.providers.simulator.provider import SCENARIOS

    if as_json:
        _print_json(SCENARIOS)
        return
    width = max(map(len, SCENARIOS))
    for name, text in SCENARIOS.items():
        typer.echo(f"{name:<{width}}  {text}")


@app.command()
def providers(
    ctx: typer.Context,
    probe: Annotated[
        str | None,
        typer.Option("--probe", help="Fetch SYMBOL's nearest chain from each provider now."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each configured provider: breaker, requests, success rate, latency, last error."""
    settings = _load(ctx)
    if probe:
        from optterm.engine.provider_status import probe as run_probe

        rows = asyncio.run(run_probe(settings, probe.upper()))
        if as_json:
            _print_json(rows)
            return
        for r in rows:
            verdict = (
                f"OK  {r['ms']:>7.1f} ms  {r['feed']} {r['expiry']} {r['strikes']} strikes"
                if r["ok"]
                else f"FAIL {r.get('ms', 0):>6.1f} ms  {r.get('error')}"
            )
            typer.echo(f"{r['provider']:<10} {verdict}")
        raise typer.Exit(0 if any(r["ok"] for r in rows) else 1)

    from optterm.engine.provider_status import status_rows

    rows = asyncio.run(_with_store(settings, lambda store: status_rows(settings, store)))
    if as_json:
        _print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("#", "Provider", "Breaker", "Requests", "Success", "Latency (mean/last)",
                  "Last error", title="Providers (today, as recorded by the poller)")  # fmt: skip
    for r in rows:
        if not r["available"]:
            table.add_row(str(r["order"]), r["provider"], "unavailable", "", "", "",
                          r["unavailable_reason"])  # fmt: skip
            continue
        rate = "" if r["success_rate"] is None else f"{r['success_rate']:.0%}"
        lat = (
            ""
            if r["latency_ms_mean"] is None
            else f"{r['latency_ms_mean']:.0f} / {r['latency_ms_last']:.0f} ms"
        )
        err = r["last_error"] or ""
        if r["last_error_at"]:
            err = f"{err} ({r['last_error_at'][11:19]} UTC)"
        table.add_row(str(r["order"]), r["provider"], r["breaker"] or "no data yet",
                      str(r["requests"]), rate, lat, err)  # fmt: skip
    Console().print(table)


@app.command()
def master(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Download even if today's is cached.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Download Angel One's instrument master now (with progress); keeps the last good copy."""
    from optterm.providers.factory import angel_master

    store = angel_master(_load(ctx))
    index = asyncio.run(_download_master(store, force))
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
        _print_json(doc)
        return
    typer.echo(f"{doc['rows']:,} rows, {doc['options']:,} options, in {doc['cache']}")
    if doc["last_error"]:
        typer.echo(f"the download failed, using the last good copy: {doc['last_error']}", err=True)


async def _download_master(store: Any, force: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    console = Console(file=sys.stderr)
    columns = ("master", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    quiet = not console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("download", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return await store.ensure(progress=progress, force=force)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Which secret store is in use, what is missing, and which providers can be built."""
    from optterm.cli.creds import doctor_report

    lines, ok = doctor_report(_load(ctx))
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if ok else 1)


@app.command()
def locate(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print where optterm reads its config and keeps its data and logs."""
    from optterm.engine.compose import store_url
    from optterm.infra import paths

    opts = _opts(ctx)
    settings = _load(ctx)
    import os

    config_file = opts.config or os.environ.get("OPTTERM_CONFIG") or paths.config_file()
    doc = {
        "config": str(config_file),
        "config_exists": Path(config_file).exists(),
        "data": str(paths.data_dir()),
        "logs": str(paths.log_dir()),
        "store": _redact_url(store_url(settings)),
    }
    if as_json:
        _print_json(doc)
        return
    for key, value in doc.items():
        if key != "config_exists":
            note = "" if key != "config" or doc["config_exists"] else "  (not created; defaults)"
            typer.echo(f"{key:<7} {value}{note}")


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


@history_app.command("list")
def history_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Stored snapshots per symbol, expiry and day."""
    settings = _load(ctx)
    rows = asyncio.run(_with_store(settings, _summary))
    if as_json:
        _print_json(rows)
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


async def _summary(store: Any) -> list[dict[str, Any]]:
    from optterm.cli.history import summary_rows

    return await summary_rows(store)


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
    settings = _load(ctx)
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from optterm.cli.history import day_bounds

    tz = ZoneInfo(settings.market.timezone)
    first = _parse_date(day or since, "--date" if day else "--from") if (day or since) else None
    last = _parse_date(day or until, "--date" if day else "--to") if (day or until) else None
    start = day_bounds(first, tz)[0] if first else datetime(1970, 1, 2, tzinfo=tz)
    end = day_bounds(last, tz)[1] if last else datetime(9999, 1, 1, tzinfo=tz) - timedelta(days=2)
    if end <= start:
        raise UsageProblem("--to is before --from; nothing to export.")
    exp = _parse_date(expiry, "--expiry") if expiry else None
    written = asyncio.run(
        _with_store(settings, lambda s: _export(s, symbol.upper(), exp, start, end, fmt, output))
    )
    if written == 0:
        typer.echo(
            f"No stored snapshots for {symbol.upper()} in that range; see `optterm history list`.",
            err=True,
        )


async def _export(store, symbol, expiry, start, end, fmt, output: Path | None) -> int:
    from optterm.cli.history import export

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


@app.command()
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
            help="Also list expired signals seen since a date (YYYY-MM-DD) or a duration "
            "(2h, 30m, 1d). Default: today's session.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pattern signals from the store: the active ones, then recent expired ones."""
    import re
    from datetime import UTC, time, timedelta
    from zoneinfo import ZoneInfo

    from optterm.model import PatternKind

    valid = [k.value for k in PatternKind]
    kinds = []
    for k in kind or ():
        name = k.strip().upper().replace("-", "_")
        if name not in valid:
            raise UsageProblem(
                f"--kind {k!r} is not a pattern kind; choose from {', '.join(valid)}."
            )
        kinds.append(name)
    settings = _load(ctx)
    tz = ZoneInfo(settings.market.timezone)
    now = datetime.now(UTC)
    text = (since or "").strip().lower().replace(" ", "")
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    try:
        if since is None:
            start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        elif re.fullmatch(r"(\d+[smhd])+", text):
            spans = [timedelta(**{units[u]: int(n)}) for n, u in re.findall(r"(\d+)(\w)", text)]
            start = now - sum(spans, timedelta())
        else:
            start = datetime.combine(_parse_date(since.strip(), "--since"), time(0), tzinfo=tz)
    except (UsageProblem, OverflowError):
        raise UsageProblem(
            f"--since {since!r} is neither a date nor a duration; write a date as YYYY-MM-DD "
            "(e.g. 2026-11-24) or a duration such as 30m, 2h, 1h30m or 3d."
        ) from None
    sym = symbol.strip().upper() if symbol else None
    rows = asyncio.run(
        _with_store(settings, lambda s: _patterns(s, sym, kinds or None, start, now, limit))
    )
    if as_json:
        _print_json(rows)
        return
    if not rows:
        scope = " ".join(filter(None, [sym, ", ".join(kinds)])) or "pattern"
        typer.echo(
            f"No {scope} signals active now or seen since {start.astimezone(tz):%d-%b %H:%M %Z}. "
            "Signals are recorded by `optterm serve` or the TUI while they run."
        )
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    today = now.astimezone(tz).date()
    zone = now.astimezone(tz).tzname() or settings.market.timezone
    feeds = {"SIMULATED": "[bold yellow]SIMULATED[/]", "DELAYED": "[yellow]DELAYED[/]"}
    colours = {"bullish": "green", "bearish": "red"}
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
        cols = ("Time", "Symbol", "Expiry", "Kind", "Direction", "Strength", "Confidence",
                "Strikes", "Summary", "Source")  # fmt: skip
        table = Table(*cols, title=title, title_justify="left")
        for r in part:
            seen = datetime.fromisoformat(r["last_seen"]).astimezone(tz)
            when = f"{seen:%H:%M:%S} {zone}"
            if seen.date() != today:
                when = f"{seen:%d-%b} {when}"
            conf = max(0, min(100, int(r["confidence"])))
            filled = (conf + 5) // 10
            age = int(r["age_seconds"])
            age_text = (
                f"{age}s" if age < 60
                else f"{age // 60}m" if age < 3600
                else f"{age // 3600}h{age % 3600 // 60:02d}m" if age < 86_400
                else f"{age // 86_400}d"
            )  # fmt: skip
            colour = colours.get(r["direction"], "dim")
            feed = feeds.get(r["feed"], r["feed"])
            table.add_row(
                when,
                escape(r["symbol"]),
                r["expiry"],
                r["kind"],
                f"[{colour}]{r['direction']}[/]",
                r["strength"].replace("_", " ").lower(),
                f"{conf:>3} {'█' * filled}{'░' * (10 - filled)}",
                ", ".join(f"{k:g}" for k in r["strikes"]),
                escape(r["summary"]),
                f"{escape(r['provider'] or '?')} {feed} · age {age_text}",
            )
        console.print(table)


async def _patterns(
    store: Any, symbol: str | None, kinds: Any, since: datetime, now: datetime, limit: int
) -> list[dict[str, Any]]:
    active = await store.analytics.load_signals(symbol, kinds, active_at=now, limit=limit)
    keys = {s.key for s in active}
    seen = await store.analytics.load_signals(symbol, kinds, since=since, limit=limit + len(active))
    expired = [s for s in seen if s.key not in keys][: limit - len(active)]
    return [
        {
            "key": s.key,
            "active": s.key in keys,
            "kind": str(s.kind),
            "symbol": s.symbol,
            "expiry": s.expiry.isoformat(),
            "direction": str(s.direction),
            "strength": str(s.strength),
            "confidence": s.confidence,
            "strikes": list(s.strikes),
            "summary": s.summary,
            "evidence": [[n, None if v != v else v] for n, v in s.evidence],  # NaN -> null
            "first_seen": s.first_seen.isoformat(),
            "last_seen": s.last_seen.isoformat(),
            "expires_at": s.expires_at.isoformat(),
            "updates": s.updates,
            "provider": s.provider,
            "feed": str(s.feed),
            "age_seconds": round((now - s.first_seen).total_seconds(), 3),
        }
        for s in (*active, *expired)
    ]


@app.command()
def jobs(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only this job: eod, retention or checkpoint."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent runs of the daemon's scheduled jobs (end-of-day summary, retention, checkpoint)."""
    from zoneinfo import ZoneInfo

    settings = _load(ctx)
    job = name.strip().lower() if name else None
    runs = asyncio.run(_with_store(settings, lambda s: s.jobs.runs(job, limit)))
    if as_json:
        _print_json([r.to_dict() for r in runs])
        return
    if not runs:
        what = f"{job!r} job" if job else "scheduled job"
        typer.echo(f"No {what} runs recorded yet. `optterm serve` runs them and records each run.")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    tz = ZoneInfo(settings.market.timezone)
    colours = {"ok": "green", "failed": "bold red", "skipped": "yellow", "running": "cyan"}
    zone = datetime.now(tz).tzname() or settings.market.timezone
    table = Table("Job", f"Started ({zone})", "Duration", "Outcome", "Detail",
                  title="Scheduled job runs, newest first", title_justify="left")  # fmt: skip
    for r in runs:
        ms = r.duration_ms
        took = (
            "" if ms is None
            else "<1 ms" if ms < 1
            else f"{ms:.0f} ms" if ms < 10_000
            else f"{ms / 1000:.1f} s"
        )  # fmt: skip
        colour = colours.get(r.outcome, "")
        table.add_row(
            escape(r.name),
            f"{r.started_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
            took,
            f"[{colour}]{r.outcome}[/]" if colour else escape(r.outcome),
            escape(r.detail),
        )
    Console().print(table)


async def _with_store(settings: Any, fn: Any) -> Any:
    from optterm.engine.compose import open_configured_store

    store = await open_configured_store(settings)
    try:
        return await fn(store)
    finally:
        await store.close()


def _load(ctx: typer.Context) -> Any:
    from optterm.engine.compose import load

    return load(_opts(ctx))


def main() -> None:
    """Entry point: known problems become one paragraph on stderr and an exit code, no traceback."""
    code = 0
    try:
        app(prog_name="optterm")
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        code, message = _explain(exc)
        if message is None:
            raise
        sys.stderr.write(f"optterm: {message}\n")
    sys.exit(code)


def _explain(exc: Exception) -> tuple[int, str | None]:
    """(exit code, message) for errors a user can fix; (1, None) re-raises a genuine bug."""
    from optterm.config import ConfigError
    from optterm.providers.base import ProviderError, UnknownSymbol
    from optterm.providers.factory import ProviderUnavailable
    from optterm.store import StoreError

    if isinstance(exc, ConfigError | StoreError | UsageProblem | ProviderUnavailable):
        return 2, str(exc)
    if isinstance(exc, UnknownSymbol):
        return 2, str(exc)
    if isinstance(exc, ProviderError):
        return 1, f"market data unavailable: {exc}"
    return 1, None


if __name__ == "__main__":
    main()
