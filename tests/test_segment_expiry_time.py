"""Time to expiry follows the instrument's own session: an MCX option trades into the evening of
its expiry day and a currency option stops at 12:30, where an NSE option settles at the close."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from optterm.config import load_settings
from optterm.engine.analytics.chain import time_to_expiry
from optterm.market import IST
from tests.test_alert_eval import snap

YEAR_S = 365.0 * 86_400.0
EXPIRY = date(2026, 12, 16)  # a Wednesday, no holiday on any segment


def at(symbol: str, hh: int, mm: int):
    ts = datetime(2026, 12, 16, hh, mm, tzinfo=IST).astimezone(UTC)
    return replace(snap(100.0), symbol=symbol, expiry=EXPIRY, provider_ts=ts)


@pytest.mark.parametrize(
    ("symbol", "hh", "mm", "minutes_left"),
    [
        ("NIFTY", 15, 0, 40),  # NSE F&O settles at the configured close, 15:40
        ("CRUDEOIL", 21, 0, 175),  # MCX in December (no US DST): trades until 23:55
        ("USDINR", 12, 0, 30),  # currency options stop at 12:30 on expiry day
        ("USDINR", 13, 0, 0),  # … and are expired after it, though CDS trades until 17:00
    ],
)
def test_time_to_expiry_ends_when_the_segment_stops_trading_the_option(
    tmp_path, symbol: str, hh: int, mm: int, minutes_left: int
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    settings = load_settings(cfg, env={})
    t = time_to_expiry(at(symbol, hh, mm), settings.market)
    assert t * YEAR_S == pytest.approx(minutes_left * 60.0, abs=1e-6)
