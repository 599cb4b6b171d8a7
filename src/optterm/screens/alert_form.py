"""The alert-rule form: create or edit one rule with the keyboard, or type it in one line.

Every check is the CLI's: the fields become `build_rule` keyword arguments (thresholds read by
`parse_threshold`, so "20%", "25k" and "5x" work as on the command line) and go, with the
channel specs, to the alert book (engine/alerts/book.py), which `optterm alerts` uses too. While
typing, `draft_rule` checks them without side effects; only Save puts a typed URL into the OS
keyring (after every channel has been checked), and the rule stores the reference. A URL is
shown only as its redacted label and is never logged.

`AlertForm(state, rule=None, prefill=None)` dismisses with the saved `AlertRule` (already
written by the book) or None.

Under the title, the form shows what the rule would watch as it is now (spot, the option's LTP,
the PCR, a pattern's confidence, ...) with its source and age, read from the engine's state as
the evaluator reads it (`engine.alerts.evaluate.current_level`); it follows every field change,
every tick (the app calls `on_state` on the screens in view) and the clock.

Over 600 lines because a rule has seventeen fields, each shown only for the kinds that use it and
each read back into the form from the one-line text or a stored rule; the checks themselves are
the book's.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from optterm.engine.alerts.book import (
    AlertBook,
    AlertBookError,
    draft_rule,
    message_for_test,
    send_test_message,
)
from optterm.engine.alerts.evaluate import current_level

# The rule vocabulary (which conditions and metrics a kind takes, which take an option) comes
# from the rules module, so that the form can never offer what build_rule would refuse.
from optterm.engine.alerts.rules import (
    CONDITIONS,
    LEG_METRICS,
    LEVEL_KINDS,
    METRICS,
    RULE_KINDS,
    RuleError,
    default_hysteresis,
    default_metric,
    default_owner,
    default_tolerance,
    format_duration,
    known_symbols,
    parse_duration,
    parse_rule_text,
    parse_threshold,
    rule_channels,
    rule_summary,
    rule_text,
    takes_leg,
)
from optterm.engine.notify.channels import APP
from optterm.market import IST, parse_day
from optterm.model import AlertKind, AlertRule, Channel, Condition, PatternKind, Side
from optterm.present.alerts import channel_result_line, value_text
from optterm.present.chain import data_age, source_label
from optterm.present.time import age_text

if TYPE_CHECKING:
    from optterm.engine.state import EngineState

__all__ = ["AlertForm"]

KIND_LABELS: dict[AlertKind, str] = {
    AlertKind.PRICE: "Price (spot or an option's LTP)",
    AlertKind.OI_CHANGE: "OI change",
    AlertKind.VOLUME_SPIKE: "Volume spike",
    AlertKind.PATTERN_DETECTED: "Pattern detected",
    AlertKind.VOLATILITY: "Volatility (IV, ATM IV, IV rank)",
    AlertKind.PCR: "Put/call ratio (PCR)",
    AlertKind.MAX_PAIN_SHIFT: "Max pain shift",
    AlertKind.STALE_FEED: "Stale feed",
}
METRIC_LABELS: dict[str, str] = {
    "spot": "spot (the underlying)",
    "ltp": "option LTP (strike + side)",
    "iv": "option IV (strike + side)",
    "atm_iv": "ATM IV",
    "iv_rank": "IV rank (0-100)",
}
CONDITION_LABELS: dict[Condition, str] = {
    Condition.ABOVE: "crosses above",
    Condition.BELOW: "crosses below",
    Condition.EQUALS: "equals (± tolerance)",
    Condition.PERCENT_CHANGE: "percent change (in a window)",
}
_TEST_BODY = "This is a test message; the rule has not fired."


# -------------------------------------------------------------------------------- helpers


def _num_text(x: float) -> str:
    """A number for an input field: 25000, 0.7, -50000 (no separators, never an exponent)."""
    if math.isnan(x) or math.isinf(x):
        return ""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return format(Decimal(repr(x)).normalize(), "f")


def _iv_decimal(kind: AlertKind, metric: str, condition: Condition | None) -> bool:
    return (
        kind is AlertKind.VOLATILITY
        and metric in ("iv", "atm_iv")
        and condition is not Condition.PERCENT_CHANGE
    )


def _value_text(x: float, kind: AlertKind, metric: str, condition: Condition | None) -> str:
    """A threshold (or band) as the one-line grammar writes it, so it reads back the same."""
    if _iv_decimal(kind, metric, condition):
        return f"{format((Decimal(repr(x)) * 100).normalize(), 'f')}%"
    return _num_text(x)


def _enum(cls: type[Any], value: Any, default: Any = None) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, cls):
        return value
    name = str(value).strip().upper().replace("-", "_").replace(" ", "_")
    name = {"CALL": "CE", "PUT": "PE"}.get(name, name) if cls is Side else name
    try:
        return cls(name)
    except ValueError:
        return default


def _specs(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


# ------------------------------------------------------------------------------ the values


@dataclass
class _Values:
    """What every field shows (text or an enum), from a rule or build_rule keyword arguments."""

    symbol: str = ""
    kind: AlertKind = AlertKind.PRICE
    metric: str = "spot"
    expiry: str = ""
    strike: str = ""
    side: Side = Side.CE
    pattern: PatternKind = PatternKind.GAMMA_SQUEEZE
    condition: Condition = Condition.ABOVE
    threshold: str = ""
    window: str = ""
    tolerance: str = ""
    rearm: str = ""
    cooldown: str = ""
    once: bool = False
    active_from: str = ""
    active_to: str = ""
    channels: str = APP


def _values_from_kw(kw: Mapping[str, Any], symbols: Sequence[str]) -> _Values:
    """Field values from `build_rule` keyword arguments (parse_rule_text's, a prefill, a rule);
    anything missing gets the form's default."""
    v = _Values(symbol=symbols[0] if symbols else "")
    sym = str(kw.get("symbol") or "").strip().upper()
    if sym:
        v.symbol = sym
    v.kind = _enum(AlertKind, kw.get("kind"), AlertKind.PRICE)
    strike = kw.get("strike")
    if strike is not None and strike != "":
        try:
            v.strike = _num_text(float(str(strike).replace(",", "")))
        except ValueError:
            v.strike = str(strike)
        v.side = _enum(Side, kw.get("side"), Side.CE)
    metrics = METRICS.get(v.kind, ("",))
    metric = str(kw.get("metric") or "").strip().lower()
    if metric not in metrics:
        metric = ""
    if not metric and v.kind in METRICS:
        metric = default_metric(v.kind, bool(v.strike))
    v.metric = metric or metrics[0]
    conditions = CONDITIONS[v.kind]
    v.condition = _enum(Condition, kw.get("condition"), conditions[0])
    if v.condition not in conditions:
        v.condition = conditions[0]
    v.pattern = _enum(PatternKind, kw.get("pattern"), PatternKind.GAMMA_SQUEEZE)
    expiry = kw.get("expiry")
    v.expiry = expiry.isoformat() if isinstance(expiry, date) else str(expiry or "")
    threshold = kw.get("threshold")
    cond = v.condition
    if isinstance(threshold, int | float):
        t = float(threshold)
        if v.kind is AlertKind.STALE_FEED:
            v.threshold = format_duration(t)
        elif v.kind is AlertKind.VOLUME_SPIKE:
            v.threshold = f"{_num_text(t)}x"
        else:
            v.threshold = _value_text(t, v.kind, v.metric, cond)
    elif threshold is not None:
        v.threshold = str(threshold)
    for name, attr in (("window_s", "window"), ("cooldown_s", "cooldown")):
        seconds = kw.get(name)
        if isinstance(seconds, int | float):
            setattr(v, attr, format_duration(float(seconds)))
        elif seconds:
            setattr(v, attr, str(seconds))
    for name in ("tolerance", "hysteresis"):
        band = kw.get(name)
        attr = "rearm" if name == "hysteresis" else name
        if isinstance(band, int | float):
            setattr(v, attr, _value_text(float(band), v.kind, v.metric, cond))
        elif band:
            setattr(v, attr, str(band))
    v.once = kw.get("recurring") is False
    for name in ("active_from", "active_to"):
        when = kw.get(name)
        setattr(v, name, f"{when:%H:%M}" if isinstance(when, time) else str(when or ""))
    channels = kw.get("channels")
    if isinstance(channels, str):
        v.channels = channels
    elif channels:
        v.channels = ", ".join(str(c.ref if isinstance(c, Channel) else c) for c in channels)
    return v


def _rule_kw(rule: AlertRule) -> dict[str, Any]:
    """A stored rule as keyword arguments; bands only where they differ from the default."""
    kw: dict[str, Any] = {
        "symbol": rule.symbol,
        "kind": rule.kind,
        "metric": rule.metric,
        "condition": rule.condition,
        "threshold": rule.threshold,
        "expiry": rule.expiry,
        "strike": rule.strike,
        "side": rule.side,
        "pattern": rule.pattern,
        "cooldown_s": rule.cooldown_s,
        "recurring": rule.recurring,
        "active_from": rule.active_from,
        "active_to": rule.active_to,
        "channels": list(rule.channels),
    }
    if rule.condition is Condition.PERCENT_CHANGE or rule.kind is AlertKind.VOLUME_SPIKE:
        kw["window_s"] = rule.window_s
    if rule.condition is Condition.EQUALS and not math.isclose(
        rule.tolerance,
        default_tolerance(rule.kind, rule.metric, rule.threshold),
        rel_tol=1e-9,
        abs_tol=1e-12,
    ):
        kw["tolerance"] = rule.tolerance
    if not math.isclose(
        rule.hysteresis,
        default_hysteresis(rule.kind, rule.condition, rule.threshold),
        rel_tol=1e-9,
        abs_tol=1e-12,
    ):
        kw["hysteresis"] = rule.hysteresis
    return kw


def _metric_options(kind: AlertKind) -> list[tuple[str, str]]:
    return [(METRIC_LABELS[m], m) for m in METRICS.get(kind, ())] or [("—", "")]


def _condition_options(kind: AlertKind) -> list[tuple[str, Condition]]:
    return [(CONDITION_LABELS[c], c) for c in CONDITIONS[kind]]


def _threshold_hint(kind: AlertKind, metric: str, condition: Condition) -> str:
    if condition is Condition.PERCENT_CHANGE:
        return "size of the move in percent, e.g. 1%"
    if kind is AlertKind.PRICE:
        return "a price, e.g. 25000 or 25k" if metric == "spot" else "a premium, e.g. 150"
    if kind is AlertKind.VOLATILITY:
        return "0-100, e.g. 80" if metric == "iv_rank" else "an IV, e.g. 20%"
    return {
        AlertKind.OI_CHANGE: "contracts, e.g. 50000, 1l or -50k",
        AlertKind.VOLUME_SPIKE: "multiple of the average volume, e.g. 5x",
        AlertKind.PATTERN_DETECTED: "minimum confidence 0-100 (blank: the config's)",
        AlertKind.PCR: "a ratio, e.g. 0.7 or 1.3",
        AlertKind.MAX_PAIN_SHIFT: "points, e.g. 100",
        AlertKind.STALE_FEED: "time without fresh data, e.g. 60s or 2m",
    }[kind]


# -------------------------------------------------------------------------------- the form


def _choice(options: Any, value: Any, wid: str) -> Select[Any]:
    """A compact drop-down that always has a value (the form has no blank choices)."""
    return Select(options, allow_blank=False, value=value, id=wid, compact=True)


class AlertForm(ModalScreen[AlertRule | None]):
    """Create or edit an alert rule (keyboard only; see the module docstring)."""

    DEFAULT_CSS = """
    AlertForm { align: center middle; }
    AlertForm > #dialog {
        width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary 60%; background: $surface; padding: 0 1;
    }
    AlertForm #title { text-style: bold; width: 1fr; }
    AlertForm #current { height: 1; width: 1fr; background: $boost; }
    AlertForm #line { margin: 1 0 0 0; }
    AlertForm #fields { height: auto; margin: 1 0 0 0; }
    AlertForm .row { height: auto; margin: 0 0 0 0; }
    AlertForm .row > Label { width: 16; padding: 0 1 0 0; text-align: right; }
    AlertForm .row > Input { width: 1fr; }
    AlertForm .row > Select { width: 1fr; }
    AlertForm .row > Checkbox { width: 1fr; }
    AlertForm #strike, AlertForm #from, AlertForm #to { width: 16; }
    AlertForm #side { width: 16; margin-left: 2; }
    AlertForm .sep { width: auto; padding: 0 1; }
    AlertForm .hint { color: $text-muted; padding-left: 16; height: auto; }
    AlertForm #preview { color: $success; height: auto; margin-top: 1; }
    AlertForm .error { color: $error; text-style: bold; height: auto; }
    AlertForm #test-result { height: auto; }
    AlertForm #buttons { height: auto; align-horizontal: right; margin-top: 1; }
    AlertForm #buttons Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
        # Arrows move between fields, before a closed Select would take them to open its
        # menu (enter or space opens it); inside an open menu they move through the options.
        Binding("down", "next_field", "Next field", show=False, priority=True),
        Binding("up", "previous_field", "Previous field", show=False, priority=True),
    ]

    def __init__(
        self,
        state: EngineState,
        rule: AlertRule | None = None,
        prefill: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.state = state
        self.settings = state.settings
        self.rule = rule
        self.symbols = known_symbols(self.settings)
        kw: dict[str, Any] = _rule_kw(rule) if rule is not None else dict(prefill or {})
        self._initial = _values_from_kw(kw, self.symbols)
        if self._initial.symbol and self._initial.symbol not in self.symbols:
            self.symbols.append(self._initial.symbol)  # build_rule says why it is refused
        # Channels this rule already has that a user cannot retype (keyring:ID: the URL is
        # only in the keyring): kept as they are when they stay in the field.
        self._kept: dict[str, str] = {}
        if rule is not None:
            labels = rule.channel_labels or rule.channels
            for i, ref in enumerate(rule.channels):
                if ref != APP and not ref.startswith("tag:"):
                    self._kept[ref] = labels[i] if i < len(labels) else ref
        self._kind = self._initial.kind
        self._line: tuple[str, str] | None = None  # (the one-line text, its rule_text)
        self._touched = rule is not None or bool(prefill)
        self._problem: str | None = None
        self._saving = False
        self.saved: AlertRule | None = None

    # ---------------------------------------------------------------------------- layout

    def _row(self, label: str, *widgets: Widget, row_id: str) -> Horizontal:
        return Horizontal(Label(label), *widgets, classes="row", id=row_id)

    def compose(self) -> ComposeResult:
        v = self._initial
        title = f"Edit alert rule {self.rule.id}" if self.rule is not None else "New alert rule"
        with Vertical(id="dialog"):
            yield Static(title, id="title")
            yield Static("", id="current")
            yield Input(
                placeholder="Type the rule in one line, e.g. NIFTY spot crosses above 25000 "
                "(enter fills the form)",
                id="line",
                compact=True,
            )
            with VerticalScroll(id="fields", can_focus=False):
                yield self._row(
                    "Symbol",
                    _choice([(s, s) for s in self.symbols], v.symbol, "symbol"),
                    row_id="row-symbol",
                )
                yield self._row(
                    "Alert on",
                    _choice(
                        [(KIND_LABELS[k], k) for k in RULE_KINDS if k in KIND_LABELS],
                        v.kind,
                        "kind",
                    ),
                    row_id="row-kind",
                )
                yield self._row(
                    "Metric",
                    _choice(_metric_options(v.kind), v.metric, "metric"),
                    row_id="row-metric",
                )
                yield self._row(
                    "Expiry",
                    Input(
                        v.expiry,
                        placeholder="YYYY-MM-DD (blank: the nearest)",
                        id="expiry",
                        compact=True,
                    ),
                    row_id="row-expiry",
                )
                yield self._row(
                    "Strike, side",
                    Input(v.strike, placeholder="e.g. 25000", id="strike", compact=True),
                    _choice([("CE (call)", Side.CE), ("PE (put)", Side.PE)], v.side, "side"),
                    row_id="row-leg",
                )
                yield self._row(
                    "Pattern",
                    _choice([(p.value, p) for p in PatternKind], v.pattern, "pattern"),
                    row_id="row-pattern",
                )
                yield self._row(
                    "Condition",
                    _choice(_condition_options(v.kind), v.condition, "condition"),
                    row_id="row-condition",
                )
                yield self._row(
                    "Threshold",
                    Input(v.threshold, id="threshold", compact=True),
                    row_id="row-threshold",
                )
                yield self._row(
                    "Window",
                    Input(v.window, placeholder="e.g. 15m (blank: 5m)", id="window", compact=True),
                    row_id="row-window",
                )
                yield self._row(
                    "Tolerance",
                    Input(
                        v.tolerance,
                        placeholder="± band (blank: the default)",
                        id="tolerance",
                        compact=True,
                    ),
                    row_id="row-tolerance",
                )
                yield self._row(
                    "Re-arm band",
                    Input(
                        v.rearm,
                        placeholder="blank: 0.1% of the threshold",
                        id="rearm",
                        compact=True,
                    ),
                    row_id="row-rearm",
                )
                yield self._row(
                    "Cooldown",
                    Input(
                        v.cooldown, placeholder="e.g. 10m (blank: 5m)", id="cooldown", compact=True
                    ),
                    row_id="row-cooldown",
                )
                yield self._row(
                    "Repeat",
                    Checkbox("Once: disable after it fires", v.once, id="once", compact=True),
                    row_id="row-once",
                )
                yield self._row(
                    "Active",
                    Input(v.active_from, placeholder="HH:MM", id="from", compact=True),
                    Static("to", classes="sep"),
                    Input(v.active_to, placeholder="HH:MM", id="to", compact=True),
                    Static("(blank: market hours)", classes="sep"),
                    row_id="row-active",
                )
                yield self._row(
                    "Channels",
                    Input(
                        v.channels,
                        placeholder="app, tag:NAME or an Apprise URL; comma-separated",
                        id="channels",
                        compact=True,
                    ),
                    row_id="row-channels",
                )
                yield Static("", id="channel-labels", classes="hint")
            yield Static("", id="preview")
            yield Static("", id="error", classes="error")
            yield Static("", id="test-result")
            with Horizontal(id="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Send test", id="send-test", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    _CHROME = 15  # rows around the fields: border, title, value now, one line, messages, buttons…

    def on_resize(self, event: events.Resize) -> None:
        """The fields scroll when the terminal is short; the buttons and messages stay put."""
        self.query_one("#fields").styles.max_height = max(4, event.size.height - self._CHROME)

    def on_mount(self) -> None:
        self.query_one("#fields").styles.max_height = max(4, self.size.height - self._CHROME)
        self._remember()
        self._sync()
        self._validate()
        self.set_interval(1.0, self._show_current)  # ages move between ticks
        if self.rule is None and "apprise" not in sys.modules:
            self._warm_up()
        self.query_one("#line", Input).focus()

    @work(thread=True, group="alert-form-warmup", exit_on_error=False)
    def _warm_up(self) -> None:
        """Import Apprise off the event loop (~0.3 s), so typed URLs can be checked as typed."""
        import apprise  # noqa: F401

    # -------------------------------------------------------------------------- reading

    def _select(self, wid: str) -> Any:
        value = self.query_one(f"#{wid}", Select).value
        return None if value is Select.NULL else value

    def _text(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value.strip()

    @property
    def _metric(self) -> str:
        return self._select("metric") or "" if self._kind in METRICS else ""

    @property
    def _condition(self) -> Condition:
        conditions = CONDITIONS[self._kind]
        value = self._select("condition")
        return value if value in conditions else conditions[0]

    def _today(self) -> date:
        return self.state.now().astimezone(self.settings.market.tz).date()

    def _collect(self) -> dict[str, Any]:
        """`build_rule` keyword arguments from the visible fields (RuleError for one that does
        not read); hidden fields are left out, as the CLI leaves out flags not given."""
        kind, metric, cond = self._kind, self._metric, self._condition
        single = len(CONDITIONS[kind]) == 1
        kw: dict[str, Any] = {
            "symbol": self._select("symbol") or "",
            "kind": kind,
            "metric": metric,
            "condition": None if single else cond,
            "recurring": not self.query_one("#once", Checkbox).value,
            "expiry": self._text("expiry") or None,
            "active_from": self._text("from") or None,
            "active_to": self._text("to") or None,
        }
        unit = {"kind": kind, "condition": kw["condition"], "metric": metric}
        if takes_leg(kind, metric) and (strike := self._text("strike")):
            kw["strike"] = strike.replace(",", "")
            kw["side"] = self._select("side")
        if kind is AlertKind.PATTERN_DETECTED:
            kw["pattern"] = self._select("pattern")
        threshold = self._text("threshold")
        kw["threshold"] = None
        if threshold:
            seconds = parse_duration(threshold) if kind is AlertKind.STALE_FEED else None
            try:
                kw["threshold"] = (
                    seconds if seconds is not None else parse_threshold(threshold, **unit)
                )
            except RuleError as exc:
                raise RuleError(f"threshold: {exc}") from None
        for wid, name in (("tolerance", "tolerance"), ("rearm", "hysteresis")):
            text = self._text(wid)
            if text and self.query_one(f"#row-{wid}").display:
                try:
                    kw[name] = parse_threshold(text, **unit)
                except RuleError as exc:
                    raise RuleError(f"{self._label(wid)}: {exc}") from None
        for wid, name in (("window", "window_s"), ("cooldown", "cooldown_s")):
            text = self._text(wid)
            if text and self.query_one(f"#row-{wid}").display:
                seconds = parse_duration(text)
                if seconds is None:
                    raise RuleError(
                        f"{wid} {text!r} is not a duration; write seconds (300) or 90s, 15m, "
                        "1h, 1h30m"
                    )
                kw[name] = seconds
        return kw

    def _label(self, wid: str) -> str:
        return {"rearm": "re-arm band"}.get(wid, wid)

    def _owner(self) -> str:
        return self.rule.owner if self.rule is not None and self.rule.owner else default_owner()

    def _note(self, rule: AlertRule) -> str:
        """The one-line text when the rule is still what it says; else the old note."""
        if self._line is not None and rule_text(rule) == self._line[1]:
            return self._line[0]
        return self.rule.note if self.rule is not None else ""

    def _fields(self) -> dict[str, Any]:
        """The rule's `build_rule` keyword arguments: the fields, the owner, the exchange-local
        day (the app's clock) and the note."""
        fields = {**self._collect(), "owner": self._owner(), "today": self._today()}
        rule = draft_rule(self.settings, fields)
        return {**fields, "note": self._note(rule)}

    def check(self) -> tuple[AlertRule | None, str | None]:
        """(the rule the fields make, None) or (None, what is wrong), without side effects: a
        typed URL is checked by Apprise once it is loaded (see _warm_up), and kept only by Save."""
        specs = _specs(self.query_one("#channels", Input).value)
        try:
            rule = draft_rule(
                self.settings,
                self._fields(),
                specs,
                kept=self._kept,
                check_urls="apprise" in sys.modules,
            )
        except (RuleError, AlertBookError) as exc:
            return None, str(exc)
        return rule, None

    # ------------------------------------------------------------------------ value now

    def on_state(self, state: EngineState) -> None:
        """Called by the app after each tick while the form is in view."""
        self.state = state
        if self.is_mounted:
            self._show_current()

    def _show_current(self) -> None:
        self.query_one("#current", Static).update(self.current_text())

    def _target(self) -> AlertRule:
        """What the fields point at: enough of a rule to read its value (no threshold yet)."""
        kind, metric = self._kind, self._metric
        strike: float | None = None
        side: Side | None = None
        if takes_leg(kind, metric):
            try:
                strike = float(self._text("strike").replace(",", ""))
            except ValueError:
                strike = None
            side = self._select("side") if strike is not None else None
        return AlertRule(
            symbol=self._select("symbol") or "",
            kind=kind,
            condition=self._condition,
            threshold=math.nan,
            expiry=parse_day(self._text("expiry")),
            strike=strike if strike is not None and math.isfinite(strike) else None,
            side=side,
            metric=metric,
            pattern=self._select("pattern"),
        )

    def current_text(self) -> Text:
        """ "Now: NIFTY 27-Nov spot 25,012.30 · SIMULATED via simulator · data 09:30:15 IST ·
        age 3s": the value the rule would watch, as it is in the engine's latest chain."""
        target = self._target()
        symbol, kind = target.symbol, target.kind
        typed = self._text("expiry")
        out = Text.assemble(("Now: ", "bold"))
        if typed and target.expiry is None:
            return out.append(f"n/a: expiry {typed!r} is not a date (YYYY-MM-DD)")
        update = self.state.chain(symbol, target.expiry)
        if update is None:
            which = f" {target.expiry:%d-%b-%Y}" if target.expiry else ""
            return out.append(f"no data for {symbol}{which} yet in this session", style="dim")
        snap, now = update.snapshot, self.state.now()
        age = data_age(snap, now)
        out.append(f"{symbol} {snap.expiry:%d-%b} ")
        if kind is AlertKind.PATTERN_DETECTED:
            pattern = target.pattern
            signals = [
                sig
                for sig in self.state.active_signals
                if sig.symbol == symbol and sig.kind is pattern and sig.expiry == snap.expiry
            ]
            if signals:
                best = max(signals, key=lambda sig: sig.confidence)
                out.append(f"{pattern} {best.direction.value} ")
                out.append(value_text(best.confidence, "confidence"), style="bold")
            else:
                out.append(f"no {pattern} signal")
        elif kind is AlertKind.STALE_FEED:
            out.append("data age ")
            out.append(age_text(age), style="bold")
        elif (kind, target.metric) in LEG_METRICS and target.strike is None:
            what = "LTP" if kind is AlertKind.PRICE else "IV"
            out.append(f"give a strike and side to see the option's {what}", style="dim")
        else:
            level = current_level(target, snap, update.enriched)
            if level is not None:
                out.append(f"{level.name.strip()} ")
                out.append(value_text(level.value, level.unit), style="bold")
                if not math.isfinite(level.value):
                    out.append(f" ({self._why_no_value(target, snap, update.enriched)})")
        when = snap.provider_ts.astimezone(IST).strftime("%H:%M:%S")
        out.append(f" · {source_label(snap)} · data {when} IST · age {age_text(age)}")
        return out

    @staticmethod
    def _why_no_value(target: AlertRule, snap: Any, enriched: Any) -> str:
        if target.strike is not None and not bool((snap.strikes == target.strike).any()):
            return f"no {target.strike:g} strike in this chain"
        if enriched is None:
            return "no analytics for this chain"
        return "the chain has no value for it"

    # ---------------------------------------------------------------------- showing state

    def _show_row(self, wid: str, shown: bool) -> None:
        self.query_one(f"#row-{wid}").display = shown

    def _sync(self) -> None:
        """Show the fields the kind, metric and condition use; hide the rest."""
        kind, metric, cond = self._kind, self._metric, self._condition
        self._show_row("metric", kind in METRICS)
        self._show_row("leg", takes_leg(kind, metric))
        self._show_row("pattern", kind is AlertKind.PATTERN_DETECTED)
        self._show_row("condition", len(CONDITIONS[kind]) > 1)
        self._show_row("window", cond is Condition.PERCENT_CHANGE or kind is AlertKind.VOLUME_SPIKE)
        self._show_row("tolerance", cond is Condition.EQUALS)
        self._show_row(
            "rearm",
            kind in LEVEL_KINDS
            and (cond in (Condition.ABOVE, Condition.BELOW) or bool(self._text("rearm"))),
        )
        self.query_one("#threshold", Input).placeholder = _threshold_hint(kind, metric, cond)

    def _validate(self) -> AlertRule | None:
        rule, problem = self.check()
        self._problem = problem
        error = self.query_one("#error", Static)
        preview = self.query_one("#preview", Static)
        error.update(Text(problem or "") if self._touched else "")
        preview.update(Text(f"✓ {rule_summary(rule)}") if rule is not None else "")
        labels = "→ " + " · ".join(c.label for c in rule_channels(rule)) if rule is not None else ""
        self.query_one("#channel-labels", Static).update(Text(labels))
        self._show_current()
        return rule

    def _error(self, message: str) -> None:
        self.query_one("#error", Static).update(Text(message))

    def _set_kind(self, kind: AlertKind, metric: str = "", condition: Condition | None = None):
        """Offer the metrics and conditions of `kind`, keeping the current ones if they apply."""
        old_metric, old_cond = self._metric, self._condition
        self._kind = kind
        metrics = METRICS.get(kind, ("",))
        conditions = CONDITIONS[kind]
        metric = metric or (old_metric if old_metric in metrics else metrics[0])
        condition = condition or (old_cond if old_cond in conditions else conditions[0])
        with self.prevent(Select.Changed):
            m = self.query_one("#metric", Select)
            m.set_options(_metric_options(kind))
            m.value = metric if metric in metrics else metrics[0]
            c = self.query_one("#condition", Select)
            c.set_options(_condition_options(kind))
            c.value = condition if condition in conditions else conditions[0]
        self._remember()

    def _fill(self, v: _Values) -> None:
        """Put `v` in every field, without the change events (the caller validates once)."""
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            symbol = self.query_one("#symbol", Select)
            if v.symbol not in self.symbols:
                self.symbols.append(v.symbol)
                symbol.set_options([(s, s) for s in self.symbols])
            symbol.value = v.symbol
            self.query_one("#kind", Select).value = v.kind
            self._set_kind(v.kind, v.metric, v.condition)
            self.query_one("#side", Select).value = v.side
            self.query_one("#pattern", Select).value = v.pattern
            for wid, text in (
                ("expiry", v.expiry),
                ("strike", v.strike),
                ("threshold", v.threshold),
                ("window", v.window),
                ("tolerance", v.tolerance),
                ("rearm", v.rearm),
                ("cooldown", v.cooldown),
                ("from", v.active_from),
                ("to", v.active_to),
            ):
                self.query_one(f"#{wid}", Input).value = text
            self.query_one("#once", Checkbox).value = v.once
        self._remember()
        self._sync()

    # -------------------------------------------------------------------------- events

    @on(Input.Submitted, "#line")
    def _line_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        self._touched = True
        try:
            kw = parse_rule_text(text, self.settings)
            if kw.get("kind") is AlertKind.STRATEGY:  # the form has no strategy field
                raise RuleError(
                    "a strategy rule is added as one line: optterm alerts add "
                    f'"{" ".join(text.split())}"'
                )
            values = _values_from_kw(kw, self.symbols)
        except RuleError as exc:
            self._error(str(exc))
            return
        self._fill(values)  # every field but the channels (the grammar has none)
        rule = self._validate()
        self._line = (kw.get("note") or text, rule_text(rule)) if rule is not None else None
        self.query_one("#threshold", Input).focus()

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "line":
            return
        self._touched = True
        self._validate()
        self.focus_next()

    def _remember(self) -> None:
        """Note every field's value: a change event carrying the same value (as widgets post
        when they mount) is not the user's doing."""
        fields = (*self.query(Input), *self.query(Select), *self.query(Checkbox))
        self._seen = {w.id: w.value for w in fields if w.id}

    def _user_changed(self, wid: str | None, value: Any) -> bool:
        if wid is None or self._seen.get(wid, Select.NULL) == value:
            return False
        self._seen[wid] = value
        return True

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "line" or not self._user_changed(event.input.id, event.value):
            return
        self._touched = True
        self._sync()
        self._validate()

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        if self._user_changed(event.checkbox.id, event.value):
            self._touched = True
            self._validate()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if not self._user_changed(event.select.id, event.value):
            return
        self._touched = True
        kind = event.value
        if event.select.id == "kind" and isinstance(kind, AlertKind) and kind is not self._kind:
            self._set_kind(kind)
        self._sync()
        self._validate()

    @on(Button.Pressed, "#save")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#send-test")
    def _test_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_send_test()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    # ------------------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_field", "previous_field"):
            return not any(select.expanded for select in self.query(Select))
        return True

    def action_next_field(self) -> None:
        self.focus_next()

    def action_previous_field(self) -> None:
        self.focus_previous()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        self._touched = True
        if self._validate() is None or self._saving:
            return  # refused (the message says why), or already being saved
        self._saving = True
        self._save()

    def action_send_test(self) -> None:
        self._send_test()

    @work(group="alert-form-save", exit_on_error=False)
    async def _save(self) -> None:
        try:
            await self._write()
        finally:
            self._saving = False

    async def _write(self) -> None:
        store = self.state.store
        if store is None:
            self._error("No database is open in this session, so the rule cannot be saved.")
            return
        specs = _specs(self.query_one("#channels", Input).value)
        book = AlertBook(store, self.settings)
        try:
            fields = self._fields()
            if self.rule is not None and self.rule.id is not None:
                saved = await book.update(self.rule.id, fields, specs, kept=self._kept)
            else:
                saved = await book.add(fields, specs, kept=self._kept)
        except (RuleError, AlertBookError) as exc:
            self._error(str(exc))
            return
        self.saved = saved
        self.dismiss(saved)

    @work(exclusive=True, group="alert-form-test", exit_on_error=False)
    async def _send_test(self) -> None:
        out = self.query_one("#test-result", Static)
        specs = _specs(self.query_one("#channels", Input).value)
        if not specs:
            out.update(Text("Give a channel to test: app, tag:NAME or an Apprise URL."))
            return
        out.update(Text("Sending a test message…"))
        rule, _ = self.check()
        rule_id = self.rule.id if self.rule is not None else None
        title, body = message_for_test(rule, rule_id)
        results = await send_test_message(self.settings, specs, title, body, kept=self._kept)
        out.update(Text("\n".join(["Test:", *(channel_result_line(r) for r in results)])))
