"""A real, throw-away PostgreSQL server for the tests (registered in tests/conftest.py).

`pg_server` (session): initdb into a fresh temporary directory, start the server on a free
loopback port (TCP on 127.0.0.1 only, its Unix socket in that directory too), trust auth for
the superuser `optterm`, a database `optterm`; `pg_ctl stop -m immediate` and the directory
removed at the end of the session. `pg_url` (function): a new, empty database per test, so
tests never see each other's rows; dropped afterwards.

Binaries: `initdb`/`pg_ctl` on PATH, else the newest /usr/lib/postgresql/*/bin (Debian and
Ubuntu's postgresql package do not put them on PATH); `OPTTERM_PG_BINDIR` overrides both.
If none is found the fixture FAILS (never skips) and says how to install them; .ci/run installs
them before running the tests.

Root: PostgreSQL refuses to run as root ("root execution of the PostgreSQL server is not
permitted"). As root, initdb and pg_ctl (and so the server) run as the unprivileged user
`nobody` (override with OPTTERM_PG_USER) through subprocess's user/group switch — no sudo/su
needed — and the temporary directory is created by root in /tmp and chowned to that user. Its
parent must be traversable by that user, which pytest's own tmp_path (mode 0700) is not; hence
/tmp. If pytest is killed (SIGKILL) the server outlives it: `pg_ctl -D /tmp/optterm-pg-*/data
stop` (as that user) and remove the folder.

Also used by benchmarks/bench_store_pg.py (`start_server(durable=True)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PgServer", "find_bindir", "pg_server", "pg_url", "start_server"]

USER = "optterm"  # the cluster's superuser (initdb -U)
DATABASE = "optterm"
_START_TIMEOUT_S = 60
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin. The PostgreSQL store tests start a real server and need them: "
    "install them with `sudo apt-get install -y postgresql` (Debian/Ubuntu; .ci/run does this), "
    "`sudo dnf install postgresql-server` (Fedora) or `brew install postgresql` (macOS), or set "
    "OPTTERM_PG_BINDIR to the folder that holds initdb and pg_ctl."
)


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    explicit = os.environ.get("OPTTERM_PG_BINDIR")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_sql(dsn: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE need that), in a thread with
    its own event loop, so it works from sync fixtures whatever loop pytest-asyncio runs."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    error: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(go())
        except BaseException as err:
            error.append(err)

    t = threading.Thread(target=target, name="pg-admin")
    t.start()
    t.join()
    if error:
        raise error[0]


@dataclass
class PgServer:
    root: Path  # temporary directory: data/, the socket, the server log
    bindir: Path
    port: int
    host: str = "127.0.0.1"
    _as_user: dict[str, Any] = field(default_factory=dict, repr=False)
    _options: list[str] = field(default_factory=list, repr=False)
    _stopped: bool = False

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+asyncpg://{USER}@{self.host}:{self.port}/{database}"

    def dsn(self, database: str = DATABASE) -> str:
        """The same as a libpq/asyncpg DSN."""
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        _run_sql(self.dsn(database), *statements)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+): a test that forgot to close its store must not block this.
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = (self.root / "server.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no server log)"

    def _pg_ctl(self, *args: str) -> None:
        proc = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), *args],
            cwd=self.root,
            env={**os.environ, "HOME": str(self.root), "LC_ALL": "C", "TZ": "UTC"},
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S + 10,
            check=False,
            **self._as_user,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl {args[-1]} failed: {proc.stderr[-2000:]}")

    def pause(self) -> None:
        """Shut the server down (an outage for its clients), keeping its data for resume()."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")

    def resume(self) -> None:
        """Start a paused server again, on the same port with the same options."""
        options = " ".join([*self._options, f"-p {self.port}"])
        log = str(self.root / "server.log")
        self._pg_ctl("-l", log, "-o", options, "-w", "-t", str(_START_TIMEOUT_S), "start")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data")]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [*pg_ctl, "stop", "-m", "immediate", "-w", "-t", "30"],
                cwd=self.root,
                capture_output=True,
                timeout=60,
                check=False,
                **self._as_user,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged() -> tuple[dict[str, Any], pwd.struct_passwd | None]:
    """subprocess kwargs that drop root to an unprivileged user; nothing when not root."""
    if os.geteuid() != 0:
        return {}, None
    name = os.environ.get("OPTTERM_PG_USER", "nobody")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"Running as root, and the user {name!r} to run PostgreSQL as does not exist. "
            "Set OPTTERM_PG_USER to an existing unprivileged user."
        ) from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}, pw


def start_server(*, durable: bool = False) -> PgServer:
    """initdb + start a private server; raises RuntimeError (with the reason) if it cannot.

    durable=False turns fsync off (tests: faster, and a crash only loses this throw-away
    cluster); durable=True keeps PostgreSQL's defaults, for benchmarks."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(INSTALL_HINT)
    as_user, pw = _unprivileged()
    # In /tmp, not $TMPDIR or pytest's tmp_path: the server user must be able to reach it, and
    # the Unix socket's path must stay under the ~107-byte limit.
    root = Path(
        tempfile.mkdtemp(prefix="optterm-pg-", dir="/tmp" if Path("/tmp").is_dir() else None)
    )
    if pw is not None:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    env = {**os.environ, "HOME": str(root), "LC_ALL": "C", "TZ": "UTC"}
    env.pop("PGDATA", None)

    def run(*args: str, timeout: float = _START_TIMEOUT_S) -> None:
        proc = subprocess.run(
            [*args],
            cwd=root,  # the unprivileged user may not be able to enter ours
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **as_user,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )

    server = PgServer(root, bindir, 0, _as_user=as_user)
    try:
        run(
            str(bindir / "initdb"),
            "-D", str(root / "data"),
            "-U", USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-k {root}",  # the Unix socket: here, not /var/run/postgresql
            "-c max_connections=200",
            "-c timezone=UTC",
        ]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        server._options = options
        # A free port can be taken between probing and binding: try a few.
        for attempt in range(3):
            server.port = _free_port()
            try:
                run(
                    str(bindir / "pg_ctl"),
                    "-D", str(root / "data"),
                    "-l", str(root / "server.log"),
                    "-o", " ".join([*options, f"-p {server.port}"]),
                    "-w", "-t", str(_START_TIMEOUT_S),
                    "start",
                    timeout=_START_TIMEOUT_S + 10,
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2 or "already in use" not in server.log_tail():
                    raise
        server.sql(f'CREATE DATABASE "{DATABASE}"')
    except BaseException as err:
        tail = server.log_tail()
        server.stop()
        if isinstance(err, RuntimeError):
            raise RuntimeError(f"Could not start PostgreSQL from {bindir}: {err}\n{tail}") from err
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole test session (fails, never skips, without one)."""
    try:
        server: PgServer | None = start_server()
    except RuntimeError as err:
        server, reason = None, str(err)
    if server is None:
        pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)
