"""Keeping channel secrets out of logs: every URL handed to Apprise is registered here first.

Apprise URLs carry tokens. Apprise logs the URLs it loads (its "privacy" form still shows header
values such as `+X-Token=…`) and urllib3 logs request paths at DEBUG, so `protect_urls` registers
every piece of a URL that may grant access and installs a filter on those loggers that masks
each piece in their records. `scrub` applies the same masking to text of our own (an exception
message, Apprise's last warning) before it is stored or shown. What a person sees of a URL is
`channels.redact_url`, never the URL.

Every front end and the dispatcher call `protect_urls` before a URL reaches Apprise: a check as
the user types (the alert form), a test send, a delivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["protect_urls", "scrub"]

# Loggers that may print a URL or its path: Apprise ("Loaded JSON URL: …?+X-Token=…"), urllib3
# (request lines at DEBUG). Filters on a logger see only records logged on that very logger.
_SCRUBBED_LOGGERS: Final = ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests")
_MIN_PIECE: Final = 3


def _pieces(url: str) -> set[str]:
    """The parts of `url` that may grant access, in the forms a log line may show them."""
    out = {url, url.split("://", 1)[-1]}
    try:
        parts = urlsplit(url)
        raw: list[str] = [parts.username or "", parts.password or "", parts.fragment]
        host = parts.hostname or ""
        if host and "." not in host and host != "localhost" and ":" not in host:
            raw.append(host)  # tgram://BOTTOKEN/…: the "host" is a token
        raw.extend(parts.path.split("/"))
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            raw.append(value)
            if key[:1] in "+-:":  # header / payload entries: "+X-Token=…"
                raw.append(key[1:])
    except ValueError:
        raw = []
    for piece in raw:
        for form in (piece, unquote(piece), quote(unquote(piece), safe="")):
            if len(form) >= _MIN_PIECE:
                out.add(form)
    return out


class _Scrubber(logging.Filter):
    """Masks, in log records, every piece of every URL registered so far (kept for the life of
    the process: Apprise's worker threads may still log after a send has timed out)."""

    def __init__(self) -> None:
        super().__init__("optterm.notify.scrub")
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._ordered: tuple[str, ...] = ()

    def register(self, urls: Iterable[str]) -> None:
        with self._lock:
            new = set().union(*(_pieces(u) for u in urls)) - self._known
            if new:
                self._known |= new
                self._ordered = tuple(sorted(self._known, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for piece in self._ordered:
            if piece in text:
                text = text.replace(piece, "…")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._ordered:
            return True
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


_SCRUBBER = _Scrubber()
_installed = False
_install_lock = threading.Lock()


def protect_urls(urls: Iterable[str]) -> None:
    """Register URLs with the log scrubber (and install it, once) before Apprise sees them."""
    global _installed
    _SCRUBBER.register(urls)
    if not _installed:
        with _install_lock:
            if not _installed:
                for name in _SCRUBBED_LOGGERS:
                    logging.getLogger(name).addFilter(_SCRUBBER)
                _installed = True


def scrub(text: str) -> str:
    """`text` with every piece of every registered URL masked as "…"."""
    return _SCRUBBER.scrub(text)
