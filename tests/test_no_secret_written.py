"""No secret in any byte optterm writes: `serve` at DEBUG as a real process, one channel of each
Apprise scheme the README shows and a broker login, then every output searched for every secret.

The channels all end on loopback: ntfy, json:// and e-mail at capture servers (tests/
notify_servers.py); the services whose host is fixed (Telegram, Discord, Slack, ntfy.sh) through
an HTTPS proxy on loopback that records the tunnel asked for and refuses it — so the send is
attempted, and logged by Apprise at DEBUG, and nothing leaves the machine. Angel One logs in
against the replay server with credentials from the environment and is handed session tokens;
its market calls fail, so the simulator's scenario drives a rule that fires on every channel.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from optterm.providers.simulator.provider import SimulatorProvider
from tests.conftest import Home, optterm_cmd, run_cli
from tests.notify_servers import CaptureServer, SmtpSink
from tests.replay_server import ReplayServer, Reply
from tests.test_angel_master import MASTER_PATH, NIFTY_STRIKES, master_rows, option_rows
from tests.test_angelone import QUOTE_PATH, Angel

pytestmark = [pytest.mark.slow, pytest.mark.process]

SEED = 7
SCENARIO = "gamma_squeeze"

START = datetime(2099, 6, 15, 3, 45, tzinfo=UTC)  # a Monday session, after any real clock

TG_TOKEN = "TGbotSECRETaaaaBBBBccccDDDDeeeeFFFF1"  # the secret half of a bot token
DISCORD_TOKEN = "DiscordWebhookSECRETtokenXXXXyyyyZZZZ"
SLACK_A, SLACK_B, SLACK_C = "TSECRETA1", "BSECRETB2", "SlackSECRETtokenCccc2468"
NTFY_TOPIC = "ntfyTopicSECRET7531"  # on ntfy.sh the topic is the password
NTFY_USER_PASS = "NtfyPassSECRET8642"
NTFY_TOKEN = "tk_ntfyTokenSECRET9753"
MAIL_PASS = "MailPassSECRET1357"
MAILTOS_PASS = "MailtosPassSECRET2468"
JSON_HEADER = "JsonHeaderSECRET3579"
JSON_PASS = "JsonPassSECRET4680"
JSON_PATH = "hookPathSECRET5791"

API_KEY = "AngelApiKeySECRET0123"
MPIN = "MpinSECRET4826"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPSECRETQQ"
ISSUED = [f"{kind}-SECRET-1" for kind in ("jwt", "refresh", "feed")]  # Angel.tokens(1)

SECRETS = [
    TG_TOKEN, DISCORD_TOKEN, SLACK_A, SLACK_B, SLACK_C, NTFY_TOPIC, NTFY_USER_PASS, NTFY_TOKEN,
    MAIL_PASS, MAILTOS_PASS, JSON_HEADER, JSON_PASS, JSON_PATH, API_KEY, MPIN, TOTP_SECRET,
    *ISSUED,
]  # fmt: skip


def channels(http: CaptureServer, mail: SmtpSink, mails: SmtpSink) -> dict[str, str]:
    loop = f"127.0.0.1:{http.port}"
    return {
        "desk": f"tgram://123456789:{TG_TOKEN}/987654321",
        "team": f"discord://112233445566778899/{DISCORD_TOKEN}",
        "chat": f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}/#general",
        "phone": f"ntfy://ntfy.sh/{NTFY_TOPIC}",
        "ntfyauth": f"ntfy://ntfyuser:{NTFY_USER_PASS}@{loop}/alerts",
        "ntfytoken": f"ntfy://{loop}/desk?token={NTFY_TOKEN}",
        "mail": (
            f"mailto://mailuser:{MAIL_PASS}@127.0.0.1:{mail.port}"
            "?from=optterm@localhost&to=trader@localhost&mode=insecure"
        ),
        "mails": (
            f"mailtos://me:{MAILTOS_PASS}@127.0.0.1:{mails.port}"
            "?from=optterm@localhost&to=me@localhost"
        ),
        "hook": f"json://{loop}/{JSON_PATH}?+X-Token={JSON_HEADER}",
        "hookauth": f"json://jsonuser:{JSON_PASS}@{loop}/plain",
    }


def simulator() -> SimulatorProvider:
    return SimulatorProvider(seed=SEED, scenario=SCENARIO, step_seconds=60, start=START)


def simulated_expiries() -> list[date]:
    return asyncio.run(simulator().list_expiries("NIFTY"))


def threshold() -> int:
    """A level the squeeze carries NIFTY's spot through within a few simulated minutes."""
    sim = simulator()
    expiry = sim._listed("NIFTY", 0)[0]
    spot0, spot10 = (sim.chain_at_step("NIFTY", expiry, n).spot for n in (0, 10))
    level = round(spot0) + 20
    assert spot0 < level < spot10
    return level


class Lines:
    """A process's stream read on a thread, so the test can wait on what it says (an event,
    with a generous bound) and keep every byte of it."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait(self, ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._done or ready(), timeout) or not ready():
                tail = "".join([*self.lines[:80], "…\n", *self.lines[-20:]])
                raise AssertionError(f"never saw {what}:\n{tail}")

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


@pytest.fixture
def angel() -> Iterator[Angel]:
    replay = ReplayServer().start()
    try:
        # The broker lists NIFTY options of exactly the simulated market's expiries, set far
        # ahead of any real clock: the failover asks Angel One first, which logs in and is
        # handed session tokens; its quotes are then refused, and the simulator serves.
        rows = [
            r
            for r in master_rows()
            if not (r["name"] == "NIFTY" and r["instrumenttype"] == "OPTIDX")
        ]
        for n, expiry in enumerate(simulated_expiries()):
            code = expiry.strftime("%d%b%Y").upper()
            rows += option_rows("NIFTY", code, NIFTY_STRIKES, lot=65, first_token=80000 + 1000 * n)
        server = Angel(replay, rows)
        replay.route("POST", QUOTE_PATH, Reply(500, b"down"))
        yield server
    finally:
        replay.stop()


CREDENTIALS = {"api_key": API_KEY, "client_code": "A1234567", "mpin": MPIN,
               "totp_secret": TOTP_SECRET}  # fmt: skip


@pytest.mark.parametrize(
    ("log_format", "source"),
    [("text", "env"), ("json", "systemd")],
    ids=["text-env", "json-systemd"],
)
def test_serve_at_debug_writes_no_secret_anywhere(
    home: Home, angel: Angel, log_format: str, source: str
) -> None:
    # The broker's credentials as a server has them: environment variables, or systemd
    # credentials (files in $CREDENTIALS_DIRECTORY, written here by the test like the config).
    given = home.root / "credentials"
    if source == "env":
        creds = {f"OPTTERM_ANGELONE_{k.upper()}": v for k, v in CREDENTIALS.items()}
    else:
        given.mkdir(mode=0o700)
        for name, value in CREDENTIALS.items():
            (given / f"angelone_{name}").write_text(value, encoding="utf-8")
        creds = {"CREDENTIALS_DIRECTORY": str(given)}
    with CaptureServer() as http, SmtpSink(logins=True) as mail, SmtpSink() as mails:
        urls = channels(http, mail, mails)
        table = ", ".join(f'{name} = "{url}"' for name, url in urls.items())
        home.write_config(
            f"""
[poller]
interval = 1
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 10
[scheduler]
idle_interval = 1
[providers]
order = ["angelone", "simulator"]
[providers.angelone]
base_url = "{angel.replay.url}"
master_url = "{angel.replay.url}{MASTER_PATH}"
[providers.nse]
base_url = "{angel.replay.url}"
[providers.simulator]
seed = {SEED}
scenario = "{SCENARIO}"
step_seconds = 60
speed = 60
start = {START.isoformat()}
[notify]
channels = {{ {table} }}
retry_schedule = []
"""
        )
        env = {**http.proxy_env, **creds}
        notify = [arg for name in urls for arg in ("--notify", f"tag:{name}")]
        added = run_cli(
            home,
            "--config", str(home.config), "--log-level", "DEBUG",
            "alerts", "add", f"NIFTY spot crosses above {threshold()}", *notify,
            env=env,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr

        serve_args = ["--config", str(home.config), "--log-level", "DEBUG", "serve",
                      "--log-format", log_format]  # fmt: skip
        proc = subprocess.Popen(
            optterm_cmd(*serve_args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**home.env, **env},
            cwd=home.root,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        try:
            # Every channel was tried: ten outbox rows, each sent or failed.
            err.wait(
                lambda: (
                    sum(": sent (attempt" in ln or ": failed:" in ln for ln in err.lines)
                    >= len(urls)
                ),
                "a delivery outcome for every channel",
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            finally:
                if proc.returncode is None:
                    proc.kill()
        stdout, stderr = out.text(), err.text()
        tunnels = set(http.tunnels())
        # ntfy posts JSON to "/" (the topic in the body); ntfy://ntfy.sh/… is plain HTTP to
        # ntfy.sh, so it comes through the proxy and is answered here too.
        ntfy_hits = http.hits("/")
        json_hits = http.hits(JSON_PATH) + http.hits("plain")
        mailed = list(mail.messages)
        logins = list(mail.logins)

    assert proc.returncode == 0, stderr[-3000:]
    # What was exercised: a broker login that issued tokens, DEBUG lines from Apprise, every
    # channel attempted with its secret (the loopback servers and the proxy saw them).
    assert angel.logins >= 1
    assert "apprise" in stderr and ("DEBUG" in stderr or '"level": "debug"' in stderr)
    assert "credentials loaded from " + source in stderr
    # Masking left the lines readable: no short word of a channel was taken for a secret.
    assert "alerts: 1 active rule(s)" in stderr and "feed switched from angelone" in stderr
    assert {"api.telegram.org:443", "discord.com:443", "hooks.slack.com:443"} <= tunnels
    assert len(ntfy_hits) == 3 and len(json_hits) == 2
    assert "ntfy.sh" in {h.headers.get("Host") for h in ntfy_hits}
    assert any(h.headers.get("X-Token") == JSON_HEADER for h in json_hits)
    assert len(mailed) == 1 and logins == [("mailuser", MAIL_PASS)]

    # Every byte written: both streams, and every file under the test's folders and home
    # except the config file the test itself wrote the secrets into; the database also as a
    # dump (text a reader of the file would see).
    written: dict[str, bytes] = {"stdout": stdout.encode(), "stderr": stderr.encode()}
    for root in (home.root, Path(home.env["HOME"])):
        for path in root.rglob("*"):
            if path.is_file() and path != home.config and path.parent != given:
                written[str(path)] = path.read_bytes()
    assert str(home.db) in written
    with sqlite3.connect(home.db) as db:
        written["database dump"] = "\n".join(db.iterdump()).encode()
    leaks = [
        f"{secret} in {where}"
        for where, data in written.items()
        for secret in SECRETS
        if secret.encode() in data
    ]
    assert leaks == []
