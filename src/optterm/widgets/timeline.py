"""A one-row timeline of a session: where data is stored, the replay's cursor, and marks.

From the session's open (left edge) to its close (right edge), each cell a slice of the day:
`━` where snapshots are stored, `╌` where none are (before the recording began, a gap, after it
stopped), and on top the marks: `S` a signal, `!` an alert firing, `P` a provider switch, `×` a
gap. The cursor is the reverse-video cell. A click or a drag asks for the time under the mouse
(`Timeline.Picked`); the screen decides what to do with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from optterm.engine.replay.session import Mark

__all__ = ["MARK_GLYPH", "Timeline", "timeline_text"]

MARK_GLYPH = {"signal": ("S", "bold magenta"), "alert": ("!", "bold yellow"),
              "provider": ("P", "bold cyan"), "gap": ("×", "bold red")}  # fmt: skip
# A mark outranks another in the same cell: an alert is what a trader looks for first.
_RANK = {"alert": 3, "signal": 2, "provider": 1, "gap": 0}


def timeline_text(
    width: int,
    start: datetime,
    end: datetime,
    stored: Sequence[datetime],
    marks: Sequence[Mark],
    cursor: datetime | None,
) -> Text:
    """The row as text, `width` cells from `start` to `end`."""
    width = max(width, 1)
    span = max((end - start).total_seconds(), 1.0)

    def cell(t: datetime) -> int | None:
        x = int((t - start).total_seconds() / span * width)
        return x if 0 <= x < width else (width - 1 if x == width else None)

    have = [False] * width
    for t in stored:
        x = cell(t)
        if x is not None:
            have[x] = True
    glyphs: list[tuple[str, str]] = [("━", "green") if h else ("╌", "dim") for h in have]
    best = [-1] * width
    for m in marks:
        x = cell(m.at)
        if x is None or _RANK.get(m.kind, 0) <= best[x]:
            continue
        best[x] = _RANK.get(m.kind, 0)
        glyphs[x] = MARK_GLYPH.get(m.kind, ("?", ""))
    at = None if cursor is None else cell(cursor)
    out = Text()
    for x, (ch, style) in enumerate(glyphs):
        out.append("┃" if x == at and ch in "━╌" else ch, f"{style} reverse" if x == at else style)
    return out


class Timeline(Widget):
    """The session as one row (see the module docstring)."""

    DEFAULT_CSS = """
    Timeline { height: 1; width: 1fr; }
    """

    class Picked(Message):
        """The mouse asked for `at` (a click, or a drag over the row)."""

        def __init__(self, at: datetime) -> None:
            super().__init__()
            self.at = at

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.stored: Sequence[datetime] = ()
        self.marks: Sequence[Mark] = ()
        self.cursor: datetime | None = None
        self._dragging = False

    def show(
        self,
        start: datetime,
        end: datetime,
        stored: Sequence[datetime] | None = None,
        marks: Sequence[Mark] | None = None,
        cursor: datetime | None = None,
    ) -> None:
        self.start, self.end = start, end
        if stored is not None:
            self.stored = stored
        if marks is not None:
            self.marks = marks
        self.cursor = cursor
        self.refresh()

    def render(self) -> Text:
        if self.start is None or self.end is None:
            return Text("")
        return timeline_text(
            self.size.width, self.start, self.end, self.stored, self.marks, self.cursor
        )

    def time_at(self, x: int) -> datetime | None:
        if self.start is None or self.end is None or self.size.width <= 0:
            return None
        frac = (min(max(x, 0), self.size.width - 1) + 0.5) / self.size.width
        return self.start + timedelta(seconds=(self.end - self.start).total_seconds() * frac)

    def _pick(self, x: int) -> None:
        at = self.time_at(x)
        if at is not None:
            self.post_message(self.Picked(at))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._dragging = True
        self.capture_mouse()
        self._pick(event.x)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self._pick(event.x)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._dragging = False
        self.release_mouse()
