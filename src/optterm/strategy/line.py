"""A strategy typed on one line, in the style of the alert one-liner:

    NIFTY short strangle 24500/25500 x2          a template, its strikes lowest first, 2 lots
    NIFTY iron condor x1 2026-11-24              strikes placed by the template's rule
    NIFTY +1 25000CE -2 25200CE +1 25400CE       legs: signed lots, strike and side
    NIFTY -1 25000CE@1 +1 25000CE@2 +1 FUT@2     @N: the N-th listed expiry (or @date)

The symbol comes first; `xN` multiplies every leg; a date (2026-11-24 or 24-Nov-2026) picks the
expiry of a template or of legs without `@`. Parsing needs no market: `resolve` places it on one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from optterm.infra.clip import quoted
from optterm.market import parse_day
from optterm.strategy.errors import StrategyError
from optterm.strategy.marketdata import StrategyMarket
from optterm.strategy.placement import Placement, build
from optterm.strategy.position import Leg, Position
from optterm.strategy.templates import TEMPLATES, Template, by_name

__all__ = ["LegToken", "StrategyLine", "parse_line"]

_MULT = re.compile(r"^[xX](-?\d+)$")
_LOTS = re.compile(r"^[+-]\d+$")
_LEG = re.compile(r"^(?:(\d+(?:\.\d+)?)(CE|PE)|(FUT))(?:@(.+))?$", re.I)
_STRIKES = re.compile(r"^\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)*$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9&\-]{0,19}$")


@dataclass(frozen=True, slots=True)
class LegToken:
    kind: str
    lots: int
    strike: float | None
    expiry: int | date | None  # N-th listed (1 = nearest), a date, or the line's expiry


@dataclass(frozen=True, slots=True)
class StrategyLine:
    symbol: str
    template: Template | None = None
    strikes: tuple[float, ...] = ()
    multiplier: int = 1
    expiry: date | None = None
    legs: tuple[LegToken, ...] = field(default_factory=tuple)

    @property
    def expiries_wanted(self) -> int:
        """How many listed expiries (nearest first) the line may need."""
        n = 2 if self.template is not None and any(g.expiry for g in self.template.legs) else 1
        for g in self.legs:
            if isinstance(g.expiry, int):
                n = max(n, g.expiry)
        return n

    def resolve(self, market: StrategyMarket, placement: Placement | None = None) -> Position:
        """The position on `market` (leg prices: the chain's)."""
        listed = sorted(market.expiries)
        if self.expiry is not None:
            market.expiry(self.expiry)
        if self.template is not None:
            given = None
            if self.strikes:
                exprs = self.template.strike_exprs()
                given = dict(zip(exprs, self.strikes, strict=True))
            return build(
                self.template, market, self.expiry, placement, self.multiplier, strikes=given
            )
        legs = []
        for t in self.legs:
            day = self._day(t.expiry, listed, market)
            e = market.expiry(day)
            lots = t.lots * self.multiplier
            if t.kind == "FUT":
                legs.append(Leg("FUT", day, lots, e.forward))
                continue
            assert t.strike is not None
            legs.append(Leg(t.kind, day, lots, e.price(t.kind, t.strike), t.strike))
        return Position(market.symbol, market.lot_size, tuple(legs))

    def _day(self, which: int | date | None, listed: list[date], market: StrategyMarket) -> date:
        if which is None:
            return self.expiry or listed[0]
        if isinstance(which, date):
            return which
        if not 1 <= which <= len(listed):
            raise StrategyError(
                f"@{which}: {market.symbol} has {len(listed)} listed expiries in the chain; "
                f"use @1 to @{len(listed)} or a date."
            )
        return listed[which - 1]


# The most lots a leg may have (as `[strategy] lots` allows): beyond it a typo, not a position.
MAX_LOTS = 10_000


def parse_line(text: str) -> StrategyLine:
    """The strategy a line describes; a StrategyError saying what is wrong otherwise."""
    tokens = text.split()
    if not tokens:
        raise StrategyError(
            'the strategy is empty; write e.g. "NIFTY short strangle 24500/25500 x2".'
        )
    symbol = tokens[0].upper()
    if not _SYMBOL.match(symbol):
        raise StrategyError(
            f"{quoted(tokens[0])} is not an underlying; start with one, "
            'e.g. "NIFTY short strangle 24500/25500".'
        )
    words: list[str] = []
    strikes: tuple[float, ...] = ()
    mult = 1
    expiry: date | None = None
    legs: list[LegToken] = []
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        if m := _MULT.match(tok):
            mult = int(m.group(1))
            if mult <= 0:
                raise StrategyError(
                    f"{tok}: the lot multiplier must be a whole number >= 1 (x1, x2, …)."
                )
        elif _LOTS.match(tok):
            if i + 1 >= len(rest) or not (m := _LEG.match(rest[i + 1])):
                raise StrategyError(
                    f"{tok} must be followed by a leg like 25000CE, 24500PE or FUT "
                    "(optionally @2 or @2026-11-24 for its expiry)."
                )
            lots = int(tok)
            if lots == 0:
                raise StrategyError(f"{tok} {rest[i + 1]}: a leg needs non-zero lots (+1, -2, …).")
            legs.append(_leg(lots, m))
            i += 1
        elif _STRIKES.match(tok):
            strikes = tuple(float(s) for s in tok.split("/"))
        elif (day := parse_day(tok)) is not None:
            expiry = day
        else:
            words.append(tok)
        i += 1
    largest = max((abs(leg.lots) for leg in legs), default=1) * mult
    if largest > MAX_LOTS:
        raise StrategyError(
            f"{largest:,} lots a leg is more than optterm models "
            f"(at most {MAX_LOTS:,} lots a leg, counting the x multiplier)."
        )
    if legs and (words or strikes):
        raise StrategyError(
            "write either a strategy name with its strikes or signed legs, not both: "
            f"{quoted(' '.join(words + [str(s) for s in strikes]))}."
        )
    if legs:
        return StrategyLine(symbol, multiplier=mult, expiry=expiry, legs=tuple(legs))
    if not words:
        raise StrategyError(
            f"{symbol}: name a strategy (e.g. short strangle) or give legs like +1 25000CE."
        )
    template = by_name(" ".join(words))
    if template is None:
        raise StrategyError(
            f"unknown strategy {quoted(' '.join(words))}; known: "
            + ", ".join(t.name.replace("_", " ") for t in TEMPLATES[:8])
            + " … (optterm strategy --templates lists all)."
        )
    wanted = len(template.strike_exprs())
    if strikes and len(strikes) != wanted:
        raise StrategyError(
            f"{template.name.replace('_', ' ')} takes {wanted} strike"
            f"{'s' if wanted != 1 else ''} (lowest first, separated by /), got {len(strikes)}."
        )
    if strikes and list(strikes) != sorted(set(strikes)):
        raise StrategyError(
            f"strikes {'/'.join(f'{s:g}' for s in strikes)} must be distinct and lowest first."
        )
    return StrategyLine(symbol, template, strikes, mult, expiry)


def _leg(lots: int, m: re.Match[str]) -> LegToken:
    strike, side, fut, at = m.group(1), m.group(2), m.group(3), m.group(4)
    which: int | date | None = None
    if at is not None:
        if at.isdigit():
            which = int(at)
        elif (day := parse_day(at)) is not None:
            which = day
        else:
            raise StrategyError(f"@{at} is not an expiry; write @1, @2 … or @2026-11-24.")
    if fut:
        return LegToken("FUT", lots, None, which)
    return LegToken(side.upper(), lots, float(strike), which)
