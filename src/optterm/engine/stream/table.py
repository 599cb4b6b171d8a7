"""The streamed legs of every watched chain, as columns: one row per subscribed token.

A batch of packets is applied with array operations (tokens found by binary search in the
sorted token column), never a Python object per tick. A chain reads its legs back by the
(strike row, side) each token was registered with, and lays the streamed values over the last
REST snapshot (`overlay`): LTP, bid/ask and their quantities, volume, OI and the previous close
where a packet carried them; Greeks, IV, ΔOI and whatever a packet's mode lacks stay the REST
snapshot's, refreshed on the REST cadence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
        # Rows an alert rule watches: a packet for one is judged at once (the alert path).
        self._urgent = np.zeros(0, dtype=bool)
        self._is_urgent: Callable[[ChainKey, LegToken], bool] = lambda key, leg: False
        self.urgent_hit: set[ChainKey] = set()  # chains whose urgent rows the last batch moved
        self._indexes: dict[ChainKey, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.unknown = 0  # packets for tokens no chain registered (late after an unsubscribe)

    # -- registration ------------------------------------------------------------------------

    def register(self, key: ChainKey, legs: Sequence[LegToken]) -> None:
        self._chains[key] = list(legs)
        self._rebuild()

    def forget(self, key: ChainKey) -> None:
        if self._chains.pop(key, None) is not None:
            self._rebuild()

    def set_urgent(self, is_urgent: Callable[[ChainKey, LegToken], bool]) -> None:
        """Which legs an alert rule watches (re-asked whenever the chains or rules change)."""
        self._is_urgent = is_urgent
        self._mark_urgent()

    def _mark_urgent(self) -> None:
        urgent = {
            leg.token.encode("ascii")
            for key, legs in self._chains.items()
            for leg in legs
            if self._is_urgent(key, leg)
        }
        self._urgent = np.isin(self._tokens, np.array(sorted(urgent), dtype="S25"))

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
        self._indexes.clear()
        self._mark_urgent()

    # -- ticks -------------------------------------------------------------------------------

    def apply(self, batch: BatchTicks) -> set[ChainKey]:
        """Lay a batch of packets into the columns (later packets win); the chains touched."""
        self.urgent_hit = set()
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
        hit = pos[self._urgent[pos]]
        if hit.size:
            self.urgent_hit = {k for i in np.unique(hit).tolist() for k in self._owner[i]}
        touched = {k for i in np.unique(pos).tolist() for k in self._owner[i]}
        self._dirty |= touched
        return touched

    def take_dirty(self) -> set[ChainKey]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    # -- reading a chain back ----------------------------------------------------------------

    def overlay(self, base: ChainSnapshot, now: datetime) -> ChainSnapshot:
        """`base` (the last REST snapshot of this chain) with every streamed value laid over it:
        array operations over the chain's legs, whatever its size."""
        index = self._index((base.symbol, base.expiry))
        if index is None:
            return base
        pos, strikes, sides = index
        times = self._time[pos]
        spot = base.spot
        is_spot = sides == "SPOT"
        if is_spot.any():
            ltp = self._values["ltp"][pos[is_spot]]
            ltp = ltp[~np.isnan(ltp)]
            if ltp.size:
                spot = float(ltp[-1])
        rows = np.searchsorted(base.strikes, strikes).clip(0, max(len(base) - 1, 0))
        on_chain = ~is_spot & (base.strikes[rows] == strikes) if len(base) else is_spot & False
        ce, pe = (
            self._side(base.side(s), pos[on_chain & (sides == s)], rows[on_chain & (sides == s)])
            for s in ("CE", "PE")
        )
        ts = base.provider_ts
        latest = int(times.max()) if times.size else 0
        if latest:
            ts = max(ts, datetime.fromtimestamp(latest / 1000, UTC))
        return replace(base, ce=ce, pe=pe, spot=spot, provider_ts=ts, fetched_at=now)

    def _index(self, key: ChainKey) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(table rows, strikes, sides) of a chain's legs, cached until the table is rebuilt."""
        cached = self._indexes.get(key)
        if cached is not None:
            return cached
        legs = self._chains.get(key)
        if not legs or not self._tokens.size:
            return None
        toks = np.array([leg.token.encode("ascii") for leg in legs], dtype="S25")
        pos = np.searchsorted(self._tokens, toks)  # every chain token is in the table
        strikes = np.array([leg.strike for leg in legs], dtype=np.float64)
        sides = np.array([leg.side for leg in legs])
        self._indexes[key] = (pos, strikes, sides)
        return self._indexes[key]

    def _side(self, base: Legs, pos: np.ndarray, rows: np.ndarray) -> Legs:
        if not pos.size:
            return base
        values = {name: base.column(name) for name in LEG_FIELDS}
        for f in _FIELDS:
            name = _LEG_FIELD.get(f, f)
            v = self._values[f][pos]
            given = ~np.isnan(v)
            if given.any():
                col = np.array(values[name], copy=True)
                col[rows[given]] = v[given]
                values[name] = col
        return Legs(**values)

    def legs(self, key: ChainKey) -> Iterable[LegToken]:
        return tuple(self._chains.get(key, ()))
