"""Broker credentials and session tokens, kept out of config files, databases and logs.

Where secrets come from is an explicit policy rather than keyring's auto-detection, because
auto-detection on a server silently picks a plaintext file or a backend that prompts on a TTY:

1. the OS keyring, if `keyring.get_keyring()` is a real backend: not the fail/null backends,
   not a plaintext file keyring (keyrings.alt), not one that prompts for a passphrase, and not a
   chainer that contains any of those. A refused backend is skipped without an error; `describe()`
   says why;
2. systemd credentials: files in `$CREDENTIALS_DIRECTORY` (`LoadCredential=` /
   `LoadCredentialEncrypted=` in the unit) named `angelone_api_key`, `angelone_client_code`,
   `angelone_mpin`, `angelone_totp_secret`;
3. environment variables `OPTTERM_ANGELONE_API_KEY`, `OPTTERM_ANGELONE_CLIENT_CODE`,
   `OPTTERM_ANGELONE_MPIN`, `OPTTERM_ANGELONE_TOTP_SECRET` (containers, CI).

The first source holding all four fields wins; fields are never mixed across sources, so a stale
half-deleted keyring entry cannot pair with a fresh environment. Only the keyring is writable.
Session tokens go to the keyring when there is one and otherwise stay in memory: never a file.

No value read here is ever put into a message, a repr or a log line, and each secret is
registered with the redactor (infra/redact.py) as it is read, so no library's line shows it
either.
"""

from __future__ import annotations

import binascii
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp

if TYPE_CHECKING:
    # Imported where used: keyring loads its backends' entry points, a cost every command that
    # only imports this module (alerts, notify) would otherwise pay at start-up.
    import keyring.backend

from optterm.infra.redact import protect

__all__ = [
    "CREDENTIAL_FIELDS",
    "ENV_PREFIX",
    "SERVICE",
    "SYSTEMD_PREFIX",
    "AngelCredentials",
    "CredentialError",
    "SecretStore",
    "SecretStoreError",
    "SessionTokens",
    "make_totp",
    "normalise_totp_secret",
]

log = logging.getLogger(__name__)

SERVICE = "optterm"
CREDENTIAL_FIELDS: tuple[str, ...] = ("api_key", "client_code", "mpin", "totp_secret")
SYSTEMD_PREFIX = "angelone_"
ENV_PREFIX = "OPTTERM_ANGELONE_"
_TOKENS_ENTRY = "angelone_session"

_SOURCES = ("keyring", "systemd", "env")


class CredentialError(ValueError):
    """A credential is malformed (the message names the field and source, never the value)."""


class SecretStoreError(RuntimeError):
    """The credential store cannot do what was asked (no usable keyring to write to, …)."""


def _mask_client_code(code: str) -> str:
    # The client code is an account identifier, not a secret, but it is personal data: show just
    # enough to tell two accounts apart on `optterm doctor`.
    return code[:2] + "*" * max(0, len(code) - 2) if code else ""


# The broker issues the secret and we cannot choose its length. pyotp >= 2.12 refuses secrets
# under 112 bits (NIST guidance), which many issuers (16-character, 80-bit secrets are common)
# fall short of; so accept down to 80 bits and treat anything shorter as a bad paste.
MIN_TOTP_SECRET_BITS = 80


class _IssuedTOTP(pyotp.TOTP):
    min_secret_length_bits = MIN_TOTP_SECRET_BITS


def make_totp(secret: str) -> pyotp.TOTP:
    """A pyotp TOTP (30 s, 6 digits, SHA-1) for a broker-issued, normalised secret."""
    return _IssuedTOTP(secret)


def normalise_totp_secret(secret: str) -> str:
    """The TOTP secret as pyotp needs it: no whitespace, upper-case, valid base32.

    Angel's enrolment page shows the secret in spaced groups and people paste it in lower case;
    pyotp rejects both, so normalise once here and fail with a clear message.
    """
    if not isinstance(secret, str):
        raise CredentialError("the TOTP secret must be text")
    cleaned = "".join(secret.split()).upper()
    if not cleaned:
        raise CredentialError("the TOTP secret is empty")
    try:
        make_totp(cleaned).now()
    except (binascii.Error, ValueError, TypeError) as exc:
        why = (
            f"is too short (under {MIN_TOTP_SECRET_BITS} bits); was it pasted completely?"
            if "bits" in str(exc)
            else "is not valid base32 (letters A-Z and digits 2-7)"
        )
        raise CredentialError(
            f"the TOTP secret {why} Copy the secret shown under the QR code at "
            "smartapi.angelbroking.com/enable-totp"
        ) from None
    return cleaned


@dataclass(frozen=True, slots=True, repr=False)
class AngelCredentials:
    """What a SmartAPI login needs. repr/str show only a masked client code."""

    api_key: str
    client_code: str
    mpin: str
    totp_secret: str

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value.strip():
                raise CredentialError(f"angelone {f.name} is empty")
            object.__setattr__(self, f.name, value.strip())
        object.__setattr__(self, "totp_secret", normalise_totp_secret(self.totp_secret))
        object.__setattr__(self, "client_code", self.client_code.upper())
        # Before any library can log one; the TOTP secret also as people paste it (lower case).
        protect((*self.secret_values(), self.totp_secret.lower()))

    def __repr__(self) -> str:
        return (
            f"AngelCredentials(client_code={_mask_client_code(self.client_code)!r}, "
            "api_key='***', mpin='***', totp_secret='***')"
        )

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        """Every secret value, for redaction filters."""
        return (self.api_key, self.mpin, self.totp_secret)


@dataclass(frozen=True, slots=True, repr=False)
class SessionTokens:
    """A SmartAPI session: JWT, refresh and feed tokens, plus what we know about their life.

    `expires_at` comes from the JWT `exp` claim when it decodes, else None; `issued_at` is when we
    obtained them, used for the forced-logout-at-midnight-IST rule.
    """

    jwt: str
    refresh: str
    feed: str
    client_code: str
    issued_at: datetime
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        protect(self.secret_values())  # before any library can log one

    def __repr__(self) -> str:
        exp = self.expires_at.isoformat() if self.expires_at else None
        return (
            f"SessionTokens(client_code={_mask_client_code(self.client_code)!r}, jwt='***', "
            f"refresh='***', feed='***', issued_at={self.issued_at.isoformat()!r}, "
            f"expires_at={exp!r})"
        )

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.jwt, self.refresh, self.feed) if v)

    def to_json(self) -> str:
        return json.dumps(
            {
                "jwt": self.jwt,
                "refresh": self.refresh,
                "feed": self.feed,
                "client_code": self.client_code,
                "issued_at": self.issued_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SessionTokens:
        doc = json.loads(text)
        exp = doc.get("expires_at")
        tokens = cls(
            jwt=str(doc["jwt"]),
            refresh=str(doc.get("refresh") or ""),
            feed=str(doc.get("feed") or ""),
            client_code=str(doc["client_code"]),
            issued_at=datetime.fromisoformat(doc["issued_at"]),
            expires_at=datetime.fromisoformat(exp) if exp else None,
        )
        if tokens.issued_at.tzinfo is None or not tokens.jwt:
            raise ValueError("stored session is incomplete")
        return tokens


# -- keyring backend policy ---------------------------------------------------------------------


def _backend_name(kr: object) -> str:
    cls = type(kr)
    return f"{cls.__module__}.{cls.__qualname__}"


def _refusal(kr: keyring.backend.KeyringBackend) -> str | None:
    """Why this backend must not hold secrets, or None when it is fine."""
    module = type(kr).__module__
    name = type(kr).__name__
    if module.startswith("keyring.backends.fail"):
        return "no OS keyring is available (keyring found no backend)"
    if module.startswith("keyring.backends.null"):
        return "the keyring is disabled (null backend)"
    if "plaintext" in name.lower() or (
        module.startswith("keyrings.alt") and ("file" in module or "Plaintext" in name)
    ):
        # keyrings.alt file keyrings store base64 (Plaintext) or prompt for a password on a TTY
        # (Encrypted): the first is not secret, the second hangs or dies in a daemon.
        return f"{_backend_name(kr)} stores secrets in a file without OS protection; refused"
    if module.startswith("keyrings.cryptfile"):
        return f"{_backend_name(kr)} prompts for a passphrase; refused (no TTY in serve)"
    import keyring.backend

    children = getattr(kr, "backends", None)
    if children is not None and isinstance(kr, keyring.backend.KeyringBackend):
        try:
            members = list(children)
        except Exception:  # a chainer that cannot even list its members is not usable
            return f"{_backend_name(kr)} could not list its backends"
        if not members:
            return "no OS keyring is available (empty keyring chain)"
        for member in members:
            why = _refusal(member)
            if why is not None:
                return f"keyring chain contains a refused backend: {why}"
    return None


def _current_keyring() -> tuple[keyring.backend.KeyringBackend | None, str, str | None]:
    """(backend or None, backend name, refusal reason or None)."""
    import keyring

    try:
        kr = keyring.get_keyring()
    except Exception as exc:  # e.g. SecretService without D-Bus raises RuntimeError here
        return None, "unavailable", f"the keyring could not start: {type(exc).__name__}"
    return kr, _backend_name(kr), _refusal(kr)


# -- the store ----------------------------------------------------------------------------------


class SecretStore:
    """Angel One credentials and session tokens behind the keyring → systemd → env policy.

    `environ` and `credentials_directory` default to the process environment and
    `$CREDENTIALS_DIRECTORY`; `backend` overrides `keyring.get_keyring()` (tests, doctor).
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        credentials_directory: Path | str | None = None,
        backend: keyring.backend.KeyringBackend | None = None,
    ) -> None:
        self._environ = environ
        self._cred_dir = Path(credentials_directory) if credentials_directory else None
        self._backend = backend
        self._memory_tokens: SessionTokens | None = None
        self._lock = threading.Lock()
        self.loaded_from: str | None = None

    def __repr__(self) -> str:
        return f"SecretStore(loaded_from={self.loaded_from!r})"

    # -- backend resolution -------------------------------------------------------------------

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _keyring(self) -> tuple[keyring.backend.KeyringBackend | None, str, str | None]:
        if self._backend is not None:
            return self._backend, _backend_name(self._backend), _refusal(self._backend)
        return _current_keyring()

    def usable_keyring(self) -> keyring.backend.KeyringBackend | None:
        kr, _, why = self._keyring()
        return kr if kr is not None and why is None else None

    def _systemd_dir(self) -> Path | None:
        if self._cred_dir is not None:
            return self._cred_dir
        raw = self._env().get("CREDENTIALS_DIRECTORY")
        return Path(raw) if raw else None

    # -- reading each source ------------------------------------------------------------------

    def _read_keyring(self) -> tuple[dict[str, str], str | None]:
        kr = self.usable_keyring()
        if kr is None:
            return {}, None
        found: dict[str, str] = {}
        for name in CREDENTIAL_FIELDS:
            try:
                value = kr.get_password(SERVICE, SYSTEMD_PREFIX + name)
            except Exception as exc:  # locked keyring, D-Bus hiccup: report, never crash
                return found, f"reading the keyring failed: {type(exc).__name__}"
            if value:
                found[name] = value
        return found, None

    def _read_systemd(self) -> tuple[dict[str, str], str | None]:
        directory = self._systemd_dir()
        if directory is None:
            return {}, None
        found: dict[str, str] = {}
        problem = None
        for name in CREDENTIAL_FIELDS:
            path = directory / (SYSTEMD_PREFIX + name)
            try:
                value = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            except OSError as exc:
                problem = f"cannot read {path.name} in $CREDENTIALS_DIRECTORY: {exc.strerror}"
                continue
            if value:
                found[name] = value
        return found, problem

    def _read_env(self) -> tuple[dict[str, str], str | None]:
        env = self._env()
        found = {
            name: env[ENV_PREFIX + name.upper()].strip()
            for name in CREDENTIAL_FIELDS
            if env.get(ENV_PREFIX + name.upper(), "").strip()
        }
        return found, None

    def _read(self, source: str) -> tuple[dict[str, str], str | None]:
        reader = {"keyring": self._read_keyring, "systemd": self._read_systemd}.get(
            source, self._read_env
        )
        return reader()

    # -- public API ---------------------------------------------------------------------------

    def load(self) -> AngelCredentials | None:
        """Credentials from the first source holding all four fields, or None.

        Sets `loaded_from` to "keyring", "systemd" or "env". A complete source with a malformed
        value raises CredentialError naming the source and field rather than falling through to
        a later source, because silently using other credentials would be worse than stopping.
        """
        self.loaded_from = None
        for source in _SOURCES:
            values, _ = self._read(source)
            if len(values) == len(CREDENTIAL_FIELDS):
                try:
                    creds = AngelCredentials(**values)
                except CredentialError as exc:
                    raise CredentialError(f"{exc} (from {source})") from None
                self.loaded_from = source
                log.info("angelone credentials loaded from %s", source)
                return creds
        return None

    def save(self, creds: AngelCredentials) -> str:
        """Write all four fields to the OS keyring; returns the backend name.

        Raises SecretStoreError when there is no keyring we are willing to use, explaining the
        systemd and environment alternatives (they are read-only from here by design).
        """
        kr, name, why = self._keyring()
        if kr is None or why is not None:
            raise SecretStoreError(
                f"cannot save Angel One credentials: {why or 'no OS keyring'}. On a headless "
                "server provide them instead as systemd credentials (LoadCredential= files "
                "angelone_api_key, angelone_client_code, angelone_mpin, angelone_totp_secret "
                "in $CREDENTIALS_DIRECTORY) or as environment variables "
                "OPTTERM_ANGELONE_API_KEY, OPTTERM_ANGELONE_CLIENT_CODE, OPTTERM_ANGELONE_MPIN, "
                "OPTTERM_ANGELONE_TOTP_SECRET; or unlock a desktop keyring "
                "(gnome-keyring/KWallet) for this session."
            )
        for f in CREDENTIAL_FIELDS:
            try:
                kr.set_password(SERVICE, SYSTEMD_PREFIX + f, getattr(creds, f))
            except Exception as exc:
                raise SecretStoreError(
                    f"the keyring ({name}) refused to store angelone {f}: {type(exc).__name__}"
                ) from None
        return name

    def delete(self) -> int:
        """Remove the credentials and the session tokens from the keyring; returns entries removed.

        Raises SecretStoreError when there is no usable keyring: systemd files and environment
        variables must be removed where they are defined.
        """
        kr, _, why = self._keyring()
        with self._lock:
            self._memory_tokens = None
        if kr is None or why is not None:
            raise SecretStoreError(
                f"no usable keyring ({why or 'none'}); credentials given as systemd credentials "
                "or OPTTERM_ANGELONE_* environment variables must be removed where they are set"
            )
        import keyring.errors

        removed = 0
        for entry in [*(SYSTEMD_PREFIX + f for f in CREDENTIAL_FIELDS), _TOKENS_ENTRY]:
            try:
                kr.delete_password(SERVICE, entry)
                removed += 1
            except keyring.errors.PasswordDeleteError:
                pass
            except Exception as exc:
                raise SecretStoreError(
                    f"the keyring refused to delete {entry}: {type(exc).__name__}"
                ) from None
        return removed

    def describe(self) -> dict[str, Any]:
        """Where each credential field would come from, without any value (for `doctor`)."""
        kr, backend_name, why = self._keyring()
        sources: dict[str, dict[str, Any]] = {}
        for source in _SOURCES:
            values, problem = self._read(source)
            info: dict[str, Any] = {
                "present": [f for f in CREDENTIAL_FIELDS if f in values],
                "missing": [f for f in CREDENTIAL_FIELDS if f not in values],
                "complete": len(values) == len(CREDENTIAL_FIELDS),
            }
            if problem:
                info["problem"] = problem
            if source == "keyring":
                info["usable"] = kr is not None and why is None
            if source == "systemd":
                directory = self._systemd_dir()
                info["directory"] = str(directory) if directory else None
            if source == "env":
                info["variables"] = [ENV_PREFIX + f.upper() for f in CREDENTIAL_FIELDS]
            if info["complete"] and "totp_secret" in values:
                try:
                    normalise_totp_secret(values["totp_secret"])
                except CredentialError:
                    info["problem"] = "totp_secret is not valid base32"
            sources[source] = info
        chosen = next((s for s in _SOURCES if sources[s]["complete"]), None)
        fields_from = {
            f: [s for s in _SOURCES if f in sources[s]["present"]] for f in CREDENTIAL_FIELDS
        }
        return {
            "keyring_backend": backend_name,
            "keyring_usable": kr is not None and why is None,
            "keyring_note": why,
            "source": chosen,
            "fields": fields_from,
            "missing": [f for f, where in fields_from.items() if not where],
            "sources": sources,
            "tokens_kept_in": "keyring" if kr is not None and why is None else "memory",
        }

    # -- session tokens -----------------------------------------------------------------------

    def save_tokens(self, tokens: SessionTokens) -> None:
        with self._lock:
            self._memory_tokens = tokens
        kr = self.usable_keyring()
        if kr is None:
            return
        try:
            kr.set_password(SERVICE, _TOKENS_ENTRY, tokens.to_json())
        except Exception as exc:  # tokens are a cache: losing them costs one login, not a crash
            log.warning(
                "could not keep the angelone session in the keyring: %s", type(exc).__name__
            )

    def load_tokens(self) -> SessionTokens | None:
        # This process's latest session beats the keyring copy (whose write may have failed).
        with self._lock:
            if self._memory_tokens is not None:
                return self._memory_tokens
        kr = self.usable_keyring()
        if kr is not None:
            try:
                raw = kr.get_password(SERVICE, _TOKENS_ENTRY)
            except Exception as exc:
                log.warning(
                    "could not read the angelone session from the keyring: %s", type(exc).__name__
                )
                raw = None
            if raw:
                try:
                    return SessionTokens.from_json(raw)
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring an unreadable angelone session in the keyring")
        return None

    def clear_tokens(self) -> None:
        with self._lock:
            self._memory_tokens = None
        kr = self.usable_keyring()
        if kr is None:
            return
        import keyring.errors

        try:
            kr.delete_password(SERVICE, _TOKENS_ENTRY)
        except keyring.errors.PasswordDeleteError:
            pass
        except Exception as exc:
            log.warning(
                "could not remove the angelone session from the keyring: %s", type(exc).__name__
            )
