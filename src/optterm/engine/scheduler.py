"""The daemon's clock: polling cadence around the session, and the housekeeping jobs.

Cadence: `interval_at(now)` is `[poller] interval` while the market is open and
`[scheduler] idle_interval` outside it (before the open, after the close, weekends, holidays),
shortened so the first tick after a pause lands at the next open. Given a poller, the scheduler
installs that as the poller's `interval_fn`.

Jobs, each recorded in the `jobs` table (start, finish, duration, outcome) and never raising into
the caller — a failed job is tried again after `[scheduler] retry_after`:

* `eod`: once per trading day, `eod_delay` after the close, summarise the day's snapshots into
  `daily_strikes` / `daily_spot` (store/daily.py). At start-up the last trading day is caught up
  if it has no summary and no run recorded after its close. Idempotent, so when in doubt it runs.
* `retention`: once per exchange-local day, outside market hours, purge snapshots older than
  `[store] retention_days` whole days. Daily summaries are kept.
* `checkpoint`: outside market hours, at most every `checkpoint_every`, fold the SQLite WAL into
  the database and truncate it; `skipped` on other databases.
* `holidays`: with a live provider configured, once per exchange-local day (at start if not yet
  today), fetch NSE's trading-holiday list, check it and cache it (providers/nse/holidays.py);
  the scheduler's calendar follows at once, the rest of the process from its next start. A
  failure (NSE refusing, a payload that is not a holiday list) is recorded and logged as a
  warning, the known lists stay, and NSE is not asked again before the next day.

Every time is UTC-aware; days and hours are the exchange's, through the MarketCalendar: the
watched segments' sessions combined (market.MarketCalendar.for_symbols), so a watchlist with
CRUDEOIL polls fast until MCX's close and summarises its day after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from optterm.store.errors import StoreError
from optterm.store.jobs import JobRun

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.store import Store

__all__ = ["JOB_NAMES", "JobRun", "Scheduler"]

log = logging.getLogger("optterm.scheduler")

JOB_NAMES: Final[tuple[str, ...]] = ("eod", "retention", "checkpoint", "holidays")
# run() wakes at least this often even with nothing due, so a wall-clock jump (suspend, NTP)
# never leaves a job waiting for hours; and never spins faster than MIN_SLEEP_S.
MAX_SLEEP_S: Final = 300.0
MIN_SLEEP_S: Final = 1.0
# The shortest pause interval_at returns (the poller's own minimum interval).
MIN_INTERVAL_S: Final = 0.2

_Outcome = tuple[str, str]  # (outcome, detail)
# A scheduled job: its name, when it is next due (None: not due) and its body.
_Job = tuple[str, Callable[[datetime], Any], Callable[[datetime, Any], Awaitable[_Outcome]]]


class Scheduler:
    """Cadence and housekeeping for one store. `now` and `sleep` are injectable for tests:
    `sleep(seconds)` replaces run()'s wait (which otherwise ends early when `stop` is set)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        calendar: MarketCalendar,
        *,
        poller: Any = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        sch = settings.scheduler
        self.store = store
        self.calendar = calendar
        self.fast_interval = float(settings.poller.interval)
        self.idle_interval = float(sch.idle_interval)
        self.eod_delay = timedelta(seconds=sch.eod_delay)
        self.checkpoint_every = timedelta(seconds=sch.checkpoint_every)
        self.retry_after = timedelta(seconds=sch.retry_after)
        self.retention_days = int(settings.store.retention_days)
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self.poller = poller
        if poller is not None:
            poller.interval_fn = self.interval
        self._started = False
        self._eod_day: date | None = None  # the last day whose summary is known written
        self._retention_day: date | None = None  # exchange-local day of the last purge
        self._checkpoint_at: datetime | None = None
        self._checkpoint_unsupported = False
        self._retry_at: dict[str, datetime] = {}  # a failed job waits until then
        # Fetches and caches the exchange's holiday list (None: no live provider, no job).
        self.refresh_holidays: Callable[[datetime], Awaitable[str]] | None = None
        self._holidays_day: date | None = None  # exchange-local day of the last attempt

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **kwargs: Any) -> Scheduler:
        from optterm.providers.factory import market_calendar
        from optterm.providers.nse.holidays import refresh, refreshes

        # The watchlist's sessions together: fast polling, the close and the jobs outside
        # market hours follow whichever watched segment is still trading (MCX into the evening).
        watched = [w.symbol for w in settings.poller.watch]
        sch = cls(store, settings, market_calendar(settings).for_symbols(watched), **kwargs)
        if refreshes(settings):

            async def holidays(now: datetime) -> str:
                detail = await refresh(settings, now)
                # the refreshed list, from now on
                sch.calendar = market_calendar(settings).for_symbols(watched)
                return detail

            sch.refresh_holidays = holidays
        return sch

    # ------------------------------------------------------------------------------ cadence

    def interval_at(self, now: datetime) -> float:
        """Seconds the poller should wait after a tick at `now`."""
        if self.calendar.is_open(now):
            return self.fast_interval
        until_open = (self.next_open(now) - now).total_seconds()
        return max(MIN_INTERVAL_S, min(self.idle_interval, until_open))

    def interval(self) -> float:
        """`interval_at` the current time: the poller's `interval_fn`."""
        return self.interval_at(self._now())

    def next_open(self, now: datetime) -> datetime:
        """The next session open strictly after `now` (UTC)."""
        cal = self.calendar
        today = cal.local_date(now)
        if cal.is_trading_day(today):
            opened = cal.session_bounds(today)[0]
            if now < opened:
                return opened
        return cal.session_bounds(cal.next_trading_day(today))[0]

    def eod_due(self, day: date) -> datetime:
        """When the end-of-day job for `day` becomes due: its close plus `eod_delay`."""
        return self.calendar.session_bounds(day)[1] + self.eod_delay

    def eod_target(self, now: datetime) -> date | None:
        """The latest trading day whose end-of-day job is due at `now`."""
        cal = self.calendar
        day = cal.local_date(now)
        if not cal.is_trading_day(day):
            day = cal.previous_trading_day(day)
        for _ in range(7):  # eod_delay is at most 6 h: one or two steps back at most
            if self.eod_due(day) <= now:
                return day
            day = cal.previous_trading_day(day)
        return None

    # ------------------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Run due jobs until `stop` is set, sleeping until the next one is due."""
        log.info("scheduler started")
        while not stop.is_set():
            await self.run_due(self._now())
            if stop.is_set():
                break
            now = self._now()
            try:
                delay = (self.next_due_at(now) - now).total_seconds()
            except Exception:  # a calendar that cannot answer must not stop the daemon
                log.exception("scheduler: cannot work out the next due time")
                delay = MAX_SLEEP_S
            delay = min(max(delay, MIN_SLEEP_S), MAX_SLEEP_S)
            if self._sleep is not None:
                await _until_either(self._sleep(delay), stop)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        log.info("scheduler stopped")

    async def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """Run every job due at `now` (eod, then retention, then checkpoint); never raises."""
        now = self._now() if now is None else now
        runs: list[JobRun] = []
        if not self._started:
            await self._start(now)
        jobs: tuple[_Job, ...] = (
            ("eod", self._eod_pending, self._eod),
            ("retention", self._retention_pending, self._retention),
            ("checkpoint", self._checkpoint_pending, self._checkpoint),
            ("holidays", self._holidays_pending, self._holidays),
        )
        for name, pending, body in jobs:
            try:
                retry = self._retry_at.get(name)
                if retry is not None and now < retry:
                    continue
                arg = pending(now)
                if arg is None:
                    continue
                runs.append(await self._run(name, now, partial(body, now, arg)))
            except Exception:  # a bug in deciding must not stop the other jobs
                log.exception("scheduler: %s could not be scheduled", name)
                self._retry_at[name] = now + self.retry_after
        return runs

    def next_due_at(self, now: datetime) -> datetime:
        """When run_due next has something to do (at most a day ahead; `now` if overdue)."""
        cal = self.calendar
        today = cal.local_date(now)
        is_open = cal.is_open(now)
        close = cal.session_bounds(today)[1]
        due: list[datetime] = []
        target = self.eod_target(now)
        if target is not None and target != self._eod_day:
            due.append(self._retry_at.get("eod", now))
        else:
            after = target if target is not None else today
            due.append(self.eod_due(cal.next_trading_day(after)))
        if is_open:
            due.append(close)  # retention and checkpoint wait for the close
        else:
            if self._retention_day != today:
                due.append(self._retry_at.get("retention", now))
            else:
                midnight = datetime.combine(today + timedelta(days=1), dt_time(0))
                due.append(midnight.replace(tzinfo=cal.tz).astimezone(UTC))
            if not self._checkpoint_unsupported:
                last = self._checkpoint_at
                at = now if last is None else last + self.checkpoint_every
                due.append(max(at, self._retry_at.get("checkpoint", at)))
        if self.refresh_holidays is not None:
            if self._holidays_day != today:
                due.append(now)
            else:
                midnight = datetime.combine(today + timedelta(days=1), dt_time(0))
                due.append(midnight.replace(tzinfo=cal.tz).astimezone(UTC))
        return max(now, min(due))

    # ------------------------------------------------------------------------------ internals

    async def _start(self, now: datetime) -> None:
        """Once: close runs a dead process left open, and load what earlier runs did."""
        self._started = True
        try:
            stale = await self.store.jobs.recover_interrupted(now)
            if stale:
                log.warning("scheduler: %d job run(s) were interrupted by a stop", stale)
            if (r := await self.store.jobs.last_run("retention")) is not None:
                self._retention_day = self.calendar.local_date(r.started_at)
            if (r := await self.store.jobs.last_run("checkpoint")) is not None:
                self._checkpoint_at = r.started_at
            if (r := await self.store.jobs.last_run("holidays")) is not None:
                self._holidays_day = self.calendar.local_date(r.started_at)
            if getattr(self.store, "path", None) is None:
                # No WAL here: say so once per database, not at every start.
                skipped = await self.store.jobs.last_run("checkpoint", "skipped")
                self._checkpoint_unsupported = skipped is not None
            target = self.eod_target(now)
            if target is not None:
                r = await self.store.jobs.last_run("eod", ("ok", "skipped"))
                if (
                    r is not None and r.started_at >= self.eod_due(target)
                ) or await self.store.daily.summarized(target):
                    self._eod_day = target
        except Exception:
            # Not knowing only means running a job again, and every job is safe to repeat.
            log.exception("scheduler: cannot read the earlier job runs")

    async def _run(
        self, name: str, now: datetime, body: Callable[[], Awaitable[_Outcome]]
    ) -> JobRun:
        t0 = time.monotonic()
        job_id: int | None = None
        try:
            job_id = await self.store.jobs.start(name, now)
        except Exception as exc:
            log.warning("scheduler: cannot record the start of %s: %s", name, exc)
        try:
            outcome, detail = await body()
        except Exception as exc:
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}".rstrip(": ")
            # A store error already says what failed and what to do (the database went away
            # mid-job, say): one line. Anything else is a bug, and its traceback is wanted.
            log.error(
                "job %s failed: %s",
                name,
                detail,
                exc_info=None if isinstance(exc, StoreError) else exc,
            )
        duration_ms = (time.monotonic() - t0) * 1000.0
        finished = now + timedelta(milliseconds=duration_ms)
        if outcome == "failed":
            self._retry_at[name] = now + self.retry_after
        else:
            self._retry_at.pop(name, None)
            if outcome == "ok":
                log.info("job %s ok in %.0f ms: %s", name, duration_ms, detail)
            else:
                log.info("job %s skipped: %s", name, detail)
        if job_id is not None:
            try:
                await self.store.jobs.finish(
                    job_id, outcome, detail, finished, duration_ms=duration_ms
                )
            except Exception as exc:
                log.warning("scheduler: cannot record the end of %s: %s", name, exc)
        return JobRun(job_id, name, now, finished, duration_ms, outcome, detail)

    # eod ---------------------------------------------------------------------------------------

    def _eod_pending(self, now: datetime) -> date | None:
        target = self.eod_target(now)
        return None if target is None or target == self._eod_day else target

    async def _eod(self, now: datetime, day: date) -> _Outcome:
        strikes, spots = await self.store.daily.summarize(day, self.calendar)
        self._eod_day = day
        if not strikes and not spots:
            return "skipped", f"{day.isoformat()}: no snapshots stored that day"
        return "ok", f"{day.isoformat()}: {strikes} strike rows, {spots} spot rows"

    # retention ---------------------------------------------------------------------------------

    def _retention_pending(self, now: datetime) -> date | None:
        if self.calendar.is_open(now):
            return None
        today = self.calendar.local_date(now)
        return None if today == self._retention_day else today

    async def _retention(self, now: datetime, today: date) -> _Outcome:
        # Whole exchange-local days: keep today and the `retention_days` days before it.
        first_kept = today - timedelta(days=self.retention_days)
        cutoff = datetime.combine(first_kept, dt_time(0), tzinfo=self.calendar.tz)
        purged = await self.store.snapshots.purge(cutoff.astimezone(UTC))
        self._retention_day = today
        return "ok", (
            f"removed {purged} snapshot(s) before {first_kept.isoformat()} "
            f"({self.retention_days} days kept; daily summaries are kept)"
        )

    # checkpoint --------------------------------------------------------------------------------

    def _checkpoint_pending(self, now: datetime) -> datetime | None:
        if self._checkpoint_unsupported or self.calendar.is_open(now):
            return None
        last = self._checkpoint_at
        return now if last is None or now - last >= self.checkpoint_every else None

    async def _checkpoint(self, now: datetime, _: datetime) -> _Outcome:
        path = getattr(self.store, "path", None)
        if path is None:
            self._checkpoint_unsupported = True
            return "skipped", f"not an SQLite database file ({self.store.url}); nothing to do"
        before = _wal_size(path)
        await self.store.checkpoint()
        self._checkpoint_at = now
        return "ok", f"WAL checkpointed: {_size(before)} -> {_size(_wal_size(path))}"

    # holidays ----------------------------------------------------------------------------------

    def _holidays_pending(self, now: datetime) -> date | None:
        if self.refresh_holidays is None:
            return None
        today = self.calendar.local_date(now)
        return None if today == self._holidays_day else today

    async def _holidays(self, now: datetime, today: date) -> _Outcome:
        from optterm.providers.base import ProviderError

        assert self.refresh_holidays is not None
        self._holidays_day = today  # once a day, whatever the outcome: NSE is not pestered
        try:
            return "ok", await self.refresh_holidays(now)
        except (ProviderError, ValueError) as exc:
            log.warning("holiday list not refreshed from NSE, keeping the known lists: %s", exc)
            return "failed", f"kept the known lists: {exc}"


async def _until_either(sleep: Awaitable[object], stop: asyncio.Event) -> None:
    """An injected sleep, cut short by `stop` like the real wait (a stop must never wait for
    a test's clock to move)."""
    napping = asyncio.ensure_future(sleep)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({napping, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (napping, stopping):
            t.cancel()
        await asyncio.gather(napping, stopping, return_exceptions=True)
    failed = None if napping.cancelled() else napping.exception()
    if failed is not None:
        raise failed


def _wal_size(path: Path) -> int | None:
    try:
        return Path(f"{path}-wal").stat().st_size
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "none"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"
