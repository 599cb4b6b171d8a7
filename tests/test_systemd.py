"""`optterm serve` under systemd's notify protocol: a real unix datagram socket stands in for
systemd and records what the daemon says."""

from __future__ import annotations

import signal
import socket

import pytest

from optterm.infra.systemd import Notifier
from tests.conftest import Home
from tests.test_serve import START, _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]


def test_notifier_is_silent_outside_systemd() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    n.ready("x")  # no socket: nothing happens, nothing raises
    n.close()


def test_watchdog_applies_only_to_its_own_pid() -> None:
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000"}).watchdog_s == 4.0
    other = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    assert Notifier(other).watchdog_s is None


def test_serve_reports_ready_status_watchdog_and_stopping(home: Home, tmp_path) -> None:
    path = tmp_path / "notify.sock"
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(str(path))
    sink.settimeout(30)
    home.write_config(f"[poller]\ninterval = 0.3\n[providers.simulator]\nstart = {START}\n")
    home.env.update({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    proc = _serve(home)
    got: list[str] = []
    try:
        while not any(m.startswith("READY=1") for m in got) or got.count("WATCHDOG=1") < 2:
            got.append(sink.recv(4096).decode())
        ready = next(m for m in got if m.startswith("READY=1"))
        assert "STATUS=tick 1:" in ready
        assert any(m.startswith("STATUS=tick ") for m in got[got.index(ready) + 1 :])
    finally:
        proc.send_signal(signal.SIGTERM)
    _lines_until(proc, lambda ln: "stopping after tick" in ln, 1)
    while "STOPPING=1" not in got:
        got.append(sink.recv(4096).decode())
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    sink.close()
