"""The name of a strategy from its legs, whatever order or multiple they were entered in.

A set of legs is reduced to its shape: for each (kind, expiry rank, strike rank) the net lots,
divided by their common factor, plus whether the distinct strikes are evenly spaced (a butterfly
vs a broken-wing one). Futures legs count by direction only. Each template's shape is computed the
same way from its symbolic strikes, so every template is recognised from the legs it builds; an
exact shape wins, then one that differs only in the spacing (an iron condor with even wings is
still an iron condor).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from functools import reduce

from optterm.strategy.position import Leg
from optterm.strategy.templates import TEMPLATES, Template, strike_value

__all__ = ["recognise", "shape"]

Shape = tuple[tuple[tuple[str, int, int, int], ...], bool]


def shape(legs: Iterable[tuple[str, int, float, int]]) -> Shape | None:
    """Shape of (kind, expiry rank, strike, signed lots) legs; None when they net to nothing."""
    net: dict[tuple[str, int, float], int] = defaultdict(int)
    for kind, exp, strike, lots in legs:
        net[(kind, exp, math.nan if kind == "FUT" else strike)] += lots
    # NaN keys never compare equal: futures are keyed by a placeholder instead.
    held = {(k, e, -1.0 if k == "FUT" else s): n for (k, e, s), n in net.items() if n}
    if not held:
        return None
    exps = sorted({e for (k, e, _), _n in held.items() if k != "FUT"})
    strikes = sorted({s for (k, _e, s) in held if k != "FUT"})
    factor = reduce(math.gcd, (abs(n) for n in held.values()))
    rows = tuple(
        sorted(
            (
                k,
                -1 if k == "FUT" else exps.index(e),
                -1 if k == "FUT" else strikes.index(s),
                n // factor,
            )
            for (k, e, s), n in held.items()
        )
    )
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(strikes)}
    return rows, len(strikes) >= 3 and len(gaps) == 1


def _template_shape(t: Template) -> Shape | None:
    # Sample geometry: C1/P1 three strikes away, wings two: every template's strikes distinct.
    return shape(
        (g.kind, g.expiry, strike_value(g.at, 0.0, 3.0, -3.0, 2.0), g.lots) for g in t.legs
    )


_EXACT: dict[Shape, Template] = {}
_LOOSE: dict[tuple[tuple[str, int, int, int], ...], Template] = {}
for _t in TEMPLATES:
    _s = _template_shape(_t)
    if _s is not None:
        _EXACT.setdefault(_s, _t)
        _LOOSE.setdefault(_s[0], _t)


def recognise(legs: Iterable[Leg]) -> Template | None:
    """The template these legs are, or None (a custom strategy)."""
    items = list(legs)
    days = sorted({g.expiry for g in items if g.is_option})
    s = shape(
        (g.kind, days.index(g.expiry) if g.is_option else -1, g.strike, g.lots) for g in items
    )
    if s is None:
        return None
    return _EXACT.get(s) or _LOOSE.get(s[0])
