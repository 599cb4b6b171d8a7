"""`store.status`: what the daemon's health check reads from the store (and `optterm status`
reports from it). Backend-neutral: test_store_postgres.py runs these on PostgreSQL too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete

from optterm.cli.status import RECENT_FAILED, gather_status
from optterm.config import Settings
from optterm.market import MarketCalendar
from optterm.model import Delivery, Feed
from optterm.store import Store
from optterm.store.schema import alert_events
from tests.test_outbox_store import add_event, add_row
from tests.test_store import EXP1, T0, make_chain

MINUTE = timedelta(minutes=1)


async def test_last_snapshot_is_the_one_written_last_not_the_newest_data(store: Store) -> None:
    assert await store.status.last_snapshot() is None
    newer = make_chain("NIFTY", ts=T0 + 10 * MINUTE)
    older = make_chain("BANKNIFTY", EXP1, ts=T0, provider="nse")
    assert await store.snapshots.write_many([newer])
    assert await store.snapshots.write(older)
    last = await store.status.last_snapshot()
    assert last is not None
    # Written last, although its data time is ten minutes older than NIFTY's.
    assert (last.symbol, last.expiry, last.provider) == ("BANKNIFTY", EXP1, "nse")
    assert last.feed is Feed(older.feed)
    assert last.provider_ts == older.provider_ts and last.fetched_at == older.fetched_at
    assert last.provider_ts.tzinfo is not None


async def test_failed_deliveries_newest_first_with_their_event(store: Store) -> None:
    assert await store.status.failed_deliveries(RECENT_FAILED) == []
    ev = await add_event(store, title="NIFTY above 24500")
    orphan = await add_event(store, title="gone")
    first = await add_row(store, ev, "tag:a", "tag:a (json://…)", due=T0,
                          status=Delivery.FAILED, attempts=4, error="HTTP 500")  # fmt: skip
    await add_row(store, ev, "tag:b", due=T0 + MINUTE, status=Delivery.SENT)
    await add_row(store, ev, "app", due=T0 + 2 * MINUTE, status=Delivery.PENDING)
    second = await add_row(store, orphan, "tag:c", due=T0 + 3 * MINUTE, status=Delivery.FAILED)
    async with store.write_transaction() as conn:
        await conn.execute(delete(alert_events).where(alert_events.c.id == orphan))

    got = await store.status.failed_deliveries(RECENT_FAILED)
    assert [f.id for f in got] == [second, first]  # only FAILED rows, newest failure first
    assert got[0].title is None and got[0].event_id == orphan  # its event was deleted
    assert got[0].error is None
    newest = got[1]
    assert newest.title == "NIFTY above 24500" and newest.channel_label == "tag:a (json://…)"
    assert (newest.attempts, newest.error, newest.failed_at) == (4, "HTTP 500", T0)
    assert [f.id for f in await store.status.failed_deliveries(1)] == [second]
    with pytest.raises(ValueError, match="limit"):
        await store.status.failed_deliveries(0)


async def test_failed_since_counts_every_failure_in_the_window(store: Store) -> None:
    ev = await add_event(store)
    for i in range(RECENT_FAILED + 3):  # more than `optterm status` lists
        await add_row(store, ev, f"tag:x{i}", due=T0 + i * MINUTE, status=Delivery.FAILED)
    await add_row(store, ev, "tag:sent", due=T0 + 30 * MINUTE, status=Delivery.SENT)
    assert await store.status.failed_since(T0) == RECENT_FAILED + 3
    assert await store.status.failed_since(T0 + 5 * MINUTE) == RECENT_FAILED - 2  # from the 6th
    assert await store.status.failed_since(T0 + 60 * MINUTE) == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.status.failed_since(T0.replace(tzinfo=None))


async def test_status_reports_every_failure_of_the_last_hour_and_lists_the_latest(
    store: Store,
) -> None:
    now = T0 + 2 * 60 * MINUTE
    ev = await add_event(store)
    await add_row(store, ev, "tag:old", due=now - 61 * MINUTE, status=Delivery.FAILED)
    for i in range(RECENT_FAILED + 2):
        await add_row(store, ev, f"tag:x{i}", due=now - (i + 1) * MINUTE, status=Delivery.FAILED)
    snap = make_chain(ts=now - MINUTE)
    await store.snapshots.write(snap)

    report = await gather_status(Settings(), store, now=now, calendar=MarketCalendar())
    doc = report.doc
    assert doc["failed_last_hour"] == RECENT_FAILED + 2  # not capped by the listing
    assert len(doc["failed_deliveries"]) == RECENT_FAILED
    assert doc["failed_deliveries"][0]["channel"] == "tag:x0"
    assert doc["failed_deliveries"][0]["failed_at"] == (now - MINUTE).isoformat()
    assert f"{RECENT_FAILED + 2} notification deliveries FAILED in the last hour" in doc["problems"]
    assert doc["last_snapshot"]["symbol"] == "NIFTY"
    assert doc["last_snapshot"]["provider_ts"] == snap.provider_ts.isoformat()
    assert doc["last_snapshot"]["feed"] == str(snap.feed)
    assert doc["outbox"][Delivery.FAILED.value] == RECENT_FAILED + 3
    assert not report.healthy


async def test_one_stale_threshold_for_the_header_and_optterm_status(store: Store) -> None:
    """`[poller] stale_after` is the feed's STALE everywhere: the TUI header and `optterm status`
    flip at the same age; a slow poll raises it to three intervals."""
    from dataclasses import replace

    from optterm.engine.events import ChainUpdate
    from optterm.engine.state import EngineState
    from optterm.widgets.status_bar import status_text

    settings = Settings.model_validate({"poller": {"interval": 15, "stale_after": 100}})
    assert settings.poller.stale_seconds == 100
    slow = Settings.model_validate({"poller": {"interval": 60, "stale_after": 100}})
    assert slow.poller.stale_seconds == 180
    assert Settings().poller.stale_seconds == 60  # the default the README states

    calendar = MarketCalendar()
    snap = replace(make_chain(ts=T0), feed=Feed.LIVE)
    await store.snapshots.write(snap)
    assert calendar.is_open(snap.fetched_at)
    for age, stale in ((99, False), (101, True)):
        now = snap.fetched_at + timedelta(seconds=age)
        doc = (await gather_status(settings, store, now=now, calendar=calendar)).doc
        stuck = [p for p in doc["problems"] if "newest snapshot was fetched" in p]
        assert bool(stuck) is stale, (age, doc["problems"])
        assert doc["feed_stale_after_s"] == 100

        state = EngineState(settings, None, now=lambda now=now: now)
        state.chains[(snap.symbol, snap.expiry)] = ChainUpdate(snap, stored=True)
        text, header_stale = status_text(state, snap.symbol)
        assert header_stale is stale, (age, text.plain)
        assert ("STALE" in text.plain) is stale
