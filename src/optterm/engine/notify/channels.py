"""Notification channels: what an alert rule stores, and how it becomes an Apprise URL at send time.

Apprise URLs carry tokens (a Telegram bot token, a webhook secret, a mail password), so neither the
database nor a log ever holds one. A rule stores *references*:

- ``app``: in-app only (the TUI shows a toast);
- ``tag:NAME``: the URL under NAME in the config's ``[notify] channels``;
- ``keyring:ID``: a URL given on the command line, kept in the OS keyring under ``notify:ID``.

Every URL shown or logged goes through `redact_url` first.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from optterm.config import Settings
from optterm.config.checks import apprise_refusal
from optterm.infra.secrets import SERVICE, SecretStore
from optterm.model import Channel

__all__ = [
    "APP",
    "Channel",
    "ChannelError",
    "parse_channel_spec",
    "redact_url",
    "resolve_channel",
    "validate_url",
]

APP = "app"
_KEYRING_PREFIX = "notify:"
_TAG = re.compile(r"tag:([A-Za-z0-9_-]{1,32})")
_KEYRING = re.compile(r"keyring:([0-9a-f]{16})")


class ChannelError(ValueError):
    """A channel that cannot be used; the message says how to fix it and never holds a secret."""


def redact_url(url: str) -> str:
    """scheme://host/… with credentials, path tokens and query values masked.

    Keeps what tells channels apart (service and host) and nothing that grants access."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    scheme = parts.scheme or "?"
    host = parts.hostname or ""
    # For most Apprise schemes the "host" is itself a token (tgram://BOTTOKEN/...); keep only
    # a hint of it unless it looks like a real host name.
    if host and "." not in host and host not in ("localhost",):
        host = host[:2] + "…" if len(host) > 4 else "…"
    port = f":{parts.port}" if _safe_port(parts) else ""
    rest = "/…" if parts.path.strip("/") else ""
    query = "?…" if parts.query else ""
    return f"{scheme}://{host}{port}{rest}{query}"


def _safe_port(parts) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return False


def validate_url(url: str) -> str | None:
    """None when Apprise can use `url`, else a message saying what is wrong (without the URL).
    The same check as the config's [notify] channels get when they are loaded."""
    if "://" not in url:
        return "an Apprise URL looks like scheme://…, e.g. ntfy://ntfy.sh/my-topic"
    return apprise_refusal(url)


def _keyring_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def parse_channel_spec(spec: str, settings: Settings, secrets: SecretStore | None) -> Channel:
    """Turn what a user typed (app, tag:NAME, or an Apprise URL) into a stored reference.

    A URL is validated, then kept in the OS keyring; with no usable keyring it is refused with
    the alternative (a named channel in the config), never written anywhere in clear."""
    spec = spec.strip()
    if spec.lower() == APP:
        return Channel(APP, "in-app")
    if m := _TAG.fullmatch(spec):
        name = m.group(1)
        if name not in settings.notify.channels:
            known = ", ".join(sorted(settings.notify.channels)) or "none are configured"
            raise ChannelError(
                f"channel tag:{name} is not in [notify] channels of the config ({known}); add "
                f'{name} = "scheme://…" there or pass the Apprise URL itself'
            )
        return Channel(spec, f"tag:{name} ({redact_url(settings.notify.channels[name])})")
    if spec.startswith("tag:"):
        raise ChannelError("a channel tag is tag:NAME with 1-32 letters, digits, '_' or '-'")
    problem = validate_url(spec)
    if problem is not None:
        raise ChannelError(f"notification channel {redact_url(spec)}: {problem}")
    kr = secrets.usable_keyring() if secrets is not None else None
    if kr is None:
        raise ChannelError(
            "this machine has no usable OS keyring to keep the channel's URL in (it carries a "
            "token, so optterm will not store it in the database). Put it in the config instead, "
            'under [notify] channels as NAME = "URL" (chmod 600 the file), and use --notify '
            "tag:NAME"
        )
    ident = _keyring_id(spec)
    try:
        kr.set_password(SERVICE, _KEYRING_PREFIX + ident, spec)
    except Exception as exc:
        raise ChannelError(
            f"could not save the channel in the keyring ({type(exc).__name__}); use a named "
            "channel in [notify] channels instead"
        ) from None
    return Channel(f"keyring:{ident}", redact_url(spec))


def resolve_channel(ref: str, settings: Settings, secrets: SecretStore | None) -> str | None:
    """The Apprise URL behind a stored reference; None for in-app; ChannelError if it is gone."""
    if ref == APP:
        return None
    if m := _TAG.fullmatch(ref):
        url = settings.notify.channels.get(m.group(1))
        if url is None:
            raise ChannelError(f"{ref} is no longer in [notify] channels of the config")
        return url
    if m := _KEYRING.fullmatch(ref):
        kr = secrets.usable_keyring() if secrets is not None else None
        url = None
        if kr is not None:
            try:
                url = kr.get_password(SERVICE, _KEYRING_PREFIX + m.group(1))
            except Exception:
                url = None
        if not url:
            raise ChannelError(f"{ref}: the URL is not in this machine's keyring")
        return url
    raise ChannelError(f"unknown channel reference {ref!r}")
