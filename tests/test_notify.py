"""Alert delivery over Apprise to real loopback servers: send_now, the outbox Dispatcher (retry
schedule, in-app sink, removed channels, crash recovery, wake-up) and secret hygiene."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optterm.config import Settings, load_settings
from optterm.engine.notify.channels import parse_channel_spec
from optterm.engine.notify.dispatcher import PAUSE_AT_ENV, PAUSE_FILE_ENV, Dispatcher, send_now
from optterm.model import Delivery
from optterm.store import Store, open_store, outbox
from tests.notify_servers import CaptureServer, SmtpSink
from tests.test_outbox_store import add_event, add_row, row

T0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def at(self, seconds: float) -> datetime:
        self.t = T0 + timedelta(seconds=seconds)
        return self.t


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as s:
        yield s


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        yield s
    finally:
        await s.close()


def write_config(tmp_path: Path, channels: dict[str, str], extra: str = "") -> Path:
    lines = ", ".join(f'{name} = "{url}"' for name, url in channels.items())
    path = tmp_path / "optterm.toml"
    path.write_text(f"[notify]\nchannels = {{ {lines} }}\n{extra}", encoding="utf-8")
    return path


def settings_for(tmp_path: Path, channels: dict[str, str], extra: str = "") -> Settings:
    return load_settings(write_config(tmp_path, channels, extra), env={})


async def add_rows(store: Store, settings: Settings, event_id: int, *specs: str) -> list[int]:
    """Outbox rows for channel specs as a rule stores them (reference + redacted label)."""
    ids = []
    for spec in specs:
        ch = parse_channel_spec(spec, settings, None)
        ids.append(await add_row(store, event_id, ch.ref, ch.label))
    return ids


class SentLog(logging.Handler):
    """Sets an event when the dispatcher logs "outbox N → …: sent" for a given row."""

    def __init__(self, outbox_id: int) -> None:
        super().__init__(logging.INFO)
        self.prefix = f"outbox {outbox_id} → "
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith(self.prefix) and ": sent (attempt" in msg:
            self.event.set()


# ------------------------------------------------------------------------------------ send_now


async def test_send_now_posts_json_with_title_and_message(server: CaptureServer) -> None:
    results = await send_now(
        [("tag:ok", server.json_url("ok"))], "NIFTY above 24500", "spot 24512.3", timeout=5
    )
    assert [(r.label, r.ok, r.error) for r in results] == [("tag:ok", True, None)]
    (hit,) = server.hits("ok")
    doc = hit.json()
    assert (doc["title"], doc["message"], doc["type"]) == (
        "NIFTY above 24500",
        "spot 24512.3",
        "warning",
    )
    assert hit.headers["Content-Type"].startswith("application/json")


async def test_send_now_mails_through_smtp() -> None:
    with SmtpSink() as smtp:
        results = await send_now(
            [("mail", smtp.mailto_url())], "BANKNIFTY PCR below 0.7", "PCR 0.68 at 10:15", 10
        )
        assert results[0].ok, results[0].error
        (msg,) = smtp.wait_for(1)
    assert msg["Subject"] == "BANKNIFTY PCR below 0.7"
    assert "trader@localhost" in msg["To"] and "optterm@localhost" in msg["From"]
    text = msg.get_body(("plain",)) if msg.is_multipart() else msg
    assert text is not None and "PCR 0.68 at 10:15" in text.get_content()
    assert smtp.envelopes[0] == ("optterm@localhost", ["trader@localhost"])


async def test_send_now_failure_names_the_label_not_the_url(server: CaptureServer) -> None:
    server.fail("fail")
    url = server.json_url("fail")
    results = await send_now([("tag:bad", url), ("tag:ok", server.json_url("ok"))], "t", "b", 5)
    bad, ok = results
    assert ok.ok and not bad.ok
    assert bad.error is not None and bad.error.startswith("tag:bad: ")
    assert "500" in bad.error
    assert url not in bad.error and "/fail" not in bad.error and str(server.port) not in bad.error
    assert len(server.hits("fail")) == 1  # Apprise's own retries are off: the outbox retries


async def test_send_now_turns_off_retries_given_in_the_url(server: CaptureServer) -> None:
    server.fail("fail")
    (res,) = await send_now([("x", server.json_url("fail", "retry=3&wait=0"))], "t", "b", 5)
    assert not res.ok and len(server.hits("fail")) == 1


async def test_send_now_unusable_url_is_a_result_not_an_exception() -> None:
    (res,) = await send_now([("tag:odd", "nosuchscheme://secret-token-xyz")], "t", "b", 5)
    assert not res.ok and res.error is not None and res.error.startswith("tag:odd: ")
    assert "secret-token-xyz" not in res.error
    assert await send_now([], "t", "b", 5) == []


async def test_send_now_sends_targets_concurrently(server: CaptureServer) -> None:
    server.hold("slow")
    task = asyncio.create_task(
        send_now([("slow", server.json_url("slow")), ("ok", server.json_url("ok"))], "t", "b", 10)
    )
    # The slow one is still unanswered when the other arrives: they were sent side by side.
    await server.await_for(1, "slow")
    await server.await_for(1, "ok")
    assert not task.done()
    server.release()
    assert [r.ok for r in await task] == [True, True]


# ---------------------------------------------------------------------------------- dispatcher


async def test_retry_schedule_then_failed_while_ok_and_app_deliver_once(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    server.fail("fail")
    settings = settings_for(tmp_path, {"ok": server.json_url("ok"), "bad": server.json_url("fail")})
    assert settings.notify.retry_schedule == [1.0, 5.0, 15.0]
    toasts: list[outbox.OutboxItem] = []
    clock = Clock()
    d = Dispatcher(store, settings, None, now=clock, app_sink=toasts.append)
    ev = await add_event(store, title="NIFTY above 24500", body="spot 24512.3")
    ok, bad, app = await add_rows(store, settings, ev, "tag:ok", "tag:bad", "app")

    assert await d.dispatch_once() == 3
    item = await row(store, ok)
    assert (item.status, item.attempts) == (Delivery.SENT, 1)
    assert [h.json()["title"] for h in server.hits("ok")] == ["NIFTY above 24500"]
    assert [(t.id, t.title, t.body) for t in toasts] == [(app, "NIFTY above 24500", "spot 24512.3")]
    assert (await row(store, app)).status is Delivery.SENT

    # bad: attempts at 0 s, 1 s, 6 s and 21 s — each retry 1, 5, 15 s after the attempt before.
    for attempt, due_at in ((1, 1.0), (2, 6.0), (3, 21.0)):
        item = await row(store, bad)
        assert (item.status, item.attempts) == (Delivery.PENDING, attempt)
        assert item.next_attempt_at == T0 + timedelta(seconds=due_at)
        assert item.last_error is not None and item.last_error.startswith("tag:bad (")
        assert "500" in item.last_error
        clock.at(due_at - 0.001)
        assert await d.dispatch_once() == 0  # not due yet
        clock.at(due_at)
        assert await d.dispatch_once() == 1
        assert len(server.hits("fail")) == attempt + 1

    item = await row(store, bad)
    assert (item.status, item.attempts) == (Delivery.FAILED, 4)
    assert item.last_error is not None and item.last_error.startswith("gave up after 4 attempt(s)")
    assert "500" in item.last_error
    assert len(server.hits("fail")) == 4
    assert len(server.hits("ok")) == 1 and len(toasts) == 1  # nothing delivered twice
    clock.at(3600)
    assert await d.dispatch_once() == 0
    assert await store.outbox.backlog() == {"PENDING": 0, "SENDING": 0, "SENT": 2, "FAILED": 1}


async def test_a_channel_removed_from_the_config_fails_at_once(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    old = settings_for(tmp_path, {"gone": server.json_url("gone")})
    ev = await add_event(store)
    (rid,) = await add_rows(store, old, ev, "tag:gone")
    settings = settings_for(tmp_path, {"ok": server.json_url("ok")})
    assert await Dispatcher(store, settings, now=Clock()).dispatch_once() == 1
    item = await row(store, rid)
    assert item.status is Delivery.FAILED and item.attempts == 1
    assert item.last_error == "tag:gone is no longer in [notify] channels of the config"
    assert server.requests == []


async def test_without_an_app_sink_in_app_rows_are_done(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, {})
    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "app")
    assert await Dispatcher(store, settings, now=Clock()).dispatch_once() == 1
    assert (await row(store, rid)).status is Delivery.SENT


async def test_a_failing_app_sink_is_retried_like_a_channel(tmp_path: Path, store: Store) -> None:
    settings = settings_for(tmp_path, {})

    def broken(item: outbox.OutboxItem) -> None:
        raise RuntimeError("the screen is gone")

    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "app")
    await Dispatcher(store, settings, now=Clock(), app_sink=broken).dispatch_once()
    item = await row(store, rid)
    assert item.status is Delivery.PENDING and item.next_attempt_at == T0 + timedelta(seconds=1)
    assert item.last_error == "in-app: RuntimeError: the screen is gone"


async def test_interrupted_rows_become_failed_and_are_not_resent(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    settings = settings_for(tmp_path, {"ok": server.json_url("ok")})
    ev = await add_event(store)
    stuck = await add_row(store, ev, "tag:ok", status=Delivery.SENDING, attempts=1)
    d = Dispatcher(store, settings, now=Clock())
    assert await d.dispatch_once() == 0
    item = await row(store, stuck)
    assert item.status is Delivery.FAILED and item.last_error == outbox.INTERRUPTED
    assert server.requests == []


async def test_a_hanging_channel_does_not_hold_up_the_others(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    server.hold("slow")
    settings = settings_for(
        tmp_path, {"ok": server.json_url("ok"), "slow": server.json_url("slow")}
    )
    ev = await add_event(store)
    slow, ok = await add_rows(store, settings, ev, "tag:slow", "tag:ok")
    watch = SentLog(ok)
    logging.getLogger("optterm.notify").addHandler(watch)
    logging.getLogger("optterm.notify").setLevel(logging.INFO)
    try:
        task = asyncio.create_task(Dispatcher(store, settings, now=Clock()).dispatch_once())
        await server.await_for(1, "slow")
        assert await asyncio.to_thread(watch.event.wait, 10)
        assert (await row(store, ok)).status is Delivery.SENT
        assert (await row(store, slow)).status is Delivery.SENDING
        assert not task.done()
        server.release()
        assert await task == 2
    finally:
        logging.getLogger("optterm.notify").removeHandler(watch)
        logging.getLogger("optterm.notify").setLevel(logging.NOTSET)
    assert (await row(store, slow)).status is Delivery.SENT


async def test_run_delivers_on_wake_and_retries_without_polling(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    server.fail("flaky", times=1)
    settings = settings_for(
        tmp_path,
        {"ok": server.json_url("ok"), "flaky": server.json_url("flaky")},
        "retry_schedule = [0]\n",
    )
    # An idle look only every 60 s: delivery within the test's bound proves wake() worked.
    d = Dispatcher(store, settings, max_idle=60)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    try:
        ev = await add_event(store, title="wake me")
        ok, flaky = await add_rows(store, settings, ev, "tag:ok", "tag:flaky")
        d.wake()
        (hit,) = await server.await_for(1, "ok")
        assert hit.json()["title"] == "wake me"
        await server.await_for(2, "flaky")  # failed once, retried at once (schedule [0])
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert (await row(store, ok)).status is Delivery.SENT
    item = await row(store, flaky)
    assert (item.status, item.attempts) == (Delivery.SENT, 2)


async def test_drain_sends_what_is_due_within_its_bound(
    tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    settings = settings_for(tmp_path, {"ok": server.json_url("ok")})
    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "tag:ok")
    assert await Dispatcher(store, settings).drain(10) == 1
    assert (await row(store, rid)).status is Delivery.SENT

    server.hold("slow")
    settings = settings_for(tmp_path, {"slow": server.json_url("slow")})
    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "tag:slow")
    assert await Dispatcher(store, settings).drain(0.3) == 0  # gave up on the hanging send
    assert (await row(store, rid)).status is Delivery.SENDING  # FAILED on the next start
    server.release()


# ------------------------------------------------------------------------------------- secrets


async def test_a_token_in_the_url_never_reaches_logs_output_or_results(
    tmp_path: Path,
    server: CaptureServer,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "SECRET123"
    server.fail("hook", times=1)
    url = server.json_url("hook", f"+X-Token={secret}")

    results = await send_now([("tag:hook", url)], "t", "b", 5)  # answered 500
    results += await send_now([("tag:hook", url)], "t", "b", 5)  # answered 200
    assert [r.ok for r in results] == [False, True]
    assert [h.headers.get("X-Token") for h in server.hits("hook")] == [secret, secret]

    server.fail("hook", times=1)
    settings = settings_for(tmp_path, {"hook": url})
    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "tag:hook")
    clock = Clock()
    d = Dispatcher(store, settings, now=clock)
    await d.dispatch_once()
    clock.at(1)
    await d.dispatch_once()
    item = await row(store, rid)
    assert item.status is Delivery.SENT and len(server.hits("hook")) == 4

    out, err = capsys.readouterr()
    messages = [r.getMessage() for r in caplog.records]
    assert any("Loaded JSON URL" in m for m in messages)  # Apprise's debug lines were captured
    assert any("outbox" in m and "sent (attempt 2)" in m for m in messages)
    everything = "\n".join(
        [out, err, caplog.text, *messages, repr(results), repr(item), item.channel_label]
    )
    assert secret not in everything
    assert "/hook" not in "\n".join([repr(results), item.last_error or "", item.channel_label])


# ------------------------------------------------------------------------ crash at a send point

CRASH_SCRIPT = """
import asyncio, sys
from optterm.config import load_settings
from optterm.engine.notify.dispatcher import Dispatcher
from optterm.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    await Dispatcher(store, load_settings(sys.argv[2], env={})).dispatch_once()

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("point", ["before_send", "after_send"])
async def test_kill_9_at_a_send_point_never_delivers_twice(
    point: str, tmp_path: Path, server: CaptureServer, store: Store
) -> None:
    config = write_config(tmp_path, {"ok": server.json_url("ok")})
    settings = load_settings(config, env={})
    ev = await add_event(store)
    (rid,) = await add_rows(store, settings, ev, "tag:ok")
    fifo = tmp_path / "paused"
    os.mkfifo(fifo)
    # Opened read-write so neither side blocks on open; select() then waits for the id.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    env = {**os.environ, PAUSE_AT_ENV: point, PAUSE_FILE_ENV: str(fifo)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH_SCRIPT,
        f"sqlite+aiosqlite:///{tmp_path / 'o.db'}",
        str(config),
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready, _, _ = await asyncio.to_thread(select.select, [fd], [], [], 60)
        assert ready, f"the dispatcher never paused (exit status {proc.returncode})"
        assert os.read(fd, 64).decode().strip() == str(rid)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.communicate(), 30)
        os.close(fd)
    assert proc.returncode == -signal.SIGKILL

    item = await row(store, rid)
    if point == "before_send":
        assert (item.status, item.attempts, len(server.requests)) == (Delivery.PENDING, 0, 0)
    else:
        assert (item.status, item.attempts, len(server.requests)) == (Delivery.SENDING, 1, 1)

    await Dispatcher(store, settings).dispatch_once()  # the restart
    item = await row(store, rid)
    assert len(server.hits("ok")) == 1  # exactly one delivery either way
    if point == "before_send":
        assert item.status is Delivery.SENT
    else:
        assert item.status is Delivery.FAILED and item.last_error == outbox.INTERRUPTED
