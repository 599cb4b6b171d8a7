"""[stream]: off by default, turned on from the file or the environment, and a wrong value named
in one line with what would fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from optterm.config import ConfigError, load_settings


def test_off_by_default_and_on_from_the_environment() -> None:
    assert not load_settings(None, env={}).stream.enabled
    on = load_settings(None, env={"OPTTERM_STREAM_ENABLED": "true"}).stream
    assert on.enabled and on.max_updates_per_s == 4.0 and on.mode == "snap_quote"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('url = "https://example.com/"', "must start with wss://"),
        ('mode = "snapquote"', "snap_quote"),
        ("max_updates_per_s = 0", "stream.max_updates_per_s"),
        ('enabled = "yes"', "true or false"),
    ],
)
def test_a_wrong_value_says_what_fits(tmp_path: Path, text: str, said: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[stream]\n{text}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    message = str(info.value)
    assert said in message and "stream." in message
    assert "Traceback" not in message
