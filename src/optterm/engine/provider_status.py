"""`optterm providers`: each configured provider's health, from the store or probed now."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.model import ProviderHealth
    from optterm.store import Store

__all__ = ["health_row", "probe", "status_rows"]


def health_row(h: ProviderHealth | None, name: str, order: int | None) -> dict[str, Any]:
    """One provider's recorded health as `optterm providers --json` and the providers screen show
    it (`last_error_at` a datetime; the JSON output turns it into ISO text)."""
    return {
        "order": order,
        "provider": name,
        "day": h.day.isoformat() if h else None,
        "breaker": h.breaker if h else None,
        "requests": h.requests if h else 0,
        "successes": h.successes if h else 0,
        "success_rate": h.success_rate if h else None,
        "latency_ms_mean": h.latency_ms_mean if h else None,
        "latency_ms_last": h.latency_ms_last if h else None,
        "failures": dict(h.failures) if h else {},
        "last_error": h.last_error if h else None,
        "last_error_at": h.last_error_at if h else None,
    }


async def status_rows(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """One row per configured provider, in failover order, with today's recorded health."""
    from optterm.providers.factory import ProviderUnavailable, build_one

    recorded = {h.provider: h for h in await store.health.load()}
    rows = []
    for position, name in enumerate(settings.providers.order, start=1):
        available, reason = True, None
        try:
            provider = build_one(settings, name)
            await provider.close()
        except ProviderUnavailable as exc:
            available, reason = False, str(exc)
        health = health_row(recorded.get(name), name, position)
        at = health.pop("last_error_at")
        rows.append(
            {
                "order": health.pop("order"),
                "provider": health.pop("provider"),
                "available": available,
                "unavailable_reason": reason,
                **health,
                "last_error_at": at.isoformat() if at else None,
            }
        )
    return rows


async def probe(settings: Settings, symbol: str) -> list[dict[str, Any]]:
    """Ask each configured provider, one by one, for `symbol`'s expiries and nearest chain."""
    from optterm.providers.base import ProviderError
    from optterm.providers.factory import ProviderUnavailable, build_one

    out = []
    for name in settings.providers.order:
        row: dict[str, Any] = {"provider": name, "ok": False}
        try:
            provider = build_one(settings, name)
        except ProviderUnavailable as exc:
            row["error"] = str(exc)
            out.append(row)
            continue
        t0 = time.perf_counter()
        try:
            expiries = await provider.list_expiries(symbol)
            snap = await provider.fetch_chain(symbol, expiries[0])
            row.update(
                ok=True,
                feed=snap.feed.value,
                expiry=snap.expiry.isoformat(),
                strikes=len(snap),
                data_time=snap.provider_ts.isoformat(),
            )
        except ProviderError as exc:
            row.update(error=exc.message, kind=exc.kind.value)
        finally:
            row["ms"] = round((time.perf_counter() - t0) * 1000, 1)
            await provider.close()
        out.append(row)
    return out
