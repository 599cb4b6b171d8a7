"""Provider health rows: one per provider and exchange-local day, upserted by the poller."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import select

from optterm.model import ProviderHealth
from optterm.store.dialect import upsert_for
from optterm.store.repository import Store
from optterm.store.schema import provider_health

__all__ = ["load_health", "save_health"]


def _us(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp() * 1_000_000)


def _dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, UTC)


async def save_health(store: Store, rows: Sequence[ProviderHealth]) -> None:
    if not rows:
        return
    now = _us(datetime.now(UTC))
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
            "last_error_at": _us(r.last_error_at),
            "updated_at": now,
        }
        for r in rows
    ]
    async with store.write_transaction() as conn:
        key = ("day", "provider")
        await conn.execute(upsert_for(conn, provider_health, key, list(values[0])), values)


async def load_health(store: Store, day: date | None = None) -> list[ProviderHealth]:
    """Rows for `day`, or for the most recent day that has any."""
    async with store.read_connection() as conn:
        if day is None:
            day = (
                await conn.execute(
                    select(provider_health.c.day).order_by(provider_health.c.day.desc()).limit(1)
                )
            ).scalar()
            if day is None:
                return []
        rows = (
            await conn.execute(
                select(provider_health)
                .where(provider_health.c.day == day)
                .order_by(provider_health.c.provider)
            )
        ).all()
    return [
        ProviderHealth(
            provider=r.provider,
            day=r.day,
            requests=r.requests,
            successes=r.successes,
            failures=json.loads(r.failures),
            latency_ms_sum=r.latency_ms_sum,
            latency_ms_last=r.latency_ms_last,
            breaker=r.breaker,
            last_error=r.last_error,
            last_error_at=_dt(r.last_error_at),
        )
        for r in rows
    ]
