"""A scan over a stored day (`optterm scan "…" --day DAY`): the chains recorded that day, read
back through the replay (engine/replay, store/replay.py), turned into the scanner's raw columns
at every stored tick, and played through the scan's tracker, so it lists when each name entered
and left, with the same hysteresis as live.

The universe is what was stored: the watched symbols, each by its nearest expiry. What a
stored chain gives: the futures tier's price, spot and previous close (the futures quote kept
beside the chain), and the ATM tier's strike, IV and straddle (and the straddle's previous
close) from the options at the money. The store keeps a window of strikes around the money,
not whole chains, and no futures OI or volume, so the chain tier and those futures fields are
n/a, each with its reason; nothing is made up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import numpy as np

from optterm.engine.scanner.evaluate import ScanResult
from optterm.engine.scanner.grammar import Scan, parse_scan
from optterm.engine.scanner.scanner import Scanner
from optterm.engine.scanner.tracker import ScanEvent
from optterm.market import NSE_INDICES, MarketCalendar
from optterm.model import ChainSnapshot

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store
    from optterm.store.replay import SnapshotWindow

__all__ = [
    "NOT_STORED",
    "STORED_COLUMNS",
    "StoredDayScan",
    "columns_from_chains",
    "poll_cycles",
    "scan_stored_day",
]

NOT_STORED: Final = "not kept by the store (a window of strikes, no futures OI or volume)"
# The raw columns a stored chain gives (columns_from_chains); every other raw field is n/a.
STORED_COLUMNS: Final = (
    "is_index", "lot_size", "strike_step", "dte", "price", "spot", "prev_close",
    "session_frac", "atm_strike", "atm_iv", "straddle", "prev_straddle",
)  # fmt: skip
_AHEAD: Final = 120  # snapshots read and decoded together going forward (store/replay.py)


@dataclass(frozen=True)
class StoredDayScan:
    scan: Scan
    day: date
    names: tuple[str, ...]
    ticks: int
    events: tuple[ScanEvent, ...]
    last: ScanResult | None
    unavailable: dict[str, str]

    def spans(self) -> list[tuple[str, datetime, datetime | None]]:
        """(symbol, entered, left or None if still inside at the day's last tick), by entry."""
        open_: dict[str, datetime] = {}
        out: list[tuple[str, datetime, datetime | None]] = []
        for e in self.events:
            if e.kind == "enter":
                open_[e.symbol] = e.at
            elif e.symbol in open_:
                out.append((e.symbol, open_.pop(e.symbol), e.at))
        out += [(s, at, None) for s, at in open_.items()]
        return sorted(out, key=lambda span: (span[1], span[0]))


def _atm(snap: ChainSnapshot, ref: float) -> int | None:
    if not snap.strikes.size or not math.isfinite(ref):
        return None
    return int(np.argmin(np.abs(snap.strikes - ref)))


def columns_from_chains(
    snaps: Sequence[ChainSnapshot | None], at: datetime, calendar: MarketCalendar
) -> dict[str, np.ndarray]:
    """The raw columns stored chains give, one entry per name (None: nothing stored yet). A
    column left out is n/a for every name (`NOT_STORED`)."""
    n = len(snaps)
    cols = {name: np.full(n, np.nan) for name in STORED_COLUMNS}
    opens, closes = calendar.session_bounds(calendar.local_date(at))
    frac = (at - opens).total_seconds() / max(1.0, (closes - opens).total_seconds())
    day = calendar.local_date(at)
    for i, snap in enumerate(snaps):
        if snap is None:
            continue
        fut = snap.futures
        price = fut.value if fut is not None else math.nan
        cols["is_index"][i] = float(snap.symbol in NSE_INDICES)
        cols["lot_size"][i] = snap.lot_size
        if snap.strikes.size > 1:
            cols["strike_step"][i] = float(np.median(np.diff(snap.strikes)))
        cols["dte"][i] = (snap.expiry - day).days
        cols["price"][i] = price
        cols["spot"][i] = snap.spot
        cols["prev_close"][i] = fut.prev_close if fut is not None else math.nan
        cols["session_frac"][i] = min(1.0, max(0.0, frac))
        k = _atm(snap, price if math.isfinite(price) else snap.spot)
        if k is None:
            continue
        cols["atm_strike"][i] = snap.strikes[k]
        cols["atm_iv"][i] = (snap.ce.iv[k] + snap.pe.iv[k]) / 2 * 100.0  # vol points
        cols["straddle"][i] = snap.ce.ltp[k] + snap.pe.ltp[k]
        cols["prev_straddle"][i] = snap.ce.prev_close[k] + snap.pe.prev_close[k]
    return cols


def poll_cycles(stamps: Mapping[str, Iterable[int]]) -> list[int]:
    """The scan's ticks over stored chains: one per poll cycle, at its last stored time.

    The chains of one engine tick are stored a few milliseconds apart (each is fetched on
    its own); ticking at every stored time would judge a name's one snapshot once per other
    name, so a single match would count as the two in a row the tracker needs to let a name
    in. A cycle ends where a name already seen in it comes again."""
    points = sorted((t, name) for name, ts in stamps.items() for t in ts)
    out: list[int] = []
    seen: set[str] = set()
    for i, (_, name) in enumerate(points):
        if name in seen:
            out.append(points[i - 1][0])
            seen.clear()
        seen.add(name)
    if points:
        out.append(points[-1][0])
    return out


async def scan_stored_day(
    store: Store,
    settings: Settings,
    day: date,
    text: str,
    calendar: MarketCalendar,
    more: Callable[[Sequence[ChainSnapshot | None], dict[str, np.ndarray]], None] | None = None,
    symbols: Sequence[str] | None = None,
) -> StoredDayScan:
    """Parse `text` (ScanError) and play it over what `store` holds for `day` (ReplayProblem
    when nothing is stored that day, naming what is). `more(snaps, columns)` may add raw
    columns each tick from what else was stored for those snapshots (a backtest adds the
    stored chain metrics); `symbols` limits the universe (default: every symbol stored), and
    with it the ticks to those symbols' stored times."""
    from optterm.engine.replay.session import Replay

    scan = parse_scan(text)
    replay = await Replay.open(store, settings, day, symbols, rules=False)
    nearest: dict[str, SnapshotWindow] = {}
    for (symbol, expiry), window in sorted(replay.windows.items()):
        if symbol not in nearest and expiry >= day:
            nearest[symbol] = window
    for (symbol, _), window in sorted(replay.windows.items()):
        nearest.setdefault(symbol, window)  # only expired ones stored: the nearest of them
    names = tuple(nearest)
    for window in nearest.values():
        window.ahead = _AHEAD
    scanner = Scanner(names)
    scanner.add("scan", scan)
    times = poll_cycles({name: w.times.ts for name, w in nearest.items()})
    events: list[ScanEvent] = []
    last: ScanResult | None = None
    unavailable: dict[str, str] = {}
    for us in times:
        at = datetime.fromtimestamp(us / 1e6, UTC)
        snaps = [await w.at(at) for w in nearest.values()]
        cols = columns_from_chains(snaps, at, calendar)
        if more is not None:
            more(snaps, cols)
        tick = scanner.tick(cols, at)
        events += tick.events
        last = tick.results["scan"]
        unavailable = dict(last.unavailable)
    said = {
        "not given by the source": NOT_STORED,
        "needs a field the source does not give": "needs a field the store does not keep",
    }
    why = {k: said.get(v, v) for k, v in unavailable.items()}  # fmt: skip
    return StoredDayScan(scan, day, names, len(times), tuple(events), last, why)
