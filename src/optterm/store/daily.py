"""End-of-day summaries: `daily_strikes` (each strike's close) and `daily_spot` (spot OHLC),
in `store.daily`.

Written by the scheduler's `eod` job from the intraday snapshots of one exchange-local day, and
kept when retention purges those snapshots. Re-summarising a day replaces its rows with the same
values (delete and insert in one transaction), so the job is idempotent.

A day is the exchange-local calendar day (00:00–24:00 in the calendar's zone), so a snapshot
fetched after the close but stamped with that day's provider time belongs to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, exists, insert, or_, select

from optterm.store.nulls import nan_to_none
from optterm.store.schema import chains, snapshots
from optterm.store.schema import daily_spot as _spot_t
from optterm.store.schema import daily_strikes as _strikes_t
from optterm.store.snapshots import ROW_COLUMNS
from optterm.store.timecodec import to_us

if TYPE_CHECKING:
    from optterm.market import MarketCalendar
    from optterm.model import ChainSnapshot
    from optterm.store.store import Store

__all__ = ["STRIKE_FIELDS", "DailyRepository", "DailySpot", "DailyStrike", "day_bounds"]

# The per-side columns of daily_strikes and the snapshot leg field each one is taken from.
_SIDE_FIELDS: tuple[tuple[str, str], ...] = (
    ("oi", "oi"),
    ("oi_change", "oi_change"),
    ("volume", "volume"),
    ("close", "ltp"),
)
STRIKE_FIELDS: tuple[str, ...] = tuple(
    f"{side}_{name}" for side in ("ce", "pe") for name, _ in _SIDE_FIELDS
)


@dataclass(frozen=True, slots=True)
class DailyStrike:
    """One strike at the end of one day: the last stored snapshot's OI, OI change, volume and
    last price (`*_close`) per side; None where the provider gave no value."""

    symbol: str
    expiry: date
    day: date
    strike: float
    ce_oi: float | None
    ce_oi_change: float | None
    ce_volume: float | None
    ce_close: float | None
    pe_oi: float | None
    pe_oi_change: float | None
    pe_volume: float | None
    pe_close: float | None


@dataclass(frozen=True, slots=True)
class DailySpot:
    """Spot open/high/low/close of one underlying over one day's stored snapshots (every
    expiry's), and how many snapshots carried a spot."""

    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float
    snapshots: int


def day_bounds(day: date, calendar: MarketCalendar) -> tuple[datetime, datetime]:
    """[start, end) of the exchange-local calendar day `day`, as UTC datetimes."""
    start = datetime.combine(day, time(0), tzinfo=calendar.tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=calendar.tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _strike_rows(symbol: str, expiry: date, day: date, snap: ChainSnapshot) -> list[dict[str, Any]]:
    strikes = snap.strikes
    columns: dict[str, np.ndarray] = {}
    for side, legs in (("ce", snap.ce), ("pe", snap.pe)):
        for name, field in _SIDE_FIELDS:
            columns[f"{side}_{name}"] = legs.column(field)
    return [
        {
            "symbol": symbol,
            "expiry": expiry,
            "day": day,
            "strike": float(strike),
            **{name: nan_to_none(col[i]) for name, col in columns.items()},
        }
        for i, strike in enumerate(strikes)
    ]


def _spot_row(symbol: str, day: date, points: list[tuple[int, int, float]]) -> dict[str, Any]:
    points.sort()  # by provider_ts, then id: the order snapshots were taken in
    spots = [p[2] for p in points]
    return {
        "symbol": symbol,
        "day": day,
        "open": spots[0],
        "high": max(spots),
        "low": min(spots),
        "close": spots[-1],
        "snapshots": len(spots),
    }


class DailyRepository:
    """`store.daily`: the end-of-day summaries that outlive the intraday snapshots."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def summarize(self, day: date, calendar: MarketCalendar) -> tuple[int, int]:
        """Write `day`'s summaries; returns (rows written to daily_strikes, rows to daily_spot).

        daily_strikes: per (symbol, expiry), every strike of the last snapshot stamped that day.
        daily_spot: per symbol, open/high/low/close of the spots of that day's snapshots, in
        provider-time order. Chains without a snapshot that day keep whatever summary they have.
        """
        start, end = day_bounds(day, calendar)
        lo, hi = to_us(start, "start"), to_us(end, "end")
        in_day = (snapshots.c.provider_ts >= lo, snapshots.c.provider_ts < hi)
        strike_rows: dict[tuple[str, date], list[dict[str, Any]]] = {}
        spot_rows: list[dict[str, Any]] = []
        async with self._store.read_connection(f"Reading the snapshots of {day}") as conn:
            pairs = (
                await conn.execute(
                    select(chains.c.symbol, chains.c.expiry)
                    .distinct()
                    .order_by(chains.c.symbol, chains.c.expiry)
                )
            ).all()
            lasts = []
            for symbol, expiry in pairs:
                # One index seek per chain: the newest snapshot of the day.
                last = (
                    await conn.execute(
                        select(*ROW_COLUMNS)
                        .where(snapshots.c.symbol == symbol, snapshots.c.expiry == expiry, *in_day)
                        .order_by(snapshots.c.provider_ts.desc(), snapshots.c.id.desc())
                        .limit(1)
                    )
                ).one_or_none()
                if last is not None:
                    lasts.append(last)
            symbols = sorted({symbol for symbol, _ in pairs})
            if symbols:
                points: dict[str, list[tuple[int, int, float]]] = {}
                rows = await conn.execute(
                    select(
                        snapshots.c.symbol,
                        snapshots.c.provider_ts,
                        snapshots.c.id,
                        snapshots.c.spot,
                    ).where(snapshots.c.symbol.in_(symbols), snapshots.c.spot.is_not(None), *in_day)
                )
                for symbol, ts, snap_id, spot in rows:
                    if spot is not None and not math.isnan(spot):
                        points.setdefault(symbol, []).append((ts, snap_id, float(spot)))
                spot_rows = [_spot_row(s, day, points[s]) for s in sorted(points)]

        # Decoded once the read is over (a row in a time block reads its block with another).
        for snap in await self._store.snapshots.decode_rows(lasts):
            if snap is not None:
                key = (snap.symbol, snap.expiry)
                strike_rows[key] = _strike_rows(snap.symbol, snap.expiry, day, snap)
        written = sum(len(r) for r in strike_rows.values())
        if not strike_rows and not spot_rows:
            return 0, 0
        async with self._store.write_transaction(f"Writing the summaries of {day}") as conn:
            for (symbol, expiry), rows_ in strike_rows.items():
                await conn.execute(
                    delete(_strikes_t).where(
                        _strikes_t.c.symbol == symbol,
                        _strikes_t.c.expiry == expiry,
                        _strikes_t.c.day == day,
                    )
                )
                if rows_:
                    await conn.execute(insert(_strikes_t), rows_)
            for row in spot_rows:
                await conn.execute(
                    delete(_spot_t).where(_spot_t.c.symbol == row["symbol"], _spot_t.c.day == day)
                )
            if spot_rows:
                await conn.execute(insert(_spot_t), spot_rows)
        return written, len(spot_rows)

    async def summarized(self, day: date) -> bool:
        """True when `day` has any end-of-day summary row."""
        stmt = select(
            or_(
                exists().where(_spot_t.c.day == day),
                exists().where(_strikes_t.c.day == day),
            )
        )
        async with self._store.read_connection() as conn:
            return bool(await conn.scalar(stmt))

    async def spot(
        self, symbol: str, start: date | None = None, end: date | None = None
    ) -> list[DailySpot]:
        """`symbol`'s daily spot OHLC for start <= day <= end (either bound optional), by day."""
        t = _spot_t
        stmt = select(t).where(t.c.symbol == symbol).order_by(t.c.day)
        if start is not None:
            stmt = stmt.where(t.c.day >= start)
        if end is not None:
            stmt = stmt.where(t.c.day <= end)
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            DailySpot(r.symbol, r.day, r.open, r.high, r.low, r.close, int(r.snapshots))
            for r in rows
        ]

    async def strikes(self, symbol: str, expiry: date, day: date) -> list[DailyStrike]:
        """One chain's end-of-day strikes on `day`, by strike."""
        t = _strikes_t
        stmt = (
            select(t)
            .where(t.c.symbol == symbol, t.c.expiry == expiry, t.c.day == day)
            .order_by(t.c.strike)
        )
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            DailyStrike(
                r.symbol,
                r.expiry,
                r.day,
                r.strike,
                *(getattr(r, name) for name in STRIKE_FIELDS),
            )
            for r in rows
        ]
