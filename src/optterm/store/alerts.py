"""Alert rules, their evaluation state, and fired events with their deliveries (`store.alerts`).

Rules store channel *references* (app, tag:NAME, keyring:ID), never URLs. Floats are NULL where
the model has NaN; timestamps are integer epoch microseconds UTC and come back tz-aware UTC.

`rules_version` lets a running daemon notice edits made by another process cheaply: it is
max(updated_at) + the number of rules. Every write here sets `updated_at` strictly above the
current maximum, so adding, editing, enabling or disabling a rule raises it, and deleting one
lowers the count: compare it for inequality, not order. It comes back to an earlier value only
when the rules are exactly what they were then (e.g. a rule added and deleted again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from optterm.model import (
    AlertEvent,
    AlertKind,
    AlertRule,
    Channel,
    Condition,
    Delivery,
    Feed,
    PatternKind,
    Side,
)
from optterm.store.dialect import insert_for, inserted_id
from optterm.store.nulls import nan_to_none, none_to_nan
from optterm.store.outbox import pending_rows
from optterm.store.rows import RuleStateRow, rule_activity, rule_from_row, state_from_row
from optterm.store.schema import alert_events, alert_rules, alert_state, outbox
from optterm.store.timecodec import from_us, from_us_or_none, now_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["AlertRepository", "DeliveryView", "EventView", "RuleStateRow", "UnknownRule"]


class UnknownRule(LookupError):
    """`update_rule` on an id that is not in the store."""

    def __str__(self) -> str:
        return f"no alert rule {self.args[0]}; `optterm alerts list` shows them"


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One outbox row: the event sent (or being sent) to one channel."""

    channel: str  # the reference
    channel_label: str  # redacted, for display
    status: Delivery
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class EventView:
    event: AlertEvent
    deliveries: tuple[DeliveryView, ...]


# ------------------------------------------------------------------------------------ helpers


def _hhmm(t: time | None) -> str | None:
    return None if t is None else f"{t.hour:02d}:{t.minute:02d}"


async def _stamp(conn: AsyncConnection) -> int:
    """Now, or just above the newest updated_at, whichever is later (see rules_version)."""
    newest = await conn.scalar(select(func.max(alert_rules.c.updated_at)))
    now = now_us()
    return now if newest is None or now > newest else int(newest) + 1


def _rule_row(rule: AlertRule) -> dict[str, Any]:
    return {
        "owner": rule.owner,
        "symbol": rule.symbol,
        "kind": str(AlertKind(rule.kind)),
        "condition": str(Condition(rule.condition)),
        "threshold": float(rule.threshold),
        "expiry": rule.expiry,
        "strike": nan_to_none(rule.strike),
        "side": None if rule.side is None else str(Side(rule.side)),
        "metric": rule.metric,
        "pattern": None if rule.pattern is None else str(PatternKind(rule.pattern)),
        "hysteresis": float(rule.hysteresis),
        "tolerance": float(rule.tolerance),
        "window_s": float(rule.window_s),
        "cooldown_s": float(rule.cooldown_s),
        "recurring": int(bool(rule.recurring)),
        "active_from": _hhmm(rule.active_from),
        "active_to": _hhmm(rule.active_to),
        "channels": json.dumps(list(rule.channels)),
        "channel_labels": json.dumps(list(rule.channel_labels), ensure_ascii=False),
        "enabled": int(bool(rule.enabled)),
        "note": rule.note,
        "strategy": rule.strategy,
    }


# ------------------------------------------------------------------------------------- rules


# ------------------------------------------------------------------------------------- state


def _state_values(states: Iterable[RuleStateRow], now: int) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for s in states:  # one row per rule: the last given wins
        out[int(s.rule_id)] = {
            "rule_id": int(s.rule_id),
            "armed": int(bool(s.armed)),
            "last_value": nan_to_none(s.last_value),
            "last_fired_at": (
                None if s.last_fired_at is None else to_us(s.last_fired_at, "last_fired_at")
            ),
            "fire_count": int(s.fire_count),
            "updated_at": now,
        }
    return list(out.values())


async def _upsert_states(conn: AsyncConnection, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    stmt = insert_for(conn)(alert_state)
    keep = {col: stmt.excluded[col] for col in values[0] if col != "rule_id"}
    await conn.execute(stmt.on_conflict_do_update(index_elements=["rule_id"], set_=keep), values)


# ------------------------------------------------------------------------------------ events


def _context_json(context: Sequence[tuple[str, float | str]]) -> str:
    pairs = [[str(n), v if isinstance(v, str) else nan_to_none(v)] for n, v in context]
    return json.dumps(pairs, ensure_ascii=False)


def _context(text: str) -> tuple[tuple[str, float | str], ...]:
    return tuple((str(n), v if isinstance(v, str) else none_to_nan(v)) for n, v in json.loads(text))


def _to_event(r: Row[*tuple[Any, ...]]) -> AlertEvent:
    return AlertEvent(
        id=int(r.id),
        rule_id=int(r.rule_id),
        symbol=r.symbol,
        kind=AlertKind(r.kind),
        fired_at=from_us(r.fired_at),
        value=none_to_nan(r.value),
        threshold=none_to_nan(r.threshold),
        title=r.title,
        body=r.body,
        provider=r.provider,
        feed=Feed(r.feed),
        context=_context(r.context),
    )


# ------------------------------------------------------------------------------ repository


class AlertRepository:
    """`store.alerts`: rules, their state, and the events they fired."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add_rule(self, rule: AlertRule) -> AlertRule:
        """Insert `rule` (its id must be None); returns it with its id and created_at."""
        if rule.id is not None:
            raise ValueError(f"rule already has id {rule.id}; use update_rule to change it")
        row = _rule_row(rule)
        async with self._store.write_transaction("Saving the alert rule") as conn:
            stamp = await _stamp(conn)
            created = stamp if rule.created_at is None else to_us(rule.created_at, "created_at")
            result = await conn.execute(
                insert(alert_rules).values(**row, created_at=created, updated_at=stamp)
            )
            new_id = inserted_id(result)
        return replace(rule, id=new_id, created_at=from_us(created))

    async def update_rule(self, rule: AlertRule) -> AlertRule:
        """Replace every field of stored rule `rule.id` (created_at stays). Its evaluation state is
        dropped, since the old state belongs to the old threshold; its events stay. UnknownRule if
        there is no such rule."""
        if rule.id is None:
            raise ValueError("update_rule needs a rule with an id; use add_rule for a new one")
        row = _rule_row(rule)
        async with self._store.write_transaction("Updating the alert rule") as conn:
            created = await conn.scalar(
                select(alert_rules.c.created_at).where(alert_rules.c.id == rule.id)
            )
            if created is not None:
                stamp = await _stamp(conn)
                await conn.execute(
                    update(alert_rules)
                    .where(alert_rules.c.id == rule.id)
                    .values(**row, updated_at=stamp)
                )
                await conn.execute(delete(alert_state).where(alert_state.c.rule_id == rule.id))
        if created is None:
            raise UnknownRule(rule.id)
        return replace(rule, created_at=from_us(created))

    async def set_enabled(self, rule_id: int, enabled: bool) -> bool:
        """Enable or disable a rule; False when there is no such rule. State is kept."""
        async with self._store.write_transaction("Updating the alert rule") as conn:
            stamp = await _stamp(conn)
            result = await conn.execute(
                update(alert_rules)
                .where(alert_rules.c.id == rule_id)
                .values(enabled=int(bool(enabled)), updated_at=stamp)
            )
        return result.rowcount > 0

    async def delete_rule(self, rule_id: int) -> bool:
        """Delete a rule and its state; its events and their deliveries stay as history."""
        async with self._store.write_transaction("Deleting the alert rule") as conn:
            result = await conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
            await conn.execute(delete(alert_state).where(alert_state.c.rule_id == rule_id))
        return result.rowcount > 0

    async def get_rule(self, rule_id: int) -> AlertRule | None:
        async with self._store.read_connection() as conn:
            row = (
                await conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id))
            ).one_or_none()
        return None if row is None else rule_from_row(row)

    async def list_rules(
        self,
        *,
        owner: str | None = None,
        symbol: str | None = None,
        enabled: bool | None = None,
    ) -> list[AlertRule]:
        """Rules by id; each filter is optional."""
        c = alert_rules.c
        stmt = select(alert_rules)
        if owner is not None:
            stmt = stmt.where(c.owner == owner)
        if symbol is not None:
            stmt = stmt.where(c.symbol == symbol)
        if enabled is not None:
            stmt = stmt.where(c.enabled == int(enabled))
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt.order_by(c.id))).all()
        return [rule_from_row(r) for r in rows]

    async def rules_version(self) -> int:
        """Changes whenever a rule is added, edited, enabled, disabled or deleted (module doc)."""
        c = alert_rules.c
        async with self._store.read_connection() as conn:
            newest, count = (
                await conn.execute(select(func.coalesce(func.max(c.updated_at), 0), func.count()))
            ).one()
        return int(newest) + int(count)

    async def load_states(self) -> dict[int, RuleStateRow]:
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(select(alert_state))).all()
        return {int(r.rule_id): state_from_row(r) for r in rows}

    async def load_activity(self) -> dict[int, RuleStateRow]:
        """Each rule as people are shown it (`alerts list`, the Alerts screen): its evaluation
        state, with how many times it fired and when it last did taken from its firings in the
        history, so the count is what `alerts history ID` lists, for every kind of rule, and an
        edit (which drops the evaluation state) does not make its firings disappear. A rule
        that fired but has no state row counts as armed."""
        e = alert_events.c
        fired = select(e.rule_id, func.count(), func.max(e.fired_at)).group_by(e.rule_id)
        async with self._store.read_connection() as conn:
            counts = (await conn.execute(fired)).all()
        return rule_activity(await self.load_states(), counts)

    async def save_states(self, states: Sequence[RuleStateRow]) -> None:
        """Upsert state rows in one transaction (NaN last_value is stored as NULL)."""
        values = _state_values(states, now_us())
        if not values:
            return
        async with self._store.write_transaction("Saving alert state") as conn:
            await _upsert_states(conn, values)

    async def record_firings(
        self,
        firings: Sequence[tuple[AlertEvent, Sequence[Channel]]],
        states: Sequence[RuleStateRow],
        *,
        one_shot_done: Sequence[int] = (),
    ) -> list[AlertEvent]:
        """In ONE transaction: insert every event, one PENDING outbox row per (event, channel),
        upsert `states`, and disable the rules in `one_shot_done`. Returns the events with their
        ids. Any failure (a duplicate idempotency key, a lost database) writes nothing."""
        now = now_us()
        state_values = _state_values(states, now)
        stored: list[AlertEvent] = []
        async with self._store.write_transaction("Recording alert events") as conn:
            for event, channels in firings:
                result = await conn.execute(
                    insert(alert_events).values(
                        rule_id=int(event.rule_id),
                        symbol=event.symbol,
                        kind=str(AlertKind(event.kind)),
                        fired_at=to_us(event.fired_at, "fired_at"),
                        value=nan_to_none(event.value),
                        threshold=nan_to_none(event.threshold),
                        title=event.title,
                        body=event.body,
                        provider=event.provider,
                        feed=str(Feed(event.feed)),
                        context=_context_json(event.context),
                        created_at=now,
                    )
                )
                event_id = inserted_id(result)
                rows = pending_rows(event_id, channels, now)
                if rows:
                    await conn.execute(insert(outbox), rows)
                stored.append(replace(event, id=event_id))
            await _upsert_states(conn, state_values)
            done = sorted({int(i) for i in one_shot_done})
            if done:
                stamp = await _stamp(conn)
                await conn.execute(
                    update(alert_rules)
                    .where(alert_rules.c.id.in_(done))
                    .values(enabled=0, updated_at=stamp)
                )
        return stored

    async def fired_signals(
        self, rule_ids: Sequence[int], since: datetime
    ) -> dict[int, list[tuple[datetime, str]]]:
        """For pattern rules: (fired_at, signal key) of each event they fired since `since`, by
        rule: what a restarted engine needs so it does not alert on one signal twice."""
        if not rule_ids:
            return {}
        e = alert_events.c
        stmt = (
            select(e.rule_id, e.fired_at, e.context)
            .where(e.rule_id.in_(list(rule_ids)), e.fired_at >= to_us(since, "since"))
            .order_by(e.id)
        )
        found: dict[int, list[tuple[datetime, str]]] = {}
        async with self._store.read_connection() as conn:
            for r in (await conn.execute(stmt)).all():
                key = dict(_context(r.context)).get("signal")
                if isinstance(key, str):
                    found.setdefault(int(r.rule_id), []).append((from_us(r.fired_at), key))
        return found

    async def list_events(
        self,
        *,
        rule_id: int | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        """Fired events, newest first (by fired_at, then id), each with its deliveries."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        e = alert_events.c
        stmt = select(alert_events)
        if rule_id is not None:
            stmt = stmt.where(e.rule_id == rule_id)
        if symbol is not None:
            stmt = stmt.where(e.symbol == symbol)
        if since is not None:
            stmt = stmt.where(e.fired_at >= to_us(since, "since"))
        stmt = stmt.order_by(e.fired_at.desc(), e.id.desc()).limit(limit)
        async with self._store.read_connection() as conn:
            events = (await conn.execute(stmt)).all()
            ids = [int(r.id) for r in events]
            deliveries: dict[int, list[DeliveryView]] = {i: [] for i in ids}
            if ids:
                o = outbox.c
                rows = (
                    await conn.execute(select(outbox).where(o.event_id.in_(ids)).order_by(o.id))
                ).all()
                for r in rows:
                    deliveries[int(r.event_id)].append(
                        DeliveryView(
                            channel=r.channel,
                            channel_label=r.channel_label,
                            status=Delivery(r.status),
                            attempts=int(r.attempts),
                            last_error=r.last_error,
                            sent_at=from_us_or_none(r.sent_at),
                            next_attempt_at=from_us(r.next_attempt_at),
                        )
                    )
        return [EventView(_to_event(r), tuple(deliveries[int(r.id)])) for r in events]
