"""The alert book: the one way a rule is added, changed, switched, removed or test-sent, whichever
front end asks. A real SQLite store, an in-memory keyring and a loopback HTTP sink."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest

from optterm.config import Settings, load_settings
from optterm.engine.alerts.book import (
    AlertBook,
    AlertBookError,
    ChannelResult,
    UnknownAlertRule,
    draft_rule,
    message_for_test,
    send_test_message,
)
from optterm.store import Store
from optterm.store.errors import StoreError
from tests.notify_servers import CaptureServer

SECRET = "S3CRETtok3n98765"
TODAY = date(2026, 11, 20)
SPOT_ABOVE = {"symbol": "NIFTY", "kind": "PRICE", "condition": "above", "threshold": 25_000.0,
              "owner": "trader", "today": TODAY}  # fmt: skip


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    """Never the developer's real keyring."""
    kr = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: kr)
    return kr


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path, server: CaptureServer, memory_keyring: MemoryKeyring) -> Settings:
    toml = tmp_path / "optterm.toml"
    toml.write_text(
        f'[notify]\ntimeout = 5\nchannels = {{ hook = "{server.json_url("hook")}" }}\n',
        encoding="utf-8",
    )
    return load_settings(toml, env={})


@pytest.fixture
def book(store: Store, settings: Settings) -> AlertBook:
    return AlertBook(store, settings)


def dump(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


# --------------------------------------------------------------------------------------- adding


async def test_a_rule_without_channels_is_in_app_and_saved(book: AlertBook, store: Store) -> None:
    rule = await book.add(SPOT_ABOVE)
    assert rule.id is not None and rule.created_at is not None
    assert rule.channels == ("app",) and rule.channel_labels == ("in-app",)
    assert await store.alerts.get_rule(rule.id) == rule


async def test_a_typed_url_goes_to_the_keyring_and_only_its_reference_is_stored(
    book: AlertBook, store: Store, db: Path, memory_keyring: MemoryKeyring, server: CaptureServer
) -> None:
    url = server.json_url(f"/hook/{SECRET}")
    rule = await book.add(SPOT_ABOVE, [url, "tag:hook", "app"])
    ref, tag, app = rule.channels
    assert ref.startswith("keyring:") and (tag, app) == ("tag:hook", "app")
    assert rule.channel_labels[0] == f"json://127.0.0.1:{server.port}/…"
    assert list(memory_keyring.entries.values()) == [url]
    assert SECRET not in dump(db)


@pytest.mark.parametrize(
    ("fields", "specs", "needle"),
    [
        ({**SPOT_ABOVE, "symbol": "NIFTYX"}, ["URL"], "symbol 'NIFTYX' is not known"),
        ({**SPOT_ABOVE, "threshold": -1.0}, ["URL"], "must be a price above 0"),
        (SPOT_ABOVE, ["URL", "notaservice://x"], "Apprise cannot use"),
        (SPOT_ABOVE, ["URL", "tag:nope"], "tag:nope is not in [notify] channels"),
        (SPOT_ABOVE, ["URL", "keyring:0123456789abcdef"], "is not one of this rule's channels"),
        (SPOT_ABOVE, ["URL", "whatever"], "channel 2 is not app, tag:NAME or an Apprise URL"),
        (SPOT_ABOVE, [], "a rule needs at least one channel"),
    ],
    ids=["symbol", "threshold", "bad-url", "unknown-tag", "foreign-ref", "not-a-channel", "none"],
)
async def test_a_bad_rule_or_channel_keeps_nothing_anywhere(
    book: AlertBook,
    store: Store,
    memory_keyring: MemoryKeyring,
    server: CaptureServer,
    fields: dict[str, Any],
    specs: list[str],
    needle: str,
) -> None:
    good = server.json_url(f"/hook/{SECRET}")
    with pytest.raises(AlertBookError) as refused:
        await book.add(fields, [good if s == "URL" else s for s in specs])
    assert needle in str(refused.value)
    assert SECRET not in str(refused.value)
    assert memory_keyring.entries == {}  # checked before anything was kept
    assert await store.alerts.list_rules() == []


def test_a_draft_has_no_side_effect_and_checks_urls_only_when_asked(
    settings: Settings, memory_keyring: MemoryKeyring, server: CaptureServer
) -> None:
    url = server.json_url(f"/hook/{SECRET}")
    rule = draft_rule(settings, SPOT_ABOVE, [url, "app"])
    assert rule.channels == ("url:1", "app")  # a placeholder until it is kept
    assert rule.channel_labels == (f"json://127.0.0.1:{server.port}/…", "in-app")
    assert memory_keyring.entries == {}
    assert draft_rule(settings, SPOT_ABOVE, ["notaservice://x"], check_urls=False).channels == (
        "url:1",
    )
    with pytest.raises(AlertBookError, match="Apprise cannot use"):
        draft_rule(settings, SPOT_ABOVE, ["notaservice://x"])


# ------------------------------------------------------------------------------------- changing


async def test_an_update_keeps_the_switch_the_creation_time_and_kept_channels(
    book: AlertBook, store: Store, memory_keyring: MemoryKeyring, server: CaptureServer
) -> None:
    url = server.json_url(f"/hook/{SECRET}")
    first = await book.add(SPOT_ABOVE, [url])
    assert first.id is not None
    await book.set_enabled(first.id, False)
    ref, label = first.channels[0], first.channel_labels[0]

    # The form shows the stored reference, not the URL; leaving it in keeps it as it was.
    changed = await book.update(
        first.id, {**SPOT_ABOVE, "threshold": 26_000.0}, [ref, "app"], kept={ref: label}
    )
    assert changed.id == first.id and changed.threshold == 26_000
    assert changed.enabled is False and changed.created_at == first.created_at
    assert changed.channels == (ref, "app") and changed.channel_labels == (label, "in-app")
    assert len(memory_keyring.entries) == 1
    assert await store.alerts.get_rule(first.id) == changed


async def test_switching_and_removing(book: AlertBook, store: Store) -> None:
    rule = await book.add(SPOT_ABOVE)
    assert rule.id is not None
    assert (await book.set_enabled(rule.id, False)).enabled is False
    assert (await book.set_enabled(rule.id, True)).enabled is True
    assert await book.remove(rule.id) == rule  # as it was stored, enabled again
    assert await store.alerts.list_rules() == []


async def test_an_unknown_id_is_one_error_whatever_is_asked(book: AlertBook) -> None:
    for ask in (
        book.get(7),
        book.set_enabled(7, True),
        book.remove(7),
        book.update(7, SPOT_ABOVE),
        book.send_test_message(7),
    ):
        with pytest.raises(UnknownAlertRule, match="no alert rule 7") as err:
            await ask
        assert err.value.rule_id == 7


async def test_a_store_failure_is_an_alert_book_error(settings: Settings) -> None:
    class DownAlerts:
        async def add_rule(self, rule: Any) -> Any:
            raise StoreError("Saving the alert rule failed: the database is unreachable")

    class DownStore:
        alerts = DownAlerts()

    with pytest.raises(AlertBookError, match="the database is unreachable"):
        await AlertBook(DownStore(), settings).add(SPOT_ABOVE)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- test messages


async def test_a_rules_test_message_reaches_each_channel_and_skips_in_app(
    book: AlertBook, server: CaptureServer
) -> None:
    url = server.json_url(f"/direct/{SECRET}")
    rule = await book.add(SPOT_ABOVE, ["app", "tag:hook", url])
    assert rule.id is not None
    _, results = await book.send_test_message(rule.id)
    assert [(r.label, r.ok, r.sent) for r in results] == [
        ("in-app", None, False),
        (rule.channel_labels[1], True, True),
        (rule.channel_labels[2], True, True),
    ]
    [hit] = server.hits("/hook")
    assert hit.json()["title"] == f"optterm test: alert rule {rule.id}"
    assert "NIFTY spot crosses above 25,000" in hit.json()["message"]
    assert len(server.hits(f"/direct/{SECRET}")) == 1
    assert all(SECRET not in (r.error or "") + r.label for r in results)


async def test_channels_not_saved_yet_are_tested_and_bad_ones_reported(
    settings: Settings, server: CaptureServer, memory_keyring: MemoryKeyring
) -> None:
    server.fail("/down")
    title, body = message_for_test(None)
    results = await send_test_message(
        settings,
        ["tag:hook", server.json_url("/down"), "tag:nope", "whatever", "keyring:0123456789abcdef"],
        title,
        body,
    )
    ok, down, nope, bad, gone = results
    assert ok == ChannelResult(ok.label, True, None, sent=True)
    assert down.ok is False and down.sent and down.label == f"json://127.0.0.1:{server.port}/…"
    assert (nope.label, nope.ok, nope.sent) == ("channel 3", False, False)
    assert "tag:nope is not in [notify] channels" in (nope.error or "")
    assert "channel 4 is not app, tag:NAME or an Apprise URL" in (bad.error or "")
    assert "is not one of this rule's channels" in (gone.error or "")
    assert memory_keyring.entries == {}  # a test keeps nothing
    assert title == "optterm test" and "A test of this alert's channels." in body
