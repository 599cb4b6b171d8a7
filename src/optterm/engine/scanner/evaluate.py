"""Scans compiled to numpy: each condition evaluates for every underlying at once.

A parsed scan (grammar.Scan) becomes a tree of closures over a `Context`; a value node returns a
column (one float per underlying), a condition a mask. n/a stays n/a: `not (ivp > 80)` is false,
not true, for a name whose IV percentile is unknown (three-valued logic, as in SQL): each
condition compiles to "where it is true" and, under a `not`, "where it is false" (known and not
true), so the common case of no `not` pays for no known-masks at all. A name matches where
the whole condition is *true*. No Python loop runs per underlying; the cost of a scan is the
number of its operators.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from optterm.engine.scanner.fields import FIELD_INDEX, SEGMENT_WORDS
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
Mask = np.ndarray
Cond = Callable[[Context, int], Mask]

_OPS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "=": operator.eq, "!=": operator.ne,
}  # fmt: skip
_ARITH: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}  # fmt: skip
_SEGMENT: Final = FIELD_INDEX["segment"]
_UNIVERSE_SEGMENTS: Final[dict[str, tuple[float, ...] | None]] = {
    "fno": (SEGMENT_WORDS["index"], SEGMENT_WORDS["stock"]),  # NSE F&O only, never MCX
    "indices": (SEGMENT_WORDS["index"],),
    "stocks": (SEGMENT_WORDS["stock"],),
    "mcx": (SEGMENT_WORDS["commodity"],),
    "all": None,
}


def _known(x: Any) -> Any:
    return ~np.isnan(x) if isinstance(x, np.ndarray) else x == x


def _value(node: Node) -> Value:
    if isinstance(node, Num):
        v = node.value
        return lambda ctx, back: v
    if isinstance(node, FieldRef):
        i, b0, ago, days = FIELD_INDEX[node.name], node.back, node.ago_s, node.days
        if not (b0 or ago or days):
            # The hot path: this tick's column, without a call into the context.
            return lambda ctx, back: ctx.values[i] if not back else ctx.column(i, back)
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


def _plain(node: Node) -> bool:
    return isinstance(node, FieldRef) and not (node.back or node.ago_s or node.days)


def _true(node: Node, names: Sequence[str]) -> Cond:
    """Where `node` is true. Comparisons with n/a are false by numpy's own rules (NaN > x is
    false), except `!=`, which needs the known mask."""
    if isinstance(node, PresetRef):
        return _true(node.condition, names)
    if isinstance(node, Compare):
        left, right, op = _value(node.left), _value(node.right), _OPS[node.op]
        if node.op == "!=":
            return lambda ctx, back: _unequal(left(ctx, back), right(ctx, back))
        if isinstance(node.right, Num):  # most thresholds: skip a call per evaluation
            k = node.right.value
            if _plain(node.left):  # `field > 10`, the commonest of all: read the column here
                i = FIELD_INDEX[node.left.name]  # type: ignore[union-attr]
                return lambda ctx, back: (
                    op(ctx.values[i], k) if not back else op(ctx.column(i, back), k)
                )
            return lambda ctx, back: op(left(ctx, back), k)
        return lambda ctx, back: op(left(ctx, back), right(ctx, back))
    if isinstance(node, Between):
        v, lo, hi = _value(node.value), _value(node.low), _value(node.high)

        def between(ctx: Context, back: int) -> Mask:
            x: Any = v(ctx, back)
            return (x >= lo(ctx, back)) & (x <= hi(ctx, back))

        return between
    if isinstance(node, InList):
        v, options = _value(node.value), np.array(node.options)
        if len(options) > 8:
            return lambda ctx, back: np.isin(v(ctx, back), options)

        def in_few(ctx: Context, back: int) -> Mask:
            # A short list: a few equalities beat np.isin's sort-based set machinery.
            x = v(ctx, back)
            out = x == options[0]
            for o in options[1:]:
                out = out | (x == o)
            return out

        return in_few
    if isinstance(node, SymbolIn):
        hit = _symbols(node, names)
        return lambda ctx, back: hit
    if isinstance(node, Cross):
        left, right, above = _value(node.left), _value(node.right), node.above

        def cross(ctx: Context, back: int) -> Mask:
            a, b = left(ctx, back), right(ctx, back)
            pa, pb = left(ctx, back + 1), right(ctx, back + 1)
            return ((a > b) & (pa <= pb)) if above else ((a < b) & (pa >= pb))

        return cross
    if isinstance(node, And):
        return _all([_true(item, names) for item in node.items])
    if isinstance(node, Or):
        return _any([_true(item, names) for item in node.items])
    if isinstance(node, Not):
        return _false(node.item, names)
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover


def _false(node: Node, names: Sequence[str]) -> Cond:
    """Where `node` is false: known and not true (n/a is neither, so `not` keeps it n/a)."""
    if isinstance(node, PresetRef):
        return _false(node.condition, names)
    if isinstance(node, And):
        return _any([_false(item, names) for item in node.items])
    if isinstance(node, Or):
        return _all([_false(item, names) for item in node.items])
    if isinstance(node, Not):
        return _true(node.item, names)
    if isinstance(node, SymbolIn):
        miss = ~_symbols(node, names)
        return lambda ctx, back: miss
    true = _true(node, names)
    values = [_value(v) for v in _operands(node)]
    if isinstance(node, Cross):  # the previous tick's values must be known too
        values = values + [_shifted(v) for v in values]

    def false(ctx: Context, back: int) -> Mask:
        known: Any = True
        for v in values:
            known = known & _known(v(ctx, back))
        return ~true(ctx, back) & known

    return false


def _shifted(v: Value) -> Value:
    return lambda ctx, back: v(ctx, back + 1)


def _operands(node: Node) -> list[Node]:
    if isinstance(node, Compare | Cross):
        return [node.left, node.right]
    if isinstance(node, Between):
        return [node.value, node.low, node.high]
    if isinstance(node, InList):
        return [node.value]
    raise TypeError(f"not a comparison: {node!r}")  # pragma: no cover


def _unequal(a: Any, b: Any) -> Mask:
    return (a != b) & _known(a) & _known(b)


def _symbols(node: SymbolIn, names: Sequence[str]) -> Mask:
    wanted = set(node.symbols)
    return np.array([n in wanted for n in names], dtype=bool)


def _all(parts: list[Cond]) -> Cond:
    def all_of(ctx: Context, back: int) -> Mask:
        out = parts[0](ctx, back)
        for part in parts[1:]:
            out = out & part(ctx, back)
        return out

    return all_of


def _any(parts: list[Cond]) -> Cond:
    def any_of(ctx: Context, back: int) -> Mask:
        out = parts[0](ctx, back)
        for part in parts[1:]:
            out = out | part(ctx, back)
        return out

    return any_of


@dataclass(frozen=True)
class ScanResult:
    """One run of one scan: the matching underlyings, ranked and limited, and the n/a columns
    it read (with why), so a caller can say why a name could not match."""

    universe: tuple[str, ...]
    rows: np.ndarray  # indices in the universe of the matches, ranked and limited
    matched: np.ndarray  # bool per underlying, before the limit
    sort_values: np.ndarray  # the sort key of `rows` (NaN without a sort)
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.universe[i] for i in self.rows)

    @property
    def count(self) -> int:
        return int(self.matched.sum())


class CompiledScan:
    """A scan bound to a universe's names (their order is the columns' order)."""

    def __init__(self, scan: Scan, names: Sequence[str]) -> None:
        self.scan = scan
        self.names = tuple(names)
        self._cond = None if scan.where is None else _true(scan.where, self.names)
        self._sort = None if scan.sort is None else _value(scan.sort)
        self.fields = scan.fields()
        # The segment codes a universe keeps (None: every name given).
        self._segments = _UNIVERSE_SEGMENTS[scan.universe]

    def match(self, ctx: Context) -> np.ndarray:
        n = ctx.n
        if self._cond is None:
            hit: Any = np.ones(n, dtype=bool)
        else:
            hit = self._cond(ctx, 0)
            if np.shape(hit) != (n,):  # a condition on constants only: `1 > 0`
                hit = np.broadcast_to(hit, (n,))
        if self._segments is not None:
            hit = hit & np.isin(ctx.values[_SEGMENT], self._segments)
        return hit

    def run(self, ctx: Context, unavailable: Mapping[str, str] | None = None) -> ScanResult:
        matched = self.match(ctx)
        rows = np.flatnonzero(matched)
        keys = _NO_KEYS
        if self._sort is not None and len(rows):
            col = self._sort(ctx, 0)
            keys = col[rows] if np.ndim(col) else np.full(len(rows), float(col))
            if len(rows) > 1:
                # numpy sorts NaN after every number, and -NaN is NaN: n/a comes last either way.
                order = np.argsort(-keys if self.scan.descending else keys, kind="stable")
                rows, keys = rows[order], keys[order]
        elif len(rows):
            keys = np.full(len(rows), np.nan)
        if self.scan.limit is not None:
            rows, keys = rows[: self.scan.limit], keys[: self.scan.limit]
        na = {f: unavailable[f] for f in self.fields if f in unavailable} if unavailable else {}
        return ScanResult(self.names, rows, matched, keys, na)


_NO_KEYS = np.empty(0)


def compile_scan(scan: Scan, names: Sequence[str]) -> CompiledScan:
    return CompiledScan(scan, names)
