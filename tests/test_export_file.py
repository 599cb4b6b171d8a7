"""`optterm history export -o PATH`: only regular files are replaced, in one step, keeping their
mode; a link, pipe, device or folder at PATH is refused; a failed write leaves PATH as it was."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from tests.conftest import Home, optterm_cmd, run_cli

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, a Friday
STEPS = 12


async def _fill(db: Path) -> None:
    sim = SimulatorProvider(seed=5, step_seconds=60, start=START)
    expiry = sim._listed("NIFTY", 0)[0]
    store = await open_store(str(db))
    try:
        for step in range(STEPS):
            assert await store.snapshots.write(sim.chain_at_step("NIFTY", expiry, step).window(10))
    finally:
        await store.close()


@pytest.fixture
def filled(home: Home) -> Home:
    home.write_config()
    asyncio.run(_fill(home.db))
    return home


def _export(home: Home, target: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        home, "--config", str(home.config), "history", "export", "NIFTY", "-o", str(target)
    )


def _assert_refused(out: subprocess.CompletedProcess[str], kind: str) -> None:
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert kind in out.stderr and "only replaces regular files" in out.stderr
    assert "Traceback" not in out.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_export_replaces_a_regular_file_keeping_its_mode(filled: Home, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    out = _export(filled, target)
    assert out.returncode == 0, out.stderr
    lines = target.read_text().splitlines()
    assert lines[0].startswith("provider_ts,symbol,") and len(lines) == 1 + STEPS * 21
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # was 0644 after an export
    os.chmod(target, 0o640)
    assert _export(filled, target).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_a_new_export_file_is_private_by_default_and_group_readable_in_group_mode(
    filled: Home, tmp_path: Path
) -> None:
    assert _export(filled, tmp_path / "a.csv").returncode == 0
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o600
    filled.write_config('file_mode = "group"\n')  # appended to [store]
    assert _export(filled, tmp_path / "b.csv").returncode == 0
    assert stat.S_IMODE((tmp_path / "b.csv").stat().st_mode) == 0o640


def test_dash_writes_to_stdout(filled: Home) -> None:
    out = _export(filled, "-")
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.startswith("provider_ts,symbol,")
        and len(out.stdout.splitlines()) == 1 + STEPS * 21
    )
    assert not (filled.root / "-").exists()


def test_a_named_pipe_is_refused_and_left_a_pipe(filled: Home, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    _assert_refused(_export(filled, fifo), "named pipe")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _leftovers(tmp_path) == []


def test_a_symlink_is_refused_and_its_target_untouched(filled: Home, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    _assert_refused(_export(filled, link), "symbolic link")
    assert link.is_symlink() and victim.read_text() == "precious\n"


def test_a_symlink_at_the_old_temporary_name_is_never_followed(
    filled: Home, tmp_path: Path
) -> None:
    """The temporary name was `.NAME.partial`: anyone who could write the folder could plant a
    link there and have the export overwrite its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".out.csv.partial").symlink_to(victim)
    out = _export(filled, tmp_path / "out.csv")
    assert out.returncode == 0, out.stderr
    assert victim.read_text() == "precious\n"
    assert (tmp_path / ".out.csv.partial").is_symlink()  # not ours: left as it was
    assert (tmp_path / "out.csv").read_text().startswith("provider_ts,symbol,")


def test_a_directory_is_refused(filled: Home, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    _assert_refused(_export(filled, tmp_path / "d"), "directory")
    assert (tmp_path / "d").is_dir() and list((tmp_path / "d").iterdir()) == []


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="as root a build with this defect would replace the machine's /dev/full; the "
    "private device node below stands in for it",
)
def test_dev_full_is_refused_not_replaced(filled: Home) -> None:
    # Not root: /dev is not writable, so only the refusal (and its wording) is at stake.
    _assert_refused(_export(filled, "/dev/full"), "device")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node (mknod) needs root")
def test_a_device_node_is_refused_and_stays_a_device(filled: Home, tmp_path: Path) -> None:
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a private /dev/full
    _assert_refused(_export(filled, node), "device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


@pytest.mark.process
@pytest.mark.slow
def test_a_write_error_leaves_the_target_as_it_was(filled: Home, tmp_path: Path) -> None:
    """A file-size limit makes the write fail half-way (EFBIG), as a full disk would."""
    target = tmp_path / "out.csv"
    target.write_text("old\n")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    out = subprocess.run(
        optterm_cmd(
            "--config", str(filled.config), "history", "export", "NIFTY", "-o", str(target)
        ),
        capture_output=True,
        text=True,
        env=filled.env,
        cwd=filled.root,
        timeout=120,
        preexec_fn=limit,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "File too large" in out.stderr, out.stderr
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


_UNSHARE = shutil.which("unshare")


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or _UNSHARE is None,
    reason="a real full disk needs root and unshare(1): a 24 KB tmpfs in a private mount namespace",
)
def test_a_full_disk_leaves_the_target_as_it_was(filled: Home, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = " ".join(
        optterm_cmd("--config", str(filled.config), "history", "export", "NIFTY", "-o", "out.csv")
    )
    script = (
        f"mount -t tmpfs -o size=24k tmpfs {disk} || exit 99; cd {disk} && printf 'old\\n' > "
        f'out.csv && {cmd}; echo "rc=$?"; cat out.csv; ls -a'
    )
    out = subprocess.run(
        [_UNSHARE, "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=filled.env,
        cwd=filled.root,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    assert "rc=1" in out.stdout, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "No space left on device" in out.stderr, out.stderr
    after = out.stdout.split("rc=1\n", 1)[1].split()
    assert after[0] == "old"  # the target's content
    assert not [name for name in after if ".partial" in name]  # the temporary file removed


def test_a_folder_that_does_not_exist_is_a_usage_error(filled: Home, tmp_path: Path) -> None:
    out = _export(filled, tmp_path / "missing" / "out.csv")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "No such file or directory" in out.stderr and "existing folder" in out.stderr
    assert not (tmp_path / "missing").exists()


def test_the_database_itself_is_refused(filled: Home) -> None:
    before = filled.db.read_bytes()
    out = _export(filled, filled.db)
    assert out.returncode == 2 and "is the optterm database" in out.stderr, out.stderr
    assert filled.db.read_bytes() == before
    out = _export(filled, f"{filled.db}-wal")
    assert out.returncode == 2 and "optterm database file optterm.db-wal" in out.stderr


def test_a_target_near_the_name_length_limit_still_gets_a_temporary_file(
    filled: Home, tmp_path: Path
) -> None:
    target = tmp_path / ("x" * 250)
    out = _export(filled, target)
    assert out.returncode == 0, out.stderr
    assert target.read_text().startswith("provider_ts,") and _leftovers(tmp_path) == []
    out = _export(filled, tmp_path / ("y" * 300))
    assert out.returncode == 2 and "File name too long" in out.stderr, out.stderr
