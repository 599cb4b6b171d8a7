"""A backtest spec, typed on one line (the style of the alert and strategy one-liners) or as TOML.

    NIFTY short straddle enter at 09:20 exit at 15:15 sl 30% target 50%
    NIFTY iron condor by delta 0.2 width 2 on mon,tue dte 0-3 hold expiry
    NIFTY enter short straddle when pattern MAX_PAIN confidence >= 70 exit at 15:00
    NIFTY short strangle enter when pcr_oi < 0.7 and atm_iv > 0.12 reenter 1 fill spread 1

The strategy is the strategy builder's (cli/strategy.py's line: a template and optional fixed
strikes and `xN`, or signed legs); the words after it are clauses. docs/backtest.md lists every
clause. Parsing reads no data: a spec that cannot run (an unknown template, a rule that can never
fire) is refused here, before anything is read or stored.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, Final

from optterm.engine.backtest.fills import FillModel
from optterm.infra.clip import quoted
from optterm.market import CURRENCY, segment_of
from optterm.model import PatternKind
from optterm.store.schema import METRIC_FLOATS
from optterm.strategy.errors import StrategyError
from optterm.strategy.line import StrategyLine, parse_line
from optterm.strategy.placement import PLACE_BY, Placement

CDS_OPTION_TICK: Final = 0.0025  # NSE currency options: ₹0.0025

__all__ = ["Amount", "Rule", "Spec", "SpecError", "Term", "parse_spec", "parse_toml_spec"]


class SpecError(ValueError):
    """A spec that cannot run, saying what is wrong and how to write it."""


_CLAUSES: Final = frozenset(
    {"enter", "exit", "sl", "target", "trail", "leg", "hold", "reenter", "on", "dte", "fill",
     "ltp", "futslip", "capital", "expiry", "by", "width"}
)  # fmt: skip
_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALIASES: Final = {"pcr": "pcr_oi", "iv": "atm_iv", "maxpain": "max_pain"}
# Fields that are never negative: a rule asking for one below zero can never fire.
_SIGNED: Final = frozenset(
    {"ce_oi_change", "pe_oi_change", "support_change", "resistance_change", "rr25", "gex"}
)
_OPS: Final = (">=", "<=", ">", "<")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Amount:
    """A stop, target or trail: rupees for the whole position, or % of the entry premium."""

    value: float
    pct: bool

    def rupees(self, premium: float) -> float:
        return abs(premium) * self.value / 100 if self.pct else self.value

    def text(self) -> str:
        return f"{self.value:g}%" if self.pct else f"₹{self.value:g}"


@dataclass(frozen=True, slots=True)
class Term:
    field: str
    op: str
    value: float

    def holds(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        return {">": x > self.value, ">=": x >= self.value, "<": x < self.value,
                "<=": x <= self.value}[self.op]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """An entry rule: a pattern signal (with a least confidence), stored chain metrics each
    compared with a number (all must hold), an alert one-liner (`alert`: its firings over the
    replayed span, engine/backtest/entries.py) or a scan condition (`scan`: when the
    underlying enters its matches over the stored chains)."""

    text: str
    pattern: PatternKind | None = None
    min_confidence: float = 0.0
    terms: tuple[Term, ...] = ()
    alert: str = ""
    scan: str = ""

    @property
    def replayed(self) -> bool:
        """Its firings come from replaying the stored history (an alert rule or a scan), found
        for the whole span before the strategy is played, not read from stored rows."""
        return bool(self.alert or self.scan)


@dataclass(frozen=True, slots=True)
class Spec:
    text: str
    line: StrategyLine
    placement: Placement = field(default_factory=Placement)
    expiry_rank: int = 1  # the N-th expiry listed (stored) on each day, not yet expired
    enter_at: time | None = time(9, 20)
    rule: Rule | None = None
    exit_at: time | None = time(15, 15)
    sl: Amount | None = None
    target: Amount | None = None
    trail: Amount | None = None
    leg_sl: float | None = None  # % of the leg's entry price against it
    leg_target: float | None = None
    hold: str = "intraday"  # or "expiry"
    reenter: int = 0
    weekdays: frozenset[int] | None = None
    dte: tuple[int, int] | None = None
    fill: FillModel = field(default_factory=FillModel)
    capital: float | None = None

    @property
    def symbol(self) -> str:
        return self.line.symbol

    @property
    def leg_ranks(self) -> tuple[int, ...]:
        """Each leg's listed-expiry rank (1 = the nearest), in the strategy's leg order: a
        template's second-expiry legs one rank after `expiry N`, a signed leg's `@N` as N."""
        line = self.line
        if line.template is not None:
            return tuple(self.expiry_rank + g.expiry for g in line.template.legs)
        return tuple(g.expiry if isinstance(g.expiry, int) else self.expiry_rank for g in line.legs)

    @property
    def has_futures(self) -> bool:
        line = self.line
        legs = line.template.legs if line.template is not None else line.legs
        return any(g.kind == "FUT" for g in legs)

    @property
    def calendar(self) -> bool:
        """Legs on two expiries (a calendar or a diagonal)."""
        return len(set(self.leg_ranks)) > 1

    @property
    def strategy_text(self) -> str:
        if self.line.template is not None:
            name = self.line.template.name.replace("_", " ")
            strikes = "/".join(f"{k:g}" for k in self.line.strikes)
            return " ".join(p for p in (name, strikes) if p) + f" x{self.line.multiplier}"
        return " ".join(
            f"{g.lots:+d} {'FUT' if g.strike is None else f'{g.strike:g}{g.kind}'}"
            for g in self.line.legs
        )


def _number(tok: str | None, what: str, example: str) -> float:
    try:
        v = float(str(tok).rstrip("%"))
    except ValueError:
        v = math.nan
    if tok is None or not math.isfinite(v) or v < 0:
        raise SpecError(
            f"{what} needs a number >= 0 after it, e.g. {example}; got {quoted(tok or '')}."
        )
    return v


def _amount(tok: str | None, what: str) -> Amount:
    v = _number(tok, what, f"{what} 30% or {what} 2000")
    if v == 0:
        raise SpecError(f"{what} 0 would exit at once; give a positive amount like {what} 30%.")
    return Amount(v, str(tok).endswith("%"))


def _clock(tok: str | None, what: str) -> time:
    m = _TIME.match(tok or "")
    if m is None:
        raise SpecError(
            f"{what} needs a time HH:MM in exchange time, e.g. {what} 09:20; "
            f"got {quoted(tok or '')}."
        )
    return time(int(m.group(1)), int(m.group(2)))


def _unquote(text: str, what: str, example: str) -> str:
    body = text.strip()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    elif body[:1] in ("'", '"'):
        raise SpecError(f"the {what} after `when {what}` has no closing quote; e.g. {example}.")
    if not body:
        raise SpecError(f"`when {what}` needs text, e.g. {example}.")
    return body


def _alert_rule(text: str) -> Rule:
    """`rule "…"`: read by the alert grammar now (its one line naming the word), so a spec
    that cannot run is refused before anything is read; the rule's symbol is checked against
    the watch when it is replayed (entries.py), with the settings."""
    from optterm.engine.alerts.rules import RuleError, read_rule_words
    from optterm.market import NSE_INDICES

    body = _unquote(text, "rule", 'enter when rule "NIFTY pcr crosses below 0.7"')
    first = body.split()[0].upper()
    try:
        words = read_rule_words(body, [*NSE_INDICES, first])
    except RuleError as exc:
        raise SpecError(f"enter when rule: {exc}.") from None
    if words.get("strategy") is not None:
        raise SpecError(
            "a strategy alert is not an entry signal (it watches a position already held); "
            "use a level, crossing or pattern rule."
        )
    return Rule(f'rule "{body}"', alert=body)


def _scan_rule(text: str) -> Rule:
    """`scan "…"`: a scan condition (docs/scanner.md) over the spec's underlying at each
    stored tick, on what a stored chain gives and the chain metrics stored beside it. Refused
    here when it cannot be judged on stored history: a field the store does not keep, or a
    sort/limit (they rank names; an entry needs a time)."""
    import numpy as np

    from optterm.engine.scanner.fields import FIELD_INDEX, derive
    from optterm.engine.scanner.grammar import ScanError, parse_scan
    from optterm.engine.scanner.stored import STORED_COLUMNS

    body = _unquote(text, "scan", 'enter when scan "atm_iv > 15 and straddle_chg% < -10"')
    try:
        scan = parse_scan(body)
    except ScanError as exc:
        raise SpecError(f"enter when scan: {exc}.") from None
    if scan.where is None or scan.sort is not None or scan.limit is not None:
        raise SpecError(
            f"the entry scan {quoted(body)} needs a condition only (no sort or limit: they rank "
            "names, an entry needs a time), e.g. atm_iv > 15."
        )
    from optterm.engine.backtest.entries import FROM_METRICS

    _, why = derive({name: np.ones(1) for name in (*STORED_COLUMNS, *FROM_METRICS)}, 1)
    lacking = [f for f in scan.fields() if f in why]
    if lacking:
        raise SpecError(
            f"the entry scan reads {', '.join(lacking)}, which cannot be computed from stored "
            "history (the store keeps a window of strikes around the money, the chain metrics, "
            "and no futures OI, volume or day range); fields it can judge: "
            + ", ".join(sorted(f for f in FIELD_INDEX if f not in why))
            + "."
        )
    return Rule(f'scan "{body}"', scan=body)


def parse_rule(text: str) -> Rule:
    """An entry rule, or a SpecError; also refused when no data could ever make it fire."""
    toks = text.split()
    if not toks:
        raise SpecError("`enter when` needs a rule, e.g. enter when pcr < 0.7.")
    if toks[0].lower() == "rule":
        return _alert_rule(text.strip()[4:])
    if toks[0].lower() == "scan":
        return _scan_rule(text.strip()[4:])
    if toks[0].lower() == "pattern":
        if len(toks) < 2:
            raise SpecError("`when pattern` needs a pattern name, e.g. when pattern MAX_PAIN.")
        try:
            kind = PatternKind(toks[1].upper())
        except ValueError:
            raise SpecError(
                f"unknown pattern {quoted(toks[1])}; known: "
                + ", ".join(k.value for k in PatternKind)
                + "."
            ) from None
        least = 0.0
        rest = toks[2:]
        if rest:
            if len(rest) != 3 or rest[0].lower() != "confidence" or rest[1] not in (">=", ">"):
                raise SpecError(
                    f"after `pattern {kind.value}` write `confidence >= N` (0–100), got "
                    f"{quoted(' '.join(rest))}."
                )
            least = _number(rest[2], "confidence", "confidence >= 70")
            if rest[1] == ">":
                least = math.floor(least) + 1  # confidences are whole numbers
            if least > 100:
                raise SpecError(
                    f"the entry rule can never fire: a {kind.value} signal's confidence is at "
                    f"most 100, and the rule asks for {' '.join(rest[1:])}."
                )
        return Rule(text, kind, least)
    terms = []
    parts = re.split(r"\s+and\s+", text.strip(), flags=re.I)
    for part in parts:
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)$", part.strip())
        if m is None:
            raise SpecError(
                f"cannot read the rule {quoted(part)}; write FIELD OP NUMBER joined by `and` "
                "(e.g. pcr < 0.7 and atm_iv > 0.12) or `pattern KIND confidence >= N`."
            )
        name = _ALIASES.get(m.group(1).lower(), m.group(1).lower())
        if name not in METRIC_FLOATS:
            raise SpecError(
                f"unknown field {quoted(m.group(1))} in the entry rule; stored fields: "
                + ", ".join(METRIC_FLOATS)
                + "."
            )
        terms.append(Term(name, m.group(2), float(m.group(3))))
    _check_can_fire(text, terms)
    return Rule(text, None, 0.0, tuple(terms))


def t_text(t: Term) -> str:
    return f"{t.field} {t.op} {t.value:g}"


def _check_can_fire(text: str, terms: list[Term]) -> None:
    """A SpecError when the terms on one field leave no value (pcr > 2 and pcr < 1), or ask a
    field that is never negative to be below zero."""
    for name in {t.field for t in terms}:
        lo, lo_open, hi, hi_open = -math.inf, False, math.inf, False
        if name not in _SIGNED:
            lo = 0.0
        for t in (t for t in terms if t.field == name):
            if t.op in (">", ">=") and (t.value > lo or (t.value == lo and t.op == ">")):
                lo, lo_open = t.value, t.op == ">"
            if t.op in ("<", "<=") and (t.value < hi or (t.value == hi and t.op == "<")):
                hi, hi_open = t.value, t.op == "<"
        if lo > hi or (lo == hi and (lo_open or hi_open)):
            why = "is never negative" if name not in _SIGNED and hi <= 0 else "cannot be both"
            raise SpecError(
                f"the entry rule {quoted(text)} can never fire: {name} {why} "
                f"({' and '.join(t_text(t) for t in terms if t.field == name)})."
            )


def _words(text: str) -> list[str]:
    """The spec's words: split on spaces, but a quoted text (an alert rule or scan after
    `when rule` / `when scan`) is one word, so the clause words inside it stay its own."""
    return re.findall(r'"[^"]*"|\'[^\']*\'|\S+', text)


def parse_spec(text: str) -> Spec:
    """The spec `text` describes; a SpecError saying what is wrong otherwise."""
    toks = _words(text)
    if not toks:
        raise SpecError('the spec is empty; write e.g. "NIFTY short straddle enter at 09:20".')
    head: list[str] = [toks[0]]
    i = 1
    while i < len(toks) and toks[i].lower() not in _CLAUSES:
        head.append(toks[i])
        i += 1
    opts: dict[str, Any] = {}
    placement_by: str | None = None
    placement_value: float | None = None
    width = 2
    while i < len(toks):
        word = toks[i].lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        i += 2
        if word == "enter":
            # `enter short straddle at …`: the strategy may follow `enter`.
            while (
                nxt is not None
                and nxt.lower() not in ("at", "when")
                and nxt.lower() not in _CLAUSES
            ):
                head.append(nxt)
                nxt = toks[i] if i < len(toks) else None
                i += 1
            if nxt is None or nxt.lower() not in ("at", "when"):
                raise SpecError("`enter` takes `at HH:MM` or `when RULE`, e.g. enter at 09:20.")
            if nxt.lower() == "at":
                opts["enter_at"] = _clock(toks[i] if i < len(toks) else None, "enter at")
                i += 1
            else:
                j = i
                while j < len(toks) and toks[j].lower() not in _CLAUSES:
                    j += 1
                opts["rule"] = parse_rule(" ".join(toks[i:j]))
                opts["enter_at"] = None
                i = j
        elif word == "exit":
            if nxt is None or nxt.lower() != "at":
                raise SpecError("`exit` takes `at HH:MM`, e.g. exit at 15:15.")
            opts["exit_at"] = _clock(toks[i] if i < len(toks) else None, "exit at")
            i += 1
        elif word in ("sl", "target", "trail"):
            opts[word] = _amount(nxt, word)
        elif word == "leg":
            what = (nxt or "").lower()
            if what not in ("sl", "target"):
                raise SpecError("`leg` takes `sl N%` or `target N%`, e.g. leg sl 50%.")
            tok = toks[i] if i < len(toks) else None
            i += 1
            opts[f"leg_{what}"] = _amount(tok, f"leg {what}").value
        elif word == "hold":
            if (nxt or "").lower() not in ("intraday", "expiry"):
                raise SpecError(
                    "`hold` takes intraday (exit each day) or expiry (hold to settlement)."
                )
            opts["hold"] = str(nxt).lower()
        elif word == "reenter":
            n = _number(nxt, "reenter", "reenter 2")
            opts["reenter"] = int(n)
        elif word == "on":
            days = [d.strip().lower()[:3] for d in (nxt or "").split(",") if d.strip()]
            if not days or any(d not in _WEEKDAYS for d in days):
                raise SpecError(f"`on` takes weekdays like mon,tue,thu; got {quoted(nxt or '')}.")
            opts["weekdays"] = frozenset(_WEEKDAYS.index(d) for d in days)
        elif word == "dte":
            m = re.match(r"^(\d+)(?:-(\d+))?$", nxt or "")
            if m is None:
                raise SpecError(
                    f"`dte` takes days to expiry like 0 or 0-3; got {quoted(nxt or '')}."
                )
            lo = int(m.group(1))
            hi = int(m.group(2) or lo)
            if hi < lo:
                raise SpecError(f"dte {nxt}: write the smaller number first (dte {hi}-{lo}).")
            opts["dte"] = (lo, hi)
        elif word == "fill":
            mode = (nxt or "").lower()
            if mode == "mid":
                opts["fill_k"] = 0.0
            elif mode == "spread":
                opts["fill_k"] = _number(
                    toks[i] if i < len(toks) else None, "fill spread", "fill spread 0.5"
                )
                i += 1
            else:
                raise SpecError(
                    "`fill` takes mid or spread K (K half-spreads from the mid), "
                    "e.g. fill spread 0.5."
                )
        elif word == "ltp":
            opts["ltp_pct"] = _number(nxt, "ltp", "ltp 1%")
        elif word == "futslip":
            opts["fut_pct"] = _number(nxt, "futslip", "futslip 0.01%")
        elif word == "capital":
            opts["capital"] = _number(nxt, "capital", "capital 200000") or None
        elif word == "expiry":
            n = _number(nxt, "expiry", "expiry 1 (the nearest)")
            if n < 1 or n != int(n):
                raise SpecError("expiry N picks the N-th listed expiry each day: 1 (nearest), 2, …")
            opts["expiry_rank"] = int(n)
        elif word == "by":
            if (nxt or "").lower() not in PLACE_BY:
                raise SpecError(
                    f"`by` takes {', '.join(PLACE_BY)} and a value, e.g. by delta 0.25."
                )
            placement_by = str(nxt).lower()
            tok = toks[i] if i < len(toks) else None
            i += 1
            placement_value = _number(tok, f"by {placement_by}", f"by {placement_by} 2")
        elif word == "width":
            width = int(_number(nxt, "width", "width 2"))
        else:  # a word after the clauses began that none of them takes: never dropped silently
            raise SpecError(
                f"{quoted(toks[i - 2])} is not a clause of a backtest spec; the clauses are "
                f"{', '.join(sorted(_CLAUSES))}, and lots go with the strategy (x2 after it)."
            )
    try:
        line = parse_line(" ".join(head))
        placement = Placement(placement_by or "offset", placement_value, width)  # type: ignore[arg-type]
    except StrategyError as exc:
        raise SpecError(str(exc)) from None
    if line.expiry is not None:
        raise SpecError(
            "a backtest picks the expiry each day: write `expiry N` (1 = the nearest listed), "
            "not a date."
        )
    if any(isinstance(g.expiry, date) for g in line.legs):
        raise SpecError(
            "a backtest picks the expiries each day: write a leg's expiry as @N (1 = the "
            "nearest listed), not a date."
        )
    # Currency options trade in quarter paise; NSE F&O and (taken as) MCX options in 0.05.
    tick = CDS_OPTION_TICK if segment_of(line.symbol) == CURRENCY else 0.05
    fill = FillModel(
        opts.pop("fill_k", 0.5), opts.pop("ltp_pct", 1.0), tick, opts.pop("fut_pct", 0.01)
    )
    spec = Spec(text.strip(), line, placement, fill=fill, **opts)
    if spec.calendar:
        _check_calendar(spec)
    if (
        spec.enter_at is not None
        and spec.exit_at is not None
        and spec.hold == "intraday"
        and spec.exit_at <= spec.enter_at
    ):
        raise SpecError(
            f"exit at {spec.exit_at:%H:%M} is not after enter at {spec.enter_at:%H:%M}; "
            "the trade would never be open."
        )
    return spec


def _check_calendar(spec: Spec) -> None:
    """What a calendar or diagonal backtest does not simulate yet, refused in one line."""
    ranks = sorted(set(spec.leg_ranks))
    if len(ranks) > 2:
        raise SpecError(
            f"the legs are on {len(ranks)} expiries; a backtest takes at most two (a calendar "
            "or a diagonal)."
        )
    legs = spec.line.template.legs if spec.line.template is not None else spec.line.legs
    if any(g.kind == "FUT" for g in legs):
        raise SpecError(
            "a futures leg with legs on two expiries is not simulated yet: keep the options "
            "on one expiry, or drop the future."
        )
    given = (("sl", spec.sl), ("target", spec.target), ("trail", spec.trail),
             ("leg sl", spec.leg_sl), ("leg target", spec.leg_target))  # fmt: skip
    stops = [w for w, v in given if v is not None]
    if stops:
        raise SpecError(
            f"{', '.join(stops)} on a calendar (legs on two expiries) is not simulated yet: "
            "exit it at a time (exit at HH:MM) or at the near expiry (hold expiry)."
        )


_TOML_KEYS: Final = (
    "strategy", "enter", "enter_when", "exit", "sl", "target", "trail", "leg_sl", "leg_target",
    "hold", "reenter", "on", "dte", "fill", "ltp", "futslip", "capital", "expiry", "by", "width",
)  # fmt: skip


def parse_toml_spec(text: str, source: str) -> Spec:
    """A spec written as TOML (`symbol` and `strategy`, then the clauses as keys), turned into
    the one-line form and parsed as that: one set of rules for both."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"the spec file {source} is not valid TOML: {exc}.") from None
    unknown = sorted(set(doc) - {"symbol", *_TOML_KEYS})
    if unknown:
        raise SpecError(
            f"the spec file {source}: unknown key {', '.join(unknown)}; known: symbol, "
            + ", ".join(_TOML_KEYS)
            + "."
        )
    if "symbol" not in doc or "strategy" not in doc:
        raise SpecError(f"the spec file {source} needs `symbol` and `strategy`.")
    parts = [str(doc["symbol"]), str(doc["strategy"])]
    for key in _TOML_KEYS[1:]:
        if key not in doc:
            continue
        v = doc[key]
        value = ",".join(map(str, v)) if isinstance(v, list) else str(v)
        word = {"enter": "enter at", "enter_when": "enter when", "exit": "exit at",
                "leg_sl": "leg sl", "leg_target": "leg target"}.get(key, key)  # fmt: skip
        parts.append(f"{word} {value}")
    return parse_spec(" ".join(parts))
