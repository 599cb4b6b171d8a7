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
import logging
import math
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import Row, bindparam, delete, exc, exists, func, insert, or_, select

from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs, Metrics, Signal
from optterm.store.analytics import write_analytics
from optterm.store.blockcodec import HEAD_COLUMNS as IN_BLOCK_HEADS
from optterm.store.blockcodec import decode_block_columns, encode_block, head_length
from optterm.store.blocks import BlockCache, compaction_members, gather_columns, whole_block
from optterm.store.codec import COLUMNS, ColumnBlob, decode_chain, encode_chain
from optterm.store.context import context_fields, context_json
from optterm.store.errors import CodecError, StoreError
from optterm.store.schema import chains, snapshot_blocks, snapshots
from optterm.store.timecodec import from_us, ist_date, ist_day_number, to_us

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from optterm.store.store import Store

__all__ = [
    "HEAD_COLUMNS",
    "ROW_COLUMNS",
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

log = logging.getLogger(__name__)

_PURGE_BATCH: Final = 2000
# Snapshots per time block (store/blockcodec.py): 16 minutes of a chain at one poll per 15 s.
# Larger blocks gain little (64 -> 128: -6 % bytes) and cost more to rewrite and to read back.
BLOCK_SIZE: Final = 64
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
    snapshots.c.block_id,
    snapshots.c.symbol,
    snapshots.c.expiry,
    snapshots.c.provider,
    snapshots.c.feed,
    snapshots.c.provider_ts,
    snapshots.c.fetched_at,
)
ROW_COLUMNS: Final = (
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
    snapshots.c.block_id,
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
_UNBLOCKED = (
    snapshots.c.symbol == bindparam("k_symbol"),
    snapshots.c.expiry == bindparam("k_expiry"),
    snapshots.c.provider == bindparam("k_provider"),
    snapshots.c.block_id.is_(None),
)
_COUNT_UNBLOCKED = select(func.count()).select_from(snapshots).where(*_UNBLOCKED)
_OLDEST_UNBLOCKED = (
    select(snapshots)
    .where(*_UNBLOCKED)
    .order_by(snapshots.c.provider_ts, snapshots.c.id)
    .limit(bindparam("n"))
)
_INSERT_BLOCK = insert(snapshot_blocks).returning(snapshot_blocks.c.id)
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
    select(*ROW_COLUMNS)
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


def _futures_of(contexts: Sequence[str | None]) -> FuturesColumns:
    out = FuturesColumns([], [], [])
    for text in contexts:
        ctx = context_fields(text)
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


class _Moved(Exception):
    """Rows chosen for a block changed before it was written: the block is not stored."""

    def __str__(self) -> str:
        return "its rows changed meanwhile"


def _key_params(key: tuple[str, date, str]) -> dict[str, Any]:
    return {"k_symbol": key[0], "k_expiry": key[1], "k_provider": key[2]}


def _unreadable_blob(data: bytes) -> bool:
    try:
        decode_chain(data)
    except CodecError:
        return True
    return False


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
        # Snapshots per time block; 0 keeps every snapshot in its own row (tests compare both).
        self.block_size = BLOCK_SIZE
        # Per chain, how many of its rows are not in a block yet (seeded from the database on
        # first use, updated after COMMIT); chains whose rows cannot be read are left alone.
        self._unblocked: dict[tuple[str, date, str], int] = {}
        self._stuck: set[tuple[str, date, str]] = set()
        self._written: set[tuple[str, date, str]] = set()  # chains written since `compact`
        self._blocks = BlockCache()

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
        failed: Exception | None = None
        async with self._lock:
            for attempt in (1, 2):
                try:
                    with self._store.errors(what):
                        written, failed = await self._write_batch(
                            pending, metrics_, signals_, careful=attempt == 2
                        )
                        for i in written:
                            stored[i] = True
                        break
                except StoreError as err:
                    if not isinstance(err.__cause__, exc.IntegrityError) or attempt == 2:
                        raise
                    # Another process wrote these keys behind our cache: re-seed and re-check.
                    for p in pending:
                        self._last.pop(p.key, None)
            self._written.update(p.key for p in pending)
        return stored, failed

    async def compact(self) -> bool:
        """Move the oldest `block_size` rows of one chain written since into a time block, if
        it has more than that many outside one (the newest always stays: the latest chain is
        one row); True when a block was written.

        The poller calls this between ticks, in the pause, so no tick waits for it. One chain
        per call: chains that all became due together are done over the following pauses. A
        failure costs nothing but the saving: the rows stay as they are and read as they are.
        """
        if self.block_size <= 0 or not self._written:
            return False
        async with self._lock:
            return await self._compact_next(self._written - self._stuck)

    async def _compact_next(self, keys: set[tuple[str, date, str]]) -> bool:
        target = None
        try:
            for key in sorted(k for k in keys if k not in self._unblocked):
                async with self._store.read_connection("Counting rows outside blocks") as conn:
                    self._unblocked[key] = int(
                        await conn.scalar(_COUNT_UNBLOCKED, _key_params(key)) or 0
                    )
            due = [k for k in keys if self._unblocked.get(k, 0) > self.block_size]
            # Chains not due have nothing to do until they are written again.
            self._written -= keys - set(due)
            if not due:
                return False
            target = max(due, key=lambda k: (self._unblocked[k], k))
            await self._compact(target)
            if self._unblocked[target] <= self.block_size:
                self._written.discard(target)
            return True
        except CodecError as err:
            log.warning("leaving a chain's history out of time blocks: %s", err)
            if target is not None:
                self._stuck.add(target)
        except (StoreError, _Moved) as err:
            log.warning("could not move history into a time block (will retry): %s", err)
            self._unblocked.clear()
        return False

    async def _compact(self, key: tuple[str, date, str]) -> None:
        n = self.block_size
        async with self._store.read_connection(f"Reading {key[0]} {key[1]} to block") as conn:
            rows = (await conn.execute(_OLDEST_UNBLOCKED, {**_key_params(key), "n": n})).all()
        if len(rows) < n:
            self._unblocked[key] = len(rows)
            return
        try:
            blob = encode_block(compaction_members(rows))
        except CodecError as err:
            bad = next(r for r in rows if _unreadable_blob(r.data))
            what = f"{key[0]} {key[1]}"
            raise unreadable(bad.id, what, bad.provider_ts, self._store.url, err) from None
        ids = [r.id for r in rows]
        block = {
            "symbol": key[0],
            "expiry": key[1],
            "provider": key[2],
            "first_ts": min(r.provider_ts for r in rows),
            "last_ts": max(r.provider_ts for r in rows),
            "members": len(rows),
            "head": blob[: head_length(blob)],
            "data": blob[head_length(blob) :],
        }
        async with self._store.write_transaction(f"Storing a {key[0]} {key[1]} block") as conn:
            block_id = await conn.scalar(_INSERT_BLOCK, block)
            # Deleted and inserted again (same ids), not updated: SQLite frees and merges the
            # pages a delete leaves nearly empty, never those an update shrinks, so rows
            # shrunk in place would keep their old pages forever.
            moved = await conn.execute(
                delete(snapshots).where(snapshots.c.id.in_(ids), snapshots.c.block_id.is_(None))
            )
            if moved.rowcount != len(ids):
                # Another writer moved or deleted some of them meanwhile: undo, count again.
                raise _Moved
            small = {"block_id": block_id, "data": b"", "meta": None, "context": None}
            await conn.execute(_INSERT_SNAPSHOT, [{**r._asdict(), **small} for r in rows])
        self._unblocked[key] -= len(ids)

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
        stored = set(written)
        for p in pending:
            if p.index in stored and p.key in self._unblocked:
                self._unblocked[p.key] += 1
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

    async def _load(self, rows: Sequence[Row[*tuple[Any, ...]]]) -> None:
        """Decode the blocks `rows` point at (kept for the next reads); a damaged block is
        reported as its first member row that was asked for."""
        try:
            await self._blocks.load(self._store, rows)
        except CodecError as err:
            bad = next(r for r in rows if r.block_id is not None)
            what = f"{bad.symbol} {bad.expiry}"
            raise unreadable(bad.id, what, bad.provider_ts, self._store.url, err) from None

    def _to_snapshot(self, row: Row[*tuple[Any, ...]]) -> ChainSnapshot | None:
        """The row's snapshot (its block loaded first); None if its block was purged."""
        try:
            if row.block_id is not None:
                got = self._blocks.payload(row)
                if got is None:
                    return None
                return snapshot_from_row(
                    row, got.strikes, got.ce, got.pe, texts=(got.meta, got.context)
                )
            strikes, ce, pe = decode_chain(row.data)
        except CodecError as err:
            what = f"{row.symbol} {row.expiry}"
            raise unreadable(row.id, what, row.provider_ts, self._store.url, err) from None
        return snapshot_from_row(row, strikes, ce, pe)

    async def decode_rows(
        self, rows: Sequence[Row[*tuple[Any, ...]]]
    ) -> list[ChainSnapshot | None]:
        """Rows read with `HEAD_COLUMNS` + spot, lot_size, meta, data, prev_close and context
        (these reads, replay's and the daily summary's) as snapshots, decoded together (one
        numpy pass per byte plane for all the blobs; blocks decoded once); None for a row
        whose block was purged meanwhile."""
        await self._load(rows)
        if len(rows) == 1:
            return [self._to_snapshot(rows[0])]
        kept, counts, cols = self._gather(rows, BATCH_COLUMNS)
        out: dict[int, ChainSnapshot] = {}
        lo = 0
        for row, n in zip(kept, counts.tolist(), strict=True):
            part = slice(lo, lo + n)
            lo += n
            ce = Legs(*(cols[f"ce_{f}"][part] for f in LEG_FIELDS))
            pe = Legs(*(cols[f"pe_{f}"][part] for f in LEG_FIELDS))
            texts = None if row.block_id is None else self._blocks.texts(row)
            out[row.id] = snapshot_from_row(row, cols["strike"][part], ce, pe, texts=texts)
        return [out.get(r.id) for r in rows]

    def _gather(
        self, rows: Sequence[Row[*tuple[Any, ...]]], names: Sequence[str]
    ) -> tuple[list[Row[*tuple[Any, ...]]], np.ndarray, dict[str, np.ndarray]]:
        try:
            return gather_columns(rows, names, self._blocks)
        except CodecError as err:
            # Which one: a blob's own decode says; else a block that does not hold its rows.
            # Only the blob is decoded here: price rows carry no meta to make snapshots of.
            for r in rows:
                if r.block_id is None:
                    try:
                        decode_chain(r.data)
                    except CodecError as own:
                        what = f"{r.symbol} {r.expiry}"
                        url = self._store.url
                        raise unreadable(r.id, what, r.provider_ts, url, own) from None
            bad = next((r for r in rows if r.block_id is not None), rows[0])
            what = f"{bad.symbol} {bad.expiry}"
            raise unreadable(bad.id, what, bad.provider_ts, self._store.url, err) from None

    def _head(self, row: Row[*tuple[Any, ...]]) -> ChainSnapshot:
        texts = None
        if row.block_id is not None:
            texts = self._blocks.texts(row)
        return snapshot_from_row(row, _NO_STRIKES, _NO_LEGS, _NO_LEGS, texts=texts)

    async def latest(self, symbol: str, expiry: date | None = None) -> ChainSnapshot | None:
        """The newest snapshot of `symbol` (for `expiry`, or the nearest live expiry if None).

        With expiry None: among the expiries that have data on the trading day (IST) of the
        symbol's newest snapshot and had not expired before that day, the nearest one.
        Two index seeks: the newest provider_ts per registered expiry, then that row.
        """
        what = f"Reading the latest {symbol} chain"
        # A purge may delete the chosen row between the reads: look once more.
        for _ in range(2):
            async with self._store.read_connection(what) as conn:
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
                await self._load([row])
                snap = self._to_snapshot(row)
                if snap is not None:
                    return snap
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
            for snap in await self.decode_rows(rows):
                if snap is not None:
                    yield snap

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
            await self._load(rows)
            kept, counts, columns = self._gather(rows, BATCH_COLUMNS)
            if kept:
                yield SnapshotBatch([self._head(r) for r in kept], counts, columns)

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
            await self._load(rows)
            kept, counts, cols = self._gather(rows, columns)
            if not kept:
                continue
            yield PriceBatch(
                [r.provider_ts for r in kept],
                [r.fetched_at for r in kept],
                [r.provider for r in kept],
                [r.feed for r in kept],
                [math.nan if r.spot is None else float(r.spot) for r in kept],
                [int(r.lot_size) for r in kept],
                counts,
                cols,
                _futures_of([self._context(r) for r in kept]) if futures else None,
            )

    def _context(self, row: Row[*tuple[Any, ...]]) -> str | None:
        return row.context if row.block_id is None else self._blocks.texts(row)[1]

    async def _row_batches(
        self,
        symbol: str,
        expiry: date | None,
        start: datetime,
        end: datetime,
        batch: int,
        row_columns: Sequence[Any] = ROW_COLUMNS,
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
                keys = list((await conn.execute(keys_stmt)).all())
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
        c = snapshots.c
        in_range = (c.symbol == symbol, c.expiry == expiry, c.provider_ts >= lo, c.provider_ts < hi)
        # The series' points from the unique index alone (no table pages: a chain's entries
        # are contiguous there, its rows are not); the rows still holding their own blob from
        # the partial index; the rest from the blocks that overlap the range.
        keys_stmt = select(c.id, c.provider_ts).where(*in_range)
        hot_cols = [c.id, c.spot, *([c.data] if blob_fields else [])]
        hot_stmt = (
            select(*hot_cols)
            .where(*in_range, c.block_id.is_(None))
            .with_hint(snapshots, "INDEXED BY ix_snapshots_unblocked", "sqlite")
        )
        b = snapshot_blocks.c
        # OI (the history screen's series) is in a block's head: its other pages stay unread.
        parts = [b.head] if set(blob_fields) <= set(IN_BLOCK_HEADS) else [b.head, b.data]
        blocks_stmt = select(b.id, b.first_ts, b.last_ts, b.members, *parts).where(
            b.symbol == symbol, b.expiry == expiry, b.last_ts >= lo, b.first_ts < hi
        )
        what = f"Reading the {symbol} {expiry} {strike:g} series"
        async with self._store.read_connection(what) as conn:
            keys = list((await conn.execute(keys_stmt)).all())
            hot = (await conn.execute(hot_stmt)).all()
            blocks = (await conn.execute(blocks_stmt)).all() if len(hot) < len(keys) else []
        keys.sort(key=lambda k: (k.provider_ts, k.id))
        pos = {k.id: i for i, k in enumerate(keys)}
        ts = np.fromiter((k.provider_ts for k in keys), dtype=np.int64, count=len(keys))
        out = {f: np.full(len(keys), np.nan) for f in fields}
        target = float(strike)
        tol = 1e-9 * max(1.0, abs(target))
        # Rows with their own blob: only one cell of each field is decoded (measured, that
        # beats decoding whole columns of every blob at once).
        only = frozenset(_COLUMN_ID[f] for f in ("strike", *blob_fields))
        # Strike lists rarely change within a day: find the strike's row once per distinct list.
        row_of: dict[bytes | None, int] = {}
        for r in hot:
            i = pos.get(r.id)
            if i is None:  # stored after the keys were read
                continue
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
                raise unreadable(r.id, what, keys[i].provider_ts, self._store.url, err) from None
        # Rows in a block: the strike's cells of each block, for all its members at once.
        for block_id, first_ts, last_ts, members_n, *part in blocks:
            try:
                blob = part[0] if len(part) == 1 else whole_block(*part)
                got = decode_block_columns(blob, blob_fields, strike=target)
                # A block row holding another block's (intact) payload would fill the wrong
                # points: its members must be the ones its row says.
                times = got.provider_ts
                if times.size != members_n or (times[0], times[-1]) != (first_ts, last_ts):
                    raise CodecError("snapshot block does not hold its own snapshots")
            except CodecError as err:
                raise await self._block_unreadable(block_id, f"{symbol} {expiry}", err) from None
            at = [(m, pos[s]) for m, s in enumerate(got.ids.tolist()) if s in pos]
            if not at:
                continue
            members, points = (np.array(x) for x in zip(*at, strict=True))
            if "spot" in out:
                out["spot"][points] = got.spot[members]
            if got.union.size:
                for f in blob_fields:
                    out[f][points] = got.values[f][members, 0]
        return StrikeSeries(symbol, expiry, target, ts.view("datetime64[us]"), out)

    async def _block_unreadable(self, block_id: int, what: str, err: CodecError) -> CodecError:
        """The error for a block that does not decode, naming its first member snapshot."""
        c = snapshots.c
        first = (
            select(c.id, c.provider_ts)
            .where(c.block_id == block_id)
            .order_by(c.provider_ts, c.id)
            .limit(1)
        )
        async with self._store.read_connection(f"Reading {what}") as conn:
            row = (await conn.execute(first)).one_or_none()
        if row is not None:
            return unreadable(row.id, what, row.provider_ts, self._store.url, err)
        return CodecError(
            f"Snapshot block {block_id} ({what}) in {self._store.url} cannot be read: {err}. "
            "Delete the snapshots in it or restore the database from a backup."
        )

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
                        # Blocks whose every member was older (they were just deleted).
                        await conn.execute(
                            delete(snapshot_blocks).where(snapshot_blocks.c.last_ts < cutoff)
                        )
                        # Unregister chains that have no snapshot left.
                        await conn.execute(_DELETE_EMPTY_CHAINS)
                    await self._store.reclaim_space()
            finally:
                self._last.clear()
                self._unblocked.clear()
                self._blocks.clear()
        return total


def snapshot_from_row(
    row: Row[*tuple[Any, ...]],
    strikes: np.ndarray,
    ce: Legs,
    pe: Legs,
    *,
    texts: tuple[str | None, str | None] | None = None,
) -> ChainSnapshot:
    """A stored row's snapshot around its decoded columns (the history reads and replay's);
    `texts`: its meta and context when they are not the row's own (a member of a block)."""
    meta, context = (row.meta, row.context) if texts is None else texts
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
        meta=json.loads(meta) if meta else {},
        prev_close=math.nan if row.prev_close is None else row.prev_close,
        **context_fields(context),
    )
