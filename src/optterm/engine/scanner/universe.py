"""The F&O universe: every underlying with listed NSE options, its lot size, strike step and
expiries, read from Angel One's instrument master and cached once a day.

The list is never written down here: names come and go with each exchange review (216 in
Sep-2026, design for 250), so it is derived from the master's NFO OPTIDX/OPTSTK rows of the day.
The master is downloaded at most once a day (providers/angelone/master.py); the list derived
from it is cached beside it (`universe.json`, small) with its edition. Each build is compared with
the cached list and the additions, removals and lot-size changes are reported once, so a trader
learns that a name left the scan universe instead of it silently vanishing.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np

from optterm.infra.filemode import make_dirs
from optterm.providers.angelone.master import InstrumentMaster, MasterIndex

__all__ = [
    "UNIVERSE_FILENAME",
    "EmptyUniverse",
    "Member",
    "Universe",
    "UniverseChange",
    "UniverseError",
    "compare",
    "load_cached",
    "load_universe",
    "refresh_universe",
    "universe_from_master",
]

UNIVERSE_FILENAME: Final = "universe.json"
_SEGMENTS: Final = {"OPTIDX": "index", "OPTSTK": "stock"}
_EXPIRIES_KEPT: Final = 3  # near, next, far: what a scan can ask about


class UniverseError(ValueError):
    """The universe cannot be built or read; the message says which and what to do."""


class EmptyUniverse(UniverseError):
    """No F&O underlying at all: a scan over nothing is a mistake to report, not an empty
    result to show."""


@dataclass(frozen=True, slots=True)
class Member:
    """One F&O underlying."""

    name: str
    segment: str  # "index" or "stock"
    lot_size: int
    strike_step: float
    expiries: tuple[date, ...]  # nearest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "segment": self.segment,
            "lot_size": self.lot_size,
            "strike_step": self.strike_step,
            "expiries": [e.isoformat() for e in self.expiries],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Member:
        return cls(
            name=str(doc["name"]),
            segment=str(doc["segment"]),
            lot_size=int(doc["lot_size"]),
            strike_step=float(doc["strike_step"]),
            expiries=tuple(date.fromisoformat(e) for e in doc["expiries"]),
        )


@dataclass(frozen=True)
class Universe:
    """The underlyings a scan runs over, in a fixed order (the columns' order), with their
    static attributes as arrays for vectorised rules."""

    members: tuple[Member, ...]
    edition: date
    source: str  # "angelone", "simulator", …
    names: tuple[str, ...] = field(init=False)
    lot_size: np.ndarray = field(init=False, repr=False)
    strike_step: np.ndarray = field(init=False, repr=False)
    is_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise EmptyUniverse(
                f"the {self.source} universe of {self.edition} has no F&O underlying; "
                "refresh the instrument master (`optterm master`) and try again"
            )
        object.__setattr__(self, "names", tuple(m.name for m in self.members))
        object.__setattr__(
            self, "lot_size", np.array([m.lot_size for m in self.members], dtype=np.float64)
        )
        object.__setattr__(
            self, "strike_step", np.array([m.strike_step for m in self.members], dtype=np.float64)
        )
        object.__setattr__(
            self, "is_index", np.array([m.segment == "index" for m in self.members], dtype=bool)
        )

    def __len__(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edition": self.edition.isoformat(),
            "source": self.source,
            "members": [m.to_dict() for m in self.members],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Universe:
        return cls(
            members=tuple(Member.from_dict(m) for m in doc["members"]),
            edition=date.fromisoformat(doc["edition"]),
            source=str(doc["source"]),
        )


@dataclass(frozen=True, slots=True)
class UniverseChange:
    """What changed between two editions of the universe."""

    previous: date | None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    lot_changed: tuple[tuple[str, int, int], ...] = ()  # (name, old lot, new lot)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.lot_changed)

    def summary(self) -> str:
        """One line for a log or the CLI."""
        if self.previous is None:
            return "first universe (nothing to compare with)"
        if not self:
            return f"no change since {self.previous.isoformat()}"
        parts = []
        if self.added:
            parts.append(f"added {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.lot_changed:
            parts.append("lot size " + ", ".join(f"{n} {a}→{b}" for n, a, b in self.lot_changed))
        return f"since {self.previous.isoformat()}: " + "; ".join(parts)


def compare(old: Universe | None, new: Universe) -> UniverseChange:
    if old is None:
        return UniverseChange(previous=None)
    before = {m.name: m for m in old.members}
    after = {m.name: m for m in new.members}
    return UniverseChange(
        previous=old.edition,
        added=tuple(sorted(set(after) - set(before))),
        removed=tuple(sorted(set(before) - set(after))),
        lot_changed=tuple(
            (n, before[n].lot_size, after[n].lot_size)
            for n in sorted(set(before) & set(after))
            if before[n].lot_size != after[n].lot_size
        ),
    )


def universe_from_master(index: MasterIndex, today: date, *, source: str = "angelone") -> Universe:
    """The NSE F&O underlyings in `index` with an expiry on or after `today`.

    Only NFO index and stock options count (BFO's SENSEX and MCX commodities are other
    universes); indices first, then stocks, each alphabetical, so the order is stable."""
    members = []
    for name in index.names():
        expiries = index.expiries(name, on_or_after=today)
        if not expiries:
            continue
        near = expiries[0]
        chain = index.chain(name, near)
        first = chain[0]
        segment = _SEGMENTS.get(first.instrument_type)
        if first.exchange != "NFO" or segment is None:
            continue
        lot = index.lot_size(name, near)
        step = index.strike_step(name, near)
        if lot is None or lot <= 0:
            continue
        members.append(
            Member(
                name=name,
                segment=segment,
                lot_size=lot,
                strike_step=float(step or 0.0),
                expiries=tuple(expiries[:_EXPIRIES_KEPT]),
            )
        )
    members.sort(key=lambda m: (m.segment != "index", m.name))
    return Universe(tuple(members), today, source)


def load_cached(cache_dir: Path) -> Universe | None:
    """The cached universe, None when there is none or it cannot be read (it is rebuilt)."""
    path = cache_dir / UNIVERSE_FILENAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Universe.from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(cache_dir: Path, universe: Universe) -> None:
    make_dirs(cache_dir)
    fd, tmp = tempfile.mkstemp(prefix=".universe.", suffix=".part", dir=cache_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(universe.to_dict(), out)
        os.replace(tmp, cache_dir / UNIVERSE_FILENAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refresh_universe(
    index: MasterIndex, today: date, cache_dir: Path, *, source: str = "angelone"
) -> tuple[Universe, UniverseChange]:
    """Today's universe from the master and what changed since the cached one.

    The cache holds the last universe built, so each change is reported once: building again
    from the same master says "no change" (a master re-downloaded the same day is compared too).
    The master itself is downloaded at most once a day (providers/angelone/master.py)."""
    cached = load_cached(cache_dir)
    universe = universe_from_master(index, today, source=source)
    change = compare(cached if cached is None or cached.source == source else None, universe)
    if cached is None or cached.to_dict() != universe.to_dict():
        _write(cache_dir, universe)
    return universe, change


async def load_universe(
    master: InstrumentMaster, today: date, cache_dir: Path
) -> tuple[Universe, UniverseChange]:
    """`refresh_universe` over the master's current edition (downloaded at most once a day).

    `master` must index every name (`names=None`): a master limited to the watched indices
    would make a universe of three."""
    index = await master.ensure()
    return await asyncio.to_thread(refresh_universe, index, today, cache_dir)
