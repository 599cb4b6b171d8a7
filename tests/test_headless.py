"""The headless core must never import Textual: `serve` and every non-TUI command run without it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

from tests.conftest import Home

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


@pytest.mark.parametrize(
    "args",
    [
        ("chain", "NIFTY", "--json"),
        ("history", "list", "--json"),
        ("locate",),
        ("scenarios",),
        ("providers",),
        ("doctor",),
        ("--help",),
    ],
)
def test_non_tui_commands_run_without_textual(home: Home, args: tuple[str, ...]) -> None:
    home.write_config()
    argv = ["optterm", "--config", str(home.config), *args]
    code = PROBE + f"import sys\nsys.argv = {argv!r}\n"
    code += "from optterm.cli.root import main\nmain()\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=home.env, cwd=home.root
    )
    assert out.returncode == 0, out.stderr
    assert "TEXTUAL-ABSENT" in out.stderr


def test_the_probe_detects_textual() -> None:
    code = PROBE + "import textual\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "TEXTUAL-LOADED" in out.stderr
