"""A block of styled text that redraws without a layout pass when its height is unchanged.

Textual's Static asks the whole screen to lay itself out again on every update; a panel that a
key or a tick rewrites in place (the strategy screen's figures, tables and legs) only needs its
own lines repainted, unless it grew or shrank.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

__all__ = ["TextPanel"]


class TextPanel(Widget):
    DEFAULT_CSS = "TextPanel { height: auto; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()
        self._lines = 1

    @property
    def text(self) -> Text:
        return self._text

    def show(self, text: Text | str) -> None:
        text = Text(text) if isinstance(text, str) else text
        lines = text.plain.count("\n") + 1
        self._text = text
        self.refresh(layout=lines != self._lines)
        self._lines = lines

    def render(self) -> Text:
        return self._text
