"""Who may read optterm's files: private to the user by default (folders 0700, files 0600,
whatever the umask), shared read-only with a group when `[store] file_mode = "group"`; and
`optterm doctor` warns about files others can read."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optterm.infra.filemode import FileMode
from optterm.infra.logs import configure_logging
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.store.lease import acquire_lease, lock_path
from tests.conftest import REPO, Home, optterm_cmd, run_cli

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


async def _open_write_and_lease(db: Path, mode: FileMode) -> dict[str, int]:
    """Create a store, write a snapshot (so the WAL exists), take the lease; the modes seen
    while it is open."""
    sim = SimulatorProvider(seed=1, step_seconds=60, start=START)
    store = await open_store(str(db), file_mode=mode)
    try:
        snap = sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).window(5)
        assert await store.snapshots.write(snap)
        lease = await acquire_lease(store, wait=False)
        try:
            files = {
                "folder": db.parent,
                "db": db,
                "wal": Path(f"{db}-wal"),
                "shm": Path(f"{db}-shm"),
                "lease": lock_path(db),
            }
            return {name: _mode(path) for name, path in files.items()}
        finally:
            await lease.release()
    finally:
        await store.close()


@pytest.mark.parametrize("umask", [0o022, 0o002])
async def test_a_new_store_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "data" / "optterm.db"
    with _umask(umask):
        modes = await _open_write_and_lease(db, FileMode.PRIVATE)
    assert modes == {"folder": 0o700, "db": 0o600, "wal": 0o600, "shm": 0o600, "lease": 0o600}


async def test_group_mode_shares_the_store_read_only_with_the_folders_group(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "optterm.db"
    with _umask(0o077):  # the bits are set, not left to the umask
        modes = await _open_write_and_lease(db, FileMode.GROUP)
    assert modes == {"folder": 0o2750, "db": 0o640, "wal": 0o640, "shm": 0o640, "lease": 0o640}


async def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "optterm.db"
    await (await open_store(str(db))).close()  # created 0600
    db.chmod(0o640)
    store = await open_store(str(db), file_mode=FileMode.PRIVATE)
    await store.close()
    assert _mode(db) == 0o640


def test_the_log_file_and_its_folder_are_private(tmp_path: Path) -> None:
    import logging

    log = tmp_path / "state" / "optterm" / "log" / "optterm.log"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with _umask(0o022):
            configure_logging(file=log)
        logging.getLogger("optterm.test").warning("hello")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700
    assert _mode(log.parent.parent) == 0o755  # the XDG folders above are ordinary ones
    assert "hello" in log.read_text()


def test_config_rejects_an_unknown_file_mode(home: Home) -> None:
    home.write_config('file_mode = "world"\n')
    out = run_cli(home, "--config", str(home.config), "history", "list")
    assert out.returncode == 2 and "file_mode" in out.stderr and "private, group" in out.stderr


# ---------------------------------------------------------------------------------- doctor


def _doctor(home: Home) -> list[str]:
    out = run_cli(home, "--config", str(home.config), "doctor")
    assert "Traceback" not in out.stderr, out.stderr
    return out.stdout.splitlines()


def test_doctor_warns_about_a_readable_config_holding_channel_tokens(home: Home) -> None:
    home.write_config('[notify.channels]\ndesk = "tgram://123456:SECRETTOKEN/42"\n')
    home.config.chmod(0o644)
    warnings = [ln for ln in _doctor(home) if ln.startswith("WARNING") and "config" in ln]
    assert len(warnings) == 1 and "readable by everyone" in warnings[0]
    assert f"chmod 600 {home.config}" in warnings[0] and "SECRETTOKEN" not in warnings[0]
    home.config.chmod(0o640)
    warnings = [ln for ln in _doctor(home) if ln.startswith("WARNING") and "config" in ln]
    assert len(warnings) == 1 and "readable by its group" in warnings[0]
    home.config.chmod(0o600)
    assert not [ln for ln in _doctor(home) if ln.startswith("WARNING") and "config" in ln]


def test_doctor_says_nothing_of_a_readable_config_without_secrets(home: Home) -> None:
    home.write_config()
    home.config.chmod(0o644)
    assert not [ln for ln in _doctor(home) if ln.startswith("WARNING") and "config" in ln]


def test_doctor_warns_about_a_world_readable_database(home: Home) -> None:
    home.write_config()
    assert run_cli(home, "--config", str(home.config), "history", "list").returncode == 0
    assert _mode(home.db) == 0o600
    assert not [ln for ln in _doctor(home) if str(home.db) in ln]
    home.db.chmod(0o644)  # as an older optterm created it
    warnings = [ln for ln in _doctor(home) if str(home.db) in ln]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING")
    assert "readable by everyone" in warnings[0] and f"chmod 600 {home.db}" in warnings[0]
    assert "file_mode" not in warnings[0]  # no group to share with: just make it private
    home.db.chmod(0o640)
    warnings = [ln for ln in _doctor(home) if str(home.db) in ln]
    assert len(warnings) == 1 and "readable by its group" in warnings[0]
    assert 'file_mode = "group"' in warnings[0]
    home.write_config('file_mode = "group"\n')  # shared on purpose: not a warning
    assert not [ln for ln in _doctor(home) if str(home.db) in ln]
    home.db.chmod(0o600)  # group mode set, but the file from before stays private
    notes = [ln for ln in _doctor(home) if str(home.db) in ln]
    assert len(notes) == 1 and notes[0].startswith("NOTE") and "chmod 2750" in notes[0]


# ------------------------------------------------------------------- a second OS user

PEER, DESK = "optterm-peer", "optterm-desk"


def _ids() -> tuple[pwd.struct_passwd, grp.struct_group]:
    """The second user and the desk group, created with groupadd/useradd when missing."""
    if os.geteuid() != 0:
        pytest.skip("a second OS user needs root (to create it and to run commands as it)")
    if shutil.which("useradd") is None or shutil.which("groupadd") is None:
        pytest.skip("useradd/groupadd are not installed: cannot create a second OS user")
    try:
        grp.getgrnam(DESK)
    except KeyError:
        subprocess.run(["groupadd", "--system", DESK], check=True, capture_output=True)
    try:
        pwd.getpwnam(PEER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PEER],
            check=True,
            capture_output=True,
        )
    return pwd.getpwnam(PEER), grp.getgrnam(DESK)


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder in /tmp both users can reach (pytest's tmp_path is 0700 root's)."""
    root = Path(tempfile.mkdtemp(prefix="optterm-peer-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _interpreter(who: pwd.struct_passwd, cwd: Path) -> tuple[str, str]:
    """(python, PYTHONPATH) the other user can run optterm with: this interpreter, or — when it
    sits where that user cannot go (a pyenv under /root) — the system's python of the same
    minor version over this environment's site-packages."""
    path = str(REPO / "src")
    site = os.pathsep.join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    for python, extra in ((sys.executable, ""), (system, site)):
        pythonpath = path + (os.pathsep + extra if extra else "")
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            probe = subprocess.run(
                [python, "-c", "import optterm.cli.root, sqlalchemy"],
                capture_output=True,
                env={**os.environ, "PYTHONPATH": pythonpath},
                cwd=cwd,
                timeout=120,
                user=who.pw_uid,
                group=who.pw_gid,
                extra_groups=[],
            )
            if probe.returncode == 0:
                return python, pythonpath
    pytest.skip(
        f"no Python interpreter with optterm's dependencies can be run by {who.pw_name} "
        f"({sys.executable} is not reachable by it and {system} lacks the packages)"
    )


def _env(home: Path, pythonpath: str) -> dict[str, str]:
    env = dict(os.environ)  # hermetic already: no OPTTERM_*, no keyring
    env.update({"HOME": str(home), "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"})
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())
    return env


def _user_home(root: Path, name: str, uid: int, gid: int, db: Path, mode: str) -> Path:
    home = root / name
    home.mkdir()
    (home / "optterm.toml").write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{db}"\nfile_mode = "{mode}"\n'
    )
    for p in (home, home / "optterm.toml"):
        os.chown(p, uid, gid)
    home.chmod(0o700)
    return home


@dataclass
class Desk:
    """A store created by the desk's daemon account, and a second user's home beside it."""

    peer: pwd.struct_passwd
    group: grp.struct_group
    python: str
    pythonpath: str
    db: Path
    home: Path  # the second user's

    def run_as_peer(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, *args],
            capture_output=True,
            text=True,
            env=_env(self.home, self.pythonpath),
            cwd=self.home,
            timeout=120,
            stdin=subprocess.DEVNULL,
            user=self.peer.pw_uid,
            group=self.peer.pw_gid,
            extra_groups=[self.group.gr_gid],  # a member of the desk group
        )

    def optterm_as_peer(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run_as_peer("-m", "optterm", "--config", str(self.home / "optterm.toml"), *args)


def _desk(root: Path, mode: str) -> Desk:
    """The daemon's account (root here) creates the store with the desk group as its primary
    group, as systemd's Group=desk would; a member of that group then comes to read it."""
    peer, group = _ids()
    python, pythonpath = _interpreter(peer, root)
    db = root / "store" / "optterm.db"
    daemon = _user_home(root, "daemon", 0, group.gr_gid, db, mode)
    out = subprocess.run(
        optterm_cmd("--config", str(daemon / "optterm.toml"), "history", "list"),
        capture_output=True,
        text=True,
        env=_env(daemon, str(REPO / "src")),
        cwd=daemon,
        timeout=120,
        stdin=subprocess.DEVNULL,
        group=group.gr_gid,
        extra_groups=[],
    )
    assert out.returncode == 0, out.stderr
    home = _user_home(root, "peer", peer.pw_uid, peer.pw_gid, db, mode)
    return Desk(peer, group, python, pythonpath, db, home)


_READ = (
    "import sqlite3, sys\n"
    "con = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True)\n"
    "print(con.execute('SELECT count(*) FROM snapshots').fetchone()[0])\n"
)


async def _read_while_open(desk: Desk) -> tuple[int, str]:
    sim = SimulatorProvider(seed=1, step_seconds=60, start=START)
    store = await open_store(str(desk.db), file_mode=FileMode.GROUP)
    try:
        assert await store.snapshots.write(
            sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).window(5)
        )
        assert _mode(Path(f"{desk.db}-shm")) == 0o640
        read = await asyncio.to_thread(desk.run_as_peer, "-c", _READ, str(desk.db))
        return read.returncode, read.stdout.strip() or read.stderr
    finally:
        await store.close()


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["private", "group"])
def test_a_second_os_user_reads_the_store_only_when_it_is_shared(
    shared_root: Path, mode: str
) -> None:
    desk = _desk(shared_root, mode)
    read = desk.run_as_peer("-c", _READ, str(desk.db))
    status = desk.optterm_as_peer("status")
    assert "Traceback" not in status.stderr, status.stderr
    if mode == "group":
        assert (read.returncode, read.stdout.strip()) == (0, "0"), read.stderr
        assert _mode(desk.db.parent) == 0o2750 and _mode(desk.db) == 0o640
        assert desk.db.stat().st_gid == desk.group.gr_gid
        # …and while the daemon has it open, with its -wal and -shm (0640 too) beside it.
        assert asyncio.run(_read_while_open(desk)) == (0, "1")
    else:
        assert read.returncode != 0 and "unable to open" in read.stderr, read.stderr
        assert _mode(desk.db.parent) == 0o700 and _mode(desk.db) == 0o600


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize(
    "mode",
    [
        "private",
        "group",
        "group-wal",
    ],
)
def test_a_second_os_user_is_never_told_the_store_is_corrupt(shared_root: Path, mode: str) -> None:
    desk = _desk(shared_root, mode.removesuffix("-wal"))
    if mode.endswith("-wal"):
        # Left in WAL mode (an older optterm, or another program): SQLite removed -wal and
        # -shm as it closed, and a reader who cannot write the folder cannot make a -shm.
        with contextlib.closing(sqlite3.connect(desk.db)) as con:
            assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        assert not Path(f"{desk.db}-shm").exists()
    for args in (("status",), ("history", "list"), ("alerts", "list")):
        out = desk.optterm_as_peer(*args)
        said = out.stdout + out.stderr
        assert "corrupt" not in said.lower(), (args, said)


def test_the_cache_folder_is_private(tmp_path: Path) -> None:
    from optterm.providers.nse.holidays import write_cache

    cache = tmp_path / "cache" / "optterm" / "holidays.json"
    with _umask(0o022):
        write_cache({}, START, "https://nse.example/holidays", path=cache)
    assert _mode(cache.parent) == 0o700 and _mode(cache) == 0o600


def test_group_mode_makes_do_without_setgid_where_it_is_forbidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd's RestrictSUIDSGID=yes (deploy/optterm.service) makes chmod with the setgid bit
    fail with EPERM; the folder is then 0750."""
    from optterm.infra import filemode

    real = os.chmod

    def restricted(path, bits, *args, **kwargs):  # what the seccomp filter does
        if bits & stat.S_ISGID:
            raise PermissionError(1, "Operation not permitted", str(path))
        return real(path, bits, *args, **kwargs)

    monkeypatch.setattr(filemode.os, "chmod", restricted)
    folder = tmp_path / "state" / "optterm"
    filemode.make_dirs(folder, FileMode.GROUP)
    assert _mode(folder) == 0o750
