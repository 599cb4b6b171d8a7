"""The header every screen carries: what is shown, where it came from and how old it is.

Two lines. The first is the chain's own: symbol, expiry, spot and its change on the day (from the
previous close the provider gives, so a terminal started at 10:10 shows the day's move, not
+0.00), the feed, provider, data time and age, the market's state and any warning. Each of its
fields has a rank; when the line is wider than the terminal, fields go highest rank first
(`fit`). Rank 0, never dropped: the symbol, the feed (LIVE / DELAYED / SIMULATED), the source,
the data's age, STALE and the market state: a number on screen is never without its source and
age. The second line is what surrounds the chain (present/header.py): which listed expiry and
how far off, the month's future and its basis, India VIX, each with its own source and age,
"n/a" where the provider has none; it is cut at the edge, never wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from rich.text import Text
from textual.widget import Widget

from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed
from optterm.present.chain import data_age
from optterm.present.header import (
    Figure,
    change_figure,
    header_figures,
    price_decimals,
    session_text,
)

__all__ = ["StatusBar", "fit", "status_parts", "status_text"]

_FEED_STYLE = {
    Feed.LIVE: "bold white on dark_green",
    Feed.DELAYED: "bold black on yellow",
    Feed.SIMULATED: "bold white on dark_magenta",
}


def stale_after(state: EngineState) -> float:
    """Seconds without new data after which the feed counts as stale (`[poller] stale_after`)."""
    return state.settings.poller.stale_seconds


Part = tuple[int, Text | tuple[str, str] | str]
"""(rank, text): rank 0 stays at any width; the highest rank is the first to go."""


def fit(parts: Sequence[Part], width: int | None = None) -> Text:
    """The parts in order, without the highest ranks that do not fit in `width` cells."""
    texts = [(rank, Text.assemble(t)) for rank, t in parts]
    if width is not None:
        for drop in sorted({rank for rank, _ in texts if rank > 0}, reverse=True):
            if sum(t.cell_len for _, t in texts) <= width:
                break
            texts = [(rank, t) for rank, t in texts if rank != drop]
    return Text.assemble(*(t for _, t in texts))


def status_text(
    state: EngineState,
    symbol: str | None = None,
    expiry: date | None = None,
    width: int | None = None,
) -> tuple[Text, bool]:
    """(the two header lines, the first fitted to `width`; whether the data is stale)."""
    parts, stale, context = status_parts(state, symbol, expiry)
    return _two_lines(fit(parts, width), context, width), stale


def status_parts(
    state: EngineState, symbol: str | None = None, expiry: date | None = None
) -> tuple[list[Part], bool, Text]:
    """(the first line's ranked fields, whether the data is stale, the second line). Plain
    Text: provider names and errors are never parsed as markup."""
    now = state.now()
    if state.engine_error:
        stopped = Text(f" ENGINE STOPPED: {state.engine_error} ", style="bold white on red")
        return [(0, stopped)], True, Text("")
    if symbol is None:
        symbol = state.symbols[0] if state.symbols else ""
    update = state.chain(symbol, expiry)
    # The shown instrument's own session: an MCX evening is open, and stale-feed judged on it.
    calendar = state.calendar.for_symbol(symbol)
    open_now = calendar.is_open(now)
    attached, master = _attached_line(state), _master_line(state)
    market = Text(session_text(calendar, now, open_now), style="reverse")
    if update is None:
        return (
            [
                (0, (f" {symbol} ", "bold")),
                (1, "waiting for the first chain…  "),
                (0, market),
                (2, attached),
                (7, master),
            ],
            False,
            Text(""),
        )
    snap = update.snapshot
    age = data_age(snap, now)
    stale = (open_now and age > stale_after(state)) or _stalled(state, snap, now)
    when = snap.provider_ts.astimezone(IST).strftime("%H:%M:%S")
    parts: list[Part] = [
        (0, (f" {snap.symbol} ", "bold")),
        (3, f"{snap.expiry:%d-%b} "),
        (1, (f"{snap.spot:,.{price_decimals(snap)}f}", "bold")),  # USDINR: 88.9800
        (5, " "),
        (5, _styled(change_figure(snap))),
        (1, "  "),
        (0, (f" {snap.feed.value} ", _FEED_STYLE[snap.feed])),
        (0, f" via {snap.provider}"),
        (4, f" · data {when} IST"),
        (0, f" · age {age:.0f}s  "),
        (0, market),
    ]
    if snap.feed is Feed.SIMULATED:
        parts.append((6, ("  simulated prices, not the market", "italic")))
    if stale:
        parts.append((0, ("  STALE: no new data ", "bold white on red")))
    if state.failures:
        parts.append((2, (f"  {len(state.failures)} fetch failure(s)", "bold red")))
    for h in state.health:
        if h.breaker != "closed":
            why = f": {h.last_error}" if h.last_error else ""
            parts.append((2, (f"  {h.provider} {h.breaker}{why[:60]}", "bold red")))
    parts.append((2, attached))
    parts.append((7, master))
    context = Text(" · ").join(_styled(f) for f in header_figures(snap, now))
    return parts, stale, context


def _two_lines(first: Text, context: Text, width: int | None = None) -> Text:
    # Each line is cut at the edge, never wrapped: a wrapped first line would push the second
    # out of the header's two rows.
    if width is not None and context.cell_len > width - 1:
        context = context.copy()
        context.truncate(width - 1, overflow="ellipsis")
    return Text.assemble(first, "\n ", context, no_wrap=True, overflow="ellipsis")


def _styled(figure: Figure) -> Text:
    style = {1: "green", -1: "red"}.get(figure.sign, "")
    return Text(figure.text, style=style)


def _attached_line(state: EngineState) -> Text:
    """Attached terminals say to which daemon, and loudly when it is gone."""
    follower = state.attached
    if follower is None:
        return Text("")
    lease = follower.lease
    who = f"{lease.host} pid {lease.pid}" if lease else "a daemon"
    if not follower.lease_live:
        return Text(f"  DAEMON GONE ({who}): press o to poll here ", style="bold white on red")
    since = lease.since.astimezone(IST).strftime("%H:%M") if lease else "?"
    return Text(f"  ATTACHED to {who} since {since} IST", style="bold cyan")


def _master_line(state: EngineState) -> Text:
    """Angel One's instrument master while it downloads (tens of MB), or why it failed."""
    if state.master is None:
        return Text("")
    status = state.master.status()
    if status.downloading is not None:
        done, total = status.downloading
        size = f"{done / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "") + " MB"
        return Text(f"  instrument master: downloading {size}", style="bold yellow")
    if status.last_error and status.rows is None:
        return Text(f"  instrument master: {status.last_error}", style="bold red")
    return Text("")


def _stalled(state: EngineState, snap: ChainSnapshot, now: datetime) -> bool:
    """The provider keeps answering but its data stopped moving (same timestamp for long)."""
    since = state.unchanged_since.get((snap.symbol, snap.expiry))
    return since is not None and (now - since).total_seconds() > stale_after(state)


class StatusBar(Widget):
    """Two lines, repainted in place: its size never changes, so an update (every tick, and
    every second for the ages) costs a repaint of these lines, never a layout of the screen."""

    DEFAULT_CSS = """
    StatusBar { height: 2; width: 1fr; background: $boost; }
    StatusBar.stale { background: $error 30%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._parts: list[Part] = []
        self._around = Text("")

    def render(self) -> Text:
        # Fitted at paint time, so a resize drops (or restores) fields by rank.
        width = self.size.width or None
        return _two_lines(fit(self._parts, width), self._around, width)

    def show(self, state: EngineState, symbol: str | None = None, expiry: date | None = None):
        parts, stale, context = status_parts(state, symbol, expiry)
        if parts != self._parts or context != self._around:
            self._parts, self._around = parts, context
            self.refresh()
        self.set_class(stale, "stale")
