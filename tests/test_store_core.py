"""The Store's own part: its repositories, transactions, error messages and closing.
Backend-neutral: test_store_postgres.py runs these on PostgreSQL too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

import pytest
from sqlalchemy import exc, text

from optterm.model import AlertKind, AlertRule, Condition, ProviderHealth
from optterm.store import Store, StoreError, open_store
from tests.test_store import T0, make_chain


async def test_every_repository_belongs_to_its_store(store: Store, db: object) -> None:
    repos = [
        store.snapshots,
        store.analytics,
        store.health,
        store.alerts,
        store.outbox,
        store.jobs,
        store.daily,
        store.status,
    ]
    assert len({id(r) for r in repos}) == len(repos)
    # What one repository writes, the others (and a fresh store) see.
    rule = await store.alerts.add_rule(AlertRule("NIFTY", AlertKind.PRICE, Condition.ABOVE, 1.0))
    assert await store.snapshots.write(make_chain())
    async with await open_store(str(db)) as other:
        assert await other.alerts.get_rule(rule.id or 0) == rule
        assert await other.snapshots.count() == 1


async def test_a_closed_store_refuses_every_repository(db: object) -> None:
    store = await open_store(str(db))
    await store.close()
    await store.close()  # idempotent
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.snapshots.latest("NIFTY"),
        lambda: store.snapshots.write(make_chain()),
        lambda: store.alerts.list_rules(),
        lambda: store.outbox.backlog(),
        lambda: store.jobs.start("eod", T0),
        lambda: store.health.save([ProviderHealth("nse", date(2026, 11, 24), 1, 1)]),
        lambda: store.daily.summarized(date(2026, 11, 24)),
        lambda: store.status.last_snapshot(),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="is closed; open it again"):
            await call()


async def test_database_errors_name_the_action_and_leave_the_store_usable(store: Store) -> None:
    with pytest.raises(StoreError, match=r"^Doing the impossible failed on the database") as err:
        async with store.write_transaction("Doing the impossible") as conn:
            await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
    assert isinstance(err.value.__cause__, exc.SQLAlchemyError)
    with pytest.raises(StoreError, match=r"^Peeking failed on the database"):
        async with store.read_connection("Peeking") as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    # Without an action the caller gets the database error itself, to wrap as it sees fit.
    with pytest.raises(exc.SQLAlchemyError):
        async with store.write_transaction() as conn:
            await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
    # The failed transactions rolled back and their connection was replaced.
    assert await store.snapshots.write(make_chain())
    assert await store.snapshots.count() == 1


async def test_maintenance_is_a_no_op_without_a_sqlite_file() -> None:
    async with await open_store("sqlite+aiosqlite://") as store:
        assert store.path is None and not store.is_postgres
        await store.checkpoint()
        await store.reclaim_space()
        assert await store.snapshots.write(make_chain())
        assert await store.snapshots.purge(T0.replace(year=2100)) == 1
        assert await store.snapshots.count() == 0
