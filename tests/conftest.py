"""Shared fixtures: a hermetic environment for every test, an isolated home, and two ways to run
the `optterm` command (in this process, or as a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from textual.widgets import Input, TextArea

from optterm.infra.redact import REDACTOR
from optterm.store import Store, open_store
from tests.replay_server import ReplayServer

# A real PostgreSQL server for the store tests: fixtures pg_server (session) and pg_url.
pytest_plugins = ["tests.pg_server"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "providers"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the PostgreSQL server needs a real server process: `process`, like the
    tests that start one of their own (`make test-fast` leaves them out)."""
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)


# ------------------------------------------------------------------------------- hermetic

# Where optterm and its libraries look for a user's files: platformdirs honours XDG_* on Linux
# and HOME everywhere (macOS and Windows paths hang off it), keyring reads its config there too.
XDG_DIRS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
# Variables from the developer's shell that change what optterm or its libraries do: proxies
# (httpx and apprise would send loopback requests through them), terminal and colour overrides
# (rich and Textual render differently), PostgreSQL client defaults (asyncpg reads PG*), systemd
# credentials and the keyring backend (secrets).
SCRUBBED = (
    "CREDENTIALS_DIRECTORY", "PYTHON_KEYRING_BACKEND", "KEYRING_PROPERTY_",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "PG",
    "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS",
    "LINES", "TEXTUAL_",
)  # fmt: skip
# The test harness's own settings (tests/pg_server.py), needed by session fixtures; the tests
# themselves never see them.
HARNESS = ("OPTTERM_PG_BINDIR", "OPTTERM_PG_USER")
# Set by test plugins for their own use (pytest-textual-snapshot's report folder): always kept.
PLUGINS = ("TEXTUAL_SNAPSHOT_",)
# Every test runs without a usable OS keyring unless it installs one itself: a test must never
# read or write the developer's real keyring.
NO_KEYRING = "keyring.backends.fail.Keyring"


def _scrub(mp: pytest.MonkeyPatch, *, keep: tuple[str, ...] = ()) -> None:
    for name in list(os.environ):
        upper = name.upper()
        if upper in keep or upper.startswith(PLUGINS):
            continue
        if upper.startswith("OPTTERM_") or upper.startswith(SCRUBBED):
            mp.delenv(name)


def isolate(mp: pytest.MonkeyPatch, root: Path, *, keep: tuple[str, ...] = ()) -> None:
    """Point HOME and the XDG dirs under `root` and remove every variable that would let the
    developer's own setup in (OPTTERM_*, proxies, colours, keyring, …)."""
    _scrub(mp, keep=keep)
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    mp.setenv("HOME", str(home))
    for name in XDG_DIRS:
        mp.setenv(name, str(root / name.lower()))
    mp.setenv("PYTHON_KEYRING_BACKEND", NO_KEYRING)


@pytest.fixture(scope="session", autouse=True)
def hermetic_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same isolation for session fixtures (the PostgreSQL server, …), which start before
    any test's own fixtures."""
    root = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root, keep=HARNESS)
        yield root


@pytest.fixture(autouse=True)
def hermetic(hermetic_session: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test gets its own empty home and XDG dirs (beside tmp_path, not in it, so a test
    that lists tmp_path sees only its own files), no OPTTERM_* variables and no OS keyring.
    A config file in the developer's real ~/.config/optterm is therefore never read."""
    root = tmp_path_factory.mktemp("home")
    previous = keyring.get_keyring()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        keyring.set_keyring(keyring.backends.fail.Keyring())
        REDACTOR.clear()  # the secrets an earlier test registered are not this test's
        try:
            yield root
        finally:
            keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text cursors do not blink in tests: a blink timer firing between two frames would make
    a screenshot depend on how fast the machine was. The cursor is drawn, solid."""
    for widget in (Input, TextArea):
        original = widget.__init__

        def init(self, *args, _original=original, **kwargs) -> None:
            _original(self, *args, **kwargs)
            self.set_reactive(type(self).cursor_blink, False)

        monkeypatch.setattr(widget, "__init__", init)


# ---------------------------------------------------------------------------------- homes


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
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hermetic: Path) -> Home:
    """XDG dirs under tmp_path (so a test can look at what a command wrote there) and the
    environment a command run by `run_cli`/`run_process` gets."""
    env = home_env(tmp_path)
    for name in XDG_DIRS:
        monkeypatch.setenv(name, env[name])
    return Home(tmp_path, env)


def home_env(root: Path) -> dict[str, str]:
    """The environment of a command run in a home at `root`: this (hermetic) environment with
    the XDG dirs under `root` and a wide terminal."""
    env = dict(os.environ)  # already hermetic: no OPTTERM_*, no keyring, a throw-away HOME
    env.update({name: str(root / name.lower()) for name in XDG_DIRS})
    env["COLUMNS"] = "200"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------------ the optterm command


def optterm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "optterm", *args]


def _command_env(home: Home, env: Mapping[str, str] | None) -> dict[str, str]:
    return {**home.env, **(env or {})}


def run_cli(
    home: Home, *args: str, env: Mapping[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`optterm ARGS` run in this process (tests/cli_driver.py): the real `main()`, exit code
    and both streams as from a process, in `home`'s environment and folder, stdin `input`."""
    from tests.cli_driver import invoke  # imports the whole CLI: only for tests that use it

    return invoke(args, env=_command_env(home, env), cwd=home.root, input=input)


def run_process(
    home: Home,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python -m optterm ARGS` as a real process: for what only a process shows (the entry
    point, imports, signals, a second process holding a lock)."""
    return subprocess.run(
        optterm_cmd(*args),
        capture_output=True,
        text=True,
        env=_command_env(home, env),
        cwd=home.root,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A real HTTP server on 127.0.0.1 replaying recorded provider payloads."""
    server = ReplayServer().start()
    try:
        yield server
    finally:
        server.stop()
