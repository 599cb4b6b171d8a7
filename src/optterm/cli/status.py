"""`optterm status`: is the daemon healthy? For people and for monitoring scripts.

Unhealthy (exit 1) when any of these holds (the `optterm status` help says the same):

* no live lease: no `optterm serve` holds the store's poller lease (none ever did, it was
  released, or its holder died);
* the lease's heartbeat is older than 3 of the daemon's own poll intervals (its `--interval`, as
  it reports with each heartbeat; at least 3 heartbeats and 10 s): the holder is hung;
* the daemon's last tick ended longer ago than that plus a poll timeout: its poll loop is stuck;
* the daemon's latest write to one of its tables (snapshots, metrics, signals) failed;
* during market hours, the newest stored snapshot was fetched more than `[poller] stale_after`
  seconds ago (never less than 3 poll intervals; the threshold the TUI's STALE uses): the feed is
  stuck (outside market hours nothing new is published, so this is not checked);
* a notification delivery FAILED in the last hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from optterm.present.time import ago_text

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.model import ProviderHealth
    from optterm.store import Store
    from optterm.store.plainread import PlainReader
    from optterm.store.reports import DaemonReport, FailedDelivery, LastSnapshot, LeaseInfo

__all__ = ["StatusReport", "gather_status", "plain_status", "render_text"]

STALE_INTERVALS: Final = 3
STALE_FLOOR_S: Final = 10.0
FAILED_WINDOW: Final = timedelta(hours=1)
RECENT_FAILED: Final = 10


@dataclass
class StatusReport:
    doc: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return bool(self.doc["healthy"])

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1


def stale_after(interval: float, heartbeat: float = 0.0) -> float:
    """Seconds after which the lease heartbeat counts as stale (the holder looks hung)."""
    return max(STALE_INTERVALS * interval, STALE_INTERVALS * heartbeat, STALE_FLOOR_S)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat()


def _age(now: datetime, ts: datetime | None) -> float | None:
    return None if ts is None else round((now - ts).total_seconds(), 3)


@dataclass
class _Reads:
    """What `optterm status` reads from the store, read before anything is judged."""

    url: str
    info: LeaseInfo | None
    live: bool
    newest: LastSnapshot | None
    health: list[ProviderHealth]
    backlog: dict[str, int]
    failed: list[FailedDelivery]
    recent: int


def _stale(settings: Settings, info: LeaseInfo | None) -> tuple[DaemonReport | None, float, float]:
    """(the daemon's report, its poll interval, the heartbeat's stale age): the daemon's own
    figures when it reports them, the config's for an older daemon."""
    report = None if info is None or info.released_at is not None else info.report
    interval = report.interval_s if report else float(settings.poller.interval)
    return report, interval, stale_after(interval, report.heartbeat_s if report else 0.0)


async def gather_status(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    calendar: MarketCalendar | None = None,
) -> StatusReport:
    """Everything `optterm status` shows, and the verdict."""
    from optterm.store.lease import current_lease, lease_is_live

    now = now or datetime.now(UTC)
    info = await current_lease(store)
    _report, _interval, stale = _stale(settings, info)
    reads = _Reads(
        url=store.url,
        info=info,
        live=await lease_is_live(store, info, now=now, stale_after=stale),
        newest=await store.status.last_snapshot(),
        health=await store.health.load(),
        backlog=await store.outbox.backlog(),
        failed=await store.status.failed_deliveries(RECENT_FAILED),
        recent=await store.status.failed_since(now - FAILED_WINDOW),
    )
    return _judge(settings, reads, now, calendar)


def plain_status(
    settings: Settings,
    reader: PlainReader,
    *,
    now: datetime | None = None,
    calendar: MarketCalendar | None = None,
) -> StatusReport:
    """gather_status on the plain reader (store/plainread.py): the same reads, without
    SQLAlchemy or an event loop."""
    now = now or datetime.now(UTC)
    info = reader.current_lease()
    _report, _interval, stale = _stale(settings, info)
    reads = _Reads(
        url=reader.url,
        info=info,
        live=reader.lease_is_live(info, now=now, stale_after=stale),
        newest=reader.last_snapshot(),
        health=reader.provider_health(),
        backlog=reader.outbox_backlog(),
        failed=reader.failed_deliveries(RECENT_FAILED),
        recent=reader.failed_since(now - FAILED_WINDOW),
    )
    return _judge(settings, reads, now, calendar)


def _judge(
    settings: Settings, reads: _Reads, now: datetime, calendar: MarketCalendar | None
) -> StatusReport:
    from optterm.providers.factory import market_calendar

    # Open while any watched segment's session is (an MCX evening counts).
    watched = [w.symbol for w in settings.poller.watch]
    calendar = (calendar or market_calendar(settings)).for_symbols(watched)
    problems: list[str] = []
    info, live = reads.info, reads.live
    report, interval, stale = _stale(settings, info)
    lease: dict[str, Any] | None = None
    if info is not None:
        lease = {
            "name": info.name,
            "lease_no": info.lease_no,
            "holder": info.holder,
            "host": info.host,
            "pid": info.pid,
            "since": _iso(info.since),
            "heartbeat_at": _iso(info.heartbeat_at),
            "heartbeat_age_s": _age(now, info.heartbeat_at),
            "released_at": _iso(info.released_at),
            "live": live,
        }
    if not live:
        if info is None:
            problems.append("no optterm serve has ever held the poller lease of this store")
        elif info.released_at is not None:
            problems.append(f"no optterm serve is running (lease #{info.lease_no} released)")
        else:
            problems.append(
                f"no optterm serve is running (the holder of lease #{info.lease_no}, "
                f"{info.holder}, is gone)"
            )
    elif info is not None and (now - info.heartbeat_at).total_seconds() > stale:
        problems.append(
            f"the lease heartbeat is {(now - info.heartbeat_at).total_seconds():.0f} s old "
            f"(more than {stale:g} s): the daemon {info.holder} looks hung"
        )
    daemon = None if report is None else _daemon_doc(report, now)
    if live and report is not None:
        problems.extend(_daemon_problems(report, now, stale + float(settings.poller.timeout)))

    market_open = calendar.is_open(now)
    newest = reads.newest
    last: dict[str, Any] | None = None
    if newest is not None:
        last = {
            "symbol": newest.symbol,
            "expiry": newest.expiry.isoformat(),
            "provider": newest.provider,
            "feed": str(newest.feed),
            "provider_ts": _iso(newest.provider_ts),
            "fetched_at": _iso(newest.fetched_at),
            "age_s": _age(now, newest.fetched_at),
        }
    stuck = settings.poller.stale_seconds  # the feed's STALE, as the TUI shows it
    if market_open:
        if last is None:
            problems.append("the market is open and no snapshot has been stored yet")
        elif last["age_s"] > stuck:
            problems.append(
                f"the market is open and the newest snapshot was fetched {last['age_s']:.0f} s "
                f"ago (more than {stuck:g} s, [poller] stale_after)"
            )

    health = reads.health
    providers = [
        {
            "provider": h.provider,
            "day": h.day.isoformat(),
            "breaker": h.breaker,
            "requests": h.requests,
            "successes": h.successes,
            "success_rate": None if not h.requests else round(h.successes / h.requests, 4),
            "latency_ms_last": h.latency_ms_last,
            "last_error": h.last_error,
            "last_error_at": _iso(h.last_error_at),
        }
        for h in health
    ]

    backlog = reads.backlog
    failed = [
        {
            "id": f.id,
            "event_id": f.event_id,
            "title": f.title,
            "channel": f.channel_label,
            "attempts": f.attempts,
            "error": f.error,
            "failed_at": _iso(f.failed_at),
        }
        for f in reads.failed
    ]
    recent = reads.recent
    if recent:
        noun = "delivery" if recent == 1 else "deliveries"
        problems.append(f"{recent} notification {noun} FAILED in the last hour")

    doc = {
        "healthy": not problems,
        "problems": problems,
        "now": _iso(now),
        "store": reads.url,
        "poll_interval_s": interval,
        "stale_after_s": stale,  # the lease heartbeat's
        "feed_stale_after_s": stuck,
        "market_open": market_open,
        "lease": lease,
        "daemon": daemon,
        "last_snapshot": last,
        "providers": providers,
        "outbox": backlog,
        "failed_deliveries": failed,
        "failed_last_hour": recent,
    }
    return StatusReport(doc)


def _daemon_doc(report: DaemonReport, now: datetime) -> dict[str, Any]:
    return {
        "interval_s": report.interval_s,
        "heartbeat_s": report.heartbeat_s,
        "ticks": report.ticks,
        "last_tick_at": _iso(report.last_tick_at),
        "last_tick_age_s": _age(now, report.last_tick_at),
        "tables": {
            name: {
                "ok_at": _iso(w.ok_at),
                "failed_at": _iso(w.failed_at),
                "errors": w.errors,
                "last_error": w.last_error,
                "failing": w.failing,
            }
            for name, w in report.tables.items()
        },
    }


def _daemon_problems(report: DaemonReport, now: datetime, tick_lag: float) -> list[str]:
    """What the daemon's own report says is wrong: a stuck poll loop, a table it cannot write."""
    out = []
    if report.last_tick_at is not None:
        age = (now - report.last_tick_at).total_seconds()
        if age > tick_lag:
            out.append(
                f"the daemon's last tick ended {age:.0f} s ago (it polls every "
                f"{report.interval_s:g} s): its poll loop looks stuck"
            )
    for name, w in report.tables.items():
        if w.failing:
            out.append(
                f"the daemon cannot write {name}: its latest write failed ({w.errors} failed "
                f"since it started; last error: {w.last_error})"
            )
    return out


def render_text(report: StatusReport, tz: Any) -> list[str]:
    """The report as plain lines (no colour: it is read by people and by grep alike)."""
    d = report.doc

    def local(iso: str | None) -> str:
        if iso is None:
            return "?"
        ts = datetime.fromisoformat(iso).astimezone(tz)
        return f"{ts:%d-%b %H:%M:%S} {ts.tzname()}"

    lines = [f"store      {d['store']}"]
    lease = d["lease"]
    if lease is None:
        lines.append("lease      none: no optterm serve has run on this store")
    else:
        who = f"pid {lease['pid']} on {lease['host']}"
        since = local(lease["since"])
        beat = ago_text(lease["heartbeat_age_s"])
        if lease["live"]:
            text = f"live: held by {who} since {since}; heartbeat {beat}"
        elif lease["released_at"]:
            text = f"released {local(lease['released_at'])}: last held by {who} since {since}"
        else:
            text = f"NOT live: its holder {who} (since {since}) is gone; last heartbeat {beat}"
        lines.append(f"lease      #{lease['lease_no']} {text}")
    daemon = d.get("daemon")
    if daemon is not None:
        writes = ", ".join(
            f"{name} {'FAILING' if w['failing'] else 'ok'}"
            + (f" ({w['errors']} errors)" if w["errors"] else "")
            for name, w in daemon["tables"].items()
        )
        tick = (
            "no tick yet"
            if daemon["last_tick_at"] is None
            else f"{daemon['ticks']} ticks, last {ago_text(daemon['last_tick_age_s'])}"
        )
        lines.append(
            f"daemon     polls every {daemon['interval_s']:g} s; {tick}"
            + (f"; writes: {writes}" if writes else "")
        )
    last = d["last_snapshot"]
    if last is None:
        lines.append("last tick  no snapshot stored yet")
    else:
        lines.append(
            f"last tick  {last['symbol']} {last['expiry']} from {last['provider']} "
            f"({last['feed']}), fetched {ago_text(last['age_s'])}; data time "
            f"{local(last['provider_ts'])}"
        )
    lines.append(f"market     {'open' if d['market_open'] else 'closed'}")
    if not d["providers"]:
        lines.append("providers  no health recorded yet")
    for i, p in enumerate(d["providers"]):
        rate = "" if p["success_rate"] is None else f", {p['success_rate']:.0%} ok"
        err = f"; last error: {p['last_error']}" if p["last_error"] else ""
        head = "providers" if i == 0 else ""
        lines.append(
            f"{head:<10} {p['provider']}: breaker {p['breaker']}, {p['requests']} requests"
            f"{rate} ({p['day']}){err}"
        )
    lines.append("outbox     " + ", ".join(f"{k} {v}" for k, v in d["outbox"].items()))
    for f in d["failed_deliveries"]:
        lines.append(
            f"  FAILED   {local(f['failed_at'])} {f['channel']}: {f['title'] or '(event gone)'}"
            f" — {f['error'] or 'no error recorded'}"
        )
    if report.healthy:
        lines.append("status     healthy")
    else:
        lines.append("status     UNHEALTHY: " + "; ".join(d["problems"]))
    return lines
