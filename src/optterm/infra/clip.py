"""What a message may echo of text someone typed: all of it when short, its start when not.

A 100,000-character "symbol" echoed in full is a screenful of noise (and a log line of
100 KB) around the one sentence that says what is wrong. Messages show the first characters,
an ellipsis and how long the text was.
"""

from __future__ import annotations

__all__ = ["ECHO_LIMIT", "clip", "quoted"]

ECHO_LIMIT = 20  # characters; longer than any exchange symbol, date or word of a rule


def clip(text: object, limit: int = ECHO_LIMIT) -> str:
    """`text` whole when at most `limit` characters, else its first `limit`, "…" and the length:
    ``AAAAAAAAAAAAAAAAAAAA… (100,000 characters)``."""
    s = str(text)
    if len(s) <= limit:
        return s
    return f"{s[:limit]}… ({len(s):,} characters)"


def quoted(text: object, limit: int = ECHO_LIMIT) -> str:
    """Like `clip`, in quotes as ``!r`` shows it: ``'NIFTY'``, ``'AAAA…' (100,000 characters)``."""
    s = str(text)
    if len(s) <= limit:
        return repr(s)
    return f"{s[:limit] + '…'!r} ({len(s):,} characters)"
