"""The table of `optterm`'s commands and the root's `--help`, without importing any command.

`optterm --help` is the command a newcomer runs first; listing sixteen commands must not import
sixteen modules, typer's help renderer (Rich, Markdown) or anything of the engine. The root group
(cli/root.py) imports a command's module only when that command runs, from this table; the root's
help is drawn here from the same table, in the box style typer uses for the other help pages, by
standard-library code only, so the entry point (cli/entry.py) can print it before typer loads.
tests/test_cli_lazy.py keeps every line here equal to what the commands themselves declare.
"""

from __future__ import annotations

import os
import sys

# Not `typing` (NamedTuple, TYPE_CHECKING): importing it costs more than the rest of the help.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["COMMANDS", "ROOT_HELP", "ROOT_OPTIONS", "Command", "render_root_help"]


class Command:
    __slots__ = ("attr", "help", "module", "name")

    def __init__(self, name: str, module: str, attr: str, help: str) -> None:
        self.name = name
        self.module = module  # imported when the command runs
        self.attr = attr  # a command function, or a typer.Typer for a command group
        self.help = help  # the first paragraph of the command's own help, on one line


# In the order `optterm --help` lists them: the commands, then the command groups.
COMMANDS: tuple[Command, ...] = (
    Command(
        "chain",
        "optterm.cli.chain",
        "chain",
        "Fetch one option chain now and print it with IV, Greeks, ΔOI and buildups, and the "
        "chain's metrics (CE | strike | PE, ATM marked, MP = max pain).",
    ),
    Command(
        "strategy",
        "optterm.cli.strategies",
        "strategy_app",
        "Analyse an option strategy on the current chain: legs, Greeks, max profit and loss, "
        "breakevens, probability of profit, payoff table and spot × IV matrix.",
    ),
    Command(
        "positions",
        "optterm.cli.positions",
        "positions",
        "Show the broker's positions (Angel One, read-only), grouped by underlying and expiry, "
        "with their P&L beside the broker's.",
    ),
    Command(
        "serve",
        "optterm.cli.daemon",
        "serve",
        "Poll the watchlist headless and keep the history, until Ctrl-C or SIGTERM.",
    ),
    Command(
        "status",
        "optterm.cli.daemon",
        "status",
        "Is the daemon healthy? Lease holder and heartbeat, last tick, provider health and the "
        "notification outbox.",
    ),
    Command(
        "scenarios",
        "optterm.cli.providers",
        "scenarios",
        "List the simulator's scenarios (choose one with --scenario or [providers.simulator]).",
    ),
    Command(
        "providers",
        "optterm.cli.providers",
        "providers",
        "Each configured provider: breaker, requests, success rate, latency, last error.",
    ),
    Command(
        "master",
        "optterm.cli.master",
        "master",
        "Download Angel One's instrument master now (with progress); keeps the last good copy.",
    ),
    Command(
        "doctor",
        "optterm.cli.creds",
        "doctor",
        "Which secret store is in use, what is missing, and which providers can be built.",
    ),
    Command(
        "locate",
        "optterm.cli.locate",
        "locate",
        "Print where optterm reads its config and keeps its data and logs.",
    ),
    Command(
        "patterns",
        "optterm.cli.patterns",
        "patterns",
        "Pattern signals from the store: the active ones, then recent expired ones.",
    ),
    Command(
        "scan",
        "optterm.cli.scan",
        "scan",
        "Run a scan over the F&O universe now and list the matches, ranked.",
    ),
    Command(
        "jobs",
        "optterm.cli.jobs",
        "jobs",
        "Recent runs of the daemon's scheduled jobs (end-of-day summary, retention, checkpoint, "
        "holiday list).",
    ),
    Command(
        "replay",
        "optterm.cli.replay",
        "replay",
        "Replay a stored day through the engine and print the signals (and with --rules the "
        "alert firings) it would have produced, with their times and values.",
    ),
    Command(
        "history", "optterm.cli.history", "history_app", "Inspect and export the stored history."
    ),
    Command(
        "backtest",
        "optterm.cli.backtest",
        "backtest_app",
        "Backtest on stored history: an option strategy (honest fills, Indian costs, figures, "
        "equity curve, trade log), an alert rule's firings, the detectors' hit rates.",
    ),
    Command(
        "creds",
        "optterm.cli.creds",
        "creds_app",
        "Store, show (masked) or delete broker credentials.",
    ),
    Command(
        "alerts",
        "optterm.cli.alerts",
        "alerts_app",
        "Alert rules: add (one line or flags), list, enable, disable, remove, history, test.",
    ),
    Command(
        "scans",
        "optterm.cli.scan",
        "scans_app",
        "Saved scans: add, list, remove, enable, disable, run, log.",
    ),
    Command(
        "notify",
        "optterm.cli.alerts",
        "notify_app",
        "Notification channels: send a test message.",
    ),
)

ROOT_HELP = "Options-intelligence terminal for F&O traders. With no command, opens the TUI."

# (long name, short name, value, help) of the root's options, as cli/root.py declares them.
ROOT_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--config", "-c", "<path>", "Config file (default: OPTTERM_CONFIG or the platform path)."),
    ("--scenario", "", "<str>", "Simulator scenario (see `optterm scenarios`)."),
    ("--seed", "", "<int>", "Simulator seed."),
    ("--speed", "", "<float>", "Simulated seconds per real second."),
    ("--provider", "", "<str>", "Use only this provider (angelone, nse, simulator)."),
    ("--log-level", "", "<str>", "debug, info, warning or error."),
    ("--version", "", "<bool>", "Show the version."),
    ("--help", "-h", "<bool>", "Show this message and exit."),
)


def _width(out: TextIO) -> int:
    """The terminal's width as Rich would take it: COLUMNS, else the terminal, else 80."""
    try:
        return max(40, int(os.environ["COLUMNS"]))
    except (KeyError, ValueError):
        pass
    try:
        if out.isatty():
            return max(40, os.get_terminal_size(out.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        pass
    return 80


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def _panel(title: str, rows: list[tuple[str, str]], width: int) -> list[str]:
    """A titled box of rows (left column, wrapped help), like typer's Rich panels."""
    inner = width - 4  # "│ " and " │"
    left = max(len(r[0]) for r in rows)
    help_width = max(20, inner - left - 2)
    out = [f"╭─ {title} " + "─" * (width - len(title) - 5) + "╮"]
    for key, text in rows:
        for i, part in enumerate(_wrap(text, help_width)):
            cell = f"{key if i == 0 else '':<{left}}  {part}"
            out.append(f"│ {cell:<{inner}} │")
    out.append("╰" + "─" * (width - 2) + "╯")
    return out


def render_root_help(out: TextIO | None = None) -> str:
    """`optterm --help`: usage, the root's options and every command with its one-line help."""
    width = _width(out or sys.stdout)
    long_w = max(len(o[0]) for o in ROOT_OPTIONS)
    options = [
        (f"{long:<{long_w}}  {short:<3}  {value:<7}", text)
        for long, short, value, text in ROOT_OPTIONS
    ]
    lines = [
        "",
        " Usage: optterm [OPTIONS] COMMAND [ARGS]...",
        "",
        *(f" {part}" for part in _wrap(ROOT_HELP, width - 2)),
        "",
        *_panel("Options", options, width),
        *_panel("Commands", [(c.name, c.help) for c in COMMANDS], width),
    ]
    return "\n".join(lines) + "\n"
