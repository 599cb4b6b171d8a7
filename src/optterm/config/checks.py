"""The small checks and text helpers the settings schema is built from.

They live apart from the schema because the error messages (messages.py) and the environment
overrides (env.py) word things the same way: the same "did you mean", the same redaction of
passwords in URLs, the same field descriptions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import time
from typing import Any

from pydantic_core import PydanticCustomError

from optterm.infra.clip import quoted

__all__ = [
    "choice",
    "clock_time",
    "did_you_mean",
    "exchange_symbol",
    "meta",
    "parsed",
    "problem",
    "redact_url",
    "suggest",
]

_SYMBOL_RE = re.compile(r"[A-Z0-9&-]+")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def problem(reason: str, *subloc: str | int) -> PydanticCustomError:
    """A validation error whose text is ours; ``subloc`` points below the validated field.

    Cross-field checks run on the containing list or model, but the message should name the
    offending element (``poller.watch[2].symbol``), so the extra path travels in the context.
    """
    return PydanticCustomError("optterm", "{reason}", {"reason": reason, "subloc": subloc})


def meta(expect: str, *, unit: str = "", item: str = "") -> dict[str, Any]:
    """Describe a field for error messages: what it expects, its unit, what a list item is."""
    return {"expect": expect, "unit": unit, "item": item}


def suggest(value: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice closest to ``value`` (ignoring case), if any is close enough."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    match = suggest(value, choices)
    return f" (did you mean '{match}'?)" if match else ""


def choice(value: str, choices: Sequence[str], *subloc: str | int) -> str:
    """``value`` normalised to one of ``choices``, or a problem listing them."""
    normalized = value.strip().lower()
    if normalized not in choices:
        raise problem(
            f"must be one of {', '.join(choices)}; got {value!r}{did_you_mean(value, choices)}",
            *subloc,
        )
    return normalized


def exchange_symbol(value: str, *subloc: str | int) -> str:
    """An exchange symbol in upper case, or a problem saying what one looks like."""
    normalized = value.strip().upper()
    if not _SYMBOL_RE.fullmatch(normalized):
        raise problem(
            "must be an exchange symbol made of letters, digits, '&' and '-' "
            f"(like NIFTY or M&M); got {quoted(value)}",
            *subloc,
        )
    return normalized


def redact_url(url: str) -> str:
    """``url`` with any embedded password replaced by ``***``."""
    # Database and broker URLs may embed a password; never echo it back, and match loosely
    # because a malformed URL is exactly the kind that ends up quoted in an error.
    return re.sub(r"([^/@:\s]+:)[^/@\s]*@", r"\1***@", url)


def clock_time(text: str) -> time:
    """``HH:MM`` or ``HH:MM:SS`` as a time of day; ValueError otherwise."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    return time(hour, minute, second)


def parsed(parse: Callable[[str], object], value: object) -> object:
    """``parse(value)`` for a string it accepts; anything else is handed back unchanged.

    The strict type check that runs next then reports a bad value with the field's own
    description, and every bad element of a list is reported, not just the first.
    """
    if not isinstance(value, str):
        return value
    try:
        return parse(value.strip())
    except ValueError:
        return value
