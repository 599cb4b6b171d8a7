"""`optterm backtest rule "…"` and `optterm backtest patterns`: the product's own signals
replayed over stored history (engine/backtest/signals.py), each firing with the spot move after
5, 15 and 60 minutes, and the eight detectors' hit rates. The store is opened read-only;
nothing is written and nothing is sent. `register` adds both commands to a `backtest` group.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from optterm.cli.context import (
    check_span,
    load_settings,
    parse_date,
    print_json,
    run_reading_store,
    stderr_progress,
)
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from optterm.config import Settings
    from optterm.engine.backtest.signals import Forward, PatternsResult, RuleResult, Source
    from optterm.store import Store

__all__ = ["patterns_document", "register", "rule_document"]

T = TypeVar("T")

_FROM = typer.Option("--from", metavar="DAY", help="First exchange day, e.g. 2026-11-17.")
_TO = typer.Option("--to", metavar="DAY", help="Last exchange day (inclusive).")
_SIM = typer.Option(
    "--allow-simulated", help="Backtest SIMULATED history too (refused without this)."
)


def register(app: typer.Typer) -> None:
    """Add `rule` and `patterns` to the `backtest` group `app`."""
    app.command("rule")(rule)
    app.command("patterns")(patterns)


def rule(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(
            metavar="RULE", help='An alert rule in one line, e.g. "NIFTY pcr crosses below 0.7".'
        ),
    ],
    start: Annotated[str, _FROM],
    end: Annotated[str, _TO],
    allow_simulated: Annotated[bool, _SIM] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row a firing.")] = False,
) -> None:
    """Every firing an alert rule would have made over the stored days, with the spot move
    5, 15 and 60 minutes after each (never sent)."""
    from optterm.engine.alerts.rules import RuleError
    from optterm.engine.backtest.signals import backtest_rule, rule_from_text

    first, last = _span(start, end, as_json, as_csv)
    settings = load_settings(ctx)
    try:
        judged = rule_from_text(text, settings, first)
    except RuleError as exc:
        raise UsageProblem(str(exc)) from None

    result = _run(
        settings,
        lambda store, step, total: backtest_rule(
            store,
            settings,
            judged,
            first,
            last,
            allow_simulated=allow_simulated,
            progress=step,
            on_total=total,
        ),
    )
    doc = rule_document(result)
    if as_json:
        print_json(doc)
    elif as_csv:
        _rule_csv(doc)
    else:
        _rule_print(doc, settings)
    _exit_if_stopped(doc)


def patterns(
    ctx: typer.Context,
    start: Annotated[str, _FROM],
    end: Annotated[str, _TO],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only this underlying (default: all stored).")
    ] = None,
    allow_simulated: Annotated[bool, _SIM] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row a detector.")] = False,
) -> None:
    """Hit rates of the eight pattern detectors over the stored days: how often the spot moved
    the signal's way 5, 15 and 60 minutes after it, and by how much."""
    from optterm.engine.backtest.signals import backtest_patterns

    first, last = _span(start, end, as_json, as_csv)
    settings = load_settings(ctx)
    result = _run(
        settings,
        lambda store, step, total: backtest_patterns(
            store,
            settings,
            first,
            last,
            symbol.strip().upper() if symbol else None,
            allow_simulated=allow_simulated,
            progress=step,
            on_total=total,
        ),
    )
    doc = patterns_document(result)
    if as_json:
        print_json(doc)
    elif as_csv:
        _patterns_csv(doc)
    else:
        _patterns_print(doc, settings)
    _exit_if_stopped(doc)


# ------------------------------------------------------------------------------------ running


def _span(start: str, end: str, as_json: bool, as_csv: bool) -> tuple[date, date]:
    if as_json and as_csv:
        raise UsageProblem("--json and --csv cannot be used together; pick one.")
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    if last < first:
        raise UsageProblem(
            f"--to {last.isoformat()} is before --from {first.isoformat()}; give the span in order."
        )
    check_span(first, last)
    return first, last


def _run(
    settings: Settings,
    go: Callable[[Store, Callable[[int], None], Callable[[int], None]], Awaitable[T]],
) -> T:
    """`go` on the store read-only, with a progress bar on stderr once the total is known;
    BacktestProblem becomes the one-line usage error."""
    from optterm.engine.backtest.signals import BacktestProblem

    async def use(store: Store) -> T:
        bar: list[Any] = []

        def total(n: int) -> None:
            bar.extend(stderr_progress("backtesting", n))

        def step(n: int) -> None:
            if bar:
                bar[0].advance(bar[1], n)

        try:
            return await go(store, step, total)
        except BacktestProblem as exc:
            raise UsageProblem(str(exc)) from None
        finally:
            if bar:
                bar[0].stop()

    return run_reading_store(settings, use)


def _exit_if_stopped(doc: dict[str, Any]) -> None:
    """A run stopped by Ctrl-C printed what it had found; it still ends as interrupted (130,
    the shell's 128 + SIGINT), so a script can tell a partial result from a whole one."""
    if doc["stopped_at"]:
        typer.echo("Stopped by Ctrl-C: the results above are partial.", err=True)
        raise typer.Exit(130)


# ------------------------------------------------------------------------------------ documents


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat()


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _source_doc(s: Source) -> dict[str, Any]:
    return {
        "providers": list(s.providers),
        "feeds": list(s.feeds),
        "first": _iso(s.first),
        "last": _iso(s.last),
        "days": [d.isoformat() for d in s.days],
        "snapshots": s.snapshots,
        "gaps": [_iso(g) for g in s.gaps],
    }


def _forward_doc(f: Forward) -> dict[str, Any]:
    return {
        "minutes": f.minutes,
        "at": _iso(f.at),
        "spot": f.spot,
        "points": _round(f.points, 2),
        "pct": _round(f.pct, 4),
    }


def rule_document(r: RuleResult) -> dict[str, Any]:
    from optterm.engine.alerts.rules import rule_summary
    from optterm.present.alerts import event_value_text

    return {
        "backtest": "rule",
        "rule": rule_summary(r.rule),
        "source": _source_doc(r.source),
        "stopped_at": _iso(r.stopped_at),
        "summary": [
            {
                "minutes": m.minutes,
                "measured": m.measured,
                "up": m.up,
                "down": m.down,
                "mean_points": _round(m.mean_points, 2),
                "mean_pct": _round(m.mean_pct, 4),
            }
            for m in r.summary()
        ],
        "firings": [
            {
                "fired_at": _iso(f.at),
                "symbol": f.event.symbol,
                "value": None if f.event.value != f.event.value else f.event.value,
                "value_text": event_value_text(f.event),
                "spot": f.spot,
                "forward": [_forward_doc(x) for x in f.forward],
            }
            for f in r.firings
        ],
    }


def patterns_document(r: PatternsResult) -> dict[str, Any]:
    return {
        "backtest": "patterns",
        "symbols": list(r.symbols),
        "source": _source_doc(r.source),
        "stopped_at": _iso(r.stopped_at),
        "detectors": [
            {
                "kind": str(row.kind),
                "firings": row.firings,
                "bullish": row.bullish,
                "bearish": row.bearish,
                "neutral": row.neutral,
                "horizons": [
                    {
                        "minutes": h.minutes,
                        "scored": h.scored,
                        "hits": h.hits,
                        "hit_rate": _round(h.hit_rate, 4),
                        "mean_pct": _round(h.mean_pct, 4),
                        "mean_points": _round(h.mean_points, 2),
                    }
                    for h in row.horizons
                ],
            }
            for row in r.rows
        ],
        "signals": [
            {
                "kind": str(o.signal.kind),
                "symbol": o.signal.symbol,
                "expiry": o.signal.expiry.isoformat(),
                "direction": str(o.signal.direction),
                "confidence": o.signal.confidence,
                "at": _iso(o.at),
                "spot": o.spot,
                "forward": [_forward_doc(x) for x in o.forward],
            }
            for o in r.outcomes
        ],
    }


# ------------------------------------------------------------------------------------ output


def _header(doc: dict[str, Any], settings: Settings) -> str:
    s = doc["source"]
    tz = settings.market.tz
    first = datetime.fromisoformat(s["first"]).astimezone(tz)
    last = datetime.fromisoformat(s["last"]).astimezone(tz)
    days = len(s["days"])
    return (
        f"Source: {'/'.join(s['feeds'])} via {', '.join(s['providers'])} · "
        f"{first:%Y-%m-%d %H:%M}–{last:%Y-%m-%d %H:%M} {first.tzname()} · "
        f"{days} day{'s' if days != 1 else ''} · {s['snapshots']:,} snapshots · "
        f"{_gaps(s['gaps'], settings)}"
        + (
            f" · STOPPED (Ctrl-C) at {last:%Y-%m-%d %H:%M:%S}: what was found until then"
            if doc["stopped_at"]
            else ""
        )
    )


def _gaps(gaps: list[str], settings: Settings) -> str:
    if not gaps:
        return "no gaps"
    tz = settings.market.tz
    at = ", ".join(f"{datetime.fromisoformat(g).astimezone(tz):%m-%d %H:%M}" for g in gaps[:3]) + (
        ", …" if len(gaps) > 3 else ""
    )
    return f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''} (from {at})"


def _move(f: dict[str, Any]) -> str:
    if f["points"] is None:
        return "n/a"
    return f"{f['points']:+,.2f} ({f['pct']:+.2f}%)"


def _rule_print(doc: dict[str, Any], settings: Settings) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    tz = settings.market.tz
    console = Console()
    console.print(f"BACKTEST of the rule: {escape(doc['rule'])}", highlight=False)
    console.print(_header(doc, settings), highlight=False)
    firings = doc["firings"]
    if not firings:
        console.print("The rule would not have fired in this span.")
        return
    zone = datetime.fromisoformat(firings[0]["fired_at"]).astimezone(tz).tzname()
    table = Table(
        f"Time ({zone})", "Value", "Spot", "+5 min", "+15 min", "+60 min",
        title=f"Firings ({len(firings)}; the spot's move after each; n/a: the history ends "
        "first or has a gap there)",
        title_justify="left",
    )  # fmt: skip
    for f in firings:
        table.add_row(
            datetime.fromisoformat(f["fired_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            f["value_text"],
            "n/a" if f["spot"] is None else f"{f['spot']:,.2f}",
            *(_move(x) for x in f["forward"]),
        )
    table.add_section()
    table.add_row("mean", "", "", *(_mean_move(m) for m in doc["summary"]))
    table.add_row("up / down", "", "", *(_up_down(m) for m in doc["summary"]))
    for col in table.columns[1:]:
        col.justify = "right"
    console.print(table)


def _mean_move(m: dict[str, Any]) -> str:
    if m["mean_points"] is None:
        return "n/a"
    return f"{m['mean_points'] + 0.0:+,.2f} ({round(m['mean_pct'], 2) + 0.0:+.2f}%)"


def _up_down(m: dict[str, Any]) -> str:
    return f"{m['up']} / {m['down']} of {m['measured']}" if m["measured"] else "n/a"


def _rule_csv(doc: dict[str, Any]) -> None:
    from optterm.engine.backtest.signals import HORIZONS_MIN

    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(
        ["fired_at", "symbol", "value", "spot"]
        + [f"{k}_{m}m" for m in HORIZONS_MIN for k in ("points", "pct")]
    )
    for f in doc["firings"]:
        row = [f["fired_at"], f["symbol"], f["value"], f["spot"]]
        for x in f["forward"]:
            row += [
                "" if x["points"] is None else x["points"],
                "" if x["pct"] is None else x["pct"],
            ]
        w.writerow(row)


def _rate(h: dict[str, Any]) -> str:
    if not h["scored"]:
        return "—"
    return f"{h['hit_rate'] * 100:.0f}% of {h['scored']}"


def _mean(h: dict[str, Any]) -> str:
    if h["mean_pct"] is None:
        return "—"
    return f"{round(h['mean_pct'], 3) + 0.0:+.3f}%"  # + 0.0: never "-0.000%"


def _patterns_print(doc: dict[str, Any], settings: Settings) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"BACKTEST of the eight pattern detectors on {', '.join(doc['symbols'])}", highlight=False
    )
    console.print(_header(doc, settings), highlight=False)
    table = Table(
        "Detector", "Firings", "Bull/Bear/Neutral",
        "Hit 5m", "Hit 15m", "Hit 60m", "Mean 5m", "Mean 15m", "Mean 60m",
        title="Hit: the spot moved the signal's way after 5/15/60 min (neutral signals not "
        "scored); mean: the move in the signal's direction, % of spot",
        title_justify="left",
    )  # fmt: skip
    for d in doc["detectors"]:
        hs = d["horizons"]
        table.add_row(
            d["kind"],
            str(d["firings"]),
            f"{d['bullish']}/{d['bearish']}/{d['neutral']}",
            *(_rate(h) for h in hs),
            *(_mean(h) for h in hs),
        )
    for col in table.columns[1:]:
        col.justify = "right"
    console.print(table)


def _patterns_csv(doc: dict[str, Any]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    from optterm.engine.backtest.signals import HORIZONS_MIN

    cols = ("scored", "hits", "hit_rate", "mean_pct", "mean_points")
    w.writerow(
        ["kind", "firings", "bullish", "bearish", "neutral"]
        + [f"{c}_{m}m" for m in HORIZONS_MIN for c in cols]
    )
    for d in doc["detectors"]:
        row = [d["kind"], d["firings"], d["bullish"], d["bearish"], d["neutral"]]
        for h in d["horizons"]:
            row += ["" if h[c] is None else h[c] for c in cols]
        w.writerow(row)
