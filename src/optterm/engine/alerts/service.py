"""Alerts inside the tick: keep the rule set current, evaluate, and record firings durably.

Every firing becomes an AlertEvent plus one outbox row per channel in the same transaction as the
rules' new state (store.alerts.record_firings), before anything is sent; the dispatcher is then
woken to deliver. Rules edited from another process (the CLI, an attached terminal) are picked up on
the next tick through the store's rules version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from datetime import time as wall_time
from typing import TYPE_CHECKING

from optterm.engine.alerts.evaluate import AlertEvaluator, Firing, RuleMemory
from optterm.engine.alerts.rules import rule_channels
from optterm.engine.events import ChainUpdate
from optterm.market import MarketCalendar
from optterm.model import AlertEvent, AlertKind, AlertRule, Signal

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store

__all__ = ["AlertService"]

log = logging.getLogger("optterm.alerts")


class AlertService:
    def __init__(
        self,
        store: Store,
        calendar: MarketCalendar | None = None,
        *,
        on_recorded: Callable[[], None] | None = None,
        reload_every_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.evaluator = AlertEvaluator(calendar)
        self.settings = settings  # STRATEGY rules price on its [market] hours and rate
        self.on_recorded = on_recorded
        # Streaming ticks several times a second: asking the store whether the rules changed is
        # then done at most this often (rules edited elsewhere apply within it), off the path
        # from a packet to its alert.
        self.reload_every_s = reload_every_s
        self._clock = clock
        self._checked_at: float | None = None
        self._version: int | None = None
        self._seen: dict[tuple[str, date], datetime] = {}
        self._seen_between: dict[tuple[str, date], datetime] = {}
        # Events recorded between ticks (the stream's alert path), for the next tick to carry
        # to the front ends with its own.
        self._between: list[AlertEvent] = []
        # One evaluation and its recording at a time: a tick's and the stream's interleave at
        # their awaits otherwise, and a rule's state could be written out of order.
        self._lock = asyncio.Lock()

    async def reload_if_changed(self, now: datetime | None = None) -> bool:
        checked = self._clock()
        if (
            self._version is not None
            and self._checked_at is not None
            and checked - self._checked_at < self.reload_every_s
        ):
            return False
        self._checked_at = checked
        version = await self.store.alerts.rules_version()
        if version == self._version:
            return False
        rules = await self.store.alerts.list_rules(enabled=True)
        states = await self.store.alerts.load_states()
        memory = {
            rid: RuleMemory(
                armed=row.armed,
                last_value=row.last_value,
                last_fired_at=row.last_fired_at,
                fire_count=row.fire_count,
            )
            for rid, row in states.items()
        }
        if now is not None:
            await self._restore_pattern_memory(rules, memory, now)
        await self._load_strategies(rules)
        # A running evaluator knows more than the store (unsaved last values, pattern keys).
        memory.update(self.evaluator.memory)
        self.evaluator.load(rules, memory)
        self._version = version
        log.info("alerts: %d active rule(s)", len(self.evaluator.rules))
        return True

    async def _load_strategies(self, rules: Sequence[AlertRule]) -> None:
        """The saved strategies the STRATEGY rules watch (a removed or damaged one is left
        out: its rules do not fire, and the log says why once)."""
        names = sorted({r.strategy for r in rules if r.kind is AlertKind.STRATEGY and r.strategy})
        if not names:
            self.evaluator.strategies = None
            return
        from optterm.config import Settings
        from optterm.engine.alerts.strategyvalues import StrategyValues
        from optterm.store.errors import StoreError
        from optterm.store.strategies import UnknownStrategy
        from optterm.strategy.marketdata import rate_of

        settings = self.settings or Settings()
        values = self.evaluator.strategies or StrategyValues(
            self.evaluator.calendar, settings.market, rate_of(settings)
        )
        saved = {}
        for name in names:
            try:
                saved[name] = await self.store.strategies.get(name)
            except (UnknownStrategy, StoreError) as exc:
                log.warning("alerts: strategy %s is not watched: %s", name, exc)
        values.load(saved)
        self.evaluator.strategies = values

    async def _restore_pattern_memory(
        self, rules: Sequence[AlertRule], memory: dict[int, RuleMemory], now: datetime
    ) -> None:
        """A pattern rule fires once per signal per day: the signals it fired today, read back
        from its events, for the rules this process has not evaluated yet (a restart)."""
        fresh = [
            r.id
            for r in rules
            if r.kind is AlertKind.PATTERN_DETECTED
            and r.id is not None
            and r.id not in self.evaluator.memory
        ]
        if not fresh:
            return
        tz = self.evaluator.calendar.tz
        today = now.astimezone(tz).date()
        midnight = datetime.combine(today, wall_time(0, 0), tzinfo=tz)
        fired = await self.store.alerts.fired_signals(fresh, midnight)
        for rid, pairs in fired.items():
            mem = memory.setdefault(rid, RuleMemory())
            mem.seen_signals.update((at.astimezone(tz).date(), key) for at, key in pairs)

    async def evaluate(
        self,
        updates: Sequence[ChainUpdate],
        signals: Sequence[Signal],
        now: datetime,
        *,
        between: bool = False,
    ) -> list[Firing]:
        """The tick's firings (nothing recorded): each chain is evaluated once per new
        provider time, against the rules as loaded. `between`: chains streamed between two
        ticks (no analytics), counted apart from the ticks', so a tick still brings its
        analytics to the rules that need them for the same provider time; judged against the
        rules the last tick loaded (asking the store whether they changed is a tick's job, off
        the path from a packet to its alert)."""
        if not between:
            await self.reload_if_changed(now)
        seen_by = self._seen_between if between else self._seen
        fresh = []
        for u in updates:
            key = (u.snapshot.symbol, u.snapshot.expiry)
            seen = seen_by.get(key)
            if seen is not None and u.snapshot.provider_ts <= seen:
                continue
            seen_by[key] = u.snapshot.provider_ts
            fresh.append((u.snapshot, u.enriched))
        return self.evaluator.evaluate(fresh, signals, now, remember=not between)

    async def on_tick(
        self, updates: Sequence[ChainUpdate], signals: Sequence[Signal], now: datetime
    ) -> list[AlertEvent]:
        """Evaluate the tick; returns the recorded events (with ids), with those the stream
        recorded since the last tick first."""
        async with self._lock:
            events = await self._record(await self.evaluate(updates, signals, now))
            earlier, self._between = self._between, []
        return earlier + events

    async def on_stream(self, updates: Sequence[ChainUpdate], now: datetime) -> list[AlertEvent]:
        """The stream's alert path, between ticks: the rules judged at once on chains just
        streamed (a PRICE rule's leg moved), without waiting for the coalesced tick and its
        analytics; a rule that needs analytics (IV, PCR …) has no value here and waits for the
        tick. The events are recorded (outbox rows committed) now and carried by the next tick."""
        async with self._lock:
            events = await self._record(await self.evaluate(updates, (), now, between=True))
            self._between.extend(events)
        return events

    async def _record(self, firings: Sequence[Firing]) -> list[AlertEvent]:
        dirty = self.evaluator.memories(only_dirty=True)
        if not firings and not dirty:
            return []
        from optterm.store.alerts import RuleStateRow

        states = [
            RuleStateRow(
                rule_id=rid,
                armed=bool(m.armed),
                last_value=m.last_value,
                last_fired_at=m.last_fired_at,
                fire_count=m.fire_count,
            )
            for rid, m in dirty.items()
            if m.armed is not None
        ]
        one_shot = [f.rule.id for f in firings if not f.rule.recurring and f.rule.id is not None]
        events = await self.store.alerts.record_firings(
            [(f.event, rule_channels(f.rule)) for f in firings], states, one_shot_done=one_shot
        )
        for e in events:
            log.info("alert #%s fired: %s", e.rule_id, e.title, extra={"rule": e.rule_id})
        if one_shot:
            self._version = None  # the one-shot rules were disabled: reload next tick
        if events and self.on_recorded is not None:
            self.on_recorded()
        return events
