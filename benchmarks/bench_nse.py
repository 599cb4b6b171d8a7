"""NSE parsing figure: the 1.17 MB legacy NIFTY payload (18 expiries, 779 rows, 1,395 legs) from
raw bytes to every ChainSnapshot, json.loads included — what one legacy NSE poll costs in CPU.

- nse.parse_full_chain_ms: median of 40 runs after 5 warm-up runs.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optterm.providers.nse.parse import loads, parse_chains

PAYLOAD = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "providers"
    / "nse_option-chain-indices_NIFTY_2025-07-17_full.json"
)
RUNS = 40
WARMUP = 5


def _once(raw: bytes, fetched_at: datetime) -> int:
    chains = parse_chains(loads(raw), "NIFTY", lot_size=75, fetched_at=fetched_at)
    return sum(len(c) for c in chains.values())


def run() -> dict[str, Any]:
    raw = PAYLOAD.read_bytes()
    fetched_at = datetime.now(UTC)
    for _ in range(WARMUP):
        strikes = _once(raw, fetched_at)
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        _once(raw, fetched_at)
        samples.append(time.perf_counter() - t0)
    return {
        "nse.parse_full_chain_ms": {
            "value": round(statistics.median(samples) * 1000, 3),
            "unit": "ms",
            "budget": 50,
            "note": (
                f"{len(raw) / 1e6:.2f} MB legacy NIFTY payload → {strikes} strike rows in all "
                f"expiries, json.loads + parse, median of {RUNS}"
            ),
        }
    }
