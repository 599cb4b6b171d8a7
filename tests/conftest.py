"""Shared fixtures: an isolated home for every test, and a runner for the real `optterm` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from optterm.store import Store, open_store
from tests.replay_server import ReplayServer

# A real PostgreSQL server for the store tests: fixtures pg_server (session) and pg_url.
pytest_plugins = ["tests.pg_server"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "providers"


@dataclass
class Home:
    """A throw-away user home: XDG dirs, a config file and a database path under tmp_path."""

    root: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.root / "optterm.toml"

    @property
    def db(self) -> Path:
        return self.root / "data" / "optterm.db"

    def write_config(self, text: str = "", *, with_store: bool = True) -> Path:
        head = f'[store]\nurl = "sqlite+aiosqlite:///{self.db}"\n' if with_store else ""
        self.config.write_text(head + text, encoding="utf-8")
        return self.config


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite file in a folder that does not exist yet: the store makes both."""
    return tmp_path / "data" / "optterm.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[Store]:
    """A new store on `db`, closed after the test."""
    s = await open_store(str(db))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTTERM_")}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = tmp_path / name.lower()
        env[name] = str(path)
        monkeypatch.setenv(name, str(path))
    for key in [k for k in os.environ if k.startswith("OPTTERM_")]:
        monkeypatch.delenv(key)
    env["COLUMNS"] = "200"
    env["PYTHONUNBUFFERED"] = "1"
    return Home(tmp_path, env)


def optterm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "optterm", *args]


def run_cli(
    home: Home, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = dict(home.env)
    if env:
        full_env.update(env)
    return subprocess.run(
        optterm_cmd(*args),
        capture_output=True,
        text=True,
        env=full_env,
        cwd=home.root,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A real HTTP server on 127.0.0.1 replaying recorded provider payloads."""
    server = ReplayServer().start()
    try:
        yield server
    finally:
        server.stop()
