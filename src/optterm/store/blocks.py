"""Snapshot rows whose chain lives in a time block (schema.snapshot_blocks, store/blockcodec.py).

A row with a `block_id` has an empty `data` and no meta or context of its own: they are a member
of that block. Readers fetch their rows as always, then ask a `BlockCache` for the payload of
those rows: blocks are fetched in one statement, decoded once and kept (a block never changes
once written, and its id is never reused), so stepping through a day decodes each block once.

`compaction_members` is the other direction: the rows a block is made of, as members.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import Row, select

from optterm.model import LEG_FIELDS, Legs
from optterm.store.blockcodec import BlockColumns, Member, decode_block_columns
from optterm.store.codec import decode_chain, decode_many
from optterm.store.errors import CodecError
from optterm.store.schema import snapshot_blocks

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["BlockCache", "Payload", "compaction_members", "gather_columns"]

# Decoded blocks kept: one per chain of a watch list and then some (each is ~1 MB of columns).
_KEEP: Final = 12
_LEG_COLUMNS: Final = tuple(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS)


@dataclass(frozen=True, slots=True)
class Payload:
    """What a block holds of one member row: its strikes, legs, meta and context text."""

    strikes: np.ndarray
    ce: Legs
    pe: Legs
    meta: str | None
    context: str | None


class BlockCache:
    """Decoded blocks by id, the most recently used kept."""

    def __init__(self, keep: int = _KEEP) -> None:
        self._keep = keep
        self._blocks: OrderedDict[int, tuple[BlockColumns, dict[int, int]]] = OrderedDict()

    def clear(self) -> None:
        self._blocks.clear()

    async def load(self, store: Store, rows: Iterable[Row[*tuple[Any, ...]]]) -> None:
        """Fetch and decode the blocks `rows` point at that are not kept yet (one statement).
        A block that fails to decode raises CodecError; one deleted meanwhile (a purge) is
        simply absent: its rows were deleted with it."""
        needed = {r.block_id for r in rows if r.block_id is not None}
        for block_id in needed & set(self._blocks):
            self._blocks.move_to_end(block_id)  # kept ahead of what the eviction below drops
        wanted = needed - set(self._blocks)
        if not wanted:
            return
        stmt = select(snapshot_blocks.c.id, snapshot_blocks.c.data).where(
            snapshot_blocks.c.id.in_(sorted(wanted))
        )
        async with store.read_connection("Reading stored blocks") as conn:
            found = (await conn.execute(stmt)).all()
        for block_id, data in found:
            cols = decode_block_columns(data)
            self._blocks[block_id] = (cols, {snap_id: i for i, snap_id in enumerate(cols.ids)})
            self._blocks.move_to_end(block_id)
        while len(self._blocks) > max(self._keep, len(needed)):
            self._blocks.popitem(last=False)

    def _member(self, row: Row[*tuple[Any, ...]]) -> tuple[BlockColumns, int] | None:
        entry = self._blocks.get(row.block_id)
        if entry is None:
            return None
        cols, index = entry
        i = index.get(row.id)
        if i is None:
            raise CodecError(f"snapshot block {row.block_id} does not hold snapshot {row.id}")
        return cols, i

    def payload(self, row: Row[*tuple[Any, ...]]) -> Payload | None:
        """The member `row` is of a loaded block; None when that block is gone (purged)."""
        found = self._member(row)
        if found is None:
            return None
        cols, i = found
        keep = cols.present[i]
        legs = {
            side: Legs(**{f: cols.values[f"{side}_{f}"][i, keep] for f in LEG_FIELDS})
            for side in ("ce", "pe")
        }
        meta, context = _texts(cols.rows[i])
        return Payload(cols.union[keep], legs["ce"], legs["pe"], meta, context)

    def columns(
        self, row: Row[*tuple[Any, ...]], names: Sequence[str]
    ) -> tuple[int, dict[str, np.ndarray]] | None:
        """`row`'s strikes count and named columns ("strike" and leg columns)."""
        found = self._member(row)
        if found is None:
            return None
        cols, i = found
        keep = cols.present[i]
        out = {
            name: cols.union[keep] if name == "strike" else cols.values[name][i, keep]
            for name in names
        }
        return int(keep.sum()), out

    def texts(self, row: Row[*tuple[Any, ...]]) -> tuple[str | None, str | None]:
        """`row`'s meta and context as its block stores them."""
        found = self._member(row)
        return (None, None) if found is None else _texts(found[0].rows[found[1]])


def _texts(doc: object) -> tuple[str | None, str | None]:
    meta = doc[7] if isinstance(doc, list) and len(doc) == 9 else None
    context = doc[8] if isinstance(doc, list) and len(doc) == 9 else None
    return (
        meta if isinstance(meta, str) else None,
        context if isinstance(context, str) else None,
    )


def gather_columns(
    rows: Sequence[Row[*tuple[Any, ...]]], names: Sequence[str], cache: BlockCache
) -> tuple[list[Row[*tuple[Any, ...]]], np.ndarray, dict[str, np.ndarray]]:
    """The named columns of every row back to back (as codec.decode_many gives them), rows in a
    blob decoded together, rows in a block taken from it. Returns the rows kept (a row whose
    block was purged meanwhile is dropped), their strike counts and the columns."""
    names = list(names)
    blob_rows = [r for r in rows if r.block_id is None]
    pieces: dict[int, tuple[int, Mapping[str, np.ndarray]]] = {}
    if blob_rows:
        counts, cols = decode_many([r.data for r in blob_rows], names)
        lo = 0
        for r, n in zip(blob_rows, counts.tolist(), strict=True):
            pieces[r.id] = (n, {k: v[lo : lo + n] for k, v in cols.items()})
            lo += n
        if len(blob_rows) == len(rows):
            return list(rows), counts, cols
    kept = []
    for r in rows:
        if r.block_id is not None:
            got = cache.columns(r, [n for n in names if n == "strike" or n in _LEG_COLUMNS])
            if got is None:
                continue
            pieces[r.id] = got
        kept.append(r)
    counts = np.array([pieces[r.id][0] for r in kept], dtype=np.int64)
    out = {
        name: np.concatenate([pieces[r.id][1][name] for r in kept])
        if kept
        else np.empty(0, dtype=np.float64)
        for name in names
    }
    return kept, counts, out


def compaction_members(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[Member]:
    """The rows a block is made of (oldest first), as its members; CodecError if one of their
    blobs does not decode."""
    members = []
    for r in rows:
        strikes, ce, pe = decode_chain(r.data)
        members.append(
            Member(
                id=int(r.id),
                provider_ts=int(r.provider_ts),
                fetched_at=int(r.fetched_at),
                spot=math.nan if r.spot is None else float(r.spot),
                lot_size=None if r.lot_size is None else int(r.lot_size),
                prev_close=math.nan if r.prev_close is None else float(r.prev_close),
                feed=str(r.feed),
                meta=r.meta,
                context=r.context,
                strikes=strikes,
                ce=ce,
                pe=pe,
            )
        )
    return members
