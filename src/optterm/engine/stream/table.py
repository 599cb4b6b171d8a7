"""The streamed legs of every watched chain, as columns: one row per subscribed token.

A batch of packets is applied with array operations (tokens found by binary search in the
sorted token column), never a Python object per tick. A chain reads its legs back by the
(strike row, side) each token was registered with, and lays the streamed values over the last
REST snapshot (`overlay`): LTP, bid/ask and their quantities, volume, OI and the previous close
where a packet carried them; Greeks, IV, ΔOI and whatever a packet's mode lacks stay the REST
snapshot's, refreshed on the REST cadence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import numpy as np

from optterm.model import LEG_FIELDS, ChainSnapshot, Legs
from optterm.providers.angelone.stream.packets import BatchTicks

__all__ = ["ChainKey", "LegToken", "StreamTable"]

ChainKey = tuple[str, date]
SPOT_ROW = -1  # a token that is the underlying itself, not a leg


@dataclass(frozen=True, slots=True)
class LegToken:
    """One streamed instrument of a chain: a leg (strike, "CE"/"PE") or the spot (strike NaN,
    side "SPOT")."""

    exchange: int
    token: str
    strike: float
    side: str


_FIELDS = ("ltp", "bid", "ask", "bid_qty", "ask_qty", "volume", "oi", "close")
_LEG_FIELD = {"close": "prev_close"}  # the packet's previous close is the leg's prev_close


class StreamTable:
    """Columns for every registered token. `register` replaces a chain's tokens (its window
    moved, or the REST snapshot was refreshed); values already streamed for a token that stays
    are kept."""

    def __init__(self) -> None:
        self._chains: dict[ChainKey, list[LegToken]] = {}
        self._tokens = np.empty(0, dtype="S25")
        self._values: dict[str, np.ndarray] = {f: np.empty(0) for f in _FIELDS}
        self._time = np.empty(0, dtype=np.int64)
        self._dirty: set[ChainKey] = set()
        self._owner: list[list[ChainKey]] = []  # chains each row belongs to
        self.unknown = 0  # packets for tokens no chain registered (late after an unsubscribe)

    # -- registration ------------------------------------------------------------------------

    def register(self, key: ChainKey, legs: Sequence[LegToken]) -> None:
        self._chains[key] = list(legs)
        self._rebuild()

    def forget(self, key: ChainKey) -> None:
        if self._chains.pop(key, None) is not None:
            self._rebuild()

    def chains(self) -> list[ChainKey]:
        return list(self._chains)

    def stream_tokens(self) -> dict[int, list[str]]:
        """Every registered token by exchange type (what the client subscribes)."""
        out: dict[int, list[str]] = {}
        for legs in self._chains.values():
            for leg in legs:
                out.setdefault(leg.exchange, []).append(leg.token)
        return {ex: list(dict.fromkeys(ts)) for ex, ts in out.items()}

    def _rebuild(self) -> None:
        old_tokens, old_values, old_time = self._tokens, self._values, self._time
        owners: dict[bytes, list[ChainKey]] = {}
        for key, legs in self._chains.items():
            for leg in legs:
                owners.setdefault(leg.token.encode("ascii"), []).append(key)
        tokens = np.array(sorted(owners), dtype="S25")
        values = {f: np.full(tokens.shape[0], np.nan) for f in _FIELDS}
        time_ms = np.zeros(tokens.shape[0], dtype=np.int64)
        if old_tokens.size and tokens.size:
            pos = np.searchsorted(old_tokens, tokens).clip(0, old_tokens.size - 1)
            kept = old_tokens[pos] == tokens
            for f in _FIELDS:
                values[f][kept] = old_values[f][pos[kept]]
            time_ms[kept] = old_time[pos[kept]]
        self._tokens, self._values, self._time = tokens, values, time_ms
        self._owner = [owners[t] for t in tokens.tolist()]

    # -- ticks -------------------------------------------------------------------------------

    def apply(self, batch: BatchTicks) -> set[ChainKey]:
        """Lay a batch of packets into the columns (later packets win); the chains touched."""
        if not len(batch) or not self._tokens.size:
            self.unknown += len(batch)
            return set()
        pos = np.searchsorted(self._tokens, batch.token).clip(0, self._tokens.size - 1)
        known = self._tokens[pos] == batch.token
        self.unknown += int((~known).sum())
        pos = pos[known]
        if not pos.size:
            return set()
        for f in _FIELDS:
            new = getattr(batch, f)[known]
            given = ~np.isnan(new)
            # Assigned in arrival order, so a token's last packet in the batch wins.
            self._values[f][pos[given]] = new[given]
        self._time[pos] = np.maximum(self._time[pos], batch.time_ms[known])
        touched = {k for i in np.unique(pos).tolist() for k in self._owner[i]}
        self._dirty |= touched
        return touched

    def take_dirty(self) -> set[ChainKey]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    # -- reading a chain back ----------------------------------------------------------------

    def overlay(self, base: ChainSnapshot, now: datetime) -> ChainSnapshot:
        """`base` (the last REST snapshot of this chain) with every streamed value laid over it."""
        legs = self._chains.get((base.symbol, base.expiry))
        if not legs or not self._tokens.size:
            return base
        row_of = {float(s): i for i, s in enumerate(base.strikes.tolist())}
        cols: dict[str, dict[str, np.ndarray]] = {}
        spot = base.spot
        latest = 0
        toks = np.array([leg.token.encode("ascii") for leg in legs], dtype="S25")
        pos = np.searchsorted(self._tokens, toks).clip(0, self._tokens.size - 1)
        for leg, p in zip(legs, pos.tolist(), strict=True):
            latest = max(latest, int(self._time[p]))
            if leg.side == "SPOT":
                ltp = self._values["ltp"][p]
                if not np.isnan(ltp):
                    spot = float(ltp)
                continue
            row = row_of.get(float(leg.strike))
            if row is None:
                continue
            side = cols.get(leg.side)
            if side is None:
                base_legs = base.side(leg.side)
                side = cols[leg.side] = {
                    f: np.array(base_legs.column(_LEG_FIELD.get(f, f)), copy=True) for f in _FIELDS
                }
            for f in _FIELDS:
                v = self._values[f][p]
                if not np.isnan(v):
                    side[f][row] = v
        ce, pe = (_legs(base.side(s), cols.get(s)) for s in ("CE", "PE"))
        ts = base.provider_ts
        if latest:
            ts = max(ts, datetime.fromtimestamp(latest / 1000, UTC))
        return replace(base, ce=ce, pe=pe, spot=spot, provider_ts=ts, fetched_at=now)

    def legs(self, key: ChainKey) -> Iterable[LegToken]:
        return tuple(self._chains.get(key, ()))


def _legs(base: Legs, streamed: dict[str, np.ndarray] | None) -> Legs:
    if streamed is None:
        return base
    values = {name: base.column(name) for name in LEG_FIELDS}
    for f, col in streamed.items():
        values[_LEG_FIELD.get(f, f)] = col
    return Legs(**values)
