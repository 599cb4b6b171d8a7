"""Start-up boundaries of the command line: `optterm --help` imports no command and nothing heavy,
a command imports only what it uses, and the static table that makes this possible
(cli/commands.py) says exactly what the commands themselves declare.

Import boundaries, not times: a time assertion would flake under load, a module that starts
being imported where it should not is the regression that makes a command slow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer import _click as click

from optterm.cli.commands import COMMANDS, ROOT_HELP, ROOT_OPTIONS, render_root_help
from tests.conftest import Home, run_cli

HEAVY = ("textual", "numpy", "sqlalchemy", "alembic", "apprise", "rich", "pydantic", "typer")

# Runs `optterm ARGS` through the entry point in this interpreter and, as it exits, writes the
# top-level packages it imported (sys.modules) to a file: what a real process loads, nothing else.
PROBE = """
import atexit, json, sys
def record(path=sys.argv[1]):
    with open(path, "w") as f:
        json.dump(sorted({m.split(".")[0] for m in sys.modules} | set(sys.modules)), f)
atexit.register(record)
sys.argv = ["optterm", *sys.argv[2:]]
from optterm.cli.entry import main
main()
"""


def _loaded(home: Home, *args: str, codes: tuple[int, ...] = (0,)) -> set[str]:
    out = home.root / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env=home.env,
        cwd=home.root,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode in codes, proc.stderr
    return set(json.loads(out.read_text()))


def _unwanted(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in loaded)


@pytest.mark.process
@pytest.mark.parametrize("flag", ["--help", "-h", "--version"])
def test_root_help_imports_neither_typer_nor_any_command(home: Home, flag: str) -> None:
    loaded = _loaded(home, flag)
    assert _unwanted(loaded, HEAVY) == []
    commands = {c.module for c in COMMANDS}
    assert sorted(commands & loaded) == []


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "group"),
    [
        (("alerts", "list"), "alerts"),
        (("patterns",), "patterns"),
        (("history", "list"), "history"),
        (("status",), "status"),
    ],
)
def test_a_reading_command_imports_no_database_toolkit_tui_or_notifier(
    home: Home, args: tuple[str, ...], group: str
) -> None:
    """The read-only commands read a current SQLite store with sqlite3 alone
    (store/plainread.py): no SQLAlchemy, aiosqlite or event loop, no Alembic, no TUI, no
    Apprise, no HTTP client, no numpy (the model imports it only for chains)."""
    home.write_config()
    run_cli(home, "--config", str(home.config), "history", "list")  # the store now exists
    # `status` exits 1 here: no daemon runs (a verdict, not a failure).
    loaded = _loaded(home, "--config", str(home.config), *args, codes=(0, 1))
    assert "sqlite3" in loaded  # it does read the store
    unwanted = (
        "sqlalchemy",
        "aiosqlite",
        "asyncio",
        "alembic",
        "textual",
        "apprise",
        "httpx",
        "numpy",
    )
    assert _unwanted(loaded, (*unwanted, "scipy")) == []
    # Only the command group that runs is imported, not its fifteen siblings.
    own = next(c.module for c in COMMANDS if c.name == group)
    assert sorted({c.module for c in COMMANDS} - {own} & loaded) == []


@pytest.mark.process
def test_a_chain_that_carries_its_day_change_opens_no_store(home: Home) -> None:
    """ΔOI and buildups over the day from the chain's own change and previous closes (the
    simulator gives both) need no earlier chain: the store, there, is not opened."""
    home.write_config()
    run_cli(home, "--config", str(home.config), "alerts", "list")  # the store now exists
    args = ("--config", str(home.config), "--provider", "simulator", "chain", "NIFTY")
    loaded = _loaded(home, *args, "--json")
    assert _unwanted(loaded, ("sqlalchemy", "aiosqlite", "alembic", "textual", "apprise")) == []
    minutes = _loaded(home, *args, "--interval", "5m")
    assert "sqlalchemy" in minutes  # an interval in minutes reads the store's history


def test_alerts_list_reads_rules_added_by_another_command(home: Home) -> None:
    """Written through the Store (alerts add), listed through the plain reader."""
    home.write_config()
    added = run_cli(home, "--config", str(home.config), "alerts", "add", "NIFTY spot above 25000")
    assert added.returncode == 0, added.stderr
    listed = run_cli(home, "--config", str(home.config), "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (rule,) = json.loads(listed.stdout)
    assert rule["symbol"] == "NIFTY" and rule["threshold"] == 25000


@pytest.mark.process
def test_a_subgroup_help_imports_only_its_group(home: Home) -> None:
    loaded = _loaded(home, "alerts", "--help")
    assert _unwanted(loaded, ("textual", "numpy", "sqlalchemy", "alembic", "apprise")) == []
    others = {c.module for c in COMMANDS if c.module != "optterm.cli.alerts"}
    assert sorted(others & loaded) == []


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split()).replace("\\[", "[")


def test_the_table_lists_each_command_with_its_own_help() -> None:
    import typer

    from optterm.cli.root import app

    root = typer.main.get_command(app)
    ctx = click.Context(root)
    assert root.list_commands(ctx) == [c.name for c in COMMANDS]
    for entry in COMMANDS:
        command = root.get_command(ctx, entry.name)
        assert command is not None and command.name == entry.name
        assert entry.help == _first_paragraph(command.help or ""), entry.name


def test_the_table_lists_the_root_options_as_declared() -> None:
    import typer

    from optterm.cli.root import app

    root = typer.main.get_command(app)
    assert _first_paragraph(root.help or "") == ROOT_HELP
    declared = {p.opts[0] if p.opts[0].startswith("--") else p.opts[-1]: p for p in root.params}
    declared["--help"] = root.get_help_option(click.Context(root, **root.context_settings))
    assert {o[0] for o in ROOT_OPTIONS} == set(declared)
    for long, short, _value, text in ROOT_OPTIONS:
        param = declared[long]
        assert param.help == text, long
        assert (short in param.opts) if short else all(o.startswith("--") for o in param.opts)


def test_help_through_typer_is_the_static_help(home: Home) -> None:
    """`optterm --config X --help` goes through typer; it prints the same page as the fast path."""
    home.write_config()
    via_typer = run_cli(home, "--config", str(home.config), "--help")
    fast = run_cli(home, "--help")
    assert via_typer.returncode == fast.returncode == 0
    assert via_typer.stdout == fast.stdout
    for entry in COMMANDS:
        assert f"│ {entry.name} " in fast.stdout


def test_root_help_wraps_to_the_terminal_and_keeps_every_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for columns in ("60", "80", "140"):
        monkeypatch.setenv("COLUMNS", columns)
        page = render_root_help()
        assert max(len(line) for line in page.splitlines()) == int(columns)
        words = page.replace("│", " ").split()
        for entry in COMMANDS:
            start = words.index(entry.name)
            assert words[start + 1 : start + 1 + len(entry.help.split())] == entry.help.split()


def test_the_secret_store_imports_keyring_only_when_it_asks_the_keyring() -> None:
    # Modules that only hold a SecretStore (the alert book, the notifier) are imported by
    # commands that never read a secret: keyring's backend discovery is not their cost.
    probe = (
        "import sys, optterm.infra.secrets, optterm.engine.alerts.book;"
        "print('keyring' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "False"
