"""Saved strategies (`store.strategies`): named sets of legs with their entry prices, and when and
where those prices were taken.

A strategy is kept as it was built (the strategy desk's legs, or a strategy line resolved on a
chain); the engine turns it back into a position and prices it on the chain of the moment (the
strategy screen's compare, the STRATEGY alert rules). Names are unique; saving under a taken name
is refused, never an overwrite, so an alert rule watching a strategy never sees its legs change
under it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import delete, func, insert, select

from optterm.infra.clip import clip, quoted
from optterm.store.errors import CorruptDatabaseError
from optterm.store.schema import alert_rules, strategies
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "NAME_PATTERN",
    "DuplicateStrategy",
    "SavedLeg",
    "SavedStrategy",
    "StrategyRepository",
    "UnknownStrategy",
    "check_strategy_name",
]

# A letter first: a name never reads as a number or a flag in a rule line or on the command line.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MAX_LEGS: Final = 32
_KINDS: Final = ("CE", "PE", "FUT")


class UnknownStrategy(LookupError):
    def __str__(self) -> str:
        return f"no saved strategy {quoted(self.args[0])}; `optterm strategy list` shows them"


class DuplicateStrategy(ValueError):
    def __str__(self) -> str:
        return (
            f"a strategy named {quoted(self.args[0])} is already saved; choose another name or "
            "remove it first (`optterm strategy rm NAME`)"
        )


def check_strategy_name(name: str) -> str:
    """`name` if it can name a strategy; ValueError saying what a name may be otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"strategy name {quoted(name)} is not usable; use 1–64 letters, digits, '_' or '-', "
            "starting with a letter (e.g. my_strangle)"
        )
    return name


@dataclass(frozen=True, slots=True)
class SavedLeg:
    """One leg: `lots` > 0 bought, < 0 sold; `price` the entry per unit; `strike` 0 for a
    future."""

    kind: str
    expiry: date
    strike: float
    lots: int
    price: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "expiry": self.expiry.isoformat(), "strike": self.strike,
                "lots": self.lots, "price": self.price}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Any) -> SavedLeg:
        """A leg read back; ValueError/TypeError/KeyError on anything that is not one."""
        leg = cls(str(d["kind"]), date.fromisoformat(d["expiry"]), float(d["strike"]),
                  d["lots"], float(d["price"]))  # fmt: skip
        leg.check()
        return leg

    def check(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"leg kind {self.kind!r} is not CE, PE or FUT")
        if not isinstance(self.lots, int) or isinstance(self.lots, bool) or self.lots == 0:
            raise ValueError(f"leg lots {self.lots!r} is not a whole non-zero number")
        if not (math.isfinite(self.price) and self.price >= 0):
            raise ValueError(f"leg price {self.price!r} is not a price")
        if not (math.isfinite(self.strike) and self.strike >= 0):
            raise ValueError(f"leg strike {self.strike!r} is not a strike")
        if self.kind != "FUT" and self.strike <= 0:
            raise ValueError("an option leg needs a strike")


@dataclass(frozen=True, slots=True)
class SavedStrategy:
    id: int
    name: str
    symbol: str
    legs: tuple[SavedLeg, ...]
    priced_at: datetime  # when the entry prices were taken
    source: str  # where they came from: the provider and whether live or simulated
    line: str  # the strategy line it was built from ("" when built from the chain)
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "symbol": self.symbol,
            "legs": [g.to_dict() for g in self.legs],
            "priced_at": self.priced_at.isoformat(),
            "source": self.source,
            "line": self.line,
            "created_at": self.created_at.isoformat(),
        }


def _saved(r: Any) -> SavedStrategy:
    try:
        raw = json.loads(r.legs)
        if not isinstance(raw, list) or not raw:
            raise ValueError("no legs")
        legs = tuple(SavedLeg.from_dict(d) for d in raw)
        return SavedStrategy(
            int(r.id), r.name, r.symbol, legs, from_us(r.priced_at), r.source, r.line,
            from_us(r.created_at),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError) as exc:  # a row edited by hand or another program
        raise CorruptDatabaseError(
            f"the saved strategy {quoted(r.name)} is damaged ({clip(exc, 80)}); optterm has not "
            f"changed it. Remove it (`optterm strategy rm {r.name}`) and save it again."
        ) from None


class StrategyRepository:
    """`store.strategies`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(
        self,
        name: str,
        symbol: str,
        legs: Sequence[SavedLeg],
        *,
        priced_at: datetime,
        source: str,
        line: str = "",
        at: datetime,
    ) -> SavedStrategy:
        """Save `legs` as `name`; DuplicateStrategy when the name is taken, ValueError on legs
        that are not a strategy. Nothing is written unless all of it is."""
        check_strategy_name(name)
        if not legs or len(legs) > _MAX_LEGS:
            raise ValueError(f"a strategy needs 1 to {_MAX_LEGS} legs")
        for g in legs:
            g.check()
        values = {
            "name": name,
            "symbol": symbol,
            "legs": json.dumps([g.to_dict() for g in legs], allow_nan=False),
            "priced_at": to_us(priced_at, "priced_at"),
            "source": source[:64],
            "line": line,
            "created_at": to_us(at, "at"),
        }
        async with self._store.write_transaction(f"Saving strategy {name}") as conn:
            taken = await conn.scalar(select(func.count()).where(strategies.c.name == name))
            if taken:
                raise DuplicateStrategy(name)
            await conn.execute(insert(strategies).values(**values))
        return await self.get(name)

    async def get(self, name: str) -> SavedStrategy:
        """The strategy `name`; UnknownStrategy when none is saved under it."""
        stmt = select(strategies).where(strategies.c.name == name)
        async with self._store.read_connection("Reading a saved strategy") as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise UnknownStrategy(name)
        return _saved(row)

    async def names(self) -> list[str]:
        stmt = select(strategies.c.name).order_by(strategies.c.name)
        async with self._store.read_connection("Listing saved strategies") as conn:
            return [r.name for r in (await conn.execute(stmt)).all()]

    async def list(self) -> list[SavedStrategy]:
        """Every saved strategy, by name (a damaged one is CorruptDatabaseError naming it)."""
        stmt = select(strategies).order_by(strategies.c.name)
        async with self._store.read_connection("Listing saved strategies") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_saved(r) for r in rows]

    async def remove(self, name: str) -> int:
        """Remove `name`; UnknownStrategy when none is saved under it. Returns how many alert
        rules still watch it (they stay, and are told as unknown when evaluated)."""
        async with self._store.write_transaction(f"Removing strategy {name}") as conn:
            result = await conn.execute(delete(strategies).where(strategies.c.name == name))
            if not result.rowcount:
                raise UnknownStrategy(name)
            watching = await conn.scalar(select(func.count()).where(alert_rules.c.strategy == name))
        return int(watching or 0)
