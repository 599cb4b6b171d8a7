"""The store on a real PostgreSQL server: the same code and Alembic migrations as on SQLite.

Each test gets a fresh database on a private server that the tests start themselves
(tests/pg_server.py; it fails, never skips, when PostgreSQL is not installed).

The first block re-runs the SQLite suites' backend-neutral tests unchanged: imported here, they
use this module's `store` and `db` fixtures (`db` is the database URL here; those tests only pass
it to `open_store(str(db))`). Tests that inspect the SQLite file itself stay SQLite-only; their
PostgreSQL counterparts follow below.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text, update

from optterm.model import Delivery
from optterm.store import SchemaTooNewError, Store, StoreError, open_store
from optterm.store.alerts import RuleStateRow, UnknownRule
from optterm.store.db import resolve_url
from optterm.store.migrate import alembic_config, head_revision
from optterm.store.schema import alert_events, metadata, snapshots
from optterm.store.schema import outbox as outbox_table
from tests.pg_server import PgServer

# The SQLite suites' backend-neutral tests, collected again here against PostgreSQL.
from tests.test_outbox_store import (  # noqa: F401
    test_backlog_and_next_due,
    test_claim_is_atomic_and_counts_the_attempt,
    test_due_is_pending_and_due_oldest_first_with_the_event_text,
    test_idempotency_key_is_unique_per_event_and_channel,
    test_price_alerts_are_warnings_and_an_orphan_row_still_has_text,
    test_recover_interrupted_fails_sending_rows_without_resending,
    test_sent_retry_and_failed_transitions,
    test_times_must_be_aware,
)
from tests.test_provider_health_store import test_health_rows_upsert_and_read_back  # noqa: F401
from tests.test_store import (  # noqa: F401
    EXP1,
    T0,
    assert_same,
    make_chain,
    test_concurrent_writes_from_one_store,
    test_count_snapshots_filters,
    test_history_summary_groups_by_ist_trading_date,
    test_iter_snapshots_orders_bounds_and_batches,
    test_latest_chain_picks_the_nearest_live_expiry,
    test_nan_spot_empty_meta_and_other_feeds_survive,
    test_purge_deletes_old_snapshots_only,
    test_purge_in_batches_interleaves_with_writes,
    test_skip_unchanged_provider_ts,
    test_strike_series_equals_the_source_columns,
    test_write_then_read_back_exactly,
)
from tests.test_store_alerts import (  # noqa: F401
    APP,
    OPS,
    make_event,
    make_rule,
    test_a_deleted_rules_id_is_never_given_to_a_new_rule,
    test_activity_counts_a_rules_firings_from_the_history,
    test_list_rules_filters,
    test_record_firings_with_only_state,
    test_rules_survive_reopening,
    test_rules_version_changes_on_every_edit,
    test_states_round_trip_and_upsert,
)
from tests.test_store_analytics import (  # noqa: F401
    make_metrics,
    same_metrics,
    test_a_metrics_fault_in_a_ticks_write_keeps_its_snapshots,
    test_a_persisting_signal_updates_its_row_and_keeps_first_seen,
    test_a_snapshot_fault_in_a_ticks_write_stores_none_of_the_tick,
    test_a_tick_written_whole_keeps_the_metrics_of_its_stored_snapshots,
    test_daily_atm_iv_reaches_past_a_long_gap,
    test_daily_atm_iv_takes_the_last_row_of_each_ist_date,
    test_data_survives_reopening_the_store,
    test_latest_metrics,
    test_load_signals_filters,
    test_metrics_series_orders_and_bounds,
    test_metrics_upsert_on_symbol_expiry_ts,
    test_signal_round_trip,
)
from tests.test_store_core import (  # noqa: F401
    test_a_closed_store_refuses_every_repository,
    test_database_errors_name_the_action_and_leave_the_store_usable,
    test_every_repository_belongs_to_its_store,
)
from tests.test_store_status import (  # noqa: F401
    test_failed_deliveries_newest_first_with_their_event,
    test_failed_since_counts_every_failure_in_the_window,
    test_last_snapshot_is_the_one_written_last_not_the_newest_data,
    test_status_reports_every_failure_of_the_last_hour_and_lists_the_latest,
)
from tests.test_strategy_store import (  # noqa: F401
    test_a_damaged_row_is_one_error_naming_it_and_the_fix,
    test_a_strategy_is_saved_listed_read_back_and_removed,
    test_a_taken_or_unusable_name_or_bad_legs_are_refused_and_nothing_is_stored,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
def db(pg_url: str) -> str:
    return pg_url


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:
    s = await open_store(pg_url)
    try:
        yield s
    finally:
        await s.close()


async def scalar(store: Store, sql: str) -> object:
    async with store.read_connection() as conn:
        return await conn.scalar(text(sql))


# ------------------------------------------------------------------------------ opening


async def test_open_migrates_an_empty_database_to_head(pg_url: str) -> None:
    async with await open_store(pg_url) as store:
        assert store.path is None
        assert store.url == pg_url  # no password to hide here
        assert await scalar(store, "SELECT version_num FROM alembic_version") == head_revision()
        assert await scalar(store, "SELECT value FROM store_info WHERE key='application'") == (
            "optterm"
        )
        column_type = "SELECT data_type FROM information_schema.columns WHERE table_name = "
        assert await scalar(store, column_type + "'snapshots' AND column_name='data'") == "bytea"
        assert await scalar(store, column_type + "'snapshots' AND column_name='id'") == "bigint"
        assert await scalar(store, column_type + "'metrics' AND column_name='ts'") == "bigint"
        # The migrations yield exactly the live metadata here too.
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        async with store.read_connection() as conn:
            diffs = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
        assert diffs == []
        # Pool settings: one writer connection (the Store's write lock serialises on it),
        # autocommit readers.
        assert store._writer.pool.size() == 1
        async with store.read_connection() as conn:
            await conn.scalar(text("SELECT 1"))
            raw = await conn.get_raw_connection()
            assert not raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]


async def test_reopening_keeps_data_and_skips_unchanged(pg_url: str) -> None:
    async with await open_store(pg_url) as s1:
        assert await s1.snapshots.write(make_chain())
    async with await open_store(pg_url, create=False) as s2:
        assert not await s2.snapshots.write(make_chain(seed=9))  # seeded from the database
        assert await s2.snapshots.count() == 1
        latest = await s2.snapshots.latest("NIFTY")
        assert latest is not None
        assert_same(latest, make_chain())


async def test_two_stores_opening_a_new_database_at_once(pg_url: str) -> None:
    # All find no tables; the advisory lock makes the others wait and then see the first's
    # (without it they deadlock or collide on CREATE TABLE).
    opening = asyncio.gather(*(open_store(pg_url) for _ in range(3)))
    stores = await asyncio.wait_for(opening, 30)
    try:
        assert await scalar(stores[0], "SELECT count(*) FROM store_info") == 1
    finally:
        for s in stores:
            await s.close()


async def test_two_stores_on_one_database_never_duplicate(pg_url: str) -> None:
    async with await open_store(pg_url) as s1, await open_store(pg_url) as s2:
        assert await s1.snapshots.write(make_chain(seed=1))
        assert await s2.snapshots.write(make_chain(ts=T0 + 15 * SECOND))
        # s1's cache is stale; the unique index and a careful retry keep the data right.
        assert not await s1.snapshots.write(make_chain(ts=T0 + 15 * SECOND, seed=5))
        assert await s1.snapshots.write(make_chain(ts=T0 + 30 * SECOND))
        # Both write the same new key concurrently: exactly one row.
        results = await asyncio.gather(
            s1.snapshots.write(make_chain(ts=T0 + 45 * SECOND)),
            s2.snapshots.write(make_chain(ts=T0 + 45 * SECOND)),
        )
        assert sorted(results) == [False, True]
        assert await s2.snapshots.count() == 4


async def test_a_database_from_a_newer_optterm_is_refused_untouched(pg_url: str) -> None:
    async with await open_store(pg_url) as store:
        await store.snapshots.write(make_chain())
        async with store.write_transaction() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNewError) as err:
        await open_store(pg_url)
    msg = str(err.value)
    assert "newer version of optterm" in msg
    assert "9999" in msg
    assert pg_url in msg
    # Still as it was: read it behind the store's back.
    probe = resolve_url(pg_url)
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(probe.url)
    try:
        async with engine.connect() as conn:
            assert (await conn.scalar(text("SELECT version_num FROM alembic_version"))) == "9999"
            assert (await conn.scalar(select(func.count()).select_from(snapshots))) == 1
    finally:
        await engine.dispose()


async def test_an_older_schema_is_upgraded_in_place(pg_url: str) -> None:
    from alembic import command

    async with await open_store(pg_url) as store:
        await store.snapshots.write(make_chain())

        def downgrade(sync_conn: object) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync_conn
            command.downgrade(cfg, "0002")

        async with store.write_transaction() as conn:
            await conn.run_sync(downgrade)
        assert await scalar(store, "SELECT version_num FROM alembic_version") == "0002"
        assert await scalar(store, "SELECT to_regclass('alert_rules')") is None
    async with await open_store(pg_url, create=False) as store:
        assert await scalar(store, "SELECT version_num FROM alembic_version") == head_revision()
        assert await store.snapshots.count() == 1
        assert (await store.alerts.add_rule(make_rule())).id == 1


async def test_an_unreachable_server_is_a_clear_error(pg_server: PgServer) -> None:
    url = f"postgresql+asyncpg://optterm:s3cret@127.0.0.1:{pg_server.port}/no_such_database"
    with pytest.raises(StoreError, match="Check that the server is running") as err:
        await open_store(url)
    assert "s3cret" not in str(err.value)


def test_a_plain_postgresql_url_uses_asyncpg() -> None:
    target = resolve_url("postgresql://trader:pw@db.example:5432/optterm")
    assert target.url.drivername == "postgresql+asyncpg"
    assert not target.is_sqlite and target.path is None
    assert "pw" not in target.display


# ------------------------------------------------------------------------------ no SQLite SQL


async def test_no_sqlite_only_sql_and_checkpoint_is_a_no_op(store: Store) -> None:
    statements: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    for engine in (store._writer, store._reader):
        event.listen(engine.sync_engine, "before_cursor_execute", spy)
    for i in range(5):
        assert await store.snapshots.write(make_chain(ts=T0 + i * 15 * SECOND, seed=i))
    await store.checkpoint()
    assert await store.snapshots.purge(T0 + 2 * 15 * SECOND) == 2
    assert await store.snapshots.count() == 3
    assert statements
    assert not [s for s in statements if "PRAGMA" in s.upper() or "IMMEDIATE" in s.upper()]


# ------------------------------------------------------------------------------ snapshots


async def test_blobs_and_timestamps_are_stored_as_bytea_and_epoch_microseconds(
    store: Store,
) -> None:
    snap = make_chain()
    assert await store.snapshots.write(snap)
    async with store.read_connection() as conn:
        ts, data = (await conn.execute(select(snapshots.c.provider_ts, snapshots.c.data))).one()
    assert ts == int(T0.timestamp()) * 1_000_000
    assert isinstance(data, bytes) and len(data) > 100


# ------------------------------------------------------------------------------ analytics


async def test_metrics_nan_and_none_are_null(store: Store) -> None:
    holes = make_metrics(atm_iv=math.nan, iv_rank=None, iv_percentile=None)
    await store.analytics.save_metrics([holes])
    (back,) = await store.analytics.metrics_series(holes.symbol, holes.expiry)
    assert same_metrics(back, holes)
    assert await scalar(store, "SELECT count(*) FROM metrics WHERE atm_iv IS NULL") == 1


# ------------------------------------------------------------------------------ alerts, outbox


async def test_alert_rule_crud(store: Store) -> None:
    rule = await store.alerts.add_rule(make_rule())
    assert rule.id == 1 and rule.created_at is not None
    assert await store.alerts.get_rule(rule.id) == rule
    assert await scalar(store, "SELECT channels FROM alert_rules") == '["app", "tag:ops"]'
    await store.alerts.save_states([RuleStateRow(rule.id, False, 25_100.0, T0, 3)])
    changed = await store.alerts.update_rule(
        dataclasses.replace(rule, threshold=25_500.0, note="x")
    )
    assert changed.created_at == rule.created_at
    assert await store.alerts.get_rule(rule.id) == changed
    assert await store.alerts.load_states() == {}
    with pytest.raises(UnknownRule):
        await store.alerts.update_rule(dataclasses.replace(rule, id=77))
    assert await store.alerts.set_enabled(rule.id, False) is True
    assert (await store.alerts.get_rule(rule.id)).enabled is False  # type: ignore[union-attr]
    assert await store.alerts.set_enabled(999, True) is False
    assert await store.alerts.delete_rule(rule.id) is True
    assert await store.alerts.delete_rule(rule.id) is False
    assert await store.alerts.list_rules() == []


async def test_record_firings_then_claim_and_mark_the_outbox(store: Store) -> None:
    rule = await store.alerts.add_rule(make_rule(recurring=False))
    assert rule.id is not None
    [ev] = await store.alerts.record_firings(
        [(make_event(rule.id), [APP, OPS])],
        [RuleStateRow(rule.id, False, 25_010.5, T0, 1)],
        one_shot_done=[rule.id],
    )
    assert ev.id == 1
    assert (await store.alerts.get_rule(rule.id)).enabled is False  # type: ignore[union-attr]
    now = datetime.now(UTC) + SECOND
    due = await store.outbox.due(now)
    assert [(i.event_id, i.channel, i.title) for i in due] == [
        (1, "app", ev.title),
        (1, "tag:ops", ev.title),
    ]
    first, second = due
    assert await store.outbox.claim(first.id, now)
    assert not await store.outbox.claim(first.id, now)  # claimed once only
    assert await store.outbox.mark_sent(first.id, now)
    assert await store.outbox.claim(second.id, now)
    assert await store.outbox.mark_retry(second.id, now + 60 * SECOND, "HTTP 502")
    assert await store.outbox.next_due_at() == now + 60 * SECOND
    assert await store.outbox.claim(second.id, now)
    assert await store.outbox.mark_failed(second.id, "HTTP 410")
    assert await store.outbox.backlog() == {"PENDING": 0, "SENDING": 0, "SENT": 1, "FAILED": 1}
    [view] = await store.alerts.list_events()
    assert [(d.status, d.attempts) for d in view.deliveries] == [
        (Delivery.SENT, 1),
        (Delivery.FAILED, 2),
    ]
    assert view.deliveries[0].sent_at == now


async def test_record_firings_rolls_everything_back_on_a_duplicate_key(store: Store) -> None:
    rule = await store.alerts.add_rule(make_rule(recurring=False))
    assert rule.id is not None
    with pytest.raises(StoreError, match="idempotency_key"):
        await store.alerts.record_firings(
            [(make_event(rule.id), [APP]), (make_event(rule.id), [OPS, OPS])],
            [RuleStateRow(rule.id, False, 25_010.0, T0, 1)],
            one_shot_done=[rule.id],
        )
    async with store.read_connection() as conn:
        assert await conn.scalar(select(func.count()).select_from(alert_events)) == 0
        assert await conn.scalar(select(func.count()).select_from(outbox_table)) == 0
    assert (await store.alerts.get_rule(rule.id)).enabled is True  # type: ignore[union-attr]
    # The store (and its writer connection) is usable after the failed transaction.
    [event_] = await store.alerts.record_firings([(make_event(rule.id), [APP])], [])
    assert event_.id is not None
    async with store.write_transaction() as conn:
        await conn.execute(update(outbox_table).values(status=Delivery.SENDING.value))
    assert await store.outbox.recover_interrupted() == 1
