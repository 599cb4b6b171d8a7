"""Stored rows as domain objects, for the repositories (SQLAlchemy) and the plain reader
(store/plainread.py, the standard library's sqlite3) alike.

No SQLAlchemy here: the read-only commands import this without it. A row is anything with the
table's column names as attributes (a SQLAlchemy Row, or the plain reader's rows), its Date
columns already dates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from optterm.model import (
    AlertKind,
    AlertRule,
    Condition,
    Direction,
    Feed,
    PatternKind,
    Side,
    Signal,
    Strength,
)
from optterm.store.nulls import none_to_nan
from optterm.store.timecodec import from_us, from_us_or_none

__all__ = ["RuleStateRow", "rule_activity", "rule_from_row", "signal_from_row", "state_from_row"]


@dataclass(frozen=True, slots=True)
class RuleStateRow:
    """Where a rule's evaluation stands, kept so a restart neither re-fires nor forgets."""

    rule_id: int
    armed: bool
    last_value: float | None
    last_fired_at: datetime | None
    fire_count: int


def _time(text: str | None) -> time | None:
    if not text:
        return None
    h, m = text.split(":")
    return time(int(h), int(m))


def rule_from_row(r: Any) -> AlertRule:
    """An `alert_rules` row."""
    return AlertRule(
        id=int(r.id),
        owner=r.owner,
        symbol=r.symbol,
        kind=AlertKind(r.kind),
        condition=Condition(r.condition),
        threshold=float(r.threshold),
        expiry=r.expiry,
        strike=None if r.strike is None else float(r.strike),
        side=None if r.side is None else Side(r.side),
        metric=r.metric,
        pattern=None if r.pattern is None else PatternKind(r.pattern),
        hysteresis=float(r.hysteresis),
        tolerance=float(r.tolerance),
        window_s=float(r.window_s),
        cooldown_s=float(r.cooldown_s),
        recurring=bool(r.recurring),
        active_from=_time(r.active_from),
        active_to=_time(r.active_to),
        channels=tuple(json.loads(r.channels)),
        channel_labels=tuple(json.loads(r.channel_labels)),
        enabled=bool(r.enabled),
        note=r.note,
        created_at=from_us(r.created_at),
        strategy=getattr(r, "strategy", None),
    )


def state_from_row(r: Any) -> RuleStateRow:
    """An `alert_state` row."""
    return RuleStateRow(
        rule_id=int(r.rule_id),
        armed=bool(r.armed),
        last_value=r.last_value,
        last_fired_at=from_us_or_none(r.last_fired_at),
        fire_count=int(r.fire_count),
    )


def rule_activity(
    states: Mapping[int, RuleStateRow], fired: Iterable[tuple[Any, Any, Any]]
) -> dict[int, RuleStateRow]:
    """`store.alerts.load_activity`'s answer from the state rows and, per rule that fired,
    (rule_id, number of firings, newest fired_at): the count and the last firing come from the
    history, and a rule that fired but has no state row counts as armed."""
    out = {k: replace(st, fire_count=0, last_fired_at=None) for k, st in states.items()}
    for rule_id, count, last in fired:
        st = out.get(int(rule_id)) or RuleStateRow(int(rule_id), True, None, None, 0)
        out[int(rule_id)] = replace(st, fire_count=int(count), last_fired_at=from_us(last))
    return out


def signal_from_row(r: Any) -> Signal:
    """A `signals` row."""
    return Signal(
        key=r.key,
        kind=PatternKind(r.kind),
        symbol=r.symbol,
        expiry=r.expiry,
        direction=Direction(r.direction),
        strikes=tuple(float(k) for k in json.loads(r.strikes)),
        confidence=int(r.confidence),
        strength=Strength(r.strength),
        evidence=tuple((str(n), none_to_nan(v)) for n, v in json.loads(r.evidence)),
        summary=r.summary,
        first_seen=from_us(r.first_seen),
        last_seen=from_us(r.last_seen),
        expires_at=from_us(r.expires_at),
        updates=int(r.updates),
        provider=r.provider,
        feed=Feed(r.feed),
    )
