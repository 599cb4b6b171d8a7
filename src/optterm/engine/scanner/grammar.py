"""The scan language: `scan fno where fut_oi_chg% > 10 and price_chg% > 1 sort fut_oi_chg% desc
limit 20`, read into a typed tree (`Scan`) by a hand-written recursive-descent parser.

Why not a parsing library: the grammar is a dozen rules, the alert one-liner beside it is
hand-written too, and the errors must name the word, its position and what would fit there,
which a generic parser's messages do not; lark is also not installed and would add import cost to
every command. Nothing here evaluates text (no eval): the tree is compiled to numpy operations by
evaluate.py.

Precedence, loosest first: `or`, `and`, `not`, comparisons (`> >= < <= = != between in crosses`),
`+ -`, `* /`, unary minus, a field's look-back (`price 15m ago`, `price[-1]`, `price 1d ago`).
Every error is a `ScanError` naming the word (1-based, as people count) and its column;
docs/scanner.md is the reference.

Over 600 lines because the tokens, the tree, the type checks and the parser are one grammar:
each parse step types what it reads, and an error message needs the token, the type and the
vocabulary at once; split apart, a new form would have to be taught to four modules.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Final, NoReturn

from optterm.engine.scanner.fields import FIELD_INDEX, TEXT_FIELDS
from optterm.engine.scanner.presets import PRESETS
from optterm.infra.clip import quoted

__all__ = [
    "MAX_LIMIT",
    "MAX_TEXT",
    "UNIVERSES",
    "Agg",
    "And",
    "Arith",
    "Between",
    "Compare",
    "Cross",
    "FieldRef",
    "InList",
    "Neg",
    "Node",
    "Not",
    "Num",
    "Or",
    "PresetRef",
    "Scan",
    "ScanError",
    "SymbolIn",
    "parse_scan",
]

MAX_TEXT: Final = 2000
MAX_LIMIT: Final = 1000
MAX_DEPTH: Final = 40
MAX_TICKS_BACK: Final = 10_000
MAX_DAYS_BACK: Final = 250
# NSE F&O (indices and stocks, or one of them), MCX commodities, or both (each on its own
# session: a closed segment's names stand at their close).
UNIVERSES: Final = ("fno", "indices", "stocks", "mcx", "all")
_AGGS: Final = ("avg", "min", "max")
_COMPARE: Final = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "==": "=",
                   "!=": "!=", "<>": "!="}  # fmt: skip
_KEYWORDS: Final = frozenset(
    {"scan", "where", "and", "or", "not", "between", "in", "crosses", "above", "below", "sort",
     "by", "asc", "desc", "limit", "ago", *UNIVERSES, *_AGGS}
)  # fmt: skip
_DURATION: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}
_EXAMPLE: Final = "scan fno where fut_oi_chg% > 10 and price_chg% > 1 sort fut_oi_chg% desc"
_TOKEN: Final = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?P<unit>%|[A-Za-z_][A-Za-z0-9_]*%?)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_&-]*%?)
    | (?P<op>>=|<=|!=|<>|==|[<>=()\[\],+\-*/])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class ScanError(ValueError):
    """A scan that cannot be read; the message names the word, where it is and what fits."""


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # string, number, word, op, end
    text: str
    low: str
    index: int  # 1-based word number
    column: int  # 1-based character
    unit: str = ""


# --- the tree -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    back: int = 0  # ticks back ([-1])
    ago_s: float = 0.0  # seconds back (15m ago)
    days: int = 0  # sessions back, at their close (1d ago)


@dataclass(frozen=True, slots=True)
class Agg:
    fn: str  # avg, min, max
    field: FieldRef
    n: int  # over the last n ticks, this one included


@dataclass(frozen=True, slots=True)
class Arith:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Neg:
    value: Node


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Between:
    value: Node
    low: Node
    high: Node


@dataclass(frozen=True, slots=True)
class InList:
    value: Node
    options: tuple[float, ...]  # numbers, or a text field's codes


@dataclass(frozen=True, slots=True)
class SymbolIn:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cross:
    above: bool
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class PresetRef:
    name: str
    condition: Node


Node = (
    Num | FieldRef | Agg | Arith | Neg | Compare | Between | InList | SymbolIn | Cross | And | Or
    | Not | PresetRef
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Scan:
    text: str
    universe: str  # fno, indices, stocks (NSE F&O), mcx (MCX commodities) or all
    where: Node | None
    sort: Node | None
    descending: bool
    limit: int | None

    def fields(self) -> tuple[str, ...]:
        """The fields the scan reads, in the order written (for its result columns)."""
        seen: dict[str, None] = {}
        for node in (self.sort, self.where):
            if node is not None:
                _collect(node, seen)
        return tuple(seen)


def _collect(node: Node, seen: dict[str, None]) -> None:
    if isinstance(node, FieldRef):
        seen.setdefault(node.name)
    elif isinstance(node, Agg):
        seen.setdefault(node.field.name)
    elif isinstance(node, Arith | Compare | Cross):
        _collect(node.left, seen)
        _collect(node.right, seen)
    elif isinstance(node, Neg):
        _collect(node.value, seen)
    elif isinstance(node, Between):
        for part in (node.value, node.low, node.high):
            _collect(part, seen)
    elif isinstance(node, InList):
        _collect(node.value, seen)
    elif isinstance(node, And | Or):
        for item in node.items:
            _collect(item, seen)
    elif isinstance(node, Not):
        _collect(node.item, seen)
    elif isinstance(node, PresetRef):
        _collect(node.condition, seen)


# --- types: what a parsed piece is ------------------------------------------------------------

_BOOL, _NUM = "a condition", "a number"


def _text_type(field: str) -> str:
    return f"text:{field}"


@dataclass(frozen=True, slots=True)
class _Typed:
    node: Node | None  # None for the `symbol` field until it is compared
    type: str
    tok: Tok


# --- the parser -------------------------------------------------------------------------------


def _tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "space":
            continue
        raw = m.group(0)
        if kind == "number":
            unit = (m.group("unit") or "").lower()
            tok = Tok("number", raw, raw.lower(), len(out) + 1, m.start() + 1, unit)
            if unit not in ("", "%", "s", "m", "h", "d"):
                _fail(tok, "not a number or a duration (durations end in s, m, h or d)")
        else:
            tok = Tok(kind, raw, raw.lower(), len(out) + 1, m.start() + 1)
        if kind == "other":
            _fail(tok, f"{raw!r} is not part of the language")  # before `out` grows: its index
        out.append(tok)
    out.append(Tok("end", "", "", len(out) + 1, len(text) + 1))
    return out


def _fail(tok: Tok, problem: str) -> NoReturn:
    where = (
        "at the end"
        if tok.kind == "end"
        else f"at word {tok.index} ({quoted(tok.text)}, column {tok.column})"
    )
    raise ScanError(
        f"cannot read the scan {where}: {problem}. Write it like '{_EXAMPLE}' "
        "(docs/scanner.md lists every field and form)"
    )


def _suggest(word: str) -> str:
    names = [*FIELD_INDEX, "symbol", *PRESETS]
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r})" if close else ""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0
        self.depth = 0

    # -- cursor
    @property
    def tok(self) -> Tok:
        return self.toks[self.pos]

    def peek(self, ahead: int = 1) -> Tok:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def take(self) -> Tok:
        tok = self.toks[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def accept(self, *words: str) -> Tok | None:
        if self.tok.kind in ("word", "op") and self.tok.low in words:
            return self.take()
        return None

    def expect(self, word: str, what: str) -> Tok:
        tok = self.accept(word)
        if tok is None:
            _fail(self.tok, f"expected {what}")
        return tok

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(self.tok, f"nested more than {MAX_DEPTH} deep; write it flatter")

    # -- the scan
    def scan(self) -> Scan:
        self.accept("scan")
        universe = "fno"
        if self.tok.kind == "word" and self.tok.low in UNIVERSES:
            universe = self.take().low
        where_tok = self.accept("where")
        where: Node | None = None
        if where_tok is not None or (
            self.tok.kind != "end" and self.tok.low not in ("sort", "limit")
        ):
            start = self.tok
            cond = self.or_()
            if cond.type != _BOOL:
                _fail(start, f"this is {cond.type}, not a condition; compare it, e.g. "
                      f"'{start.text} > 1'")  # fmt: skip
            where = cond.node
        sort: Node | None = None
        descending = True
        if self.accept("sort"):
            self.accept("by")
            start = self.tok
            key = self.additive()
            if key.type != _NUM:
                _fail(start, "sort by a number field (or arithmetic on them)")
            sort = key.node
            if self.accept("asc"):
                descending = False
            else:
                self.accept("desc")
        elif isinstance(where, PresetRef):
            preset = PRESETS[where.name]
            field, order = preset.sort.split()
            sort, descending = FieldRef(field), order == "desc"
        limit: int | None = None
        if self.accept("limit"):
            tok = self.tok
            if tok.kind != "number" or tok.unit or not tok.text.isdigit():
                _fail(tok, "expected a whole number after 'limit', e.g. 'limit 20'")
            self.take()
            limit = int(tok.text)
            if not 1 <= limit <= MAX_LIMIT:
                _fail(tok, f"the limit must be between 1 and {MAX_LIMIT}")
        if self.tok.kind != "end":
            _fail(self.tok, "unexpected here; after the condition you may add "
                  "'sort FIELD [asc|desc]' and 'limit N'")  # fmt: skip
        return Scan(self.text, universe, where, sort, descending, limit)

    # -- conditions
    def _bool(self, part: _Typed, word: str) -> Node:
        if part.type != _BOOL or part.node is None:
            _fail(part.tok, f"'{word}' joins conditions, and this is {_describe(part.type)}")
        return part.node

    def or_(self) -> _Typed:
        first = self.and_()
        if self.tok.low != "or" or self.tok.kind != "word":
            return first
        items = [self._bool(first, "or")]
        while self.accept("or"):
            items.append(self._bool(self.and_(), "or"))
        return _Typed(Or(tuple(items)), _BOOL, first.tok)

    def and_(self) -> _Typed:
        first = self.not_()
        if self.tok.low != "and" or self.tok.kind != "word":
            return first
        items = [self._bool(first, "and")]
        while self.accept("and"):
            items.append(self._bool(self.not_(), "and"))
        return _Typed(And(tuple(items)), _BOOL, first.tok)

    def not_(self) -> _Typed:
        tok = self.accept("not")
        if tok is None:
            return self.comparison()
        self.nest()
        inner = self.not_()
        self.depth -= 1
        return _Typed(Not(self._bool(inner, "not")), _BOOL, tok)

    def comparison(self) -> _Typed:
        left = self.additive()
        tok = self.tok
        low = tok.low if tok.kind in ("word", "op") else ""
        negate = False
        if low == "not" and self.peek().low in ("in", "between"):
            self.take()
            negate = True
            tok, low = self.tok, self.tok.low
        if low in _COMPARE:
            self.take()
            result = self._compare(left, _COMPARE[low], tok)
        elif low == "between":
            self.take()
            value = self._number(left, "between")
            lo = self._number(self.additive(), "between")
            self.expect("and", "'and' in 'between LOW and HIGH'")
            hi = self._number(self.additive(), "between")
            result = _Typed(Between(value, lo, hi), _BOOL, left.tok)
        elif low == "in":
            self.take()
            result = self._in(left, tok)
        elif low == "crosses":
            self.take()
            way = self.accept("above", "below")
            if way is None:
                _fail(self.tok, "expected 'above' or 'below' after 'crosses'")
            a = self._number(left, "crosses")
            b = self._number(self.additive(), "crosses")
            result = _Typed(Cross(way.low == "above", a, b), _BOOL, left.tok)
        else:
            if left.type.startswith("text:"):
                _fail(tok, f"compare {left.tok.text!r} with '=', '!=' or 'in (…)'")
            return left
        if negate:
            assert result.node is not None
            return _Typed(Not(result.node), _BOOL, result.tok)
        return result

    def _number(self, part: _Typed, word: str) -> Node:
        if part.type != _NUM or part.node is None:
            _fail(part.tok, f"'{word}' takes numbers, and this is {_describe(part.type)}")
        return part.node

    def _text_value(self, field: str) -> tuple[float | str, Tok]:
        tok = self.take()
        if tok.kind not in ("word", "string"):
            _fail(tok, f"{field!r} is text; compare it with a word, e.g. "
                  f"{_text_example(field)}")  # fmt: skip
        word = tok.text.strip("'\"").strip()
        if field == "symbol":
            return word.upper(), tok
        vocabulary = TEXT_FIELDS[field]
        code = vocabulary.get(word.lower())
        if code is None:
            _fail(tok, f"{field!r} is one of {', '.join(vocabulary)}")
        return code, tok

    def _compare(self, left: _Typed, op: str, tok: Tok) -> _Typed:
        if left.type.startswith("text:"):
            field = left.type[5:]
            if op not in ("=", "!="):
                _fail(tok, f"{field!r} is text; compare it with '=', '!=' or 'in (…)'")
            value, _ = self._text_value(field)
            node = self._text_in(left, (value,))
            return _Typed(node if op == "=" else Not(node), _BOOL, left.tok)
        right_tok = self.tok
        if right_tok.kind == "string":
            _fail(right_tok, f"{left.tok.text!r} is a number and {right_tok.text} is text; "
                  "compare it with a number, e.g. 1.5")  # fmt: skip
        right = self.additive()
        if left.type == _BOOL or right.type == _BOOL:
            bad = left if left.type == _BOOL else right
            _fail(bad.tok, f"'{tok.text}' compares numbers, and this is a condition")
        if right.type != _NUM:
            _fail(right.tok, f"{left.tok.text!r} is a number and {right.tok.text!r} is text")
        assert left.node is not None
        assert right.node is not None
        return _Typed(Compare(op, left.node, right.node), _BOOL, left.tok)

    def _text_in(self, left: _Typed, values: tuple[float | str, ...]) -> Node:
        if left.type == _text_type("symbol"):
            return SymbolIn(tuple(str(v) for v in values))
        assert left.node is not None
        return InList(left.node, tuple(float(v) for v in values))

    def _in(self, left: _Typed, tok: Tok) -> _Typed:
        self.expect("(", "'(' after 'in', e.g. in (lb, sb)")
        values: list[float | str] = []
        while True:
            if left.type.startswith("text:"):
                values.append(self._text_value(left.type[5:])[0])
            else:
                start = self.tok
                item = self.unary()
                if not isinstance(item.node, Num):
                    _fail(start, "list plain numbers inside 'in (…)'")
                values.append(item.node.value)
            if self.accept(")"):
                break
            self.expect(",", "',' or ')' in the list")
            if len(values) >= 500:
                _fail(self.tok, "at most 500 values in one 'in (…)'")
        if left.type == _BOOL:
            _fail(left.tok, "'in' takes a field, and this is a condition")
        return _Typed(self._text_in(left, tuple(values)), _BOOL, left.tok)

    # -- values
    def additive(self) -> _Typed:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.take()
            right = self.multiplicative()
            left = _Typed(
                Arith(op.text, self._number(left, op.text), self._number(right, op.text)),
                _NUM,
                left.tok,
            )
        return left

    def multiplicative(self) -> _Typed:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.take()
            right = self.unary()
            left = _Typed(
                Arith(op.text, self._number(left, op.text), self._number(right, op.text)),
                _NUM,
                left.tok,
            )
        return left

    def unary(self) -> _Typed:
        tok = self.tok
        if tok.kind == "op" and tok.text == "-":
            self.take()
            self.nest()
            inner = self.unary()
            self.depth -= 1
            node = self._number(inner, "-")
            if isinstance(node, Num):
                return _Typed(Num(-node.value), _NUM, tok)
            return _Typed(Neg(node), _NUM, tok)
        return self.atom()

    def atom(self) -> _Typed:
        tok = self.take()
        if tok.kind == "end":
            _fail(tok, "the scan ends too early; a field, a number or a preset goes here")
        if tok.kind == "number":
            if tok.unit in ("s", "m", "h", "d"):
                _fail(tok, f"a duration goes before 'ago', e.g. 'price {tok.text} ago'")
            try:
                value = float(tok.text.rstrip("%"))
            except ValueError:  # pragma: no cover - the token pattern only matches numbers
                _fail(tok, "not a number")
            if value != value or value in (float("inf"), float("-inf")):
                _fail(tok, "the number is too large")
            return _Typed(Num(value), _NUM, tok)
        if tok.kind == "string":
            _fail(tok, "text goes after a text field, e.g. buildup = 'lb'; numbers are unquoted")
        if tok.kind == "op":
            if tok.text == "(":
                self.nest()
                inner = self.or_()
                self.depth -= 1
                self.expect(")", "')' to close the '(' at word " + str(tok.index))
                return _Typed(inner.node, inner.type, tok)
            _fail(tok, "a field, a number, a preset or '(' goes here")
        low = tok.low
        if low in _AGGS and self.tok.text == "(":
            return self._agg(tok)
        if low in PRESETS:
            return _Typed(PresetRef(low, _preset_condition(low)), _BOOL, tok)
        if low == "symbol":
            return _Typed(None, _text_type("symbol"), tok)
        if low not in FIELD_INDEX:
            if low in _KEYWORDS:
                _fail(tok, f"{tok.text!r} cannot start a condition; a field goes here")
            _fail(tok, f"{tok.text!r} is not a field or a preset{_suggest(low)}")
        ref = self._lookback(FieldRef(low))
        kind = _text_type(low) if low in TEXT_FIELDS else _NUM
        return _Typed(ref, kind, tok)

    def _lookback(self, ref: FieldRef) -> FieldRef:
        if self.tok.kind == "op" and self.tok.text == "[":
            self.take()
            neg = self.accept("-")
            tok = self.take()
            if tok.kind != "number" or tok.unit or not tok.text.isdigit():
                _fail(tok, "expected ticks back, e.g. price[-1]")
            n = int(tok.text)
            if neg is None and n != 0:
                _fail(tok, "look back with a minus sign, e.g. price[-1]")
            if n > MAX_TICKS_BACK:
                _fail(tok, f"at most {MAX_TICKS_BACK} ticks back")
            self.expect("]", "']'")
            return FieldRef(ref.name, back=n)
        tok = self.tok
        if tok.kind == "number" and tok.unit in ("s", "m", "h", "d"):
            if self.peek().low != "ago":
                _fail(self.peek(), f"write 'ago' after the duration, e.g. 'price {tok.text} ago'")
            self.take()
            self.take()
            try:
                amount = float(tok.text[:-1])
            except ValueError:
                _fail(tok, "expected a duration like 15m, 1h or 1d")
            if tok.unit == "d":
                if amount != int(amount) or not 1 <= amount <= MAX_DAYS_BACK:
                    _fail(tok, f"days back must be a whole number from 1 to {MAX_DAYS_BACK}")
                return FieldRef(ref.name, days=int(amount))
            seconds = amount * _DURATION[tok.unit]
            if not 0 < seconds <= 86_400:
                _fail(tok, "look back between 1s and 24h within a day, or whole days with 'd'")
            return FieldRef(ref.name, ago_s=seconds)
        return ref

    def _agg(self, fn: Tok) -> _Typed:
        self.expect("(", "'('")
        field_tok = self.take()
        if field_tok.low in TEXT_FIELDS:
            _fail(field_tok, f"{fn.low}() takes a number field, and {field_tok.text!r} is text")
        if field_tok.low not in FIELD_INDEX:
            _fail(field_tok, f"{fn.low}() takes a number field{_suggest(field_tok.low)}")
        self.expect(",", f"',' then how many ticks, e.g. {fn.low}({field_tok.text}, 20)")
        n_tok = self.take()
        if n_tok.kind != "number" or n_tok.unit or not n_tok.text.isdigit():
            _fail(n_tok, "expected how many ticks, a whole number")
        n = int(n_tok.text)
        if not 1 <= n <= MAX_TICKS_BACK:
            _fail(n_tok, f"between 1 and {MAX_TICKS_BACK} ticks")
        self.expect(")", "')'")
        return _Typed(Agg(fn.low, FieldRef(field_tok.low), n), _NUM, fn)


def _describe(kind: str) -> str:
    return f"the text field {kind[5:]!r}" if kind.startswith("text:") else kind


def _text_example(field: str) -> str:
    return {"buildup": "buildup = lb", "segment": "segment = stock"}.get(
        field, "symbol in (NIFTY, BANKNIFTY)"
    )


_PRESET_CACHE: dict[str, Node] = {}


def _preset_condition(name: str) -> Node:
    node = _PRESET_CACHE.get(name)
    if node is None:
        parsed = _Parser(PRESETS[name].condition).scan()
        assert parsed.where is not None
        node = _PRESET_CACHE[name] = parsed.where
    return node


def parse_scan(text: str) -> Scan:
    """The scan in `text`; ScanError naming the word and column otherwise."""
    if not isinstance(text, str):
        raise ScanError("a scan must be text")
    if len(text) > MAX_TEXT:
        raise ScanError(f"the scan is {len(text):,} characters long; at most {MAX_TEXT:,} are read")
    if not text.strip():
        raise ScanError(f"the scan is empty; write a condition, e.g. '{_EXAMPLE}'")
    return _Parser(text).scan()
