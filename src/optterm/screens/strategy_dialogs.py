"""The strategy screen's two dialogs: a name to save the strategy under, and a saved strategy to
load or compare.

Both dismiss with a string (the name typed or picked) or None (escape). The name is checked
where it is typed, with the store's own rule, so a refused name never leaves the dialog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from optterm.engine.state import EngineState
    from optterm.engine.strategydesk import StrategyDesk
    from optterm.store.strategies import SavedStrategy

__all__ = ["StrategyName", "StrategyPicker", "ask_and_save", "pick_saved"]

_CSS = """
{name} {{ align: center middle; }}
{name} > #dialog {{
    width: 64; max-width: 95%; height: auto; max-height: 90%; padding: 1 2;
    border: thick $accent 60%; background: $surface;
}}
{name} #title {{ margin-bottom: 1; }}
{name} #problem {{ color: $error; height: auto; }}
{name} OptionList {{ height: auto; max-height: 16; }}
"""


class StrategyName(ModalScreen[str | None]):
    """A name to save the strategy under; enter saves, escape cancels."""

    DEFAULT_CSS = _CSS.format(name="StrategyName")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, taken: list[str], value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.taken = set(taken)
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.title_text), id="title")
            yield Input(self.value, placeholder="e.g. my_strangle", id="name")
            yield Static("", id="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        from optterm.store.strategies import DuplicateStrategy, check_strategy_name

        event.stop()
        name = event.value.strip()
        try:
            check_strategy_name(name)
        except ValueError as exc:
            self.query_one("#problem", Static).update(Text(str(exc)))
            return
        if name in self.taken:
            self.query_one("#problem", Static).update(Text(str(DuplicateStrategy(name))))
            return
        self.dismiss(name)


class StrategyPicker(ModalScreen[str | None]):
    """One of the saved strategies: enter picks, escape cancels. `rows` are (name, description)."""

    DEFAULT_CSS = _CSS.format(name="StrategyPicker")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.title_text), id="title")
            yield OptionList(
                *(
                    Option(Text.assemble((name, "bold"), "  ", (about, "dim")), id=name)
                    for name, about in self.rows
                ),
                id="names",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


async def ask_and_save(screen: Screen[Any], state: EngineState, desk: StrategyDesk) -> Any:
    """Ask a name and save the desk's strategy under it, with when and where its newest entry
    price was taken (run in a worker: the dialog is awaited). The saved strategy, or None
    (cancelled, or refused: said in a toast)."""
    from optterm.store.errors import StoreError

    store: Any = state.store
    if not desk.legs or store is None:
        screen.notify("No legs to save: add some with b / s on the chain." if store is not None
                      else "No store: saved strategies need one.", timeout=5)  # fmt: skip
        return None
    try:
        taken = await store.strategies.names()
        name = await screen.app.push_screen_wait(
            StrategyName("Save the strategy as (enter saves, escape cancels):", taken,
                         desk.name or "")
        )  # fmt: skip
        if name is None:
            return None
        symbol, legs, priced_at, source = desk.to_save()
        saved = await store.strategies.save(
            name, symbol, legs, priced_at=priced_at, source=source, at=state.now()
        )
    except (StoreError, ValueError) as exc:
        screen.notify(f"Not saved: {exc}", severity="error", timeout=8, markup=False)
        return None
    desk.saved_as(saved.name)
    when = saved.priced_at.astimezone(state.calendar.tz)
    screen.notify(f"Saved {saved.name}: entry prices from {saved.source} at "
                  f"{when:%d-%b %H:%M}.", timeout=5, markup=False)  # fmt: skip
    return saved


async def pick_saved(screen: Screen[Any], state: EngineState, title: str) -> SavedStrategy | None:
    """A saved strategy picked in a dialog, or None (none saved, cancelled, unreadable)."""
    from optterm.engine.savedstrategy import legs_text
    from optterm.store.errors import StoreError

    store: Any = state.store
    if store is None:
        screen.notify("No store: saved strategies need one.", severity="error", timeout=5)
        return None
    try:
        saved = await store.strategies.list()
    except StoreError as exc:
        screen.notify(f"Saved strategies: {exc}", severity="error", timeout=8, markup=False)
        return None
    if not saved:
        screen.notify("No saved strategies yet: W saves this one.", timeout=4)
        return None
    compared = {c.name for c in state.strategy.compare}
    rows = [(s.name, f"{s.symbol} {legs_text(s.legs)}"
             + (" · compared" if s.name in compared else "")) for s in saved]  # fmt: skip
    name = await screen.app.push_screen_wait(StrategyPicker(title + " · escape cancels", rows))
    return next((s for s in saved if s.name == name), None)
