"""The main dashboard: watchlist, the option chain of the selected symbol and expiry, the chain's
metrics, and side panes with the latest signals and alert events."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import Direction, Feed
from optterm.present.chain import metrics_lines
from optterm.widgets.chain_table import ChainTable
from optterm.widgets.status_bar import StatusBar

__all__ = ["DashboardScreen", "SymbolPicker"]

WATCH_COLUMNS = ("Symbol", "Spot", "Chg %", "PCR", "Max pain", "ATM IV", "View")
WATCH_WIDTHS = (12, 11, 7, 5, 9, 7, 8)  # fixed: the table starts empty, so autosize would truncate
SIDE_MIN_WIDTH = 190  # below this many columns the chain gets the whole width
_DIRECTION_STYLE = {Direction.BULLISH: "green", Direction.BEARISH: "red", Direction.NEUTRAL: ""}


def _num(x: float, fmt: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


class SymbolPicker(ModalScreen[str | None]):
    """Pick any watched symbol by name (type to filter, enter to choose, escape to cancel)."""

    DEFAULT_CSS = """
    SymbolPicker { align: center middle; }
    SymbolPicker OptionList { width: 40; height: auto; max-height: 20; border: round $accent; }
    """
    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, symbols: list[str], current: str) -> None:
        super().__init__()
        self.symbols = symbols
        self.current = current

    def compose(self) -> ComposeResult:
        yield OptionList(*(Option(s, id=s) for s in self.symbols), id="symbols")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.symbols:
            options.highlighted = self.symbols.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DashboardScreen(Screen[None]):
    DEFAULT_CSS = """
    DashboardScreen #body { height: 1fr; }
    DashboardScreen #main { width: 1fr; }
    DashboardScreen #side { width: 52; border-left: tall $panel; }
    DashboardScreen.narrow #side { display: none; }
    DashboardScreen #watchlist { height: auto; max-height: 11; }
    DashboardScreen ChainTable { height: 1fr; }
    DashboardScreen #metrics { height: auto; padding: 0 1; background: $boost; }
    DashboardScreen .pane-title { background: $panel; text-style: bold; padding: 0 1; }
    DashboardScreen #signals { height: 1fr; padding: 0 1; }
    DashboardScreen #events { height: 1fr; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        *(Binding(str(i), f"symbol({i - 1})", f"Symbol {i}", show=False) for i in range(1, 10)),
        Binding("slash", "pick_symbol", "Symbol…"),
        Binding("right_square_bracket", "expiry(1)", "Next expiry"),
        Binding("left_square_bracket", "expiry(-1)", "Prev expiry"),
        Binding("g", "toggle_greeks", "Greeks"),
        Binding("plus,equals_sign", "window(1)", "Wider", show=False),
        Binding("minus", "window(-1)", "Narrower", show=False),
        Binding("c", "centre", "ATM"),
        Binding("a", "alert_here", "Alert here"),
    ]

    def __init__(self, state: EngineState) -> None:
        super().__init__()
        self.state = state
        self.symbol = state.symbols[0] if state.symbols else ""
        self.expiry_index = 0
        watch = {w.symbol: w.strikes for w in state.settings.poller.watch}
        self.window = min(watch.get(self.symbol, 20), 20)
        self._shown: tuple[str, object] | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield DataTable(id="watchlist", cursor_type="row", zebra_stripes=True)
                yield ChainTable(id="chain")
                yield Static(id="metrics")
            with Vertical(id="side"):
                yield Static("Signals", classes="pane-title")
                yield Static(id="signals")
                yield Static("Alert events", classes="pane-title")
                yield Static(id="events")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#watchlist", DataTable)
        for col, width in zip(WATCH_COLUMNS, WATCH_WIDTHS, strict=True):
            table.add_column(col, key=col, width=width)
        for symbol in self.state.symbols:
            table.add_row(*([symbol] + [""] * (len(WATCH_COLUMNS) - 1)), key=symbol)
        self.query_one(ChainTable).focus()
        self.on_state(self.state)

    def on_resize(self) -> None:
        # Signals and alert events move aside when the chain needs the room; `p` and `r` show
        # them in full.
        self.set_class(self.app.size.width < SIDE_MIN_WIDTH, "narrow")

    # -- rendering ----------------------------------------------------------------------------

    def current(self):
        expiries = self.state.expiries(self.symbol)
        if not expiries:
            return None
        self.expiry_index = max(0, min(self.expiry_index, len(expiries) - 1))
        return self.state.chain(self.symbol, expiries[self.expiry_index])

    def on_state(self, state: EngineState) -> None:
        self.state = state
        update = self.current()
        self.query_one(StatusBar).show(
            state, self.symbol, update.snapshot.expiry if update else None
        )
        self._render_watchlist()
        chain = self.query_one(ChainTable)
        if update is not None:
            chain.window = self.window
            chain.set_chain(update.snapshot, update.enriched)
            key = (update.snapshot.symbol, update.snapshot.expiry)
            if key != self._shown:
                # A new chain opens on the money, where a trader looks first.
                self._shown = key
                chain.center_atm()
            m = update.metrics
            self.query_one("#metrics", Static).update(
                Text("\n".join(metrics_lines(m))) if m is not None else Text("")
            )
        self._render_signals()
        self._render_events()

    def _render_watchlist(self) -> None:
        table = self.query_one("#watchlist", DataTable)
        for symbol in self.state.symbols:
            update = self.state.chain(symbol)
            if update is None:
                continue
            snap, m = update.snapshot, update.metrics
            # The day's change: from the provider's previous close, whenever this terminal began.
            chg = snap.change / snap.prev_close * 100 if snap.prev_close else math.nan
            moved = "" if math.isnan(chg) or chg == 0 else ("green" if chg > 0 else "red")
            values = [
                Text(symbol + (" *" if snap.feed is Feed.SIMULATED else ""), style="bold"),
                _num(snap.spot, ",.2f"),
                Text(_num(chg, "+.2f") or "n/a", style=moved),
                _num(m.pcr_oi, ".2f") if m else "",
                _num(m.max_pain, ",.0f") if m else "",
                _num(m.atm_iv * 100 if m else math.nan, ".2f"),
                m.view.bias.value if m else "",
            ]
            for col, value in zip(WATCH_COLUMNS, values, strict=True):
                table.update_cell(symbol, col, value)
        if self.symbol in self.state.symbols:
            row = self.state.symbols.index(self.symbol)
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)

    def _render_signals(self) -> None:
        now = self.state.now()
        lines = []
        for sig in self.state.active_signals[:12]:
            bar = "█" * (sig.confidence // 10) + "░" * (10 - sig.confidence // 10)
            age = (now - sig.first_seen).total_seconds() / 60
            lines.append(
                Text.assemble(
                    (f"{sig.symbol} {sig.kind.value}", "bold"),
                    " · ",
                    (sig.direction.value, _DIRECTION_STYLE[sig.direction]),
                    f" {sig.confidence:>3} {bar}",
                    f"  {', '.join(f'{k:g}' for k in sig.strikes)} · {age:.0f}m\n",
                    (f"  {sig.summary}", "dim"),
                )
            )
        self.query_one("#signals", Static).update(
            Text("\n").join(lines) if lines else Text("no active signals", style="dim")
        )

    def _render_events(self) -> None:
        lines = []
        for event in list(self.state.alerts)[:10]:
            when = event.fired_at.astimezone(IST).strftime("%H:%M:%S")
            lines.append(Text.assemble((f"{when} ", "dim"), (event.title, "bold yellow")))
        self.query_one("#events", Static).update(
            Text("\n").join(lines) if lines else Text("no alerts fired yet", style="dim")
        )

    # -- actions ------------------------------------------------------------------------------

    def _rerender(self) -> None:
        self.on_state(self.state)

    def action_symbol(self, index: int) -> None:
        if index < len(self.state.symbols):
            self.symbol = self.state.symbols[index]
            self.expiry_index = 0
            self._rerender()

    def action_pick_symbol(self) -> None:
        def chosen(symbol: str | None) -> None:
            if symbol:
                self.symbol = symbol
                self.expiry_index = 0
                self._rerender()

        self.app.push_screen(SymbolPicker(self.state.symbols, self.symbol), chosen)

    def action_expiry(self, step: int) -> None:
        self.expiry_index = max(0, self.expiry_index + step)
        self._rerender()

    def action_toggle_greeks(self) -> None:
        chain = self.query_one(ChainTable)
        chain.greeks = not chain.greeks

    def action_window(self, step: int) -> None:
        self.window = max(2, min(self.window + 2 * step, 100))
        self._rerender()

    def action_centre(self) -> None:
        self.query_one(ChainTable).center_atm()

    def action_alert_here(self) -> None:
        strike, side = self.query_one(ChainTable).selected()
        prefill: dict[str, object] = {"symbol": self.symbol, "kind": "PRICE"}
        if strike is not None and side is not None:
            prefill.update({"strike": strike, "side": side})
        update = self.current()
        if update is not None:
            prefill["expiry"] = update.snapshot.expiry
        from optterm.screens.alert_form import AlertForm

        self.app.push_screen(AlertForm(self.state, prefill=prefill))

    def on_chain_table_row_selected(self, message: ChainTable.RowSelected) -> None:
        self.action_alert_here()
