"""Stored backtest runs (`store.backtests`): the spec as typed and the result document.

The engine makes the document (engine/backtest/results.py); the store keeps it as JSON with a few
columns to list runs by, and gives it back as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from optterm.infra.clip import clip
from optterm.store.errors import CorruptDatabaseError
from optterm.store.schema import backtests
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["BacktestRepository", "StoredBacktest"]


@dataclass(frozen=True, slots=True)
class StoredBacktest:
    id: int
    created_at: datetime
    symbol: str
    spec: str
    span_from: date
    span_to: date
    trades: int
    net_pnl: float
    interrupted: bool
    document: dict[str, Any]


class BacktestRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(self, document: dict[str, Any], at: datetime) -> int:
        """Keep one run's document; its id."""
        figures = document["figures"]
        values = {
            "created_at": to_us(at, "at"),
            "symbol": document["symbol"],
            "spec": document["spec"],
            "span_from": date.fromisoformat(document["from"]),
            "span_to": date.fromisoformat(document["to"]),
            "trades": int(figures["trades"]),
            "net_pnl": float(figures["net_pnl"]),
            "interrupted": int(bool(document["interrupted"])),
            "document": json.dumps(document, ensure_ascii=False, allow_nan=False),
        }
        async with self._store.write_transaction("Saving the backtest") as conn:
            result = await conn.execute(insert(backtests).values(**values))
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def recent(self, limit: int = 20) -> list[StoredBacktest]:
        stmt = select(backtests).order_by(backtests.c.id.desc()).limit(limit)
        try:
            async with self._store.read_connection("Reading stored backtests") as conn:
                rows = (await conn.execute(stmt)).all()
            return self._rows(rows)
        except (ValueError, TypeError) as exc:  # a row edited by hand or by another program
            raise CorruptDatabaseError(
                f"a stored backtest is damaged ({clip(exc, 80)}); optterm has not changed it. "
                "Delete the damaged row from the backtests table, or move the database aside "
                "and start optterm again to create a fresh one."
            ) from None

    @staticmethod
    def _rows(rows: Any) -> list[StoredBacktest]:
        return [
            StoredBacktest(
                r.id,
                from_us(r.created_at),
                r.symbol,
                r.spec,
                r.span_from,
                r.span_to,
                r.trades,
                r.net_pnl,
                bool(r.interrupted),
                json.loads(r.document),
            )
            for r in rows
        ]
