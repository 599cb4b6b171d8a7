"""Every test is hermetic (tests/conftest.py): its own empty home and XDG dirs, no OPTTERM_*
variables, no OS keyring, and no blinking text cursor. These tests show the isolation holds
against a developer's own setup, and that without it the same setup would leak in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, TextArea

from optterm.config import Settings, load_settings
from optterm.infra import paths
from tests.conftest import REPO, XDG_DIRS, isolate

# The developer's own values, read when this module is collected: before any fixture runs.
DEVELOPER = {name: os.environ.get(name) for name in ("HOME", *XDG_DIRS)}

# What a trader who also develops optterm may well have: a personal config that changes the
# watchlist and the interval, and an override in the shell.
HOSTILE_CONFIG = """
[poller]
interval = 1
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 5
"""


def plant_developer_setup(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A developer's machine under `root`: the config where platformdirs finds it from HOME
    alone (no XDG variables set), and an OPTTERM_* variable in the environment."""
    home = root / "developer"
    planted = home / ".config" / "optterm" / "config.toml"
    planted.parent.mkdir(parents=True)
    planted.write_text(HOSTILE_CONFIG, encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    for name in XDG_DIRS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPTTERM_POLLER_INTERVAL", "2")
    return planted


def test_each_test_has_its_own_empty_home(hermetic: Path) -> None:
    assert os.environ["HOME"] != DEVELOPER["HOME"]
    assert Path(os.environ["HOME"]).is_relative_to(hermetic)
    for where in (paths.config_file(), paths.data_dir(), paths.cache_dir(), paths.log_dir()):
        assert where.is_relative_to(hermetic), where
        assert not where.exists()
    assert not [name for name in os.environ if name.upper().startswith("OPTTERM_")]
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.fail"
    assert load_settings(None) == Settings()  # defaults: nothing of anyone's setup


def test_a_planted_personal_config_is_read_without_isolation_and_not_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = plant_developer_setup(tmp_path, monkeypatch)
    # Without isolation optterm finds both, as it would on that developer's machine…
    leaked = load_settings(None)
    assert leaked.source == planted
    assert [w.symbol for w in leaked.poller.watch] == ["BANKNIFTY"]
    assert leaked.poller.interval == 2
    # …and the isolation every test runs under (the autouse fixture's) shuts both out.
    isolate(monkeypatch, tmp_path / "isolated")
    kept_out = load_settings(None)
    assert kept_out.source is None
    assert kept_out == Settings()


@pytest.mark.process
def test_the_screens_snapshot_passes_on_a_machine_with_a_personal_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's reproduction: a personal `[[poller.watch]] BANKNIFTY` broke the snapshot
    tests. Run one in a fresh pytest on such a machine: it passes with this suite's conftest,
    and fails without it (--noconftest), so it is the conftest that keeps the config out."""
    plant_developer_setup(tmp_path, monkeypatch)
    # This session's own pytest and plugin settings stay out of the fresh one.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEXTUAL_"))}
    dashboard = "tests/test_snapshots.py::test_screen_snapshot[dashboard-call_writing-30-keys0-"
    dashboard += "False]"

    def pytest_run(*extra: str) -> subprocess.CompletedProcess[str]:
        basetemp = tmp_path / f"pytest{len(extra)}"  # its files stay in this test's folder
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        return subprocess.run(
            [*command, f"--basetemp={basetemp}", *extra, dashboard],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )

    isolated = pytest_run()
    assert isolated.returncode == 0, isolated.stdout[-3000:]
    exposed = pytest_run("--noconftest")
    assert exposed.returncode == 1, exposed.stdout[-3000:]
    assert "1 failed" in exposed.stdout


class TwoEditors(App[None]):
    def compose(self) -> ComposeResult:
        yield Input("text")
        yield TextArea("text")


async def test_text_cursors_do_not_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    async with TwoEditors().run_test() as pilot:
        editors = list(pilot.app.query(Input)) + list(pilot.app.query(TextArea))
        assert [e.cursor_blink for e in editors] == [False, False]
    monkeypatch.undo()  # the fixture's patch (it uses this same monkeypatch) is gone:
    assert Input().cursor_blink and TextArea().cursor_blink  # Textual's default blinks
