"""The main dashboard: watchlist, the option chain of the selected symbol and expiry, the chain's
metrics, and side panes with the latest signals and alert events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import Direction, Feed, Metrics, Side
from optterm.present.chain import metrics_fitted, strike_decimals, strike_text
from optterm.present.header import price_decimals
from optterm.present.time import age_text
from optterm.screens.base import StateScreen
from optterm.widgets.chain_columns import OI_UNITS, PANE_RANK, width_through
from optterm.widgets.chain_table import ChainTable
from optterm.widgets.status_bar import StatusBar

__all__ = ["DashboardScreen", "SymbolPicker", "picker_rows"]

WATCH_COLUMNS = ("Symbol", "Spot", "Chg %", "PCR", "Max pain", "ATM IV", "View")
WATCH_WIDTHS = (12, 11, 7, 5, 9, 7, 8)  # fixed: the table starts empty, so autosize would truncate
SIDE_WIDTH = 52  # the signals and alert-events pane, border included
SHORT_HEIGHT = 32  # below this many lines the watchlist gives its rows to the chain
# The watchlist is redrawn at most this often in data time (its DataTable renders every cell
# of every row on any change: tens of ms, which a key press waits for when the stream publishes
# several times a second); what it showed last is made current this long after, in wall time.
WATCHLIST_EVERY_S = 1.0
_DIRECTION_STYLE = {Direction.BULLISH: "green", Direction.BEARISH: "red", Direction.NEUTRAL: ""}


def _num(x: float, fmt: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def picker_rows(watched: Sequence[str], available: Sequence[str], typed: str) -> list[str]:
    """The symbols a picker lists for what was typed: the watched ones first (in watch order),
    then every other symbol the provider serves, alphabetically; with text typed, only those
    containing it (case-insensitive), the ones starting with it first."""
    ordered = list(dict.fromkeys([*watched, *sorted(set(available) - set(watched))]))
    text = typed.strip().upper()
    if not text:
        return ordered
    starts = [sym for sym in ordered if sym.startswith(text)]
    return starts + [sym for sym in ordered if text in sym and sym not in starts]


class SymbolPicker(ModalScreen[str | None]):
    """Pick a symbol: any the data provider serves, not only the watched ones. Type to filter,
    up/down to move, enter to open, escape to cancel. A symbol outside the watchlist is polled
    on demand while the dashboard shows it."""

    DEFAULT_CSS = """
    SymbolPicker { align: center middle; }
    SymbolPicker #picker { width: 46; height: auto; border: round $accent; background: $surface; }
    SymbolPicker Input { margin: 0 0 1 0; }
    SymbolPicker OptionList { height: auto; max-height: 16; border: none; }
    SymbolPicker #picker-note { color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
    ]

    def __init__(
        self,
        watched: Sequence[str],
        current: str,
        available: Sequence[str] = (),
        note: str = "",
    ) -> None:
        super().__init__()
        self.watched = list(watched)
        self.available = list(available)
        self.current = current
        self.note = note
        self.shown: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Input(placeholder="type to filter", id="filter")
            yield OptionList(id="symbols")
            yield Static(self.note, id="picker-note")

    def on_mount(self) -> None:
        self._fill("")
        if self.current in self.shown:
            self.query_one(OptionList).highlighted = self.shown.index(self.current)
        self.query_one(Input).focus()

    def _fill(self, typed: str) -> None:
        self.shown = picker_rows(self.watched, self.available, typed)
        options = self.query_one(OptionList)
        options.set_options(
            Option(
                Text.assemble(sym, ("" if sym in self.watched else "  on demand", "dim")), id=sym
            )
            for sym in self.shown
        )
        options.highlighted = 0 if self.shown else None

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and self.shown:
            self.dismiss(self.shown[options.highlighted])

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self.shown:
            at = options.highlighted if options.highlighted is not None else -step
            options.highlighted = max(0, min(len(self.shown) - 1, at + step))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DashboardScreen(StateScreen):
    class SymbolShown(Message):
        """The dashboard now shows (or is opening) `symbol`: the engine polls it if it is not
        watched, until another is shown."""

        def __init__(self, symbol: str) -> None:
            super().__init__()
            self.symbol = symbol

    DEFAULT_CSS = """
    DashboardScreen #body { height: 1fr; }
    DashboardScreen #main { width: 1fr; }
    DashboardScreen #side { width: 52; border-left: tall $panel; }  /* SIDE_WIDTH */
    DashboardScreen.narrow #side { display: none; }
    DashboardScreen.short #watchlist { display: none; }
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
        Binding("u", "toggle_unit", "Lots/lakh"),
        Binding("O", "oi_profile", "OI profile"),
        Binding("plus,equals_sign", "window(1)", "Wider", show=False),
        Binding("minus", "window(-1)", "Narrower", show=False),
        Binding("c", "centre", "ATM"),
        Binding("i", "oi_interval", "ΔOI interval", show=False),
        Binding("a", "alert_here", "Alert here"),
        Binding("T", "replay", "Replay", show=False),
        Binding("b", "leg(1)", "Buy leg", show=False),
        Binding("s", "leg(-1)", "Sell leg", show=False),
    ]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)
        self.symbol = state.symbols[0] if state.symbols else ""
        self.expiry_index = 0
        watch = {w.symbol: w.strikes for w in state.settings.poller.watch}
        self.window = min(watch.get(self.symbol, 20), 20)
        self._shown: tuple[str, object] | None = None
        self.opening: str | None = None  # picked, not watched, its first chain not here yet
        self._metrics: Metrics | None = None  # the shown chain's, fitted to the width on resize
        self._texts: dict[str, Text] = {}  # what each pane under or beside the chain shows
        self._watch_values: dict[str, list[object]] = {}  # each watchlist row as shown
        self._watch_at: datetime | None = None  # the newest data time the watchlist shows
        self._watch_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield DataTable(id="watchlist", cursor_type="row", zebra_stripes=True)
                yield ChainTable(id="chain", oi_unit=self.state.settings.display.oi_unit)
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
        self.render_state()

    def on_resize(self) -> None:
        self._place_side_pane()
        # The symbol stays in the status bar, and 1–9 and / still switch it.
        self.set_class(self.app.size.height < SHORT_HEIGHT, "short")
        self._render_metrics()

    def _place_side_pane(self) -> None:
        """Signals and alert events sit beside the chain only when the chain keeps, beside
        them, every column up to Bid/Ask (and the Greeks, when the trader asked for them);
        else they move aside and `p` and `r` show them in full."""
        chain = self.query_one(ChainTable)
        need = width_through(PANE_RANK, greeks=chain.greeks, unit=OI_UNITS[chain.oi_unit])
        gutter = chain.styles.scrollbar_size_vertical
        self.set_class(self.app.size.width - SIDE_WIDTH < need + gutter, "narrow")

    # -- rendering ----------------------------------------------------------------------------

    def current(self):
        expiries = self.state.expiries(self.symbol)
        if not expiries:
            return None
        self.expiry_index = max(0, min(self.expiry_index, len(expiries) - 1))
        return self.state.chain(self.symbol, expiries[self.expiry_index])

    def selected_strike(self) -> float | None:
        """The strike under the chain's cursor (what `h` charts), None before a chain is shown."""
        if self.current() is None:
            return None
        return self.query_one(ChainTable).selected()[0]

    def render_state(self) -> None:
        state = self.state
        if self.opening is not None and state.chain(self.opening) is not None:
            # The picked symbol's first chain is here: show it (never another symbol's chain
            # under its name meanwhile).
            self.symbol, self.opening, self.expiry_index = self.opening, None, 0
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
            self._metrics = update.metrics
            self._render_metrics()
        self._render_signals()
        self._render_events()

    def _render_metrics(self) -> None:
        """The figures under the chain, fitted to the main column: on a short terminal at most
        three lines (the chain keeps its rows), the least important figures dropped first."""
        m = self._metrics
        if m is None:
            self._show("metrics", Text(""))
            return
        side = 0 if self.has_class("narrow") else SIDE_WIDTH
        width = max(self.app.size.width - side - 2, 20)  # 2: the footer's padding
        lines = metrics_fitted(m, width, max_lines=3 if self.has_class("short") else 6)
        self._show("metrics", Text("\n".join(lines)))

    def _show(self, pane: str, text: Text) -> None:
        """Put `text` in a pane, laying the screen out again only when the pane's height can
        change: a whole layout costs tens of ms at 200 columns, and while streaming the panes
        are re-rendered several times a second with the same number of lines (a key pressed
        meanwhile waits for it). Signals and events fill a fixed share of the side column;
        the metrics are as tall as their lines, which are fitted to the width (never wrap)."""
        old = self._texts.get(pane)
        if old is not None and old == text:
            return
        self._texts[pane] = text
        sized = pane == "metrics" and (
            old is None or old.plain.count("\n") != text.plain.count("\n")
        )
        self.query_one(f"#{pane}", Static).update(text, layout=old is None or sized)

    def _render_watchlist(self) -> None:
        table = self.query_one("#watchlist", DataTable)
        updates = [u for u in map(self.state.chain, self.state.symbols) if u is not None]
        newest = max((u.snapshot.provider_ts for u in updates), default=None)
        soon = (
            newest is not None
            and self._watch_at is not None
            and 0 < (newest - self._watch_at).total_seconds() < WATCHLIST_EVERY_S
        )
        if not soon:
            self._watchlist_cells(table, newest)
        elif self._watch_timer is None:
            self._watch_timer = self.set_timer(WATCHLIST_EVERY_S, self._watchlist_due)
        if self.symbol in self.state.symbols:
            row = self.state.symbols.index(self.symbol)
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)

    def _watchlist_due(self) -> None:
        self._watch_timer = None
        updates = [u for u in map(self.state.chain, self.state.symbols) if u is not None]
        newest = max((u.snapshot.provider_ts for u in updates), default=None)
        self._watchlist_cells(self.query_one("#watchlist", DataTable), newest)

    def _watchlist_cells(self, table: DataTable[object], newest: datetime | None) -> None:
        """Every row's figures, each cell updated only when what it shows changed."""
        if self._watch_timer is not None:
            self._watch_timer.stop()
            self._watch_timer = None
        self._watch_at = newest
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
                _num(snap.spot, f",.{price_decimals(snap)}f"),
                Text(_num(chg, "+.2f") or "n/a", style=moved),
                _num(m.pcr_oi, ".2f") if m else "",
                # 102.5 and 88.75 are strikes too: written as the chain's strike column is.
                strike_text(m.max_pain, strike_decimals(snap.strikes.tolist())) if m else "",
                _num(m.atm_iv * 100 if m else math.nan, ".2f"),
                m.view.bias.value if m else "",
            ]
            shown = self._watch_values.get(symbol)
            for i, (col, value) in enumerate(zip(WATCH_COLUMNS, values, strict=True)):
                if shown is None or shown[i] != value:
                    table.update_cell(symbol, col, value)
            self._watch_values[symbol] = values

    def _render_signals(self) -> None:
        lines = []
        for sig in self.state.active_signals[:12]:
            bar = "█" * (sig.confidence // 10) + "░" * (10 - sig.confidence // 10)
            # On the data's clock: a simulated signal carries simulated session times.
            age = age_text((self.state.clock_for(sig.feed) - sig.first_seen).total_seconds())
            lines.append(
                Text.assemble(
                    (f"{sig.symbol} {sig.kind.value}", "bold"),
                    " · ",
                    (sig.direction.value, _DIRECTION_STYLE[sig.direction]),
                    f" {sig.confidence:>3} {bar}",
                    f"  {', '.join(f'{k:g}' for k in sig.strikes)} · {age}\n",
                    (f"  {sig.summary}", "dim"),
                )
            )
        self._show(
            "signals", Text("\n").join(lines) if lines else Text("no active signals", style="dim")
        )

    def _render_events(self) -> None:
        lines = []
        for event in list(self.state.alerts)[:10]:
            when = event.fired_at.astimezone(IST).strftime("%H:%M:%S")
            lines.append(Text.assemble((f"{when} ", "dim"), (event.title, "bold yellow")))
        self._show(
            "events", Text("\n").join(lines) if lines else Text("no alerts fired yet", style="dim")
        )

    # -- actions ------------------------------------------------------------------------------

    def _rerender(self) -> None:
        self.render_state()

    def action_symbol(self, index: int) -> None:
        if index < len(self.state.symbols):
            self.show_symbol(self.state.symbols[index])

    def show_symbol(self, symbol: str) -> None:
        """Show `symbol`: at once if its chain is here, else once its first chain arrives (the
        engine is told, and polls it on demand if it is not watched)."""
        self.post_message(self.SymbolShown(symbol))
        if self.state.chain(symbol) is None and symbol not in self.state.symbols:
            self.opening = symbol
            self.notify(f"Opening {symbol}: waiting for its first chain…", timeout=5)
            return
        self.opening = None
        self.symbol = symbol
        self.expiry_index = 0
        self._rerender()

    def action_pick_symbol(self) -> None:
        def chosen(symbol: str | None) -> None:
            if symbol:
                self.show_symbol(symbol)

        state = self.state
        note = (
            "attached: the daemon polls only its watchlist"
            if state.attached is not None
            else "others are polled on demand while shown"
            if state.available_symbols
            else ""
        )
        available = () if state.attached is not None else state.available_symbols
        self.app.push_screen(SymbolPicker(state.symbols, self.symbol, available, note), chosen)

    def action_expiry(self, step: int) -> None:
        self.expiry_index = max(0, self.expiry_index + step)
        self._rerender()

    def action_toggle_greeks(self) -> None:
        chain = self.query_one(ChainTable)
        chain.greeks = not chain.greeks
        self._place_side_pane()
        self.call_after_refresh(self._say_if_greeks_hidden)

    def _say_if_greeks_hidden(self) -> None:
        chain = self.query_one(ChainTable)
        if chain.greeks and chain.greeks_shown < 4:
            need = width_through(PANE_RANK, greeks=True, unit=OI_UNITS[chain.oi_unit])
            self.notify(
                f"Greeks: {chain.greeks_shown} of 4 fit in {self.app.size.width} columns; "
                f"all of them need {need + chain.styles.scrollbar_size_vertical}. "
                "OI, ΔOI and prices keep their room.",
                timeout=6,
            )

    def action_toggle_unit(self) -> None:
        chain = self.query_one(ChainTable)
        names = list(OI_UNITS)
        chain.oi_unit = names[(names.index(chain.oi_unit) + 1) % len(names)]

    def action_oi_profile(self) -> None:
        update = self.current()
        if update is None:
            self.notify("No chain yet.", timeout=3)
            return
        from optterm.screens.oi_profile import OiProfileScreen

        chain = self.query_one(ChainTable)
        self.app.push_screen(
            OiProfileScreen(self.state, self.symbol, update.snapshot.expiry, chain.oi_unit)
        )

    def action_window(self, step: int) -> None:
        self.window = max(2, min(self.window + 2 * step, 100))
        self._rerender()

    def action_oi_interval(self) -> None:
        """Cycle what ΔOI and buildups are over (day → 5m → 15m → 30m); the engine redoes the
        chain on screen at once (Runner.set_oi_interval)."""
        update = self.current()
        now = update.enriched.change.interval if update and update.enriched else None
        interval = (now or self.state.settings.display.interval).next()
        engine = getattr(self.app, "engine", None)
        if engine is not None:
            engine.call_soon(engine.runner.set_oi_interval, interval)
            self.notify(f"ΔOI and buildups over {interval.name}", timeout=3)

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

    def action_replay(self) -> None:
        """Time travel: the shown chain's stored day, from its newest point (screens/replay)."""
        update = self.current()
        if update is None:
            self.notify("No chain yet: nothing to replay.", timeout=3)
            return
        if self.state.store is None:
            self.notify("Replay needs the store; it is off in this session.", timeout=5)
            return
        from optterm.screens.replay import ReplayScreen

        snap = update.snapshot
        day = snap.provider_ts.astimezone(self.state.settings.market.tz).date()
        self.app.push_screen(ReplayScreen(self.state, snap.symbol, snap.expiry, day))

    def action_leg(self, lots: int) -> None:
        """Add the call or put under the cursor to the strategy: bought (`b`) or sold (`s`),
        [strategy] lots of it, entered at the fill model's price (engine/strategydesk.py); S
        shows it."""
        from optterm.engine.strategydesk import DeskLeg

        update = self.current()
        strike, side = self.query_one(ChainTable).selected()
        if update is None or strike is None:
            self.notify("No chain yet.", timeout=3)
            return
        if side is None:
            self.notify("Move onto the call or the put (← →) to add it as a leg.", timeout=4)
            return
        snap = update.snapshot
        row = int(np.searchsorted(snap.strikes, strike))
        legs = snap.ce if side is Side.CE else snap.pe
        desk = self.state.strategy
        defaults = self.state.settings.strategy
        lots *= defaults.lots
        price = desk.entry_price(
            float(legs.ltp[row]), float(legs.bid[row]), float(legs.ask[row]), lots, defaults.fill
        )
        leg = DeskLeg(side.value, snap.expiry, float(strike), lots, price)
        said = desk.add(
            snap.symbol, leg, priced_at=snap.provider_ts, source=f"{snap.provider} · {snap.feed}"
        )
        self.notify(f"Strategy: {said}. S shows it.", timeout=4, markup=False)

    def on_chain_table_row_selected(self, message: ChainTable.RowSelected) -> None:
        self.action_alert_here()
