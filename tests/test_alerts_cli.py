"""`optterm alerts` and `optterm notify` as a user meets them: the real command, a real SQLite file,
loopback-only deliveries, and never a channel's token on screen."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from optterm.engine.notify.channels import Channel
from optterm.model import AlertEvent, AlertKind, Feed
from optterm.store import open_store
from optterm.store.alerts import RuleStateRow
from tests.conftest import Home, run_cli
from tests.notify_servers import CaptureServer

TOKEN = "S3CRETtok3n98765"
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
# A keyring backend for the commands: a JSON file, so `alerts add` can keep a URL that a
# later `alerts test` reads back. (The real OS keyring is not available on a test machine.)
FILE_KEYRING = """
import json, os
from pathlib import Path
from keyring.backend import KeyringBackend

class FileKeyring(KeyringBackend):
    priority = 1
    def _read(self):
        p = Path(os.environ["OPTTERM_TEST_KEYRING"])
        return json.loads(p.read_text()) if p.exists() else {}
    def get_password(self, service, username):
        return self._read().get(f"{service}|{username}")
    def set_password(self, service, username, password):
        data = self._read()
        data[f"{service}|{username}"] = password
        Path(os.environ["OPTTERM_TEST_KEYRING"]).write_text(json.dumps(data))
    def delete_password(self, service, username):
        data = self._read()
        data.pop(f"{service}|{username}", None)
        Path(os.environ["OPTTERM_TEST_KEYRING"]).write_text(json.dumps(data))
"""


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as s:
        yield s


def cli(home: Home, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if not home.config.exists():
        home.write_config()
    return run_cli(home, "--config", str(home.config), *args, env={**NO_KEYRING, **(env or {})})


def ok(out: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert out.returncode == 0, out.stderr
    return out


def refused(out: subprocess.CompletedProcess, *needles: str) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.startswith("optterm: "), out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr
    return out.stderr


def stored_rules(home: Home) -> int:
    if not home.db.exists():
        return 0
    with sqlite3.connect(home.db) as conn:
        return conn.execute("SELECT COUNT(*) FROM alert_rules").fetchone()[0]


def rules_json(home: Home, *args: str) -> list[dict[str, Any]]:
    return json.loads(ok(cli(home, "alerts", "list", "--json", *args)).stdout)


def next_month() -> str:
    return (date.today() + timedelta(days=35)).isoformat()


# ------------------------------------------------------------------------------------- adding


def test_add_from_one_line_of_text_and_list_it(home: Home) -> None:
    out = ok(cli(home, "alerts", "add", "NIFTY spot crosses above 25000"))
    assert out.stdout.splitlines() == [
        "Added alert rule 1: NIFTY spot crosses above 25,000",
        "  notify: in-app",
    ]
    ok(cli(home, "alerts", "add", "BANKNIFTY", "pcr", "below", "0.7", "once"))  # unquoted words
    [first, second] = rules_json(home)
    assert first["id"] == 1 and first["kind"] == "PRICE" and first["metric"] == "spot"
    assert first["threshold"] == 25000 and first["hysteresis"] == 25
    assert first["state"] == "armed" and first["last_fired_at"] is None
    assert first["channels"] == ["in-app"] and first["note"] == "NIFTY spot crosses above 25000"
    assert second["summary"] == "BANKNIFTY pcr crosses below 0.7 · once"
    assert second["recurring"] is False

    table = ok(cli(home, "alerts", "list")).stdout
    for text in ("NIFTY spot crosses above 25,000", "BANKNIFTY pcr crosses below 0.7", "armed",
                 "never", "in-app"):  # fmt: skip
        assert text in table
    assert "BANKNIFTY" not in ok(cli(home, "alerts", "list", "--symbol", "nifty")).stdout


def test_add_with_flags(home: Home) -> None:
    exp = next_month()
    out = ok(
        cli(home, "alerts", "add", "--symbol", "nifty", "--kind", "volatility", "--strike",
            "25000", "--side", "pe", "--condition", "above", "--threshold", "20%", "--expiry",
            exp, "--cooldown", "10m", "--once", "--from", "09:30", "--to", "15:00", "--json")
    )  # fmt: skip
    rule = json.loads(out.stdout)
    assert rule["summary"] == (
        f"NIFTY {exp} 25000 PE iv crosses above 20% · cooldown 10m · from 09:30 to 15:00 · once"
    )
    assert (rule["kind"], rule["metric"], rule["threshold"]) == ("VOLATILITY", "iv", 0.2)
    assert (rule["expiry"], rule["strike"], rule["side"]) == (exp, 25000, "PE")
    assert (rule["cooldown_s"], rule["recurring"]) == (600, False)
    assert (rule["active_from"], rule["active_to"]) == ("09:30", "15:00")

    # Flags win over the text.
    out = ok(cli(home, "alerts", "add", "NIFTY spot above 25000", "--window", "15m",
                 "--condition", "changes", "--threshold", "1%", "--json"))  # fmt: skip
    rule = json.loads(out.stdout)
    assert (rule["condition"], rule["threshold"], rule["window_s"]) == ("PERCENT_CHANGE", 1, 900)
    assert rule["note"] == "NIFTY spot above 25000"

    refused(cli(home, "alerts", "add", "--threshold", "5"), "say what to watch", "--symbol")
    assert stored_rules(home) == 2


def test_owners(home: Home) -> None:
    ok(cli(home, "alerts", "add", "NIFTY pcr above 1.3"))
    ok(cli(home, "alerts", "add", "NIFTY pcr below 0.7", "--owner", "someone-else"))
    assert [r["id"] for r in rules_json(home)] == [1]
    everyone = rules_json(home, "--all-owners")
    assert [(r["id"], r["owner"]) for r in everyone][1] == (2, "someone-else")
    assert "someone-else" in ok(cli(home, "alerts", "list", "--all-owners")).stdout


# --------------------------------------------------------------------------------- refusing


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["NIFTYX spot above 25000"], ["NIFTYX is not a known symbol; use one of NIFTY"]),
        (["--symbol", "NIFTYX", "--kind", "PRICE", "--condition", "above", "--threshold", "1"],
         ["symbol 'NIFTYX' is not known; use one of NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY"]),
        (["NIFTY spot above 25000", "--cooldown=-5"], ["cooldown must not be negative, got -5"]),
        (["NIFTY pcr above -1"], ["a PCR threshold is a put/call ratio above 0", "got -1"]),
        (["NIFTY atm iv above 20"], ["did you mean 0.2 (20%)"]),
        (["NIFTY spot goes abov 25000"], ["word 4 ('abov')", "Write it like"]),
        (["NIFTY spot above 25000", "--notify", "notaservice://x"],
         ["notaservice://", "Apprise cannot use"]),
        (["NIFTY spot above 25000", "--notify", "tag:ops"],
         ["tag:ops is not in [notify] channels", "none are configured"]),
        (["NIFTY spot above 25000", "--window", "soon"], ["--window 'soon' is not a duration"]),
    ],
)  # fmt: skip
def test_a_bad_rule_or_channel_exits_2_and_stores_nothing(
    home: Home, args: list[str], needles: list[str]
) -> None:
    refused(cli(home, "alerts", "add", *args), *needles)
    assert stored_rules(home) == 0
    if home.db.exists():
        assert rules_json(home) == []


def test_a_url_without_a_keyring_is_refused_with_the_alternative(home: Home) -> None:
    url = f"tgram://123456789:{TOKEN}/987654"
    out = cli(home, "alerts", "add", "NIFTY spot above 25000", "--notify", url)
    refused(out, "no usable OS keyring", "[notify] channels", "tag:NAME")
    assert TOKEN not in out.stdout + out.stderr
    assert stored_rules(home) == 0


def test_a_bad_url_after_a_good_one_keeps_nothing(home: Home) -> None:
    keyring_file = home.root / "keyring.json"
    (home.root / "fake_keyring.py").write_text(FILE_KEYRING)
    env = {"PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
           "OPTTERM_TEST_KEYRING": str(keyring_file)}  # fmt: skip
    good = f"ntfy://ntfy.sh/{TOKEN}"
    out = cli(home, "alerts", "add", "NIFTY spot above 25000", "--notify", good, "--notify",
              "notaservice://x", env=env)  # fmt: skip
    refused(out, "notaservice://")
    assert not keyring_file.exists() and stored_rules(home) == 0


# ----------------------------------------------------------------------------------- channels


def test_a_tag_channel_from_the_config_is_shown_redacted(home: Home) -> None:
    home.write_config(f'[notify]\nchannels = {{ ops = "ntfy://ntfy.sh/{TOKEN}" }}\n')
    add = ok(cli(home, "alerts", "add", "NIFTY spot above 25000", "--notify", "tag:ops",
                 "--notify", "app"))  # fmt: skip
    assert "notify: tag:ops (ntfy://ntfy.sh/…), in-app" in add.stdout
    table = ok(cli(home, "alerts", "list"))
    listed = ok(cli(home, "alerts", "list", "--json"))
    [rule] = json.loads(listed.stdout)
    assert rule["channels"] == ["tag:ops (ntfy://ntfy.sh/…)", "in-app"]
    assert rule["channel_refs"] == ["tag:ops", "app"]
    assert "tag:ops" in table.stdout
    for out in (add, table, listed):
        assert TOKEN not in out.stdout + out.stderr
    with sqlite3.connect(home.db) as conn:
        dump = "\n".join(conn.iterdump())
    assert TOKEN not in dump


def test_a_url_channel_goes_to_the_keyring_and_alerts_test_reaches_it(
    home: Home, server: CaptureServer
) -> None:
    (home.root / "fake_keyring.py").write_text(FILE_KEYRING)
    env = {"PYTHON_KEYRING_BACKEND": "fake_keyring.FileKeyring",
           "OPTTERM_TEST_KEYRING": str(home.root / "keyring.json")}  # fmt: skip
    url = server.json_url(f"/hook/{TOKEN}")
    add = ok(cli(home, "alerts", "add", "NIFTY spot above 25000", "--notify", url,
                 "--notify", "app", env=env))  # fmt: skip
    listed = ok(cli(home, "alerts", "list", "--json", env=env))
    [rule] = json.loads(listed.stdout)
    assert rule["channel_refs"][0].startswith("keyring:")
    assert rule["channels"][0] == f"json://127.0.0.1:{server.port}/…"

    test = cli(home, "alerts", "test", "1", env=env)
    assert test.returncode == 0, test.stderr
    assert test.stdout.splitlines() == [
        "in-app: skipped (in-app alerts show in the TUI only)",
        f"json://127.0.0.1:{server.port}/…: OK",
    ]
    [hit] = server.hits(f"/hook/{TOKEN}")
    assert "alert rule 1" in hit.json()["title"]
    for out in (add, listed, test):
        assert TOKEN not in out.stdout + out.stderr

    # Without the keyring the reference cannot be resolved: reported, exit 1.
    gone = cli(home, "alerts", "test", "1")
    assert gone.returncode == 1
    assert "FAILED: keyring:" in gone.stdout and "not in this machine's keyring" in gone.stdout


def test_alerts_test_reports_a_failing_channel(home: Home, server: CaptureServer) -> None:
    home.write_config(
        f'[notify]\ntimeout = 5\nchannels = {{ ok = "{server.json_url("/ok")}", '
        f'bad = "{server.json_url("/bad")}" }}\n'
    )
    server.fail("/bad")
    ok(cli(home, "alerts", "add", "NIFTY spot above 25000", "--notify", "tag:ok",
           "--notify", "tag:bad"))  # fmt: skip
    out = cli(home, "alerts", "test", "1")
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("tag:ok (json://127.0.0.1") and lines[0].endswith(": OK")
    assert lines[1].startswith("tag:bad (") and ": FAILED: " in lines[1]
    assert len(server.hits("/ok")) == 1


def test_notify_test(home: Home, server: CaptureServer) -> None:
    good = cli(home, "notify", "test", server.json_url(f"/n/{TOKEN}"))
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == f"json://127.0.0.1:{server.port}/…: OK"
    assert len(server.hits(f"/n/{TOKEN}")) == 1
    server.fail(f"/down/{TOKEN}")
    bad = cli(home, "notify", "test", server.json_url(f"/down/{TOKEN}"))
    assert bad.returncode == 1 and ": FAILED: " in bad.stdout
    for out in (good, bad):
        assert TOKEN not in out.stdout + out.stderr
    refused(cli(home, "notify", "test", f"notaservice://{TOKEN}"), "Apprise cannot use")
    refused(cli(home, "notify", "test", "tag:nope"), "tag:nope is not in [notify] channels")


# ------------------------------------------------------------------------- enable, disable, rm


def test_enable_disable_and_rm(home: Home) -> None:
    ok(cli(home, "alerts", "add", "NIFTY spot above 25000"))
    assert "Disabled alert rule 1" in ok(cli(home, "alerts", "disable", "1")).stdout
    assert rules_json(home)[0]["state"] == "disabled"
    assert "Enabled alert rule 1" in ok(cli(home, "alerts", "enable", "1")).stdout
    assert rules_json(home)[0]["enabled"] is True

    # No terminal to confirm on: refused without --yes, and the rule stays.
    refused(cli(home, "alerts", "rm", "1"), "without confirmation", "--yes")
    assert stored_rules(home) == 1
    assert "Deleted alert rule 1" in ok(cli(home, "alerts", "rm", "1", "--yes")).stdout
    assert stored_rules(home) == 0

    for command in ("rm", "enable", "disable", "test"):
        extra = ["--yes"] if command == "rm" else []
        refused(cli(home, "alerts", command, "7", *extra),
                "no alert rule 7; `optterm alerts list` shows them")  # fmt: skip


# ------------------------------------------------------------------------------------ history


def seed_firings(home: Home) -> None:
    async def go() -> None:
        async with await open_store(str(home.db)) as store:
            rule = await store.alerts.list_rules()
            one, two = rule[0].id or 0, rule[1].id or 0
            t = datetime.now(UTC) - timedelta(minutes=30)

            def event(rule_id: int, symbol: str, at: datetime, title: str) -> AlertEvent:
                return AlertEvent(rule_id, symbol, AlertKind.PRICE, at, 25_010.5, 25_000.0,
                                  title, "body", "simulator", Feed.SIMULATED)  # fmt: skip

            await store.alerts.record_firings(
                [
                    (
                        event(one, "NIFTY", t - timedelta(days=3), "old firing"),
                        [Channel("app", "in-app")],
                    ),
                    (
                        event(one, "NIFTY", t, "NIFTY spot crossed above 25,000"),
                        [Channel("app", "in-app"), Channel("tag:ops", "tag:ops (ntfy://…)")],
                    ),
                    (event(two, "BANKNIFTY", t + timedelta(minutes=1), "BANKNIFTY pcr below"), []),
                ],
                [RuleStateRow(one, False, 25_010.5, t, 2)],
            )
        with sqlite3.connect(home.db) as conn:
            conn.execute("UPDATE outbox SET status='FAILED', attempts=3, last_error='HTTP 500' "
                         "WHERE channel='tag:ops'")  # fmt: skip

    asyncio.run(go())


def test_history(home: Home) -> None:
    ok(cli(home, "alerts", "add", "NIFTY spot above 25000", "--cooldown", "2h"))
    ok(cli(home, "alerts", "add", "BANKNIFTY pcr below 0.7"))
    assert "No alerts have fired" in ok(cli(home, "alerts", "history")).stdout
    seed_firings(home)

    events = json.loads(ok(cli(home, "alerts", "history", "--json")).stdout)
    assert [e["title"] for e in events] == [
        "BANKNIFTY pcr below",
        "NIFTY spot crossed above 25,000",
        "old firing",
    ]
    assert events[1]["deliveries"] == [
        {"channel": "in-app", "status": "PENDING", "attempts": 0, "last_error": None,
         "sent_at": None},
        {"channel": "tag:ops (ntfy://…)", "status": "FAILED", "attempts": 3,
         "last_error": "HTTP 500", "sent_at": None},
    ]  # fmt: skip
    assert events[1]["value"] == 25_010.5 and events[1]["feed"] == "SIMULATED"

    def titles(*args: str) -> list[str]:
        out = ok(cli(home, "alerts", "history", "--json", *args)).stdout
        return [e["title"] for e in json.loads(out)]

    assert titles("1") == ["NIFTY spot crossed above 25,000", "old firing"]
    assert titles("--symbol", "banknifty") == ["BANKNIFTY pcr below"]
    assert titles("--since", "2h") == ["BANKNIFTY pcr below", "NIFTY spot crossed above 25,000"]
    assert titles("--limit", "1") == ["BANKNIFTY pcr below"]
    table = ok(cli(home, "alerts", "history")).stdout
    assert "FAILED after 3 tries: HTTP 500" in table and "#1" in table
    assert "25,010.50" in table and "e+04" not in table  # a price, as a trader writes it
    refused(cli(home, "alerts", "history", "--since", "yesterday"), "neither a date nor")

    # The rule fired 30 minutes ago with a 2 h cooldown.
    first = rules_json(home)[0]
    assert first["state"] == "cooling down" and first["fire_count"] == 2
    # History outlives its rule.
    ok(cli(home, "alerts", "rm", "1", "--yes"))
    assert len(titles("1")) == 2


def fire_pattern_rule(db: Any, signals: list[str], at: datetime) -> list[AlertEvent]:
    """Run the stored rules through a fresh AlertService (as a restarted engine would) with one
    GAMMA_SQUEEZE signal per key in `signals`, seen at `at`; the events it recorded."""
    from optterm.engine.alerts.service import AlertService
    from optterm.engine.events import ChainUpdate
    from tests.test_alert_eval import make_signal, snap

    async def go() -> list[AlertEvent]:
        async with await open_store(str(db)) as store:
            chain = replace(snap(25_000.0), provider_ts=at, fetched_at=at)
            service = AlertService(store)
            return await service.on_tick(
                [ChainUpdate(chain, True)], [make_signal(k, 80, at) for k in signals], at
            )

    return asyncio.run(go())


def test_a_pattern_rule_that_fired_shows_when_and_how_often(home: Home) -> None:
    ok(cli(home, "alerts", "add", "NIFTY pattern GAMMA_SQUEEZE confidence 70", "--cooldown", "1h"))
    at = datetime(2026, 11, 20, 4, 30, tzinfo=UTC)  # 10:00 IST, a Friday session
    [event] = fire_pattern_rule(home.db, ["squeeze-1"], at)
    assert event.rule_id == 1 and event.kind is AlertKind.PATTERN_DETECTED

    [doc] = rules_json(home)
    assert doc["fire_count"] == 1 and doc["last_fired_at"] == at.isoformat()
    table = ok(cli(home, "alerts", "list")).stdout
    assert "never" not in table and "20-Nov" in table
    # The firing was saved with the rule's state: a restarted engine keeps the cooldown.
    assert fire_pattern_rule(home.db, ["squeeze-2"], at + timedelta(minutes=5)) == []
    assert len(fire_pattern_rule(home.db, ["squeeze-3"], at + timedelta(hours=2))) == 1
    assert rules_json(home)[0]["fire_count"] == 2
