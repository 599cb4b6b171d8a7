"""Metrics and pattern signals in the store, on real SQLite files."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from optterm.model import (
    Bias,
    ChainSnapshot,
    Direction,
    Feed,
    Legs,
    MarketView,
    Metrics,
    PatternKind,
    Signal,
    Strength,
)
from optterm.store import Store, open_store
from optterm.store.errors import StoreError
from optterm.store.migrate import alembic_config, head_revision
from optterm.store.schema import METRIC_FLOATS

T0 = datetime(2026, 11, 23, 3, 45, tzinfo=UTC)  # 09:15 IST, Monday
IST = timezone(timedelta(hours=5, minutes=30))
EXP1 = date(2026, 11, 24)
EXP2 = date(2026, 12, 1)
NAN = math.nan


def make_metrics(
    ts: datetime = T0,
    expiry: date = EXP1,
    symbol: str = "NIFTY",
    *,
    atm_iv: float = 0.1234,
    **changes: object,
) -> Metrics:
    floats = {name: 100.0 + i + 0.125 for i, name in enumerate(METRIC_FLOATS)}
    floats.update(atm_iv=atm_iv, iv_rank=42.5, iv_percentile=61.0)
    m = Metrics(
        symbol=symbol,
        expiry=expiry,
        ts=ts,
        provider="simulator",
        feed=Feed.SIMULATED,
        forward_source="parity",
        view=MarketView(Bias.BULLISH, 1.5, ("PCR 1.32 rising", "spot above max pain")),
        **floats,
    )
    return dataclasses.replace(m, **changes)


def make_signal(
    key: str = "CALL_BUILDUP:NIFTY:2026-11-24:24500",
    *,
    kind: PatternKind = PatternKind.CALL_BUILDUP,
    symbol: str = "NIFTY",
    last_seen: datetime = T0,
    first_seen: datetime | None = None,
    ttl: timedelta = timedelta(minutes=15),
    **changes: object,
) -> Signal:
    s = Signal(
        key=key,
        kind=kind,
        symbol=symbol,
        expiry=EXP1,
        direction=Direction.BEARISH,
        strikes=(24_500.0, 24_550.0),
        confidence=72,
        strength=Strength.STRONG,
        evidence=(("oi_change_pct", 18.5), ("price_change_pct", -3.25)),
        summary="Call writers adding at 24500-24550",
        first_seen=first_seen or last_seen,
        last_seen=last_seen,
        expires_at=last_seen + ttl,
        updates=0,
        provider="simulator",
        feed=Feed.SIMULATED,
    )
    return dataclasses.replace(s, **changes)


def same_metrics(a: Metrics, b: Metrics) -> bool:
    for f in dataclasses.fields(Metrics):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


def test_metric_columns_are_exactly_the_float_fields_of_metrics() -> None:
    floats = [f.name for f in dataclasses.fields(Metrics) if f.type in ("float", "float | None")]
    assert sorted(floats) == sorted(METRIC_FLOATS)


# ------------------------------------------------------------------------------ metrics


async def test_metrics_round_trip_with_nan_and_none(store: Store, db: Path) -> None:
    full = make_metrics()
    holes = make_metrics(
        T0 + timedelta(seconds=15),
        atm_iv=NAN,
        gamma_flip=NAN,
        rr25=NAN,
        iv_rank=None,
        iv_percentile=None,
        forward_source="carry",
        feed=Feed.LIVE,
        view=MarketView(Bias.NEUTRAL, NAN, ()),
    )
    await store.analytics.save_metrics([full, holes])
    back = await store.analytics.metrics_series("NIFTY", EXP1)
    assert len(back) == 2
    assert same_metrics(back[0], full) and same_metrics(back[1], holes)
    assert math.isnan(back[1].atm_iv) and back[1].iv_rank is None and back[1].iv_percentile is None
    assert back[1].feed is Feed.LIVE and back[1].view.bias is Bias.NEUTRAL
    assert math.isnan(back[1].view.score) and back[1].view.reasons == ()
    assert back[0].view == full.view and isinstance(back[0].view.bias, Bias)
    assert back[0].ts == T0 and back[0].ts.tzinfo is not None
    # NaN is stored as NULL, not as some float.
    with sqlite3.connect(db) as raw:
        stored = raw.execute(
            "SELECT atm_iv, iv_rank, view_score FROM metrics ORDER BY ts"
        ).fetchall()
    raw.close()
    assert stored[0] == (0.1234, 42.5, 1.5) and stored[1] == (None, None, None)


async def test_metrics_upsert_on_symbol_expiry_ts(store: Store) -> None:
    await store.analytics.save_metrics([make_metrics()])
    bearish = MarketView(Bias.BEARISH, -2.0, ("PCR falling",))
    await store.analytics.save_metrics([make_metrics(spot=24_999.5, view=bearish, iv_rank=None)])
    (back,) = await store.analytics.metrics_series("NIFTY", EXP1)
    assert (back.spot, back.view, back.iv_rank) == (24_999.5, bearish, None)
    # A batch holding one key twice: the last one wins.
    await store.analytics.save_metrics([make_metrics(pcr_oi=0.5), make_metrics(pcr_oi=0.75)])
    (back,) = await store.analytics.metrics_series("NIFTY", EXP1)
    assert (back.spot, back.pcr_oi, back.view.bias) == (100.125, 0.75, Bias.BULLISH)
    await store.analytics.save_metrics([])  # nothing to do


async def test_metrics_series_orders_and_bounds(store: Store) -> None:
    # Written out of order, across two expiries and two symbols.
    rows = [make_metrics(T0 + timedelta(minutes=i)) for i in (3, 0, 4, 1, 2)]
    rows += [make_metrics(T0, EXP2), make_metrics(T0, symbol="BANKNIFTY")]
    await store.analytics.save_metrics(rows)
    series = await store.analytics.metrics_series("NIFTY", EXP1)
    assert [m.ts for m in series] == [T0 + timedelta(minutes=i) for i in range(5)]
    window = await store.analytics.metrics_series(
        "NIFTY", EXP1, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    )
    assert [m.ts for m in window] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert (
        len(await store.analytics.metrics_series("NIFTY", EXP1, start=T0 + timedelta(minutes=4)))
        == 1
    )
    assert (
        len(await store.analytics.metrics_series("NIFTY", EXP1, end=T0 + timedelta(minutes=1))) == 1
    )
    assert [m.expiry for m in await store.analytics.metrics_series("NIFTY", EXP2)] == [EXP2]
    assert await store.analytics.metrics_series("FINNIFTY", EXP1) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.analytics.metrics_series("NIFTY", EXP1, start=datetime(2026, 11, 23))


async def test_latest_metrics(store: Store) -> None:
    assert await store.analytics.latest_metrics("NIFTY") is None
    await store.analytics.save_metrics(
        [
            make_metrics(T0, EXP1, spot=1.0),
            make_metrics(T0 + timedelta(minutes=5), EXP1, spot=2.0),
            make_metrics(T0 + timedelta(minutes=6), EXP2, spot=3.0),
            make_metrics(T0 + timedelta(minutes=9), symbol="BANKNIFTY"),
        ]
    )
    # No expiry: the nearest live expiry of the newest day, not just the newest row.
    latest = await store.analytics.latest_metrics("NIFTY")
    assert latest is not None and (latest.expiry, latest.spot) == (EXP1, 2.0)
    far = await store.analytics.latest_metrics("NIFTY", EXP2)
    assert far is not None and far.spot == 3.0
    assert await store.analytics.latest_metrics("NIFTY", date(2027, 1, 1)) is None
    # The next day EXP1 has expired: its rows from the day before no longer make it "live".
    next_day = T0 + timedelta(days=2)
    await store.analytics.save_metrics([make_metrics(next_day, EXP2, spot=4.0)])
    latest = await store.analytics.latest_metrics("NIFTY")
    assert latest is not None and (latest.expiry, latest.spot) == (EXP2, 4.0)


async def test_daily_atm_iv_takes_the_last_row_of_each_ist_date(store: Store) -> None:
    day1 = datetime(2026, 11, 20, 0, 0, tzinfo=IST)  # Friday
    day2 = datetime(2026, 11, 23, 0, 0, tzinfo=IST)  # Monday
    day3 = datetime(2026, 11, 24, 0, 0, tzinfo=IST)
    rows = [
        make_metrics(day1 + timedelta(hours=9, minutes=15), atm_iv=0.10),
        make_metrics(day1 + timedelta(hours=15, minutes=29), atm_iv=0.11),  # day 1's last
        make_metrics(day1 + timedelta(hours=15, minutes=30), atm_iv=NAN),  # skipped: NaN
        # 23:00 UTC on the 20th is 04:30 IST on the 21st: a date of its own.
        make_metrics(datetime(2026, 11, 20, 23, 0, tzinfo=UTC), atm_iv=0.12),
        make_metrics(day2 + timedelta(hours=10), atm_iv=0.13),
        make_metrics(day2 + timedelta(hours=15), atm_iv=0.14),
        # A later row of a farther expiry the same day does not replace the nearest one.
        make_metrics(day2 + timedelta(hours=15, minutes=20), EXP2, atm_iv=0.30),
        make_metrics(day3 + timedelta(hours=9, minutes=20), atm_iv=0.15),  # the `before` date
        make_metrics(day1 + timedelta(hours=15), symbol="BANKNIFTY", atm_iv=0.5),
    ]
    await store.analytics.save_metrics(rows)
    before = day3 + timedelta(hours=12)
    assert await store.analytics.daily_atm_iv("NIFTY", before, 10) == pytest.approx(
        [0.11, 0.12, 0.14]
    )
    assert await store.analytics.daily_atm_iv("NIFTY", before, 2) == pytest.approx([0.12, 0.14])
    # `before` given in UTC: its IST date decides (18:30 UTC on the 23rd is the 24th in IST).
    utc_before = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
    assert await store.analytics.daily_atm_iv("NIFTY", utc_before, 10) == pytest.approx(
        [0.11, 0.12, 0.14]
    )
    just_before = datetime(2026, 11, 23, 18, 29, tzinfo=UTC)
    assert await store.analytics.daily_atm_iv("NIFTY", just_before, 10) == pytest.approx(
        [0.11, 0.12]
    )
    assert await store.analytics.daily_atm_iv("NIFTY", before, 0) == []
    assert await store.analytics.daily_atm_iv("SENSEX", before, 10) == []


async def test_daily_atm_iv_reaches_past_a_long_gap(store: Store) -> None:
    old = datetime(2025, 1, 10, 15, 0, tzinfo=IST)
    recent = datetime(2026, 11, 20, 15, 0, tzinfo=IST)
    await store.analytics.save_metrics(
        [make_metrics(old, atm_iv=0.2), make_metrics(recent, atm_iv=0.3)]
    )
    before = datetime(2026, 11, 24, 10, 0, tzinfo=IST)
    assert await store.analytics.daily_atm_iv("NIFTY", before, 1) == pytest.approx([0.3])
    assert await store.analytics.daily_atm_iv("NIFTY", before, 5) == pytest.approx([0.2, 0.3])


# ------------------------------------------------------------------------------ signals


async def test_signal_round_trip(store: Store) -> None:
    sig = make_signal(
        evidence=(("oi_change_pct", 18.5), ("z", NAN)), strikes=(24_500.0,), updates=3
    )
    await store.analytics.save_signals([sig])
    (back,) = await store.analytics.load_signals()
    assert dataclasses.replace(back, evidence=()) == dataclasses.replace(sig, evidence=())
    assert back.evidence[0] == ("oi_change_pct", 18.5)
    assert back.evidence[1][0] == "z" and math.isnan(back.evidence[1][1])
    assert type(back.kind) is PatternKind and type(back.direction) is Direction
    assert type(back.strength) is Strength and type(back.feed) is Feed
    assert isinstance(back.strikes, tuple) and isinstance(back.evidence[0], tuple)
    assert back.first_seen == T0 and back.expires_at == T0 + timedelta(minutes=15)


async def test_a_persisting_signal_updates_its_row_and_keeps_first_seen(store: Store) -> None:
    first = make_signal()
    await store.analytics.save_signals([first])
    later = T0 + timedelta(minutes=2)
    again = make_signal(
        last_seen=later,
        first_seen=later,  # the detector may not know; the store keeps the original
        confidence=88,
        strength=Strength.VERY_STRONG,
        evidence=(("oi_change_pct", 31.0),),
        summary="Call writers piling in at 24500",
        strikes=(24_500.0,),
        updates=1,
    )
    await store.analytics.save_signals([again])
    (back,) = await store.analytics.load_signals()
    assert back.first_seen == T0
    assert back.last_seen == later and back.expires_at == later + timedelta(minutes=15)
    assert (back.confidence, back.strength, back.updates) == (88, Strength.VERY_STRONG, 1)
    assert back.evidence == (("oi_change_pct", 31.0),) and back.strikes == (24_500.0,)
    assert back.summary == "Call writers piling in at 24500"
    # The same key twice in one batch: one row, the last values, the earliest first_seen.
    third = make_signal(last_seen=later + timedelta(minutes=1), updates=2)
    fourth = make_signal(last_seen=later + timedelta(minutes=2), updates=3)
    await store.analytics.save_signals([third, fourth])
    (back,) = await store.analytics.load_signals()
    assert (back.first_seen, back.updates) == (T0, 3)
    await store.analytics.save_signals([])


async def test_load_signals_filters(store: Store) -> None:
    t = [T0 + timedelta(minutes=i) for i in range(6)]
    sigs = [
        make_signal("a", last_seen=t[0]),
        make_signal("b", last_seen=t[1], kind=PatternKind.PUT_BUILDUP),
        make_signal("c", last_seen=t[2], symbol="BANKNIFTY"),
        make_signal("d", last_seen=t[3], kind=PatternKind.GAMMA_SQUEEZE, ttl=timedelta(hours=1)),
        make_signal("e", last_seen=t[4], kind=PatternKind.MAX_PAIN, ttl=timedelta(seconds=30)),
        make_signal("f", last_seen=t[5], symbol="BANKNIFTY", kind=PatternKind.PUT_BUILDUP),
    ]
    await store.analytics.save_signals(sigs)

    async def keys(**kw: object) -> list[str]:
        return [s.key for s in await store.analytics.load_signals(**kw)]  # type: ignore[arg-type]

    assert await keys() == ["f", "e", "d", "c", "b", "a"]  # newest last_seen first
    assert await keys(symbol="NIFTY") == ["e", "d", "b", "a"]
    assert await keys(kinds=[PatternKind.PUT_BUILDUP]) == ["f", "b"]
    assert await keys(kinds=["PUT_BUILDUP", "MAX_PAIN"], symbol="NIFTY") == ["e", "b"]
    assert await keys(kinds=[]) == []
    assert await keys(since=t[3]) == ["f", "e", "d"]
    # Active at t[5]: d (1 h) and everything seen within the last 15 min; e expired after 30 s.
    assert await keys(active_at=t[5] + timedelta(minutes=12)) == ["f", "d"]
    assert await keys(active_at=t[4] + timedelta(seconds=30)) == ["f", "d", "c", "b", "a"]
    assert await keys(limit=2) == ["f", "e"]
    assert await keys(symbol="NIFTY", since=t[1], limit=2) == ["e", "d"]
    with pytest.raises(ValueError, match="NOT_A_KIND"):
        await store.analytics.load_signals(kinds=["NOT_A_KIND"])
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.analytics.load_signals(since=datetime(2026, 11, 23))


async def test_a_ticks_metrics_and_signals_are_one_transaction(db: Path) -> None:
    from sqlalchemy import event

    begins: list[str] = []
    async with await open_store(str(db)) as store:

        def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
            begins.extend(statement.split()[:1] if statement.startswith("BEGIN") else [])

        event.listen(store._writer.sync_engine, "before_cursor_execute", spy)
        await store.analytics.save([make_metrics(), make_metrics(T0 + timedelta(minutes=1))], [])
        await store.analytics.save([make_metrics(T0 + timedelta(minutes=2))], [make_signal("a")])
        await store.analytics.save([], [])  # nothing: no transaction
        assert begins == ["BEGIN", "BEGIN"]
        assert len(await store.analytics.metrics_series("NIFTY", EXP1)) == 3
        assert [s.key for s in await store.analytics.load_signals()] == ["a"]


async def test_a_tick_written_whole_keeps_the_metrics_of_its_stored_snapshots(
    store: Store,
) -> None:
    """snapshots.write_tick: the tick's snapshots, the metrics of those stored and its
    signals, in one transaction; a chain not stored (unchanged provider_ts) keeps its metrics
    row as it was, and the signals are written even when no chain is new."""
    from tests.test_store import make_chain

    a, b = make_chain(expiry=EXP1), make_chain(expiry=EXP2)
    got = await store.snapshots.write_tick(
        [a, b], [make_metrics(T0, EXP1), make_metrics(T0, EXP2)], [make_signal("a")]
    )
    assert got == ([True, True], None)
    later = T0 + timedelta(minutes=1)
    got = await store.snapshots.write_tick(
        [a, make_chain(expiry=EXP2, ts=later)],
        [make_metrics(T0, EXP1, atm_iv=0.5), make_metrics(later, EXP2)],
        [make_signal("a", last_seen=later, updates=1)],
    )
    assert got == ([False, True], None)  # `a` was stored already: its metrics are not rewritten
    assert [m.atm_iv for m in await store.analytics.metrics_series("NIFTY", EXP1)] == [0.1234]
    assert len(await store.analytics.metrics_series("NIFTY", EXP2)) == 2
    got = await store.snapshots.write_tick([a], [make_metrics(T0, EXP1)], [make_signal("b")])
    assert got == ([False], None)
    loaded = {s.key: s for s in await store.analytics.load_signals()}
    assert set(loaded) == {"a", "b"} and loaded["a"].updates == 1
    assert await store.snapshots.write_tick([a, b], [], []) == ([False, False], None)
    with pytest.raises(ValueError, match="one element per snapshot"):
        await store.snapshots.write_tick([a, b], [None], [])


async def test_a_metrics_fault_in_a_ticks_write_keeps_its_snapshots(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metrics and signals are a savepoint of the tick's transaction: a database error
    there (after their rows are in) rolls back only them, is returned named as
    `store.analytics.save` names it, and the tick's snapshots are committed."""
    from sqlalchemy import text

    import optterm.store.snapshots as snapshots_module
    from tests.test_store import make_chain

    real = snapshots_module.write_analytics

    async def then_fail(conn, metrics_, signals_) -> None:
        await real(conn, metrics_, signals_)
        await conn.execute(text("SELECT no_such_column FROM metrics"))  # a real database error

    import optterm.store.analytics as analytics_module

    monkeypatch.setattr(snapshots_module, "write_analytics", then_fail)
    monkeypatch.setattr(analytics_module, "write_analytics", then_fail)
    a, b = make_chain(expiry=EXP1), make_chain(expiry=EXP2)
    stored, failed = await store.snapshots.write_tick(
        [a, b], [make_metrics(T0, EXP1), make_metrics(T0, EXP2)], [make_signal("a")]
    )
    assert stored == [True, True]
    assert isinstance(failed, StoreError)
    assert str(failed).startswith("Storing metrics and signals failed"), str(failed)
    for chain in (a, b):
        kept = await store.snapshots.latest("NIFTY", chain.expiry)
        assert kept is not None and kept.provider_ts == chain.provider_ts
    assert await store.analytics.latest_metrics("NIFTY") is None
    assert await store.analytics.load_signals() == []

    # Nothing new to store: the signals are written alone, and their failure returned too.
    stored, failed = await store.snapshots.write_tick(
        [a], [make_metrics(T0, EXP1)], [make_signal("b")]
    )
    assert stored == [False] and isinstance(failed, StoreError)
    assert str(failed).startswith("Storing signals failed"), str(failed)

    monkeypatch.undo()
    later = T0 + timedelta(minutes=1)
    got = await store.snapshots.write_tick(
        [make_chain(expiry=EXP1, ts=later)], [make_metrics(later, EXP1)], [make_signal("a")]
    )
    assert got == ([True], None)  # the store is usable: the savepoint left no trace
    assert (await store.analytics.latest_metrics("NIFTY")) is not None
    assert [s.key for s in await store.analytics.load_signals()] == ["a"]


async def test_a_snapshot_fault_in_a_ticks_write_stores_none_of_the_tick(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the transaction fails outside the savepoint (here after every row of the tick is
    in, as a failed COMMIT would), the whole tick is rolled back — snapshots, metrics and
    signals — and the failure raised."""
    from sqlalchemy.exc import OperationalError

    import optterm.store.snapshots as snapshots_module
    from tests.test_store import make_chain

    real = snapshots_module.write_analytics

    async def fail_after(conn, metrics_, signals_) -> None:
        await real(conn, metrics_, signals_)
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    # Raised past the savepoint (not inside it): replace the savepoint's writer itself.
    async def failing_part(self, conn, due, signals_):
        await fail_after(conn, due, signals_)

    monkeypatch.setattr(snapshots_module.SnapshotRepository, "_write_analytics", failing_part)
    a = make_chain(expiry=EXP1)
    with pytest.raises(StoreError, match="disk I/O error"):
        await store.snapshots.write_tick([a], [make_metrics(T0, EXP1)], [make_signal("a")])
    assert await store.snapshots.latest("NIFTY") is None
    assert await store.analytics.latest_metrics("NIFTY") is None
    assert await store.analytics.load_signals() == []
    monkeypatch.undo()
    assert await store.snapshots.write_tick([a], [make_metrics(T0, EXP1)], []) == ([True], None)


async def test_data_survives_reopening_the_store(db: Path) -> None:
    metrics = [make_metrics(T0 + timedelta(minutes=i), atm_iv=0.1 + i / 100) for i in range(3)]
    metrics.append(make_metrics(T0 + timedelta(minutes=3), atm_iv=NAN, iv_rank=None))
    signals = [make_signal("a"), make_signal("b", kind=PatternKind.UNUSUAL_ACTIVITY)]
    async with await open_store(str(db)) as store:
        await store.analytics.save_metrics(metrics)
        await store.analytics.save_signals(signals)
        before_m = await store.analytics.metrics_series("NIFTY", EXP1)
        before_s = await store.analytics.load_signals()
    async with await open_store(str(db), create=False) as store:
        after_m = await store.analytics.metrics_series("NIFTY", EXP1)
        after_s = await store.analytics.load_signals()
    assert len(after_m) == 4
    assert all(same_metrics(a, b) for a, b in zip(after_m, before_m, strict=True))
    assert all(same_metrics(a, b) for a, b in zip(after_m, metrics, strict=True))
    assert after_s == before_s and {s.key for s in after_s} == {"a", "b"}


# ------------------------------------------------------------------------------ migration


def _snapshot() -> ChainSnapshot:
    n = 10
    legs = Legs(*(np.arange(n, dtype=float) * (k + 1) for k in range(7)))
    return ChainSnapshot(
        "NIFTY", EXP1, "sim", Feed.SIMULATED, T0, T0, 24_500.0, 65,
        24_000 + 50.0 * np.arange(n), legs, legs,
    )  # fmt: skip


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    return names


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        (rev,) = raw.execute("SELECT version_num FROM alembic_version").fetchone()
    raw.close()
    return rev


async def test_a_database_at_0002_is_upgraded_in_place(db: Path) -> None:
    from alembic import command

    snap = _snapshot()
    async with await open_store(str(db)) as store:
        assert await store.snapshots.write(snap)
        await store.analytics.save_metrics([make_metrics()])
        await store.checkpoint()
    # Back to 0002 with the migration's own downgrade: the analytics tables go, the rest stays.
    command.downgrade(alembic_config(f"sqlite:///{db}"), "0002")
    assert _revision(db) == "0002"
    assert {"metrics", "signals"}.isdisjoint(_tables(db))
    assert {"snapshots", "chains", "provider_health", "store_info"} <= _tables(db)

    async with await open_store(str(db), create=False) as store:
        assert _revision(db) == head_revision()
        assert await store.snapshots.count() == 1
        back = await store.snapshots.latest("NIFTY")
        assert back is not None and back.same_data(snap) and back.provider_ts == T0
        assert await store.analytics.latest_metrics("NIFTY") is None  # dropped by the downgrade
        await store.analytics.save_metrics([make_metrics()])
        await store.analytics.save_signals([make_signal()])
        assert len(await store.analytics.load_signals()) == 1
        assert await store.analytics.latest_metrics("NIFTY") is not None
    assert {"metrics", "signals"} <= _tables(db)


async def test_a_fresh_0002_database_upgrades_to_0003(tmp_path: Path) -> None:
    from alembic import command

    path = tmp_path / "old.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "0002")
    assert _revision(path) == "0002" and "metrics" not in _tables(path)
    async with await open_store(str(path), create=False) as store:
        await store.analytics.save_signals([make_signal()])
        assert [s.key for s in await store.analytics.load_signals()] == [make_signal().key]
    assert _revision(path) == head_revision()
