"""The notification outbox: one row per (alert event, channel), each delivered at most once
(`store.outbox`).

Rows are inserted PENDING in the alert event's own transaction (store/alerts.py) before anything
is sent; the dispatcher (engine/notify/dispatcher.py) then moves each row through

    PENDING ──claim──▶ SENDING ──mark_sent──▶ SENT
       ▲                  │ ──mark_failed─▶ FAILED
       └───mark_retry─────┘

`claim` is one conditional UPDATE, so two dispatchers never send the same row. A row still
SENDING when the dispatcher starts was being sent when the process died: whether it arrived is
unknown, and sending it again could deliver it twice, so `recover_interrupted` marks it FAILED
instead (a missed duplicate is better than a duplicate trade alert; the row says why).

Timestamps are integer epoch microseconds UTC, as everywhere in the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import ColumnElement, Row, func, select, update

from optterm.model import AlertKind, Channel, Delivery
from optterm.store.schema import alert_events, outbox
from optterm.store.timecodec import from_us, now_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "INTERRUPTED",
    "OutboxItem",
    "OutboxRepository",
    "idempotency_key",
    "notify_type_for",
    "pending_rows",
]

INTERRUPTED: Final = (
    "interrupted while sending; not re-sent, to avoid a duplicate (delivery unknown)"
)
# Apprise notify types (apprise.NotifyType values): info, success, warning, failure.
_FAILURE_KINDS: Final = frozenset({AlertKind.STALE_FEED})
_MAX_ERROR: Final = 500


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbox row with what is sent: the event's title and body."""

    id: int
    event_id: int
    channel: str  # a reference ("app", "tag:NAME", "keyring:ID"), never a URL
    channel_label: str  # redacted, for display and logs
    status: Delivery
    attempts: int  # attempts made so far (claim counts one)
    next_attempt_at: datetime
    idempotency_key: str
    title: str
    body: str
    notify_type: str = "warning"  # an Apprise NotifyType value
    kind: AlertKind | None = None  # None when the event row is gone
    symbol: str = ""
    last_error: str | None = None


def idempotency_key(event_id: int, channel: str) -> str:
    """The outbox key of (event, channel): 32 hex characters, stable across processes (the
    event id is an integer, so the first colon always ends it)."""
    return hashlib.sha256(f"{event_id}:{channel}".encode()).hexdigest()[:32]


def pending_rows(event_id: int, channels: Sequence[Channel], now: int) -> list[dict[str, Any]]:
    """The outbox rows of a new event: one PENDING row per channel, each with its idempotency key
    (`now` in epoch microseconds). Alert rules and scan entries both queue through this."""
    return [
        {
            "event_id": event_id,
            "channel": ch.ref,
            "channel_label": ch.label,
            "idempotency_key": idempotency_key(event_id, ch.ref),
            "status": str(Delivery.PENDING),
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "sent_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for ch in channels
    ]


def notify_type_for(kind: AlertKind | str | None) -> str:
    """The Apprise notify type of an event kind: "failure" for a stale feed, else "warning"."""
    return "failure" if kind in _FAILURE_KINDS else "warning"


def _clip(error: str) -> str:
    error = " ".join(str(error).split())
    return error if len(error) <= _MAX_ERROR else error[: _MAX_ERROR - 1] + "…"


def _kind(raw: str | None) -> AlertKind | None:
    if raw is None:
        return None
    try:
        return AlertKind(raw)
    except ValueError:
        return None


def _item(r: Row[*tuple[Any, ...]]) -> OutboxItem:
    kind = _kind(r.kind)
    if r.title is None:  # the event was deleted: send what is left rather than nothing
        title = f"optterm alert (event {r.event_id})"
        body = "The alert's event is no longer in the history."
    else:
        title, body = r.title, r.body
    return OutboxItem(
        id=r.id,
        event_id=r.event_id,
        channel=r.channel,
        channel_label=r.channel_label,
        status=Delivery(r.status),
        attempts=r.attempts,
        next_attempt_at=from_us(r.next_attempt_at),
        idempotency_key=r.idempotency_key,
        title=title,
        body=body,
        notify_type=notify_type_for(kind),
        kind=kind,
        symbol=r.symbol or "",
        last_error=r.last_error,
    )


_o = outbox.c
_e = alert_events.c
_ITEM = select(
    _o.id,
    _o.event_id,
    _o.channel,
    _o.channel_label,
    _o.status,
    _o.attempts,
    _o.next_attempt_at,
    _o.idempotency_key,
    _o.last_error,
    _e.title,
    _e.body,
    _e.kind,
    _e.symbol,
).select_from(outbox.outerjoin(alert_events, _e.id == _o.event_id))


class OutboxRepository:
    """`store.outbox`: the deliveries waiting, being sent, sent and failed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """PENDING rows whose next attempt is at or before `now`, oldest first."""
        stmt = (
            _ITEM.where(
                _o.status == Delivery.PENDING.value, _o.next_attempt_at <= to_us(now, "now")
            )
            .order_by(_o.next_attempt_at, _o.id)
            .limit(limit)
        )
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_item(r) for r in rows]

    async def item(self, outbox_id: int) -> OutboxItem | None:
        """One row by id (any status), for tests and `alerts history`."""
        async with self._store.read_connection() as conn:
            row = (await conn.execute(_ITEM.where(_o.id == outbox_id))).one_or_none()
        return None if row is None else _item(row)

    async def _update(
        self, action: str, outbox_id: int, where: ColumnElement[bool], **values: Any
    ) -> bool:
        stmt = update(outbox).where(_o.id == outbox_id, where).values(**values)
        async with self._store.write_transaction(action) as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def claim(self, outbox_id: int, now: datetime) -> bool:
        """PENDING → SENDING and attempts + 1, atomically; False if the row is no longer
        PENDING (another dispatcher claimed it, or it was delivered or failed meanwhile)."""
        return await self._update(
            f"Claiming outbox row {outbox_id}",
            outbox_id,
            _o.status == Delivery.PENDING.value,
            status=Delivery.SENDING.value,
            attempts=_o.attempts + 1,
            updated_at=to_us(now, "now"),
        )

    async def mark_sent(self, outbox_id: int, at: datetime) -> bool:
        """SENDING → SENT at `at`; False if the row was not SENDING."""
        us = to_us(at, "at")
        return await self._update(
            f"Marking outbox row {outbox_id} sent",
            outbox_id,
            _o.status == Delivery.SENDING.value,
            status=Delivery.SENT.value,
            sent_at=us,
            updated_at=us,
        )

    async def mark_retry(self, outbox_id: int, next_at: datetime, error: str) -> bool:
        """SENDING → PENDING, due again at `next_at`, with the attempt's error."""
        us = to_us(next_at, "next_at")
        return await self._update(
            f"Rescheduling outbox row {outbox_id}",
            outbox_id,
            _o.status == Delivery.SENDING.value,
            status=Delivery.PENDING.value,
            next_attempt_at=us,
            last_error=_clip(error),
            updated_at=now_us(),
        )

    async def mark_failed(self, outbox_id: int, error: str) -> bool:
        """PENDING or SENDING → FAILED for good, with the reason; False if already
        SENT/FAILED."""
        return await self._update(
            f"Marking outbox row {outbox_id} failed",
            outbox_id,
            _o.status.in_((Delivery.PENDING.value, Delivery.SENDING.value)),
            status=Delivery.FAILED.value,
            last_error=_clip(error),
            updated_at=now_us(),
        )

    async def recover_interrupted(self) -> int:
        """Rows left SENDING by a crash become FAILED (never re-sent); returns how many.

        Call it once when the only dispatcher on the database starts, before it sends
        anything."""
        stmt = (
            update(outbox)
            .where(_o.status == Delivery.SENDING.value)
            .values(status=Delivery.FAILED.value, last_error=INTERRUPTED, updated_at=now_us())
        )
        async with self._store.write_transaction("Recovering interrupted deliveries") as conn:
            return (await conn.execute(stmt)).rowcount or 0

    async def backlog(self) -> dict[str, int]:
        """Rows per status, every status present (0 when none)."""
        out = {d.value: 0 for d in Delivery}
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(select(_o.status, func.count()).group_by(_o.status))).all()
        for status, count in rows:
            out[status] = int(count)
        return out

    async def next_due_at(self) -> datetime | None:
        """When the earliest PENDING row is due; None when nothing is pending."""
        async with self._store.read_connection() as conn:
            us = await conn.scalar(
                select(func.min(_o.next_attempt_at)).where(_o.status == Delivery.PENDING.value)
            )
        return None if us is None else from_us(int(us))
