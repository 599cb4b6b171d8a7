"""Named scans: a word in a rule that stands for a condition (and, alone, its ranking).

Each preset is written in the scan language itself, so it reads, prints and is checked like any
rule; its thresholds sit outside what a quiet market does (docs/scanner.md says why each one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    condition: str
    sort: str  # the ranking when the preset is the whole scan, e.g. "fut_oi_chg% desc"
    meaning: str


PRESETS: Final[dict[str, Preset]] = {
    p.name: p
    for p in (
        Preset("long_buildup", "price_chg% >= 1 and fut_oi_chg% >= 5", "fut_oi_chg% desc",
               "price up and futures OI up: fresh longs"),
        Preset("short_buildup", "price_chg% <= -1 and fut_oi_chg% >= 5", "fut_oi_chg% desc",
               "price down and futures OI up: fresh shorts"),
        Preset("short_covering", "price_chg% >= 1 and fut_oi_chg% <= -5", "fut_oi_chg% asc",
               "price up and futures OI down: shorts leaving"),
        Preset("long_unwinding", "price_chg% <= -1 and fut_oi_chg% <= -5", "fut_oi_chg% asc",
               "price down and futures OI down: longs leaving"),
        Preset("oi_spurt", "fut_oi_chg% >= 15", "fut_oi_chg% desc",
               "futures OI up 15 % or more since the previous close"),
        Preset("iv_spike", "atm_iv_chg% >= 15 and ivp >= 80", "atm_iv_chg% desc",
               "ATM IV up 15 % or more, into the top fifth of its year"),
        Preset("pcr_extreme", "pcr >= 1.8 or pcr <= 0.5", "pcr desc",
               "OI put-call ratio at an extreme, either way"),
        Preset("unusual_activity", "rvol >= 3", "rvol desc",
               "futures volume 3× or more its usual pace for this time of day"),
    )
}  # fmt: skip
