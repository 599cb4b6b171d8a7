"""Ready-made strategies by view, written as legs on symbolic strikes.

A leg's strike is `A` (at the money), `C1` / `P1` (the first call / put strike away from the
money, placed by offset, delta, premium or straddle width: placement.py), optionally plus or
minus whole multiples of the wing width `W`: `A-W`, `C1+W`, `A+2W`. Expiry 0 is the chosen
expiry, 1 the next listed one. Each template also says whether its profit or loss is unlimited
(the right tail: spot cannot fall below 0), which the tests check against the computed profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TEMPLATES", "VIEWS", "LegSpec", "Template", "by_name", "strike_value"]

VIEWS = ("bullish", "bearish", "neutral", "volatile", "hedging")

_EXPR = re.compile(r"^(A|C1|P1)(?:([+-])(\d*)W)?$")


@dataclass(frozen=True, slots=True)
class LegSpec:
    kind: str  # CE, PE or FUT
    lots: int  # signed: + buy, - sell (per one strategy)
    at: str = "A"  # symbolic strike (ignored for FUT)
    expiry: int = 0  # 0: the chosen expiry, 1: the next one


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    title: str
    view: str
    legs: tuple[LegSpec, ...]
    unlimited_profit: bool
    unlimited_loss: bool

    def strike_exprs(self) -> list[str]:
        """The distinct symbolic strikes, lowest first (the order a strategy line lists them)."""
        exprs = {g.at for g in self.legs if g.kind != "FUT"}
        return sorted(exprs, key=lambda e: strike_value(e, 0.0, 3.0, -3.0, 2.0))


def strike_value(expr: str, a: float, c1: float, p1: float, w: float) -> float:
    """The number `expr` stands for, given A, C1, P1 and W (indices or prices alike)."""
    m = _EXPR.match(expr)
    if m is None:
        raise ValueError(f"bad strike expression {expr!r}")
    base = {"A": a, "C1": c1, "P1": p1}[m.group(1)]
    if m.group(2) is None:
        return base
    k = int(m.group(3) or 1)
    return base + (k if m.group(2) == "+" else -k) * w


def _t(
    name: str, view: str, legs: list[tuple], profit: bool = False, loss: bool = False
) -> Template:
    title = name.replace("_", " ").capitalize()
    return Template(name, title, view, tuple(LegSpec(*g) for g in legs), profit, loss)


TEMPLATES: tuple[Template, ...] = (
    # bullish
    _t("long_call", "bullish", [("CE", 1, "A")], profit=True),
    _t("short_put", "bullish", [("PE", -1, "A")]),
    _t("bull_call_spread", "bullish", [("CE", 1, "A"), ("CE", -1, "C1")]),
    _t("bull_put_spread", "bullish", [("PE", 1, "P1"), ("PE", -1, "A")]),
    _t("call_ratio_backspread", "bullish", [("CE", -1, "A"), ("CE", 2, "C1")], profit=True),
    _t("long_synthetic_future", "bullish", [("CE", 1, "A"), ("PE", -1, "A")], profit=True),
    _t("long_futures", "bullish", [("FUT", 1)], profit=True),
    # bearish
    _t("long_put", "bearish", [("PE", 1, "A")]),
    _t("short_call", "bearish", [("CE", -1, "A")], loss=True),
    _t("bear_put_spread", "bearish", [("PE", -1, "P1"), ("PE", 1, "A")]),
    _t("bear_call_spread", "bearish", [("CE", -1, "A"), ("CE", 1, "C1")]),
    _t("put_ratio_backspread", "bearish", [("PE", 2, "P1"), ("PE", -1, "A")]),
    _t("short_synthetic_future", "bearish", [("CE", -1, "A"), ("PE", 1, "A")], loss=True),
    _t("short_futures", "bearish", [("FUT", -1)], loss=True),
    # neutral
    _t("short_straddle", "neutral", [("CE", -1, "A"), ("PE", -1, "A")], loss=True),
    _t("short_strangle", "neutral", [("PE", -1, "P1"), ("CE", -1, "C1")], loss=True),
    _t(
        "iron_condor",
        "neutral",
        [("PE", 1, "P1-W"), ("PE", -1, "P1"), ("CE", -1, "C1"), ("CE", 1, "C1+W")],
    ),
    _t(
        "iron_butterfly",
        "neutral",
        [("PE", 1, "A-W"), ("PE", -1, "A"), ("CE", -1, "A"), ("CE", 1, "A+W")],
    ),
    _t("long_call_butterfly", "neutral", [("CE", 1, "A-W"), ("CE", -2, "A"), ("CE", 1, "A+W")]),
    _t("long_put_butterfly", "neutral", [("PE", 1, "A-W"), ("PE", -2, "A"), ("PE", 1, "A+W")]),
    _t(
        "broken_wing_call_butterfly",
        "neutral",
        [("CE", 1, "A-W"), ("CE", -2, "A"), ("CE", 1, "A+2W")],
    ),
    _t(
        "long_call_condor",
        "neutral",
        [("CE", 1, "A-2W"), ("CE", -1, "A-W"), ("CE", -1, "A+W"), ("CE", 1, "A+2W")],
    ),
    _t("call_ratio_spread", "neutral", [("CE", 1, "A"), ("CE", -2, "C1")], loss=True),
    _t("put_ratio_spread", "neutral", [("PE", -2, "P1"), ("PE", 1, "A")]),
    _t("jade_lizard", "neutral", [("PE", -1, "P1"), ("CE", -1, "C1"), ("CE", 1, "C1+W")]),
    _t("call_calendar", "neutral", [("CE", -1, "A", 0), ("CE", 1, "A", 1)]),
    _t("put_calendar", "neutral", [("PE", -1, "A", 0), ("PE", 1, "A", 1)]),
    _t("call_diagonal", "neutral", [("CE", -1, "C1", 0), ("CE", 1, "A", 1)]),
    _t("put_diagonal", "neutral", [("PE", -1, "P1", 0), ("PE", 1, "A", 1)]),
    # volatile
    _t("long_straddle", "volatile", [("CE", 1, "A"), ("PE", 1, "A")], profit=True),
    _t("long_strangle", "volatile", [("PE", 1, "P1"), ("CE", 1, "C1")], profit=True),
    _t(
        "short_iron_condor",
        "volatile",
        [("PE", -1, "P1-W"), ("PE", 1, "P1"), ("CE", 1, "C1"), ("CE", -1, "C1+W")],
    ),
    _t(
        "short_iron_butterfly",
        "volatile",
        [("PE", -1, "A-W"), ("PE", 1, "A"), ("CE", 1, "A"), ("CE", -1, "A+W")],
    ),
    _t("short_call_butterfly", "volatile", [("CE", -1, "A-W"), ("CE", 2, "A"), ("CE", -1, "A+W")]),
    # hedging
    _t("covered_call", "hedging", [("FUT", 1), ("CE", -1, "C1")]),
    _t("protective_put", "hedging", [("FUT", 1), ("PE", 1, "P1")], profit=True),
    _t("collar", "hedging", [("FUT", 1), ("PE", 1, "P1"), ("CE", -1, "C1")]),
)

_BY_NAME = {t.name: t for t in TEMPLATES}
# What traders also call them.
ALIASES = {
    "straddle": "long_straddle",
    "strangle": "long_strangle",
    "ic": "iron_condor",
    "iron_fly": "iron_butterfly",
    "short_iron_fly": "short_iron_butterfly",
    "butterfly": "long_call_butterfly",
    "call_butterfly": "long_call_butterfly",
    "put_butterfly": "long_put_butterfly",
    "broken_wing_butterfly": "broken_wing_call_butterfly",
    "condor": "long_call_condor",
    "calendar": "call_calendar",
    "diagonal": "call_diagonal",
    "synthetic_long": "long_synthetic_future",
    "synthetic_short": "short_synthetic_future",
    "synthetic_future": "long_synthetic_future",
    "long_future": "long_futures",
    "short_future": "short_futures",
    "ratio_spread": "call_ratio_spread",
    "back_spread": "call_ratio_backspread",
    "call_backspread": "call_ratio_backspread",
    "put_backspread": "put_ratio_backspread",
}


def by_name(name: str) -> Template | None:
    """The template called `name` (spaces, dashes or underscores; a few common aliases)."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return _BY_NAME.get(ALIASES.get(key, key))
