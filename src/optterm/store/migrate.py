"""Schema migrations (Alembic, configured in code) and the read-only check of a SQLite file.

`inspect_sqlite_file` runs before any engine touches the file, with a read-only connection: a
file that is not an optterm database, is damaged, or was migrated by a newer optterm is reported
and left byte-for-byte as it was (setting WAL mode alone would rewrite its header).
"""

from __future__ import annotations

import enum
import functools
import sqlite3
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optterm.store.access import read_only_query, sqlite_problem
from optterm.store.errors import CorruptDatabaseError, SchemaTooNewError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported only when a database is opened: importing optterm.store (the CLI does, to
# show --help) should not pay for it.

__all__ = [
    "MIGRATIONS_DIR",
    "FileState",
    "alembic_config",
    "head_revision",
    "inspect_sqlite_file",
    "upgrade_to_head",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
APPLICATION = "optterm"
_SQLITE_MAGIC = b"SQLite format 3\x00"
# PostgreSQL advisory lock key held while migrating ("optterm" in ASCII, as a bigint).
_MIGRATE_LOCK = 0x6F70747465726D


class FileState(enum.Enum):
    MISSING = "missing"  # no file: will be created
    EMPTY = "empty"  # a valid SQLite file with no tables (or a 0-byte file): will be initialised
    OPTTERM = "optterm"  # an optterm database at a revision this version knows


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (no alembic.ini involved)."""
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolation: a '%' in the install path must be doubled.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def _too_new(where: str, revisions: set[str]) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"The database {where} was last used by a newer version of optterm (schema revision "
        f"{', '.join(sorted(revisions))}; this version knows up to {head_revision()}). It has not "
        "been changed. Upgrade optterm to use it, or point optterm at another database file."
    )


def _corrupt(path: Path, why: str) -> CorruptDatabaseError:
    return CorruptDatabaseError(
        f"{path} is not an optterm database or is corrupted ({why}). optterm has not changed it. "
        f"Move it aside (for example rename it to {path.name}.broken) and start optterm again to "
        "create a fresh database, or point optterm at another file."
    )


def _check_header(path: Path, size: int) -> None:
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _corrupt(path, "it is not a SQLite database file")
    (page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise _corrupt(path, f"the header gives an impossible page size of {page_size}")
    change_counter, page_count = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    # The in-header size is only trustworthy when the two counters agree (sqlite.org/fileformat).
    if valid_for == change_counter and page_count and size < page_count * page_size:
        raise _corrupt(
            path,
            f"the file is truncated: {size} bytes, but its header describes "
            f"{page_count * page_size} bytes",
        )


def inspect_sqlite_file(path: Path) -> tuple[FileState, str | None]:
    """Classify the file at `path` without modifying it; raise a StoreError if unusable.

    Returns the state and, for an optterm database, its current Alembic revision.
    """
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        # NotADirectoryError: a parent is a file; creating the folders will say so clearly.
        return FileState.MISSING, None
    except OSError as err:
        raise StoreError(
            f"Cannot read the database {path}: {err.strerror or err}. Check the path and its "
            "permissions, or point optterm at another database file."
        ) from None
    if path.is_dir():
        raise StoreError(
            f"The database path {path} is a directory. Point optterm at a file inside it, "
            f"for example {path / 'optterm.db'}."
        )
    if st.st_size == 0:
        return FileState.EMPTY, None
    try:
        _check_header(path, st.st_size)
    except OSError as err:
        raise StoreError(
            f"Cannot read the database {path}: {err.strerror or err}. Check its permissions."
        ) from None
    query = "&".join(f"{k}={v}" for k, v in read_only_query(path).items())
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True)
    except sqlite3.Error as err:
        raise sqlite_problem(path, "Opening the optterm database", err) from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables - {"sqlite_sequence"}:
            return FileState.EMPTY, None
        if "store_info" not in tables or "alembic_version" not in tables:
            raise _corrupt(path, "it is a SQLite database of another application")
        app = conn.execute("SELECT value FROM store_info WHERE key='application'").fetchone()
        if app is None or app[0] != APPLICATION:
            raise _corrupt(path, "it is a SQLite database of another application")
        revisions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        # Touch the last page of the largest table: catches most truncations the header missed.
        if "snapshots" in tables:
            conn.execute("SELECT max(id) FROM snapshots").fetchone()
    except sqlite3.DatabaseError as err:
        # Only damage is corruption: permissions, a missing -shm or the disk are told apart.
        problem = sqlite_problem(path, "Opening the optterm database", err)
        if isinstance(problem, CorruptDatabaseError):
            raise _corrupt(path, str(err)) from None
        raise problem from None
    finally:
        conn.close()
    if revisions != {head_from_filenames()}:  # at head needs no Alembic to say it is known
        unknown = revisions - _known_revisions()
        if unknown:
            raise _too_new(str(path), unknown)
    return FileState.OPTTERM, next(iter(revisions), None)


def head_from_filenames() -> str:
    """Head revision read from the migration file names (NNNN_name.py, numbered in order).

    Lets an up-to-date store open without importing Alembic (about 0.3 s of start-up); a test
    keeps it equal to Alembic's own idea of head."""
    versions = Path(__file__).resolve().parent / "migrations" / "versions"
    return max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))


def upgrade_to_head(sync_conn: Any, where: str) -> None:
    """Bring the schema on `sync_conn` to head inside the caller's transaction."""
    from sqlalchemy import inspect, text

    # Probing with has_table, not a failing SELECT: on PostgreSQL a failed statement would
    # abort the caller's transaction.
    if inspect(sync_conn).has_table("alembic_version"):
        rows = sync_conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
        if {r[0] for r in rows} == {head_from_filenames()}:
            return  # the common case: already at head
    if sync_conn.dialect.name == "postgresql":
        # On SQLite, BEGIN IMMEDIATE makes two processes opening a new database migrate one
        # after the other; on PostgreSQL this transaction-scoped advisory lock does (released
        # at COMMIT/ROLLBACK). The second then finds the first one's tables below.
        sync_conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    current = set(MigrationContext.configure(sync_conn).get_current_heads())
    unknown = current - _known_revisions()
    if unknown:
        raise _too_new(where, unknown)
    if current == {head_revision()}:
        return
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")
