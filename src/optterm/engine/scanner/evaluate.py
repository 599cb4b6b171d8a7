"""Scans compiled to numpy: each condition evaluates for every underlying at once.

A parsed scan (grammar.Scan) becomes a tree of closures over a `Context`; a value node returns a
column (one float per underlying), a condition returns two masks, (true, false), so that n/a
stays n/a: `not (ivp > 80)` is false, not true, for a name whose IV percentile is unknown
(three-valued logic, as in SQL). A name matches where the whole condition is *true*. No Python
loop runs per underlying; the cost of a scan is the number of its operators.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS, SEGMENT_WORDS
from optterm.engine.scanner.frame import Context
from optterm.engine.scanner.grammar import (
    Agg,
    And,
    Arith,
    Between,
    Compare,
    Cross,
    FieldRef,
    InList,
    Neg,
    Node,
    Not,
    Num,
    Or,
    PresetRef,
    Scan,
    SymbolIn,
)

__all__ = ["CompiledScan", "ScanResult", "compile_scan"]

Value = Callable[[Context, int], Any]  # a column, or a float for a constant
Cond = Callable[[Context, int], tuple[np.ndarray, np.ndarray]]

_OPS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "=": operator.eq, "!=": operator.ne,
}  # fmt: skip
_ARITH: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}  # fmt: skip
_SEGMENT: Final = FIELD_INDEX["segment"]


def _known(x: Any) -> Any:
    return ~np.isnan(x) if isinstance(x, np.ndarray) else x == x


def _value(node: Node) -> Value:
    if isinstance(node, Num):
        v = node.value
        return lambda ctx, back: v
    if isinstance(node, FieldRef):
        i, b0, ago, days = FIELD_INDEX[node.name], node.back, node.ago_s, node.days
        if not (b0 or ago or days):
            return lambda ctx, back: ctx.column(i, back)
        return lambda ctx, back: ctx.column(i, back + b0, ago, days)
    if isinstance(node, Agg):
        fn, i, n = node.fn, FIELD_INDEX[node.field.name], node.n
        return lambda ctx, back: ctx.aggregate(fn, i, n, back)
    if isinstance(node, Neg):
        inner = _value(node.value)
        return lambda ctx, back: -inner(ctx, back)
    if isinstance(node, Arith):
        left, right, op = _value(node.left), _value(node.right), _ARITH[node.op]
        if node.op != "/":
            return lambda ctx, back: op(left(ctx, back), right(ctx, back))

        def divide(ctx: Context, back: int) -> np.ndarray | float:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.true_divide(left(ctx, back), right(ctx, back))
            return np.where(np.isfinite(out), out, np.nan)  # x / 0 is n/a, not infinity

        return divide
    raise TypeError(f"not a value: {node!r}")  # pragma: no cover - the parser types every node


def _cond(node: Node, names: Sequence[str]) -> Cond:
    if isinstance(node, PresetRef):
        return _cond(node.condition, names)
    if isinstance(node, Compare):
        left, right, op = _value(node.left), _value(node.right), _OPS[node.op]

        def compare(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            a, b = left(ctx, back), right(ctx, back)
            known: Any = _known(a) & _known(b)
            hit: Any = op(a, b)
            return hit & known, ~hit & known

        return compare
    if isinstance(node, Between):
        v, lo, hi = _value(node.value), _value(node.low), _value(node.high)

        def between(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            x, a, b = v(ctx, back), lo(ctx, back), hi(ctx, back)
            known: Any = _known(x) & _known(a) & _known(b)
            hit: Any = (x >= a) & (x <= b)
            return hit & known, ~hit & known

        return between
    if isinstance(node, InList):
        v, options = _value(node.value), np.array(node.options)

        def in_list(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            x = np.asarray(v(ctx, back), dtype=np.float64)
            hit = np.isin(x, options)
            known = ~np.isnan(x)
            return hit & known, ~hit & known

        return in_list
    if isinstance(node, SymbolIn):
        wanted = set(node.symbols)
        hit = np.array([n in wanted for n in names], dtype=bool)
        miss = ~hit
        return lambda ctx, back: (hit, miss)
    if isinstance(node, Cross):
        left, right, above = _value(node.left), _value(node.right), node.above

        def cross(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            a, b = left(ctx, back), right(ctx, back)
            pa, pb = left(ctx, back + 1), right(ctx, back + 1)
            known: Any = _known(a) & _known(b) & _known(pa) & _known(pb)
            hit: Any = ((a > b) & (pa <= pb)) if above else ((a < b) & (pa >= pb))
            return hit & known, ~hit & known

        return cross
    if isinstance(node, And):
        parts = [_cond(item, names) for item in node.items]

        def all_of(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            t, f = parts[0](ctx, back)
            for part in parts[1:]:
                pt, pf = part(ctx, back)
                t, f = t & pt, f | pf
            return t, f

        return all_of
    if isinstance(node, Or):
        parts = [_cond(item, names) for item in node.items]

        def any_of(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            t, f = parts[0](ctx, back)
            for part in parts[1:]:
                pt, pf = part(ctx, back)
                t, f = t | pt, f & pf
            return t, f

        return any_of
    if isinstance(node, Not):
        inner = _cond(node.item, names)

        def negate(ctx: Context, back: int) -> tuple[np.ndarray, np.ndarray]:
            t, f = inner(ctx, back)
            return f, t

        return negate
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover


@dataclass(frozen=True)
class ScanResult:
    """One run of one scan: the matching underlyings, ranked and limited, and the n/a columns
    it read (with why), so a caller can say why a name could not match."""

    names: tuple[str, ...]  # ranked, limited
    rows: np.ndarray  # their indices in the universe
    matched: np.ndarray  # bool per underlying, before the limit
    sort_values: np.ndarray  # the sort key of `rows` (NaN without a sort)
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.matched.sum())


class CompiledScan:
    """A scan bound to a universe's names (their order is the columns' order)."""

    def __init__(self, scan: Scan, names: Sequence[str]) -> None:
        self.scan = scan
        self.names = tuple(names)
        self._cond = None if scan.where is None else _cond(scan.where, self.names)
        self._sort = None if scan.sort is None else _value(scan.sort)
        self.fields = scan.fields()

    def match(self, ctx: Context) -> np.ndarray:
        n = ctx.n
        if self._cond is None:
            hit = np.ones(n, dtype=bool)
        else:
            hit = np.broadcast_to(self._cond(ctx, 0)[0], (n,))
        if self.scan.universe != "fno":
            segment = ctx.values[_SEGMENT]
            hit = hit & (segment == SEGMENT_WORDS["index" if self.scan.universe == "indices"
                                                  else "stock"])  # fmt: skip
        return hit

    def run(self, ctx: Context, unavailable: Mapping[str, str] | None = None) -> ScanResult:
        matched = self.match(ctx)
        rows = np.flatnonzero(matched)
        keys = np.full(len(rows), np.nan)
        if self._sort is not None and len(rows):
            col = np.broadcast_to(np.asarray(self._sort(ctx, 0), dtype=np.float64), (ctx.n,))
            keys = col[rows]
            order_key = -keys if self.scan.descending else keys
            order = np.argsort(np.where(np.isnan(order_key), np.inf, order_key), kind="stable")
            rows, keys = rows[order], keys[order]
        if self.scan.limit is not None:
            rows, keys = rows[: self.scan.limit], keys[: self.scan.limit]
        na = {f: unavailable[f] for f in self.fields if unavailable and f in unavailable}
        return ScanResult(tuple(self.names[i] for i in rows), rows, matched, keys, na)


def compile_scan(scan: Scan, names: Sequence[str]) -> CompiledScan:
    return CompiledScan(scan, names)


assert len(FIELDS) == len(FIELD_INDEX)
