"""The help screen: every key, by screen. `KEYMAP` is the one list of keys the README and this
screen show; a test checks that every shown or described binding of the app and its screens is
in it.

A KEYMAP key is one key or several separated by " / " ("enter / e"); "1–9" is a range of digits;
"pgup"/"pgdn" are Textual's "pageup"/"pagedown". `keymap_keys()` turns them into Textual key names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical, VerticalScroll
from textual.keys import _character_to_key
from textual.widgets import Footer, Header, Static

from optterm.screens.base import StateScreen
from optterm.screens.patterns import go_back

if TYPE_CHECKING:
    from optterm.engine.state import EngineState

__all__ = ["KEYMAP", "HelpScreen", "key_names", "keymap_keys"]

KEYMAP: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Global",
        [
            ("d", "dashboard"),
            ("p", "patterns"),
            ("r", "alerts (rules)"),
            ("v", "providers"),
            ("h", "history (of the strike under the chain's cursor)"),
            ("f", "scanner (scans over the F&O universe)"),
            ("S", "strategy: the legs added with b / s, payoff, Greeks, what-if"),
            ("?", "help"),
            ("t", "toggle light/dark theme"),
            ("ctrl+p", "command palette"),
            ("escape", "back / close"),
            ("o", "poll from this terminal (attached, when the daemon is gone)"),
            ("z", "dismiss notifications (toasts)"),
            ("q", "quit"),
        ],
    ),
    (
        "Dashboard",
        [
            ("1–9", "switch symbol"),
            ("/", "symbol picker: type to filter; any symbol the provider serves"),
            ("] / [", "next / previous expiry"),
            ("g", "toggle Greeks (beside Bid/Ask where the width allows)"),
            ("u", "OI, ΔOI and volume in lots / lakh shares"),
            ("O", "OI profile of the chain (shift+o)"),
            ("+ / =", "widen the strike window"),
            ("-", "narrow the strike window"),
            ("c", "jump to ATM"),
            ("i", "ΔOI and buildups over: day, 5m, 15m, 30m (cycles)"),
            ("a", "alert on the selected strike and side"),
            ("T", "replay (time travel) the shown chain's stored day"),
            ("b / s", "buy / sell the call or put under the cursor: a strategy leg (S shows it)"),
            ("up / down", "move one row"),
            ("pgup / pgdn", "move one page"),
            ("home / end", "first / last row"),
            ("left / right", "call / put side"),
            ("enter", "select"),
        ],
    ),
    (
        "Alerts",
        [
            ("n", "new rule"),
            ("enter / e", "edit"),
            ("space", "enable / disable"),
            ("x / delete", "delete"),
            ("t", "send a test notification"),
            ("ctrl+s", "save the rule (rule form)"),
            ("up / down", "previous / next field (rule form)"),
            ("escape", "back (rule form: cancel)"),
        ],
    ),
    (
        "Patterns",
        [
            ("s", "symbol filter (all, then each watched symbol)"),
            ("k", "kind filter (all, then each pattern kind)"),
            ("a", "active only / active and recent"),
        ],
    ),
    (
        "History",
        [
            ("[ / ]", "previous / next strike"),
            ("left / right", "previous / next day"),
            ("e", "next expiry"),
            ("c / p", "calls / puts on or off"),
            ("r", "reload"),
        ],
    ),
    (
        "Scanner",
        [
            ("e", "edit the scan (enter runs it, escape: back to the results)"),
            ("enter", "a result: its chain on the dashboard; a saved scan: run it"),
            ("s", "sort by the next column (then the scan's own order)"),
            ("S", "ascending / descending"),
            ("R", "run the scan again"),
            ("a", "alert on the selected result's underlying"),
            ("tab", "saved scans, results, log"),
        ],
    ),
    (
        "OI profile",
        [
            ("u", "lots / lakh shares"),
            ("escape", "back to the dashboard"),
        ],
    ),
    (
        "Replay",
        [
            ("space", "play / pause (at the speed shown)"),
            (". / ,", "one snapshot on / back"),
            ("] / [", "5 minutes on / back"),
            ("shift+right", "5 minutes on (as ])"),
            ("shift+left", "5 minutes back (as [)"),
            ("} / {", "30 minutes on / back"),
            ("ctrl+right", "30 minutes on (as })"),
            ("ctrl+left", "30 minutes back (as {)"),
            ("> / <", "double / halve the speed (½× to 600×)"),
            ("@", "go to a time: 10:45, -30m, +5m, open, close"),
            ("O", "the open"),
            ("Y", "the previous session's close"),
            ("n / N", "next / previous signal or alert firing"),
            ("=", "pin a baseline (ΔOI since it); again: unpin"),
            ("L / escape", "back to LIVE"),
        ],
    ),
    (
        "Strategy",
        [
            ("up / down", "select a leg"),
            ("+ / -", "one lot more / fewer on the selected leg"),
            ("x / delete", "remove the selected leg"),
            ("C", "clear the strategy"),
            ("left / right", "what-if: spot 0.5 % down / up"),
            (", / .", "what-if: IV of every leg 1 vol point down / up"),
            ("< / >", "what-if: IV of the selected leg 1 vol point down / up"),
            ("[ / ]", "what-if: one day back / on (never past the first expiry)"),
            ("0", "what-if off: back to live"),
            ("P", "the broker's positions (Angel One): the next group as the strategy"),
            ("W", "save the strategy under a name (its entry prices, when and where taken)"),
            ("L", "load a saved strategy"),
            ("V", "compare with a saved strategy (again: stop comparing it)"),
            ("B", "backtest this: the legs (strikes as picked) on the backtest screen"),
            ("escape", "back to the dashboard"),
        ],
    ),
    (
        "Backtest",
        [
            ("enter", "run the spec over the span (in the spec, from or to box)"),
            ("tab", "spec, from, to, results"),
            ("e", "edit the spec"),
            ("R", "run again"),
            ("x", "stop the run: the partial result is kept and stored"),
            ("a", "allow / refuse SIMULATED data (--allow-simulated)"),
            ("t", "the next strategy template in the spec"),
            ("g", "the gap report, notes, monthly and weekday breakdowns"),
            ("l", "the stored runs (enter opens one)"),
            ("escape", "out of the form; again: back"),
        ],
    ),
    (
        "Symbol picker",
        [
            ("up / down", "previous / next symbol (type to filter)"),
            ("enter", "open it (one outside the watchlist is polled while shown)"),
            ("escape", "cancel"),
        ],
    ),
    (
        "Dialogs",
        [
            ("y / enter", "yes"),
            ("n / escape", "no / cancel"),
        ],
    ),
]

_ALIASES = {"pgup": "pageup", "pgdn": "pagedown", "esc": "escape", "del": "delete"}


def key_names(keys: str) -> list[str]:
    """Textual key names of one KEYMAP key string: "] / [" → right/left_square_bracket."""
    out: list[str] = []
    for token in keys.split(" / "):
        token = token.strip()
        span = re.fullmatch(r"(\d)[–-](\d)", token)
        if span:
            out.extend(str(d) for d in range(int(span[1]), int(span[2]) + 1))
        elif len(token) == 1:
            out.append(_character_to_key(token))
        else:
            out.append(_ALIASES.get(token.lower(), token.lower()))
    return out


def keymap_keys() -> set[str]:
    """Every key KEYMAP documents, as Textual key names."""
    return {name for _, entries in KEYMAP for keys, _ in entries for name in key_names(keys)}


def section_text(title: str, entries: list[tuple[str, str]], width: int) -> Text:
    out = Text(title, style="bold underline")
    for keys, description in entries:
        out.append("\n  ")
        out.append(f"{keys:<{width}}", style="bold cyan")
        out.append(f"  {description}")
    return out


class HelpScreen(StateScreen):
    """Every key, grouped by the screen it works on."""

    TITLE = "Help"
    SUB_TITLE = "keys"
    DEFAULT_CSS = """
    HelpScreen #help { padding: 0 1; }
    HelpScreen #help-columns { height: auto; layout: vertical; }
    HelpScreen.-wide #help-columns { layout: horizontal; }
    HelpScreen .help-column { height: auto; width: 100%; }
    HelpScreen.-wide .help-column { width: 1fr; }
    HelpScreen .help-section { height: auto; margin-bottom: 1; }
    """
    # Textual declares this an instance variable, so it takes no ClassVar annotation here.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar = [Binding("escape", "back", "Back")]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)

    def compose(self) -> ComposeResult:
        width = max(len(keys) for _, entries in KEYMAP for keys, _ in entries)
        # Two columns on a wide terminal, one below the other on a narrow one; KEYMAP order
        # either way. The first column takes sections until it holds about half the lines.
        sizes = [len(entries) + 2 for _, entries in KEYMAP]
        split, total = 1, sizes[0]
        while split < len(KEYMAP) - 1 and total + sizes[split] / 2 <= sum(sizes) / 2:
            total += sizes[split]
            split += 1
        yield Header()
        with VerticalScroll(id="help"):
            with Container(id="help-columns"):
                for part in (KEYMAP[:split], KEYMAP[split:]):
                    with Vertical(classes="help-column"):
                        for title, entries in part:
                            yield Static(
                                section_text(title, entries, width),
                                id=f"help-{title.lower().replace(' ', '-')}",
                                classes="help-section",
                            )
            yield Static(
                Text(
                    "Keys work in any terminal: no binding needs ctrl+enter or function keys. "
                    "Screen keys apply on that screen; global keys everywhere else.",
                    style="dim",
                ),
                id="help-note",
            )
        yield Footer()

    def action_back(self) -> None:
        go_back(self)
