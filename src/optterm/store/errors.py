"""The store's exception family.

Every message is one paragraph a trader can act on: what is wrong, which file or URL, what to do.
Callers (CLI, serve, TUI) catch `StoreError` and print it as is.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "CorruptDatabaseError",
    "SchemaTooNewError",
    "StoreError",
    "StoreLocationError",
]


class StoreError(Exception):
    """Anything the store cannot do; the message is meant to be shown to the user verbatim."""


class StoreLocationError(StoreError):
    """The database path cannot be created, opened or written."""


class CorruptDatabaseError(StoreError):
    """The file is not an optterm database, or it is damaged. It has been left untouched."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer optterm than this one."""


class CodecError(StoreError):
    """A stored snapshot blob cannot be decoded (truncated, damaged or from a newer format)."""
