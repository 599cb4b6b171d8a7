"""Alert rules, state, events and outbox rows in the store, on real SQLite files."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from optterm.engine.notify.channels import Channel
from optterm.model import (
    AlertEvent,
    AlertKind,
    AlertRule,
    Condition,
    Delivery,
    Feed,
    PatternKind,
    Side,
)
from optterm.store import Store, StoreError, open_store
from optterm.store.alerts import RuleStateRow, UnknownRule

T0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
APP = Channel("app", "in-app")
OPS = Channel("tag:ops", "tag:ops (ntfy://ntfy.sh/…)")


def make_rule(**changes: object) -> AlertRule:
    rule = AlertRule(
        symbol="NIFTY",
        kind=AlertKind.PRICE,
        condition=Condition.ABOVE,
        threshold=25_000.0,
        metric="spot",
        hysteresis=25.0,
        channels=("app", "tag:ops"),
        channel_labels=("in-app", "tag:ops (ntfy://ntfy.sh/…)"),
        owner="asha",
        note="NIFTY spot crosses above 25000",
    )
    return dataclasses.replace(rule, **changes)


def make_event(rule_id: int, at: datetime = T0, **changes: object) -> AlertEvent:
    event = AlertEvent(
        rule_id=rule_id,
        symbol="NIFTY",
        kind=AlertKind.PRICE,
        fired_at=at,
        value=25_010.5,
        threshold=25_000.0,
        title="NIFTY spot 25,010.50 crossed above 25,000.00",
        body="spot 25,010.50",
        provider="simulator",
        feed=Feed.SIMULATED,
        context=(("spot", 25_010.5), ("expiry", "2026-11-24"), ("iv", math.nan)),
    )
    return dataclasses.replace(event, **changes)


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------------------------------------- rules


async def test_rule_round_trip_with_every_field(store: Store, db: Path) -> None:
    full = make_rule(
        kind=AlertKind.VOLATILITY,
        condition=Condition.BELOW,
        threshold=0.2,
        expiry=date(2026, 12, 29),
        strike=25_000.0,
        side=Side.PE,
        metric="iv",
        hysteresis=0.005,
        window_s=900.0,
        cooldown_s=60.0,
        recurring=False,
        active_from=time(9, 30),
        active_to=time(15, 0),
    )
    added = await store.alerts.add_rule(full)
    assert added.id is not None and added.created_at is not None
    assert added.created_at.tzinfo is not None
    got = await store.alerts.get_rule(added.id)
    assert got == added
    pattern = await store.alerts.add_rule(
        make_rule(
            kind=AlertKind.PATTERN_DETECTED,
            pattern=PatternKind.GAMMA_SQUEEZE,
            threshold=70.0,
            metric="",
            channels=("app",),
            channel_labels=("in-app",),
        )
    )
    assert (await store.alerts.get_rule(pattern.id or 0)) == pattern
    assert await store.alerts.get_rule(999) is None
    # The database holds references and labels, never a URL.
    assert rows(db, "SELECT channels, channel_labels FROM alert_rules WHERE id = 1") == [
        ('["app", "tag:ops"]', '["in-app", "tag:ops (ntfy://ntfy.sh/…)"]')
    ]
    with pytest.raises(ValueError, match="already has id"):
        await store.alerts.add_rule(added)


async def test_list_rules_filters(store: Store) -> None:
    a = await store.alerts.add_rule(make_rule())
    b = await store.alerts.add_rule(make_rule(symbol="BANKNIFTY", owner="ravi"))
    c = await store.alerts.add_rule(make_rule(enabled=False))
    assert [r.id for r in await store.alerts.list_rules()] == [a.id, b.id, c.id]
    assert [r.id for r in await store.alerts.list_rules(owner="asha")] == [a.id, c.id]
    assert [r.id for r in await store.alerts.list_rules(symbol="BANKNIFTY")] == [b.id]
    assert [r.id for r in await store.alerts.list_rules(enabled=True)] == [a.id, b.id]
    assert [r.id for r in await store.alerts.list_rules(owner="asha", enabled=False)] == [c.id]


async def test_update_enable_delete(store: Store, db: Path) -> None:
    rule = await store.alerts.add_rule(make_rule())
    assert rule.id is not None
    await store.alerts.save_states([RuleStateRow(rule.id, False, 25_100.0, T0, 3)])
    changed = await store.alerts.update_rule(
        dataclasses.replace(rule, threshold=25_500.0, note="x")
    )
    assert changed.created_at == rule.created_at
    assert (await store.alerts.get_rule(rule.id)) == changed
    assert await store.alerts.load_states() == {}  # the old state belonged to the old threshold
    with pytest.raises(UnknownRule, match="no alert rule 77"):
        await store.alerts.update_rule(dataclasses.replace(rule, id=77))

    assert await store.alerts.set_enabled(rule.id, False) is True
    assert (await store.alerts.get_rule(rule.id)).enabled is False  # type: ignore[union-attr]
    assert await store.alerts.set_enabled(rule.id, True) is True
    assert await store.alerts.set_enabled(999, True) is False

    [event] = await store.alerts.record_firings(
        [(make_event(rule.id), [APP])], [RuleStateRow(rule.id, False, 25_600.0, T0, 1)]
    )
    assert await store.alerts.delete_rule(rule.id) is True
    assert await store.alerts.delete_rule(rule.id) is False
    assert await store.alerts.get_rule(rule.id) is None
    assert await store.alerts.load_states() == {}
    # History outlives its rule.
    assert [v.event.id for v in await store.alerts.list_events()] == [event.id]
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(1,)]


async def test_rules_version_changes_on_every_edit(store: Store) -> None:
    seen = [await store.alerts.rules_version()]

    async def changed() -> None:
        v = await store.alerts.rules_version()
        assert v != seen[-1]
        seen.append(v)

    a = await store.alerts.add_rule(make_rule())
    await changed()
    b = await store.alerts.add_rule(make_rule(symbol="BANKNIFTY"))
    await changed()
    assert await store.alerts.rules_version() == seen[-1]  # reading changes nothing
    await store.alerts.update_rule(dataclasses.replace(a, threshold=26_000.0))
    await changed()
    await store.alerts.set_enabled(a.id or 0, False)
    await changed()
    await store.alerts.set_enabled(a.id or 0, True)
    await changed()
    await store.alerts.delete_rule(b.id or 0)  # the newest-updated rule is a, so max is unchanged
    await changed()
    await store.alerts.delete_rule(a.id or 0)
    await changed()
    assert seen[-1] == seen[0]  # an empty rule set again: the same version is right
    await store.alerts.add_rule(make_rule())
    await changed()
    assert len(set(seen[1:])) == len(seen) - 1  # every other rule set had its own version
    # State and events are not rule edits.
    v = await store.alerts.rules_version()
    await store.alerts.save_states([RuleStateRow(1, True, None, None, 0)])
    assert await store.alerts.rules_version() == v


# ------------------------------------------------------------------------------------- state


async def test_states_round_trip_and_upsert(store: Store) -> None:
    assert await store.alerts.load_states() == {}
    await store.alerts.save_states(
        [
            RuleStateRow(1, True, 25_000.5, None, 0),
            RuleStateRow(2, False, math.nan, T0, 4),
        ]
    )
    got = await store.alerts.load_states()
    assert got[1] == RuleStateRow(1, True, 25_000.5, None, 0)
    assert got[2].last_value is None  # NaN is stored as NULL
    assert got[2].last_fired_at == T0 and got[2].last_fired_at.tzinfo is not None
    await store.alerts.save_states([RuleStateRow(1, False, 24_000.0, T0, 1)])
    got = await store.alerts.load_states()
    assert got[1] == RuleStateRow(1, False, 24_000.0, T0, 1) and got[2].fire_count == 4
    await store.alerts.save_states([])


# ------------------------------------------------------------------------------------ events


async def test_record_firings_writes_events_outbox_and_state_together(
    store: Store, db: Path
) -> None:
    r1 = await store.alerts.add_rule(make_rule())
    r2 = await store.alerts.add_rule(make_rule(recurring=False, symbol="BANKNIFTY"))
    assert r1.id is not None and r2.id is not None
    version = await store.alerts.rules_version()
    before = datetime.now(UTC)
    events = await store.alerts.record_firings(
        [
            (make_event(r1.id), [APP, OPS]),
            (make_event(r2.id, T0 + timedelta(seconds=5), symbol="BANKNIFTY"), [OPS]),
        ],
        [RuleStateRow(r1.id, False, 25_010.5, T0, 1), RuleStateRow(r2.id, False, 1.0, T0, 1)],
        one_shot_done=[r2.id],
    )
    assert [e.id for e in events] == [1, 2]
    assert events[0] == make_event(r1.id, id=1)
    out = rows(
        db,
        "SELECT event_id, channel, channel_label, idempotency_key, status, attempts, "
        "next_attempt_at, last_error, sent_at FROM outbox ORDER BY id",
    )
    assert [(o[0], o[1], o[2]) for o in out] == [
        (1, "app", "in-app"),
        (1, "tag:ops", OPS.label),
        (2, "tag:ops", OPS.label),
    ]
    for o in out:
        assert o[3] == hashlib.sha256(f"{o[0]}:{o[1]}".encode()).hexdigest()[:32]
        assert o[4] == "PENDING" and o[5] == 0 and o[7] is None and o[8] is None
        assert o[6] >= int(before.timestamp() * 1e6) - 1  # next_attempt_at = now
    states = await store.alerts.load_states()
    assert states[r1.id].fire_count == 1 and not states[r1.id].armed
    # The one-shot rule was disabled in the same transaction; the recurring one was not.
    assert (await store.alerts.get_rule(r2.id)).enabled is False  # type: ignore[union-attr]
    assert (await store.alerts.get_rule(r1.id)).enabled is True  # type: ignore[union-attr]
    assert await store.alerts.rules_version() != version


async def test_record_firings_rolls_everything_back_on_failure(store: Store, db: Path) -> None:
    rule = await store.alerts.add_rule(make_rule(recurring=False))
    assert rule.id is not None
    await store.alerts.save_states([RuleStateRow(rule.id, True, 24_990.0, None, 0)])
    with pytest.raises(StoreError, match="idempotency_key"):
        await store.alerts.record_firings(
            [
                (make_event(rule.id), [APP]),
                (make_event(rule.id), [OPS, OPS]),  # the same (event, channel) twice
            ],
            [RuleStateRow(rule.id, False, 25_010.0, T0, 1)],
            one_shot_done=[rule.id],
        )
    assert rows(db, "SELECT COUNT(*) FROM alert_events") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert (await store.alerts.load_states())[rule.id] == RuleStateRow(
        rule.id, True, 24_990.0, None, 0
    )
    assert (await store.alerts.get_rule(rule.id)).enabled is True  # type: ignore[union-attr]
    # The store is still usable after the failed transaction.
    [event] = await store.alerts.record_firings([(make_event(rule.id), [APP])], [])
    assert event.id is not None


async def test_record_firings_with_only_state(store: Store) -> None:
    assert await store.alerts.record_firings([], [RuleStateRow(5, True, 1.0, None, 0)]) == []
    assert (await store.alerts.load_states())[5].armed is True


async def test_list_events_newest_first_with_deliveries(store: Store, db: Path) -> None:
    r1 = await store.alerts.add_rule(make_rule())
    r2 = await store.alerts.add_rule(make_rule(symbol="BANKNIFTY"))
    assert r1.id is not None and r2.id is not None
    await store.alerts.record_firings([(make_event(r1.id, T0), [APP, OPS])], [])
    await store.alerts.record_firings(
        [(make_event(r2.id, T0 + timedelta(minutes=1), symbol="BANKNIFTY", value=math.nan), [])],
        [],
    )
    await store.alerts.record_firings([(make_event(r1.id, T0 + timedelta(minutes=2)), [OPS])], [])
    with sqlite3.connect(db) as conn:  # what a dispatcher would have done
        conn.execute(
            "UPDATE outbox SET status='SENT', attempts=1, sent_at=? WHERE id=1",
            (int((T0 + timedelta(seconds=1)).timestamp() * 1e6),),
        )
        conn.execute("UPDATE outbox SET status='FAILED', attempts=3, last_error='HTTP 500' "
                     "WHERE id=2")  # fmt: skip

    views = await store.alerts.list_events()
    assert [v.event.id for v in views] == [3, 2, 1]
    oldest = views[-1]
    assert oldest.event == make_event(r1.id, T0, id=1)
    assert math.isnan(oldest.event.context[2][1])  # type: ignore[arg-type]
    sent, failed = oldest.deliveries
    assert (sent.channel_label, sent.status, sent.attempts) == ("in-app", Delivery.SENT, 1)
    assert sent.sent_at == T0 + timedelta(seconds=1)
    assert (failed.status, failed.attempts, failed.last_error) == (Delivery.FAILED, 3, "HTTP 500")
    assert failed.sent_at is None
    assert views[1].deliveries == () and math.isnan(views[1].event.value)
    assert [v.event.id for v in await store.alerts.list_events(rule_id=r1.id)] == [3, 1]
    assert [v.event.id for v in await store.alerts.list_events(symbol="BANKNIFTY")] == [2]
    since = await store.alerts.list_events(since=T0 + timedelta(minutes=1))
    assert [v.event.id for v in since] == [3, 2]
    assert [v.event.id for v in await store.alerts.list_events(limit=1)] == [3]
    with pytest.raises(ValueError, match="limit"):
        await store.alerts.list_events(limit=0)


async def test_rules_survive_reopening(db: Path) -> None:
    async with await open_store(str(db)) as s:
        rule = await s.alerts.add_rule(make_rule())
        await s.alerts.save_states([RuleStateRow(rule.id or 0, False, 1.5, T0, 2)])
    async with await open_store(str(db)) as s:
        assert await s.alerts.list_rules() == [rule]
        assert (await s.alerts.load_states())[rule.id or 0].fire_count == 2


# ------------------------------------------------------------------------------ rule ids


async def test_a_deleted_rules_id_is_never_given_to_a_new_rule(store: Store) -> None:
    first = await store.alerts.add_rule(make_rule())
    newest = await store.alerts.add_rule(make_rule(threshold=25_500.0))
    assert first.id is not None and newest.id is not None
    [event] = await store.alerts.record_firings([(make_event(newest.id), [APP])], [])
    assert await store.alerts.delete_rule(newest.id)
    after = await store.alerts.add_rule(make_rule(threshold=26_000.0))
    assert after.id is not None and after.id > newest.id
    # The deleted rule's firing stays its own: the new rule has no history.
    assert await store.alerts.list_events(rule_id=after.id) == []
    assert [v.event.id for v in await store.alerts.list_events(rule_id=newest.id)] == [event.id]
    # Deleting every rule does not reset the counter either.
    for rule in await store.alerts.list_rules():
        assert rule.id is not None and await store.alerts.delete_rule(rule.id)
    again = await store.alerts.add_rule(make_rule())
    assert again.id is not None and again.id > after.id


T0_US = 1_790_000_000_000_000


def _rule_values(rule_id: int, threshold: float) -> dict[str, object]:
    """One alert_rules row as the 0004 schema stores it."""
    return {
        "id": rule_id, "owner": "asha", "symbol": "NIFTY", "kind": "PRICE",
        "condition": "ABOVE", "threshold": threshold, "expiry": None, "strike": None,
        "side": None, "metric": "spot", "pattern": None, "hysteresis": 25.0, "tolerance": 0.0,
        "window_s": 300.0, "cooldown_s": 300.0, "recurring": 1, "active_from": None,
        "active_to": None, "channels": '["app"]', "channel_labels": '["in-app"]',
        "enabled": 1, "note": f"NIFTY spot crosses above {threshold:g}",
        "created_at": T0_US + rule_id, "updated_at": T0_US + rule_id,
    }  # fmt: skip


async def test_a_database_from_before_autoincrement_keeps_its_rules_and_never_reuses_ids(
    tmp_path: Path,
) -> None:
    from alembic import command

    from optterm.store.migrate import alembic_config, head_revision

    path = tmp_path / "old.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "0005")  # the schema before this fix
    with sqlite3.connect(path) as raw:
        assert (
            "AUTOINCREMENT"
            not in raw.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'alert_rules'"
            ).fetchone()[0]
        )
        cols = list(_rule_values(0, 0.0))
        insert = (
            f"INSERT INTO alert_rules ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        )
        for rule_id, threshold in ((1, 25_000.0), (2, 25_500.0), (3, 26_000.0)):
            raw.execute(insert, list(_rule_values(rule_id, threshold).values()))
        raw.execute(
            "INSERT INTO alert_state VALUES (1, 0, 25010.5, 1790000000000000, 2, 1790000000000000)"
        )
        # Rule 3 fired and was deleted under the old schema; so was rule 4, whose id only its
        # firing still names. Either id would have been handed out again.
        for event_id, rule_id in ((1, 1), (2, 3), (3, 4)):
            raw.execute(
                "INSERT INTO alert_events (id, rule_id, symbol, kind, fired_at, value, threshold,"
                " title, body, provider, feed, context, created_at) VALUES"
                " (?, ?, 'NIFTY', 'PRICE', ?, 25010.5, 25000.0, 't', 'b', 'sim', 'SIMULATED',"
                " '[]', ?)",
                (event_id, rule_id, 1_790_000_000_000_000 + event_id, 1_790_000_000_000_000),
            )
        raw.execute("DELETE FROM alert_rules WHERE id = 3")
        before = raw.execute("SELECT * FROM alert_rules ORDER BY id").fetchall()
        events_before = raw.execute("SELECT * FROM alert_events ORDER BY id").fetchall()
    raw.close()

    async with await open_store(str(path), create=False) as store:
        rules = await store.alerts.list_rules()
        assert [(r.id, r.threshold, r.note) for r in rules] == [
            (1, 25_000.0, "NIFTY spot crosses above 25000"),
            (2, 25_500.0, "NIFTY spot crosses above 25500"),
        ]
        assert (await store.alerts.load_states())[1].fire_count == 2
        new = await store.alerts.add_rule(make_rule())
        assert new.id == 5  # above every id a rule or a firing ever named
        assert await store.alerts.list_events(rule_id=new.id) == []

    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == (
            head_revision(),
        )
        sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'alert_rules'").fetchone()
        assert "AUTOINCREMENT" in sql[0]
        # Later revisions add columns (0013: strategy, NULL): the rows kept, column for column.
        after = raw.execute("SELECT * FROM alert_rules WHERE id < 5 ORDER BY id").fetchall()
        assert [r[: len(before[0])] for r in after] == before
        assert all(v is None for r in after for v in r[len(before[0]) :])
        assert raw.execute("SELECT * FROM alert_events ORDER BY id").fetchall() == events_before
        assert raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alert_rules'"
        ).fetchall() == [("ix_alert_rules_symbol",)]
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()


async def test_the_rule_id_migration_downgrades_and_upgrades_again(db: Path) -> None:
    from alembic import command

    from optterm.store.migrate import alembic_config

    async with await open_store(str(db)) as store:
        kept = await store.alerts.add_rule(make_rule())
        gone = await store.alerts.add_rule(make_rule(threshold=26_000.0))
        assert gone.id is not None
        await store.alerts.record_firings([(make_event(gone.id), [APP])], [])
        assert await store.alerts.delete_rule(gone.id)
    command.downgrade(alembic_config(f"sqlite:///{db}"), "0005")
    (sql,) = rows(db, "SELECT sql FROM sqlite_master WHERE name = 'alert_rules'")[0]
    assert "AUTOINCREMENT" not in sql
    async with await open_store(str(db)) as store:  # upgraded again
        assert await store.alerts.list_rules() == [kept]
        # The counter starts above the deleted rule, which its firing still names.
        assert (await store.alerts.add_rule(make_rule())).id == 3


async def test_activity_counts_a_rules_firings_from_the_history(store: Store) -> None:
    fired = await store.alerts.add_rule(make_rule())
    pattern = await store.alerts.add_rule(make_rule(threshold=70.0))
    quiet = await store.alerts.add_rule(make_rule(threshold=26_000.0))
    assert fired.id and pattern.id and quiet.id
    later = T0 + timedelta(minutes=7)
    await store.alerts.record_firings(
        [
            (make_event(fired.id, T0), [APP]),
            (make_event(fired.id, later), [APP]),
            (make_event(pattern.id, T0), [APP]),
        ],
        # The first rule's state says it is waiting to re-arm; the pattern rule has no state
        # row (as before pattern rules saved theirs); the quiet one's was never fired.
        [
            RuleStateRow(fired.id, False, 25_010.5, later, 2),
            RuleStateRow(quiet.id, True, 1.0, None, 0),
        ],
    )
    activity = await store.alerts.load_activity()
    assert activity[fired.id] == RuleStateRow(fired.id, False, 25_010.5, later, 2)
    assert activity[pattern.id] == RuleStateRow(pattern.id, True, None, T0, 1)
    assert activity[quiet.id] == RuleStateRow(quiet.id, True, 1.0, None, 0)
    # An edit drops the evaluation state, not the firings.
    await store.alerts.update_rule(dataclasses.replace(fired, threshold=25_100.0))
    assert (await store.alerts.load_activity())[fired.id] == RuleStateRow(
        fired.id, True, None, later, 2
    )
