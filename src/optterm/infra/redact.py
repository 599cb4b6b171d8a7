"""Keeping secrets out of every log line and error message: one redactor for the whole process.

Secrets reach text in ways no single call site controls: Apprise logs the URL it posts to
(`…/bot123:SECRET/sendMessage`), urllib3 logs request paths, an exception's message may quote a
URL, a header dictionary is printed at DEBUG. So the redaction sits where every line passes:

- exact secrets. Whatever holds a secret registers it here before a library can see it: each
  configured notification channel (`protect_urls`: the parts of an Apprise URL that grant access,
  in the forms a log line may show them), the store URL's password, the broker credentials and
  session tokens (infra/secrets.py). Every occurrence becomes "…";
- shapes, as a fallback for a secret nobody registered: a URL's userinfo password, a Telegram bot
  token, a JWT, a bearer token, `token=`/`key=`/`pass=`… query values, webhook paths of Discord
  and Slack.

`install()` puts the redactor on every handler of the root logger (and on logging's last-resort
handler): a filter on a *logger* sees only records logged on that very logger, while a handler
sees the records of every library (apprise, urllib3, httpx, sqlalchemy, asyncio, py.warnings).
The filter rewrites the record itself (message, arguments, exception and stack text, extra
fields), so a handler added later in the chain sees the clean record too. `redact(text)` applies
the same to text of our own (an error message for stderr, a delivery error for the database).

Registered secrets are kept for the life of the process: Apprise's worker threads may still log
after a send has timed out, and a secret is no less secret later.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "MASK",
    "REDACTOR",
    "Redactor",
    "channel_url_secrets",
    "install",
    "protect",
    "protect_url_password",
    "protect_urls",
    "redact",
]

MASK: Final = "…"
# Shorter pieces ("ok", a one-letter path) would mask ordinary words; a secret that short grants
# nothing anyway. Pieces under _WORDLIKE characters are masked only as whole words.
_MIN_PIECE: Final = 3
_WORDLIKE: Final = 8
_SHORT_NUMBER: Final = 7

# Query keys of Apprise URLs whose values are settings, not credentials: masking "insecure" or
# "markdown" in every log line would say nothing and hide what the line is about.
_PLAIN_KEYS: Final = frozenset(
    {
        "mode", "format", "overflow", "verify", "rto", "cto", "retry", "wait", "priority",
        "emojis", "tz", "lang", "batch", "image", "avatar", "discovery", "method", "smtp",
        "name", "from", "to", "cc", "bcc", "reply", "footer", "thread", "content", "silent",
        "preview", "topic_safe", "mdv", "tags", "click", "delay", "attach", "filename", "email",
    }
)  # fmt: skip

# Shapes of secrets, for text that holds one nobody registered. Each keeps what says what the
# thing is (the scheme, the parameter name) and masks the value.
_SHAPES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # scheme://user:password@host → scheme://user:…@host
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)(?![*…]+@)[^\s/@]+@"), rf"\1{MASK}@"),
    # Telegram bot tokens, bare or in the API path: 123456789:AAH…
    (re.compile(r"\b(bot)?(\d{5,12}):[A-Za-z0-9_-]{20,}"), rf"\1\2:{MASK}"),
    # JSON Web Tokens (the broker's session)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Authorization: Bearer …  /  Basic …
    (re.compile(r"\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9._~+/=-]{6,}", re.I), rf"\1\2{MASK}"),
    # token=…, key=…, apikey=…, pass=…, secret=… in a query; 'token': '…' in a dict or JSON
    # (a bare "key: …" is left alone: it is how our messages name a config key)
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|key|secret|"
            r"pass(?:word)?|pwd|m?pin|totp|webhook[_-]?(?:id|token)|private[_-]?key)"
            r"(?:=|[\"']\s*:\s*[\"']?))"
            r"(?![*…])[^\s&\"',;)}\]\\]{3,}"  # not a value masked already ('***')
        ),
        rf"\1{MASK}",
    ),
    # header entries of Apprise json:// / xml:// / form:// URLs: +X-Token=…
    (re.compile(r"([?&]\+[A-Za-z0-9_-]+=)[^\s&]+"), rf"\1{MASK}"),
    # Discord and Slack webhook paths carry the token in the path
    (re.compile(r"(/api/webhooks/\d+/)[A-Za-z0-9_-]+"), rf"\1{MASK}"),
    (re.compile(r"(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"), rf"\1{MASK}"),
)


def _forms(piece: str) -> set[str]:
    """`piece` as a log line may show it: as typed, URL-decoded, URL-encoded."""
    return {f for f in (piece, unquote(piece), quote(unquote(piece), safe="")) if f}


def channel_url_secrets(url: str) -> set[str]:
    """The parts of an Apprise URL that may grant access.

    Which parts those are differs by service (tgram://BOTTOKEN/CHAT, discord://ID/TOKEN,
    slack://A/B/C, ntfy://host/TOPIC?token=…, mailtos://user:PASSWORD@host, json://host/PATH
    ?+X-Token=…), so every part is taken except what only names the service: the scheme, a real
    host name or address, the port, and the values of settings such as mode= or format=."""
    out = {url, url.split("://", 1)[-1]}
    raw: list[str] = []
    scheme, _, rest = url.partition("://")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo:
        raw.append(userinfo)
        raw.extend(userinfo.split(":", 1))
        out.add(base64.b64encode(unquote(userinfo).encode()).decode())  # Basic auth header
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
    if not _is_host(host):
        # tgram://BOTID:TOKEN/…, discord://WEBHOOK_ID/…: the "host" is itself a credential.
        raw.append(hostport)
        raw.extend(hostport.split(":"))
    try:
        parts = urlsplit(url)
        named = [parts.fragment, *parts.path.split("/")]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key[:1] in "+-:":  # header / payload entries: "+X-Token=…"
                raw.append(value)
            elif key.lower() not in _PLAIN_KEYS:
                named.append(value)
        # A path, topic or channel that is a short lower-case word ("alerts", "#general") can
        # be guessed, so masking it protects nothing and would blank that word in every line.
        raw.extend(p for p in named if not (p.isalpha() and p.islower() and len(p) < _WORDLIKE))
    except ValueError:
        raw.append(rest)
    for piece in raw:
        if piece.lower() == scheme.lower():
            continue
        out |= {f for f in _forms(piece) if len(f) >= _MIN_PIECE}
    return out


def _is_host(host: str) -> bool:
    """A real host name or address (names a server, grants nothing), not a token in its place."""
    return host == "localhost" or "." in host or host.startswith("[")


class Redactor(logging.Filter):
    """Masks registered secrets and secret shapes in text and in log records."""

    def __init__(self) -> None:
        super().__init__("optterm.redact")
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, secrets: Iterable[str]) -> None:
        with self._lock:
            new = {s for s in secrets if s and len(s) >= _MIN_PIECE} - self._known
            if not new:
                return
            self._known |= new
            # Longest first, so a whole URL is masked before any of its parts; a short piece
            # only as a whole word ("ok" in "token", "hook" in "webhook" stay as they are).
            alternatives = [
                re.escape(s)
                if len(s) >= _WORDLIKE
                else rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"
                for s in sorted(self._known, key=len, reverse=True)
            ]
            self._pattern = re.compile("|".join(alternatives))

    def clear(self) -> None:
        """Forget every registered secret (tests: each starts with a fresh process's state)."""
        with self._lock:
            self._known.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: still show (and redact) what was logged
            message = f"{record.msg} {record.args}"
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and value is not None:
                record.__dict__[key] = self._redact_extra(value)
        return True

    def _redact_extra(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bool | int | float):
            return value
        return self.redact(str(value))  # the JSON formatter would print str(value)


_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}

REDACTOR: Final = Redactor()


def install(handler: logging.Handler | None = None) -> None:
    """Put the redactor on `handler`, or on every handler of the root logger and on logging's
    last-resort handler (what prints a warning when no handler is configured), and on the
    interpreter's report of an uncaught exception (a traceback quotes values). Idempotent."""
    targets = [handler] if handler is not None else [*logging.getLogger().handlers]
    if handler is None and logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        if REDACTOR not in target.filters:
            target.addFilter(REDACTOR)
    if handler is None and sys.excepthook is sys.__excepthook__:
        sys.excepthook = _report_uncaught
    if handler is None and threading.excepthook is threading.__excepthook__:
        threading.excepthook = _report_uncaught_in_thread


def _report_uncaught(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


def _report_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))


def protect(secrets: Iterable[str]) -> None:
    """Mask each of `secrets` (exact strings: a password, an API key, a token) from now on.

    A short number (a 4-digit MPIN) is left to the shapes (`"password": "…"`, `mpin=…`):
    masking every "4821" would blank tick counts, ports and strikes and protect nothing a
    line would otherwise show, since such a PIN only ever appears under its key."""
    values = [s for s in secrets if s and not (s.isdigit() and len(s) < _SHORT_NUMBER)]
    REDACTOR.register(v for s in values for v in _forms(s))
    install()


def protect_urls(urls: Iterable[str]) -> None:
    """Mask the secret parts of each Apprise URL from now on; call before Apprise sees it."""
    REDACTOR.register(set().union(*(channel_url_secrets(u) for u in urls)))
    install()


def protect_url_password(url: str) -> None:
    """Mask the password of a server URL (a database, a provider): only that part is secret."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        protect([password])


def redact(text: str) -> str:
    """`text` with every registered secret and every secret shape masked as "…"."""
    return REDACTOR.redact(text)
