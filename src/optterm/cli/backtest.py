"""`optterm backtest "SPEC" --from DAY --to DAY [--json|--csv]`: a strategy over the stored history.

The group takes either a subcommand (`optterm backtest rule …`, `optterm backtest patterns`) or a
spec: a first argument that names no subcommand goes to `run` with everything after it. The spec
is parsed, the span and the cost table checked, and the data's source checked (SIMULATED only with
--allow-simulated) before anything is read; a refused backtest stores nothing. Ctrl-C ends the run
where it is and keeps what it has (marked partial, and stored as such).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import (
    check_span,
    load_settings,
    parse_date,
    print_json,
    stderr_progress,
)
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.backtest.costs import CostTable
    from optterm.engine.backtest.spec import Spec

__all__ = ["backtest_app", "run"]

BACKTEST_HELP = (
    "Backtest on stored history: an option strategy (honest fills, Indian costs, figures, "
    "equity curve, trade log), an alert rule's firings, the detectors' hit rates."
)


class SpecOrCommand(typer.core.TyperGroup):
    """A group whose first argument is a subcommand's name, or else the spec of `run`."""

    # Typed loosely: typer's group is declared on its own vendored click's types.
    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


backtest_app = typer.Typer(
    cls=SpecOrCommand,
    help=BACKTEST_HELP
    + '\n\nA first argument that names no command is a spec: `optterm backtest "SPEC" --from '
    "DAY --to DAY` is `optterm backtest run …`. docs/backtest.md lists the clauses.",
    no_args_is_help=True,
    context_settings={"ignore_unknown_options": True},
)


@backtest_app.command("run")
def run(
    ctx: typer.Context,
    spec: Annotated[
        str,
        typer.Argument(
            metavar="SPEC",
            help='The strategy and its rules, e.g. "NIFTY short straddle enter at 09:20 exit '
            'at 15:15 sl 30%", or a .toml file (docs/backtest.md).',
        ),
    ],
    start: Annotated[
        str, typer.Option("--from", metavar="DAY", help="First exchange day, e.g. 2026-11-02.")
    ],
    end: Annotated[str, typer.Option("--to", metavar="DAY", help="Last exchange day (included).")],
    allow_simulated: Annotated[
        bool,
        typer.Option("--allow-simulated", help="Run even on SIMULATED (simulator) data."),
    ] = False,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs",
            metavar="FILE",
            help="A cost table (default: costs.toml beside config.toml, else the shipped one).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the trade log as CSV.")] = False,
) -> None:
    """Backtest SPEC over the stored snapshots from --from to --to, print the figures, the
    equity curve and the trade log, and keep the result in the store."""
    if as_json and as_csv:
        raise UsageProblem("--json and --csv print different things; choose one.")
    with _ctrl_c_stops() as stopped:
        parsed = _spec(spec)
        first, last = parse_date(start, "--from"), parse_date(end, "--to")
        check_span(first, last)
        table = _costs(costs)
        settings = load_settings(ctx)
        doc = _run(settings, parsed, first, last, table, allow_simulated, stopped)
    if as_json:
        print_json(doc, ensure_ascii=False)
    elif as_csv:
        import sys

        sys.stdout.write(_trades_csv(doc, settings))
    else:
        _print(doc, settings)


@contextlib.contextmanager
def _ctrl_c_stops() -> Iterator[list[bool]]:
    """While the backtest runs, a first Ctrl-C asks it to stop where it is and keep what it has
    ([0] turns true); a second one interrupts as usual. Installed before anything is read, so a
    Ctrl-C at any point of the run is one of the two."""
    import signal

    stopped = [False]

    def on_sigint(signum: int, frame: object) -> None:
        if stopped[0]:
            raise KeyboardInterrupt
        stopped[0] = True

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: Ctrl-C is not ours to catch
        yield stopped
        return
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGINT, previous)


def _spec(text: str) -> Spec:
    from optterm.engine.backtest.service import read_spec
    from optterm.engine.backtest.spec import SpecError

    try:
        return read_spec(text)
    except SpecError as exc:
        raise UsageProblem(str(exc)) from None


def _costs(path: Path | None) -> CostTable:
    from optterm.engine.backtest.costs import CostError
    from optterm.engine.backtest.service import default_costs

    try:
        return default_costs(path)
    except CostError as exc:
        raise UsageProblem(str(exc)) from None


def _run(
    settings: Settings,
    spec: Spec,
    first: Any,
    last: Any,
    table: CostTable,
    allow_simulated: bool,
    stopped: list[bool],
) -> dict[str, Any]:
    from optterm.cli.context import run_with_store

    async def go(store: Any) -> dict[str, Any]:
        from optterm.engine.backtest.costs import CostError
        from optterm.engine.backtest.service import run_and_save
        from optterm.engine.backtest.simulate import BacktestProblem

        bar, task = stderr_progress("backtesting", (last - first).days + 1)
        try:
            return await run_and_save(
                store,
                spec,
                first,
                last,
                table,
                settings,
                allow_simulated=allow_simulated,
                on_day=lambda d, _n: bar.update(task, completed=d),
                stop=lambda: stopped[0],
            )
        except (BacktestProblem, CostError) as exc:
            raise UsageProblem(str(exc)) from None
        finally:
            bar.stop()

    return run_with_store(settings, go)


def _trades_csv(doc: dict[str, Any], settings: Settings) -> str:
    from optterm.present.backtest import trades_csv

    return trades_csv(doc, settings.market.tz)


def _print(doc: dict[str, Any], settings: Settings) -> None:
    from datetime import datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from optterm.present.backtest import curve_lines, header_lines, rupees

    tz = settings.market.tz
    console = Console(highlight=False)
    for line in header_lines(doc):
        console.print(escape(line))
    f = doc["figures"]
    if not doc["trades"]:
        console.print("No trades: nothing entered in the span (the header says why).")
        console.print(f"Saved as backtest #{doc['id']}.")
        return

    def num(x: Any, suffix: str = "") -> str:
        return "-" if x is None else f"{x:,.2f}{suffix}"

    pct = (
        f" ({f['net_pnl_pct_of_capital']:.2f} % of capital)" if f["net_pnl_pct_of_capital"] else ""
    )
    rows = [
        ("Net P&L", f"{rupees(f['net_pnl'])}{pct}"),
        ("Gross P&L", rupees(f["gross_pnl"])),
        ("Costs paid", rupees(f["costs"])),
        ("Slippage paid", rupees(f["slippage"])),
        ("Trades", f"{f['trades']}" + (f" (+{f['open_trades']} open)" if f["open_trades"] else "")),
        ("Win / loss", f"{num(f['win_pct'], ' %')} / {num(f['loss_pct'], ' %')}"),
        ("Average trade", rupees(f["average"])),
        ("Average win / loss", f"{rupees(f['average_win'])} / {rupees(f['average_loss'])}"),
        ("Max win / loss", f"{rupees(f['max_win'])} / {rupees(f['max_loss'])}"),
        ("Expectancy", rupees(f["expectancy"])),
        ("Profit factor", num(f["profit_factor"])),
        (
            "Max drawdown",
            f"{rupees(f['max_drawdown'])}"
            + (f" ({f['max_drawdown_pct']:.2f} %)" if f["max_drawdown_pct"] is not None else "")
            + f", {f['max_drawdown_days']} d under the peak",
        ),
        ("Return / drawdown", num(f["return_over_drawdown"])),
        ("Streaks (win / loss)", f"{f['win_streak']} / {f['loss_streak']}"),
        ("Sharpe / Sortino (daily)", f"{num(f['sharpe'])} / {num(f['sortino'])}"),
    ]
    table = Table("Figure", "Value", show_header=False, box=None, padding=(0, 2))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    curve = curve_lines([v for _, v in f["equity"]])
    if curve:
        console.print(f"Equity curve ({len(f['equity'])} days, ₹ after costs):")
        for line in curve:
            console.print(line)
    for title, key in (("Monthly", "monthly"), ("By weekday", "weekday")):
        if f[key]:
            t = Table(title, "Trades", "Net P&L", "Win %")
            for col in t.columns[1:]:
                col.justify = "right"
            for row in f[key]:
                t.add_row(
                    row["key"], str(row["trades"]), rupees(row["net_pnl"]), f"{row['win_pct']:.1f}"
                )
            console.print(t)

    def clock(iso: str | None) -> str:
        return (
            "-"
            if iso is None
            else datetime.fromisoformat(iso).astimezone(tz).strftime("%d-%b %H:%M:%S")
        )

    if doc["trades"]:
        t = Table("#", "Entry", "Exit", "Legs (entry → exit, quotes)", "Reason", "Costs", "Net",
                  title=f"Trades ({len(doc['trades'])})", title_justify="left")  # fmt: skip
        for tr in doc["trades"]:
            legs = "\n".join(
                f"{g['leg']} {g['entry_price']:.2f} [{g['entry_quote']}] → "
                + ("open" if g["exit_price"] is None else f"{g['exit_price']:.2f}")
                + (f" [{g['exit_quote']}]" if g["exit_quote"] else "")
                for g in tr["legs"]
            )
            t.add_row(str(tr["n"]), clock(tr["entry_at"]), clock(tr["exit_at"]), escape(legs),
                      tr["reason"], rupees(tr["costs"]), rupees(tr["net"]))  # fmt: skip
        console.print(t)
    console.print(f"Saved as backtest #{doc['id']}.")


@backtest_app.command("list")
def list_runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("-n", help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The stored backtest runs, newest first: id, when, spec, span, trades, net P&L."""
    from optterm.cli.context import run_reading_store

    if limit < 1:
        raise UsageProblem(f"-n {limit}: give a number of runs >= 1.")
    settings = load_settings(ctx)

    async def go(store: Any) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "created_at": r.created_at.isoformat(),
                "spec": r.spec,
                "from": r.span_from.isoformat(),
                "to": r.span_to.isoformat(),
                "trades": r.trades,
                "net_pnl": r.net_pnl,
                "interrupted": r.interrupted,
            }
            for r in await store.backtests.recent(limit)
        ]

    rows = run_reading_store(settings, go)
    if as_json:
        print_json(rows, ensure_ascii=False)
        return
    if not rows:
        print('No backtests stored yet; run one with optterm backtest "SPEC" --from … --to ….')
        return
    from datetime import datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from optterm.present.backtest import rupees

    tz = settings.market.tz
    table = Table("#", "Run at", "Spec", "Span", "Trades", "Net P&L")
    for r in rows:
        when = datetime.fromisoformat(r["created_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(r["id"]), when, escape(r["spec"]), f"{r['from']} → {r['to']}",
            str(r["trades"]) + (" (partial)" if r["interrupted"] else ""), rupees(r["net_pnl"]),
        )  # fmt: skip
    Console().print(table)


# Subcommands beside the default spec register on `backtest_app` here, below `run`: the group
# sends a first argument that names one of them to it, anything else to `run`.
from optterm.cli.backtest_signals import register  # noqa: E402  (after the group exists)

register(backtest_app)
