"""Provider health rows persist per (day, provider) and are upserted, not appended."""

from __future__ import annotations

from datetime import UTC, date, datetime

from optterm.model import ProviderHealth
from optterm.store import Store


async def test_health_rows_upsert_and_read_back(store: Store) -> None:
    assert await store.health.load() == []
    day = date(2026, 11, 20)
    at = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    rows = [
        ProviderHealth("angelone", day, 10, 7, {"rate_limited": 1, "server": 2}, 700.0, 80.0,
                       "open", "HTTP 403", at),
        ProviderHealth("nse", day, 3, 3, {}, 900.0, 250.0, "closed"),
    ]  # fmt: skip
    await store.health.save(rows)
    rows[0].requests = 11
    rows[0].breaker = "half_open"
    await store.health.save(rows)
    back = {h.provider: h for h in await store.health.load()}
    assert back["angelone"].requests == 11 and back["angelone"].breaker == "half_open"
    assert back["angelone"].failures == {"rate_limited": 1, "server": 2}
    assert back["angelone"].last_error_at == at
    assert back["nse"].latency_ms_mean == 300.0 and back["nse"].last_error is None
    await store.health.save([ProviderHealth("nse", date(2026, 11, 19), 1, 1)])
    assert {h.day for h in await store.health.load()} == {day}  # the latest day by default
    assert len(await store.health.load(date(2026, 11, 19))) == 1
