"""Alert rules as people see them, the same in `optterm alerts` and in the TUI: the state label
of a rule and the line a test message reports per channel."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from optterm.model import AlertRule, RuleState

if TYPE_CHECKING:
    from optterm.engine.alerts.book import ChannelResult
    from optterm.store.alerts import RuleStateRow

__all__ = ["STATE_STYLE", "WAITING", "channel_result_line", "rule_state", "toast_body"]

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
