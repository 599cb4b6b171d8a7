"""Pure parsing of NSE's OI-spurts page for the underlyings: one call, every F&O underlying's
open interest now and at the previous close. No I/O.

``GET /api/live-analysis-oi-spurts-underlyings`` answers ``{data: [rows], timestamp}``, a row
per underlying: ``symbol``, ``latestOI``, ``prevOI``, ``changeInOI``, ``avgInOI`` (the OI change
in percent: a public check recomputed it for all 216 underlyings in Sep-2026), ``volume``,
``underlyingValue`` and turnover columns. No answer of it is recorded in the project's fixtures;
the shape is the documented one (tests/test_nse_spurts.py says so). A row without a usable
latest OI is skipped; a row without a previous OI takes it from the change percent. A payload
with no row list is BadPayload: a believable empty answer would silently make every OI change
n/a.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from optterm.providers.nse.parse import as_bad_payload, bad_payload_error, number, parse_timestamp

__all__ = ["OI_SPURTS_PATH", "OiSpurt", "OiSpurts", "parse_oi_spurts"]

OI_SPURTS_PATH: Final = "/api/live-analysis-oi-spurts-underlyings"


@dataclass(frozen=True, slots=True)
class OiSpurt:
    symbol: str
    latest_oi: float
    prev_oi: float
    change_pct: float  # avgInOI


@dataclass(frozen=True, slots=True)
class OiSpurts:
    rows: dict[str, OiSpurt]  # by symbol, upper case
    ts: datetime | None  # the page's own time


def _prev(row: Mapping[str, Any], latest: float) -> float:
    prev = number(row.get("prevOI"))
    if math.isfinite(prev) and prev > 0:
        return prev
    pct = number(row.get("avgInOI"))
    if math.isfinite(pct) and pct > -100.0:
        return latest / (1.0 + pct / 100.0)
    return math.nan


@as_bad_payload
def parse_oi_spurts(payload: object) -> OiSpurts:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise bad_payload_error("OI spurts answer has no data list")
    rows: dict[str, OiSpurt] = {}
    for row in payload["data"]:
        if not isinstance(row, Mapping) or not isinstance(row.get("symbol"), str):
            continue
        latest = number(row.get("latestOI"))
        if not (math.isfinite(latest) and latest > 0):
            continue
        prev = _prev(row, latest)
        pct = number(row.get("avgInOI"))
        if not math.isfinite(pct) and math.isfinite(prev) and prev > 0:
            pct = (latest / prev - 1.0) * 100.0
        symbol = row["symbol"].strip().upper()
        rows[symbol] = OiSpurt(symbol, latest, prev, pct)
    if payload["data"] and not rows:
        raise bad_payload_error("OI spurts answer has rows but none with a symbol and an OI")
    stamp = payload.get("timestamp")
    ts = parse_timestamp(stamp) if isinstance(stamp, str) and stamp.strip() else None
    return OiSpurts(rows, ts)
