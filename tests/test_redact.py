"""The redactor on the log handlers (infra/redact.py, infra/logs.py): every channel URL's secret
parts and the broker's secrets masked in every line from any library, in exceptions, warnings and
extra fields; shapes of secrets masked when nobody registered them."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from optterm.infra.logs import JsonFormatter, configure_logging
from optterm.infra.redact import channel_url_secrets, protect, protect_urls, redact
from optterm.infra.secrets import AngelCredentials, SessionTokens

# The README's example channels, with what each must never show.
README = {
    "tgram://123456:ABC-bot-token/987654321": ["ABC-bot-token"],
    "ntfy://ntfy.sh/my-secret-topic": ["my-secret-topic"],
    "discord://WEBHOOK_ID/WEBHOOK_TOKEN": ["WEBHOOK_TOKEN", "WEBHOOK_ID"],
    "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general": [
        "T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ",
    ],
    "mailtos://me:app-password@gmail.com?to=me@example.com": ["app-password"],
    "json://hooks.example.com/optterm?+X-Token=hdr-secret-42": ["hdr-secret-42"],
    "ntfy://user:ntfy-pass-9@ntfy.example.com/topic?token=tk_abcdef123": [
        "ntfy-pass-9", "tk_abcdef123",
    ],
}  # fmt: skip

# How libraries print them at DEBUG (Apprise's own lines, urllib3's request lines).
LIBRARY_LINES = [
    ("apprise", "Telegram POST URL: https://api.telegram.org/bot123456:ABC-bot-token/sendMessage"),
    ("apprise", "ntfy POST URL: https://ntfy.sh/my-secret-topic (cert_verify=True)"),
    ("apprise", "Discord POST URL: https://discord.com/api/webhooks/WEBHOOK_ID/WEBHOOK_TOKEN"),
    (
        "apprise",
        "Slack POST URL: https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
    ),
    ("apprise", "Email login as me with password app-password"),
    ("apprise", "Loaded JSON URL: json://hooks.example.com/optterm?+X-Token=hdr-secret-42"),
    ("apprise", "ntfy Headers: {'Authorization': 'Bearer tk_abcdef123'}"),
    ("urllib3.connectionpool", '/ "POST /bot123456:ABC-bot-token/sendMessage HTTP/1.1" 200'),
    ("httpx", "HTTP Request: POST https://ntfy.example.com/topic?token=tk_abcdef123"),
    ("asyncio", "Task exception was never retrieved: ntfy-pass-9"),
    ("sqlalchemy.engine", "INSERT … ('tgram://123456:ABC-bot-token/987654321')"),
]  # fmt: skip


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """configure_logging at DEBUG (text), its handler writing here; the root logger and the
    libraries' levels put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {n: logging.getLogger(n).level for n in ("sqlalchemy", "httpx", "httpcore")}
    configure_logging("debug")
    for name in noisy:  # what a library logs if the user turns it up
        logging.getLogger(name).setLevel(logging.DEBUG)
    out = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)


def test_every_readme_scheme_is_masked_in_every_library_line(logged: io.StringIO) -> None:
    protect_urls(README)  # what loading the config does (engine/compose.py)
    for name, line in LIBRARY_LINES:
        logging.getLogger(name).debug("%s", line)
    text = logged.getvalue()
    assert text.count("\n") == len(LIBRARY_LINES)  # every line was written …
    for secrets in README.values():
        for secret in secrets:
            assert secret not in text  # … none with a secret
    assert "api.telegram.org" in text and "Slack POST URL" in text  # what a line is about stays


def test_a_record_is_clean_for_every_handler_of_any_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No configure_logging: registering a secret puts the filter on the root's handlers (here
    # pytest's own), so a record of a library's logger is cleaned before any handler sees it.
    caplog.set_level(logging.DEBUG)
    protect_urls(["tgram://123456:ABC-bot-token/987654321"])
    logging.getLogger("apprise.plugins.telegram").debug(
        "POST %s", "https://api.telegram.org/bot123456:ABC-bot-token/sendMessage"
    )
    (record,) = caplog.records
    assert "ABC-bot-token" not in record.getMessage() and "bot" in record.getMessage()
    assert "ABC-bot-token" not in caplog.text


def test_exceptions_warnings_and_extra_fields_are_masked(logged: io.StringIO) -> None:
    handler = logging.getLogger().handlers[0]
    handler.setFormatter(JsonFormatter())  # what --log-format json installs
    protect(["broker-api-key-77"])
    try:
        raise RuntimeError("login refused for key broker-api-key-77")
    except RuntimeError:
        logging.getLogger("optterm.x").exception("failed")
    logging.getLogger("optterm.x").info("ok", extra={"url": "s://u:broker-api-key-77@h/"})
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)  # catch_warnings put showwarning back: capture again
        warnings.warn("deprecated: pass api_key=broker-api-key-77", UserWarning, stacklevel=1)
    text = logged.getvalue()
    docs = [json.loads(line) for line in text.splitlines()]
    assert [d["level"] for d in docs] == ["error", "info", "warning"]
    assert "RuntimeError" in docs[0]["exc"] and docs[1]["url"] and "deprecated" in docs[2]["msg"]
    assert "broker-api-key-77" not in text


def test_broker_credentials_and_session_tokens_are_masked_once_read() -> None:
    creds = AngelCredentials(
        api_key="apikey-XYZ-123",
        client_code="a1234567",
        mpin="mpin-XYZ-456",
        totp_secret="jbswy3dpehpk3pxp",
    )
    SessionTokens(
        jwt="eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
        refresh="refresh-XYZ-789",
        feed="feed-XYZ-000",
        client_code=creds.client_code,
        issued_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    line = (
        "headers {'X-PrivateKey': 'apikey-XYZ-123'} body {'password': 'mpin-XYZ-456'} "
        "totp JBSWY3DPEHPK3PXP / jbswy3dpehpk3pxp jwt eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl "
        "refresh-XYZ-789 feed-XYZ-000"
    )
    clean = redact(line)
    for secret in ("apikey-XYZ-123", "mpin-XYZ-456", "JBSWY3DPEHPK3PXP", "jbswy3dpehpk3pxp",
                   "eyJhbGciOi", "refresh-XYZ-789", "feed-XYZ-000"):  # fmt: skip
        assert secret not in clean


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("mailtos://me:hunter2pass@smtp.example.com", "hunter2pass"),
        ("POST /bot987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5P/x", "AAHdqTcvCH1vGWJxfSeofSAs0K5P"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("GET /v1/x?apikey=zzz-unregistered-1&mode=a", "zzz-unregistered-1"),
        ("{'token': 'unregistered-tok-2'}", "unregistered-tok-2"),
        ("json://h/p?+X-Api-Key=hdr-unreg-3", "hdr-unreg-3"),
        ("https://discord.com/api/webhooks/1234567/unregWebhookTok", "unregWebhookTok"),
        ("https://hooks.slack.com/services/TA/TB/unregisteredSlackC", "unregisteredSlackC"),
        ("jwt eyJhbGciOiJIUzUx.eyJ1c2VybmFtZSI6.c2lnbmF0dXJlLXNp", "c2lnbmF0dXJlLXNp"),
    ],
)  # fmt: skip
def test_shapes_of_secrets_nobody_registered_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_words_and_messages_are_left_alone() -> None:
    protect_urls(["ntfy://ntfy.example.com/alerts", "json://127.0.0.1:8080/hook?mode=insecure"])
    for line in (
        "alerts: 3 active rule(s)",
        "webhook delivered; mode insecure",
        "[poller] interval: must be a number of seconds; got 'x'",
        "unknown key: poller.intervl (did you mean 'interval'?)",
        "tick 12: 1 chains, 1 stored, 0 failed in 14 ms at 09:15:00",
    ):
        assert redact(line) == line


def test_channel_secrets_keep_the_service_and_host_out() -> None:
    pieces = channel_url_secrets("mailtos://me:app-password@gmail.com:587?to=me@example.com")
    assert "app-password" in pieces
    assert not {"gmail.com", "587", "mailtos"} & pieces


UNCAUGHT = """
import threading
from optterm.infra.redact import protect
protect(["tb-secret-value-1"])
def fail():
    raise ValueError("in a thread: tb-secret-value-1")
t = threading.Thread(target=fail)
t.start()
t.join()
raise RuntimeError("uncaught: tb-secret-value-1")
"""


@pytest.mark.process
def test_an_uncaught_traceback_is_masked_too(tmp_path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 1
    assert "RuntimeError: uncaught: …" in res.stderr and "ValueError: in a thread: …" in res.stderr
    assert "tb-secret-value-1" not in res.stderr


def test_loading_the_settings_registers_every_secret_they_hold(tmp_path) -> None:
    from optterm.engine.compose import CliOptions, load

    config = tmp_path / "optterm.toml"
    config.write_text(
        '[store]\nurl = "postgresql+asyncpg://trader:pg-pass-secret-9@db.example.com/optterm"\n'
        '[notify]\nchannels = { desk = "tgram://123456:tg-secret-token-1/987654321" }\n',
        encoding="utf-8",
    )
    load(CliOptions(config=config), env={})
    # Quoted without their URL, as an error from a driver or a plugin would.
    line = "auth failed for pg-pass-secret-9; token tg-secret-token-1 refused"
    assert redact(line) == "auth failed for …; token … refused"


def test_a_short_pin_is_masked_under_its_key_not_as_every_such_number() -> None:
    protect(["4821"])
    line = 'tick 4821: {"clientcode": "A1", "password": "4821", "totp": "123456"} mpin=4821'
    assert redact(line) == 'tick 4821: {"clientcode": "A1", "password": "…", "totp": "…"} mpin=…'


def test_a_percent_encoded_password_is_masked_in_both_spellings() -> None:
    protect_urls(["mailtos://me:p%40ss%2Fw%3Ard99@smtp.example.com?to=a@b.c"])
    assert redact("login me p@ss/w:rd99 / p%40ss%2Fw%3Ard99") == "login me … / …"
