"""Saved scans, their runs and the enter/leave log (`store.scans`).

A scan is kept by name with its text as typed (the engine parses it; the store does not know the
language). Runs and events are keyed by the scan's name, not its row, so removing a scan keeps
what it found. One tick's runs and events are written in one transaction.

A scan with channels is an alert: each name that enters it is an alert event (kind SCAN_ENTER)
with one PENDING outbox row per channel, written in the same transaction as the enter event, so
an entry is never recorded without its notification nor notified without being recorded, and
the dispatcher sends each row once. An enter event already recorded (the same scan, symbol and
time, a tick recorded again) is skipped whole: never a second notification. The same symbol
entering again within the scan's cooldown of its last alert is logged but not notified.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from optterm.infra.clip import clip, quoted
from optterm.market import IST
from optterm.model import AlertKind, Channel, Feed
from optterm.store.dialect import inserted_id
from optterm.store.errors import CorruptDatabaseError
from optterm.store.outbox import pending_rows
from optterm.store.schema import alert_events, outbox, scan_events, scan_runs, scans
from optterm.store.timecodec import from_us, now_us, to_us

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = [
    "DEFAULT_COOLDOWN_S",
    "NAME_PATTERN",
    "SCAN_RULE_ID",
    "DuplicateScan",
    "SavedScan",
    "ScanEventRow",
    "ScanRepository",
    "ScanRunRow",
    "UnknownScan",
    "check_scan_name",
]

NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_COOLDOWN_S: Final = 1800.0  # the same name entering again within 30 min: not notified
# Scan alerts are events without a rule (the scan is their rule): rule id 0, never a row's id.
SCAN_RULE_ID: Final = 0
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
    channels: tuple[Channel, ...] = ()
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "text": self.text,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "notify": [c.label for c in self.channels],
            "cooldown_s": self.cooldown_s,
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
    try:
        refs, labels = list(json.loads(r.channels)), list(json.loads(r.channel_labels))
    except (ValueError, TypeError) as exc:  # a row edited by hand or by another program
        raise CorruptDatabaseError(
            f"the saved scan {quoted(r.name)} is damaged (its channels: {clip(exc, 80)}); "
            "optterm has not changed it. Remove it (`optterm scans rm NAME`) and add it again."
        ) from None
    return SavedScan(
        id=int(r.id),
        name=r.name,
        text=r.text,
        enabled=bool(r.enabled),
        created_at=from_us(r.created_at),
        updated_at=from_us(r.updated_at),
        channels=tuple(Channel(ref, label) for ref, label in zip(refs, labels, strict=False)),
        cooldown_s=float(r.cooldown_s),
    )


def _run(r: Row[Any]) -> ScanRunRow:
    symbols = tuple(s for s in r.symbols.split(",") if s)
    return ScanRunRow(r.scan, from_us(r.at), r.universe, r.matched, symbols)


async def _new_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` less those already recorded (a tick written twice records and notifies once)."""
    out = []
    e = scan_events.c
    for row in rows:
        found = await conn.scalar(
            select(func.count()).where(
                e.scan == row["scan"], e.symbol == row["symbol"], e.kind == row["kind"],
                e.at == row["at"],
            )
        )  # fmt: skip
        if not found:
            out.append(row)
    return out


async def _alert_entries(
    conn: AsyncConnection, rows: list[dict[str, Any]], provider: str, feed: Feed
) -> int:
    """An alert event and its outbox rows for each entry into a scan with channels, unless this
    symbol's entry into it was alerted within the scan's cooldown."""
    entered = [r for r in rows if r["kind"] == "enter"]
    if not entered:
        return 0
    names = sorted({r["scan"] for r in entered})
    found = (await conn.execute(select(scans).where(scans.c.name.in_(names)))).all()
    saved = {r.name: _saved(r) for r in found}
    now = now_us()
    queued = 0
    a = alert_events.c
    for row in entered:
        scan = saved.get(row["scan"])
        if scan is None or not scan.channels:
            continue
        context = json.dumps([["scan", scan.name]])
        since = row["at"] - int(scan.cooldown_s * 1e6)
        before = await conn.scalar(
            select(func.count()).where(
                a.kind == str(AlertKind.SCAN_ENTER), a.symbol == row["symbol"],
                a.context == context, a.fired_at > since, a.fired_at <= row["at"],
            )
        )  # fmt: skip
        if before:  # this name's entry was alerted within the cooldown
            continue
        when = from_us(row["at"]).astimezone(IST)
        title = f"{row['symbol']} entered scan {scan.name}"
        result = await conn.execute(
            insert(alert_events).values(
                rule_id=SCAN_RULE_ID,
                symbol=row["symbol"],
                kind=str(AlertKind.SCAN_ENTER),
                fired_at=row["at"],
                value=None,
                threshold=None,
                title=title,
                body=f"{title} at {when:%H:%M:%S} IST ({feed.value} via {provider}): {scan.text}",
                provider=provider,
                feed=str(feed),
                context=context,
                created_at=now,
            )
        )
        event_id = inserted_id(result)
        await conn.execute(insert(outbox), pending_rows(event_id, scan.channels, now))
        queued += 1
    return queued


class ScanRepository:
    """`store.scans`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(
        self,
        name: str,
        text: str,
        at: datetime,
        *,
        enabled: bool = True,
        channels: Sequence[Channel] = (),
        cooldown_s: float = DEFAULT_COOLDOWN_S,
    ) -> SavedScan:
        """Save scan `name` (notifying `channels` of each entry); DuplicateScan when the name is
        taken."""
        check_scan_name(name)
        if not text.strip() or len(text) > _MAX_TEXT:
            raise ValueError(f"a scan's text must be 1–{_MAX_TEXT:,} characters")
        if not cooldown_s >= 0:
            raise ValueError("a scan's cooldown must be 0 or more seconds")
        now = to_us(at, "at")
        async with self._store.write_transaction(f"Saving scan {name}") as conn:
            taken = await conn.scalar(select(func.count()).where(scans.c.name == name))
            if taken:
                raise DuplicateScan(name)
            await conn.execute(
                insert(scans).values(
                    name=name,
                    text=text,
                    enabled=int(enabled),
                    created_at=now,
                    updated_at=now,
                    channels=json.dumps([c.ref for c in channels]),
                    channel_labels=json.dumps([c.label for c in channels]),
                    cooldown_s=float(cooldown_s),
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
        *,
        provider: str = "simulator",
        feed: Feed = Feed.SIMULATED,
    ) -> int:
        """One tick: each scan's run (name, how many matched, ranked matches) and the
        enter/leave events (scan, symbol, "enter"|"leave", when), in one transaction, with an
        alert for each entry into a scan with channels (see the module docstring). Returns how
        many alerts were queued."""
        if not runs and not events:
            return 0
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
        queued = 0
        async with self._store.write_transaction("Recording scan results") as conn:
            if run_rows:
                await conn.execute(insert(scan_runs), run_rows)
            event_rows = await _new_events(conn, event_rows)
            if event_rows:
                await conn.execute(insert(scan_events), event_rows)
                queued = await _alert_entries(conn, event_rows, provider, feed)
        return queued

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
