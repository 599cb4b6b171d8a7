"""The small checks and text helpers the settings schema is built from.

They live apart from the schema because the error messages (messages.py) and the environment
overrides (env.py) word things the same way: the same "did you mean", the same redaction of
passwords in URLs, the same field descriptions.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import time
from typing import Any

from pydantic_core import PydanticCustomError

from optterm.infra.clip import quoted

__all__ = [
    "apprise_refusal",
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
            f"must be one of {', '.join(choices)}; got {quoted(value)}"
            f"{did_you_mean(value, choices)}",
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


class _ThisThread(logging.Filter):
    """Drops the records one thread logs while it asks Apprise about a URL: Apprise reports a
    URL it cannot use at ERROR ("Unparseable Telegram URL …"), and our own one line says it
    better. Other threads (a delivery under way) log as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.ident


@contextlib.contextmanager
def _apprise_quiet() -> Iterator[None]:
    logger = logging.getLogger("apprise")
    quiet = _ThisThread()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def apprise_refusal(url: str) -> str | None:
    """None when Apprise can build a notification service from `url` (nothing is sent), else
    why not, in words that never quote the URL (it carries a token). A URL accepted before is
    not asked about again (config/verdicts.py): importing Apprise costs 0.6-1 s."""
    from optterm.config.verdicts import accepted_before, remember_accepted

    if accepted_before(url):
        return None
    import apprise  # imported here: only a channel not accepted before needs it

    from optterm.infra.redact import protect_urls

    protect_urls([url])  # Apprise logs the URL while it reads it
    with _apprise_quiet():
        usable = apprise.Apprise.instantiate(url) is not None
    if usable:
        remember_accepted(url)
        return None
    scheme = url.split("://", 1)[0]
    return (
        f"Apprise cannot use this {scheme}:// URL (unknown service or a required part missing, "
        "such as a token or a recipient); see https://github.com/caronc/apprise/wiki for the "
        "service's URL form"
    )
