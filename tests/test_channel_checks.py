"""Every notification channel is checked by Apprise before anything relies on it: each URL of
`[notify] channels` when the config is loaded, and the URL behind tag:NAME when a rule is
created (the alert book, which `optterm alerts add` and the TUI's form both use). A channel
Apprise cannot use is refused in one line naming the key or the tag, never the URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from optterm.config import ConfigError, Settings, load_settings
from optterm.engine.alerts.book import AlertBook, AlertBookError, draft_rule
from optterm.store import Store
from tests.conftest import Home, run_cli
from tests.test_alert_book import SPOT_ABOVE

TOKEN = "S3CRETbotTOKEN4242"
# Each has `://` (what the config checked before) but lacks what its service needs.
UNUSABLE = {
    "tgram": f"tgram://{TOKEN}",  # no bot id: not a bot token
    "discord": f"discord://{TOKEN}",  # a webhook id without its token
    "slack": f"slack://{TOKEN}/B2",  # two of slack's three tokens
    "mail": f"mailto://me:{TOKEN}@",  # no server
    "nosuch": f"nosuchservice://{TOKEN}",
}
GOOD = "ntfy://ntfy.example.com/alerts"


def config_with(tmp_path: Path, **channels: str) -> Path:
    table = ", ".join(f'{name} = "{url}"' for name, url in channels.items())
    path = tmp_path / "optterm.toml"
    path.write_text(f"[notify]\nchannels = {{ {table} }}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("scheme", sorted(UNUSABLE))
def test_config_load_refuses_a_channel_apprise_cannot_use(
    tmp_path: Path, scheme: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, ok=GOOD, desk=UNUSABLE[scheme])
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    text = str(info.value)
    assert "notify.channels.desk" in text and "tag:desk" in text
    assert f"Apprise cannot use this {UNUSABLE[scheme].split('://')[0]}:// URL" in text
    assert "\n" not in text and TOKEN not in text
    out, err = capfd.readouterr()
    assert TOKEN not in out + err  # nor did Apprise say it on the way


def test_config_with_usable_channels_loads(tmp_path: Path) -> None:
    urls = {
        "desk": f"tgram://123456:{TOKEN}/987654321",
        "phone": "ntfy://ntfy.sh/my-secret-topic",
        "team": f"discord://112233/{TOKEN}",
        "mail": f"mailtos://me:{TOKEN}@gmail.com?to=me@example.com",
        "hook": "json://hooks.example.com/optterm",
    }
    assert load_settings(config_with(tmp_path, **urls), env={}).notify.channels == urls


def test_cli_refuses_the_config_in_one_line_and_stores_nothing(home: Home) -> None:
    home.write_config(f'[notify]\nchannels = {{ desk = "{UNUSABLE["tgram"]}" }}\n')
    for args in (
        ("alerts", "add", "NIFTY spot crosses above 25000", "--notify", "tag:desk"),
        ("notify", "test", "tag:desk"),
    ):
        res = run_cli(home, "--config", str(home.config), *args)
        assert res.returncode == 2, res.stderr
        assert res.stdout == ""
        (line,) = res.stderr.splitlines()
        assert "notify.channels.desk" in line and "Apprise cannot use this tgram://" in line
        assert TOKEN not in line
    assert not home.db.exists() or _rules(home.db) == 0


def _rules(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from alert_rules").fetchone()[0])


def _unchecked(settings: Settings, name: str, url: str) -> Settings:
    """Settings holding a channel the load did not check: a config written for (and checked
    by) an older optterm, or changed under a running TUI."""
    channels = {**settings.notify.channels, name: url}
    return settings.model_copy(
        update={"notify": settings.notify.model_copy(update={"channels": channels})}
    )


async def test_rule_creation_refuses_a_tag_whose_url_apprise_cannot_use(
    tmp_path: Path, store: Store
) -> None:
    settings = _unchecked(
        load_settings(config_with(tmp_path, ok=GOOD), env={}), "desk", UNUSABLE["discord"]
    )
    book = AlertBook(store, settings)
    with pytest.raises(AlertBookError) as info:
        await book.add(SPOT_ABOVE, ["app", "tag:ok", "tag:desk"])
    text = str(info.value)
    assert text.startswith("channel tag:desk (discord://")
    assert "Apprise cannot use this discord:// URL" in text and "[notify] channels" in text
    assert TOKEN not in text
    assert await store.alerts.list_rules() == []
    with pytest.raises(AlertBookError, match="Apprise cannot use"):
        draft_rule(settings, SPOT_ABOVE, ["tag:desk"])  # the form's check before saving
    # A usable tag still makes a rule.
    rule = await book.add(SPOT_ABOVE, ["tag:ok"])
    assert rule.channels == ("tag:ok",)


# ------------------------------------------------------------- Apprise's verdicts remembered


def test_a_refused_channel_is_asked_about_every_time_and_never_remembered(tmp_path: Path) -> None:
    """Only accepted URLs are remembered (config/verdicts.py), as digests in a private file:
    a bad channel next to a remembered good one is still refused, each time."""
    import stat

    from optterm.config.verdicts import FILE_NAME
    from optterm.infra.paths import cache_dir

    load_settings(config_with(tmp_path, ok=GOOD), env={})
    for _ in range(2):
        with pytest.raises(ConfigError, match="tag:desk"):
            load_settings(config_with(tmp_path, ok=GOOD, desk=UNUSABLE["tgram"]), env={})
    cache = cache_dir() / FILE_NAME
    (digest,) = cache.read_text(encoding="ascii").split()
    assert len(digest) == 64 and "ntfy" not in digest
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_another_apprise_version_asks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optterm.config import verdicts

    assert not verdicts.accepted_before(GOOD)
    load_settings(config_with(tmp_path, ok=GOOD), env={})
    assert verdicts.accepted_before(GOOD)
    monkeypatch.setattr(verdicts, "_apprise_version", lambda: "99.0")
    assert not verdicts.accepted_before(GOOD)


@pytest.mark.process
def test_a_command_imports_apprise_only_for_a_channel_not_accepted_before(home: Home) -> None:
    from tests.test_cli_lazy import _loaded

    home.write_config(f'[notify]\nchannels = {{ phone = "{GOOD}" }}\n')
    args = ("--config", str(home.config), "alerts", "list")
    assert "apprise" in _loaded(home, *args)  # asked once
    assert "apprise" not in _loaded(home, *args)  # then remembered
