"""Why a SQLite file cannot be used, told apart: permissions and ownership, the disk, or damage.

"Corrupted, move it aside" is advice that loses history, so it is given only when SQLite says
the bytes are wrong (SQLITE_NOTADB, SQLITE_CORRUPT). A file this user may not write, a folder
where SQLite cannot create its -wal/-shm files, or an I/O error (a -wal deleted under a running
daemon, a failing disk) each get their own message saying what to fix.

Read-only commands open an intact file read-only (`read_only_uri`): `mode=ro`, and when that is
refused because the folder is not writable (SQLite would create the -shm there) and no -wal
exists — so no process is writing the database — `immutable=1`, which needs no -shm at all.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import sqlite3
from pathlib import Path

from optterm.store.errors import (
    CorruptDatabaseError,
    StoreError,
    StoreIOError,
    StoreLocationError,
)

__all__ = ["describe_access", "read_only_query", "sqlite_problem"]


def _owner(uid: int) -> str:
    with contextlib.suppress(KeyError):
        return pwd.getpwuid(uid).pw_name
    return f"uid {uid}"


def _group(gid: int) -> str:
    with contextlib.suppress(KeyError):
        return grp.getgrgid(gid).gr_name
    return f"gid {gid}"


def describe_access(path: Path) -> str:
    """'owned by alice:desk, mode 0640; folder … owned by alice:desk, mode 0750; you are bob'."""
    parts = []
    for what, p in (("the file", path), ("its folder", path.parent)):
        try:
            st = p.stat()
        except OSError as err:
            parts.append(f"{what} cannot be examined ({err.strerror or err})")
            continue
        parts.append(
            f"{what} is owned by {_owner(st.st_uid)}:{_group(st.st_gid)} "
            f"with mode {st.st_mode & 0o7777:04o}"
        )
    parts.append(f"you are {_owner(os.geteuid())}")
    return "; ".join(parts)


def _name(err: sqlite3.Error) -> str:
    return str(getattr(err, "sqlite_errorname", "") or "")


def sqlite_problem(path: Path, action: str, err: sqlite3.Error) -> StoreError:
    """The StoreError a SQLite error on the file `path` means, with what to do about it."""
    name = _name(err)
    text = str(err).strip() or type(err).__name__
    low = text.lower()
    if name.startswith("SQLITE_READONLY") or "readonly database" in low:
        return StoreLocationError(
            f"{action} failed: the database {path} is intact but read-only for this user "
            f"({describe_access(path)}). Writing (optterm serve, alerts add/rm) needs write "
            "access to the file and its folder: run it as the file's owner, or give this user "
            "write access (group mode, see the README's shared desk server notes)."
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in low:
        return StoreLocationError(
            f"{action} failed: the database {path} cannot be opened ({text}; "
            f"{describe_access(path)}). It has not been changed. Give this user read access to "
            "the file and its folder (and write access to the folder, where SQLite keeps its "
            "-wal and -shm files), or run optterm as the file's owner."
        )
    if name.startswith("SQLITE_IOERR") or "disk i/o" in low:
        return StoreIOError(
            f"{action} failed: reading or writing {path} hit an I/O error ({text}). The file "
            "itself may be intact: check that its -wal and -shm files were not deleted or moved "
            "while optterm was using it (a running optterm serve notices at its next write and "
            "reopens the database: try again in a few seconds), and check the disk (dmesg). Do "
            "not delete the database."
        )
    if name == "SQLITE_FULL" or "disk is full" in low:
        return StoreIOError(
            f"{action} failed: the disk holding {path} is full ({text}). Free some space, then "
            "try again."
        )
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in low or "malformed" in low:
        return CorruptDatabaseError(
            f"{action} failed: {path} is not an optterm database or is corrupted ({text}). "
            f"optterm has not changed it. Move it aside (for example rename it to "
            f"{path.name}.broken) and start optterm again to create a fresh database, or "
            "restore it from a backup."
        )
    return StoreError(f"{action} failed on the database {path}: {text}.")


def read_only_query(path: Path) -> dict[str, str]:
    """The URI parameters that open the intact database `path` for reading by this user, or
    raise the StoreError saying why it cannot be read."""
    uri = f"{path.as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
        return {"mode": "ro"}
    except sqlite3.Error as err:
        readonly = _name(err).startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))
        if not readonly or _wal_in_use(path) or not os.access(path, os.R_OK):
            raise sqlite_problem(path, "Opening the optterm database read-only", err) from None
    # No -wal: nothing is writing it now, so reading the file alone is consistent.
    return {"mode": "ro", "immutable": "1"}


def _wal_in_use(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except FileNotFoundError:
        return False
    except OSError:
        return True
