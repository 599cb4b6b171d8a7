"""The alerts screen: the rules with their state, and the recent firings with their deliveries.

Rules come from the store (every owner's), with their state label and times written exactly as
`optterm alerts list` writes them (present/alerts.py, present/time.py). Events are the store's
newest, plus any in `state.alerts` the store does not list (yet). The app calls
`on_state(state)` after every tick; the screen then re-reads the store in one exclusive worker
and updates only the cells that changed. Every change (new, edit, enable/disable, delete) goes
through the alert book (engine/alerts/book.py), as the CLI's do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Static

from optterm.model import AlertEvent, AlertKind, AlertRule, Delivery
from optterm.present.alerts import (
    STATE_STYLE,
    channel_result_line,
    event_value_text,
    rule_state,
)
from optterm.present.time import when_text
from optterm.screens.alert_form import AlertForm
from optterm.screens.base import StateScreen
from optterm.screens.confirm import ConfirmScreen
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.engine.state import EngineState
    from optterm.store.alerts import EventView, RuleStateRow

__all__ = ["EVENTS_SHOWN", "AlertsScreen", "delivery_text"]

EVENTS_SHOWN = 50
RULE_COLUMNS = ("ID", "Rule", "Channels", "State", "Last fired", "Fires")
EVENT_COLUMNS = ("Time", "Rule", "Alert", "Value", "Deliveries")
_DELIVERY_STYLE = {
    Delivery.SENT: "green",
    Delivery.PENDING: "yellow",
    Delivery.SENDING: "yellow",
    Delivery.FAILED: "bold red",
}
NO_STORE = (
    "No database is open in this session, so alert rules cannot be shown or changed here. "
    "Start the TUI with its store (the default), or use `optterm alerts list` / "
    "`optterm alerts add` from a shell."
)


def delivery_text(views: Sequence[Any]) -> Text:
    """'label SENT · label PENDING · label FAILED: reason' (DeliveryView-likes), or '—'."""
    if not views:
        return Text("—", style="dim")
    out = Text()
    for i, d in enumerate(views):
        if i:
            out.append(" · ")
        out.append(f"{d.channel_label} ")
        status = d.status.value
        if d.status is Delivery.FAILED and d.last_error:
            status += f": {d.last_error}"
        elif d.status is Delivery.PENDING and d.attempts > 0:
            status += f" (retrying after {d.attempts} tries)"
        out.append(status, style=_DELIVERY_STYLE.get(d.status, ""))
    return out


class AlertsScreen(StateScreen):
    """Alert rules (top) and recent alerts (bottom). See the module docstring."""

    DEFAULT_CSS = """
    AlertsScreen #rules-title, AlertsScreen #events-title {
        height: 1; padding: 0 1; background: $boost; text-style: bold;
    }
    AlertsScreen #rules { height: 1fr; }
    AlertsScreen #events { height: 1fr; }
    AlertsScreen #no-store { padding: 1 2; color: $warning; height: auto; }
    AlertsScreen #problem { padding: 0 1; color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New rule"),
        Binding("e", "edit", "Edit"),
        Binding("enter", "edit", "Edit", show=False),
        Binding("space", "toggle_rule", "Enable/disable"),
        Binding("x", "delete", "Delete"),
        Binding("delete", "delete", "Delete", show=False),
        Binding("t", "test", "Send test"),
        Binding("escape", "back", "Back"),
    ]
    _RULE_ACTIONS: ClassVar = frozenset({"edit", "toggle_rule", "delete", "test"})

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)
        self.rules: list[AlertRule] = []  # in table order
        self.states: dict[int, RuleStateRow] = {}
        self.events: list[tuple[AlertEvent, tuple[Any, ...]]] = []  # newest first
        self._rule_cells: dict[str, tuple[Any, ...]] = {}
        self._event_cells: dict[str, tuple[Any, ...]] = {}

    # ---------------------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static("Alert rules", id="rules-title")
        yield Static(Text(NO_STORE), id="no-store")
        yield Static("", id="problem")
        yield DataTable(id="rules", cursor_type="row", zebra_stripes=True)
        yield Static("Recent alerts (newest first)", id="events-title")
        yield DataTable(id="events", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        rules = self.query_one("#rules", DataTable)
        for col in RULE_COLUMNS:
            rules.add_column(col, key=col)
        events = self.query_one("#events", DataTable)
        for col in EVENT_COLUMNS:
            events.add_column(col, key=col)
        has_store = self.state.store is not None
        self.query_one("#no-store").display = not has_store
        rules.display = has_store
        self.refresh_data()
        if has_store:
            rules.focus()

    # -------------------------------------------------------------------------- the data

    def render_state(self) -> None:
        self.refresh_data()

    @work(exclusive=True, group="alerts-refresh", exit_on_error=False)
    async def refresh_data(self) -> None:
        """Re-read rules, their state and the recent events; update what changed."""
        from optterm.store.errors import StoreError

        store = self.state.store
        views: list[EventView] = []
        problem = ""
        if store is not None:
            try:
                rules = await store.alerts.list_rules()
                states = await store.alerts.load_activity()
                views = await store.alerts.list_events(limit=EVENTS_SHOWN)
            except StoreError as exc:
                problem = str(exc)
            else:
                self.rules, self.states = rules, states
        self.query_one("#problem", Static).update(Text(problem))
        self._render_rules()
        self._render_events(views)
        self.refresh_bindings()

    def _when(self, ts: datetime | None, now: datetime) -> str:
        return when_text(ts, self.state.settings.market.tz, now)

    def _rule_row(self, rule: AlertRule, now: datetime) -> tuple[Any, ...]:
        from optterm.engine.alerts.rules import rule_summary

        st = self.states.get(rule.id or -1)
        state = rule_state(rule, st, now)
        return (
            str(rule.id),
            Text(rule_summary(rule)),
            Text(", ".join(rule.channel_labels or rule.channels)),
            Text(state, style=STATE_STYLE.get(state, "")),
            self._when(st.last_fired_at if st else None, now),
            str(st.fire_count if st else 0),
        )

    def _render_rules(self) -> None:
        table = self.query_one("#rules", DataTable)
        now = self.state.now()
        rows = [(str(r.id), self._rule_row(r, now)) for r in self.rules]
        self.query_one("#rules-title", Static).update(
            f"Alert rules ({len(rows)})" if rows else "Alert rules: none yet — press n to add one"
        )
        _update_table(table, rows, self._rule_cells, RULE_COLUMNS)

    def _render_events(self, views: Sequence[EventView]) -> None:
        events: list[tuple[AlertEvent, tuple[Any, ...]]] = [(v.event, v.deliveries) for v in views]
        listed = {e.id for e, _ in events if e.id is not None}
        oldest = min((e.fired_at for e, _ in events), default=None)
        full = len(events) >= EVENTS_SHOWN
        for e in self.state.alerts:  # fired this session, not (yet) in what the store listed
            if e.id is not None and e.id in listed:
                continue
            if full and oldest is not None and e.fired_at < oldest:
                continue
            events.append((e, ()))
        events.sort(key=lambda p: (p[0].fired_at, p[0].id or 0), reverse=True)
        self.events = events[:EVENTS_SHOWN]
        now = self.state.now()
        rows = []
        for i, (e, deliveries) in enumerate(self.events):
            key = f"e{e.id}" if e.id is not None else f"m{i}:{e.rule_id}:{e.fired_at.isoformat()}"
            rows.append(
                (
                    key,
                    (
                        self._when(e.fired_at, now),
                        f"#{e.rule_id}",
                        Text(e.title),
                        "" if math.isnan(e.value) else event_value_text(e),
                        delivery_text(deliveries),
                    ),
                )
            )
        _update_table(self.query_one("#events", DataTable), rows, self._event_cells, EVENT_COLUMNS)

    # ------------------------------------------------------------------------ selection

    @property
    def selected(self) -> AlertRule | None:
        table = self.query_one("#rules", DataTable)
        row = table.cursor_row
        if not self.rules or row is None or not 0 <= row < table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return next((r for r in self.rules if str(r.id) == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new" and self.state.store is None:
            return None
        if action in self._RULE_ACTIONS and (self.state.store is None or self.selected is None):
            return None
        return True

    @on(DataTable.RowSelected, "#rules")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    @on(DataTable.RowHighlighted, "#rules")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    # -------------------------------------------------------------------------- actions

    def action_back(self) -> None:
        """Leave: through the app's own `back` action when it has one (OpttermApp switches to
        the dashboard), else pop this screen. Never awaited: a pop awaited from the popped
        screen's own handler deadlocks."""
        back = getattr(self.app, "action_back", None)
        if callable(back):
            self.app.call_later(back)
        elif self.is_current and len(self.app.screen_stack) > 1:
            self.dismiss()

    def action_new(self) -> None:
        if self.state.store is None:
            return
        self.app.push_screen(AlertForm(self.state), self._form_closed)

    def action_edit(self) -> None:
        rule = self.selected
        if rule is None or self.state.store is None:
            return
        if rule.kind is AlertKind.STRATEGY:  # the form has no strategy field
            self.notify(
                "A strategy rule is edited as one line: optterm alerts rm, then add it again "
                '(e.g. optterm alerts add "strategy NAME pnl below -5000").',
                timeout=8,
                markup=False,
            )
            return
        self.app.push_screen(AlertForm(self.state, rule=rule), self._form_closed)

    def _form_closed(self, rule: AlertRule | None) -> None:
        if rule is not None:
            from optterm.engine.alerts.rules import rule_summary

            self.notify(
                f"Saved alert rule {rule.id}: {rule_summary(rule)}", title="Alerts", markup=False
            )
            self.refresh_data()

    def action_toggle_rule(self) -> None:  # not action_toggle: DOMNode has one (an attribute)
        rule = self.selected
        if rule is None or rule.id is None or self.state.store is None:
            return
        self._write("enable" if not rule.enabled else "disable", rule)

    def action_delete(self) -> None:
        from optterm.engine.alerts.rules import rule_summary

        rule = self.selected
        if rule is None or rule.id is None or self.state.store is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._write("delete", rule)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete alert rule {rule.id}: {rule_summary(rule)}?\n"
                "Its firings stay in the history.",
                yes="Delete",
                no="Keep",
            ),
            answered,
        )

    @work(group="alerts-write", exit_on_error=False)
    async def _write(self, what: str, rule: AlertRule) -> None:
        from optterm.engine.alerts.book import AlertBook, AlertBookError, UnknownAlertRule

        store = self.state.store
        assert store is not None
        assert rule.id is not None
        book = AlertBook(store, self.state.settings)
        try:
            if what == "delete":
                await book.remove(rule.id)
            else:
                await book.set_enabled(rule.id, what == "enable")
        except UnknownAlertRule:
            self.notify(f"Alert rule {rule.id} is gone.", title="Alerts", severity="warning")
        except AlertBookError as exc:
            self.notify(str(exc), title="Alerts", severity="error", markup=False)
            return
        else:
            verb = {"delete": "Deleted", "enable": "Enabled", "disable": "Disabled"}[what]
            self.notify(f"{verb} alert rule {rule.id}.", title="Alerts", markup=False)
        self.refresh_data()

    def action_test(self) -> None:
        rule = self.selected
        if rule is not None:
            self._test(rule)

    @work(group="alerts-test", exit_on_error=False)
    async def _test(self, rule: AlertRule) -> None:
        """Send a test message through the rule's channels now (in-app ones are skipped)."""
        from optterm.engine.alerts.book import AlertBook, AlertBookError

        store = self.state.store
        if store is None or rule.id is None:
            return
        try:
            _, results = await AlertBook(store, self.state.settings).send_test_message(rule.id)
        except AlertBookError as exc:
            self.notify(str(exc), title="Alerts", severity="error", markup=False)
            return
        self.notify(
            "\n".join(channel_result_line(r) for r in results) or "The rule has no channels.",
            title=f"Test of alert rule {rule.id}",
            severity="error" if any(r.ok is False for r in results) else "information",
            markup=False,
            timeout=15,
        )


def _update_table(
    table: DataTable,
    rows: Sequence[tuple[str, tuple[Any, ...]]],
    shown: dict[str, tuple[Any, ...]],
    columns: Sequence[str],
) -> None:
    """Make `table` show `rows` (key, cells): cells updated in place when the rows are the same
    ones in the same order, else the table is rebuilt with the cursor kept on its row."""
    keys = [k for k, _ in rows]
    if keys == list(shown):
        for key, cells in rows:
            old = shown[key]
            for col, new, before in zip(columns, cells, old, strict=True):
                if _plain(new) != _plain(before):
                    table.update_cell(key, col, new)
            shown[key] = cells
        return
    current: str | None = None
    if table.row_count and table.cursor_row is not None and table.cursor_row < table.row_count:
        current = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
    old_row = table.cursor_row
    with table.app.batch_update():
        table.clear()
        shown.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
            shown[key] = cells
    if not rows:
        return
    target = keys.index(current) if current in keys else min(old_row or 0, len(rows) - 1)
    table.move_cursor(row=target, scroll=False)


def _plain(cell: Any) -> Any:
    return (cell.plain, str(cell.style)) if isinstance(cell, Text) else cell
