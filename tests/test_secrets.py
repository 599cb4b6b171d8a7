"""The credential store: keyring, then systemd credentials, then env; plaintext refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest

from optterm.infra.secrets import (
    CREDENTIAL_FIELDS,
    SERVICE,
    AngelCredentials,
    CredentialError,
    SecretStore,
    SecretStoreError,
    SessionTokens,
    normalise_totp_secret,
)

API_KEY = "apikey-Zq81kLm"
CLIENT = "A7654321"
MPIN = "mpin-7391-unique"
TOTP = "JBSWY3DPEHPK3PXP"
SECRET_VALUES = (API_KEY, MPIN, TOTP)

ENV = {
    "OPTTERM_ANGELONE_API_KEY": "env-" + API_KEY,
    "OPTTERM_ANGELONE_CLIENT_CODE": "E1111111",
    "OPTTERM_ANGELONE_MPIN": "env-" + MPIN,
    "OPTTERM_ANGELONE_TOTP_SECRET": "gezd gnbv gy3t qojq",  # spaced, lower case: normalised
}


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An OS-keyring stand-in: a dict, raising PasswordDeleteError like the real ones."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.fail_reads = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.fail_reads:
            raise keyring.errors.KeyringLocked("locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


class PlaintextKeyring(MemoryKeyring):
    """Looks like keyrings.alt's base64-in-a-file backend, which must be refused."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


class MixedChain(keyring.backend.KeyringBackend):
    priority = 10  # type: ignore[assignment]
    backends = (MemoryKeyring(), PlaintextKeyring())

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("must never be written to")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*ENV, "CREDENTIALS_DIRECTORY"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def use_keyring(clean_env: None) -> Iterator[callable]:
    previous = keyring.get_keyring()

    def install(backend: keyring.backend.KeyringBackend) -> keyring.backend.KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    try:
        yield install
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(use_keyring) -> MemoryKeyring:
    return use_keyring(MemoryKeyring())


@pytest.fixture
def no_keyring(use_keyring) -> keyring.backend.KeyringBackend:
    return use_keyring(keyring.backends.fail.Keyring())


def creds() -> AngelCredentials:
    return AngelCredentials(api_key=API_KEY, client_code=CLIENT, mpin=MPIN, totp_secret=TOTP)


def write_systemd(directory: Path, values: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / f"angelone_{name}").write_text(value + "\n", encoding="utf-8")
    return directory


# -- values ----------------------------------------------------------------------------------


def test_credentials_repr_and_str_never_show_a_secret():
    c = creds()
    for text in (repr(c), str(c), f"{c}", repr([c]), repr({"c": c})):
        assert not any(s in text for s in SECRET_VALUES)
        assert CLIENT not in text
        assert "A7******" in text


def test_credentials_normalise_whitespace_case_and_reject_empty_fields():
    c = AngelCredentials(
        api_key=" k ", client_code="a1 ", mpin="1234", totp_secret="jbsw y3dp ehpk 3pxp"
    )
    assert (c.api_key, c.client_code, c.totp_secret) == ("k", "A1", TOTP)
    with pytest.raises(CredentialError, match="mpin is empty"):
        AngelCredentials(api_key="k", client_code="A1", mpin="  ", totp_secret=TOTP)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("JBSWY3DPEHPK3PXP", TOTP), ("jbsw y3dp ehpk 3pxp", TOTP), (" jbswy3dp\tehpk3pxp\n", TOTP)],
)
def test_normalise_totp_secret(raw: str, clean: str):
    assert normalise_totp_secret(raw) == clean


@pytest.mark.parametrize("bad", ["", "   ", "not base32 at all!", "JBSWY3DP1890", "JBSWY3DP"])
def test_invalid_totp_secret_is_a_clear_error_without_the_value(bad: str):
    with pytest.raises(CredentialError) as info:
        normalise_totp_secret(bad)
    message = str(info.value)
    assert "TOTP secret" in message
    if bad.strip():
        assert bad.strip() not in message


def test_session_tokens_repr_is_masked_and_round_trips_json():
    tokens = SessionTokens(
        jwt="jwt-abc-123",
        refresh="refresh-abc-123",
        feed="feed-abc-123",
        client_code=CLIENT,
        issued_at=datetime(2026, 7, 20, 4, 30, tzinfo=UTC),
    )
    assert not any(v in repr(tokens) for v in ("jwt-abc-123", "refresh-abc-123", "feed-abc-123"))
    again = SessionTokens.from_json(tokens.to_json())
    assert again.to_json() == tokens.to_json()


# -- sources -----------------------------------------------------------------------------------


def test_keyring_round_trip_one_entry_per_field(memory_keyring: MemoryKeyring):
    store = SecretStore()
    assert store.load() is None
    backend = store.save(creds())
    assert backend.endswith("MemoryKeyring")
    assert set(memory_keyring.entries) == {(SERVICE, f"angelone_{f}") for f in CREDENTIAL_FIELDS}
    loaded = store.load()
    assert loaded == creds()
    assert store.loaded_from == "keyring"


def test_keyring_wins_over_systemd_and_env(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    SecretStore().save(creds())
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    write_systemd(
        tmp_path / "creds", {"api_key": "s", "client_code": "S1", "mpin": "1", "totp_secret": TOTP}
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    store = SecretStore()
    assert store.load() == creds()
    assert store.loaded_from == "keyring"


def test_incomplete_keyring_falls_through_to_a_complete_source_without_mixing(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
):
    memory_keyring.set_password(SERVICE, "angelone_api_key", "stale-keyring-key")
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    store = SecretStore()
    loaded = store.load()
    assert store.loaded_from == "env"
    assert loaded is not None
    assert loaded.api_key == "env-" + API_KEY
    assert loaded.totp_secret == "GEZDGNBVGY3TQOJQ"


def test_systemd_credentials_directory_beats_env(
    no_keyring: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    directory = write_systemd(
        tmp_path / "run-credentials",
        {"api_key": API_KEY, "client_code": CLIENT, "mpin": MPIN, "totp_secret": TOTP},
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(directory))
    store = SecretStore()
    assert store.load() == creds()
    assert store.loaded_from == "systemd"


def test_partial_systemd_directory_is_skipped(no_keyring: object, tmp_path: Path, monkeypatch):
    directory = write_systemd(tmp_path / "c", {"api_key": API_KEY, "mpin": MPIN})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(directory))
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    store = SecretStore()
    assert store.load() is not None
    assert store.loaded_from == "env"
    info = store.describe()
    assert info["sources"]["systemd"]["present"] == ["api_key", "mpin"]
    assert info["sources"]["systemd"]["missing"] == ["client_code", "totp_secret"]


def test_env_only_on_a_server_without_keyring(no_keyring: object, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    store = SecretStore()
    assert store.load() is not None
    assert store.loaded_from == "env"


def test_a_complete_source_with_a_bad_totp_secret_stops_with_the_source_named(
    no_keyring: object, monkeypatch
):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OPTTERM_ANGELONE_TOTP_SECRET", "not-base32-!!")
    with pytest.raises(CredentialError, match=r"TOTP secret.*\(from env\)") as info:
        SecretStore().load()
    assert "not-base32-!!" not in str(info.value)


def test_nothing_configured_loads_none(no_keyring: object):
    store = SecretStore()
    assert store.load() is None
    assert store.loaded_from is None
    assert store.describe()["missing"] == list(CREDENTIAL_FIELDS)


# -- backend policy ----------------------------------------------------------------------------


def test_save_without_a_keyring_explains_the_alternatives(no_keyring: object):
    with pytest.raises(SecretStoreError) as info:
        SecretStore().save(creds())
    message = str(info.value)
    assert "no OS keyring" in message
    assert "OPTTERM_ANGELONE_API_KEY" in message
    assert "CREDENTIALS_DIRECTORY" in message
    assert not any(s in message for s in SECRET_VALUES)


def test_plaintext_keyring_is_refused_silently(use_keyring, monkeypatch):
    plain = use_keyring(PlaintextKeyring())
    for f in CREDENTIAL_FIELDS:  # even a complete plaintext entry set is never read
        plain.set_password(SERVICE, f"angelone_{f}", getattr(creds(), f))
    store = SecretStore()
    assert store.load() is None
    with pytest.raises(SecretStoreError, match="without OS protection"):
        store.save(creds())
    info = store.describe()
    assert info["keyring_usable"] is False
    assert "PlaintextKeyring" in info["keyring_note"]
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert store.load() is not None
    assert store.loaded_from == "env"


def test_chainer_containing_a_plaintext_backend_is_refused(use_keyring):
    use_keyring(MixedChain())
    store = SecretStore()
    assert store.usable_keyring() is None
    assert "refused backend" in store.describe()["keyring_note"]
    with pytest.raises(SecretStoreError):
        store.save(creds())


def test_null_backend_is_not_a_keyring(use_keyring):
    use_keyring(keyring.backends.null.Keyring())
    assert SecretStore().describe()["keyring_note"] == "the keyring is disabled (null backend)"


def test_a_locked_keyring_falls_through_and_is_reported(memory_keyring: MemoryKeyring, monkeypatch):
    SecretStore().save(creds())
    memory_keyring.fail_reads = True
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    store = SecretStore()
    assert store.load() is not None
    assert store.loaded_from == "env"
    assert "KeyringLocked" in store.describe()["sources"]["keyring"]["problem"]


def test_delete_removes_credentials_and_tokens(memory_keyring: MemoryKeyring):
    store = SecretStore()
    store.save(creds())
    store.save_tokens(_tokens())
    assert store.delete() == 5
    assert memory_keyring.entries == {}
    assert store.load() is None
    assert store.load_tokens() is None
    assert store.delete() == 0


def test_delete_without_keyring_says_where_to_remove_them(no_keyring: object):
    with pytest.raises(SecretStoreError, match="must be removed where they are set"):
        SecretStore().delete()


def test_describe_reports_sources_and_never_values(memory_keyring: MemoryKeyring, monkeypatch):
    SecretStore().save(creds())
    monkeypatch.setenv("OPTTERM_ANGELONE_MPIN", "env-" + MPIN)
    info = SecretStore().describe()
    dumped = json.dumps(info)
    assert not any(s in dumped for s in (*SECRET_VALUES, "env-" + MPIN, CLIENT))
    assert info["source"] == "keyring"
    assert info["keyring_usable"] is True
    assert info["fields"]["mpin"] == ["keyring", "env"]
    assert info["fields"]["api_key"] == ["keyring"]
    assert info["sources"]["env"]["present"] == ["mpin"]
    assert info["tokens_kept_in"] == "keyring"


# -- session tokens ----------------------------------------------------------------------------


def _tokens() -> SessionTokens:
    return SessionTokens(
        jwt="jwt-xyz",
        refresh="refresh-xyz",
        feed="feed-xyz",
        client_code=CLIENT,
        issued_at=datetime(2026, 7, 20, 4, 30, tzinfo=UTC),
    )


def test_tokens_live_in_the_keyring_across_store_instances(memory_keyring: MemoryKeyring):
    SecretStore().save_tokens(_tokens())
    assert (SERVICE, "angelone_session") in memory_keyring.entries
    loaded = SecretStore().load_tokens()
    assert loaded is not None
    assert loaded.jwt == "jwt-xyz"
    SecretStore().clear_tokens()
    assert SecretStore().load_tokens() is None


def test_without_keyring_tokens_stay_in_memory_and_never_touch_disk(
    no_keyring: object, home, tmp_path: Path
):
    before = sorted(p for p in tmp_path.rglob("*"))
    store = SecretStore()
    store.save_tokens(_tokens())
    loaded = store.load_tokens()
    assert loaded is not None
    assert loaded.jwt == "jwt-xyz"
    assert SecretStore().load_tokens() is None  # another instance (process) does not see them
    assert sorted(p for p in tmp_path.rglob("*")) == before
    store.clear_tokens()
    assert store.load_tokens() is None


def test_unreadable_stored_session_is_ignored(memory_keyring: MemoryKeyring):
    memory_keyring.set_password(SERVICE, "angelone_session", "{not json")
    assert SecretStore().load_tokens() is None
