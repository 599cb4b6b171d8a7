"""An isolated home for a benchmark run: nothing of the user's config, store, logs or OPTTERM_*
settings leaks into a figure, and nothing the benchmark writes lands in the user's folders."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

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
