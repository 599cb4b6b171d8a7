"""`optterm serve` on a disk that fills up and is freed again: the failure is logged when it
starts and when it clears, with counts — not once per chain per tick (issue 14, defect 11).

A real full disk: the store lives on a small tmpfs mounted in a private mount namespace
(unshare(1), root only), filled and emptied from outside with nsenter(1) while serve runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Home, optterm_cmd

UNSHARE, NSENTER = shutil.which("unshare"), shutil.which("nsenter")

pytestmark = [
    pytest.mark.process,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or UNSHARE is None or NSENTER is None,
        reason="a real full disk needs root, unshare(1) and nsenter(1): a tmpfs in a private "
        "mount namespace",
    ),
]

FAILING_TICKS = 6


def _read_until(proc: subprocess.Popen[str], seen: list[str], predicate, count: int = 1) -> None:
    assert proc.stderr is not None
    matched = 0
    for line in proc.stderr:
        seen.append(line)
        if predicate(line):
            matched += 1
            if matched >= count:
                return
    pytest.fail("serve exited early:\n" + "".join(seen[-30:]))


def _in_namespace(pid: int, script: str) -> None:
    assert NSENTER is not None
    subprocess.run(
        [NSENTER, "--target", str(pid), "--mount", "sh", "-c", script],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_a_full_disk_is_logged_when_it_starts_and_clears(home: Home, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "optterm.db"
    home.config.write_text(
        f"""
[store]
url = "sqlite+aiosqlite:///{db}"
[poller]
interval = 1
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 10
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 10
[providers.simulator]
seed = 4
start = 2026-11-20T09:15:00+05:30
""",
        encoding="utf-8",
    )
    serve = " ".join(optterm_cmd("--config", str(home.config), "serve"))
    script = f"mount -t tmpfs -o size=8m tmpfs {disk} || exit 99; exec {serve}"
    assert UNSHARE is not None
    proc = subprocess.Popen(
        [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=home.env,
        cwd=home.root,
    )
    seen: list[str] = []
    try:
        _read_until(proc, seen, lambda ln: "tick 2:" in ln)
        start = len(seen)
        _in_namespace(proc.pid, f"dd if=/dev/zero of={disk}/fill bs=64k 2>/dev/null; true")
        _read_until(proc, seen, lambda ln: "tick " in ln and " 0 failed" not in ln, FAILING_TICKS)
        _in_namespace(proc.pid, f"rm {disk}/fill")
        _read_until(proc, seen, lambda ln: "tick " in ln and " 0 failed" in ln, 2)
    finally:
        if proc.poll() is None:
            proc.terminate()
        rest = proc.communicate(timeout=60)[1]
    if proc.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {rest.strip()}")
    during = seen[start:]
    failing = [ln for ln in during if "tick " in ln and " 0 failed" not in ln]
    assert len(failing) >= FAILING_TICKS, failing
    warnings = [ln for ln in during if "WARNING" in ln]
    shown = "".join(warnings)
    if os.environ.get("SHOW_WARNINGS"):
        print(shown, "".join(failing))
    # One line when each kind of write starts failing and one when it works again (snapshots,
    # provider health, the lease heartbeat, metrics): never one per chain per tick.
    assert len(warnings) <= 8, shown
    assert sum("storing snapshots failed" in ln for ln in warnings) == 1, shown
    assert any("disk is full" in ln for ln in warnings), shown
    assert sum("storing snapshots works again" in ln for ln in warnings) == 1, shown
