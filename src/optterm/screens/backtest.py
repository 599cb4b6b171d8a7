"""The backtest screen: a spec (typed, a strategy template, or the strategy screen's legs with
`B` there), a span of exchange days, a run with a progress bar, then the result: the figures,
the equity curve, the trade log, the gap report and what the result stands on (source, span,
snapshots, fill model), SIMULATED said loudly; and the stored runs, any of which reopens.

The run is the engine's (engine/backtest/service.run_and_save, the one `optterm backtest` runs),
on the store's loop through engine/loopproxy.beside: the screen only posts its inputs, draws the
progress the run reports and stops it when asked (`x`), which keeps and stores what it has, as
Ctrl-C does on the command line. Data marked SIMULATED is refused unless allowed here (`a`), as
`--allow-simulated`. Input that cannot run (an unknown template, a reversed or empty span) is
one line in red, and nothing else changes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, ProgressBar, Static

from optterm.engine.loopproxy import beside
from optterm.present.backtest import rupees
from optterm.screens.backtest_text import (
    figures_text,
    gaps_text,
    head_text,
    no_trades_text,
    simulated,
)
from optterm.screens.base import StateScreen
from optterm.screens.patterns import go_back, sync_table
from optterm.widgets.payoff_chart import ChartData, Curve, PayoffChart
from optterm.widgets.status_bar import StatusBar
from optterm.widgets.text_panel import TextPanel

if TYPE_CHECKING:
    from textual.app import App

    from optterm.engine.backtest.costs import CostTable
    from optterm.engine.backtest.spec import Spec
    from optterm.engine.state import EngineState

__all__ = ["BacktestScreen", "backtest_legs"]

NO_STORE = "Backtests need the store; it is off in this session."
SPAN_DAYS = 28  # the span first offered: the four weeks up to today
RUNS_SHOWN = 50


def backtest_legs(app: App[Any], state: EngineState) -> None:
    """ "Backtest this" on the strategy screen: its legs as the spec of the backtest screen
    (engine/backtest/service.spec_from_legs), or one line saying why they cannot be one."""
    from optterm.engine.backtest.service import spec_from_legs
    from optterm.engine.backtest.spec import SpecError

    desk = state.strategy
    symbol = desk.symbol or ""
    legs = [(g.kind, g.expiry, g.strike, g.lots) for g in desk.legs]
    try:
        text = spec_from_legs(symbol, legs, state.expiries(symbol) if symbol else [])
    except SpecError as exc:
        app.notify(str(exc), severity="warning", timeout=8, markup=False)
        return
    from optterm.strategy.recognise import recognise

    template = recognise(desk.position().legs)
    screen = app.get_screen("backtest")
    assert isinstance(screen, BacktestScreen)
    screen.take_spec(text, None if template is None else template.name.replace("_", " "))
    app.call_later(app.run_action, "show('backtest')")


def equity_chart(doc: dict[str, Any]) -> ChartData | None:
    """The equity after each day with data (₹ after costs) against the day, labelled by date."""
    points = doc["figures"]["equity"]
    if not points:
        return None
    days = [date.fromisoformat(d) for d, _ in points]
    values = [v for _, v in points]
    if len(points) == 1:  # one day: a level line across the chart
        days, values = days * 2, values * 2
    x = np.arange(len(values), dtype=float)

    def label(i: float) -> str:
        return f"{days[min(len(days) - 1, max(0, round(i)))]:%d-%b}"

    return ChartData(x, [Curve("equity", np.array(values, dtype=float))], x_text=label)


class BacktestScreen(StateScreen):
    """The form on top (spec, from, to, SIMULATED allowed or not), the progress under it, then
    the result: what it stands on, figures beside the equity curve, and the trades (or the gap
    report, or the stored runs) below."""

    class Progress(Message):
        """The run reached day `day` of `total` (posted from the store's loop)."""

        def __init__(self, run: int, day: int, total: int) -> None:
            super().__init__()
            self.run, self.day, self.total = run, day, total

    class Finished(Message):
        """The run ended: its document, or why it could not run."""

        def __init__(self, run: int, doc: dict[str, Any] | None, error: str | None) -> None:
            super().__init__()
            self.run, self.doc, self.error = run, doc, error

    TITLE = "Backtest"
    DEFAULT_CSS = """
    BacktestScreen #form { height: auto; padding: 0 1; }
    BacktestScreen #spec { width: 1fr; }
    BacktestScreen #span { height: 1; }
    BacktestScreen .label { width: auto; padding: 0 1 0 0; color: $text-muted; }
    BacktestScreen #from, BacktestScreen #to { width: 14; margin: 0 2 0 0; }
    BacktestScreen #sim { width: 1fr; }
    BacktestScreen #status { height: auto; max-height: 3; padding: 0 1; }
    BacktestScreen #progress { height: 1; padding: 0 1; display: none; }
    BacktestScreen.running #progress { display: block; }
    BacktestScreen #head { height: auto; max-height: 9; padding: 0 1; background: $boost; }
    BacktestScreen #head { text-wrap: nowrap; text-overflow: ellipsis; }
    BacktestScreen.short #head { max-height: 5; }
    BacktestScreen #head.simulated { background: $error 25%; }
    BacktestScreen #top { height: 15; }
    BacktestScreen.short #top { height: 7; }
    BacktestScreen #figures { width: 46; padding: 0 1; }
    BacktestScreen.narrow #figures { width: 38; }
    BacktestScreen #curve { width: 1fr; min-height: 4; }
    BacktestScreen .pane-title { height: 1; background: $panel; text-style: bold; padding: 0 1; }
    BacktestScreen #lower { height: 1fr; }
    BacktestScreen #gaps { padding: 0 1; height: auto; }
    """
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back"),
        Binding("e", "edit", "Edit spec"),
        Binding("R", "run", "Run"),
        Binding("x", "stop", "Stop (keep)"),
        Binding("a", "allow", "Allow SIMULATED"),
        Binding("t", "template", "Next template"),
        Binding("g", "view('gaps')", "Gaps"),
        Binding("l", "view('runs')", "Stored runs"),
    ]

    def __init__(self, state: EngineState, spec: str | None = None) -> None:
        super().__init__(state)
        symbol = state.symbols[0] if state.symbols else "NIFTY"
        self.text = spec or f"{symbol} short straddle enter at 09:20 exit at 15:15"
        today = state.now().astimezone(state.settings.market.tz).date()
        self.first, self.last = today - timedelta(days=SPAN_DAYS - 1), today
        self.allow_simulated = False
        self.doc: dict[str, Any] | None = None  # the result shown
        self.stored_at = ""  # "stored run #3 of 03-Dec 18:50" when reopened
        self.running = False
        self.stopping = False
        self.run_id = 0  # the latest run's number: an older run's news is not this one's
        self.done = 0  # runs finished (or refused) on this screen: what a test waits on
        self.view = "trades"
        self.message: Text = Text("")
        self._template = -1
        self._runs: list[Any] = []

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        with Vertical(id="form"):
            yield Input(value=self.text, compact=True, id="spec",
                        placeholder="a spec, e.g. NIFTY short straddle enter at 09:20 exit at "
                                    "15:15 sl 30% (enter runs it)")  # fmt: skip
            with Horizontal(id="span"):
                yield Static("from", classes="label")
                yield Input(value=self.first.isoformat(), compact=True, id="from")
                yield Static("to", classes="label")
                yield Input(value=self.last.isoformat(), compact=True, id="to")
                yield Static(id="sim")
        yield Static(id="status")
        yield ProgressBar(id="progress", show_eta=False)
        yield TextPanel(id="head")
        with Horizontal(id="top"):
            yield TextPanel(id="figures")
            yield PayoffChart(id="curve")
        yield Static(id="lower-title", classes="pane-title")
        with ContentSwitcher(initial="trades", id="lower"):
            yield DataTable(id="trades", cursor_type="row")
            with VerticalScroll(id="gaps-pane"):
                yield TextPanel(id="gaps")
            yield DataTable(id="runs", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        trades = self.query_one("#trades", DataTable)
        for label in ("#", "Entry", "Exit", "Net", "Costs", "Reason",
                      "Legs: entry → exit [quote used]"):  # fmt: skip
            trades.add_column(label, key=label)
        runs = self.query_one("#runs", DataTable)
        for label in ("#", "Run at", "Span", "Trades", "Net P&L", "Spec"):
            runs.add_column(label, key=label)
        self._fit()
        self.render_result()
        self.query_one("#spec", Input).focus()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width, height = self.app.size
        self.set_class(width < 100, "narrow")
        self.set_class(height < 36, "short")

    def take_spec(self, text: str, template: str | None = None) -> None:
        """Start from `text` (the strategy screen's legs): shown in the box, not run yet. Their
        strikes stay where they were picked on every day; `template` (what the legs are) is
        offered as the spec that places them from each day's ATM instead."""
        self.text = text
        said = Text("The strategy screen's legs, strikes fixed as picked", "dim")
        if template is not None:
            symbol = text.split()[0]
            said.append(f" (for strikes placed from each day's ATM write {symbol} {template})",
                        "dim")  # fmt: skip
        said.append(": set the span (tab) and press enter to run.", "dim")
        self._say(said)
        if self.is_mounted:
            box = self.query_one("#spec", Input)
            box.value = text
            box.focus()

    # -- keys -----------------------------------------------------------------------------------

    def action_back(self) -> None:
        if isinstance(self.focused, Input):  # out of the form, the text kept as typed
            self.query_one("#trades", DataTable).focus()
            return
        go_back(self)

    def action_edit(self) -> None:
        box = self.query_one("#spec", Input)
        box.focus()
        box.cursor_position = len(box.value)

    def action_allow(self) -> None:
        self.allow_simulated = not self.allow_simulated
        self.render_form()

    def action_template(self) -> None:
        """The next strategy template in the spec box, on the spec's underlying, the clauses
        typed after the strategy kept."""
        from optterm.strategy.templates import TEMPLATES

        box = self.query_one("#spec", Input)
        words = box.value.split() or [self.text.split()[0]]
        symbol = words[0].upper()
        clauses = []
        for i, w in enumerate(words):
            if w.lower() in ("enter", "exit", "sl", "target", "hold", "on", "dte", "fill"):
                clauses = words[i:]
                break
        self._template = (self._template + 1) % len(TEMPLATES)
        name = TEMPLATES[self._template].name.replace("_", " ")
        box.value = " ".join([symbol, name, *(clauses or ["enter at 09:20 exit at 15:15"])])
        self._say(Text(f"Template {self._template + 1} of {len(TEMPLATES)}: {name} (t: the next;"
                       " enter runs it)", "dim"))  # fmt: skip

    def action_stop(self) -> None:
        if not self.running:
            self._say(Text("Nothing is running.", "dim"))
            return
        self.stopping = True
        self._say(Text("Stopping: the run ends where it is and keeps what it has…", "yellow"))

    def action_view(self, view: str) -> None:
        """`g` the gap report, `l` the stored runs; the same key again: back to the trades."""
        self.view = "trades" if self.view == view else view
        if self.view == "runs":
            self.load_runs()
        self.render_lower()
        # The pane shown takes the keys: up / down move in the table or scroll the report.
        self.query_one(
            {"trades": "#trades", "runs": "#runs", "gaps": "#gaps-pane"}[self.view]
        ).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_run()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "runs" or event.row_key.value is None:
            return
        run = next((r for r in self._runs if str(r.id) == event.row_key.value), None)
        if run is None:
            return
        tz = self.state.settings.market.tz
        self.doc = dict(run.document, id=run.id)
        self.stored_at = f"stored run #{run.id} of {run.created_at.astimezone(tz):%d-%b %H:%M}"
        self.text = run.spec
        box = self.query_one("#spec", Input)
        box.value = run.spec
        self.query_one("#from", Input).value = run.span_from.isoformat()
        self.query_one("#to", Input).value = run.span_to.isoformat()
        self.view = "trades"
        self._say(Text(f"Opened backtest #{run.id}.", "green"))
        self.render_result()
        self.query_one("#trades", DataTable).focus()

    # -- running --------------------------------------------------------------------------------

    def _request(self) -> tuple[Spec, date, date, CostTable] | str:
        """The run the form asks for, or one line saying what is wrong with it."""
        from optterm.engine.backtest.costs import CostError
        from optterm.engine.backtest.service import check_span, default_costs, read_spec
        from optterm.engine.backtest.simulate import BacktestProblem
        from optterm.engine.backtest.spec import SpecError
        from optterm.market import parse_day

        text = self.query_one("#spec", Input).value.strip()
        days = []
        for name in ("from", "to"):
            typed = self.query_one(f"#{name}", Input).value.strip()
            day = parse_day(typed)
            if day is None:
                return (f"{name} {typed!r} is not a day: write YYYY-MM-DD (e.g. 2026-11-24) "
                        "or DD-Mon-YYYY (e.g. 24-Nov-2026).")  # fmt: skip
            days.append(day)
        try:
            spec = read_spec(text)
            check_span(days[0], days[1], ("from", "to"))
            table = default_costs()
        except (SpecError, BacktestProblem, CostError) as exc:
            return str(exc)
        return spec, days[0], days[1], table

    def action_run(self) -> None:
        if self.running:
            self._say(Text("A backtest is running: x stops it (keeping what it has).", "yellow"))
            return
        request = self._request()
        if isinstance(request, str):
            self.done += 1
            self._say(Text(request, "bold red"))
            return
        if self.state.store is None:
            self.done += 1
            self._say(Text(NO_STORE, "bold red"))
            return
        spec, first, last, table = request
        self.text = spec.text
        self.run_id += 1
        self.running, self.stopping = True, False
        self.set_class(True, "running")
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=(last - first).days + 1, progress=0)
        self._say(Text(f"Backtesting {spec.symbol} {first} → {last}… x stops it and keeps "
                       "what it has.", "bold"))  # fmt: skip
        self._run(self.run_id, spec, first, last, table, self.allow_simulated)
        # Out of the box, so `x` stops the run rather than typing an x.
        self.query_one("#trades", DataTable).focus()

    @work(group="backtest-run", exit_on_error=False)
    async def _run(
        self, run: int, spec: Spec, first: date, last: date, table: CostTable, allow: bool
    ) -> None:
        from optterm.engine.backtest.costs import CostError
        from optterm.engine.backtest.service import run_and_save
        from optterm.engine.backtest.simulate import BacktestProblem, SimulatedRefused

        def on_day(day: int, total: int) -> None:
            self.post_message(self.Progress(run, day, total))  # thread-safe

        try:
            doc = await beside(
                self.state.store, run_and_save, spec, first, last, table, self.state.settings,
                allow_simulated=allow, on_day=on_day, stop=lambda: self.stopping,
                at=self.state.now(),
            )  # fmt: skip
        except SimulatedRefused as exc:
            how = "Press a to allow it here, then R to run again."
            self.post_message(self.Finished(run, None, exc.said(how)))
        except (BacktestProblem, CostError) as exc:
            self.post_message(self.Finished(run, None, str(exc)))
        except Exception as exc:  # the store away, a damaged row: one line, never a crash
            self.post_message(self.Finished(run, None, f"The backtest failed: {exc}"))
        else:
            self.post_message(self.Finished(run, doc, None))

    def on_backtest_screen_progress(self, message: Progress) -> None:
        if message.run == self.run_id and self.running:
            self.query_one("#progress", ProgressBar).update(
                total=message.total, progress=message.day
            )

    def on_backtest_screen_finished(self, message: Finished) -> None:
        if message.run != self.run_id:
            return
        self.running = False
        self.set_class(False, "running")
        self.done += 1
        if message.doc is None:
            self._say(Text(message.error or "", "bold red"))
            return
        doc = message.doc
        self.doc, self.stored_at = doc, ""
        f = doc["figures"]
        if doc["interrupted"]:
            self._say(Text(f"Stopped: partial result, {f['trades']} trades closed, saved as "
                           f"backtest #{doc['id']}.", "bold yellow"))  # fmt: skip
        else:
            self._say(Text(f"Done: saved as backtest #{doc['id']} (l lists the stored runs).",
                           "green"))  # fmt: skip
        self.view = "trades" if self.view == "runs" else self.view
        self.render_result()
        # The result's keys (g, l, x …) work at once; `e` goes back to the spec.
        self.query_one("#trades", DataTable).focus()

    @work(group="backtest-runs", exclusive=True, exit_on_error=False)
    async def load_runs(self) -> None:
        from optterm.store.errors import StoreError

        store = self.state.store
        if store is None:
            self._say(Text(NO_STORE, "bold red"))
            return
        try:
            self._runs = await store.backtests.recent(RUNS_SHOWN)
        except StoreError as exc:
            self._say(Text(f"The stored runs could not be read: {exc}", "bold red"))
            return
        tz = self.state.settings.market.tz
        rows = []
        for r in self._runs:
            trades = f"{r.trades}" + (" partial" if r.interrupted else "")
            rows.append((str(r.id), [
                Text(str(r.id), justify="right"), f"{r.created_at.astimezone(tz):%d-%b %H:%M}",
                f"{r.span_from} → {r.span_to}", Text(trades, justify="right"),
                Text(rupees(r.net_pnl), justify="right",
                     style="green" if r.net_pnl >= 0 else "red"),
                r.spec,
            ]))  # fmt: skip
        sync_table(self.query_one("#runs", DataTable), rows)
        self.render_lower()

    # -- drawing --------------------------------------------------------------------------------

    def _say(self, text: Text) -> None:
        self.message = text
        if self.query("#status"):
            self.query_one("#status", Static).update(text)

    def render_form(self) -> None:
        # While a box has the focus, `a` is a letter typed into it: the hint says to leave first.
        key = "esc, a" if isinstance(self.focused, Input) else "a"
        sim = self.query_one("#sim", Static)
        if self.allow_simulated:
            sim.update(Text(f"SIMULATED data allowed ({key}: refuse)", "bold yellow"))
        else:
            sim.update(Text(f"SIMULATED data refused ({key}: allow)", "dim"))

    def on_descendant_focus(self) -> None:
        self.render_form()

    def on_descendant_blur(self) -> None:
        self.render_form()

    def render_result(self) -> None:
        self.render_form()
        self.query_one("#status", Static).update(self.message)
        doc = self.doc
        head = self.query_one("#head", TextPanel)
        figures = self.query_one("#figures", TextPanel)
        chart = self.query_one("#curve", PayoffChart)
        if doc is None:
            head.show(Text("No result yet: type a spec and a span, then enter (t: a template; "
                           "l: the stored runs).", "dim"))  # fmt: skip
            figures.show("")
            chart.plot(None, "")
        else:
            head.show(head_text(doc, self.stored_at))
            head.set_class(simulated(doc), "simulated")
            figures.show(figures_text(doc) if doc["trades"] else no_trades_text(doc))
            chart.plot(equity_chart(doc) if doc["trades"] else None, "no trades: no equity curve")
        self.render_lower()

    def render_lower(self) -> None:
        doc = self.doc
        tz = self.state.settings.market.tz
        switcher = self.query_one("#lower", ContentSwitcher)
        switcher.current = {"trades": "trades", "gaps": "gaps-pane", "runs": "runs"}[self.view]
        title = self.query_one("#lower-title", Static)
        n = len(doc["trades"]) if doc is not None else 0
        title.update({
            "trades": f"Trades ({n}) · g: gaps and breakdowns · l: stored runs",
            "gaps": "Gaps, notes and breakdowns (up / down scroll) · g: back to the trades",
            "runs": "Stored runs, newest first · enter opens one · l: back",
        }[self.view])  # fmt: skip
        if self.view == "gaps":
            self.query_one("#gaps", TextPanel).show(gaps_text(doc, tz) if doc else "")
        if self.view == "trades":
            sync_table(self.query_one("#trades", DataTable), self._trade_rows(doc, tz))

    @staticmethod
    def _trade_rows(doc: dict[str, Any] | None, tz: Any) -> list[tuple[str, list[Any]]]:
        if doc is None:
            return []

        def clock(iso: str | None) -> str:
            return (
                "open"
                if iso is None
                else f"{datetime.fromisoformat(iso).astimezone(tz):%d-%b %H:%M:%S}"
            )

        rows = []
        for t in doc["trades"]:
            legs = "  ".join(
                f"{g['leg']} {g['entry_price']:.2f} [{g['entry_quote']}] → "
                + ("open" if g["exit_price"] is None else f"{g['exit_price']:.2f}")
                + (f" [{g['exit_quote']}]" if g["exit_quote"] else "")
                for g in t["legs"]
            )
            net = t["net"]
            style = "" if net is None else ("green" if net >= 0 else "red")
            rows.append((f"{doc.get('id')}-{t['n']}", [
                Text(str(t["n"]), justify="right"), clock(t["entry_at"]), clock(t["exit_at"]),
                Text(rupees(net), justify="right", style=style),
                Text(rupees(t["costs"]), justify="right"), t["reason"], legs,
            ]))  # fmt: skip
        return rows
