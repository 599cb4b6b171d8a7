"""Chain snapshots: writing a tick's chains, and reading them back (`store.snapshots`).

One transaction per tick on the Store's writer, which also upserts the tick's metrics and
signals when the poller hands them over (`write_tick`), inside a SAVEPOINT: a fault there costs
the metrics and signals, never the tick's snapshots. A snapshot whose provider_ts equals the
last one stored for its (symbol, expiry, provider) is not stored again (the provider has
published nothing new). The last provider_ts per key is cached, seeded from the database on
first use so a restart does not re-store the snapshot it stored just before, and updated only
after COMMIT.

The whole chain is one column blob (store/codec.py); `strike_series` decodes only the columns
it needs. Reads are short autocommit statements, batched for long ranges, so nothing pins the
database while a caller iterates slowly.

One module, longer than most: the writes and every read share the row layout and the blob
decoding with its error naming the snapshot.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import Row, bindparam, delete, exc, exists, func, insert, or_, select

from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs, Metrics, Signal
from optterm.store.analytics import write_analytics
from optterm.store.codec import COLUMNS, ColumnBlob, decode_chain, decode_many, encode_chain
from optterm.store.context import context_fields, context_json
from optterm.store.errors import CodecError, StoreError
from optterm.store.schema import chains, snapshots
from optterm.store.timecodec import from_us, ist_date, ist_day_number, to_us

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from optterm.store.store import Store

__all__ = [
    "HEAD_COLUMNS",
    "SERIES_FIELDS",
    "FuturesColumns",
    "HistoryRow",
    "PriceBatch",
    "SnapshotBatch",
    "SnapshotRepository",
    "StrikeSeries",
    "snapshot_from_row",
    "unreadable",
]

_PURGE_BATCH: Final = 2000
_NO_STRIKES: Final = np.empty(0)
_NO_LEGS: Final = Legs.empty(0)
_COLUMN_ID: Final = {name: i for i, name in enumerate(COLUMNS)}
_MAX_KEY_LEN: Final = 32

SERIES_FIELDS: Final[tuple[str, ...]] = (
    "spot",
    *(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS),
)

# What identifies a stored snapshot and when it was taken; with the values and the blob below,
# every column a snapshot is rebuilt from.
HEAD_COLUMNS: Final = (
    snapshots.c.id,
    snapshots.c.symbol,
    snapshots.c.expiry,
    snapshots.c.provider,
    snapshots.c.feed,
    snapshots.c.provider_ts,
    snapshots.c.fetched_at,
)
_ROW_COLUMNS: Final = (
    *HEAD_COLUMNS,
    snapshots.c.spot,
    snapshots.c.lot_size,
    snapshots.c.meta,
    snapshots.c.data,
    snapshots.c.prev_close,
    snapshots.c.context,
)
# What a reader of prices needs of each row (a backtest): no meta or context to parse.
_PRICE_ROW: Final = (
    snapshots.c.id,
    snapshots.c.symbol,
    snapshots.c.expiry,
    snapshots.c.provider_ts,
    snapshots.c.fetched_at,
    snapshots.c.provider,
    snapshots.c.feed,
    snapshots.c.spot,
    snapshots.c.lot_size,
    snapshots.c.data,
)
_PRICE_ROW_FUT: Final = (*_PRICE_ROW, snapshots.c.context)
_SNAP_KEY = (
    snapshots.c.symbol == bindparam("k_symbol"),
    snapshots.c.expiry == bindparam("k_expiry"),
    snapshots.c.provider == bindparam("k_provider"),
)
# First write of a chain in this process: is it registered, and what did we store last?
_SEED = select(
    select(chains.c.first_ts)
    .where(
        chains.c.symbol == bindparam("k_symbol"),
        chains.c.expiry == bindparam("k_expiry"),
        chains.c.provider == bindparam("k_provider"),
    )
    .scalar_subquery(),
    select(snapshots.c.provider_ts)
    .where(*_SNAP_KEY)
    .order_by(snapshots.c.provider_ts.desc())
    .limit(1)
    .scalar_subquery(),
)
_INSERT_SNAPSHOT = insert(snapshots)
_INSERT_CHAIN = insert(chains)
_EXISTS = select(snapshots.c.id).where(*_SNAP_KEY, snapshots.c.provider_ts == bindparam("k_ts"))
_DELETE_EMPTY_CHAINS = delete(chains).where(
    ~exists().where(
        snapshots.c.symbol == chains.c.symbol,
        snapshots.c.expiry == chains.c.expiry,
        snapshots.c.provider == chains.c.provider,
    )
)
# Newest provider_ts per expiry of a symbol: one index seek per registered chain.
_NEWEST = (
    select(snapshots.c.provider_ts)
    .where(snapshots.c.symbol == chains.c.symbol, snapshots.c.expiry == chains.c.expiry)
    .order_by(snapshots.c.provider_ts.desc())
    .limit(1)
    .scalar_subquery()
)
_HEADS = (
    select(chains.c.expiry, _NEWEST.label("newest"))
    .where(chains.c.symbol == bindparam("symbol"))
    .distinct()
)
_HEADS_EXPIRY = _HEADS.where(chains.c.expiry == bindparam("expiry"))
_ROW_AT = (
    select(*_ROW_COLUMNS)
    .where(
        snapshots.c.symbol == bindparam("symbol"),
        snapshots.c.expiry == bindparam("expiry"),
        snapshots.c.provider_ts == bindparam("ts"),
    )
    .order_by(snapshots.c.id.desc())
    .limit(1)
)
_DAY = ist_day_number(snapshots.c.provider_ts)
_HISTORY = (
    select(
        snapshots.c.symbol,
        snapshots.c.expiry,
        _DAY.label("day"),
        snapshots.c.provider,
        func.count(),
        func.min(snapshots.c.provider_ts),
        func.max(snapshots.c.provider_ts),
    )
    .group_by(snapshots.c.symbol, snapshots.c.expiry, _DAY, snapshots.c.provider)
    .order_by(snapshots.c.symbol, snapshots.c.expiry, _DAY, snapshots.c.provider)
)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """What the store holds for one chain on one trading day (Asia/Kolkata) from one provider."""

    symbol: str
    expiry: date
    trading_date: date
    provider: str
    count: int
    first_ts: datetime  # UTC
    last_ts: datetime  # UTC

    @property
    def date(self) -> _dt.date:
        """Alias of `trading_date` (the name `optterm history` reads)."""
        return self.trading_date


@dataclass(frozen=True, slots=True, eq=False)
class StrikeSeries:
    """One strike's values over time: `ts` (datetime64[us], UTC) and one float64 array per field.

    NaN where the strike was absent from a snapshot (or the field had no value).
    """

    symbol: str
    expiry: date
    strike: float
    ts: np.ndarray
    values: Mapping[str, np.ndarray]

    def __getitem__(self, field: str) -> np.ndarray:
        return self.values[field]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.values)


# The columns of a snapshot's blob, in `SnapshotBatch.columns`.
BATCH_COLUMNS: Final[tuple[str, ...]] = (
    "strike",
    *(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS),
)


@dataclass(frozen=True, slots=True, eq=False)
class SnapshotBatch:
    """Consecutive snapshots decoded together (`iterate_batches`).

    `heads[i]` is snapshot i with everything but its strikes (no strikes, empty legs);
    `counts[i]` how many strikes it has; `columns` holds "strike" and every leg column
    ("ce_oi", …, "pe_ask_qty") of all the snapshots' strikes back to back, in order.
    """

    heads: list[ChainSnapshot]
    counts: np.ndarray
    columns: Mapping[str, np.ndarray]


@dataclass(frozen=True, slots=True, eq=False)
class PriceBatch:
    """Consecutive snapshots' heads as plain columns (`iterate_price_batches`): provider and
    fetch times (epoch µs), providers, feeds, spots and lot sizes, one entry per snapshot, and
    the named chain columns of all of them back to back (`counts[i]` strikes each). No
    ChainSnapshot is built: a reader stepping through a year of prices would spend more on
    building them than on its own work."""

    ts: list[int]
    fetched: list[int]
    providers: list[str]
    feeds: list[str]
    spot: list[float]
    lot_size: list[int]
    counts: np.ndarray
    columns: Mapping[str, np.ndarray]
    # With `futures=True` only: each snapshot's futures quote (the future of the chain's expiry
    # month) as its LTP and its source ("nse NIFTY Nov future"; NaN and "" without one), and
    # the expiries the provider listed with it (empty when not stored).
    futures: FuturesColumns | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FuturesColumns:
    ltp: list[float]
    source: list[str]
    listed: list[tuple[date, ...]]


def _futures_of(rows: Sequence[Row[*tuple[Any, ...]]]) -> FuturesColumns:
    out = FuturesColumns([], [], [])
    for r in rows:
        ctx = context_fields(r.context)
        q = ctx.get("futures")
        out.ltp.append(math.nan if q is None else q.value)
        out.source.append("" if q is None else q.source)
        out.listed.append(ctx.get("expiries", ()))
    return out


def unreadable(snap_id: int, what: str, provider_ts: int, url: str, err: CodecError) -> CodecError:
    """The error for a stored blob that does not decode, saying which snapshot and what to do."""
    return CodecError(
        f"Snapshot {snap_id} ({what} at {from_us(provider_ts).isoformat()}) in {url} cannot be "
        f"read: {err}. Delete that snapshot or restore the database from a backup."
    )


def _pick_head(heads: list[Row[*tuple[Any, ...]]]) -> Row[*tuple[Any, ...]] | None:
    """The nearest expiry with data on the newest trading day; else the newest expiry's head."""
    if not heads:
        return None
    newest = max(h.newest for h in heads)
    day = ist_date(newest)
    live = [h for h in heads if ist_date(h.newest) == day and h.expiry >= day]
    if live:
        return min(live, key=lambda h: h.expiry)
    return next(h for h in heads if h.newest == newest)


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    key: tuple[str, date, str]
    ts: int
    row: dict[str, Any]


def _snapshot_row(snap: ChainSnapshot, ts: int) -> dict[str, Any]:
    return {
        "symbol": snap.symbol,
        "expiry": snap.expiry,
        "provider": snap.provider,
        "feed": str(snap.feed),
        "provider_ts": ts,
        "fetched_at": to_us(snap.fetched_at, "fetched_at"),
        "spot": None if math.isnan(snap.spot) else float(snap.spot),
        "lot_size": int(snap.lot_size),
        "n_strikes": len(snap),
        "ce_oi_total": _total(snap.ce.oi),
        "pe_oi_total": _total(snap.pe.oi),
        "ce_volume_total": _total(snap.ce.volume),
        "pe_volume_total": _total(snap.pe.volume),
        "meta": json.dumps(snap.meta, sort_keys=True, separators=(",", ":")) if snap.meta else None,
        "data": encode_chain(snap, zstd=True),
        "prev_close": None if math.isnan(snap.prev_close) else float(snap.prev_close),
        "context": context_json(snap),
    }


def _total(col: np.ndarray) -> float | None:
    finite = col[~np.isnan(col)]
    return float(finite.sum()) if finite.size else None


# The savepoint a tick's metrics and signals are written in (`SnapshotRepository.write_tick`).
_SAVEPOINT: Final = "tick_analytics"


class SnapshotRepository:
    """`store.snapshots`: the chain history of one Store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Last provider_ts written per (symbol, expiry, provider); see the module docstring.
        self._last: dict[tuple[str, date, str], int | None] = {}
        # Held across a batch's two attempts (write_many), so no other batch of this process
        # changes the cache between the failed attempt and the careful one.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------------------ writing

    async def write(self, snap: ChainSnapshot) -> bool:
        """Store one snapshot in its own transaction; see `write_many`."""
        return (await self.write_many([snap]))[0]

    async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
        """Store snapshots in one transaction (one COMMIT and one fence check instead of one
        per chain). All are stored or none.

        Element i is False, nothing written for it, when snaps[i]'s provider_ts equals the last
        one stored for the same (symbol, expiry, provider) — the provider has not published new
        data — or an earlier element of the batch has the same key and provider_ts.
        """
        return (await self.write_tick(snaps))[0]

    def joins(self, analytics: object) -> bool:
        """Whether `write_tick` writes the metrics and signals `analytics` would save: it is
        this store's own `store.analytics`."""
        return analytics is self._store.analytics

    async def write_tick(
        self,
        snaps: Sequence[ChainSnapshot],
        metrics_: Sequence[Metrics | None] = (),
        signals_: Sequence[Signal] = (),
    ) -> tuple[list[bool], Exception | None]:
        """A tick's snapshots (as `write_many`), the metrics of those stored and the signals,
        in one transaction: the tick pays for one COMMIT (and fence check) instead of two.

        The metrics and signals are written inside a SAVEPOINT of it: when they fail, only
        they are rolled back and the snapshots still commit (as when they were two writes);
        the failure is returned, not raised. When the snapshots fail, nothing of the tick is
        stored and that failure is raised.

        `metrics_` is empty or has one element per snapshot: metrics_[i], when not None, is
        upserted (as `store.analytics.save`) only if snaps[i] is stored. The signals are
        upserted whether or not any snapshot is new. Returns which snapshots were stored, and
        the metrics and signals' failure (a StoreError for a database error) or None.
        """
        if metrics_ and len(metrics_) != len(snaps):
            raise ValueError("metrics_ must have one element per snapshot, or none")
        stored = [False] * len(snaps)
        pending: list[_Pending] = []
        batch: set[tuple[tuple[str, date, str], int]] = set()
        for i, snap in enumerate(snaps):
            for name, value in (("symbol", snap.symbol), ("provider", snap.provider)):
                if not value or len(value) > _MAX_KEY_LEN:
                    raise ValueError(f"{name} must be 1–{_MAX_KEY_LEN} characters, got {value!r}")
            key = (snap.symbol, snap.expiry, snap.provider)
            ts = to_us(snap.provider_ts, "provider_ts")
            if self._last.get(key, -1) == ts or (key, ts) in batch:
                continue
            batch.add((key, ts))
            # Encode before taking the write lock: CPU work must not hold the database lock.
            pending.append(_Pending(i, key, ts, _snapshot_row(snap, ts)))
        if not pending:
            # Nothing new: no metrics are due, the signals are written alone.
            try:
                await self._store.analytics.save((), signals_)
            except Exception as err:  # the signals' failure, not the snapshots'
                return stored, err
            return stored, None
        what = (
            f"Storing {snaps[pending[0].index].symbol} {pending[0].key[1]}"
            if len(pending) == 1
            else f"Storing {len(pending)} snapshots"
        )
        async with self._lock:
            for attempt in (1, 2):
                try:
                    with self._store.errors(what):
                        written, failed = await self._write_batch(
                            pending, metrics_, signals_, careful=attempt == 2
                        )
                        for i in written:
                            stored[i] = True
                        return stored, failed
                except StoreError as err:
                    if not isinstance(err.__cause__, exc.IntegrityError) or attempt == 2:
                        raise
                    # Another process wrote these keys behind our cache: re-seed and re-check.
                    for p in pending:
                        self._last.pop(p.key, None)
        raise AssertionError("unreachable")

    async def _write_batch(
        self,
        pending: list[_Pending],
        metrics_: Sequence[Metrics | None],
        signals_: Sequence[Signal],
        *,
        careful: bool,
    ) -> tuple[list[int], Exception | None]:
        """Insert what is new in `pending`, then (in a savepoint) the metrics of those and the
        signals; the indexes stored and the metrics and signals' failure. The cache is updated
        only after COMMIT: a rolled-back write must not be remembered as stored."""
        last: dict[tuple[str, date, str], int | None] = {}
        new_chains: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        written: list[int] = []
        failed: Exception | None = None
        async with self._store.write_transaction() as conn:
            for p in pending:
                # A key in the cache is registered in `chains`; its value is the last provider_ts.
                if p.key in last:
                    registered = True
                elif p.key in self._last:
                    registered, last[p.key] = True, self._last[p.key]
                else:
                    params = {"k_symbol": p.key[0], "k_expiry": p.key[1], "k_provider": p.key[2]}
                    seed = (await conn.execute(_SEED, params)).one()
                    registered, last[p.key] = seed[0] is not None, seed[1]
                    if careful and registered:
                        found = await conn.scalar(_EXISTS, {**params, "k_ts": p.ts})
                        if found is not None:
                            continue
                if last[p.key] == p.ts:
                    continue
                if not registered:
                    new_chains.append(
                        {
                            "symbol": p.key[0],
                            "expiry": p.key[1],
                            "provider": p.key[2],
                            "first_ts": p.ts,
                        }
                    )
                prev = last[p.key]
                last[p.key] = p.ts if prev is None else max(p.ts, prev)
                rows.append(p.row)
                written.append(p.index)
            if new_chains:
                await conn.execute(_INSERT_CHAIN, new_chains)
            if rows:
                await conn.execute(_INSERT_SNAPSHOT, rows)
            due = [m for i in written if metrics_ and (m := metrics_[i]) is not None]
            if due or signals_:
                failed = await self._write_analytics(conn, due, signals_)
        self._last.update((k, v) for k, v in last.items() if v is not None)
        return written, failed

    async def _write_analytics(
        self, conn: AsyncConnection, due: Sequence[Metrics], signals_: Sequence[Signal]
    ) -> Exception | None:
        """The metrics and signals in a savepoint of the snapshots' transaction; their failure,
        rolled back to the savepoint, is returned (worded as `store.analytics.save` words it).

        The savepoint is plain SQL, not `begin_nested`, so that a success costs one statement
        (SAVEPOINT) rather than two: it is never RELEASEd, the transaction's COMMIT commits it
        with the rest (on SQLite and PostgreSQL alike). Each statement is a round trip to the
        driver's thread, which is what the one transaction per tick saves."""
        what = "Storing metrics" if not signals_ else "Storing signals" if not due else None
        await conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
        try:
            with self._store.errors(what or "Storing metrics and signals"):
                await write_analytics(conn, due, signals_)
        except Exception as err:
            # Raised, not caught: when the savepoint cannot be rolled back (the database has
            # already ended the transaction, the connection is gone) the whole tick is lost,
            # and COMMIT must not report the snapshots stored.
            await conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            return err
        return None

    # ------------------------------------------------------------------------------ reading

    def _to_snapshot(self, row: Row[*tuple[Any, ...]]) -> ChainSnapshot:
        try:
            strikes, ce, pe = decode_chain(row.data)
        except CodecError as err:
            what = f"{row.symbol} {row.expiry}"
            raise unreadable(row.id, what, row.provider_ts, self._store.url, err) from None
        return snapshot_from_row(row, strikes, ce, pe)

    def _to_batch(self, rows: Sequence[Row[*tuple[Any, ...]]]) -> SnapshotBatch:
        try:
            counts, columns = decode_many([r.data for r in rows], BATCH_COLUMNS)
        except CodecError:
            for r in rows:  # which one: its own decode raises the error naming it
                self._to_snapshot(r)
            raise
        heads = [snapshot_from_row(r, _NO_STRIKES, _NO_LEGS, _NO_LEGS) for r in rows]
        return SnapshotBatch(heads, counts, columns)

    async def latest(self, symbol: str, expiry: date | None = None) -> ChainSnapshot | None:
        """The newest snapshot of `symbol` (for `expiry`, or the nearest live expiry if None).

        With expiry None: among the expiries that have data on the trading day (IST) of the
        symbol's newest snapshot and had not expired before that day, the nearest one.
        Two index seeks: the newest provider_ts per registered expiry, then that row.
        """
        async with self._store.read_connection(f"Reading the latest {symbol} chain") as conn:
            # A purge may delete the chosen row between the two reads: look once more.
            for _ in range(2):
                if expiry is None:
                    heads = (await conn.execute(_HEADS, {"symbol": symbol})).all()
                else:
                    heads = (
                        await conn.execute(_HEADS_EXPIRY, {"symbol": symbol, "expiry": expiry})
                    ).all()
                head = _pick_head([h for h in heads if h.newest is not None])
                if head is None:
                    return None
                row = (
                    await conn.execute(
                        _ROW_AT,
                        {"symbol": symbol, "expiry": head.expiry, "ts": head.newest},
                    )
                ).one_or_none()
                if row is not None:
                    return self._to_snapshot(row)
        return None

    async def iterate(
        self,
        symbol: str,
        expiry: date | None,
        start: datetime,
        end: datetime,
        batch: int = 200,
    ) -> AsyncGenerator[ChainSnapshot, None]:
        """Snapshots of `symbol` (one expiry, or all if None) with start <= provider_ts < end,
        ascending by provider_ts. Reads `batch` rows at a time, each batch in its own short
        reads, so iterating slowly never holds the database.
        """
        async for rows in self._row_batches(symbol, expiry, start, end, batch):
            for row in rows:
                yield self._to_snapshot(row)

    async def iterate_batches(
        self,
        symbol: str,
        expiry: date | None,
        start: datetime,
        end: datetime,
        batch: int = 200,
    ) -> AsyncGenerator[SnapshotBatch, None]:
        """The snapshots `iterate` yields, `batch` at a time and decoded together: for readers
        of whole ranges (export), where decoding blob by blob would cost most of the time."""
        async for rows in self._row_batches(symbol, expiry, start, end, batch):
            yield self._to_batch(rows)

    async def iterate_price_batches(
        self,
        symbol: str,
        expiry: date,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        batch: int = 200,
        *,
        futures: bool = False,
    ) -> AsyncGenerator[PriceBatch, None]:
        """The snapshots of (symbol, expiry) with start <= provider_ts < end, `batch` at a time:
        their heads as plain columns and only the named chain columns, decoded together.
        `futures`: also each one's stored futures quote (its context column, parsed)."""
        row_columns = _PRICE_ROW_FUT if futures else _PRICE_ROW
        async for rows in self._row_batches(symbol, expiry, start, end, batch, row_columns):
            try:
                counts, cols = decode_many([r.data for r in rows], columns)
            except CodecError:
                for r in rows:  # which one: name it
                    try:
                        decode_chain(r.data)
                    except CodecError as err:
                        what = f"{r.symbol} {r.expiry}"
                        raise unreadable(r.id, what, r.provider_ts, self._store.url, err) from None
                raise
            yield PriceBatch(
                [r.provider_ts for r in rows],
                [r.fetched_at for r in rows],
                [r.provider for r in rows],
                [r.feed for r in rows],
                [math.nan if r.spot is None else float(r.spot) for r in rows],
                [int(r.lot_size) for r in rows],
                counts,
                cols,
                _futures_of(rows) if futures else None,
            )

    async def _row_batches(
        self,
        symbol: str,
        expiry: date | None,
        start: datetime,
        end: datetime,
        batch: int,
        row_columns: Sequence[Any] = _ROW_COLUMNS,
    ) -> AsyncGenerator[list[Row[*tuple[Any, ...]]], None]:
        lo, hi = to_us(start, "start"), to_us(end, "end")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        what = f"Reading {symbol} history"
        if expiry is not None:
            expiries = [expiry]
        else:
            async with self._store.read_connection(what) as conn:
                rows = await conn.execute(
                    select(chains.c.expiry).where(chains.c.symbol == symbol).distinct()
                )
                expiries = sorted(r[0] for r in rows)
        if not expiries:
            return
        cond = [snapshots.c.symbol == symbol, snapshots.c.provider_ts < hi]
        cond.append(
            snapshots.c.expiry == expiries[0]
            if len(expiries) == 1
            else snapshots.c.expiry.in_(expiries)
        )
        last: tuple[int, int] | None = None
        while True:
            where = [*cond, snapshots.c.provider_ts >= (lo if last is None else last[0])]
            if last is not None:
                where.append(or_(snapshots.c.provider_ts > last[0], snapshots.c.id > last[1]))
            # Keys first (index only), then the rows by primary key: sorting whole rows with
            # their blobs for every batch would read the whole range each time.
            keys_stmt = (
                select(snapshots.c.provider_ts, snapshots.c.id)
                .where(*where)
                .order_by(snapshots.c.provider_ts, snapshots.c.id)
                .limit(batch)
            )
            async with self._store.read_connection(what) as conn:
                keys = (await conn.execute(keys_stmt)).all()
                if not keys:
                    return
                ids = [k.id for k in keys]
                found = (
                    await conn.execute(select(*row_columns).where(snapshots.c.id.in_(ids)))
                ).all()
            # (A purge between the two reads can only make `found` shorter.)
            ordered = sorted(found, key=lambda r: (r.provider_ts, r.id))
            if ordered:
                yield ordered
            if len(keys) < batch:
                return
            last = (keys[-1].provider_ts, keys[-1].id)

    async def count(
        self,
        symbol: str | None = None,
        expiry: date | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> int:
        """How many snapshots match; every filter is optional ([start, end) on provider_ts)."""
        stmt = select(func.count()).select_from(snapshots)
        if symbol is not None:
            stmt = stmt.where(snapshots.c.symbol == symbol)
        if expiry is not None:
            stmt = stmt.where(snapshots.c.expiry == expiry)
        if start is not None:
            stmt = stmt.where(snapshots.c.provider_ts >= to_us(start, "start"))
        if end is not None:
            stmt = stmt.where(snapshots.c.provider_ts < to_us(end, "end"))
        async with self._store.read_connection("Counting snapshots") as conn:
            return int(await conn.scalar(stmt) or 0)

    async def strike_series(
        self,
        symbol: str,
        expiry: date,
        strike: float,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = ("ce_oi", "pe_oi"),
    ) -> StrikeSeries:
        """One strike's `fields` over [start, end), decoding only those columns of each blob."""
        fields = tuple(fields)
        bad = [f for f in fields if f not in SERIES_FIELDS]
        if bad:
            raise ValueError(f"unknown field(s) {bad}; choose from {', '.join(SERIES_FIELDS)}")
        lo, hi = to_us(start, "start"), to_us(end, "end")
        blob_fields = [f for f in fields if f != "spot"]
        cols = [snapshots.c.id, snapshots.c.provider_ts, snapshots.c.spot]
        if blob_fields:
            cols.append(snapshots.c.data)
        stmt = (
            select(*cols)
            .where(
                snapshots.c.symbol == symbol,
                snapshots.c.expiry == expiry,
                snapshots.c.provider_ts >= lo,
                snapshots.c.provider_ts < hi,
            )
            # The index's order: sorting the rows (blobs and all) by id as well would make
            # SQLite copy every one through a temporary B-tree; ties are put in id order below.
            .order_by(snapshots.c.provider_ts)
        )
        what = f"Reading the {symbol} {expiry} {strike:g} series"
        async with self._store.read_connection(what) as conn:
            found = (await conn.execute(stmt)).all()
        rows = sorted(found, key=lambda r: (r.provider_ts, r.id))
        target = float(strike)
        tol = 1e-9 * max(1.0, abs(target))
        # Only one cell of each field is decoded (and a deflated body is inflated only up to
        # the strikes and OI it stores first; a zstandard body decompresses whole for less):
        # measured, that beats decoding whole columns of every blob at once (decode_many),
        # which export uses, also with zstandard bodies (~37 vs ~47 ms a day, warm).
        only = frozenset(_COLUMN_ID[f] for f in ("strike", *blob_fields))
        # Strike lists rarely change within a day: find the strike's row once per distinct list.
        row_of: dict[bytes | None, int] = {}
        ts = np.empty(len(rows), dtype=np.int64)
        out = {f: np.full(len(rows), np.nan) for f in fields}
        for i, r in enumerate(rows):
            ts[i] = r.provider_ts
            if "spot" in out and r.spot is not None:
                out["spot"][i] = r.spot
            if not blob_fields:
                continue
            try:
                cb = ColumnBlob(r.data, only)
                skey = cb.segment_key("strike")
                idx = row_of.get(skey)
                if idx is None:
                    strikes = cb.column("strike")
                    j = int(np.searchsorted(strikes, target - tol))
                    idx = j if j < strikes.size and abs(strikes[j] - target) <= tol else -1
                    row_of[skey] = idx
                if idx >= 0:
                    for f in blob_fields:
                        out[f][i] = cb.value(f, idx)
            except CodecError as err:
                what = f"{symbol} {expiry}"
                raise unreadable(r.id, what, r.provider_ts, self._store.url, err) from None
        return StrikeSeries(symbol, expiry, target, ts.view("datetime64[us]"), out)

    async def history(self) -> list[HistoryRow]:
        """Per (symbol, expiry, trading date in Asia/Kolkata, provider): count, first, last ts."""
        async with self._store.read_connection("Summarising the history") as conn:
            rows = (await conn.execute(_HISTORY)).all()
        return [
            HistoryRow(
                symbol=r[0],
                expiry=r[1],
                trading_date=date(1970, 1, 1) + timedelta(days=int(r[2])),
                provider=r[3],
                count=int(r[4]),
                first_ts=from_us(r[5]),
                last_ts=from_us(r[6]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------ upkeep

    async def purge(self, older_than: datetime) -> int:
        """Delete snapshots with provider_ts < older_than; returns how many were deleted.

        Deletes in small transactions so a running poller's writes interleave with the purge.
        """
        cutoff = to_us(older_than, "older_than")
        doomed = select(snapshots.c.id).where(snapshots.c.provider_ts < cutoff).limit(_PURGE_BATCH)
        stmt = delete(snapshots).where(snapshots.c.id.in_(doomed))
        total = 0
        with self._store.errors("Purging old snapshots"):
            try:
                while True:
                    # One batch per transaction: a poller waiting to write goes in between.
                    async with self._store.write_transaction() as conn:
                        deleted = (await conn.execute(stmt)).rowcount
                    total += deleted
                    if deleted < _PURGE_BATCH:
                        break
                if total:
                    async with self._store.write_transaction() as conn:
                        # Unregister chains that have no snapshot left.
                        await conn.execute(_DELETE_EMPTY_CHAINS)
                    await self._store.reclaim_space()
            finally:
                self._last.clear()
        return total


def snapshot_from_row(
    row: Row[*tuple[Any, ...]], strikes: np.ndarray, ce: Legs, pe: Legs
) -> ChainSnapshot:
    """A stored row's snapshot around its decoded columns (the history reads and replay's)."""
    return ChainSnapshot(
        symbol=row.symbol,
        expiry=row.expiry,
        provider=row.provider,
        feed=Feed(row.feed),
        provider_ts=from_us(row.provider_ts),
        fetched_at=from_us(row.fetched_at),
        spot=math.nan if row.spot is None else row.spot,
        lot_size=row.lot_size,
        strikes=strikes,
        ce=ce,
        pe=pe,
        meta=json.loads(row.meta) if row.meta else {},
        prev_close=math.nan if row.prev_close is None else row.prev_close,
        **context_fields(row.context),
    )
