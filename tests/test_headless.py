"""The headless core must never import Textual: `serve` and every non-TUI command run without it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import Home, home_env

pytestmark = pytest.mark.process

# Every module but the TUI's own is headless. Discovered, not listed, so that a new module is
# covered the day it is written. The import-linter contracts (pyproject.toml) check the same rule
# statically; this probe catches what they cannot see: an import made at run time.
UI = ("optterm.app", "optterm.screens", "optterm.widgets")
NOT_IMPORTABLE = ("optterm.__main__", "optterm.store.migrations")


def headless_modules() -> list[str]:
    import optterm

    names = [m.name for m in pkgutil.walk_packages(optterm.__path__, "optterm.")]
    return [n for n in names if not n.startswith(UI) and not n.startswith(NOT_IMPORTABLE)]


def test_headless_modules_are_discovered() -> None:
    found = headless_modules()
    assert {"optterm.engine.poller", "optterm.cli.root", "optterm.store"} <= set(found)
    assert not [m for m in found if m.startswith(UI)]


PROBE = """
import atexit, sys
atexit.register(lambda: print("TEXTUAL-LOADED" if any(
    m == "textual" or m.startswith("textual.") for m in sys.modules) else "TEXTUAL-ABSENT",
    file=sys.stderr))
"""


def test_headless_modules_do_not_import_textual() -> None:
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in headless_modules())
    code += "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
    code += "print(len(bad))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", out.stdout + out.stderr


COMMANDS = [
    ("chain", "NIFTY", "--json"),
    ("history", "list", "--json"),
    ("locate",),
    ("scenarios",),
    ("providers",),
    ("doctor",),
    ("strategy", "NIFTY short strangle", "--json"),
    ("--help",),
]

# One process runs every command in turn through main(), as the entry point does, and records
# each one's exit code and the Textual modules new since the previous command (the first one
# also answers for importing main): one interpreter start instead of one per command.
RUN_ALL = """
import json, sys
from optterm.cli.root import main

def textual():
    return {m for m in sys.modules if m == "textual" or m.startswith("textual.")}

argv, results, seen = json.loads(sys.argv[1]), {}, set()
for args in argv:
    sys.argv = args
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    now = textual()
    results[" ".join(args[3:])] = {"code": code, "textual": sorted(now - seen)}
    seen = now
with open(OUT, "w") as f:
    json.dump(results, f)
"""


@pytest.fixture(scope="module")
def command_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("headless")
    home = Home(root, home_env(root))
    home.write_config()
    out = root / "results.json"
    argv = [["optterm", "--config", str(home.config), *args] for args in COMMANDS]
    code = f"OUT = {str(out)!r}\n" + RUN_ALL
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=home.env,
        cwd=home.root,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(out.read_text())
    for run in runs.values():
        run["stderr"] = proc.stderr  # the commands' messages, for a failing assertion
    return runs


@pytest.mark.parametrize("args", COMMANDS)
def test_non_tui_commands_run_without_textual(
    command_runs: dict[str, dict], args: tuple[str, ...]
) -> None:
    run = command_runs[" ".join(args)]
    assert run["code"] == 0, run["stderr"]
    assert run["textual"] == [], run["textual"]


def test_the_probe_detects_textual() -> None:
    code = PROBE + "import textual\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "TEXTUAL-LOADED" in out.stderr
