"""Who may read the files optterm creates: private to the user (default) or shared with a group.

On a shared desk server every user's history, alert rules and channel labels sit in their
database and logs, so optterm creates its folders 0700 and its files 0600 — whatever the
umask. `[store] file_mode = "group"` shares them read-only with a group instead: folders
2750 (setgid, so files made inside take the folder's group, not the creator's), files 0640.
SQLite gives the database's -wal and -shm files the database file's own mode, so setting the
mode of the database file when it is created covers them too.

Nothing here loosens a mode that already exists: folders and files that are there are left
as they are (`optterm doctor` warns about ones readable by too many).
"""

from __future__ import annotations

import contextlib
import os
import stat
from enum import StrEnum
from pathlib import Path

__all__ = ["FileMode", "create_file", "make_dirs", "readable_by", "set_dir_mode"]


class FileMode(StrEnum):
    PRIVATE = "private"  # only the user: folders 0700, files 0600
    GROUP = "group"  # the user writes, the folder's group reads: folders 2750, files 0640

    @property
    def file_bits(self) -> int:
        return 0o640 if self is FileMode.GROUP else 0o600

    @property
    def dir_bits(self) -> int:
        return 0o2750 if self is FileMode.GROUP else 0o700


def make_dirs(path: Path, mode: FileMode = FileMode.PRIVATE) -> list[Path]:
    """Create `path` and any missing parents; returns those created, deepest first.

    `path` itself, when created, gets `mode`'s folder bits (set with chmod: mkdir's mode is cut
    by the umask and never sets setgid). Missing parents above it are ordinary folders (the
    umask's default): they are the user's XDG folders, not optterm's.
    """
    missing: list[Path] = []
    p = path
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)  # another process may be making it too
    if missing:
        set_dir_mode(path, mode)
    return missing


def set_dir_mode(path: Path, mode: FileMode) -> None:
    """Give a folder optterm made `mode`'s bits. Where setgid is not allowed (systemd's
    RestrictSUIDSGID=yes), group mode makes do with 0750: files then take the creating
    process's group, which under systemd is the unit's Group=."""
    try:
        os.chmod(path, mode.dir_bits)
    except PermissionError:
        if not mode.dir_bits & stat.S_ISGID:
            raise
        os.chmod(path, mode.dir_bits & ~stat.S_ISGID)


def create_file(path: Path, mode: FileMode = FileMode.PRIVATE) -> bool:
    """Create `path` empty with `mode`'s file bits if it does not exist (never following a
    symlink); True when it was created here. An existing file keeps its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode.file_bits)
    except FileExistsError:
        return False
    try:
        # The umask may have cut group read off: put exactly the bits asked for.
        os.fchmod(fd, mode.file_bits)
    finally:
        os.close(fd)
    return True


def readable_by(path: Path) -> str | None:
    """ "everyone" or "its group" when `path` is readable beyond its owner, else None (also
    when it cannot be examined)."""
    with contextlib.suppress(OSError):
        bits = stat.S_IMODE(path.stat().st_mode)
        if bits & stat.S_IROTH:
            return "everyone"
        if bits & stat.S_IRGRP:
            return "its group"
    return None
