"""The real `optterm` in a real terminal (tmux): the first chain appears, an alert is created from
the keyboard and lands in the store, and `q` quits with exit code 0.

The app announces its first painted chain through OPTTERM_TEST_PAINT_FILE (a named pipe here, so
the test blocks on the event rather than polling); the exit code comes back through another pipe.
Between key presses the test waits for what the screen must show next (capture-pane), bounded.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Home, optterm_cmd, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.process, pytest.mark.tmux]
# The pane's size for the app: Python reads LINES/COLUMNS before asking the terminal, and the
# tmux server hands its panes whatever environment it was started with (LINES=24 from another
# client's shell made the app draw 24 lines in a 50-line pane).
TERMINAL_ENV = {"TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}


@pytest.fixture(autouse=True)
def _needs_tmux() -> None:
    # Not a skip: this test is the proof the UI works in a real terminal (.ci/run installs tmux).
    assert shutil.which("tmux"), "tmux is not installed: apt-get install tmux"


# A tmux server of this test's own (-L): a trader's or another job's tmux on the default socket
# is neither read nor disturbed, and killing our server cannot end theirs.
SOCKET = f"optterm-test-{os.getpid()}"


@pytest.fixture(autouse=True, scope="module")
def _own_server() -> Iterator[None]:
    yield
    subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=True
    ).stdout


def _read_fifo(path: Path, timeout: float) -> str:
    """Block until a writer sends a line (in a thread, so a hang fails the test)."""
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(path.read_text()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not out:
        raise AssertionError(f"nothing arrived on {path.name} within {timeout:g} s")
    return out[0]


def _start(session: str, command: str) -> None:
    """A detached 200 × 50 tmux session running `command` (with TERMINAL_ENV in its env)."""
    _tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", command)


def _screen(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session)


def _wait_screen(session: str, needle: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = _screen(session)
        if needle in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} never appeared; the screen shows:\n{text}")
        time.sleep(0.1)  # the terminal has no event to wait on; re-read it


def test_real_terminal_chain_alert_and_clean_quit(home: Home, tmp_path: Path) -> None:
    home.write_config(
        '[poller]\ninterval = 1\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\n'
        "strikes = 10\n[providers.simulator]\nstart = 2026-11-20T09:15:00+05:30\n"
    )
    painted, rc = tmp_path / "painted", tmp_path / "rc"
    os.mkfifo(painted)
    os.mkfifo(rc)
    env = {**home.env, "OPTTERM_TEST_PAINT_FILE": str(painted), **TERMINAL_ENV}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier())
    cmd = " ".join(shlex.quote(c) for c in optterm_cmd("--config", str(home.config)))
    session = f"optterm-test-{os.getpid()}"
    _start(session, f"env {exports} {cmd}; echo $? > {shlex.quote(str(rc))}")
    try:
        _read_fifo(painted, 60)  # the first chain is on screen
        # The header was seen still "waiting for the first chain" when the signal came: wait
        # for it to name the source rather than race it.
        text = _wait_screen(session, "SIMULATED")
        assert "NIFTY" in text and "STRIKE" in text

        _tmux("send-keys", "-t", session, "r")
        _wait_screen(session, "Alert rules")
        _tmux("send-keys", "-t", session, "n")
        _wait_screen(session, "New alert rule")
        _tmux("send-keys", "-t", session, "-l", "NIFTY spot crosses above 30000")
        _tmux("send-keys", "-t", session, "Enter")
        _wait_screen(session, "Threshold 30000")  # the sentence filled the form
        _tmux("send-keys", "-t", session, "C-s")
        _wait_screen(session, "Alert rules (1)")
        _wait_screen(session, "NIFTY spot crosses above 30,000")  # the row may paint a beat later
        _tmux("send-keys", "-t", session, "q")
        try:
            code = _read_fifo(rc, 30).strip()
        except AssertionError:
            raise AssertionError("optterm did not exit; screen:\n" + _screen(session)) from None
        assert code == "0"
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-session", "-t", session], capture_output=True)

    out = run_cli(home, "--config", str(home.config), "alerts", "list", "--json")
    assert out.returncode == 0, out.stderr
    rules = json.loads(out.stdout)
    assert [(r["symbol"], r["threshold"]) for r in rules] == [("NIFTY", 30000.0)]


def _settled_screen(session: str, needle: str, timeout: float = 20) -> str:
    """The screen once `needle` is on it and two reads in a row agree: capture-pane can catch a
    frame half written."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        text = _screen(session)
        if needle in text and text == last:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no settled screen with {needle!r}; it shows:\n{text}")
        last = text
        time.sleep(0.2)  # the terminal has no event to wait on; re-read it


def _column_end(label_row: str, label: str, which: int) -> int:
    """Where a right-aligned column ends: after its label in the header row (first or last)."""
    at = label_row.find(label) if which == 0 else label_row.rfind(label)
    assert at >= 0, f"{label!r} not in the header: {label_row!r}"
    return at + len(label)


def test_real_terminal_200x50_shows_every_oi_cell_whole(home: Home, tmp_path: Path) -> None:
    """The width where the chain used to scroll sideways and cut the call OI (",730"): read the
    screen as the terminal shows it and compare each OI and ΔOI cell with the stored snapshot."""
    home.write_config(
        '[poller]\ninterval = 3600\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\n'
        "strikes = 30\n[providers.simulator]\nstart = 2026-11-20T09:15:00+05:30\n"
    )  # one tick: what is on screen is the one stored snapshot
    painted, rc = tmp_path / "painted", tmp_path / "rc"
    os.mkfifo(painted)
    os.mkfifo(rc)
    env = {**home.env, "OPTTERM_TEST_PAINT_FILE": str(painted), **TERMINAL_ENV}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier())
    cmd = " ".join(shlex.quote(c) for c in optterm_cmd("--config", str(home.config)))
    session = f"optterm-width-{os.getpid()}"
    _start(session, f"env {exports} {cmd}; echo $? > {shlex.quote(str(rc))}")
    try:
        _read_fifo(painted, 60)
        # The metrics sit below the chain: once they are painted and the frame is whole, so is
        # the chain.
        lines = _settled_screen(session, "PCR OI").splitlines()
        _tmux("send-keys", "-t", session, "q")
        assert _read_fifo(rc, 30).strip() == "0"
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-session", "-t", session], capture_output=True)

    head = lines[0]
    assert "SIMULATED" in head and "via simulator" in head and " age " in head, head
    labels_at = next(i for i, line in enumerate(lines) if "STRIKE" in line)
    labels = lines[labels_at]
    cells = {
        ("ce", "oi"): _column_end(labels, "OI lots", 0),
        ("ce", "oi_change"): _column_end(labels, "ΔOI lots", 0),
        ("pe", "oi_change"): _column_end(labels, "ΔOI lots", -1),
        ("pe", "oi"): _column_end(labels, "OI lots", -1),
    }
    strike_at = labels.index("STRIKE")
    out = run_cli(home, "--config", str(home.config), "history", "export", "NIFTY", "-f", "json")
    assert out.returncode == 0, out.stderr
    (stored,) = json.loads(out.stdout)["snapshots"]
    by_strike = {row["strike"]: row for row in stored["rows"]}
    rows = 0
    for line in lines[labels_at + 1 :]:
        strike_text = line[strike_at - 2 : strike_at + 10].strip(" SRMP")
        if not strike_text.replace(",", "").isdigit():
            break  # below the chain
        row = by_strike[int(strike_text.replace(",", ""))]
        for (side, key), end in cells.items():
            width = 9 if key == "oi" else 8
            value = row[side][key]
            want = "" if value is None else format(value, ",.0f" if key == "oi" else "+,.0f")
            assert line[end - width : end].strip() == want, (strike_text, side, key, line)
            assert line[end - width - 1] == " ", "a number runs into its neighbour"
        rows += 1
    assert rows >= 20, "\n".join(lines)
