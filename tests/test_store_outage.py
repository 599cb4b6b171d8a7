"""A database that is not there, or goes away: one line and exit 1 from the commands, and a
`serve` that waits the outage out (logged once per change) and resumes storing; plus the other
inputs that used to end in a traceback (a MySQL URL, an in-memory store for serve, deeply
nested TOML or JSON, an id past 64 bits, output to a full device)."""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Home, optterm_cmd, run_cli
from tests.pg_server import PgServer, start_server
from tests.test_serve import START


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("optterm: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    "command", [("status",), ("alerts", "list"), ("history", "list"), ("patterns",)]
)
def test_commands_against_an_unreachable_postgres_say_so_in_one_line(
    home: Home, command: tuple[str, ...]
) -> None:
    url = f"postgresql://optterm@127.0.0.1:{_closed_port()}/optterm"
    home.write_config(f'[store]\nurl = "{url}"\n', with_store=False)
    got = run_cli(home, "--config", str(home.config), *command)
    assert got.returncode == 1, got.stderr  # an outage, not a mistake in the command
    err = _one_line(got)
    assert "cannot be reached" in err and "Check that it is running" in err


def test_serve_without_a_database_keeps_retrying_and_logs_it_once(home: Home) -> None:
    url = f"postgresql://optterm@127.0.0.1:{_closed_port()}/optterm"
    home.write_config(
        f'[store]\nurl = "{url}"\n[providers]\norder = ["simulator"]\n', with_store=False
    )
    proc = _Daemon(home)
    try:
        first = proc.until("database unreachable")
        assert "retrying in" in first[-1]
        assert proc.alive()  # still waiting, not crashed
    finally:
        rest = proc.stop()
    assert proc.returncode == 0, rest
    log = "".join(proc.seen) + rest
    assert "Traceback" not in log
    assert log.count("database unreachable") == 1, log


@pytest.mark.parametrize(
    ("store", "command", "expected"),
    [
        ("mysql://u@127.0.0.1/optterm", ("status",), "SQLite or PostgreSQL only"),
        ("sqlite://", ("serve",), "cannot use an in-memory store"),
        ("sqlite+aiosqlite:///:memory:", ("serve",), "cannot use an in-memory store"),
    ],
)
def test_unusable_store_urls_are_usage_errors(
    home: Home, store: str, command: tuple[str, ...], expected: str
) -> None:
    home.write_config(f'[store]\nurl = "{store}"\n', with_store=False)
    got = run_cli(home, "--config", str(home.config), *command)
    assert got.returncode == 2, got.stderr
    assert expected in _one_line(got)


def test_deeply_nested_toml_is_a_config_error(home: Home) -> None:
    home.config.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    got = run_cli(home, "--config", str(home.config), "status")
    assert got.returncode == 2, got.stderr
    assert "nests arrays or tables too deeply" in _one_line(got)


def test_a_rule_id_past_64_bits_is_a_usage_error(home: Home) -> None:
    home.write_config()
    got = run_cli(home, "--config", str(home.config), "alerts", "rm", "99999999999999999999999")
    assert got.returncode == 2, got.stderr
    assert "Traceback" not in got.stderr and "OverflowError" not in got.stderr
    assert "9223372036854775807" in got.stderr


@pytest.mark.process
def test_output_to_a_full_device_is_one_line_exit_1(home: Home) -> None:
    home.write_config('[providers]\norder = ["simulator"]\n')
    with open("/dev/full", "w") as full:
        got = subprocess.run(
            optterm_cmd("--config", str(home.config), "chain", "--json", "NIFTY"),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=home.env,
            cwd=home.root,
            timeout=60,
        )
    assert got.returncode == 1, got.stderr
    assert "cannot write the output: No space left on device" in _one_line(got)


@pytest.mark.process
def test_output_to_a_closed_pipe_is_silent(home: Home) -> None:
    home.write_config('[providers]\norder = ["simulator"]\n')
    r, w = os.pipe()
    os.close(r)  # the reader is gone before we write
    try:
        got = subprocess.run(
            optterm_cmd("--config", str(home.config), "chain", "--json", "NIFTY"),
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            env=home.env,
            cwd=home.root,
            timeout=60,
        )
    finally:
        os.close(w)
    assert "Traceback" not in got.stderr and "Exception ignored" not in got.stderr, got.stderr
    assert got.returncode == 1


def test_deeply_nested_json_from_a_provider_is_a_bad_payload() -> None:
    from optterm.providers.base import BadPayload, ErrorKind
    from optterm.providers.http import decode_json

    body = b"[" * 200_000 + b"]" * 200_000
    resp = httpx.Response(
        200,
        content=body,
        headers={"content-type": "application/json"},
        request=httpx.Request("GET", "https://www.nseindia.com/api/option-chain-indices"),
    )
    with pytest.raises(BadPayload) as caught:
        decode_json("nse", resp)
    assert caught.value.kind is ErrorKind.BAD_PAYLOAD  # what the breaker counts
    assert "nested too deeply" in str(caught.value)


# ------------------------------------------------------------------ serve through an outage


class _Daemon:
    """`optterm serve` as a real process, its log read on a thread so a wait has a deadline."""

    def __init__(self, home: Home, *args: str) -> None:
        self.proc = subprocess.Popen(
            optterm_cmd("--config", str(home.config), "serve", *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=home.env,
            cwd=home.root,
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, text: str, count: int = 1, timeout: float = 120) -> list[str]:
        """Lines read until `count` more contain `text` (an event; the deadline only guards)."""
        deadline = time.monotonic() + timeout
        got: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no {text!r} within {timeout}s:\n" + "".join(got[-30:])
                ) from None
            if line is None:
                self._lines.put(None)  # stop() reads to the end too
                raise AssertionError("serve exited:\n" + "".join(self.seen[-80:]))
            self.seen.append(line)
            got.append(line)
            if text in line:
                count -= 1
                if count == 0:
                    return got

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=60)
        rest: list[str] = []
        while (line := self._lines.get(timeout=30)) is not None:
            rest.append(line)
        return "".join(rest)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


def _snapshot_count(server: PgServer) -> int:
    import asyncpg

    async def go() -> int:
        conn = await asyncpg.connect(server.dsn(), timeout=10)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM snapshots"))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture
def private_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own: the test shuts it down and starts it again."""
    try:
        server = start_server()
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


@pytest.mark.process
@pytest.mark.slow
def test_serve_rides_out_a_postgres_outage_and_resumes_storing(
    home: Home, private_pg: PgServer
) -> None:
    home.write_config(
        f"""
[store]
url = "{private_pg.url()}"
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
""",
        with_store=False,
    )
    daemon = _Daemon(home, "--interval", "0.5")
    try:
        daemon.until("stored", count=2)
        private_pg.pause()
        daemon.until("database unreachable")
        assert daemon.alive()
        private_pg.resume()
        daemon.until("database back")
        stored_at_resume = _snapshot_count(private_pg)
        daemon.until("stored", count=3)  # ticks after the outage
        assert daemon.alive()
        assert _snapshot_count(private_pg) > stored_at_resume
    finally:
        rest = daemon.stop()
    log = "".join(daemon.seen) + rest
    assert daemon.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert log.count("database unreachable") == 1, log[-3000:]
    assert log.count("database back") == 1, log[-3000:]


def test_the_retry_backoff_doubles_to_a_cap_with_jitter() -> None:
    from optterm.cli.serve import Backoff

    retry = Backoff()
    delays = [retry.failed() for _ in range(10)]
    bases = [min(Backoff.FIRST_S * 2**i, Backoff.CAP_S) for i in range(10)]
    assert all(0.8 * b <= d <= 1.2 * b for d, b in zip(delays, bases, strict=True)), delays
    assert max(delays) <= 1.2 * Backoff.CAP_S
    retry.reset()
    assert retry.failed() <= 1.2 * Backoff.FIRST_S


def test_libpq_sslmode_in_a_postgres_url_is_passed_as_asyncpg_ssl() -> None:
    from optterm.store.db import resolve_url

    target = resolve_url("postgresql://u@db.example/optterm?sslmode=require")
    assert target.url.query == {"ssl": "require"}
