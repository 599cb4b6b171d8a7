"""Alert delivery: the outbox dispatcher and a one-shot `send_now` over Apprise.

`Dispatcher` drains the outbox (store/outbox.py): it claims each due row (PENDING → SENDING),
resolves the row's channel reference to an Apprise URL (notify/channels.py), sends, and marks
the row SENT, PENDING again on the retry schedule of `[notify] retry_schedule`, or FAILED. Every
row is sent in its own task, so a slow or failing channel never holds up another channel of the
same event, nor a later event. The engine calls `wake()` after committing new rows and delivery
starts at once; otherwise the dispatcher sleeps until the next retry is due (at most 1 s).

Exactly-once is not possible over webhooks and mail; optterm chooses *at most once* after a
crash: a row found SENDING at start-up is marked FAILED ("delivery unknown"), never re-sent.

Secrets: Apprise URLs carry tokens. Nothing here logs or returns a URL — only the row's redacted
`channel_label` (or `channels.redact_url`) — and every URL is registered with the redactor
(infra/redact.py) before Apprise sees it.

Apprise is used only through `await Apprise.async_notify(...)` (its sync `notify()` would block
the event loop), one Apprise object per URL so each result maps to its channel, with Apprise's
own retries disabled (`retry = 0` on the service, whatever the URL says): the outbox retries.

Crash-test hooks (no effect unless set; for tests that `kill -9` the process at a known point):

- ``OPTTERM_TEST_PAUSE_AT=before_send``: after the due rows are read, before any is claimed;
- ``OPTTERM_TEST_PAUSE_AT=after_send``: after a row's send succeeded, before it is marked SENT.

At that point the dispatcher writes the outbox id (decimal text) to the file named by
``OPTTERM_TEST_PAUSE_FILE`` (a named pipe works too, so a test can block on reading it) and then
waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from optterm.config import Settings
from optterm.engine.notify.channels import APP, ChannelError, redact_url, resolve_channel
from optterm.infra.redact import protect_urls, redact
from optterm.infra.secrets import SecretStore
from optterm.market import utc_now
from optterm.model import Delivery
from optterm.store import Store
from optterm.store.errors import StoreError
from optterm.store.outbox import OutboxItem

__all__ = ["PAUSE_AT_ENV", "PAUSE_FILE_ENV", "Dispatcher", "SendResult", "send_now"]

log = logging.getLogger("optterm.notify")

PAUSE_AT_ENV: Final = "OPTTERM_TEST_PAUSE_AT"
PAUSE_FILE_ENV: Final = "OPTTERM_TEST_PAUSE_FILE"
MAX_IDLE: Final = 1.0  # seconds between looks at the outbox when nobody wakes the dispatcher
BATCH: Final = 100
_WARNING_OR_WORSE: Final = frozenset({logging.WARNING, logging.ERROR, logging.CRITICAL})


# ------------------------------------------------------------------------------------ sending


@dataclass(frozen=True, slots=True)
class SendResult:
    label: str  # the channel's redacted label, as given
    ok: bool
    error: str | None = None  # names the label, never the URL


def _detail(result: Any) -> str:
    """What went wrong, from Apprise's result: its last warning/error line, else the status."""
    from apprise import AppriseResultStatus

    if result.status == AppriseResultStatus.NOMATCH:
        return "Apprise did not send anything (no service matched)"
    lines: list[str] = []
    for service in result:
        with contextlib.suppress(Exception):
            lines.extend(
                str(e.message)
                for e in service.logs()
                if logging.getLevelName(str(e.level).upper()) in _WARNING_OR_WORSE
            )
        if service.status == AppriseResultStatus.TIMEOUT:
            return "timed out" + (f" ({lines[-1]})" if lines else "")
    if lines:
        return lines[-1]
    return result.status.name.lower()


async def _send_one(
    label: str, url: str, title: str, body: str, budget: float, notify_type: str
) -> SendResult:
    import apprise  # ~0.3 s on first import: only when something is actually sent

    try:
        asset = apprise.AppriseAsset(service_timeout=budget)
        service = apprise.Apprise.instantiate(url, asset=asset)
        if service is None:
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            return SendResult(
                label,
                False,
                f"{label}: Apprise cannot use this {scheme}:// URL (unknown service or a "
                "required part missing)",
            )
        service.retry = 0  # the outbox retries, on its own schedule
        apobj = apprise.Apprise(asset=asset)
        apobj.add(service)
        # Apprise enforces service_timeout itself; the outer bound only guards against a hang.
        async with asyncio.timeout(budget + 5):
            result = await apobj.async_notify(
                title=title, body=body, notify_type=apprise.NotifyType(notify_type)
            )
    except TimeoutError:
        return SendResult(label, False, f"{label}: timed out after {budget:g} s")
    except Exception as exc:  # a plugin bug must not kill the dispatcher
        return SendResult(label, False, f"{label}: {type(exc).__name__}: {redact(str(exc))}")
    if result:
        return SendResult(label, True)
    return SendResult(label, False, f"{label}: {redact(_detail(result))}")


async def send_now(
    targets: Sequence[tuple[str, str]],
    title: str,
    body: str,
    timeout: float,  # noqa: ASYNC109 - Apprise's per-service budget, not a cancel scope
    notify_type: str = "warning",
) -> list[SendResult]:
    """Send one message to every (label, url) target concurrently; one result per target, in
    order. Never raises for a delivery problem and never returns or logs a URL."""
    if not targets:
        return []
    protect_urls(url for _, url in targets)
    return list(
        await asyncio.gather(
            *(_send_one(label, url, title, body, timeout, notify_type) for label, url in targets)
        )
    )


# --------------------------------------------------------------------------------- dispatcher


async def _pause_if(point: str, outbox_id: int) -> None:
    if os.environ.get(PAUSE_AT_ENV) != point:
        return
    target = os.environ.get(PAUSE_FILE_ENV)
    log.warning("test hook %s=%s: pausing at outbox %d", PAUSE_AT_ENV, point, outbox_id)
    if target:
        # Blocking on purpose: with a named pipe this waits for the test to read it.
        Path(target).write_text(f"{outbox_id}\n", encoding="ascii")  # noqa: ASYNC240
    await asyncio.Event().wait()  # never set: wait here until killed


AppSink = Callable[[OutboxItem], Awaitable[None] | None]


class Dispatcher:
    """Delivers the outbox. Run one per database (the daemon, or a TUI without a daemon).

    `now` is the clock used for due times and retry times (tests inject one and drive
    `dispatch_once`); `app_sink` receives the rows of the "app" channel (the TUI's toast) —
    without one they are marked SENT, the event itself being in the alert history.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        secrets: SecretStore | None = None,
        *,
        now: Callable[[], datetime] = utc_now,
        app_sink: AppSink | None = None,
        max_idle: float = MAX_IDLE,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.settings = settings
        self.secrets = secrets
        self.app_sink = app_sink
        self._now = now
        self._max_idle = max_idle
        self._batch = batch
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[asyncio.Task[bool]] = set()
        self._recovered = False

    # --------------------------------------------------------------------------- signalling

    def wake(self) -> None:
        """New rows were committed: look at the outbox now. Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._wake.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    @property
    def inflight(self) -> int:
        """Rows being sent right now."""
        return len(self._inflight)

    # ------------------------------------------------------------------------------ running

    async def recover(self) -> int:
        """Mark rows a crashed run left SENDING as FAILED (once per dispatcher)."""
        if self._recovered:
            return 0
        count = await self.store.outbox.recover_interrupted()
        self._recovered = True
        if count:
            log.warning(
                "outbox: %d delivery(ies) were interrupted by a crash while sending; marked "
                "FAILED and not re-sent (they may or may not have arrived)",
                count,
            )
        return count

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then wait (bounded) for sends in flight."""
        self._loop = asyncio.get_running_loop()
        await self.recover()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._pass()
                delay = await self._idle_delay()
            except StoreError as err:
                log.warning("outbox: %s", err)
                delay = self._max_idle
            except Exception:  # a bug must not end delivery for the rest of the session
                log.exception("outbox: dispatch pass failed")
                delay = self._max_idle
            if stop.is_set() or self._wake.is_set():
                continue
            await self._wait(stop, delay)
        # Sends in flight get their own timeout (plus a margin) to finish and be recorded.
        await self._settle(self.settings.notify.timeout + 1)
        await self._abandon()

    async def dispatch_once(self) -> int:
        """One pass: claim and send every row due now, and wait for those sends. Returns how
        many rows were handled (sent, rescheduled or failed)."""
        self._loop = asyncio.get_running_loop()
        await self.recover()
        tasks = await self._pass()
        if not tasks:
            return 0
        return sum(await asyncio.gather(*tasks))

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a bound, as documented
        """Send what is due now (retries that fall due meanwhile included) within `timeout`
        seconds, as on shutdown; returns how many rows were handled. Sends still running at the
        deadline are abandoned (their rows stay SENDING and are marked FAILED on next start)."""
        handled = 0
        try:
            async with asyncio.timeout(timeout):
                await self._settle(None)
                while (n := await self.dispatch_once()) > 0:
                    handled += n
        except TimeoutError:
            log.warning("outbox: drain stopped after %g s with sends still running", timeout)
            await self._abandon()
        return handled

    # ----------------------------------------------------------------------------- internals

    async def _idle_delay(self) -> float:
        due = await self.store.outbox.next_due_at()
        if due is None:
            return self._max_idle
        return min(self._max_idle, max(0.0, (due - self._now()).total_seconds()))

    async def _wait(self, stop: asyncio.Event, delay: float) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _settle(self, limit: float | None) -> None:
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=limit)

    async def _abandon(self) -> None:
        """Cancel sends still running; their rows stay SENDING (FAILED on the next start)."""
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pass(self) -> list[asyncio.Task[bool]]:
        items = await self.store.outbox.due(self._now(), self._batch)
        if not items:
            return []
        await _pause_if("before_send", items[0].id)
        tasks: list[asyncio.Task[bool]] = []
        for item in items:
            if not await self.store.outbox.claim(item.id, self._now()):
                continue  # someone else has it
            claimed = dataclasses.replace(item, status=Delivery.SENDING, attempts=item.attempts + 1)
            task = asyncio.create_task(self._deliver(claimed), name=f"outbox-{item.id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
            tasks.append(task)
        return tasks

    def _done(self, task: asyncio.Task[bool]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("outbox: a delivery task failed: %s", err, exc_info=err)

    async def _resolve(self, ref: str) -> str | None:
        if ref.startswith("keyring:"):  # a keyring backend may block (D-Bus)
            return await asyncio.to_thread(resolve_channel, ref, self.settings, self.secrets)
        return resolve_channel(ref, self.settings, self.secrets)

    async def _deliver(self, item: OutboxItem) -> bool:
        label = item.channel_label or item.channel
        try:
            try:
                url = await self._resolve(item.channel) if item.channel != APP else None
            except ChannelError as err:
                await self.store.outbox.mark_failed(item.id, str(err))
                log.warning("outbox %d → %s: failed: %s", item.id, label, err)
                return True
            if url is None:
                error = await self._to_app(item)
            else:
                label = item.channel_label or redact_url(url)
                (result,) = await send_now(
                    [(label, url)],
                    item.title,
                    item.body,
                    self.settings.notify.timeout,
                    item.notify_type,
                )
                error = None if result.ok else (result.error or f"{label}: failed")
            if error is None:
                await _pause_if("after_send", item.id)
                await self.store.outbox.mark_sent(item.id, self._now())
                log.info("outbox %d → %s: sent (attempt %d)", item.id, label, item.attempts)
            else:
                await self._failed_attempt(item, label, error)
            return True
        except StoreError as err:
            # The row stays SENDING: on the next start it is marked FAILED, never re-sent.
            log.warning("outbox %d → %s: could not record the outcome: %s", item.id, label, err)
            return False

    async def _to_app(self, item: OutboxItem) -> str | None:
        if self.app_sink is None:
            return None
        try:
            result = self.app_sink(item)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            return f"in-app: {type(exc).__name__}: {exc}"
        return None

    async def _failed_attempt(self, item: OutboxItem, label: str, error: str) -> None:
        schedule = self.settings.notify.retry_schedule
        if item.attempts <= len(schedule):
            delay = schedule[item.attempts - 1]
            next_at = self._now() + timedelta(seconds=delay)
            await self.store.outbox.mark_retry(item.id, next_at, error)
            log.warning(
                "outbox %d → %s: attempt %d failed, retrying in %g s: %s",
                item.id,
                label,
                item.attempts,
                delay,
                error,
            )
            self.wake()  # so the run loop times its next look to this retry
        else:
            reason = f"gave up after {item.attempts} attempt(s): {error}"
            await self.store.outbox.mark_failed(item.id, reason)
            log.warning("outbox %d → %s: failed: %s", item.id, label, reason)
