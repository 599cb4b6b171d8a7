"""Provider health rows: one per provider and exchange-local day, upserted by the poller
(`store.health`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select

from optterm.model import ProviderHealth
from optterm.store.dialect import upsert_for
from optterm.store.reports import health_from_row
from optterm.store.schema import provider_health
from optterm.store.timecodec import now_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["HealthRepository"]

_KEY = ("day", "provider")


class HealthRepository:
    """`store.health`: each provider's request counts, breaker and last error, per day."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(self, rows: Sequence[ProviderHealth]) -> None:
        """Upsert `rows` on (day, provider) in one transaction."""
        if not rows:
            return
        now = now_us()
        values = [
            {
                "day": r.day,
                "provider": r.provider,
                "requests": r.requests,
                "successes": r.successes,
                "failures": json.dumps(r.failures, sort_keys=True),
                "latency_ms_sum": r.latency_ms_sum,
                "latency_ms_last": r.latency_ms_last,
                "breaker": r.breaker,
                "last_error": r.last_error,
                "last_error_at": (
                    None if r.last_error_at is None else to_us(r.last_error_at, "last_error_at")
                ),
                "updated_at": now,
            }
            for r in rows
        ]
        async with self._store.write_transaction("Recording provider health") as conn:
            await conn.execute(upsert_for(conn, provider_health, _KEY, list(values[0])), values)

    async def load(self, day: date | None = None) -> list[ProviderHealth]:
        """Rows for `day`, or for the most recent day that has any."""
        t = provider_health.c
        async with self._store.read_connection() as conn:
            if day is None:
                day = (await conn.execute(select(t.day).order_by(t.day.desc()).limit(1))).scalar()
                if day is None:
                    return []
            rows = (
                await conn.execute(select(provider_health).where(t.day == day).order_by(t.provider))
            ).all()
        return [health_from_row(r) for r in rows]
