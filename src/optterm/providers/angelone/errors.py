"""SmartAPI answers → data or a typed provider error.

SmartAPI speaks two envelope dialects, usually with HTTP 200 even on failure:

* the API dialect   `{"status": true|false, "message", "errorcode", "data"}` (the docs even show
  `"status": "false"` and `"data": "null"` as strings);
* the gateway dialect `{"success": false, "message", "errorCode", "data": ""}` (AG8001/AG8003).

A rate limit is different again: HTTP 403 with the plain-text body "Access denied because of
exceeding access rate". Classification, in order:

* "exceeding access rate" anywhere, or HTTP 403/429 without a session-error envelope
  → RateLimited (never re-login: login is itself 1/s and does not reset the counter);
* session codes (AG8001/2/3, AB8050/1, AB1010/1, "invalid token") → SessionInvalid, an AuthError
  the provider answers with one re-login;
* AB1050 (TOTP) and AB1000/AB1007 (client code / MPIN) → CredentialsRejected, an AuthError that
  re-logging in cannot fix;
* AB9019 → NoData (a BadPayload the Greeks path treats as "no IV", not a failure);
* AB1004/AB2000/AB2001, HTTP 5xx and unknown codes → ServerError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from optterm.providers.base import AuthError, BadPayload, RateLimited, ServerError
from optterm.providers.http import decode_json

__all__ = [
    "CREDENTIAL_CODES",
    "RATE_LIMIT_TEXT",
    "SESSION_CODES",
    "TRANSIENT_CODES",
    "CredentialsRejected",
    "Envelope",
    "NoData",
    "SessionInvalid",
    "check_response",
    "classify_envelope",
    "parse_envelope",
    "redact",
]

SESSION_CODES = frozenset({"AG8001", "AG8002", "AG8003", "AB8050", "AB8051", "AB1010", "AB1011"})
CREDENTIAL_CODES = frozenset({"AB1050", "AB1000", "AB1007"})
TRANSIENT_CODES = frozenset({"AB1004", "AB2000", "AB2001"})
NO_DATA_CODES = frozenset({"AB9019"})
RATE_LIMIT_TEXT = "exceeding access rate"

_MAX_MESSAGE = 160
_CODE_RE = re.compile(r"^[A-Za-z]{2}\d{3,5}$")


class SessionInvalid(AuthError):
    """The JWT (or refresh token) is no longer accepted; one re-login may fix it."""

    def __init__(self, provider: str, message: str, code: str) -> None:
        super().__init__(provider, message)
        self.code = code


class CredentialsRejected(AuthError):
    """Login refused for the credentials themselves (TOTP, client code, MPIN): do not retry."""

    def __init__(self, provider: str, message: str, code: str) -> None:
        super().__init__(provider, message)
        self.code = code


class NoData(BadPayload):
    """AB9019 "No Data Available" (e.g. optionGreek for any MCX underlying)."""

    def __init__(self, provider: str, message: str, code: str) -> None:
        super().__init__(provider, message)
        self.code = code


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-trivial secret value replaced by ***."""
    for value in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


@dataclass(frozen=True, slots=True)
class Envelope:
    ok: bool
    code: str
    message: str
    data: Any
    dialect: str  # "status" (API) or "success" (gateway)


def _truthy(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def parse_envelope(provider: str, doc: object, where: str) -> Envelope:
    """Either dialect → Envelope; anything else → BadPayload."""
    if not isinstance(doc, dict):
        raise BadPayload(provider, f"{where}: expected a JSON object, got {type(doc).__name__}")
    if "status" in doc:
        dialect, flag = "status", _truthy(doc.get("status"))
        code = doc.get("errorcode", doc.get("errorCode", ""))
    elif "success" in doc:
        dialect, flag = "success", _truthy(doc.get("success"))
        code = doc.get("errorCode", doc.get("errorcode", ""))
    else:
        raise BadPayload(provider, f"{where}: answer has neither 'status' nor 'success'")
    if flag is None:
        raise BadPayload(provider, f"{where}: '{dialect}' is not a boolean")
    message = doc.get("message", "")
    data = doc.get("data")
    if data == "null":
        data = None
    return Envelope(
        ok=flag,
        code=code.strip().upper() if isinstance(code, str) else "",
        message=message if isinstance(message, str) else "",
        data=data,
        dialect=dialect,
    )


def _short(message: str, secrets: Iterable[str]) -> str:
    text = " ".join(redact(message, secrets).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def classify_envelope(
    provider: str, env: Envelope, where: str, secrets: Iterable[str] = ()
) -> Exception | None:
    """The typed error an unsuccessful envelope stands for (None when `env.ok`)."""
    if env.ok:
        return None
    secrets = tuple(secrets)
    code = env.code if _CODE_RE.match(env.code or "") else ""
    msg = _short(env.message, secrets)
    said = f"{code} {msg}".strip() or "no error code or message"
    lowered = env.message.lower()
    if RATE_LIMIT_TEXT in lowered:
        return RateLimited(provider, f"{where}: rate limited by SmartAPI ({said})")
    if code in SESSION_CODES or (not code and "invalid token" in lowered):
        return SessionInvalid(provider, f"{where}: session not accepted ({said})", code or "TOKEN")
    if code == "AB1050":
        return CredentialsRejected(
            provider,
            f"{where}: login refused, TOTP rejected ({said}). Check that this machine's clock "
            "is synchronised (NTP) and that the stored TOTP secret is the one enrolled at "
            "smartapi.angelbroking.com/enable-totp",
            code,
        )
    if code in CREDENTIAL_CODES:
        return CredentialsRejected(
            provider,
            f"{where}: login refused ({said}); check the client code and MPIN "
            "(optterm creds set angelone)",
            code,
        )
    if code in NO_DATA_CODES:
        return NoData(provider, f"{where}: no data available ({said})", code)
    if code in TRANSIENT_CODES:
        return ServerError(provider, f"{where}: SmartAPI temporary failure ({said})")
    return ServerError(provider, f"{where}: SmartAPI error ({said})")


def check_response(provider: str, resp: httpx.Response, secrets: Iterable[str] = ()) -> Envelope:
    """A successful Envelope from `resp`, or the typed error it stands for."""
    secrets = tuple(secrets)
    where = f"{resp.request.method} {resp.request.url.path}"
    status = resp.status_code
    head = resp.content[:2000].decode("utf-8", "replace").lower()
    if RATE_LIMIT_TEXT in head:
        raise RateLimited(
            provider,
            f"{where}: rate limited by SmartAPI (HTTP {status}, exceeding access rate)",
            retry_after=_retry_after(resp),
        )
    if status in (401, 403, 429):
        # A JSON session error can ride on 401/403 (the SDK's TokenException); a 403/429 that is
        # not one is the rate limiter, whatever its body says.
        env = _maybe_envelope(provider, resp, where)
        if env is not None and not env.ok:
            err = classify_envelope(provider, env, where, secrets)
            if isinstance(err, AuthError):
                raise err
        if status == 401:
            raise SessionInvalid(provider, f"{where}: HTTP 401 unauthorised", "HTTP401")
        raise RateLimited(
            provider, f"{where}: rate limited (HTTP {status})", retry_after=_retry_after(resp)
        )
    if status >= 500:
        raise ServerError(provider, f"{where}: HTTP {status}", status=status)
    if status >= 400:
        # Other 4xx: a business envelope if there is one, else the status is all we know.
        env = _maybe_envelope(provider, resp, where)
        if env is None or env.ok:
            raise ServerError(provider, f"{where}: HTTP {status}", status=status)
    else:
        env = parse_envelope(provider, decode_json(provider, resp), where)
    err = classify_envelope(provider, env, where, secrets)
    if err is not None:
        raise err
    return env


def _maybe_envelope(provider: str, resp: httpx.Response, where: str) -> Envelope | None:
    try:
        return parse_envelope(provider, decode_json(provider, resp), where)
    except (BadPayload, ServerError):
        return None


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 <= value < 86400 else None
