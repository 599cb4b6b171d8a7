"""An alert's value as a trader reads it, one formatter for the CLI, the TUI and notifications."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from optterm.engine.alerts.evaluate import AlertEvaluator, value_unit
from optterm.model import AlertEvent, AlertKind, AlertRule, Condition, Feed, Side
from optterm.present.alerts import event_value_text, value_text
from tests.test_alert_eval import rule, snap


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (25_650.0, "price", "25,650.00"),
        (25_012.3, "price", "25,012.30"),
        (12.5, "price", "12.50"),
        (25_650.0, "points", "25,650"),
        (52_300.0, "oi_change", "+52,300"),
        (-52_300.0, "oi_change", "-52,300"),
        (125_000.0, "oi_change", "+1.25L"),
        (-100_000.0, "oi_change", "-1L"),
        (0.0, "oi_change", "0"),
        (24_000_000.0, "contracts", "2.4Cr"),
        (1_250_000.0, "contracts", "12.5L"),
        (99_999.0, "contracts", "99,999"),
        (1.2666, "ratio", "1.27"),
        (0.1234, "iv", "12.34%"),
        (72.46, "iv_rank", "72.5"),
        (1.234, "percent", "1.23%"),
        (5.25, "multiple", "5.2x"),
        (75.0, "confidence", "75/100"),
        (61.4, "seconds", "61 s"),
        (25_650.0, "number", "25,650.00"),
        (math.nan, "price", "n/a"),
        (math.inf, "ratio", "n/a"),
        (None, "price", "n/a"),
    ],
)
def test_value_text(value: float | None, unit: str, text: str) -> None:
    assert value_text(value, unit) == text


def test_no_unit_is_ever_written_in_exponent_form() -> None:
    for unit in ("price", "points", "oi_change", "contracts", "ratio", "iv", "iv_rank",
                 "percent", "multiple", "confidence", "seconds", "number"):  # fmt: skip
        for value in (25_650.0, 1e9, -3.5e7, 0.000123, 123_456_789.0):
            assert "e" not in value_text(value, unit).lower().replace("cr", ""), (unit, value)


def test_each_rule_has_the_unit_of_the_value_it_watches() -> None:
    def unit(**kw: object) -> str:
        return value_unit(rule(**kw))

    assert unit() == "price"
    assert unit(metric="ltp", strike=25_000.0, side=Side.CE) == "price"
    assert unit(condition=Condition.PERCENT_CHANGE, threshold=1.0) == "percent"
    assert unit(kind=AlertKind.OI_CHANGE) == "oi_change"
    assert unit(kind=AlertKind.PCR) == "ratio"
    assert unit(kind=AlertKind.VOLATILITY, metric="atm_iv") == "iv"
    assert unit(kind=AlertKind.VOLATILITY, metric="iv_rank") == "iv_rank"
    assert unit(kind=AlertKind.VOLUME_SPIKE) == "multiple"
    assert unit(kind=AlertKind.PATTERN_DETECTED) == "confidence"
    assert unit(kind=AlertKind.MAX_PAIN_SHIFT) == "points"
    assert unit(kind=AlertKind.STALE_FEED) == "seconds"


def _fire(r: AlertRule, before: float, after: float, **snap_kw: float) -> AlertEvent:
    ev = AlertEvaluator()
    ev.load([r])
    field = "oi_change" if r.kind is AlertKind.OI_CHANGE else "spot"
    s0 = snap(25_000.0, 0, **{field: before}) if field != "spot" else snap(before, 0)
    s1 = snap(25_000.0, 1, **{field: after}) if field != "spot" else snap(after, 1)
    ev.evaluate([(s0, None)], [], s0.provider_ts)
    (firing,) = ev.evaluate([(s1, None)], [], s1.provider_ts)
    return firing.event


def test_a_notification_writes_oi_in_lakh_and_the_event_carries_its_unit() -> None:
    oi = rule(kind=AlertKind.OI_CHANGE, strike=25_000.0, side=Side.CE, threshold=100_000.0)
    event = _fire(oi, 0.0, 125_000.0)
    assert "OI change +1.25L crossed above +1L" in event.title
    assert ("unit", "oi_change") in event.context
    assert event_value_text(event) == "+1.25L"
    spot = _fire(rule(threshold=25_600.0), 25_500.0, 25_650.0)
    assert spot.title == "NIFTY spot 25,650.00 crossed above 25,600.00"
    assert "spot 25,650.00" in spot.body
    assert event_value_text(spot) == "25,650.00"


def test_an_event_recorded_before_units_falls_back_to_its_kinds_unit() -> None:
    def old(kind: AlertKind, value: float) -> AlertEvent:
        at = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
        return AlertEvent(1, "NIFTY", kind, at, value, 0.0, "t", "b", "sim", Feed.SIMULATED)

    assert event_value_text(old(AlertKind.PRICE, 25_650.0)) == "25,650.00"
    assert event_value_text(old(AlertKind.OI_CHANGE, 250_000.0)) == "+2.5L"
    assert event_value_text(old(AlertKind.PCR, 1.3)) == "1.30"
    assert event_value_text(old(AlertKind.VOLATILITY, 0.1234)) == "0.12"  # IV or IV rank?


def test_the_level_a_rule_watches_is_read_as_the_evaluator_reads_it() -> None:
    from optterm.engine.alerts.evaluate import current_level
    from optterm.engine.analytics.chain import enrich

    s = snap(25_012.3, ltp=12.5, oi_change=125_000.0)
    e = enrich(s)
    spot = current_level(rule(), s, e)
    assert spot is not None and (spot.name, spot.value, spot.unit) == ("spot", 25_012.3, "price")
    leg = current_level(rule(metric="ltp", strike=25_000.0, side=Side.CE), s, None)
    assert leg is not None and (leg.name, leg.value, leg.unit) == ("25000 CE LTP", 12.5, "price")
    oi = current_level(rule(kind=AlertKind.OI_CHANGE, strike=25_000.0, side=Side.PE), s, None)
    assert oi is not None and value_text(oi.value, oi.unit) == "+1.25L"
    # A percent-change rule's level is the price it measures the change on.
    pct = current_level(rule(condition=Condition.PERCENT_CHANGE, threshold=1.0), s, None)
    assert pct is not None and pct.unit == "price" and pct.value == 25_012.3
    pcr = current_level(rule(kind=AlertKind.PCR), s, e)
    assert pcr is not None and pcr.value == e.metrics.pcr_oi and pcr.unit == "ratio"
    # No value rather than a wrong one: an unlisted strike, analytics that did not run.
    missing = current_level(rule(metric="ltp", strike=25_050.0, side=Side.CE), s, e)
    assert missing is not None and math.isnan(missing.value)
    no_iv = current_level(rule(kind=AlertKind.VOLATILITY, metric="atm_iv"), s, None)
    assert no_iv is not None and math.isnan(no_iv.value)
    assert current_level(rule(kind=AlertKind.PATTERN_DETECTED), s, e) is None
    assert current_level(rule(kind=AlertKind.STALE_FEED), s, e) is None
