"""Saved scans, their runs and the enter/leave log (`store.scans`).

A scan is kept by name with its text as typed (the engine parses it; the store does not know the
language). Runs and events are keyed by the scan's name, not its row, so removing a scan keeps
what it found. One tick's runs and events are written in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, delete, func, insert, select, update

from optterm.infra.clip import quoted
from optterm.store.schema import scan_events, scan_runs, scans
from optterm.store.timecodec import from_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "NAME_PATTERN",
    "DuplicateScan",
    "SavedScan",
    "ScanEventRow",
    "ScanRepository",
    "ScanRunRow",
    "UnknownScan",
    "check_scan_name",
]

NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_TEXT: Final = 2000
_MAX_SYMBOLS_TEXT: Final = 20_000


class UnknownScan(LookupError):
    def __str__(self) -> str:
        return f"no saved scan {quoted(self.args[0])}; `optterm scans list` shows them"


class DuplicateScan(ValueError):
    def __str__(self) -> str:
        return (
            f"a scan named {quoted(self.args[0])} is already saved; choose another name or "
            "remove it first (`optterm scans rm NAME`)"
        )


def check_scan_name(name: str) -> str:
    """`name` if it can name a scan; ValueError saying what a name may be otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"scan name {quoted(name)} is not usable; use 1–64 letters, digits, '_', '-' or "
            "'.', starting with a letter or digit (e.g. oi_spurts)"
        )
    return name


@dataclass(frozen=True, slots=True)
class SavedScan:
    id: int
    name: str
    text: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "text": self.text,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ScanRunRow:
    scan: str
    at: datetime
    universe: int
    matched: int
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScanEventRow:
    scan: str
    symbol: str
    kind: str
    at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"scan": self.scan, "symbol": self.symbol, "kind": self.kind,
                "at": self.at.isoformat()}  # fmt: skip


def _saved(r: Row[Any]) -> SavedScan:
    return SavedScan(
        id=int(r.id),
        name=r.name,
        text=r.text,
        enabled=bool(r.enabled),
        created_at=from_us(r.created_at),
        updated_at=from_us(r.updated_at),
    )


def _run(r: Row[Any]) -> ScanRunRow:
    symbols = tuple(s for s in r.symbols.split(",") if s)
    return ScanRunRow(r.scan, from_us(r.at), r.universe, r.matched, symbols)


class ScanRepository:
    """`store.scans`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, name: str, text: str, at: datetime, *, enabled: bool = True) -> SavedScan:
        """Save scan `name`; DuplicateScan when the name is taken."""
        check_scan_name(name)
        if not text.strip() or len(text) > _MAX_TEXT:
            raise ValueError(f"a scan's text must be 1–{_MAX_TEXT:,} characters")
        now = to_us(at, "at")
        async with self._store.write_transaction(f"Saving scan {name}") as conn:
            taken = await conn.scalar(select(func.count()).where(scans.c.name == name))
            if taken:
                raise DuplicateScan(name)
            await conn.execute(
                insert(scans).values(
                    name=name, text=text, enabled=int(enabled), created_at=now, updated_at=now
                )
            )
            row = (await conn.execute(select(scans).where(scans.c.name == name))).one()
        return _saved(row)

    async def saved(self, *, enabled_only: bool = False) -> list[SavedScan]:
        stmt = select(scans).order_by(scans.c.name)
        if enabled_only:
            stmt = stmt.where(scans.c.enabled == 1)
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_saved(r) for r in rows]

    async def get(self, name: str) -> SavedScan:
        async with self._store.read_connection() as conn:
            row = (await conn.execute(select(scans).where(scans.c.name == name))).one_or_none()
        if row is None:
            raise UnknownScan(name)
        return _saved(row)

    async def remove(self, name: str) -> None:
        """Forget scan `name` (its runs and events stay); UnknownScan if there is none."""
        async with self._store.write_transaction(f"Removing scan {name}") as conn:
            done = await conn.execute(delete(scans).where(scans.c.name == name))
            if not done.rowcount:
                raise UnknownScan(name)

    async def set_enabled(self, name: str, enabled: bool, at: datetime) -> bool:
        """Enable or disable scan `name`; whether it changed. UnknownScan if there is none."""
        async with self._store.write_transaction(f"Changing scan {name}") as conn:
            current = await conn.scalar(select(scans.c.enabled).where(scans.c.name == name))
            if current is None:
                raise UnknownScan(name)
            if bool(current) == enabled:
                return False
            await conn.execute(
                update(scans)
                .where(scans.c.name == name)
                .values(enabled=int(enabled), updated_at=to_us(at, "at"))
            )
        return True

    async def record(
        self,
        at: datetime,
        universe: int,
        runs: Sequence[tuple[str, int, Sequence[str]]],
        events: Sequence[tuple[str, str, str, datetime]] = (),
    ) -> None:
        """One tick: each scan's run (name, how many matched, ranked matches) and the
        enter/leave events (scan, symbol, "enter"|"leave", when), in one transaction."""
        if not runs and not events:
            return
        at_us = to_us(at, "at")
        run_rows = [
            {"scan": name, "at": at_us, "universe": universe, "matched": matched,
             "symbols": ",".join(symbols)[:_MAX_SYMBOLS_TEXT]}
            for name, matched, symbols in runs
        ]  # fmt: skip
        event_rows = [
            {"scan": scan, "symbol": symbol, "kind": kind, "at": to_us(when, "at")}
            for scan, symbol, kind, when in events
        ]
        async with self._store.write_transaction("Recording scan results") as conn:
            if run_rows:
                await conn.execute(insert(scan_runs), run_rows)
            if event_rows:
                await conn.execute(insert(scan_events), event_rows)

    async def replace_session(
        self,
        scans: Sequence[str],
        since: datetime,
        runs: Sequence[ScanRunRow],
        events: Sequence[ScanEventRow],
    ) -> None:
        """A whole played session at once: what `scans` recorded from `since` on is replaced by
        `runs` and `events` (so playing a session twice does not record it twice)."""
        since_us = to_us(since, "since")
        run_rows = [
            {"scan": r.scan, "at": to_us(r.at, "at"), "universe": r.universe,
             "matched": r.matched, "symbols": ",".join(r.symbols)[:_MAX_SYMBOLS_TEXT]}
            for r in runs
        ]  # fmt: skip
        event_rows = [
            {"scan": e.scan, "symbol": e.symbol, "kind": e.kind, "at": to_us(e.at, "at")}
            for e in events
        ]
        names = list(scans)
        async with self._store.write_transaction("Recording a played scan session") as conn:
            await conn.execute(
                delete(scan_runs).where(scan_runs.c.scan.in_(names), scan_runs.c.at >= since_us)
            )
            await conn.execute(
                delete(scan_events).where(
                    scan_events.c.scan.in_(names), scan_events.c.at >= since_us
                )
            )
            if run_rows:
                await conn.execute(insert(scan_runs), run_rows)
            if event_rows:
                await conn.execute(insert(scan_events), event_rows)

    async def runs(self, scan: str, limit: int = 50) -> list[ScanRunRow]:
        stmt = (
            select(scan_runs)
            .where(scan_runs.c.scan == scan)
            .order_by(scan_runs.c.at.desc(), scan_runs.c.id.desc())
            .limit(limit)
        )
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_run(r) for r in rows]

    async def events(
        self, scan: str | None = None, *, since: datetime | None = None, limit: int = 200
    ) -> list[ScanEventRow]:
        """The enter/leave log, oldest first (of scan `scan`, from `since`)."""
        stmt = select(scan_events).order_by(scan_events.c.at, scan_events.c.id).limit(limit)
        if scan is not None:
            stmt = stmt.where(scan_events.c.scan == scan)
        if since is not None:
            stmt = stmt.where(scan_events.c.at >= to_us(since, "since"))
        async with self._store.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return [ScanEventRow(r.scan, r.symbol, r.kind, from_us(r.at)) for r in rows]
