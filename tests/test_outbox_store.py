"""The notification outbox in the store: due rows, atomic claims, state changes, crash recovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import exc, insert, select

from optterm.model import AlertKind, Delivery
from optterm.store import Store, outbox
from optterm.store.schema import alert_events
from optterm.store.schema import outbox as outbox_table
from optterm.store.timecodec import to_us

T0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


# ------------------------------------------------------------------ helpers (also test_notify)


async def add_event(
    store: Store,
    title: str = "NIFTY above 24500",
    body: str = "NIFTY spot 24512.3 crossed 24500",
    kind: AlertKind = AlertKind.PRICE,
    at: datetime = T0,
) -> int:
    async with store.write_transaction() as conn:
        result = await conn.execute(
            insert(alert_events).values(
                rule_id=1,
                symbol="NIFTY",
                kind=kind.value,
                fired_at=to_us(at),
                value=24512.3,
                threshold=24500.0,
                title=title,
                body=body,
                provider="simulator",
                feed="SIMULATED",
                context="[]",
                created_at=to_us(at),
            )
        )
        return int(result.inserted_primary_key[0])


async def add_row(
    store: Store,
    event_id: int,
    channel: str,
    label: str | None = None,
    *,
    due: datetime = T0,
    status: Delivery = Delivery.PENDING,
    attempts: int = 0,
    error: str | None = None,
) -> int:
    async with store.write_transaction() as conn:
        result = await conn.execute(
            insert(outbox_table).values(
                event_id=event_id,
                channel=channel,
                channel_label=label or channel,
                idempotency_key=outbox.idempotency_key(event_id, channel),
                status=status.value,
                attempts=attempts,
                last_error=error,
                next_attempt_at=to_us(due),
                created_at=to_us(due),
                updated_at=to_us(due),
            )
        )
        return int(result.inserted_primary_key[0])


async def row(store: Store, outbox_id: int) -> outbox.OutboxItem:
    item = await store.outbox.item(outbox_id)
    assert item is not None
    return item


async def sent_at(store: Store, outbox_id: int) -> int | None:
    async with store.read_connection() as conn:
        return await conn.scalar(
            select(outbox_table.c.sent_at).where(outbox_table.c.id == outbox_id)
        )


# ------------------------------------------------------------------------------------- tests


async def test_due_is_pending_and_due_oldest_first_with_the_event_text(store: Store) -> None:
    ev = await add_event(store, kind=AlertKind.STALE_FEED, title="Feed stale", body="no data 60 s")
    late = await add_row(store, ev, "tag:b", due=T0 + timedelta(seconds=5))
    first = await add_row(store, ev, "tag:a", "tag:a (json://127.0.0.1/…)", due=T0)
    await add_row(store, ev, "tag:c", status=Delivery.SENT)
    await add_row(store, ev, "tag:d", status=Delivery.SENDING)
    await add_row(store, ev, "tag:e", due=T0 + timedelta(seconds=60))

    items = await store.outbox.due(T0 + timedelta(seconds=5))
    assert [i.id for i in items] == [first, late]
    a = items[0]
    assert (a.event_id, a.channel, a.channel_label) == (ev, "tag:a", "tag:a (json://127.0.0.1/…)")
    assert (a.title, a.body, a.kind, a.symbol) == (
        "Feed stale",
        "no data 60 s",
        "STALE_FEED",
        "NIFTY",
    )
    assert a.notify_type == "failure" and a.status is Delivery.PENDING and a.attempts == 0
    assert a.next_attempt_at == T0 and a.idempotency_key == outbox.idempotency_key(ev, "tag:a")
    assert [i.id for i in await store.outbox.due(T0 + timedelta(seconds=5), limit=1)] == [first]
    assert await store.outbox.due(T0 - timedelta(microseconds=1)) == []
    # Store delegates reach the same functions.
    assert [i.id for i in await store.outbox.due(T0)] == [first]


async def test_price_alerts_are_warnings_and_an_orphan_row_still_has_text(store: Store) -> None:
    ev = await add_event(store)
    await add_row(store, ev, "app")
    await add_row(store, 999, "tag:a")  # its event is gone
    items = await store.outbox.due(T0)
    assert items[0].notify_type == "warning" and items[0].title == "NIFTY above 24500"
    assert items[1].kind is None and "999" in items[1].title and items[1].body


async def test_claim_is_atomic_and_counts_the_attempt(store: Store) -> None:
    ev = await add_event(store)
    rid = await add_row(store, ev, "tag:a")
    results = await asyncio.gather(*(store.outbox.claim(rid, T0) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    item = await row(store, rid)
    assert item.status is Delivery.SENDING and item.attempts == 1
    assert await store.outbox.due(T0) == []  # a claimed row is not due
    assert not await store.outbox.claim(rid, T0)


async def test_sent_retry_and_failed_transitions(store: Store) -> None:
    ev = await add_event(store)
    a, b, c = [await add_row(store, ev, ch) for ch in ("tag:a", "tag:b", "tag:c")]
    assert not await store.outbox.mark_sent(a, T0)  # only a SENDING row can be sent
    for rid in (a, b, c):
        assert await store.outbox.claim(rid, T0)

    assert await store.outbox.mark_sent(a, T0 + timedelta(seconds=1))
    assert (await row(store, a)).status is Delivery.SENT
    assert await sent_at(store, a) == to_us(T0 + timedelta(seconds=1))

    retry_at = T0 + timedelta(seconds=5)
    assert await store.outbox.mark_retry(b, retry_at, "tag:b: HTTP 500")
    item = await row(store, b)
    assert (item.status, item.attempts, item.next_attempt_at) == (Delivery.PENDING, 1, retry_at)
    assert item.last_error == "tag:b: HTTP 500"
    assert [i.id for i in await store.outbox.due(retry_at)] == [b]
    assert await store.outbox.claim(b, retry_at)
    assert (await row(store, b)).attempts == 2

    assert await store.outbox.mark_failed(c, "gave up\nafter 4")
    item = await row(store, c)
    assert item.status is Delivery.FAILED and item.last_error == "gave up after 4"
    assert not await store.outbox.mark_failed(c, "again")  # final states stay final
    assert not await store.outbox.mark_failed(a, "after sent")
    assert (await row(store, a)).status is Delivery.SENT


async def test_recover_interrupted_fails_sending_rows_without_resending(store: Store) -> None:
    ev = await add_event(store)
    stuck = await add_row(store, ev, "tag:a", status=Delivery.SENDING, attempts=1)
    pending = await add_row(store, ev, "tag:b")
    done = await add_row(store, ev, "tag:c", status=Delivery.SENT, attempts=1)
    assert await store.outbox.recover_interrupted() == 1
    item = await row(store, stuck)
    assert item.status is Delivery.FAILED and item.last_error == outbox.INTERRUPTED
    assert "not re-sent" in item.last_error and "delivery unknown" in item.last_error
    assert (await row(store, pending)).status is Delivery.PENDING
    assert (await row(store, done)).status is Delivery.SENT
    assert [i.id for i in await store.outbox.due(T0)] == [pending]
    assert await store.outbox.recover_interrupted() == 0


async def test_backlog_and_next_due(store: Store) -> None:
    assert await store.outbox.backlog() == {"PENDING": 0, "SENDING": 0, "SENT": 0, "FAILED": 0}
    assert await store.outbox.next_due_at() is None
    ev = await add_event(store)
    await add_row(store, ev, "tag:a", due=T0 + timedelta(seconds=15))
    await add_row(store, ev, "tag:b", due=T0 + timedelta(seconds=1))
    await add_row(store, ev, "tag:c", due=T0 - timedelta(hours=1), status=Delivery.FAILED)
    await add_row(store, ev, "tag:d", status=Delivery.SENT)
    assert await store.outbox.backlog() == {"PENDING": 2, "SENDING": 0, "SENT": 1, "FAILED": 1}
    assert await store.outbox.next_due_at() == T0 + timedelta(seconds=1)


async def test_idempotency_key_is_unique_per_event_and_channel(store: Store) -> None:
    ev = await add_event(store)
    other = await add_event(store)
    await add_row(store, ev, "tag:a")
    await add_row(store, ev, "tag:b")
    await add_row(store, other, "tag:a")
    with pytest.raises(exc.IntegrityError):
        await add_row(store, ev, "tag:a")
    assert outbox.idempotency_key(ev, "tag:a") == outbox.idempotency_key(ev, "tag:a")
    assert len({outbox.idempotency_key(e, c) for e in (1, 2, 12) for c in ("a", "2a")}) == 6
    assert (await store.outbox.backlog())["PENDING"] == 3


async def test_times_must_be_aware(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.outbox.due(datetime(2026, 11, 24, 9, 30))
