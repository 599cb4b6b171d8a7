"""Permissions, ownership and the disk are not corruption: an intact database that this user may
only read (another OS user's, or in a read-only folder) is read by the read-only commands and
refused for writing with a message about permissions, never "corrupted, move it aside"; and a
-wal deleted under a running `optterm serve` is detected before the next commit, its earlier
commits rescued, and nothing claimed as stored is lost to a later kill -9.

Root ignores file modes, so as root the checks run in a child that has dropped the
capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) and reads a
database owned by another user (`nobody`) — what "another OS user" sees. (A real second user
cannot run this checkout's interpreter when it lives under root's 0700 home.)
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Home, optterm_cmd, run_process
from tests.test_serve import START
from tests.test_store_outage import _Daemon

pytestmark = [pytest.mark.process]

_PR_CAPBSET_DROP = 24
_CAPS_THAT_BYPASS_MODES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_mode_bypass() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _CAPS_THAT_BYPASS_MODES:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _as_another_user(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """`optterm ARGS` in a process for which file modes apply (see the module docstring)."""
    return subprocess.run(
        optterm_cmd("--config", str(home.config), *args),
        capture_output=True,
        text=True,
        env=home.env,
        cwd=home.root,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=_drop_mode_bypass if os.geteuid() == 0 else None,
    )


CONFIG = f"""
[poller]
interval = 0.5
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 5
[providers]
order = ["simulator"]
[providers.simulator]
seed = 5
speed = 2
start = {START}
"""


def _database_with_history(home: Home) -> int:
    """Run serve until it has stored some snapshots, stop it cleanly; the snapshot count."""
    home.write_config(CONFIG)
    daemon = _Daemon(home)
    try:
        daemon.until("1 stored", count=3)
    finally:
        daemon.stop()
    db = sqlite3.connect(home.db)
    try:
        return int(db.execute("SELECT count(*) FROM snapshots").fetchone()[0])
    finally:
        db.close()  # the last connection: SQLite checkpoints and removes -wal and -shm


def _give_away(home: Home, *, folder_mode: int = 0o755, file_mode: int = 0o644) -> None:
    """Make the data folder and database belong to someone else (as root: `nobody`)."""
    folder = home.db.parent
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        for p in [folder, *folder.iterdir()]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    for p in folder.iterdir():
        p.chmod(file_mode)
    folder.chmod(folder_mode)


def _restore(home: Home) -> None:
    home.db.parent.chmod(0o755)
    if os.geteuid() == 0:
        for p in [home.db.parent, *home.db.parent.iterdir()]:
            os.chown(p, 0, 0)


@pytest.fixture
def history(home: Home):
    n = _database_with_history(home)
    assert n > 0
    yield n
    _restore(home)


def _not_corrupt(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "corrupt" not in proc.stderr and "Move it aside" not in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [("status",), ("history", "list", "--json"), ("alerts", "list"), ("patterns",)],
)
def test_another_user_who_may_read_the_database_can_run_read_only_commands(
    home: Home, history: int, command: tuple[str, ...]
) -> None:
    _give_away(home)  # the folder is not writable for us, the file only readable
    before = _listing(home)
    got = _as_another_user(home, *command)
    _not_corrupt(got)
    assert got.returncode in (0, 1), got.stderr  # status: 1 = no daemon running (unhealthy)
    if command[0] == "history":
        assert sum(r["snapshots"] for r in json.loads(got.stdout)) == history
    assert _listing(home) == before  # nothing created or written


def _listing(home: Home) -> list[tuple[str, int, int]]:
    return sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in home.db.parent.iterdir()
    )


@pytest.mark.slow
def test_another_user_reads_while_a_wal_is_left_beside_the_database(
    home: Home, history: int
) -> None:
    # A daemon running (or killed) leaves -wal and -shm: read through them, read-only.
    with sqlite3.connect(home.db) as db:
        db.execute("PRAGMA journal_mode=WAL")
        keep = sqlite3.connect(home.db)  # held open: -wal and -shm stay
        keep.execute("SELECT count(*) FROM snapshots").fetchone()
    try:
        _give_away(home)
        got = _as_another_user(home, "history", "list", "--json")
    finally:
        keep.close()
    _not_corrupt(got)
    assert got.returncode == 0, got.stderr
    assert sum(r["snapshots"] for r in json.loads(got.stdout)) == history


@pytest.mark.slow
def test_writing_to_a_database_this_user_may_only_read_says_so(home: Home, history: int) -> None:
    _give_away(home)
    got = _as_another_user(home, "alerts", "add", "NIFTY pcr crosses above 2")
    _not_corrupt(got)
    assert got.returncode == 2, got.stderr
    assert "intact but read-only for this user" in got.stderr, got.stderr
    assert "owned by" in got.stderr and "mode 0644" in got.stderr
    assert got.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_database_this_user_may_not_read_is_a_permission_problem(
    home: Home, history: int
) -> None:
    _give_away(home, file_mode=0o600)
    got = _as_another_user(home, "status")
    _not_corrupt(got)
    assert got.returncode == 2, got.stderr
    assert "Check the path and its permissions" in got.stderr or "permission" in got.stderr.lower()


@pytest.mark.slow
def test_a_read_only_file_in_a_writable_folder_is_read(home: Home, history: int) -> None:
    _give_away(home, folder_mode=0o777)  # folder writable, the file itself read-only
    got = _as_another_user(home, "history", "list", "--json")
    _not_corrupt(got)
    assert got.returncode == 0, got.stderr


# ------------------------------------------------------------------- a WAL deleted under serve


@pytest.mark.slow
def test_a_wal_deleted_under_serve_is_detected_and_nothing_stored_is_lost(home: Home) -> None:
    home.write_config(CONFIG)
    daemon = _Daemon(home)
    try:
        daemon.until("1 stored", count=3)
        wal = Path(f"{home.db}-wal")
        assert wal.exists()
        wal.unlink()
        detected = daemon.until("write-ahead log")
        assert "deleted or replaced" in detected[-1]
        assert "earlier commits were copied into the database file" in detected[-1]
        daemon.until("1 stored", count=4)  # it goes on storing, into a fresh -wal
        daemon.proc.kill()  # kill -9: whatever sits only in a phantom -wal would be lost
    finally:
        daemon.stop()
    log = "".join(daemon.seen)
    assert "Traceback" not in log
    # Said once when it happened (the recovery line names what cleared, once more).
    said = [line for line in log.splitlines() if "write-ahead log" in line]
    assert len([line for line in said if "works again" not in line]) == 1, log[-3000:]
    claimed = sum(int(n) for n in re.findall(r"(\d+) stored", log))
    with sqlite3.connect(home.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = int(db.execute("SELECT count(*) FROM snapshots").fetchone()[0])
    assert stored >= claimed > 0, (stored, claimed)


@pytest.mark.slow
def test_readers_told_of_a_deleted_wal_are_not_told_of_corruption(home: Home) -> None:
    home.write_config(CONFIG)
    daemon = _Daemon(home)
    try:
        daemon.until("1 stored", count=3)
        daemon.proc.send_signal(signal.SIGSTOP)  # hold the writer still while we look
        try:
            Path(f"{home.db}-wal").unlink()
            got = run_process(home, "--config", str(home.config), "history", "list")
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        _not_corrupt(got)
        assert got.returncode == 1, got.stderr  # the disk, a runtime fault
        assert "I/O error" in got.stderr and "-wal and -shm" in got.stderr
        daemon.until("write-ahead log")  # serve notices at its next write and reopens
        daemon.until("1 stored", count=2)
        again = run_process(home, "--config", str(home.config), "history", "list")
        assert again.returncode == 0, again.stderr
    finally:
        daemon.stop()


def test_the_io_error_message_is_not_corruption(tmp_path: Path) -> None:
    from optterm.store.access import sqlite_problem
    from optterm.store.errors import CorruptDatabaseError, StoreIOError, StoreLocationError

    path = tmp_path / "optterm.db"
    path.write_bytes(b"")

    def err(text: str, name: str) -> sqlite3.Error:
        e = sqlite3.OperationalError(text)
        e.sqlite_errorname = name  # type: ignore[attr-defined]
        return e

    io = sqlite_problem(path, "Reading", err("disk I/O error", "SQLITE_IOERR_SHORT_READ"))
    assert isinstance(io, StoreIOError) and "-wal and -shm" in str(io)
    ro = sqlite_problem(path, "Reading", err("attempt to write a readonly database", "X"))
    assert isinstance(ro, StoreLocationError) and "read-only for this user" in str(ro)
    op = sqlite_problem(path, "Reading", err("unable to open database file", "SQLITE_CANTOPEN"))
    assert isinstance(op, StoreLocationError) and "corrupt" not in str(op)
    bad = sqlite_problem(path, "Reading", sqlite3.DatabaseError("file is not a database"))
    assert isinstance(bad, CorruptDatabaseError)
