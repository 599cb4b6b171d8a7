"""The store's exception family.

Every message is one paragraph a trader can act on: what is wrong, which file or URL, what to do.
Callers (CLI, serve, TUI) catch `StoreError` and print it as is.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "CorruptDatabaseError",
    "LeaseLost",
    "SchemaTooNewError",
    "StoreError",
    "StoreIOError",
    "StoreLocationError",
    "StoreUnavailable",
]


class StoreError(Exception):
    """Anything the store cannot do; the message is meant to be shown to the user verbatim."""


class StoreLocationError(StoreError):
    """The database path cannot be created, opened or written."""


class StoreIOError(StoreError):
    """The disk failed under the database (an I/O error, a full disk, its -wal deleted while
    open): a runtime fault (exit 1), not damage to the file."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached (down, restarting, refusing connections): an
    outage to wait out, not a mistake in the command (exit 1; `serve` retries)."""


class CorruptDatabaseError(StoreError):
    """The file is not an optterm database, or it is damaged. It has been left untouched."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer optterm than this one."""


class CodecError(StoreError):
    """A stored snapshot blob cannot be decoded (truncated, damaged or from a newer format)."""


class LeaseLost(StoreError):
    """The lease is no longer ours: taken over (lease_no moved on) or the lock is gone.

    Here rather than in lease.py because the Store raises it itself, when a fenced write finds
    another process's lease number before COMMIT."""

    @classmethod
    def fenced(cls, url: str, name: str, ours: int, current: int | None) -> LeaseLost:
        now = "no lease at all" if current is None else f"lease #{current}"
        return cls(
            f"This process no longer holds the {name} lease of {url}: it wrote as lease #{ours} "
            f"but the store now records {now}, so another optterm serve has taken over. The "
            "write was rolled back; this process must stop polling."
        )
