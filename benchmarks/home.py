"""An isolated home for a benchmark run: nothing of the user's config, store, logs or OPTTERM_*
settings leaks into a figure, and nothing the benchmark writes lands in the user's folders."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

XDG_DIRS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def isolated_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment for an optterm child process whose every folder is under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTTERM_")}
    env.update({k: str(root / k.lower()) for k in XDG_DIRS})
    env.update(extra)
    return env


@contextlib.contextmanager
def isolated_process(root: Path) -> Iterator[None]:
    """The same isolation for this process (in-process benchmarks such as the Pilot ones)."""
    saved = {k: os.environ.get(k) for k in XDG_DIRS}
    for k in XDG_DIRS:
        os.environ[k] = str(root / k.lower())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def optterm_cmd(config: Path, *args: str) -> list[str]:
    """`optterm --config CONFIG ARGS…` with this interpreter, as a user would run it."""
    return [sys.executable, "-m", "optterm", "--config", str(config), *args]


def spawn_tui(root: Path, paint: Path, *, cols: int = 240, rows: int = 60) -> tuple[Any, int]:
    """`optterm` on a pseudo-terminal of `cols`×`rows`, as a user starts it, with its first-paint
    signal written to `paint`: (the process, the terminal's master end)."""
    env = isolated_env(root, TERM="xterm-256color", OPTTERM_TEST_PAINT_FILE=str(paint))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        optterm_cmd(root / "optterm.toml"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    return proc, master
