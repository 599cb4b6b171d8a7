"""Opening a store: migrations, and every way a database path can be wrong."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import optterm.store.snapshots as snapshots_module
import optterm.store.store as core
from optterm.model import ChainSnapshot, Feed, Legs
from optterm.store import (
    CorruptDatabaseError,
    SchemaTooNewError,
    StoreError,
    StoreLocationError,
    open_store,
)
from optterm.store.migrate import head_revision
from optterm.store.schema import metadata

TS = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def chain(i: int = 0) -> ChainSnapshot:
    n = 30
    legs = Legs(*(np.arange(n, dtype=float) * (k + 1) + i for k in range(7)))
    return ChainSnapshot(
        "NIFTY", date(2026, 11, 24), "sim", Feed.SIMULATED, TS + timedelta(seconds=15 * i), TS,
        24_500.0, 65, 24_000 + 50.0 * np.arange(n), legs, legs,
    )  # fmt: skip


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


async def make_real_db(path: Path, snapshots: int = 40) -> None:
    async with await open_store(str(path)) as store:
        for i in range(snapshots):
            await store.snapshots.write(chain(i))
        await store.checkpoint()


async def test_new_database_is_created_with_its_folders_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "optterm.db"
    async with await open_store(f"sqlite:///{path}") as store:
        assert store.path == path
        assert store.url == f"sqlite+aiosqlite:///{path}"
        await store.snapshots.write(chain())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
        assert db.execute("SELECT value FROM store_info WHERE key='application'").fetchone() == (
            "optterm",
        )
    # Opening again (migrations already at head) keeps the data.
    async with await open_store(str(path), create=False) as store:
        assert await store.snapshots.count() == 1


async def test_migrated_schema_matches_the_live_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with await open_store(str(path)):
        pass
    with sqlite3.connect(path) as raw:
        index_sql = raw.execute(
            "SELECT sql FROM sqlite_master WHERE name='ux_snapshots_symbol_expiry_ts'"
        ).fetchone()[0]
    assert "UNIQUE" in index_sql
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diffs == []


async def test_zero_byte_and_empty_sqlite_files_are_initialised(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    blank = tmp_path / "blank.db"
    with sqlite3.connect(blank) as db:
        db.execute("PRAGMA user_version=3")
    for path in (empty, blank):
        async with await open_store(str(path)) as store:
            assert await store.snapshots.write(chain())


async def test_missing_database_with_create_false(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "optterm.db"
    with pytest.raises(StoreError, match="no optterm database") as err:
        await open_store(str(path), create=False)
    assert str(path) in str(err.value)
    assert not (tmp_path / "nope").exists()


async def test_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    path = blocker / "sub" / "optterm.db"
    with pytest.raises(StoreLocationError) as err:
        await open_store(f"sqlite+aiosqlite:///{path}")
    msg = str(err.value)
    assert str(path) in msg
    assert str(blocker) in msg
    assert "another location" in msg
    assert blocker.read_text() == "a file where a directory should be"
    assert sorted(listing(tmp_path)) == ["not-a-dir"]


@pytest.mark.parametrize("where", ["/proc/optterm-test/sub/optterm.db", "/proc/optterm-test.db"])
async def test_path_under_proc_is_unwritable(where: str) -> None:
    with pytest.raises(StoreLocationError) as err:
        await open_store(where)
    assert where in str(err.value)
    assert not Path(where).parent.is_dir() or where == "/proc/optterm-test.db"


async def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory") as err:
        await open_store(str(tmp_path))
    assert str(tmp_path / "optterm.db") in str(err.value)


def _random_bytes() -> bytes:
    return np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_random_bytes(), id="random-bytes"),
        pytest.param(b"symbol,expiry\nNIFTY,2026-11-24\n" * 200, id="text-file"),
        pytest.param(b"SQLite format 3\x00" + bytes(range(256)) * 40, id="sqlite-magic-garbage"),
        pytest.param(b"SQLite format 3\x00", id="bare-magic"),
    ],
)
async def test_corrupted_file_is_reported_and_left_untouched(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "optterm.db"
    path.write_bytes(content)
    with pytest.raises(CorruptDatabaseError) as err:
        await open_store(str(path))
    msg = str(err.value)
    assert f"{path} is not an optterm database or is corrupted" in msg
    assert "Move it aside" in msg
    assert listing(tmp_path) == {"optterm.db": content}


async def test_truncated_database_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "optterm.db"
    await make_real_db(path)
    whole = path.read_bytes()
    assert len(whole) > 3 * 16384
    for cut in (len(whole) // 2, 16384, 100, 50):
        path.write_bytes(whole[:cut])
        with pytest.raises(CorruptDatabaseError, match="not an optterm database or is corrupted"):
            await open_store(str(path))
        assert listing(tmp_path) == {"optterm.db": whole[:cut]}


async def test_another_applications_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes (body) VALUES ('keep me')")
    before = listing(tmp_path)
    with pytest.raises(CorruptDatabaseError, match="another application"):
        await open_store(str(path))
    assert listing(tmp_path) == before


async def test_database_from_a_newer_optterm(tmp_path: Path) -> None:
    path = tmp_path / "optterm.db"
    await make_real_db(path, 3)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num='9999'")
    db.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError) as err:
        await open_store(str(path))
    msg = str(err.value)
    assert "newer version of optterm" in msg
    assert "9999" in msg
    assert str(path) in msg
    # The database is untouched (a WAL reader may leave its empty -wal/-shm beside it).
    assert path.read_bytes() == before
    assert listing(tmp_path).get("optterm.db-wal", b"") == b""


async def test_failed_creation_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = core.upgrade_to_head

    def upgrade_then_fail(sync_conn: object, where: str) -> None:
        real(sync_conn, where)
        raise RuntimeError("disk pulled out mid-migration")

    monkeypatch.setattr(core, "upgrade_to_head", upgrade_then_fail)
    path = tmp_path / "new" / "deeper" / "optterm.db"
    with pytest.raises(RuntimeError, match="mid-migration"):
        await open_store(str(path))
    assert not (tmp_path / "new").exists()


async def test_failed_migration_of_an_existing_database_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "optterm.db"
    await make_real_db(path, 5)
    with sqlite3.connect(path) as db:
        # Pretend it predates every migration: the upgrade will run, then fail.
        db.execute("DELETE FROM alembic_version")
    db.close()

    def fail(sync_conn: object, where: str) -> None:
        sync_conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    monkeypatch.setattr(core, "upgrade_to_head", fail)
    with pytest.raises(RuntimeError, match="boom"):
        await open_store(str(path))
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "half_done" not in tables
        assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (5,)
    db.close()


def test_statements_and_migrations_render_for_postgresql() -> None:
    # PostgreSQL is a later issue; this keeps the SQL portable meanwhile.
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    for name in ("_SEED", "_HEADS", "_HEADS_EXPIRY", "_ROW_AT", "_EXISTS", "_HISTORY"):
        sql = str(getattr(snapshots_module, name).compile(dialect=dialect))
        assert "SELECT" in sql, name
    history = str(snapshots_module._HISTORY.compile(dialect=dialect))
    assert "19800000000" in history  # constants inline: GROUP BY must match the SELECT list
    assert "DELETE FROM chains" in str(
        snapshots_module._DELETE_EMPTY_CHAINS.compile(dialect=dialect)
    )
    from sqlalchemy.dialects import sqlite

    # FLOOR() is missing from SQLite builds without the math functions.
    assert "floor" not in str(snapshots_module._HISTORY.compile(dialect=sqlite.dialect())).lower()

    import io

    from alembic import command

    from optterm.store.migrate import alembic_config

    out = io.StringIO()
    cfg = alembic_config("postgresql://trader@localhost/optterm")
    cfg.output_buffer = out
    command.upgrade(cfg, "head", sql=True)
    ddl = out.getvalue()
    assert "CREATE TABLE snapshots" in ddl
    assert "BYTEA" in ddl
    assert "DOUBLE PRECISION" in ddl
    assert "BIGSERIAL" in ddl or "BIGINT" in ddl
    assert "CREATE UNIQUE INDEX ux_snapshots_symbol_expiry_ts" in ddl


WRITER = """
import asyncio, sys
from tests.test_store_open import chain
from optterm.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    for i in range(10_000):
        await store.snapshots.write(chain(i))
        print("stored", i, flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.process
def test_kill_9_mid_write_loses_no_acknowledged_snapshot(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "crash.db"
    repo_root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo_root,
    )
    acked = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked = int(line.split()[1])
            if acked >= 150:
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert acked >= 150
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

    import asyncio

    async def reopen() -> int:
        async with await open_store(str(path)) as store:
            n = await store.snapshots.count()
            # Skip-unchanged still works from what survived.
            assert not await store.snapshots.write(chain(n - 1))
            return n

    assert asyncio.run(reopen()) >= acked + 1
