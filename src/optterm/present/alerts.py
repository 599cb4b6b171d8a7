"""Alert rules as people see them, the same in `optterm alerts`, in the TUI and in the
notifications: the state label of a rule, the line a test message reports per channel, and the
one way an alert's value is written (`value_text`).

Values are written as a trader reads them, never in exponent form: prices with two decimals and
thousands separators (25,650.00), points and seconds as integers (25,650), contracts as
integers up to a lakh and in lakh or crore beyond (52,300 · +1.25L · 2.4Cr), ratios with two
decimals (1.27), IVs as percents (12.34%), multiples as 5.2x. What unit a value is in is the
rule's (`engine.alerts.evaluate.value_unit`); a fired event carries it in its context.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Final

from optterm.model import AlertEvent, AlertKind, AlertRule, RuleState

if TYPE_CHECKING:
    from optterm.engine.alerts.book import ChannelResult
    from optterm.store.alerts import RuleStateRow

__all__ = [
    "STATE_STYLE",
    "UNITS",
    "WAITING",
    "channel_result_line",
    "event_unit",
    "event_value_text",
    "rule_state",
    "toast_body",
    "value_text",
]

# The units an alert's value can be in (see value_text).
UNITS: Final = frozenset(
    {"price", "points", "oi_change", "contracts", "ratio", "iv", "iv_rank", "percent",
     "multiple", "confidence", "seconds", "number"}
)  # fmt: skip
# Events recorded before they carried their unit: the kind's usual one ("number" where the kind
# alone cannot tell, e.g. a VOLATILITY value may be an IV or an IV rank).
_KIND_UNIT: Final = {
    AlertKind.PRICE: "price",
    AlertKind.OI_CHANGE: "oi_change",
    AlertKind.VOLUME_SPIKE: "multiple",
    AlertKind.PATTERN_DETECTED: "confidence",
    AlertKind.VOLATILITY: "number",
    AlertKind.PCR: "ratio",
    AlertKind.MAX_PAIN_SHIFT: "points",
    AlertKind.STALE_FEED: "seconds",
}


def _trim(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".")


def _contracts(x: float, signed: bool) -> str:
    """52,300 below a lakh; 1.25L, 2.4Cr beyond (NSE's units for open interest and volume)."""
    sign = "+" if signed and x > 0 else "-" if x < 0 else ""
    a = abs(x)
    if a >= 1e7:
        return f"{sign}{_trim(a / 1e7, 2)}Cr"
    if a >= 1e5:
        return f"{sign}{_trim(a / 1e5, 2)}L"
    return f"{sign}{a:,.0f}"


def value_text(value: float | None, unit: str) -> str:
    """`value` written in `unit` (one of UNITS; anything else as "number"); "n/a" for none."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "price":
        return f"{value:,.2f}"
    if unit in ("points", "seconds"):
        return f"{value:,.0f}" + (" s" if unit == "seconds" else "")
    if unit in ("oi_change", "contracts"):
        return _contracts(value, signed=unit == "oi_change")
    if unit == "iv":
        return f"{value * 100:.2f}%"
    if unit == "iv_rank":
        return f"{value:.1f}"
    if unit == "percent":
        return f"{value:.2f}%"
    if unit == "multiple":
        return f"{value:.1f}x"
    if unit == "confidence":
        return f"{value:.0f}/100"
    return f"{value:,.2f}"  # ratio, number


def event_unit(event: AlertEvent) -> str:
    """The unit of a fired event's value: recorded with it, else its kind's usual one."""
    for name, unit in event.context:
        if name == "unit" and isinstance(unit, str) and unit in UNITS:
            return unit
    return _KIND_UNIT.get(event.kind, "number")


def event_value_text(event: AlertEvent) -> str:
    """A fired event's value as the CLI's history and the TUI's Alerts screen show it."""
    return value_text(event.value, event_unit(event))


# Beyond the threshold and not fired: it re-arms when the value comes back (not a RuleState:
# the evaluator does not distinguish it from FIRED, people do).
WAITING: Final = "waiting"
STATE_STYLE: Final = {
    RuleState.ARMED.value: "green",
    RuleState.COOLING.value: "yellow",
    RuleState.FIRED.value: "cyan",
    RuleState.DISABLED.value: "dim",
}


def rule_state(rule: AlertRule, st: RuleStateRow | None, now: datetime) -> str:
    """armed · waiting (beyond the threshold, re-arms when it comes back) · cooling down ·
    fired (waiting to re-arm, or a one-shot rule done) · disabled."""
    fired = st is not None and st.fire_count > 0
    if not rule.enabled:
        return RuleState.FIRED.value if (not rule.recurring and fired) else RuleState.DISABLED.value
    last = st.last_fired_at if st is not None else None
    if last is not None and (now - last).total_seconds() < rule.cooldown_s:
        return RuleState.COOLING.value
    if st is not None and not st.armed:
        return RuleState.FIRED.value if fired else WAITING
    return RuleState.ARMED.value


def channel_result_line(r: ChannelResult) -> str:
    """'label: OK', 'label: skipped (…)' or 'label: FAILED: why' (an error that already names
    the label does not say it twice)."""
    if r.ok is None:
        return f"{r.label}: skipped (in-app alerts show in the TUI only)"
    if r.ok:
        return f"{r.label}: OK"
    error = r.error or "unknown error"
    if error.startswith(f"{r.label}: "):
        error = error[len(r.label) + 2 :]
    return f"{r.label}: FAILED: {error}"


def toast_body(title: str, body: str) -> str:
    """An alert's body as a toast shows it under its title: without the lines that only repeat
    the title (a message body starts with it, for channels that show no title)."""
    head = title.strip()
    return "\n".join(line for line in body.splitlines() if line.strip() != head)
