"""Chain metrics (one row per stored snapshot) and pattern signals (one row per signal key):
`store.analytics`.

Floats are NULL where the model has NaN (SQLite cannot store NaN) and NaN again when read; the
two IV-history fields are None ↔ NULL. Timestamps are integer epoch microseconds UTC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from optterm.model import (
    Bias,
    Direction,
    Feed,
    MarketView,
    Metrics,
    PatternKind,
    Signal,
    Strength,
)
from optterm.store.dialect import upsert_for
from optterm.store.nulls import nan_to_none, none_to_nan
from optterm.store.rows import signal_from_row
from optterm.store.schema import METRIC_FLOATS, metrics, signals
from optterm.store.timecodec import from_us, ist_date, ist_day_number, ist_day_start_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["AnalyticsRepository", "write_analytics"]

# None (not NaN) when NULL: "not enough history yet" is not a number that failed to compute.
_OPTIONAL: Final = frozenset({"iv_rank", "iv_percentile"})
_METRICS_KEY: Final = ("symbol", "expiry", "ts")
# Kept from the first insert when a signal is upserted again.
_SIGNAL_KEEP: Final = frozenset({"key", "first_seen"})
# A year of trading days fits in about twice as many calendar days; the first read of
# daily_atm_iv looks that far back and widens only if it found too few days.
_LOOKBACK_FACTOR: Final = 2
_LOOKBACK_PAD_DAYS: Final = 14
# Trading date (IST) of a metrics row, as a day number in portable integer SQL.
_M_DAY = ist_day_number(metrics.c.ts)


# ------------------------------------------------------------------------------------ helpers


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    values: list[dict[str, Any]],
    key: Sequence[str],
    keep: Iterable[str],
) -> None:
    await conn.execute(upsert_for(conn, table, key, list(values[0]), tuple(keep)), values)


def _last_by_key(values: list[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    # PostgreSQL refuses to update one row twice in a statement: the last of a key wins.
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for v in values:
        k = tuple(v[c] for c in key)
        prev = out.pop(k, None)
        if prev is not None and "first_seen" in v:
            v = {**v, "first_seen": min(prev["first_seen"], v["first_seen"])}
        out[k] = v
    return list(out.values())


# ------------------------------------------------------------------------------------ rows


def _metrics_row(m: Metrics) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": m.symbol,
        "expiry": m.expiry,
        "ts": to_us(m.ts, "ts"),
        "provider": m.provider,
        "feed": str(m.feed),
        "forward_source": m.forward_source,
    }
    for name in METRIC_FLOATS:
        row[name] = nan_to_none(getattr(m, name))
    row["view_bias"] = str(m.view.bias)
    row["view_score"] = nan_to_none(m.view.score)
    row["view_reasons"] = json.dumps(list(m.view.reasons), ensure_ascii=False)
    return row


def _to_metrics(r: Row[*tuple[Any, ...]]) -> Metrics:
    floats = {
        name: (getattr(r, name) if name in _OPTIONAL else none_to_nan(getattr(r, name)))
        for name in METRIC_FLOATS
    }
    return Metrics(
        symbol=r.symbol,
        expiry=r.expiry,
        ts=from_us(r.ts),
        provider=r.provider,
        feed=Feed(r.feed),
        forward_source=r.forward_source,
        view=MarketView(
            bias=Bias(r.view_bias),
            score=none_to_nan(r.view_score),
            reasons=tuple(json.loads(r.view_reasons)),
        ),
        **floats,
    )


def _signal_row(s: Signal) -> dict[str, Any]:
    return {
        "key": s.key,
        "kind": str(PatternKind(s.kind)),
        "symbol": s.symbol,
        "expiry": s.expiry,
        "direction": str(Direction(s.direction)),
        "strikes": json.dumps([float(k) for k in s.strikes]),
        "confidence": int(s.confidence),
        "strength": str(Strength(s.strength)),
        "evidence": json.dumps(
            [[str(n), nan_to_none(v)] for n, v in s.evidence], ensure_ascii=False
        ),
        "summary": s.summary,
        "first_seen": to_us(s.first_seen, "first_seen"),
        "last_seen": to_us(s.last_seen, "last_seen"),
        "expires_at": to_us(s.expires_at, "expires_at"),
        "updates": int(s.updates),
        "provider": s.provider,
        "feed": str(Feed(s.feed)),
    }


async def write_analytics(
    conn: AsyncConnection, metrics_: Sequence[Metrics], signals_: Sequence[Signal]
) -> None:
    """Upsert metrics and signals inside the caller's transaction: `save`'s, or the one a
    tick's snapshots are written in (`SnapshotRepository.write_tick`)."""
    if metrics_:
        values = _last_by_key([_metrics_row(m) for m in metrics_], _METRICS_KEY)
        await _upsert(conn, metrics, values, _METRICS_KEY, ())
    if signals_:
        values = _last_by_key([_signal_row(s) for s in signals_], ("key",))
        await _upsert(conn, signals, values, ("key",), _SIGNAL_KEEP)


# ------------------------------------------------------------------------------ repository


class AnalyticsRepository:
    """`store.analytics`: what the analyzer computed for each stored snapshot, and signals."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(self, metrics_: Sequence[Metrics], signals_: Sequence[Signal]) -> None:
        """Upsert a tick's metrics (on symbol, expiry, ts) and signals (by key, as
        `save_signals`) in one transaction."""
        if not metrics_ and not signals_:
            return
        what = "Storing metrics" if not signals_ else "Storing signals" if not metrics_ else None
        async with self._store.write_transaction(what or "Storing metrics and signals") as conn:
            await write_analytics(conn, metrics_, signals_)

    async def save_metrics(self, rows: Sequence[Metrics]) -> None:
        """Upsert `rows` on (symbol, expiry, ts), all in one transaction."""
        await self.save(rows, ())

    async def save_signals(self, signals_: Sequence[Signal]) -> None:
        """Upsert by key in one transaction. A signal already stored gets every field of the new
        one except `first_seen`, which stays that of its first insert."""
        await self.save((), signals_)

    # ---------------------------------------------------------------------------- metrics

    async def latest_metrics(self, symbol: str, expiry: date | None = None) -> Metrics | None:
        """The newest metrics of `symbol` for `expiry`; with expiry None, of the nearest expiry
        that has rows on the trading day (IST) of the symbol's newest row and had not expired
        before it (the newest row's expiry when none qualifies) — the same choice as
        `store.snapshots.latest`."""
        m = metrics.c
        async with self._store.read_connection() as conn:
            if expiry is None:
                newest = (
                    await conn.execute(
                        select(m.ts, m.expiry)
                        .where(m.symbol == symbol)
                        .order_by(m.ts.desc(), m.expiry)
                        .limit(1)
                    )
                ).one_or_none()
                if newest is None:
                    return None
                day = ist_date(newest.ts)
                live = (
                    await conn.execute(
                        select(m.expiry)
                        .where(m.symbol == symbol, m.ts >= ist_day_start_us(day), m.expiry >= day)
                        .order_by(m.expiry)
                        .limit(1)
                    )
                ).scalar()
                expiry = newest.expiry if live is None else live
            row = (
                await conn.execute(
                    select(metrics)
                    .where(m.symbol == symbol, m.expiry == expiry)
                    .order_by(m.ts.desc())
                    .limit(1)
                )
            ).one_or_none()
        return None if row is None else _to_metrics(row)

    async def metrics_before(self, symbol: str, expiry: date, before: datetime) -> Metrics | None:
        """The newest metrics of one chain with ts < `before`: what a live engine had read as
        "the view shown last" at that time (a replay's as-of reads)."""
        m = metrics.c
        stmt = (
            select(metrics)
            .where(m.symbol == symbol, m.expiry == expiry, m.ts < to_us(before, "before"))
            .order_by(m.ts.desc())
            .limit(1)
        )
        async with self._store.read_connection() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _to_metrics(row)

    async def metrics_series(
        self,
        symbol: str,
        expiry: date,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Metrics]:
        """Metrics of one chain with start <= ts < end (either bound optional), ascending by ts."""
        m = metrics.c
        stmt = select(metrics).where(m.symbol == symbol, m.expiry == expiry)
        if start is not None:
            stmt = stmt.where(m.ts >= to_us(start, "start"))
        if end is not None:
            stmt = stmt.where(m.ts < to_us(end, "end"))
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt.order_by(m.ts))).all()
        return [_to_metrics(r) for r in rows]

    async def daily_atm_iv(self, symbol: str, before: datetime, days: int) -> list[float]:
        """The last ATM IV of each trading date (Asia/Kolkata) strictly before `before`'s date,
        for the nearest expiry observed that day: the most recent `days` dates that have one,
        oldest first. Rows without an ATM IV are skipped (the day's last valid one counts)."""
        if days <= 0:
            return []
        end_day = ist_date(to_us(before, "before"))
        hi = ist_day_start_us(end_day)
        lookback = end_day - timedelta(days=days * _LOOKBACK_FACTOR + _LOOKBACK_PAD_DAYS)
        m = metrics.c
        by_day: dict[int, tuple[date, float]] = {}
        async with self._store.read_connection() as conn:
            for lo in (ist_day_start_us(lookback), None):
                where = [m.symbol == symbol, m.ts < hi, m.atm_iv.is_not(None)]
                if lo is not None:
                    where.append(m.ts >= lo)
                last = (
                    select(_M_DAY.label("day"), m.expiry, func.max(m.ts).label("ts"))
                    .where(*where)
                    .group_by(_M_DAY, m.expiry)
                    .subquery()
                )
                stmt = select(last.c.day, last.c.expiry, m.atm_iv).join_from(
                    last,
                    metrics,
                    and_(m.symbol == symbol, m.expiry == last.c.expiry, m.ts == last.c.ts),
                )
                rows = (await conn.execute(stmt)).all()
                by_day = {}
                for day, exp, iv in rows:
                    if iv is None or math.isnan(iv):
                        continue
                    if int(day) not in by_day or exp < by_day[int(day)][0]:
                        by_day[int(day)] = (exp, float(iv))
                if len(by_day) >= days:
                    break
        return [by_day[d][1] for d in sorted(by_day)[-days:]]

    # ---------------------------------------------------------------------------- signals

    async def load_signals(
        self,
        symbol: str | None = None,
        kinds: Iterable[PatternKind | str] | None = None,
        since: datetime | None = None,
        active_at: datetime | None = None,
        limit: int | None = 200,
    ) -> list[Signal]:
        """Stored signals, newest `last_seen` first.

        symbol: only this underlying; kinds: only these pattern kinds; since: last_seen >= since;
        active_at: only signals still active then (expires_at > active_at); limit: at most this
        many (None for all).
        """
        s = signals.c
        stmt = select(signals)
        if symbol is not None:
            stmt = stmt.where(s.symbol == symbol)
        if kinds is not None:
            stmt = stmt.where(s.kind.in_(sorted({str(PatternKind(k)) for k in kinds})))
        if since is not None:
            stmt = stmt.where(s.last_seen >= to_us(since, "since"))
        if active_at is not None:
            stmt = stmt.where(s.expires_at > to_us(active_at, "active_at"))
        stmt = stmt.order_by(s.last_seen.desc(), s.key)
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be >= 1, got {limit}")
            stmt = stmt.limit(limit)
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [signal_from_row(r) for r in rows]
