"""The plain reader (store/plainread.py) answers what the Store's repositories answer, on the
same SQLite files, and steps aside for every store it does not handle."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from optterm.model import PatternKind, Side
from optterm.store import Store, StoreError, open_store
from optterm.store.db import resolve_url
from optterm.store.plainread import PlainReader, open_plain
from optterm.store.rows import RuleStateRow
from tests.test_store import make_chain
from tests.test_store_alerts import APP, OPS, make_event, make_rule
from tests.test_store_analytics import make_signal

T0 = datetime(2026, 11, 23, 3, 45, tzinfo=UTC)  # 09:15 IST
LATE = datetime(2026, 11, 23, 18, 45, tzinfo=UTC)  # 00:15 IST on the 24th


async def _fill(store: Store) -> None:
    """Rules of two owners and symbols, state, firings, signals and snapshots."""
    r1 = await store.alerts.add_rule(make_rule())
    r2 = await store.alerts.add_rule(
        make_rule(
            owner="ravi",
            symbol="BANKNIFTY",
            expiry=date(2026, 12, 29),
            strike=52_000.0,
            side=Side.CE,
            pattern=PatternKind.CALL_BUILDUP,
            active_from=time(9, 30),
            active_to=time(15, 0),
            enabled=False,
            note="नोट ₹",
        )
    )
    r3 = await store.alerts.add_rule(make_rule(threshold=26_000.0))
    assert r1.id is not None and r2.id is not None and r3.id is not None
    await store.alerts.record_firings(
        [(make_event(r1.id), [APP, OPS]), (make_event(r1.id, T0 + timedelta(minutes=5)), [APP])],
        [RuleStateRow(r1.id, False, 25_010.5, T0, 1)],
    )
    await store.alerts.record_firings([(make_event(r2.id), [APP])], [])  # fired, no state row
    await store.alerts.save_states([RuleStateRow(r3.id, True, None, None, 0)])
    signals = [
        make_signal("a", last_seen=T0),
        make_signal("b", kind=PatternKind.PUT_BUILDUP, last_seen=T0 + timedelta(minutes=1)),
        make_signal("c", symbol="BANKNIFTY", last_seen=T0 + timedelta(minutes=2)),
        make_signal("d", last_seen=T0 - timedelta(hours=2), ttl=timedelta(minutes=1)),
    ]
    await store.analytics.save([], signals)
    for ts in (T0, T0 + timedelta(hours=6), LATE):
        await store.snapshots.write(make_chain(ts=ts))
    await store.snapshots.write(make_chain(ts=T0, provider="nse"))
    await store.snapshots.write(make_chain(expiry=date(2026, 12, 1), ts=T0))


def _plain(db: Path) -> PlainReader:
    reader = open_plain(f"sqlite+aiosqlite:///{db}")
    assert reader is not None
    return reader


async def test_the_plain_reader_answers_what_the_repositories_answer(db: Path) -> None:
    store = await open_store(str(db))
    try:
        await _fill(store)
        with _plain(db) as reader:
            for owner in (None, "asha", "ravi", "nobody"):
                for symbol in (None, "NIFTY", "BANKNIFTY"):
                    want = await store.alerts.list_rules(owner=owner, symbol=symbol)
                    assert reader.list_rules(owner=owner, symbol=symbol) == want
            assert len(reader.list_rules()) == 3
            activity = reader.load_activity()
            assert activity == await store.alerts.load_activity()
            assert {k: v.fire_count for k, v in activity.items()} == {1: 2, 2: 1, 3: 0}
            queries: list[dict[str, object]] = [
                {},
                {"symbol": "NIFTY"},
                {"kinds": [PatternKind.PUT_BUILDUP, "CALL_BUILDUP"]},
                {"since": T0 + timedelta(seconds=30)},
                {"active_at": T0 + timedelta(minutes=3)},
                {"limit": 2},
                {"limit": None, "symbol": "BANKNIFTY", "since": T0 - timedelta(days=1)},
            ]
            for q in queries:
                want_signals = await store.analytics.load_signals(**q)  # type: ignore[arg-type]
                assert reader.load_signals(**q) == want_signals, q  # type: ignore[arg-type]
            history = await store.snapshots.history()
            assert len(history) == 4  # the late one is the next IST day
            assert [dataclasses.astuple(r) for r in reader.history()] == [
                dataclasses.astuple(r) for r in history
            ]
    finally:
        await store.close()


def test_an_empty_store_reads_as_empty(db: Path) -> None:
    _create(db)
    with _plain(db) as reader:
        assert reader.list_rules() == [] and reader.load_activity() == {}
        assert reader.load_signals() == [] and reader.history() == []


def _create(db: Path) -> None:
    async def create() -> None:
        await (await open_store(str(db))).close()

    asyncio.run(create())


def test_a_file_it_does_not_read_is_left_to_open_store(db: Path) -> None:
    assert open_plain(str(db)) is None  # missing: open_store creates it
    assert not db.exists()
    db.parent.mkdir(parents=True)
    db.touch()
    assert open_plain(str(db)) is None  # empty: open_store initialises it
    for url in ("sqlite://", "sqlite+aiosqlite:///:memory:", "postgresql://u:p@127.0.0.1/x"):
        assert open_plain(url) is None
    _create(db)
    assert open_plain(f"sqlite:///{db}?mode=ro") is None  # URI options: the Store's business
    odd = db.with_name("prüfung.db")  # a URL would escape it: left to open_store
    _create(odd)
    assert open_plain(str(odd)) is None
    with sqlite3.connect(db) as conn:  # an older schema: open_store migrates it
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert open_plain(str(db)) is None


def test_a_file_that_is_not_an_optterm_database_is_refused_as_open_store_would(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"not a database at all" * 10)
    with pytest.raises(StoreError, match="not an optterm database"):
        open_plain(str(bad))


@pytest.mark.parametrize(
    "url",
    [
        "{db}",
        "sqlite:///{db}",
        "sqlite+aiosqlite:///{db}",
        "  sqlite+aiosqlite:///{db}  ",
        "relative/optterm.db",
        "sqlite:///relative/optterm.db",
        "~/optterm.db",
    ],
)
def test_it_finds_the_file_resolve_url_finds(
    db: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file open_store would open, for every plain form of a SQLite URL."""
    monkeypatch.chdir(db.parent.parent)  # relative paths land in the test's own folder
    text = url.format(db=db)
    expected = resolve_url(text).path
    assert expected is not None
    _create(expected)
    reader = open_plain(text)
    assert reader is not None and reader.path == expected
    reader.close()


async def test_plain_status_reports_what_gather_status_reports(db: Path) -> None:
    """`optterm status` on the plain reader: the whole report equal to the Store's, with no
    lease ever taken, one held (with the daemon's report), and one released."""
    from optterm.cli.status import RECENT_FAILED, gather_status, plain_status
    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.model import Delivery, ProviderHealth
    from optterm.store.lease import acquire_lease
    from optterm.store.status import DaemonReport
    from tests.test_outbox_store import add_event, add_row

    settings, calendar = Settings(), MarketCalendar()
    now = T0 + timedelta(hours=2)
    store = await open_store(str(db))
    try:

        async def same() -> dict[str, object]:
            want = (await gather_status(settings, store, now=now, calendar=calendar)).doc
            with _plain(db) as reader:
                assert plain_status(settings, reader, now=now, calendar=calendar).doc == want
            return want

        assert (await same())["lease"] is None
        await store.snapshots.write(make_chain(ts=now - timedelta(minutes=1)))
        await store.snapshots.write(make_chain(expiry=date(2026, 12, 1), ts=T0))  # written last
        day = date(2026, 11, 23)
        await store.health.save(
            [
                ProviderHealth(
                    "nse", day, 10, 7, {"server": 3}, 700.0, 80.0, "open", "HTTP 503", T0
                ),
                ProviderHealth("angelone", day, 3, 3, {}, 900.0, 250.0),
            ]
        )
        await store.health.save([ProviderHealth("nse", day - timedelta(days=1), 1, 1)])
        ev = await add_event(store, title="NIFTY above 24500")
        for i in range(RECENT_FAILED + 2):
            due = now - timedelta(minutes=i + 1)
            await add_row(store, ev, f"tag:x{i}", due=due, status=Delivery.FAILED, error="500")
        await add_row(store, ev, "app", due=now, status=Delivery.SENT)
        lease = await acquire_lease(store, wait=False)
        lease.report = lambda: DaemonReport(interval_s=15.0, heartbeat_s=5.0, ticks=3)
        await lease.heartbeat()
        held = await same()
        assert held["lease"]["live"] and held["daemon"] is not None  # type: ignore[index]
        assert held["failed_last_hour"] == RECENT_FAILED + 2 and len(held["providers"]) == 2
        await lease.release()
        assert not (await same())["lease"]["live"]  # type: ignore[index]
    finally:
        await store.close()
