"""The scan language: every form reads into the tree it means, precedence, and errors that name
the word and its column. Fuzzing: whatever the text, only ScanError escapes."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.engine.scanner.fields import FIELDS
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
    Not,
    Num,
    Or,
    PresetRef,
    ScanError,
    SymbolIn,
    parse_scan,
)
from optterm.engine.scanner.presets import PRESETS


def where(text: str):
    return parse_scan(text).where


def cmp(field: str, op: str, value: float) -> Compare:
    return Compare(op, FieldRef(field), Num(value))


def test_the_issue_example_reads_whole():
    s = parse_scan(
        "scan fno where fut_oi_chg% > 10 and price_chg% > 1 and ivp > 80 "
        "sort fut_oi_chg% desc limit 20"
    )
    assert s.universe == "fno"
    assert s.where == And(
        (cmp("fut_oi_chg%", ">", 10), cmp("price_chg%", ">", 1), cmp("ivp", ">", 80))
    )
    assert (s.sort, s.descending, s.limit) == (FieldRef("fut_oi_chg%"), True, 20)
    assert s.fields() == ("fut_oi_chg%", "price_chg%", "ivp")


@pytest.mark.parametrize(
    ("op", "canon"),
    [(">", ">"), (">=", ">="), ("<", "<"), ("<=", "<="), ("=", "="), ("==", "="),
     ("!=", "!="), ("<>", "!=")],
)  # fmt: skip
def test_every_comparison(op: str, canon: str):
    assert where(f"pcr {op} 1.5") == cmp("pcr", canon, 1.5)


def test_and_binds_tighter_than_or_and_not_tighter_than_and():
    a, b, c = cmp("pcr", ">", 1), cmp("ivp", ">", 2), cmp("rvol", ">", 3)
    assert where("pcr > 1 or ivp > 2 and rvol > 3") == Or((a, And((b, c))))
    assert where("(pcr > 1 or ivp > 2) and rvol > 3") == And((Or((a, b)), c))
    assert where("not pcr > 1 and ivp > 2") == And((Not(a), b))
    assert where("not (pcr > 1 and ivp > 2)") == Not(And((a, b)))
    assert where("NOT not pcr > 1") == Not(Not(a))


def test_arithmetic_precedence_and_unary_minus():
    assert where("price > vwap + 2 * basis") == Compare(
        ">", FieldRef("price"),
        Arith("+", FieldRef("vwap"), Arith("*", Num(2), FieldRef("basis"))),
    )  # fmt: skip
    assert where("-price_chg% > -1.5") == Compare(">", Neg(FieldRef("price_chg%")), Num(-1.5))
    assert where("(price - low) / low > 0.01").left == Arith(
        "/", Arith("-", FieldRef("price"), FieldRef("low")), FieldRef("low")
    )


def test_between_in_and_their_negations():
    assert where("rvol between 1 and 2.5 and pcr > 1") == And(
        (Between(FieldRef("rvol"), Num(1), Num(2.5)), cmp("pcr", ">", 1))
    )
    assert where("rvol not between 1 and 2") == Not(Between(FieldRef("rvol"), Num(1), Num(2)))
    assert where("dte in (0, 1, 2)") == InList(FieldRef("dte"), (0.0, 1.0, 2.0))
    assert where("buildup in (lb, 'short_covering')") == InList(FieldRef("buildup"), (1.0, 3.0))
    assert where("buildup = sb") == InList(FieldRef("buildup"), (2.0,))
    assert where("segment != index") == Not(InList(FieldRef("segment"), (0.0,)))
    assert where("symbol not in (nifty, 'M&M')") == Not(SymbolIn(("NIFTY", "M&M")))


def test_crossings_lookbacks_and_aggregates():
    assert where("price crosses above vwap") == Cross(True, FieldRef("price"), FieldRef("vwap"))
    assert where("pcr crosses below 0.7") == Cross(False, FieldRef("pcr"), Num(0.7))
    assert where("price > price 15m ago").right == FieldRef("price", ago_s=900.0)
    assert where("price > price 1h ago").right == FieldRef("price", ago_s=3600.0)
    assert where("fut_oi > fut_oi 1d ago").right == FieldRef("fut_oi", days=1)
    assert where("price > price[-3]").right == FieldRef("price", back=3)
    assert where("volume > 2 * avg(volume, 20)").right == Arith(
        "*", Num(2), Agg("avg", FieldRef("volume"), 20)
    )
    assert where("max(high, 5) > min(low, 5)") == Compare(
        ">", Agg("max", FieldRef("high"), 5), Agg("min", FieldRef("low"), 5)
    )


def test_presets_are_conditions_and_alone_bring_their_ranking():
    for name, preset in PRESETS.items():
        s = parse_scan(f"scan fno where {name}")
        assert s.where == PresetRef(name, parse_scan(preset.condition).where)
        field, order = preset.sort.split()
        assert (s.sort, s.descending) == (FieldRef(field), order == "desc")
    s = parse_scan("long_buildup and ivp > 50 sort price_chg% asc")
    assert isinstance(s.where, And) and s.sort == FieldRef("price_chg%") and not s.descending


def test_universe_and_optional_words():
    assert parse_scan("scan stocks where pcr > 1").universe == "stocks"
    assert parse_scan("indices pcr > 1").universe == "indices"
    assert parse_scan("scan indices").where is None
    assert parse_scan("pcr > 1 sort by pcr asc limit 3").limit == 3


def test_every_documented_field_parses():
    for f in FIELDS:
        text = f"{f.name} = none" if f.name == "buildup" else (
            f"{f.name} = stock" if f.name == "segment" else f"{f.name} > 0")  # fmt: skip
        assert parse_scan(text).fields() == (f.name,)


ERRORS = [
    ('price_chg% > "abc"', 3, "column 14", "'price_chg%' is a number and \"abc\" is text"),
    ("fut_oi_chg% > 10 and pirce > 1", 5, "column 22",
     "'pirce' is not a field or a preset (did you mean 'price')"),
    ("pcr >", None, "at the end", "ends too early"),
    ("(pcr > 1", None, "at the end", "')' to close the '(' at word 1"),
    ("pcr", 1, "column 1", "this is a number, not a condition"),
    ("buildup > 2", 2, "column 9", "'buildup' is text"),
    ("buildup = xx", 3, "column 11", "'buildup' is one of none, lb"),
    ("pcr > 1 $", 4, "column 9", "'$' is not part of the language"),
    ("pcr > 1 and 5", 5, "column 13", "'and' joins conditions, and this is a number"),
    ("pcr > 1 limit 0", 5, "column 15", "between 1 and 1000"),
    ("pcr > 1 limit 2.5", 5, "column 15", "whole number"),
    ("pcr > 1 sort buildup", 5, "column 14", "sort by a number field"),
    ("pcr > 1 banana", 4, "column 9", "unexpected here"),
    ("avg(buildup, 3) > 1", 3, "column 5", "avg() takes a number field, and 'buildup' is text"),
    ("price > price 2w ago", 4, "column 15", "not a number or a duration"),
    ("price > price 1000d ago", 4, "column 15", "whole number from 1 to 250"),
    ("price 15m > 1", 3, "column 11", "write 'ago' after the duration"),
    ("price > 15m", 3, "column 9", "a duration goes before 'ago'"),
    ("(pcr > 1) > 2", 1, "column 1", "compares numbers, and this is a condition"),
    ("symbol > 3", 2, "column 8", "'symbol' is text"),
    ("price crosses 5", 3, "column 15", "'above' or 'below'"),
    ("where", None, "at the end", "ends too early"),
    ("price > 1e999", 3, "column 9", "too large"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "word", "where_", "problem"), ERRORS)
def test_errors_name_the_word_and_its_column(text: str, word, where_: str, problem: str):
    with pytest.raises(ScanError) as caught:
        parse_scan(text)
    msg = str(caught.value)
    if word is None:
        assert "cannot read the scan at the end" in msg
    else:
        assert f"cannot read the scan at word {word} (" in msg
        assert where_ in msg
    assert problem in msg, msg
    assert "docs/scanner.md" in msg
    assert "\n" not in msg


def test_empty_huge_and_deep_texts_are_refused_plainly():
    with pytest.raises(ScanError, match="the scan is empty"):
        parse_scan("   ")
    with pytest.raises(ScanError, match="at most 2,000 are read"):
        parse_scan("pcr > 1 and " * 300 + "pcr > 1")
    with pytest.raises(ScanError, match="nested more than 40 deep"):
        parse_scan("(" * 60 + "pcr > 1" + ")" * 60)
    with pytest.raises(ScanError, match="nested more than 40 deep"):
        parse_scan("not " * 60 + "pcr > 1")


def test_a_long_echo_is_clipped():
    with pytest.raises(ScanError) as caught:
        parse_scan("x" * 500 + " > 1")
    assert "(500 characters)" in str(caught.value)


_WORDS = st.sampled_from(
    ["scan", "fno", "stocks", "where", "and", "or", "not", "(", ")", "[", "]", "-1", ",",
     "between", "in", "crosses", "above", "below", "sort", "desc", "limit", "20", "ago", "15m",
     "1d", "avg", "max", "price", "pcr", "buildup", "lb", "symbol", "NIFTY", "long_buildup",
     ">", "<=", "=", "!=", "+", "*", "/", "1.5", "'x'", '"', "0", "1e400", "%", "ivp"]
)  # fmt: skip


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WORDS, max_size=25))
def test_fuzz_word_soup_only_raises_scan_errors(words: list[str]):
    try:
        parse_scan(" ".join(words))
    except ScanError as exc:
        message = str(exc)
    else:
        return
    assert re.search(r"at (word \d+|the end)|the scan is empty", message)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_fuzz_any_text_only_raises_scan_errors(text: str):
    with contextlib.suppress(ScanError):
        parse_scan(text)


_HISTORY_NAMES = ("NIFTY", "AAA", "BBB")


def _context():
    import numpy as np

    from optterm.engine.scanner.frame import Context, History

    rng = np.random.default_rng(0)
    h = History(len(FIELDS), len(_HISTORY_NAMES), depth=8, days=2)
    values = rng.normal(size=(len(FIELDS), len(_HISTORY_NAMES)))
    values[0, 1] = np.nan
    for i in range(5):
        h.push(values + i, 1000.0 + 60 * i)
    h.push_close(values)
    return Context(values + 4, h)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WORDS, max_size=25))
def test_fuzz_whatever_parses_also_evaluates(words: list[str]):
    import warnings

    from optterm.engine.scanner.evaluate import compile_scan

    try:
        scan = parse_scan(" ".join(words))
    except ScanError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning leaks out either
        result = compile_scan(scan, _HISTORY_NAMES).run(_context())
    assert result.matched.shape == (len(_HISTORY_NAMES),)


_NUMERIC = [f.name for f in FIELDS if f.name not in ("buildup", "segment")]
_VALUE = st.one_of(
    st.sampled_from(_NUMERIC),
    st.sampled_from(_NUMERIC).map(lambda f: f"{f}[-2]"),
    st.sampled_from(_NUMERIC).map(lambda f: f"{f} 2m ago"),
    st.sampled_from(_NUMERIC).map(lambda f: f"{f} 1d ago"),
    st.tuples(st.sampled_from(["avg", "min", "max"]), st.sampled_from(_NUMERIC),
              st.integers(1, 9)).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.4f}"),
)  # fmt: skip
_ARITH = st.recursive(
    _VALUE,
    lambda inner: st.tuples(inner, st.sampled_from("+-*/"), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=4,
)
_ATOM = st.one_of(
    st.tuples(_ARITH, st.sampled_from([">", ">=", "<", "<=", "=", "!="]), _ARITH).map(" ".join),
    st.tuples(_ARITH, _ARITH, _ARITH).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}"),
    st.tuples(_ARITH, st.sampled_from(["above", "below"]), _ARITH).map(
        lambda t: f"{t[0]} crosses {t[1]} {t[2]}"
    ),
    st.sampled_from(list(PRESETS)),
    st.just("buildup in (lb, none)"),
    st.just("symbol not in (AAA)"),
)
_CONDITION = st.recursive(
    _ATOM,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({' '.join(t)})"),
        inner.map(lambda c: f"not {c}"),
    ),
    max_leaves=6,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONDITION, st.sampled_from(_NUMERIC), st.booleans())
def test_fuzz_well_formed_scans_parse_and_evaluate(condition: str, key: str, desc: bool):
    import warnings

    from optterm.engine.scanner.evaluate import compile_scan

    text = f"scan fno where {condition} sort {key} {'desc' if desc else 'asc'} limit 2"
    try:
        scan = parse_scan(text)
    except ScanError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:  # only for texts past the size or depth limits
        assert "at most 2,000" in refused or "nested more than" in refused
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compile_scan(scan, _HISTORY_NAMES).run(_context())
    assert len(result.rows) <= 2
