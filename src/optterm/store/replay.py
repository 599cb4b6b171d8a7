"""Reads for replaying stored chains: "the snapshot at or before T" and a decoded window.

`snapshot_at` is one seek on the (symbol, expiry, provider_ts) index and one row: a jump to any
time costs one decode, however far into the day. `SnapshotWindow` holds a chain's time axis for
a range (index-only: times, ids and providers, no blobs) and decodes each snapshot once while
the cursor stays near it: rows are read in small batches in the direction of travel and kept
raw, decoded on first use, and evicted only once they are more than `radius` steps away. So
stepping back and forth never decodes twice, and a jump reads only what it shows.

Nothing here writes. Rows become ChainSnapshots through `store.snapshots.decode_rows`, which
reads a row's blob (store/codec.py) or its time block (store/blocks.py).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, exists, func, select

from optterm.model import ChainSnapshot
from optterm.store.errors import CodecError
from optterm.store.schema import chains, snapshots
from optterm.store.snapshots import ROW_COLUMNS
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "ChainTimes",
    "SnapshotWindow",
    "last_before",
    "snapshot_at",
    "snapshot_times",
    "stored_chains",
    "stored_sources",
]

# Rows read per batch while stepping: a few milliseconds of raw blobs, never decoded ahead
# (fewer than the radius, so a batch is never evicted before it is used).
_BATCH: Final = 48


async def snapshot_at(
    store: Store, symbol: str, expiry: date, at: datetime, provider: str | None = None
) -> ChainSnapshot | None:
    """The newest stored snapshot of (symbol, expiry[, provider]) with provider_ts <= `at`;
    None when there is none. One index seek and one row."""
    c = snapshots.c
    where = [c.symbol == symbol, c.expiry == expiry, c.provider_ts <= to_us(at, "at")]
    if provider is not None:
        where.append(c.provider == provider)
    stmt = select(*ROW_COLUMNS).where(*where).order_by(c.provider_ts.desc(), c.id.desc()).limit(1)
    async with store.read_connection(f"Reading {symbol} {expiry} as of {at:%H:%M}") as conn:
        row = (await conn.execute(stmt)).one_or_none()
    return None if row is None else (await store.snapshots.decode_rows([row]))[0]


async def stored_chains(store: Store, start: datetime, end: datetime) -> list[tuple[str, date]]:
    """The (symbol, expiry) with a snapshot in [start, end): one index seek per registered
    chain (the small `chains` table), never a scan of the history."""
    c, k = snapshots.c, chains.c
    lo, hi = to_us(start, "start"), to_us(end, "end")
    any_in_range = exists().where(
        c.symbol == k.symbol,
        c.expiry == k.expiry,
        c.provider_ts >= lo,
        c.provider_ts < hi,
    )
    stmt = select(k.symbol, k.expiry).where(any_in_range).distinct()
    async with store.read_connection("Listing the chains stored that day") as conn:
        rows = (await conn.execute(stmt)).all()
    return sorted((r[0], r[1]) for r in rows)


async def stored_sources(
    store: Store, symbol: str, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """(provider, feed, snapshots) of `symbol`'s snapshots with start <= provider_ts < end: what
    a backtest over the span would read, known before reading it (the blobs are not touched)."""
    c = snapshots.c
    stmt = (
        select(c.provider, c.feed, func.count())
        .where(c.symbol == symbol, c.provider_ts >= to_us(start, "start"))
        .where(c.provider_ts < to_us(end, "end"))
        .group_by(c.provider, c.feed)
    )
    async with store.read_connection(f"Reading what {symbol} data is stored") as conn:
        rows = (await conn.execute(stmt)).all()
    return sorted((str(r[0]), str(r[1]), int(r[2])) for r in rows)


async def last_before(store: Store, symbol: str, expiry: date, before: datetime) -> datetime | None:
    """The provider time of the newest snapshot of (symbol, expiry) before `before`."""
    c = snapshots.c
    stmt = (
        select(c.provider_ts)
        .where(c.symbol == symbol, c.expiry == expiry, c.provider_ts < to_us(before, "before"))
        .order_by(c.provider_ts.desc())
        .limit(1)
    )
    async with store.read_connection(f"Reading {symbol} {expiry} history") as conn:
        us = await conn.scalar(stmt)
    return None if us is None else from_us(us)


@dataclass(frozen=True, slots=True, eq=False)
class ChainTimes:
    """One chain's stored snapshots over a range, in order: provider times (epoch µs), row ids,
    providers and when each was fetched (epoch µs: the clock the live engine had)."""

    symbol: str
    expiry: date
    ts: list[int]
    ids: list[int]
    providers: list[str]
    fetched: list[int]

    def __len__(self) -> int:
        return len(self.ts)

    def index_at(self, us: int) -> int:
        """The index of the newest snapshot at or before `us` (-1: none yet)."""
        return bisect.bisect_right(self.ts, us) - 1


async def snapshot_times(
    store: Store,
    symbol: str,
    expiry: date,
    start: datetime,
    end: datetime,
    provider: str | None = None,
) -> ChainTimes:
    """The time axis of (symbol, expiry[, provider]) for start <= provider_ts < end: read from
    the index and the row headers only, never a blob."""
    c = snapshots.c
    where = [
        c.symbol == symbol,
        c.expiry == expiry,
        c.provider_ts >= to_us(start, "start"),
        c.provider_ts < to_us(end, "end"),
    ]
    if provider is not None:
        where.append(c.provider == provider)
    stmt = (
        select(c.provider_ts, c.id, c.provider, c.fetched_at)
        .where(*where)
        .order_by(c.provider_ts, c.id)
    )
    async with store.read_connection(f"Reading the {symbol} {expiry} timeline") as conn:
        rows = (await conn.execute(stmt)).all()
    return ChainTimes(
        symbol,
        expiry,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


class SnapshotWindow:
    """A chain's snapshots over a range, decoded once each while the cursor is near them.

    `times` is the axis (see ChainTimes); `get(i)` the i-th snapshot. Decoded snapshots within
    `radius` steps of the last one asked for are kept; raw rows are read `_BATCH` at a time
    ahead in the direction of travel.

    `ahead` (0: off) is for playing through a range in order as fast as possible (a headless
    replay): a read going forward then takes the next `ahead` rows and decodes them all at once
    (`_decode_rows`), and what lies ahead of the cursor is kept until the cursor passes it. A
    stepping viewer leaves it off, so no step pays for decoding what it may never show.
    """

    def __init__(self, store: Store, times: ChainTimes, radius: int = 50) -> None:
        self.store = store
        self.times = times
        self.radius = radius
        self.ahead = 0
        self._raw: dict[int, Row[*tuple[Any, ...]]] = {}
        self._decoded: OrderedDict[int, ChainSnapshot] = OrderedDict()
        self._last = -1
        self._evicted_at = -1
        self.decodes = 0  # how many blobs were decoded (tests check nothing is decoded twice)
        self.reads = 0  # how many batches were read

    @classmethod
    async def open(
        cls,
        store: Store,
        symbol: str,
        expiry: date,
        start: datetime,
        end: datetime,
        provider: str | None = None,
        radius: int = 50,
    ) -> SnapshotWindow:
        return cls(store, await snapshot_times(store, symbol, expiry, start, end, provider), radius)

    def __len__(self) -> int:
        return len(self.times)

    def index_at(self, at: datetime) -> int:
        return self.times.index_at(to_us(at, "at"))

    async def at(self, when: datetime) -> ChainSnapshot | None:
        """The snapshot in force at `when` (the newest at or before it); None before the first."""
        i = self.index_at(when)
        return None if i < 0 else await self.get(i)

    async def get(self, i: int) -> ChainSnapshot:
        n = len(self.times)
        if not 0 <= i < n:
            raise IndexError(f"snapshot {i} of {n}")
        forward = i >= self._last
        self._last = i
        snap = self._decoded.get(i)
        if snap is not None:
            self._decoded.move_to_end(i)
            self._evict(i)
            return snap
        if self.ahead and forward:
            await self._read_ahead(i)
            self._evict(i)
            return self._decoded[i]
        if i not in self._raw:
            await self._read(i, forward)
        row = self._raw.pop(i)
        snap = (await self.store.snapshots.decode_rows([row]))[0]
        if snap is None:  # its block was purged after the row was read
            raise self._purged(i)
        self.decodes += 1
        self._decoded[i] = snap
        self._evict(i)
        return snap

    async def _rows(self, span: Sequence[int]) -> dict[int, Row[*tuple[Any, ...]]]:
        """The raw rows of the axis points `span`, by point, in one read."""
        ids = {self.times.ids[j]: j for j in span}
        what = f"Reading {self.times.symbol} {self.times.expiry} snapshots"
        async with self.store.read_connection(what) as conn:
            rows = (
                await conn.execute(select(*ROW_COLUMNS).where(snapshots.c.id.in_(list(ids))))
            ).all()
        self.reads += 1
        return {ids[row.id]: row for row in rows}

    def _purged(self, i: int) -> CodecError:
        return CodecError(
            f"Snapshot {self.times.ids[i]} of {self.times.symbol} {self.times.expiry} is no "
            "longer stored (retention purged it); reopen the replay."
        )

    async def _read(self, i: int, forward: bool) -> None:
        """Raw rows for `i` and the next few in the direction of travel (not yet held)."""
        span: Sequence[int] = (
            range(i, min(i + _BATCH, len(self.times)))
            if forward
            else range(i, max(i - _BATCH, -1), -1)
        )
        want = [j for j in span if j not in self._decoded and j not in self._raw]
        self._raw.update(await self._rows(want))
        if i not in self._raw:  # purged between reading the axis and now
            raise self._purged(i)

    async def _read_ahead(self, i: int) -> None:
        """`i` and the next `ahead` points not yet decoded, read and decoded together."""
        span = range(i, min(i + self.ahead, len(self.times)))
        want = [j for j in span if j not in self._decoded]
        got = await self._rows([j for j in want if j not in self._raw])
        got.update((j, self._raw.pop(j)) for j in want if j in self._raw)
        if i not in got:  # purged between reading the axis and now
            raise self._purged(i)
        order = sorted(got)
        snaps = await self.store.snapshots.decode_rows([got[j] for j in order])
        if snaps[0] is None:  # its block was purged after the row was read
            raise self._purged(i)
        self._decoded.update((j, snap) for j, snap in zip(order, snaps, strict=True) if snap)
        self.decodes += len(order)

    def _evict(self, i: int) -> None:
        """Drop what is more than `radius` points away (ahead of the cursor: more than
        `ahead`, when that is further). Stepping one point at a time, the held points are only
        looked over once there are more than that span holds: not at every step."""
        lo, hi = i - self.radius, i + max(self.radius, self.ahead)
        moved, self._evicted_at = abs(i - self._evicted_at) > 1, i
        for held in (self._decoded, self._raw):
            if held and (moved or len(held) > hi - lo + 1):
                for j in [j for j in held if not lo <= j <= hi]:
                    del held[j]
