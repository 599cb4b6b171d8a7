"""What every full screen of the app shares: it shows the engine's state."""

from __future__ import annotations

from textual.screen import Screen

from optterm.engine.state import EngineState

__all__ = ["StateScreen"]


class StateScreen(Screen[None]):
    """A screen over the engine's state. The app hands the top screen each tick (`on_state`);
    a screen under another one misses those ticks, so it catches up when it is back on top."""

    def __init__(
        self,
        state: EngineState,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.state = state

    def on_state(self, state: EngineState) -> None:
        """Called by the app after each tick while this screen is shown."""
        self.state = state
        if self.is_mounted:
            self.render_state()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.render_state()

    def render_state(self) -> None:
        """Show `self.state`. The default: nothing on this screen changes with the data."""
