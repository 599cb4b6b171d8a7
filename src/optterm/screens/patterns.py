"""The patterns screen: current and recent signals, filterable, with the evidence behind one.

Rows come from the engine's state (the active signals and the recent ones of this session) and,
once per show, from the store's saved signals (in an async worker, so the table appears at once and
the stored ones join it when read). A selected row shows its evidence (the named numbers that made
the confidence) and the detector's definition, taken from docs/patterns.md when that file is found.

Ages are measured from the app clock (`state.now()`), never the wall clock. Simulated signals carry
simulated session times, so they are aged against the simulator's clock: the newest simulated
chain's data time plus the wall time since it was fetched.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from optterm.market import IST
from optterm.model import Direction, Feed, PatternKind, Signal
from optterm.present.patterns import confidence_bar
from optterm.present.time import age_text
from optterm.screens.base import StateScreen
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.engine.state import EngineState

__all__ = [
    "COLUMNS",
    "PatternsScreen",
    "definition",
    "go_back",
    "sync_table",
]

COLUMNS = ("", "Time", "Symbol", "Expiry", "Kind", "Direction", "Strength", "Confidence",
           "Strikes", "Summary", "Age", "Source")  # fmt: skip

DIRECTION_STYLE = {Direction.BULLISH: "bold green", Direction.BEARISH: "bold red"}
FEED_STYLE = {Feed.SIMULATED: "bold black on yellow", Feed.DELAYED: "yellow", Feed.LIVE: "green"}

# Used when docs/patterns.md is not shipped with the package (an installed wheel).
BUILTIN_DEFINITIONS: dict[PatternKind, str] = {
    PatternKind.CALL_BUILDUP: (
        "Call open interest is being added at and above the money: the band's call OI grew by at "
        "least patterns.buildup_min_pct percent over the window, on most of its strikes. Falling "
        "premiums make it bearish (call writing), rising ones bullish (call long buildup)."
    ),
    PatternKind.PUT_BUILDUP: (
        "Put open interest is being added at and below the money. Falling premiums make it "
        "bullish (put writing: writers expect support), rising ones bearish (put long buildup)."
    ),
    PatternKind.CALL_UNWINDING: (
        "Call open interest is leaving at and above the money. Rising premiums make it bullish "
        "(short covering), falling ones bearish (call long unwinding)."
    ),
    PatternKind.PUT_UNWINDING: (
        "Put open interest is leaving at and below the money. Falling premiums make it bullish "
        "(put long unwinding), rising ones bearish (put short covering)."
    ),
    PatternKind.GAMMA_SQUEEZE: (
        "The spot runs into the heaviest open-interest strike (the wall) while the writers there "
        "cover: a move towards the wall, the spot near or through it, and the wall's OI falling. "
        "Call wall: bullish; put wall: bearish."
    ),
    PatternKind.MAX_PAIN: (
        "The spot converging on, or diverging from, a stable max-pain strike; it counts for more "
        "the nearer the expiry."
    ),
    PatternKind.UNUSUAL_ACTIVITY: (
        "One strike trades far more than its open interest and far faster than it traded earlier "
        "in the day. Rising premium: bullish for a call, bearish for a put; otherwise neutral."
    ),
    PatternKind.MOMENTUM_SHIFT: (
        "Trending OI (put ΔOI − call ΔOI around ATM, as a percentage of the band's OI) crossed "
        "from one side to the other within the memory window; the direction is the new side's."
    ),
}


# --- helpers shared by the info screens ------------------------------------------------------


def go_back(screen: Screen[Any]) -> None:
    """Leave `screen`: through the app's `action_back` when it has one, else pop the screen.

    Never awaited here: awaiting a pop from the popped screen's own handler deadlocks."""
    app = screen.app
    back = getattr(app, "action_back", None)
    if callable(back):
        app.call_later(back)
    elif screen.is_current and len(app.screen_stack) > 1:
        screen.dismiss()


def _cell_id(value: object) -> object:
    if isinstance(value, Text):
        return (value.plain, str(value.style), tuple(value.spans))
    return value


def sync_table(table: DataTable[Any], rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Make `table` show `rows` (key, cells) with as little work as possible.

    The same keys in the same order: only the cells that changed are updated. Otherwise the
    table is rebuilt and the cursor stays on the row it was on (when that row is still there)."""
    keys = [key for key, _ in rows]
    shown = [row.key.value for row in table.ordered_rows]
    if keys == shown:
        columns = list(table.columns)
        with table.app.batch_update():
            for key, cells in rows:
                old = table.get_row(key)
                for column, new, before in zip(columns, cells, old, strict=False):
                    if _cell_id(new) != _cell_id(before):
                        table.update_cell(key, column, new)
        return
    selected = None
    if table.row_count and table.is_valid_row_index(table.cursor_row):
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    with table.app.batch_update():
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if selected in keys:
            table.move_cursor(row=keys.index(selected))


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value.is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _docs_candidates() -> list[Path]:
    here = Path(__file__).resolve()
    package = here.parents[1]  # src/optterm
    return [package / "docs" / "patterns.md", here.parents[3] / "docs" / "patterns.md"]


@functools.cache
def _doc_sections() -> dict[str, str]:
    """docs/patterns.md split by `## ` heading, markdown emphasis removed; {} if not found."""
    for path in _docs_candidates():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        sections: dict[str, str] = {}
        for block in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
            title, _, body = block.partition("\n")
            body = re.sub(r"\*\*|`", "", body).strip()
            sections[title.strip()] = body
        return sections
    return {}


def definition(kind: PatternKind | str) -> tuple[str, str]:
    """(source, text): the detector's section of docs/patterns.md, or the built-in summary."""
    kind = PatternKind(kind)
    text = _doc_sections().get(kind.value)
    if text:
        return "docs/patterns.md", text
    return "built in", BUILTIN_DEFINITIONS[kind]


# --- the screen ------------------------------------------------------------------------------


class PatternsScreen(StateScreen):
    """Pattern signals: the active ones first (strongest first), then recent ones (newest first)."""

    TITLE = "Patterns"
    DEFAULT_CSS = """
    PatternsScreen #patterns-notice { height: 1; padding: 0 1; background: $boost; }
    PatternsScreen #patterns-notice.simulated { background: $warning 30%; }
    PatternsScreen #signals { height: auto; max-height: 60%; }
    PatternsScreen #detail-pane {
        height: 1fr; min-height: 6; border-top: solid $primary; padding: 0 1;
    }
    """
    BINDINGS: ClassVar = [
        Binding("s", "cycle_symbol", "Symbol filter"),
        Binding("k", "cycle_kind", "Kind filter"),
        Binding("a", "toggle_active", "Active only"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)
        self.symbol_filter: str | None = None
        self.kind_filter: PatternKind | None = None
        self.active_only = False
        self.stored: list[Signal] = []
        self.store_error: str | None = None
        self.store_loaded = False
        self.shown: list[tuple[Signal, bool]] = []  # (signal, active) in table order
        self._started = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield Static(id="patterns-notice")
        yield DataTable(id="signals", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="detail-pane"):
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#signals", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column or "state")
        self.render_state()
        if self.state.store is not None and not self._started:
            self._started = True
            self.load_stored()

    @work(exclusive=True, group="patterns-store", exit_on_error=False)
    async def load_stored(self) -> None:
        store = self.state.store
        if store is None:
            return
        try:
            self.stored = list(await store.analytics.load_signals(limit=200))
        except Exception as exc:  # the live signals still show; say why the saved ones do not
            self.store_error = str(exc) or type(exc).__name__
        self.store_loaded = True
        self.render_state()

    # -- filters ------------------------------------------------------------------------------

    def action_cycle_symbol(self) -> None:
        options: list[str | None] = [None, *self.state.symbols]
        at = options.index(self.symbol_filter) if self.symbol_filter in options else 0
        self.symbol_filter = options[(at + 1) % len(options)]
        self.render_state()

    def action_cycle_kind(self) -> None:
        options: list[PatternKind | None] = [None, *PatternKind]
        at = options.index(self.kind_filter) if self.kind_filter in options else 0
        self.kind_filter = options[(at + 1) % len(options)]
        self.render_state()

    def action_toggle_active(self) -> None:
        self.active_only = not self.active_only
        self.render_state()

    def action_back(self) -> None:
        go_back(self)

    def filter_label(self) -> str:
        return f"symbol: {self.symbol_filter or 'all'} · kind: {self.kind_filter or 'all'} · " + (
            "active only" if self.active_only else "active + recent"
        )

    # -- data -----------------------------------------------------------------------------------

    def sim_now(self) -> datetime | None:
        """The simulator's clock now (the engine state keeps the one definition)."""
        return self.state.sim_now()

    def clock_for(self, sig: Signal, now: datetime, sim_now: datetime | None) -> datetime:
        return sim_now if sig.feed is Feed.SIMULATED and sim_now is not None else now

    def signals(self) -> list[tuple[Signal, bool]]:
        """Every known signal once (its newest version), with whether it is active, filtered."""
        newest: dict[str, Signal] = {}
        sources: Iterable[Signal] = (
            *self.state.active_signals,
            *self.state.recent_signals,
            *self.stored,
        )
        for sig in sources:
            old = newest.get(sig.key)
            if old is None or (sig.last_seen, sig.updates) > (old.last_seen, old.updates):
                newest[sig.key] = sig
        now = self.state.now()
        sim_now = self.sim_now()
        engine_active = {s.key for s in self.state.active_signals}
        ticked = self.state.last_tick is not None
        out: list[tuple[Signal, bool]] = []
        for sig in newest.values():
            if self.symbol_filter and sig.symbol != self.symbol_filter:
                continue
            if self.kind_filter and sig.kind is not self.kind_filter:
                continue
            # After a tick the engine's verdict stands (it judges on the data's own clock).
            active = (
                sig.key in engine_active
                if ticked
                else sig.active(self.clock_for(sig, now, sim_now))
            )
            if self.active_only and not active:
                continue
            out.append((sig, active))
        live = sorted((p for p in out if p[1]), key=lambda p: (-p[0].confidence, p[0].key))
        rest = sorted((p for p in out if not p[1]), key=lambda p: p[0].last_seen, reverse=True)
        return live + rest

    # -- rendering ------------------------------------------------------------------------------

    def row_cells(
        self, sig: Signal, active: bool, now: datetime, sim_now: datetime | None
    ) -> list[Any]:
        clock = self.clock_for(sig, now, sim_now)
        seen = sig.last_seen.astimezone(IST)
        when = f"{seen:%H:%M:%S}"
        if seen.date() != clock.astimezone(IST).date():
            when = f"{seen:%d-%b} {when}"
        dim = "" if active else "dim"
        source = Text(sig.provider or "?", style=dim)
        source.append(" ")
        source.append(sig.feed.value, style=FEED_STYLE.get(sig.feed, ""))
        return [
            Text("●", style="bold green") if active else Text("·", style="dim"),
            Text(when, style=dim),
            Text(sig.symbol, style=dim),
            Text(f"{sig.expiry:%d-%b-%Y}", style=dim),
            Text(sig.kind.value, style=dim),
            Text(sig.direction.value, style=DIRECTION_STYLE.get(sig.direction, "dim")),
            Text(sig.strength.value.replace("_", " ").lower(), style=dim),
            Text(confidence_bar(sig.confidence), style=dim),
            Text(", ".join(f"{k:g}" for k in sig.strikes), style=dim),
            Text(sig.summary, style=dim),
            Text(age_text((clock - sig.first_seen).total_seconds()), style=dim),
            source,
        ]

    def render_state(self) -> None:
        if not self.is_mounted:
            return
        self.shown = self.signals()
        now = self.state.now()
        sim_now = self.sim_now()
        self.title = "Patterns"
        self.sub_title = self.filter_label()
        table = self.query_one("#signals", DataTable)
        sync_table(
            table,
            [(sig.key, self.row_cells(sig, active, now, sim_now)) for sig, active in self.shown],
        )
        self._render_notice()
        self.show_detail(self.selected())

    def _render_notice(self) -> None:
        n_active = sum(1 for _, active in self.shown if active)
        text = Text(
            f"{n_active} active · {len(self.shown) - n_active} recent · {self.filter_label()}"
        )
        if self.state.store is not None:
            if self.store_error:
                text.append(f" · saved signals unavailable: {self.store_error}", style="bold red")
            elif not self.store_loaded:
                text.append(" · reading saved signals…", style="dim")
        simulated = any(sig.feed is Feed.SIMULATED for sig, _ in self.shown)
        if simulated:
            text.append("  SIMULATED", style=FEED_STYLE[Feed.SIMULATED])
            text.append(" signals come from simulated prices, not the market")
        notice = self.query_one("#patterns-notice", Static)
        notice.update(text)
        notice.set_class(simulated, "simulated")

    def selected(self) -> Signal | None:
        table = self.query_one("#signals", DataTable)
        if not self.shown or not table.is_valid_row_index(table.cursor_row):
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((sig for sig, _ in self.shown if sig.key == key), None)

    @on(DataTable.RowHighlighted, "#signals")
    @on(DataTable.RowSelected, "#signals")
    def _row_chosen(self, event: DataTable.RowHighlighted | DataTable.RowSelected) -> None:
        key = event.row_key.value
        self.show_detail(next((sig for sig, _ in self.shown if sig.key == key), None))

    def detail_text(self, sig: Signal | None) -> Text:
        if sig is None:
            if self.shown:
                return Text("Select a signal to see its evidence.", style="dim")
            window = self.state.settings.patterns.window
            return Text(
                "No signals match. Detectors compare each chain with one at least "
                f"{window:g} s older, so nothing fires in a session's first minutes; "
                "press s, k or a to change the filters.",
                style="dim",
            )
        active = next((a for s, a in self.shown if s.key == sig.key), False)
        now = self.state.now()
        clock = self.clock_for(sig, now, self.sim_now())

        def ist(ts: datetime) -> str:
            local = ts.astimezone(IST)
            same_day = local.date() == clock.astimezone(IST).date()
            return f"{local:%H:%M:%S}" if same_day else f"{local:%d-%b %H:%M:%S}"

        out = Text()
        out.append(f"{sig.kind.value}", style="bold")
        out.append(f"  {sig.symbol} {sig.expiry:%d-%b-%Y}  ")
        out.append(sig.direction.value, style=DIRECTION_STYLE.get(sig.direction, ""))
        out.append(f"  {sig.strength.value.replace('_', ' ').lower()}  ")
        out.append(confidence_bar(sig.confidence))
        out.append("\n")
        out.append("ACTIVE" if active else "expired", style="bold green" if active else "dim")
        out.append(
            f" · first seen {ist(sig.first_seen)} · last seen {ist(sig.last_seen)} IST · "
            f"{'expires' if active else 'expired'} {ist(sig.expires_at)} · "
            f"refreshed {sig.updates}×\n"
        )
        if sig.strikes:
            out.append(f"Strikes: {', '.join(f'{k:g}' for k in sig.strikes)}\n")
        out.append(f"Source: {sig.provider or '?'} ")
        out.append(sig.feed.value, style=FEED_STYLE.get(sig.feed, ""))
        if sig.feed is Feed.SIMULATED:
            out.append(" (simulated prices, not the market)")
        out.append("\n")
        out.append(f"{sig.summary}\n\n")
        out.append("Evidence\n", style="bold underline")
        if sig.evidence:
            width = max(len(name) for name, _ in sig.evidence)
            for name, value in sig.evidence:
                out.append(f"  {name:<{width}}  {_number(value)}\n")
        else:
            out.append("  (none recorded)\n", style="dim")
        source, text = definition(sig.kind)
        out.append(f"\nDefinition ({source})\n", style="bold underline")
        out.append(text)
        return out

    def show_detail(self, sig: Signal | None) -> None:
        if self.is_mounted:
            self.query_one("#detail", Static).update(self.detail_text(sig))
