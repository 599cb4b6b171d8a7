"""The headless core must never import Textual: `serve` and every non-TUI command run without it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Home

HEADLESS = [
    "optterm.model",
    "optterm.config.settings",
    "optterm.infra.paths",
    "optterm.market",
    "optterm.store",
    "optterm.providers.base",
    "optterm.providers.simulator.provider",
    "optterm.providers.factory",
    "optterm.providers.failover",
    "optterm.providers.nse.client",
    "optterm.providers.angelone.client",
    "optterm.providers.angelone.master",
    "optterm.infra.secrets",
    "optterm.engine.provider_status",
    "optterm.cli.creds",
    "optterm.engine.events",
    "optterm.engine.poller",
    "optterm.engine.runner",
    "optterm.engine.thread",
    "optterm.engine.loopproxy",
    "optterm.engine.state",
    "optterm.cli.serve",
    "optterm.cli.history",
    "optterm.present.chain",
    "optterm.engine.compose",
    "optterm.cli.root",
]

PROBE = """
import atexit, sys
atexit.register(lambda: print("TEXTUAL-LOADED" if any(
    m == "textual" or m.startswith("textual.") for m in sys.modules) else "TEXTUAL-ABSENT",
    file=sys.stderr))
"""


def test_headless_modules_do_not_import_textual() -> None:
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in HEADLESS)
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
