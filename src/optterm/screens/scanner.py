"""The scanner screen: type a scan (or pick a saved one or a preset), see the ranked matches over
the F&O universe with each row's source and age, and the enter/leave log of the session so far.

Everything is keyboard: `e` edits the scan (Enter runs it, Escape goes back to the results), Tab
moves between the saved scans, the results and the log, `s` sorts the results by the next
column and `S` flips the order (or click a column's header), `R` runs the scan again, Enter on a
result opens that underlying's chain on the dashboard (polled on demand when it is not watched:
the app asks the engine, as the dashboard's symbol picker does) and `a` makes an alert on it.

What a scan reads: with Angel One first in the provider order, the engine's live universe
feed's newest sweep (`state.scan_frame`, taken on every engine tick of a session), run again
on each new sweep; the summary says LIVE via angelone and how old each tier and each shown
column is (the column headers carry their age too, n/a with the reason where the source gives
no such field). With no sweep to read (the market closed before one, a failing feed, a
daemon's TUI) it says why in one line, and shows the simulator only when the provider order
has it, labelled SIMULATED. With the simulator first: the simulated session played from the
open to now on a worker thread (engine/scanner/run.py, about a second of CPU late in the day),
so the screen never waits for it. A typed scan over a live sweep has no history: look-backs
and crossings read n/a (a saved scan, stepped by the engine, has it).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Static

from optterm.engine.scanner.presets import PRESETS
from optterm.present.scan import (
    ages_line,
    cell_text,
    column_ages,
    sort_rows,
    source_label,
    tiers_line,
)
from optterm.present.time import age_text
from optterm.screens.base import StateScreen
from optterm.screens.patterns import go_back, sync_table
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.engine.scanner.run import ScanRun
    from optterm.engine.state import EngineState

__all__ = ["DEFAULT_SCAN", "ScannerScreen"]

DEFAULT_SCAN = "long_buildup"
LOG_SHOWN = 200  # the newest enter/leave events listed


class ScannerScreen(StateScreen):
    """Saved scans and presets on the left; the scan's line, its ranked matches and its
    enter/leave log on the right."""

    class OpenChain(Message):
        """Show `symbol`'s chain on the dashboard (the app switches screens and the engine
        polls it on demand when it is not watched)."""

        def __init__(self, symbol: str) -> None:
            super().__init__()
            self.symbol = symbol

    TITLE = "Scanner"
    DEFAULT_CSS = """
    ScannerScreen #scan { margin: 0 0; }
    ScannerScreen #body { height: 1fr; }
    ScannerScreen #saved { width: 30; border-right: tall $panel; }
    ScannerScreen.narrow #saved { display: none; }
    ScannerScreen #main { width: 1fr; }
    ScannerScreen #summary { height: auto; padding: 0 1; background: $boost; }
    ScannerScreen #summary.simulated { background: $warning 30%; }
    ScannerScreen #results { height: 1fr; }
    ScannerScreen .pane-title { background: $panel; text-style: bold; padding: 0 1; }
    ScannerScreen #log { height: 9; }
    ScannerScreen.short #log, ScannerScreen.short #log-title { display: none; }
    """
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back"),
        Binding("e", "edit", "Edit scan"),
        Binding("s", "sort", "Sort"),
        Binding("S", "flip", "Asc/desc", show=False),
        Binding("R", "rerun", "Run again"),
        Binding("a", "alert", "Alert on row"),
    ]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)
        self.text = DEFAULT_SCAN
        self.scan_run: ScanRun | None = None
        self.scan_error: str | None = None
        self.running = False
        self.sort_column: str | None = None  # None: the scan's own ranking
        self.descending = True
        self.saved: list[tuple[str, str]] = []  # (name, text): saved scans, then presets
        self.frame_used: Any = None  # the live sweep the shown run read (None: not live)

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield Input(
            value=self.text,
            placeholder="a scan, e.g. long_buildup and ivp > 50 (Enter runs it)",
            id="scan",
        )
        with Horizontal(id="body"):
            yield DataTable(id="saved", cursor_type="row")
            with Vertical(id="main"):
                yield Static(id="summary")
                yield DataTable(id="results", cursor_type="row")
                yield Static("Entered and left (this session)", classes="pane-title",
                             id="log-title")  # fmt: skip
                yield DataTable(id="log", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        saved = self.query_one("#saved", DataTable)
        saved.add_column("Scan", key="name")
        log = self.query_one("#log", DataTable)
        for column in ("Time", "Symbol", "Event"):
            log.add_column(column, key=column)
        self._fit()
        self.load_saved()
        self.run_scan()
        self.query_one("#results", DataTable).focus()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width, height = self.app.size
        self.set_class(width < 100, "narrow")
        self.set_class(height < 30, "short")

    # -- actions --------------------------------------------------------------------------------

    def action_back(self) -> None:
        box = self.query_one("#scan", Input)
        if box.has_focus:  # Escape in the box: back to the results, the text kept as typed
            self.query_one("#results", DataTable).focus()
            return
        go_back(self)

    def action_edit(self) -> None:
        box = self.query_one("#scan", Input)
        box.focus()
        box.cursor_position = len(box.value)

    def action_rerun(self) -> None:
        self.run_scan()

    def action_sort(self) -> None:
        columns = self._sortable()
        if not columns:
            return
        i = columns.index(self.sort_column) + 1 if self.sort_column in columns else 0
        self.sort_column = columns[i] if i < len(columns) else None
        self.render_results()

    def action_flip(self) -> None:
        self.descending = not self.descending
        self.render_results()

    def action_alert(self) -> None:
        symbol = self.selected_symbol()
        if symbol is None:
            self.notify("No result selected.", timeout=3)
            return
        from optterm.screens.alert_form import AlertForm

        self.app.push_screen(AlertForm(self.state, prefill={"symbol": symbol, "kind": "PRICE"}))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip() or DEFAULT_SCAN
        # A saved scan's name runs its text, as `optterm scan NAME` does (the list is hidden
        # below 100 columns).
        self.text = dict(self.saved).get(typed, typed)
        if self.text != typed:
            event.input.value = self.text
        self.sort_column = None
        self.query_one("#results", DataTable).focus()
        self.run_scan()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if event.data_table.id == "saved" and key is not None:
            text = dict(self.saved).get(key)
            if text is not None:
                self.text = text
                self.query_one("#scan", Input).value = text
                self.sort_column = None
                self.run_scan()
        elif event.data_table.id == "results" and key is not None:
            self.open_chain(key)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table.id != "results":
            return
        column = str(event.column_key.value)
        if column in self._sortable():
            if column == self.sort_column:
                self.descending = not self.descending
            self.sort_column = column
            self.render_results()

    def open_chain(self, symbol: str) -> None:
        """Show `symbol`'s chain on the dashboard, unless the data source cannot give one."""
        served = self.state.available_symbols
        if served and symbol not in served and symbol not in self.state.symbols:
            self.notify(
                f"{symbol}: the data provider serves no option chain for it "
                f"(it serves {len(served)} symbols; / on the dashboard lists them).",
                severity="warning",
                timeout=8,
            )
            return
        self.post_message(self.OpenChain(symbol))

    def selected_symbol(self) -> str | None:
        table = self.query_one("#results", DataTable)
        if not table.row_count:
            return None
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if row.value is None else str(row.value)

    # -- data -----------------------------------------------------------------------------------

    @work(exclusive=True, group="scanner-saved", exit_on_error=False)
    async def load_saved(self) -> None:
        from optterm.store.errors import StoreError

        saved: list[tuple[str, str]] = []
        store = self.state.store
        if store is not None:
            try:
                saved = [(s.name, s.text) for s in await store.scans.saved()]
            except StoreError as exc:
                self.notify(f"Saved scans could not be read: {exc}", severity="error")
        taken = {name for name, _ in saved}
        self.saved = saved + [(p, p) for p in PRESETS if p not in taken]
        rows = [(name, [Text(name, style="bold" if name in taken else "")])
                for name, _ in self.saved]  # fmt: skip
        sync_table(self.query_one("#saved", DataTable), rows)

    def live_first(self) -> bool:
        """Angel One first in the provider order: scans read the live universe feed."""
        order = self.state.settings.providers.order
        return bool(order) and order[0] == "angelone"

    def on_state(self, state: EngineState) -> None:
        super().on_state(state)
        frame = state.scan_frame
        fresh = frame is not None and frame is not self.frame_used
        if fresh and self.is_mounted and self.live_first() and not self.running:
            self.run_scan()  # the feed swept again: the scan over the new sweep

    def run_scan(self) -> None:
        self.running = True
        self.scan_error = None
        self.render_summary()
        frame = self.state.scan_frame if self.live_first() else None
        self.frame_used = frame
        self._scan_worker(self.text, self.state.now(), frame, self._no_live())

    def _no_live(self) -> str | None:
        """Why the live universe cannot be read now (None: it can, or it is not first)."""
        if not self.live_first() or self.state.scan_frame is not None:
            return None
        served = {h.provider for h in self.state.health}
        if self.state.attached is not None:
            why = "this terminal follows a daemon, whose live universe sweep stays in it"
        elif served and "angelone" not in served:
            why = ("Angel One is not among the engine's providers (left out at the start: "
                   "`optterm doctor` says why)")  # fmt: skip
        elif self.state.scans_status:
            why = self.state.scans_status
        elif not self.state.calendar.is_open(self.state.now()):
            why = "the market is closed and the feed has not swept this session"
        else:
            why = "the feed's first sweep is not done yet"
        return f"live universe not available: {why}"

    @work(exclusive=True, group="scanner-run", thread=True, exit_on_error=False)
    def _scan_worker(self, text: str, now: datetime, frame: Any, no_live: str | None) -> None:
        from dataclasses import replace

        from optterm.engine.scanner.grammar import ScanError, parse_scan
        from optterm.engine.scanner.liveframe import run_on_frame
        from optterm.engine.scanner.run import (
            SessionMomentError,
            run_on_simulator,
            scan_calendar,
            session_moment,
        )

        calendar = self.state.calendar
        order = self.state.settings.providers.order
        try:
            if frame is not None:
                run = run_on_frame(text, frame)
            elif no_live is not None and "simulator" not in order:
                # Nothing to fall back on: the provider order has no simulator.
                self.app.call_from_thread(self._done, text, None, no_live)
                return
            else:
                moment = session_moment(scan_calendar(calendar, [parse_scan(text)]), now, None)
                run = run_on_simulator(
                    text,
                    seed=self.state.settings.providers.simulator.seed,
                    moment=moment,
                    calendar=calendar,
                )
                if no_live is not None:
                    note = f"{no_live}; showing the simulator (next in the provider order)"
                    run = replace(run, notes=(note,))
        except (ScanError, SessionMomentError) as exc:
            self.app.call_from_thread(self._done, text, None, str(exc))
            return
        self.app.call_from_thread(self._done, text, run, None)

    def _done(self, text: str, run: ScanRun | None, error: str | None) -> None:
        if text != self.text:  # an older scan's answer: the newer one is on its way
            return
        self.running = False
        self.scan_error = error
        if run is not None:
            self.scan_run = run
        elif error is not None:
            self.scan_run = None
        if self.is_mounted:
            self.render_state()

    # -- rendering ------------------------------------------------------------------------------

    def _sortable(self) -> list[str]:
        return ["symbol", *self.scan_run.columns] if self.scan_run is not None else []

    def rows(self) -> list[dict[str, Any]]:
        """The matches as shown: the scan's ranking, or sorted by the chosen column."""
        if self.scan_run is None:
            return []
        rows = self.scan_run.rows()
        if self.sort_column is None:
            return rows
        return [dict(r) for r in sort_rows(rows, self.sort_column, descending=self.descending)]

    def render_state(self) -> None:
        if not self.is_mounted:
            return
        self.render_summary()
        self.render_results()
        self.render_log()

    def render_summary(self) -> None:
        summary = self.query_one("#summary", Static)
        run = self.scan_run
        out = Text()
        if self.scan_error is not None:
            out.append(self.scan_error, style="bold red")
        elif run is None:
            out.append("Running the scan…" if self.running else "No scan run yet.", style="dim")
        else:
            tz = self.state.calendar.tz
            out.append(f"{run.result.count} of {len(run.names)} underlyings match", style="bold")
            out.append(f" at {run.at.astimezone(tz):%d-%b %H:%M:%S} ({source_label(run.source)})")
            if self.running:
                out.append("  running again…", style="dim")
            now = self._age_clock(run)
            out.append(f"\n{tiers_line(run, now)}", style="dim" if self.live_run() else "yellow")
            ages = ages_line(run, now)
            if ages:
                out.append(f"\n{ages}")
            for field, reason in run.result.unavailable.items():
                out.append(f"\n{field}: n/a ({reason})", style="yellow")
            for segment, closed in run.closed:  # `scan all` at 21:00: NSE stands at its close
                out.append(f"\n{segment}: {closed}; its names show their last values", "yellow")
            for note in run.notes:
                out.append(f"\n{note}", style="bold yellow")
        if self.state.scans_status:  # the engine's live feed and saved scans: paused, and why
            out.append(f"\nLive feed and saved scans: {self.state.scans_status}",
                       style="bold yellow")  # fmt: skip
        summary.update(out)
        summary.set_class(run is not None and run.source == "simulator", "simulated")

    def render_results(self) -> None:
        table = self.query_one("#results", DataTable)
        run = self.scan_run
        columns = ["#", "symbol", *(run.columns if run is not None else ()), "source", "age"]
        if [str(c.value) for c in table.columns] != columns:
            table.clear(columns=True)
            for c in columns:
                table.add_column(self._heading(c), key=c)
        else:  # the sort mark moves between headings
            for c in columns:
                table.columns[c].label = Text(self._heading(c))  # type: ignore[index]
            table.refresh()
        if run is None:
            sync_table(table, [])
            return
        now = self._age_clock(run)
        known = [a for a in column_ages(run, now).values() if a is not None]
        # A row is as old as its oldest shown column (the run's moment with none shown).
        age = age_text(max(known) if known else (now - run.at).total_seconds())
        source = source_label(run.source)
        rows = []
        for row in self.rows():
            cells: list[Any] = [Text(str(row["rank"]), justify="right"),
                                Text(row["symbol"], style="bold")]  # fmt: skip
            for c in run.columns:
                value = row[c]
                cells.append(Text(cell_text(value, c), justify="left" if isinstance(value, str)
                                  else "right", style="dim" if value is None else ""))  # fmt: skip
            # A closed segment's name is as old as its close: never shown with the run's age.
            shut = row["symbol"] in run.closed_names
            cells += [Text(source, style="yellow" if run.source == "simulator" else ""),
                      Text("closed" if shut else age, justify="right",
                           style="yellow" if shut else "")]  # fmt: skip
            rows.append((row["symbol"], cells))
        sync_table(table, rows)

    def live_run(self) -> bool:
        return self.scan_run is not None and self.scan_run.source != "simulator"

    def _age_clock(self, run: ScanRun) -> datetime:
        """What the run's ages count to: the app's clock for live data; a simulated run is as
        of its own moment (the simulator's clock is not the wall's)."""
        return self.state.now() if run.source != "simulator" else run.at

    def _heading(self, column: str) -> str:
        label = column
        run = self.scan_run
        if run is not None and column in run.columns:
            age = run.column_age(column, self._age_clock(run))
            label = f"{column} · {'n/a' if age is None else age_text(age)}"
        if column == self.sort_column:
            return f"{label} {'▼' if self.descending else '▲'}"
        return label

    def render_log(self) -> None:
        run = self.scan_run
        tz = self.state.calendar.tz
        rows = []
        events = run.events[-LOG_SHOWN:] if run is not None else ()
        for n, e in enumerate(reversed(events)):  # newest first
            colour = "green" if e.kind == "enter" else "yellow"
            rows.append((f"{n}", [f"{e.at.astimezone(tz):%H:%M:%S}", Text(e.symbol, style="bold"),
                                  Text(e.kind, style=colour)]))  # fmt: skip
        sync_table(self.query_one("#log", DataTable), rows)
