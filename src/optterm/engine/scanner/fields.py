"""The scanner's fields: one column per underlying each, raw (given by a source) or derived
(computed here from raw columns, vectorised), with its unit, tier and meaning.

`FIELDS` is the one list: the grammar accepts exactly these names, the frame lays its rows out in
this order, docs/scanner.md lists them (tests/test_scanner_docs.py keeps the two equal), and a
source that cannot give a raw field leaves its column n/a with the reason.

Tiers say how fresh a column can be (docs/scanner.md, "Freshness"): `futures` fields come from
the near-futures quote every tick, `atm` fields from the ATM options as often as the request
budget allows, `chain` fields from whole chains round-robin, `static` ones from the universe.

Units: a name ending in `%` is in percent (2.5 means 2.5 %); IVs are in volatility points
(18.5 means 18.5 %); OI and volume in contracts; prices in rupees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "BUILDUP_DEADBAND_OI_PCT",
    "BUILDUP_DEADBAND_PRICE_PCT",
    "BUILDUP_WORDS",
    "FIELDS",
    "FIELD_INDEX",
    "RAW_FIELDS",
    "SEGMENT_WORDS",
    "TEXT_FIELDS",
    "TIERS",
    "Field",
    "derive",
]

TIERS: Final = ("static", "futures", "atm", "chain")

# A buildup class needs a real move in both price and OI: inside the dead band it is "none",
# so a name ±0.1 % with OI ±0.3 % is not called long buildup (docs/scanner.md).
BUILDUP_DEADBAND_PRICE_PCT: Final = 0.25
BUILDUP_DEADBAND_OI_PCT: Final = 1.0

# Text fields are stored as codes; the words a rule may compare them with, per code.
BUILDUP_WORDS: Final[dict[str, float]] = {
    "none": 0.0,
    "lb": 1.0,
    "long_buildup": 1.0,
    "sb": 2.0,
    "short_buildup": 2.0,
    "sc": 3.0,
    "short_covering": 3.0,
    "lu": 4.0,
    "long_unwinding": 4.0,
}
SEGMENT_WORDS: Final[dict[str, float]] = {"index": 0.0, "stock": 1.0, "commodity": 2.0}
TEXT_FIELDS: Final[dict[str, Mapping[str, float]]] = {
    "buildup": BUILDUP_WORDS,
    "segment": SEGMENT_WORDS,
}

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    tier: str
    unit: str
    meaning: str
    derived: Callable[[Columns], np.ndarray] | None = None

    @property
    def text(self) -> bool:
        return self.name in TEXT_FIELDS


def _pct(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a − b) / b in percent; n/a (NaN) where b is 0 or n/a."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / b * 100.0
    out[~np.isfinite(out)] = np.nan
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def _buildup(c: Columns) -> np.ndarray:
    p = _pct(c["price"], c["prev_close"])
    o = _pct(c["fut_oi"], c["prev_oi"])
    up, down = p >= BUILDUP_DEADBAND_PRICE_PCT, p <= -BUILDUP_DEADBAND_PRICE_PCT
    more, less = o >= BUILDUP_DEADBAND_OI_PCT, o <= -BUILDUP_DEADBAND_OI_PCT
    out = np.zeros(p.shape)
    out[up & more] = 1.0
    out[down & more] = 2.0
    out[up & less] = 3.0
    out[down & less] = 4.0
    out[np.isnan(p) | np.isnan(o)] = np.nan
    return out


def _rvol(c: Columns, volume: str, average: str) -> np.ndarray:
    # Volume so far against the average day's volume *at this point of the session*: at 10:00 a
    # normal day has traded ~12 % of its volume, and a plain ratio would call every name quiet.
    # The first 5 minutes are floored so the opening print does not read as 50×.
    frac = np.maximum(c["session_frac"], 1.0 / 75.0)
    return _ratio(c[volume], c[average] * frac)


def _raw(name: str, tier: str, unit: str, meaning: str) -> Field:
    return Field(name, tier, unit, meaning)


def _der(
    name: str, tier: str, unit: str, meaning: str, fn: Callable[[Columns], np.ndarray]
) -> Field:
    return Field(name, tier, unit, meaning, fn)


FIELDS: Final[tuple[Field, ...]] = (
    # -- static (the universe)
    _der("segment", "static", "index | stock | commodity",
         "index or stock underlying (NSE F&O), or an MCX commodity",
         lambda c: np.where(c["is_commodity"] > 0, 2.0, np.where(c["is_index"] > 0, 0.0, 1.0))),
    _raw("lot_size", "static", "units",
         "lot size of the near expiry (shares; MCX: the contract's, 100 bbl of CRUDEOIL)"),
    _raw("strike_step", "static", "₹", "most common gap between listed strikes"),
    _raw("dte", "static", "days", "calendar days to the near expiry"),
    # -- futures (near month, every tick)
    _raw("price", "futures", "₹", "near-futures last price"),
    _raw("spot", "futures", "₹", "underlying spot price"),
    _raw("prev_close", "futures", "₹", "near-futures previous close"),
    _raw("open", "futures", "₹", "near-futures open"),
    _raw("high", "futures", "₹", "near-futures day high"),
    _raw("low", "futures", "₹", "near-futures day low"),
    _raw("vwap", "futures", "₹", "near-futures volume-weighted average price"),
    _raw("fut_oi", "futures", "contracts", "near-futures open interest"),
    _raw("prev_oi", "futures", "contracts", "near-futures OI at the previous close"),
    _raw("volume", "futures", "contracts", "near-futures volume today"),
    _raw("avg_volume", "futures", "contracts", "20-day average daily futures volume"),
    _raw("session_frac", "futures", "0–1", "share of the session elapsed"),
    _der("price_chg", "futures", "₹", "price − prev_close",
         lambda c: c["price"] - c["prev_close"]),
    _der("price_chg%", "futures", "%", "price change since the previous close",
         lambda c: _pct(c["price"], c["prev_close"])),
    _der("gap%", "futures", "%", "open against the previous close",
         lambda c: _pct(c["open"], c["prev_close"])),
    _der("range%", "futures", "%", "(high − low) / previous close",
         lambda c: _ratio(c["high"] - c["low"], c["prev_close"]) * 100.0),
    _der("high_dist%", "futures", "%", "how far below the day high price is",
         lambda c: _ratio(c["high"] - c["price"], c["price"]) * 100.0),
    _der("low_dist%", "futures", "%", "how far above the day low price is",
         lambda c: _ratio(c["price"] - c["low"], c["price"]) * 100.0),
    _der("vwap_dist%", "futures", "%", "price against VWAP",
         lambda c: _pct(c["price"], c["vwap"])),
    _der("basis", "futures", "₹", "futures − spot", lambda c: c["price"] - c["spot"]),
    _der("basis%", "futures", "%", "futures premium over spot",
         lambda c: _pct(c["price"], c["spot"])),
    _der("fut_oi_chg", "futures", "contracts", "futures OI change since the previous close",
         lambda c: c["fut_oi"] - c["prev_oi"]),
    _der("fut_oi_chg%", "futures", "%", "futures OI change since the previous close",
         lambda c: _pct(c["fut_oi"], c["prev_oi"])),
    _der("buildup", "futures", "lb | sb | sc | lu | none",
         "buildup class of price and OI change, with a dead band", _buildup),
    _der("volume_ratio", "futures", "×", "volume today / average daily volume",
         lambda c: _ratio(c["volume"], c["avg_volume"])),
    _der("rvol", "futures", "×", "volume against the average at this time of the session",
         lambda c: _rvol(c, "volume", "avg_volume")),
    _der("vol_oi", "futures", "×", "futures volume / futures OI",
         lambda c: _ratio(c["volume"], c["fut_oi"])),
    _der("turnover_cr", "futures", "₹ crore", "futures turnover today",
         lambda c: c["price"] * c["volume"] * c["lot_size"] / 1e7),
    # -- ATM options
    _raw("atm_strike", "atm", "₹", "the strike nearest the futures price"),
    _raw("atm_iv", "atm", "vol points", "ATM implied volatility (mean of CE and PE)"),
    _raw("prev_iv", "atm", "vol points", "ATM IV at the previous close"),
    _raw("iv_low", "atm", "vol points", "lowest ATM IV of the past year"),
    _raw("iv_high", "atm", "vol points", "highest ATM IV of the past year"),
    _raw("ivp", "atm", "0–100", "IV percentile: share of the past year's days with a lower IV"),
    _raw("hv20", "atm", "vol points", "20-day historical volatility"),
    _raw("straddle", "atm", "₹", "ATM straddle price (CE + PE)"),
    _raw("prev_straddle", "atm", "₹", "ATM straddle at the previous close"),
    _raw("straddle_vwap", "atm", "₹", "ATM straddle volume-weighted average today"),
    _raw("skew", "atm", "vol points", "25-delta put IV − 25-delta call IV"),
    _der("atm_iv_chg", "atm", "vol points", "ATM IV change since the previous close",
         lambda c: c["atm_iv"] - c["prev_iv"]),
    _der("atm_iv_chg%", "atm", "%", "ATM IV change since the previous close, relative",
         lambda c: _pct(c["atm_iv"], c["prev_iv"])),
    _der("ivr", "atm", "0–100", "IV rank: where ATM IV sits in the past year's range",
         lambda c: np.clip(_ratio(c["atm_iv"] - c["iv_low"], c["iv_high"] - c["iv_low"]),
                           0.0, 1.0) * 100.0),
    _der("iv_hv", "atm", "×", "ATM IV / 20-day historical volatility",
         lambda c: _ratio(c["atm_iv"], c["hv20"])),
    _der("straddle_chg%", "atm", "%", "ATM straddle change since the previous close",
         lambda c: _pct(c["straddle"], c["prev_straddle"])),
    _der("straddle_vwap_dist%", "atm", "%", "ATM straddle against its VWAP",
         lambda c: _pct(c["straddle"], c["straddle_vwap"])),
    # -- whole chain (near expiry)
    _raw("ce_oi", "chain", "contracts", "total call OI"),
    _raw("pe_oi", "chain", "contracts", "total put OI"),
    _raw("prev_ce_oi", "chain", "contracts", "total call OI at the previous close"),
    _raw("prev_pe_oi", "chain", "contracts", "total put OI at the previous close"),
    _raw("ce_volume", "chain", "contracts", "total call volume today"),
    _raw("pe_volume", "chain", "contracts", "total put volume today"),
    _raw("avg_opt_volume", "chain", "contracts", "20-day average daily options volume"),
    _raw("prev_pcr", "chain", "×", "OI put-call ratio at the previous close"),
    _raw("max_pain", "chain", "₹", "the strike where option writers lose least"),
    _raw("call_wall", "chain", "₹", "the strike with the most call OI"),
    _raw("put_wall", "chain", "₹", "the strike with the most put OI"),
    _raw("gex", "chain", "₹ crore", "dealer gamma exposure per 1 % move (sign: stabilising +)"),
    _der("pcr", "chain", "×", "OI put-call ratio", lambda c: _ratio(c["pe_oi"], c["ce_oi"])),
    _der("pcr_chg", "chain", "×", "OI PCR change since the previous close",
         lambda c: _ratio(c["pe_oi"], c["ce_oi"]) - c["prev_pcr"]),
    _der("pcr_vol", "chain", "×", "volume put-call ratio",
         lambda c: _ratio(c["pe_volume"], c["ce_volume"])),
    _der("ce_oi_chg%", "chain", "%", "call OI change since the previous close",
         lambda c: _pct(c["ce_oi"], c["prev_ce_oi"])),
    _der("pe_oi_chg%", "chain", "%", "put OI change since the previous close",
         lambda c: _pct(c["pe_oi"], c["prev_pe_oi"])),
    _der("opt_volume", "chain", "contracts", "total options volume today",
         lambda c: c["ce_volume"] + c["pe_volume"]),
    _der("opt_rvol", "chain", "×", "options volume against the average at this time",
         lambda c: _ratio(c["ce_volume"] + c["pe_volume"],
                          c["avg_opt_volume"] * np.maximum(c["session_frac"], 1.0 / 75.0))),
    _der("max_pain_dist%", "chain", "%", "spot's distance above max pain",
         lambda c: _pct(c["spot"], c["max_pain"])),
    _der("call_wall_dist%", "chain", "%", "how far the call wall is above spot",
         lambda c: _pct(c["call_wall"], c["spot"])),
    _der("put_wall_dist%", "chain", "%", "how far the put wall is below spot",
         lambda c: -_pct(c["put_wall"], c["spot"])),
)  # fmt: skip

FIELD_INDEX: Final[dict[str, int]] = {f.name: i for i, f in enumerate(FIELDS)}
# Raw columns a source gives; `is_index` and `is_commodity` are the universe's, read by
# `segment` (a source without MCX names may leave `is_commodity` out: none is a commodity).
RAW_FIELDS: Final[tuple[str, ...]] = (
    "is_index",
    "is_commodity",
    *(f.name for f in FIELDS if f.derived is None),
)


def derive(raw: Columns, n: int) -> tuple[np.ndarray, dict[str, str]]:
    """All fields as one (len(FIELDS), n) array from the raw columns a source gave, and the
    reason each n/a column is n/a. A raw column the source lacks is n/a ("not given by the
    source"); a derived one is n/a when a column it reads is."""
    missing = {name for name in RAW_FIELDS if name not in raw}
    nan = np.full(n, np.nan)
    cols: dict[str, np.ndarray] = {
        name: np.asarray(raw[name], dtype=np.float64) if name not in missing else nan
        for name in RAW_FIELDS
    }
    out = np.empty((len(FIELDS), n))
    reasons: dict[str, str] = {}
    for i, f in enumerate(FIELDS):
        if f.derived is None:
            out[i] = cols[f.name]
            if f.name in missing:
                reasons[f.name] = "not given by the source"
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i] = f.derived(cols)
    if missing:
        # A derived field reads its inputs by name; it is n/a when all of its values are.
        for i, f in enumerate(FIELDS):
            if f.derived is not None and np.isnan(out[i]).all():
                reasons[f.name] = "needs a field the source does not give"
    return out, reasons
