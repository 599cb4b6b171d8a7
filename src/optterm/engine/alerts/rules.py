"""Alert rules: building and validating them, the one-line grammar, and their one-line summary.

`build_rule` is the only way a rule is made: every front end (CLI flags, the one-line form, the
TUI) ends there, so every rule in the store passed the same checks. `parse_rule_text` turns the
one-line form ("NIFTY spot crosses above 25000") into `build_rule` keyword arguments;
`rule_summary` turns a rule back into one line. docs/alerts.md defines the grammar, every field
and every default.

Units: IV thresholds of the `iv` and `atm_iv` metrics are decimals (0.20 = 20 %; the one-line form
takes "20%"); IV rank is 0-100; PERCENT_CHANGE thresholds are percent; STALE_FEED thresholds and
every window and cooldown are seconds.

Why one long module: the grammar, `build_rule` and the summary share the number, unit, date and
duration readers and the vocabulary tables, and `rule_text` must read back through
`parse_rule_text` to the same rule; kept together, a change to a unit or a word cannot reach one
of them and miss the others. The sections are marked and each is small.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, NoReturn

from optterm.infra.clip import clip, quoted
from optterm.market import NSE_INDICES, calendar_for, parse_day, segment_of
from optterm.model import AlertKind, AlertRule, Channel, Condition, PatternKind, Side

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = [
    "CONDITIONS",
    "DEFAULT_COOLDOWN_S",
    "DEFAULT_WINDOW_S",
    "HYSTERESIS_FRACTION",
    "LEG_METRICS",
    "LEG_OPTIONAL",
    "LEVEL_KINDS",
    "METRICS",
    "RULE_KINDS",
    "WINDOWED",
    "RuleError",
    "build_rule",
    "default_hysteresis",
    "default_metric",
    "default_owner",
    "default_tolerance",
    "format_duration",
    "is_rule_sentence",
    "known_symbols",
    "parse_duration",
    "parse_rule_text",
    "parse_threshold",
    "read_rule_words",
    "rule_channels",
    "rule_summary",
    "rule_text",
    "takes_leg",
]

DEFAULT_COOLDOWN_S: Final = 300.0
DEFAULT_WINDOW_S: Final = 300.0
# Default re-arm band of an above/below rule on a level (price, OI change, volume multiple, IV,
# PCR): 0.1 % of |threshold|.
HYSTERESIS_FRACTION: Final = 0.001
_MAX_COOLDOWN_S: Final = 7 * 86_400.0
_MIN_WINDOW_S: Final = 1.0
_MAX_WINDOW_S: Final = 86_400.0
_MAX_STALE_S: Final = 86_400.0
_MAX_IV: Final = 5.0  # 500 %: above this an IV threshold was almost surely written in percent
_MAX_PCR: Final = 100.0
_MAX_PERCENT: Final = 1000.0
_MAX_SPIKE: Final = 1000.0
# Prices no underlying or option reaches (₹1 crore; the dearest NSE share is near ₹1.5 lakh): a
# threshold beyond it can never fire, so it is a typo, not a rule.
_MAX_PRICE: Final = 1e7
_MAX_PAIN_POINTS: Final = 1e6
# Exchanges list options at most about five years out (NIFTY's long-dated ones); an expiry past
# that cannot be listed.
_MAX_EXPIRY_DAYS: Final = 5 * 366 + 31
_MAX_NOTE: Final = 500
_MAX_OWNER: Final = 64

# --- the rule vocabulary: what each kind takes. Public, so that a form can never offer what
# build_rule would refuse.

# Kinds whose value is a level (price, OI change, volume multiple, IV, PCR): above/below rules on
# them get a re-arm band (hysteresis).
LEVEL_KINDS: Final = frozenset(
    {
        AlertKind.PRICE,
        AlertKind.OI_CHANGE,
        AlertKind.VOLUME_SPIKE,
        AlertKind.VOLATILITY,
        AlertKind.PCR,
        AlertKind.STRATEGY,
    }
)
# The conditions each kind takes; a kind with one has it implied (no condition to choose).
CONDITIONS: Final[dict[AlertKind, tuple[Condition, ...]]] = {
    AlertKind.PRICE: (Condition.ABOVE, Condition.BELOW, Condition.EQUALS, Condition.PERCENT_CHANGE),
    AlertKind.OI_CHANGE: (Condition.ABOVE, Condition.BELOW),
    AlertKind.VOLUME_SPIKE: (Condition.ABOVE,),
    AlertKind.PATTERN_DETECTED: (Condition.ABOVE,),
    AlertKind.VOLATILITY: (
        Condition.ABOVE,
        Condition.BELOW,
        Condition.EQUALS,
        Condition.PERCENT_CHANGE,
    ),
    AlertKind.PCR: (Condition.ABOVE, Condition.BELOW, Condition.EQUALS, Condition.PERCENT_CHANGE),
    AlertKind.MAX_PAIN_SHIFT: (Condition.ABOVE,),
    AlertKind.STALE_FEED: (Condition.ABOVE,),
    # A P&L or a Greek crosses zero: a percent change of it means nothing.
    AlertKind.STRATEGY: (Condition.ABOVE, Condition.BELOW),
}
# The metrics of the kinds that have more than one value to watch.
METRICS: Final[dict[AlertKind, tuple[str, ...]]] = {
    AlertKind.PRICE: ("spot", "ltp"),
    AlertKind.VOLATILITY: ("iv", "atm_iv", "iv_rank"),
    # engine/savedstrategy.py STRATEGY_METRICS: P&L ₹, delta lots, gamma, theta ₹/day, vega.
    AlertKind.STRATEGY: ("pnl", "delta", "gamma", "theta", "vega"),
}
# Kinds whose value belongs to one option (strike + side): required for these (kind, metric)
# pairs, optional for LEG_OPTIONAL kinds, forbidden for the rest.
LEG_METRICS: Final = frozenset({(AlertKind.PRICE, "ltp"), (AlertKind.VOLATILITY, "iv")})
LEG_OPTIONAL: Final = frozenset({AlertKind.OI_CHANGE, AlertKind.VOLUME_SPIKE})
# Kinds that take a window whatever their condition (the others only with PERCENT_CHANGE).
WINDOWED: Final = frozenset({AlertKind.VOLUME_SPIKE})


def default_metric(kind: AlertKind, leg: bool) -> str:
    """The metric a rule of `kind` watches when none is given: an option's own value when a
    strike is given (ltp, iv), else the underlying's (spot, atm_iv); "" for single-value kinds."""
    if kind is AlertKind.PRICE:
        return "ltp" if leg else "spot"
    if kind is AlertKind.VOLATILITY:
        return "iv" if leg else "atm_iv"
    if kind is AlertKind.STRATEGY:
        return "pnl"
    return ""


def takes_leg(kind: AlertKind, metric: str) -> bool:
    """Whether a rule of `kind` on `metric` may name one option (strike and side)."""
    return (kind, metric) in LEG_METRICS or kind in LEG_OPTIONAL


_EXAMPLES: Final = ("NIFTY spot crosses above 25000", "BANKNIFTY 52000 CE ltp below 350")


class RuleError(ValueError):
    """A rule that cannot be made; the message says what is wrong and how to fix it."""


# ------------------------------------------------------------------------------------- helpers


def known_symbols(settings: Settings) -> list[str]:
    """Symbols a rule may watch: the NSE indices and every symbol in [poller] watch."""
    names = dict.fromkeys(NSE_INDICES)
    names.update(dict.fromkeys(w.symbol for w in settings.poller.watch))
    return list(names)


def _fmt(x: float) -> str:
    """A number as people write it: 25,000 · 0.7 · -50,000 · 12.5 (never in exponent form, and
    exact: the text reads back as the same float)."""
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    text = f"{x:,.6f}".rstrip("0").rstrip(".")
    if float(text.replace(",", "")) == x:
        return text
    return format(Decimal(repr(x)), ",f")


def _huge(x: float) -> str:
    """A number as typed when it is absurdly large (1e+45, not 46 digits of float noise)."""
    return f"{x:g}" if abs(x) >= 1e15 else _fmt(x)


def _pct(x: float) -> str:
    """A decimal as a percent, exactly: 0.2 → 20%, 0.0025 → 0.25%."""
    if math.isnan(x) or math.isinf(x):
        return f"{x}%"
    d = (Decimal(repr(x)) * 100).normalize()
    return f"{format(d, 'f')}%"


def format_duration(seconds: float) -> str:
    """300 → 5m, 90 → 90s, 5400 → 1h30m, 2.5 → 2.5s."""
    if seconds != int(seconds) or seconds < 60 or (seconds % 60 and seconds < 600):
        return f"{_fmt(seconds).replace(',', '')}s"
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")
    return out or "0s"


_UNITS: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86_400.0),
}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")


def parse_duration(text: str) -> float | None:
    """Seconds in "90", "90s", "15m", "1h30m", "2 min"; None when it is not a duration. A
    leading "-" gives a negative number, for `build_rule` to refuse with its own message."""
    t = text.strip().lower().replace(" ", "")
    sign = -1.0 if t.startswith("-") else 1.0
    t = t[1:] if t[:1] in ("-", "+") else t
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return sign * float(t)
    if not t or not re.fullmatch(r"(?:\d+(?:\.\d+)?[a-z]+)+", t):
        return None
    total = 0.0
    for number, unit in _DURATION_PART.findall(t):
        if unit not in _UNITS:
            return None
        total += float(number) * _UNITS[unit]
    return sign * total


def _num_of(text: str) -> tuple[float, str] | None:
    """(value, unit) of "25000", "25,000", "-50k", "1.5l", "2cr", "20%", "5x"; unit is "", "%"
    or "x". Decimal arithmetic, so "0.3%" is exactly what 0.003 would be."""
    m = re.fullmatch(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))([a-z%]*)", text.lower().replace(",", ""))
    if m is None:
        return None
    try:
        value = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2)
    scale = {"": 1, "k": 1000, "l": 100_000, "lakh": 100_000, "lakhs": 100_000, "lac": 100_000,
             "cr": 10_000_000, "crore": 10_000_000}  # fmt: skip
    if suffix in scale:
        return float(value * scale[suffix]), ""
    if suffix == "%":
        return float(value), "%"
    if suffix in ("x", "times"):
        return float(value), "x"
    return None


def _is_iv_decimal(kind: AlertKind, metric: str, condition: Condition | None) -> bool:
    return (
        kind is AlertKind.VOLATILITY
        and metric in ("iv", "atm_iv", "")
        and condition is not Condition.PERCENT_CHANGE
    )


def parse_threshold(
    text: str, *, kind: AlertKind | str, condition: Condition | str | None, metric: str = ""
) -> float:
    """A number typed on the command line for a rule of `kind`: "25000", "50k", "1.5l", "20%"
    (an IV: 0.20; a percent change or IV rank: 20), "5x" (a volume spike)."""
    k = _kind(kind)
    c = _condition(condition) if condition is not None else None
    got = _num_of(text.strip())
    if got is None:
        raise RuleError(f"{text!r} is not a number; write it like 25000, 0.7, 50k, 20% or 5x")
    value, unit = got
    metric = str(metric or "").strip().lower()
    if unit == "%":
        if _is_iv_decimal(k, metric, c):
            return float(Decimal(text.strip().rstrip("%").replace(",", "")) / 100)
        if c is Condition.PERCENT_CHANGE or (k is AlertKind.VOLATILITY and metric == "iv_rank"):
            return value
        raise RuleError(
            f"{text!r}: a percent applies to IV values and percent-change rules only; "
            "write the number in the value's own units"
        )
    if unit == "x" and k is not AlertKind.VOLUME_SPIKE:
        raise RuleError(f"{text!r}: 'x' (a multiple) applies to VOLUME_SPIKE rules only")
    return value


def rule_channels(rule: AlertRule) -> tuple[Channel, ...]:
    """The rule's channels as `Channel`s (reference + redacted label), for the outbox."""
    labels = rule.channel_labels or rule.channels
    return tuple(
        Channel(ref, labels[i] if i < len(labels) else ref) for i, ref in enumerate(rule.channels)
    )


# ----------------------------------------------------------------------------------- build_rule


def _choices(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


# Kinds a rule may have: a scan's entries are alerted from the saved scan itself.
RULE_KINDS: Final = tuple(k for k in AlertKind if k is not AlertKind.SCAN_ENTER)


def _kind(kind: AlertKind | str) -> AlertKind:
    name = str(kind).strip().upper().replace("-", "_").replace(" ", "_")
    if name == AlertKind.SCAN_ENTER:
        raise RuleError(
            'a scan\'s entries are alerted from the saved scan: optterm scans add NAME "SCAN" '
            "--notify app (or tag:NAME)"
        )
    if isinstance(kind, AlertKind):
        return kind
    try:
        return AlertKind(name)
    except ValueError:
        raise RuleError(
            f"alert kind {kind!r} is unknown; use one of {_choices(RULE_KINDS)}"
        ) from None


_CONDITION_ALIASES: Final = {
    "ABOVE": Condition.ABOVE,
    ">": Condition.ABOVE,
    "BELOW": Condition.BELOW,
    "<": Condition.BELOW,
    "EQUALS": Condition.EQUALS,
    "=": Condition.EQUALS,
    "PERCENT_CHANGE": Condition.PERCENT_CHANGE,
    "CHANGE": Condition.PERCENT_CHANGE,
    "CHANGES": Condition.PERCENT_CHANGE,
}


def _condition(condition: Condition | str) -> Condition:
    if isinstance(condition, Condition):
        return condition
    name = str(condition).strip().upper().replace("-", "_").replace(" ", "_")
    if name in _CONDITION_ALIASES:
        return _CONDITION_ALIASES[name]
    raise RuleError(
        f"condition {condition!r} is unknown; use one of above, below, equals or percent_change"
    )


def _pattern(pattern: PatternKind | str) -> PatternKind:
    if isinstance(pattern, PatternKind):
        return pattern
    name = str(pattern).strip().upper().replace("-", "_").replace(" ", "_")
    try:
        return PatternKind(name)
    except ValueError:
        raise RuleError(
            f"pattern {pattern!r} is unknown; use one of {_choices(PatternKind)}"
        ) from None


def _side(side: Side | str) -> Side:
    if isinstance(side, Side):
        return side
    name = {"CALL": "CE", "PUT": "PE", "C": "CE", "P": "PE"}.get(
        str(side).strip().upper(), str(side).strip().upper()
    )
    try:
        return Side(name)
    except ValueError:
        raise RuleError(f"side {side!r} is unknown; use CE (call) or PE (put)") from None


def _time(value: time | str | None, name: str) -> time | None:
    if value is None or isinstance(value, time):
        return value
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if m:
        try:
            return time(int(m.group(1)), int(m.group(2)))
        except ValueError:
            pass
    raise RuleError(f"{name} {value!r} is not a time of day; write it as HH:MM, e.g. 09:30")


def _date(value: date | str | None) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    day = parse_day(str(value))
    if day is not None:
        return day
    raise RuleError(
        f"expiry {value!r} is not a date; write it as YYYY-MM-DD (e.g. 2026-12-29) "
        "or DD-Mon-YYYY (e.g. 29-Dec-2026)"
    )


def _finite(value: float | None, name: str, *, allow_negative: bool = False) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RuleError(f"{name} {value!r} is not a number") from None
    if math.isnan(x) or math.isinf(x):
        raise RuleError(f"{name} must be a finite number, got {value!r}")
    if x < 0 and not allow_negative:
        raise RuleError(f"{name} must not be negative, got {_huge(x)}; use 0 or more")
    return x


def _level_text(kind: AlertKind, metric: str, x: float) -> str:
    """A threshold or band as the one-line form writes it (IVs in percent)."""
    if kind is AlertKind.VOLATILITY and metric in ("iv", "atm_iv"):
        return _pct(x)
    return _fmt(x)


def _what(kind: AlertKind, metric: str) -> str:
    if kind is AlertKind.VOLATILITY:
        return {"iv": "the option's IV", "atm_iv": "ATM IV", "iv_rank": "IV rank"}[metric]
    if kind is AlertKind.PRICE:
        return "the option's LTP" if metric == "ltp" else "spot"
    return kind.value


def _check_threshold(kind: AlertKind, condition: Condition, metric: str, t: float) -> None:
    what = _what(kind, metric)
    if condition is Condition.PERCENT_CHANGE:
        if not 0 < t <= _MAX_PERCENT:
            raise RuleError(
                f"a percent-change threshold is the size of the move in percent, more than 0 "
                f"and at most {_fmt(_MAX_PERCENT)}; got {_huge(t)} (e.g. 1 for a 1% move)"
            )
        return
    if kind is AlertKind.PRICE and t <= 0:
        raise RuleError(f"a threshold for {what} must be a price above 0; got {_huge(t)}")
    if kind is AlertKind.PRICE and t > _MAX_PRICE:
        raise RuleError(
            f"threshold {_huge(t)} for {what} can never be reached (no price comes near "
            f"{_fmt(_MAX_PRICE)}); check the number"
        )
    if kind is AlertKind.MAX_PAIN_SHIFT and t > _MAX_PAIN_POINTS:
        raise RuleError(
            f"threshold {_huge(t)}: max pain can never shift that many points; check the number"
        )
    if kind is AlertKind.OI_CHANGE and abs(t) > 1e12:
        raise RuleError(f"an OI-change threshold of {_huge(t)} contracts cannot be reached")
    if kind is AlertKind.VOLUME_SPIKE and not 1 < t <= _MAX_SPIKE:
        raise RuleError(
            "a VOLUME_SPIKE threshold is a multiple of the average volume, more than 1 and at "
            f"most {_fmt(_MAX_SPIKE)}; got {_huge(t)} (e.g. 5 for five times the average)"
        )
    if kind is AlertKind.PATTERN_DETECTED and not 0 <= t <= 100:
        raise RuleError(
            f"a PATTERN_DETECTED threshold is the minimum confidence, 0 to 100; got {_huge(t)}"
        )
    if kind is AlertKind.VOLATILITY:
        if metric == "iv_rank":
            if not 0 <= t <= 100:
                raise RuleError(f"an IV-rank threshold is 0 to 100; got {_huge(t)}")
        elif not 0 < t <= _MAX_IV:
            hint = (
                f" — did you mean {_fmt(t / 100)} ({_fmt(t)}%)? Thresholds for {what} are "
                f"decimals (0.20 = 20%); the one-line form also takes {_fmt(t)}%"
                if _MAX_IV < t <= 100 * _MAX_IV
                else ""
            )
            raise RuleError(
                f"a threshold for {what} must be an IV above 0 and at most {_fmt(_MAX_IV)} "
                f"({_fmt(_MAX_IV * 100)}%); got {_huge(t)}{hint}"
            )
    if kind is AlertKind.PCR and not 0 < t <= _MAX_PCR:
        raise RuleError(
            f"a PCR threshold is a put/call ratio above 0 (like 0.7 or 1.3); got {_huge(t)}"
        )
    if kind is AlertKind.MAX_PAIN_SHIFT and t <= 0:
        raise RuleError(
            f"a MAX_PAIN_SHIFT threshold is how many points max pain must move, above 0; "
            f"got {_huge(t)} (e.g. 100)"
        )
    if kind is AlertKind.STALE_FEED and not 0 < t <= _MAX_STALE_S:
        raise RuleError(
            "a STALE_FEED threshold is the seconds without fresh data, above 0 and at most "
            f"{_fmt(_MAX_STALE_S)}; got {_huge(t)} (e.g. 60)"
        )


def default_hysteresis(kind: AlertKind, condition: Condition, threshold: float) -> float:
    """0.1 % of |threshold| for above/below rules on a level; 0 for everything else."""
    if kind in LEVEL_KINDS and condition in (Condition.ABOVE, Condition.BELOW):
        return abs(threshold) * HYSTERESIS_FRACTION
    return 0.0


def default_tolerance(kind: AlertKind, metric: str, threshold: float) -> float:
    """The EQUALS band when none is given (docs/alerts.md)."""
    if kind is AlertKind.PCR:
        return 0.01
    if kind is AlertKind.VOLATILITY:
        return 1.0 if metric == "iv_rank" else 0.0025
    return max(abs(threshold) * 0.0005, 0.05)


def default_owner() -> str:
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no user name in the environment or the password database
        return "unknown"


def build_rule(
    settings: Settings,
    *,
    symbol: str,
    kind: AlertKind | str,
    condition: Condition | str | None,
    threshold: float | None,
    expiry: date | str | None = None,
    strike: float | None = None,
    side: Side | str | None = None,
    metric: str = "",
    pattern: PatternKind | str | None = None,
    hysteresis: float | None = None,
    tolerance: float | None = None,
    window_s: float | None = None,
    cooldown_s: float | None = None,
    recurring: bool = True,
    active_from: time | str | None = None,
    active_to: time | str | None = None,
    channels: Sequence[Channel] | None = None,
    owner: str | None = None,
    note: str = "",
    today: date | None = None,
    strategy: str | None = None,
) -> AlertRule:
    """A validated rule (id None), or RuleError saying what is wrong and how to fix it.

    `condition` may be None for kinds that have only one (VOLUME_SPIKE, PATTERN_DETECTED,
    MAX_PAIN_SHIFT, STALE_FEED); `threshold` may be None for PATTERN_DETECTED (then
    [patterns] min_confidence). `metric` "" picks the kind's natural one (PRICE: ltp with a
    strike, else spot; VOLATILITY: iv with a strike, else atm_iv). `channels` None means in-app
    only. `today` (exchange-local) is for tests: an expiry before it is refused.

    The checks run in the order of the sections below, so the first problem reported is the
    first one a person would fix: what is watched, when it fires, its bands, windows and
    timing, then who is told and where.
    """
    what = _watched(settings, symbol, kind, metric, strike, side, strategy)
    when = _fires(settings, what, condition, threshold, pattern)
    hyst, tol = _bands(what, when, hysteresis, tolerance)
    win = _window(what, when, window_s)
    cool = _cooldown(cooldown_s)
    exp = _expiry(settings, expiry, today)
    start, end = _active_window(settings, what.symbol, active_from, active_to)
    chans, who, text = _audience(channels, owner, note)
    return AlertRule(
        symbol=what.symbol,
        kind=what.kind,
        condition=when.condition,
        threshold=when.threshold,
        expiry=exp,
        strike=what.strike,
        side=what.side,
        metric=what.metric,
        pattern=when.pattern,
        hysteresis=hyst,
        tolerance=tol,
        window_s=win,
        cooldown_s=cool,
        recurring=bool(recurring),
        active_from=start,
        active_to=end,
        channels=tuple(c.ref for c in chans),
        channel_labels=tuple(c.label for c in chans),
        owner=who,
        note=text,
        strategy=what.strategy,
    )


# --- what is watched


@dataclasses.dataclass(frozen=True, slots=True)
class _Watched:
    symbol: str
    kind: AlertKind
    metric: str
    strike: float | None
    side: Side | None
    strategy: str | None = None


def _watched(
    settings: Settings,
    symbol: str,
    kind: AlertKind | str,
    metric: str,
    strike: float | None,
    side: Side | str | None,
    strategy: str | None = None,
) -> _Watched:
    """The symbol, kind and metric, and the option (strike and side) if the kind takes one."""
    sym = str(symbol or "").strip().upper()
    if _kind(kind) is AlertKind.STRATEGY or strategy is not None:
        return _strategy_watched(settings, sym, kind, metric, strike, side, strategy)
    known = known_symbols(settings)
    if not sym:
        raise RuleError(f"a rule needs a symbol; use one of {_choices(known)}")
    if sym not in known:
        raise RuleError(
            f"symbol {quoted(sym)} is not known; use one of {_choices(known)} (add an equity to "
            "[[poller.watch]] in the config to alert on it)"
        )
    k = _kind(kind)
    strike_f, side_e = _leg(sym, strike, side)
    if strike_f is not None:
        _check_grid(sym, strike_f)
    metric = _metric(k, metric, strike_f is not None)
    _check_leg(sym, k, metric, strike_f is not None)
    return _Watched(sym, k, metric, strike_f, side_e)


def _strategy_watched(
    settings: Settings,
    sym: str,
    kind: AlertKind | str,
    metric: str,
    strike: float | None,
    side: Side | str | None,
    strategy: str | None,
) -> _Watched:
    """A saved strategy's P&L or Greek. Its symbol is the strategy's underlying, filled in by
    the alert book from the store ("" until then: a draft)."""
    if _kind(kind) is not AlertKind.STRATEGY:
        raise RuleError(f"a strategy applies only to STRATEGY rules, not {_kind(kind)}")
    name = str(strategy or "").strip()
    if not _STRATEGY_NAME.match(name):
        raise RuleError(
            f"a STRATEGY rule needs a saved strategy's name (got {quoted(name)}); e.g. "
            "strategy my_strangle pnl below -5000 (`optterm strategy list` shows them)"
        )
    if strike is not None or side is not None:
        raise RuleError("a STRATEGY rule watches the whole strategy: leave out strike and side")
    if sym and sym not in known_symbols(settings):
        raise RuleError(f"symbol {quoted(sym)} is not known")
    return _Watched(sym, AlertKind.STRATEGY, _metric(AlertKind.STRATEGY, metric, False), None,
                    None, name)  # fmt: skip


def _leg(
    sym: str, strike: float | None, side: Side | str | None
) -> tuple[float | None, Side | None]:
    strike_f = _finite(strike, "strike")
    side_e = _side(side) if side is not None else None
    if strike_f is not None and side_e is None:
        raise RuleError(
            f"strike {_fmt(strike_f)} needs a side: add CE or PE (e.g. {sym} {_fmt(strike_f)} CE)"
        )
    if side_e is not None and strike_f is None:
        raise RuleError(f"side {side_e} needs a strike (e.g. {sym} 25000 {side_e})")
    if strike_f is not None and strike_f <= 0:
        raise RuleError(f"strike must be above 0, got {_huge(strike_f)}")
    if strike_f is not None and strike_f > _MAX_PRICE:
        # No chain lists such a strike; a huge float also passes the grid check (1e300 % 50 == 0)
        raise RuleError(
            f"strike {_huge(strike_f)} is not a strike any chain lists (at most "
            f"{_fmt(_MAX_PRICE)}); check the number"
        )
    return strike_f, side_e


def _check_grid(sym: str, strike: float) -> None:
    """An index's strikes are multiples of its strike step; an equity's grid is known only from
    its chain, which the alert book checks against the store."""
    index = NSE_INDICES.get(sym)
    if index is None:
        return
    step = index.strike_step
    below = math.floor(strike / step) * step
    if abs(strike - below) > 1e-9 and abs(strike - (below + step)) > 1e-9:
        raise RuleError(
            f"strike {_fmt(strike).replace(',', '')} is not on {sym}'s strike grid (every "
            f"{_fmt(step)} points); use {_fmt(below).replace(',', '')} or "
            f"{_fmt(below + step).replace(',', '')}"
        )


def _metric(k: AlertKind, metric: str, leg: bool) -> str:
    metric = str(metric or "").strip().lower().replace("-", "_").replace(" ", "_")
    if k not in METRICS:
        if metric:
            raise RuleError(
                f"metric {metric!r} applies only to PRICE (spot, ltp) and VOLATILITY (iv, "
                f"atm_iv, iv_rank) rules, not {k}; leave it out"
            )
        return ""
    metric = metric or default_metric(k, leg)
    if metric not in METRICS[k]:
        raise RuleError(
            f"metric {metric!r} does not apply to {k}; use one of {_choices(METRICS[k])}"
        )
    return metric


def _check_leg(sym: str, k: AlertKind, metric: str, leg: bool) -> None:
    if (k, metric) in LEG_METRICS and not leg:
        example = "25000 CE ltp above 150" if metric == "ltp" else "25000 PE iv above 20%"
        other = "spot" if metric == "ltp" else "atm_iv (or iv_rank)"
        raise RuleError(
            f"metric {metric} is an option's own value, so it needs a strike and side "
            f"(e.g. {sym} {example}); for the underlying use {other}"
        )
    if leg and not takes_leg(k, metric):
        what = f"{k} metric {metric}" if metric else str(k)
        raise RuleError(
            f"{what} is about the whole chain, so it takes no strike or side; leave them out"
            + (" (or use metric ltp for the option's price)" if metric == "spot" else "")
            + (" (or use metric iv for the option's IV)" if metric in ("atm_iv", "iv_rank") else "")
        )


# --- when it fires


@dataclasses.dataclass(frozen=True, slots=True)
class _Fires:
    condition: Condition
    threshold: float
    pattern: PatternKind | None


def _fires(
    settings: Settings,
    what: _Watched,
    condition: Condition | str | None,
    threshold: float | None,
    pattern: PatternKind | str | None,
) -> _Fires:
    """The condition, the threshold (checked against the kind's range) and the pattern."""
    k = what.kind
    conditions = CONDITIONS[k]
    if condition is None:
        if len(conditions) > 1:
            raise RuleError(
                f"a {k} rule needs a condition: one of "
                f"{_choices(c.value.lower() for c in conditions)}"
            )
        cond = conditions[0]
    else:
        cond = _condition(condition)
    if cond not in conditions:
        raise RuleError(
            f"condition {cond.value.lower()} does not apply to {k}; use "
            f"{_choices(c.value.lower() for c in conditions)}"
        )
    pat = _pattern(pattern) if pattern is not None else None
    if k is AlertKind.PATTERN_DETECTED and pat is None:
        raise RuleError(
            f"a PATTERN_DETECTED rule needs a pattern kind; use one of {_choices(PatternKind)} "
            f"(e.g. {what.symbol} pattern GAMMA_SQUEEZE confidence 70)"
        )
    if k is not AlertKind.PATTERN_DETECTED and pat is not None:
        raise RuleError(f"a pattern applies only to PATTERN_DETECTED rules, not {k}; leave it out")
    if threshold is None and k is AlertKind.PATTERN_DETECTED:
        threshold = float(settings.patterns.min_confidence)
    if threshold is None:
        raise RuleError(f"a {k} rule needs a threshold")
    t = _finite(threshold, "threshold", allow_negative=True)
    assert t is not None
    _check_threshold(k, cond, what.metric, t)
    return _Fires(cond, t, pat)


# --- bands, windows and timing


def _bands(
    what: _Watched, when: _Fires, hysteresis: float | None, tolerance: float | None
) -> tuple[float, float]:
    """(hysteresis, tolerance): the re-arm band of level rules and the ± band of equals rules."""
    k, cond, t = what.kind, when.condition, when.threshold
    hyst = _finite(hysteresis, "hysteresis")
    if hyst is None:
        hyst = default_hysteresis(k, cond, t)
    elif hyst > 0 and k not in LEVEL_KINDS:
        raise RuleError(
            "hysteresis (the re-arm band) applies only to PRICE, OI_CHANGE, VOLUME_SPIKE, "
            f"VOLATILITY and PCR rules, not to {k}; leave it out"
        )
    else:
        _check_rearm(what, cond, t, hyst)
    tol = _finite(tolerance, "tolerance")
    if cond is not Condition.EQUALS:
        if tol:
            raise RuleError(
                "tolerance applies only to equals rules (threshold ± tolerance); leave it out"
            )
        return hyst, 0.0
    if tol is None:
        return hyst, default_tolerance(k, what.metric, t)
    if tol <= 0:
        raise RuleError(
            "an equals rule needs a tolerance above 0 (it fires on entering threshold ± "
            "tolerance); give one, e.g. within 10, or leave it out for the default"
        )
    return hyst, tol


# The highest value each bounded metric can take: a BELOW rule re-arms above threshold + band.
def _ceiling(what: _Watched) -> float | None:
    if what.kind is AlertKind.VOLATILITY:
        return 100.0 if what.metric == "iv_rank" else None
    return None


def _check_rearm(what: _Watched, cond: Condition, t: float, hyst: float) -> None:
    """Refuse a re-arm band the value can never leave: after firing, an ABOVE rule re-arms
    once the value is back at or below threshold − band, a BELOW rule at or above threshold +
    band. Prices, IVs, PCRs and volume multiples never go below 0; IV rank never above 100."""
    band = _level_text(what.kind, what.metric, hyst)
    level = _level_text(what.kind, what.metric, t)
    signed = (AlertKind.OI_CHANGE, AlertKind.STRATEGY)  # values that go below 0
    if cond is Condition.ABOVE and what.kind not in signed and t - hyst <= 0:
        raise RuleError(
            f"rearm {band} can never re-arm this rule: it re-arms when the value falls back "
            f"to {level} − {band}, 0 or less, which it never reaches; use a band smaller than "
            "the threshold"
        )
    ceiling = _ceiling(what)
    if cond is Condition.BELOW and ceiling is not None and t + hyst > ceiling:
        raise RuleError(
            f"rearm {band} can never re-arm this rule: it re-arms when the value rises back "
            f"to {level} + {band}, above {_fmt(ceiling)}, which it never reaches; use a band "
            f"of at most {_fmt(ceiling - t)}"
        )


def _window(what: _Watched, when: _Fires, window_s: float | None) -> float:
    win = _finite(window_s, "window")
    if win is None:
        return DEFAULT_WINDOW_S
    if when.condition is not Condition.PERCENT_CHANGE and what.kind not in WINDOWED:
        if win != DEFAULT_WINDOW_S:
            raise RuleError(
                "a window applies only to percent-change and VOLUME_SPIKE rules; leave it out"
            )
        return win
    if not _MIN_WINDOW_S <= win <= _MAX_WINDOW_S:
        raise RuleError(
            f"window must be {_fmt(_MIN_WINDOW_S)} s to {_fmt(_MAX_WINDOW_S)} s (1 day); got "
            f"{_fmt(win)} s"
        )
    return win


def _cooldown(cooldown_s: float | None) -> float:
    cool = _finite(cooldown_s, "cooldown")
    if cool is None:
        return DEFAULT_COOLDOWN_S
    if cool > _MAX_COOLDOWN_S:
        raise RuleError(f"cooldown must be at most 7 days ({_fmt(_MAX_COOLDOWN_S)} s)")
    return cool


def _expiry(settings: Settings, expiry: date | str | None, today: date | None) -> date | None:
    exp = _date(expiry)
    if exp is None:
        return None
    if today is None:
        today = datetime.now(settings.market.tz).date()
    if exp < today:
        raise RuleError(
            f"expiry {exp.isoformat()} has already passed; use a current expiry, or leave it "
            "out for the nearest one"
        )
    if (exp - today).days > _MAX_EXPIRY_DAYS:
        raise RuleError(
            f"expiry {exp.isoformat()} is not listed: options are listed at most about 5 years "
            "out; use a listed expiry (`optterm chain SYMBOL` shows them), or leave it out for "
            "the nearest one"
        )
    return exp


def _active_window(
    settings: Settings,
    symbol: str,
    active_from: time | str | None,
    active_to: time | str | None,
) -> tuple[time | None, time | None]:
    """The rule's own hours (exchange-local); one end given means the other end of the
    instrument's session (MCX: 09:00 and 23:55, NSE F&O: the configured hours). Neither given:
    the rule follows the session itself, US-DST close and all (evaluate.py)."""
    start, end = _time(active_from, "--from"), _time(active_to, "--to")
    if (start is None) != (end is None):
        own = calendar_for(segment_of(symbol))
        nse = segment_of(symbol) is None
        start = start or (settings.market.open if nse else own.open)
        end = end or (settings.market.close if nse else own.close)
    if start is not None and end is not None and not start < end:
        raise RuleError(
            f"the active window {start:%H:%M}–{end:%H:%M} is empty; the start must be before the "
            "end (both exchange-local, within one day)"
        )
    return start, end


# --- who and where


def _audience(
    channels: Sequence[Channel] | None, owner: str | None, note: str
) -> tuple[list[Channel], str, str]:
    """(channels, owner, note): in-app when no channel is given; a repeated channel once."""
    if channels is None:
        # channels.py brings the config and the keyring: needed only for this default.
        from optterm.engine.notify.channels import APP

        channels = (Channel(APP, "in-app"),)
    chans: list[Channel] = []
    for c in channels:  # a channel given twice is kept once, where it first appeared
        if all(c.ref != kept.ref for kept in chans):
            chans.append(c)
    if not chans:
        raise RuleError(
            "a rule needs at least one channel; use app (in-app), tag:NAME or an Apprise URL"
        )
    who = (owner if owner is not None else default_owner()).strip()
    if not who or len(who) > _MAX_OWNER:
        raise RuleError(f"owner must be 1-{_MAX_OWNER} characters, got {quoted(who)}")
    text = str(note or "").strip()
    if len(text) > _MAX_NOTE:
        raise RuleError(f"note must be at most {_MAX_NOTE} characters; got {len(text)}")
    return chans, who, text


# ------------------------------------------------------------------------------ the one-line form

_TOKEN: Final = re.compile(
    r"""
      \d{4}-\d{2}-\d{2}(?![\w:])                   # 2026-12-29
    | \d{1,2}-[A-Za-z]{3}-\d{4}(?![\w:])            # 29-Dec-2026
    | \d{1,2}:\d{2}(?:-\d{1,2}:\d{2})?(?![\w:])     # 09:30 or 09:30-15:00
    | >=|<=|\+-|\+/-|±|≥|≤|[<>=]
    | [-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[A-Za-z%][A-Za-z0-9%]*)?   # 25000 20% 5x 15m 1h30m 52000ce
    | [A-Za-z&][A-Za-z0-9&_\-]*                     # words and symbols (M&M, BAJAJ-AUTO)
    | \S                                            # anything else, one character
    """,
    re.VERBOSE,
)
_SIDES: Final = {"ce": Side.CE, "pe": Side.PE, "call": Side.CE, "put": Side.PE,
                 "calls": Side.CE, "puts": Side.PE}  # fmt: skip
_ABOVE: Final = frozenset({"above", "over", ">", ">=", "≥"})
_BELOW: Final = frozenset({"below", "under", "<", "<=", "≤"})
_EQUALS: Final = frozenset({"equals", "equal", "=", "touches", "hits"})
_CHANGES: Final = frozenset({"changes", "change", "moves", "move", "chg"})
_FILLER: Final = frozenset({"crosses", "cross", "goes", "is", "rises", "falls", "drops", "trades"})
_WITHIN: Final = frozenset({"within", "±", "+-", "+/-"})
# store/strategies.py NAME_PATTERN (not imported: the store's tables would come with it).
_STRATEGY_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_STRATEGY_WORDS: Final = {"pnl": "pnl", "p&l": "pnl", "profit": "pnl", "delta": "delta",
                          "gamma": "gamma", "theta": "theta", "vega": "vega"}  # fmt: skip
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}-[A-Za-z]{3}-\d{4}")
_SUBJECT_WORDS: Final = frozenset(
    {"spot", "ltp", "price", "premium", "iv", "ivr", "atm", "pcr", "oi", "volume", "max",
     "maxpain", "pattern", "feed", "stale", *_ABOVE, *_BELOW, *_EQUALS, *_CHANGES}
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    low: str
    index: int  # 1-based word number, as people count


def _tokens(text: str) -> list[_Tok]:
    clean = re.sub(r"(?<=\d),(?=\d)", "", text)
    return [
        _Tok(m.group(0), m.group(0).lower(), i + 1) for i, m in enumerate(_TOKEN.finditer(clean))
    ]


def _quote(word: str) -> str:
    if "://" in word:  # never echo what may be an Apprise URL with its token
        from optterm.engine.notify.channels import redact_url

        word = redact_url(word)
    return quoted(word)


class _Parser:
    def __init__(self, text: str, known: Sequence[str]) -> None:
        self.text = text
        self.known = list(known)  # the symbols a rule may start with
        self.toks = _tokens(text)
        self.pos = 0
        self.out: dict[str, Any] = {}
        self.examples: tuple[str, str] = _EXAMPLES
        # What each part of the rule was first given by (its words), so a second one is refused
        # naming both instead of silently replacing the first.
        self.given: dict[str, tuple[str, _Tok]] = {}

    # -- cursor
    def peek(self, ahead: int = 0) -> _Tok | None:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else None

    def low(self, ahead: int = 0) -> str:
        t = self.peek(ahead)
        return t.low if t is not None else ""

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            self.fail("the rule ends too early", None)
        self.pos += 1
        return tok

    def accept(self, *words: str) -> bool:
        if self.low() in words:
            self.pos += 1
            return True
        return False

    def fail(self, problem: str, tok: _Tok | None) -> NoReturn:
        where = f"at word {tok.index} ({_quote(tok.text)})" if tok is not None else "at the end"
        a, b = self.examples
        raise RuleError(
            f"cannot read the rule {where}: {problem}. Write it like '{a}' or '{b}' "
            "(docs/alerts.md has every form)"
        )

    def claim(self, part: str, words: str, tok: _Tok) -> None:
        """Record that `words` (starting at `tok`) give the rule's `part`; a part given twice
        is a contradiction to refuse, not to resolve by keeping the last."""
        first = self.given.get(part)
        if first is None:
            self.given[part] = (words, tok)
            return
        had, at = first
        if had.lower() == words.lower():
            problem = f"{part} given twice ({words!r} at words {at.index} and {tok.index})"
        else:
            problem = (
                f"{had!r} (word {at.index}) and {words!r} (word {tok.index}) both give the "
                f"rule's {part}"
            )
        self.fail(f"{problem}; keep one", tok)

    # -- values
    def number(self, what: str) -> tuple[float, str, _Tok]:
        tok = self.peek()
        if tok is None or (got := _num_of(tok.low)) is None:
            self.fail(f"expected {what}", tok)
        self.pos += 1
        value, unit = got
        if self.low() in ("x", "times") and unit == "":
            self.pos += 1
            unit = "x"
        elif self.low() in ("%", "percent", "pct") and unit == "":
            self.pos += 1
            unit = "%"
        return value, unit, tok

    def duration(self, what: str) -> float:
        tok = self.peek()
        if tok is None:
            self.fail(f"expected {what}, like 60s, 15m or 1h", None)
        text = tok.low
        if re.fullmatch(r"\d+(?:\.\d+)?", text) and self.low(1) in _UNITS:
            self.pos += 1
            text += self.take().low
        else:
            self.pos += 1
        seconds = parse_duration(text)
        if seconds is None:
            self.fail(f"expected {what}, like 60s, 15m or 1h", tok)
        return seconds

    def window(self) -> None:
        word, tok = self.toks[self.pos - 1], self.peek()
        if tok is not None:
            self.claim("window", f"{word.text} {tok.text}", word)
        self.out["window_s"] = self.duration("the window")

    def clock(self, what: str) -> time:
        tok = self.take()
        try:
            t = _time(tok.text, what)
        except RuleError:
            t = None
        if t is None:
            self.fail(f"expected a time of day (HH:MM, e.g. 09:30) for {what}", tok)
        return t

    # -- the rule
    def parse(self) -> dict[str, Any]:
        if not self.toks:
            self.fail("it is empty", None)
        self.accept("when", "if", "alert")
        if self.low() == "strategy":
            self.strategy()
        else:
            self.symbol()
            self.prefix()
            self.subject()
        self.options()
        self.out["note"] = " ".join(self.text.split())
        return self.out

    def strategy(self) -> None:
        """strategy NAME pnl|delta|gamma|theta|vega above|below N."""
        self.pos += 1
        self.examples = ("strategy my_strangle pnl below -5000", "strategy my_strangle delta > 2")
        tok = self.take()
        if not _STRATEGY_NAME.match(tok.text):
            self.fail("expected a saved strategy's name (`optterm strategy list` shows them)", tok)
        self.out.update(symbol="", kind=AlertKind.STRATEGY, strategy=tok.text)
        what = self.peek()
        metric = _STRATEGY_WORDS.get(self.low())
        if metric is None:
            self.fail("expected what to watch: pnl, delta, gamma, theta or vega", what)
        self.pos += 1
        self.out["metric"] = metric
        self.level()
        if self.out.get("condition") not in CONDITIONS[AlertKind.STRATEGY]:
            self.fail("a strategy's value crosses above or below a number", what)

    def symbol(self) -> None:
        tok = self.take()
        known = self.known
        if tok.low in _SUBJECT_WORDS or _num_of(tok.low) is not None:
            self.fail(f"a rule starts with the underlying's symbol (one of {_choices(known)})", tok)
        sym = tok.text.upper()
        if sym not in known:
            self.fail(
                f"{clip(sym)} is not a known symbol; use one of {_choices(known)} (an equity "
                "must be in [[poller.watch]] of the config)",
                tok,
            )
        self.out["symbol"] = sym

    def prefix(self) -> None:
        """[EXPIRY] [STRIKE SIDE], in either order."""
        while (tok := self.peek()) is not None:
            if tok.low in ("expiry", "exp") or _DATE_RE.fullmatch(tok.text):
                self.expiry()
                continue
            m = re.fullmatch(r"(\d+(?:\.\d+)?)(ce|pe|call|put)", tok.low)
            if m:
                self.claim("option (strike and side)", tok.text, tok)
                self.pos += 1
                self.out["strike"], self.out["side"] = float(m.group(1)), _SIDES[m.group(2)]
                continue
            got = _num_of(tok.low)
            if got is not None and got[1] == "" and self.low(1) in _SIDES:
                side_word = self.low(1)
                self.claim("option (strike and side)", f"{tok.text} {side_word.upper()}", tok)
                self.pos += 1
                self.out["strike"], self.out["side"] = got[0], _SIDES[self.take().low]
                continue
            if got is not None:
                self.fail("a strike needs a side right after it: CE or PE (e.g. 25000 CE)", tok)
            return

    def expiry(self) -> None:
        start = self.peek()
        if self.low() in ("expiry", "exp"):
            self.pos += 1
        tok = self.take()
        assert start is not None
        self.claim("expiry", tok.text, start)
        try:
            self.out["expiry"] = _date(tok.text)
        except RuleError:
            self.fail("expected an expiry date (YYYY-MM-DD or DD-Mon-YYYY)", tok)
        if "expiry" in self.out and self.out["expiry"] is None:
            self.fail("expected an expiry date (YYYY-MM-DD or DD-Mon-YYYY)", tok)

    def subject(self) -> None:
        tok = self.peek()
        w, w1 = self.low(), self.low(1)
        leg = "strike" in self.out
        if w == "spot":
            self.pos += 1
            self.out.update(kind=AlertKind.PRICE, metric="spot")
            self.level()
        elif w in ("ltp", "premium", "price", "last"):
            self.pos += 1
            metric = "ltp" if w in ("ltp", "premium") or leg else "spot"
            self.out.update(kind=AlertKind.PRICE, metric=metric)
            self.level()
        elif w in _ABOVE | _BELOW | _EQUALS | _CHANGES | _FILLER:
            self.out.update(kind=AlertKind.PRICE, metric="ltp" if leg else "spot")
            self.level()
        elif w in ("ivr", "iv_rank", "ivrank") or (w == "iv" and w1 == "rank"):
            self.pos += 2 if w == "iv" else 1
            self.out.update(kind=AlertKind.VOLATILITY, metric="iv_rank")
            self.examples = ("NIFTY iv rank above 80", "NIFTY iv rank below 20")
            self.level()
        elif w in ("atm_iv", "atmiv") or (w == "atm" and w1 == "iv"):
            self.pos += 2 if w == "atm" else 1
            self.out.update(kind=AlertKind.VOLATILITY, metric="atm_iv")
            self.examples = ("NIFTY atm iv below 11%", "NIFTY atm iv changes 10% in 30m")
            self.level()
        elif w == "iv":
            self.pos += 1
            self.out.update(kind=AlertKind.VOLATILITY, metric="iv")
            self.examples = ("NIFTY 25000 PE iv above 20%", "NIFTY atm iv below 11%")
            self.level()
        elif w == "pcr":
            self.pos += 1
            self.out.update(kind=AlertKind.PCR)
            self.examples = ("NIFTY pcr above 1.3", "NIFTY pcr crosses below 0.7")
            self.level()
        elif w in ("oi", "doi"):
            self.pos += 1
            if w == "oi" and not self.accept("change", "chg", "changes"):
                self.fail(
                    "write 'oi change': alerts watch the day's change in open interest, "
                    "not its level",
                    self.peek() or tok,
                )
            self.out.update(kind=AlertKind.OI_CHANGE)
            self.examples = ("NIFTY 25500 CE oi change above 50000", "NIFTY oi change below -1l")
            self.level()
        elif w == "volume":
            self.pos += 1
            self.examples = ("NIFTY volume spike 5x", "NIFTY 25000 CE volume spike 3x in 10m")
            if not self.accept("spike", "spikes"):
                self.fail("expected 'spike' after volume (e.g. volume spike 5x)", self.peek())
            self.out.update(kind=AlertKind.VOLUME_SPIKE, condition=Condition.ABOVE)
            self.accept("above", "over", ">", ">=", "of", "by")
            value, unit, vtok = self.number("the multiple of the average volume, like 5x")
            if unit == "%":
                self.fail("a volume spike is a multiple, like 5x (five times the average)", vtok)
            self.out["threshold"] = value
            if self.low() in ("in", "over", "within", "window"):
                self.pos += 1
                self.window()
        elif w in ("maxpain", "max_pain", "mp") or (w == "max" and w1 == "pain"):
            self.pos += 2 if w == "max" else 1
            self.examples = ("NIFTY max pain shifts by 100", "BANKNIFTY max pain moves 200")
            self.out.update(kind=AlertKind.MAX_PAIN_SHIFT, condition=Condition.ABOVE)
            if not self.accept("shifts", "shift", "moves", "move", "changes", "change", "shifted"):
                self.fail(
                    "expected 'shifts by' and points (e.g. max pain shifts by 100)", self.peek()
                )
            self.accept("by")
            self.accept("at")
            self.accept("least")
            value, unit, vtok = self.number("how many points max pain must move, like 100")
            if unit:
                self.fail("max pain shifts are in points, like 100", vtok)
            self.accept("points", "point", "pts", "pt")
            self.out["threshold"] = value
        elif w == "pattern":
            self.pos += 1
            self.pattern()
        elif w in ("feed", "stale", "data"):
            self.pos += 1
            self.examples = ("NIFTY feed stale 60s", "BANKNIFTY feed stale for 2m")
            if w != "stale" and not self.accept("stale"):
                self.fail("expected 'stale' (e.g. feed stale 60s)", self.peek())
            self.accept("feed", "data")
            self.accept("for", "over", "above", ">", "after", "beyond", "longer")
            self.accept("than")
            self.out.update(kind=AlertKind.STALE_FEED, condition=Condition.ABOVE)
            self.out["threshold"] = self.duration("how long without fresh data")
        else:
            self.fail(
                "expected what to watch: spot, ltp, iv, atm iv, iv rank, pcr, oi change, "
                "volume spike, max pain, pattern or feed stale",
                tok,
            )

    def level(self) -> None:
        """[crosses] above|below N · equals N [within T] · changes N% [in W]."""
        while self.low() in _FILLER:
            self.pos += 1
        kind, metric = self.out["kind"], self.out.get("metric", "")
        tok = self.peek()
        w = self.low()
        if w in _ABOVE or w in _BELOW:
            self.pos += 1
            cond = Condition.ABOVE if w in _ABOVE else Condition.BELOW
            self.out["condition"] = cond
            self.out["threshold"] = self.value(cond)
        elif w in _EQUALS:
            self.pos += 1
            self.accept("to")
            self.out["condition"] = Condition.EQUALS
            self.out["threshold"] = self.value(Condition.EQUALS)
        elif w in _CHANGES:
            self.pos += 1
            self.accept("by")
            self.out["condition"] = Condition.PERCENT_CHANGE
            value, unit, vtok = self.number("the size of the move in percent, like 1%")
            if unit == "x":
                self.fail("a change is in percent, like 1%", vtok)
            self.out["threshold"] = value
            if self.low() in ("in", "within", "over"):
                self.pos += 1
                self.window()
        else:
            what = "spot" if kind is AlertKind.PRICE and metric == "spot" else "the value"
            self.fail(
                f"expected how {what} must move: above N, below N, equals N or changes N% in 15m",
                tok,
            )

    def value(self, cond: Condition) -> float:
        kind, metric = self.out["kind"], self.out.get("metric", "")
        value, unit, tok = self.number("a number")
        if unit == "%":
            if kind is AlertKind.VOLATILITY and metric in ("iv", "atm_iv"):
                return float(Decimal(tok.low.rstrip("%").replace(",", "")) / 100)
            if kind is AlertKind.VOLATILITY and metric == "iv_rank":
                return value
            self.fail("a percent applies to IV thresholds and to 'changes N%' only", tok)
        if unit == "x":
            self.fail("'x' (a multiple) applies to volume spikes only", tok)
        return value

    def pattern(self) -> None:
        self.examples = ("NIFTY pattern GAMMA_SQUEEZE confidence 70", "NIFTY pattern CALL_BUILDUP")
        tok = self.peek()
        if tok is None:
            self.fail(f"expected a pattern kind: {_choices(PatternKind)}", None)
        for n in (3, 2, 1):
            words = [self.low(i) for i in range(n)]
            if not all(words):
                continue
            name = "_".join(words).upper().replace("-", "_")
            if name in PatternKind.__members__:
                self.pos += n
                self.out.update(
                    kind=AlertKind.PATTERN_DETECTED,
                    condition=Condition.ABOVE,
                    pattern=PatternKind(name),
                )
                break
        else:
            self.fail(f"expected a pattern kind: {_choices(PatternKind)}", tok)
        self.accept("with", "at")
        had_word = self.accept("confidence", "conf")
        self.accept("of", "above", "over", ">", ">=", "≥", "at")
        self.accept("least")
        nxt = self.peek()
        if nxt is not None and _num_of(nxt.low) is not None:
            value, unit, vtok = self.number("the minimum confidence, 0-100")
            if unit == "x":
                self.fail("confidence is 0-100", vtok)
            self.out["threshold"] = value
        elif had_word:
            self.fail("expected the minimum confidence, 0-100 (e.g. confidence 70)", nxt)

    def options(self) -> None:
        kind, metric = self.out["kind"], self.out.get("metric", "")
        iv = _is_iv_decimal(kind, metric, self.out.get("condition")) and bool(metric)
        while (tok := self.peek()) is not None:
            w = tok.low
            self.pos += 1
            if w in _WITHIN:
                self.claim("tolerance", self.span(tok), tok)
                self.out["tolerance"] = self.band("tolerance", iv)
            elif w in ("rearm", "re-arm", "hysteresis", "hyst"):
                self.claim("re-arm band", self.span(tok), tok)
                self.accept("by", "at")
                self.out["hysteresis"] = self.band("re-arm band", iv)
            elif w in ("in", "over", "window"):
                self.window()
            elif w in ("cooldown", "cool", "cooldown:"):
                self.claim("cooldown", self.span(tok), tok)
                self.accept("down")
                self.accept("of", "for")
                self.out["cooldown_s"] = self.duration("the cooldown")
            elif w in ("once", "one-shot", "oneshot", "one_shot"):
                self.claim("repetition (once or recurring)", tok.text, tok)
                self.out["recurring"] = False
            elif w in ("recurring", "repeat", "repeating", "always"):
                self.claim("repetition (once or recurring)", tok.text, tok)
                self.out["recurring"] = True
            elif w in ("from", "between"):
                self.claim("active hours", self.span(tok), tok)
                self.out["active_from"] = self.clock("the start")
                if not self.accept("to", "until", "and", "-", "till"):
                    self.fail(
                        "expected 'to' and the end time (e.g. from 09:30 to 15:00)", self.peek()
                    )
                self.out["active_to"] = self.clock("the end")
            elif w in ("until", "till", "to"):
                self.claim("active hours", self.span(tok), tok)
                self.out["active_to"] = self.clock("the end")
            elif re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", w):
                self.claim("active hours", tok.text, tok)
                a, b = w.split("-")
                self.out["active_from"], self.out["active_to"] = (
                    _time(a, "start"),
                    _time(b, "end"),
                )
            elif w in ("expiry", "exp") or _DATE_RE.fullmatch(tok.text):
                self.pos -= 1
                self.expiry()
            else:
                self.fail(
                    "unexpected here; after the condition you may add: within N, in 15m, "
                    "cooldown 10m, rearm N, once, from 09:30 to 15:00",
                    tok,
                )

    def span(self, tok: _Tok) -> str:
        """`tok` and the word after it, as the user wrote them (for naming an option)."""
        nxt = self.peek()
        return f"{tok.text} {nxt.text}" if nxt is not None else tok.text

    def band(self, what: str, iv: bool) -> float:
        value, unit, tok = self.number(f"the {what}")
        if unit == "%":
            if iv:
                return float(Decimal(tok.low.rstrip("%").replace(",", "")) / 100)
            self.fail(f"write the {what} in the value's own units (a percent is for IV only)", tok)
        if unit == "x":
            self.fail(f"write the {what} as a number", tok)
        return value


def parse_rule_text(text: str, settings: Settings) -> dict[str, Any]:
    """The `build_rule` keyword arguments the one-line form sets (see docs/alerts.md), plus
    `note` (the text itself); RuleError, quoting the word it could not read, otherwise."""
    if not isinstance(text, str):
        raise RuleError("the one-line rule must be text")
    return _Parser(text, known_symbols(settings)).parse()


def read_rule_words(text: str, symbols: Sequence[str]) -> dict[str, Any]:
    """`parse_rule_text` with the symbols a rule may start with given instead of read from the
    settings: a backtest spec is read (and refused) before any settings are loaded."""
    if not isinstance(text, str):
        raise RuleError("the one-line rule must be text")
    return _Parser(text, symbols).parse()


def is_rule_sentence(text: str, symbol: str) -> bool:
    """Whether `text` is a rule in the one-line form (on `symbol` or an index), rather than a
    note in someone's own words. A rule's note is often the sentence it was made from; what
    the rule is *now* is `rule_summary`, so messages show that and quote only real notes."""
    try:
        _Parser(text, [*NSE_INDICES, symbol]).parse()
    except Exception:  # RuleError, or any surprise: a note is never worth a failed tick
        return False
    return True


# ------------------------------------------------------------------------------------- summary


def _value_text(rule: AlertRule, x: float) -> str:
    return _level_text(rule.kind, rule.metric, x)


def _core(rule: AlertRule) -> str:
    if rule.kind is AlertKind.STRATEGY:
        cross = "crosses above" if rule.condition is Condition.ABOVE else "crosses below"
        return f"strategy {rule.strategy} {rule.metric} {cross} {_fmt(rule.threshold)}"
    parts = [rule.symbol]
    if rule.expiry is not None:
        parts.append(rule.expiry.isoformat())
    if rule.strike is not None and rule.side is not None:
        parts.append(f"{_fmt(rule.strike).replace(',', '')} {rule.side}")
    k, c, t = rule.kind, rule.condition, rule.threshold
    if k is AlertKind.PATTERN_DETECTED:
        parts += ["pattern", str(rule.pattern), "confidence", _fmt(t)]
    elif k is AlertKind.MAX_PAIN_SHIFT:
        parts += ["max pain shifts by", _fmt(t)]
    elif k is AlertKind.STALE_FEED:
        parts += ["feed stale", format_duration(t)]
    elif k is AlertKind.VOLUME_SPIKE:
        parts += ["volume spike", f"{_fmt(t)}x", "in", format_duration(rule.window_s)]
    else:
        subject = {
            AlertKind.PRICE: rule.metric or "spot",
            AlertKind.OI_CHANGE: "oi change",
            AlertKind.PCR: "pcr",
            AlertKind.VOLATILITY: {"iv": "iv", "atm_iv": "atm iv", "iv_rank": "iv rank"}.get(
                rule.metric, "iv"
            ),
        }[k]
        parts.append(subject)
        if c is Condition.ABOVE:
            parts += ["crosses above", _value_text(rule, t)]
        elif c is Condition.BELOW:
            parts += ["crosses below", _value_text(rule, t)]
        elif c is Condition.EQUALS:
            parts += ["equals", _value_text(rule, t), "within", _value_text(rule, rule.tolerance)]
        else:
            parts += ["changes", f"{_fmt(t)}%", "in", format_duration(rule.window_s)]
    return " ".join(parts)


def _extras(rule: AlertRule, fmt: Callable[[str, str], str]) -> list[str]:
    out = []
    if not math.isclose(
        rule.hysteresis,
        default_hysteresis(rule.kind, rule.condition, rule.threshold),
        rel_tol=1e-9,
        abs_tol=1e-12,
    ):
        pct = rule.condition is Condition.PERCENT_CHANGE
        out.append(
            fmt("rearm", _fmt(rule.hysteresis) if pct else _value_text(rule, rule.hysteresis))
        )
    if rule.cooldown_s != DEFAULT_COOLDOWN_S:
        out.append(fmt("cooldown", format_duration(rule.cooldown_s)))
    if rule.active_from is not None and rule.active_to is not None:
        out.append(fmt("from", f"{rule.active_from:%H:%M} to {rule.active_to:%H:%M}"))
    if not rule.recurring:
        out.append("once")
    return out


def rule_text(rule: AlertRule) -> str:
    """The rule in the one-line form: `parse_rule_text` reads it back to the same rule."""
    return " ".join([_core(rule), *_extras(rule, lambda k, v: f"{k} {v}")])


def rule_summary(rule: AlertRule) -> str:
    """One line a trader reads, e.g. "NIFTY spot crosses above 25,000 · cooldown 10m · once"."""
    return " · ".join([_core(rule), *_extras(rule, lambda k, v: f"{k} {v}")])
