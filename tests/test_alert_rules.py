"""Alert rules: the one-line grammar, validation with its messages, and the summary."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.config import Settings, WatchItem
from optterm.engine.alerts.rules import (
    RuleError,
    build_rule,
    parse_duration,
    parse_rule_text,
    parse_threshold,
    rule_summary,
    rule_text,
)
from optterm.engine.notify.channels import Channel
from optterm.model import AlertKind, Condition, PatternKind, Side

TODAY = date(2026, 11, 24)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"

A, B, E, P = Condition.ABOVE, Condition.BELOW, Condition.EQUALS, Condition.PERCENT_CHANGE


@pytest.fixture(scope="module")
def cfg() -> Settings:
    return Settings()


def build(cfg: Settings, **kw: Any) -> Any:
    kw.setdefault("condition", None)
    kw.setdefault("threshold", None)
    kw.setdefault("owner", "trader")
    return build_rule(cfg, today=TODAY, **kw)


def parsed(text: str, cfg: Settings) -> dict[str, Any]:
    out = parse_rule_text(text, cfg)
    assert out.pop("note") == " ".join(text.split())
    return out


# ------------------------------------------------------------------------------------ grammar

EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "NIFTY spot crosses above 25000",
        dict(symbol="NIFTY", kind=AlertKind.PRICE, metric="spot", condition=A, threshold=25000.0),
    ),
    (
        "NIFTY spot below 24500",
        dict(symbol="NIFTY", kind=AlertKind.PRICE, metric="spot", condition=B, threshold=24500.0),
    ),
    (
        "BANKNIFTY 2026-12-29 52000 CE ltp above 350",
        dict(symbol="BANKNIFTY", expiry=date(2026, 12, 29), strike=52000.0, side=Side.CE,
             kind=AlertKind.PRICE, metric="ltp", condition=A, threshold=350.0),
    ),
    (
        "NIFTY 25000 PE iv above 20%",
        dict(symbol="NIFTY", strike=25000.0, side=Side.PE, kind=AlertKind.VOLATILITY,
             metric="iv", condition=A, threshold=0.2),
    ),
    (
        "NIFTY atm iv below 11%",
        dict(symbol="NIFTY", kind=AlertKind.VOLATILITY, metric="atm_iv", condition=B,
             threshold=0.11),
    ),
    (
        "NIFTY iv rank above 80",
        dict(symbol="NIFTY", kind=AlertKind.VOLATILITY, metric="iv_rank", condition=A,
             threshold=80.0),
    ),
    ("NIFTY pcr above 1.3", dict(symbol="NIFTY", kind=AlertKind.PCR, condition=A, threshold=1.3)),
    (
        "NIFTY pcr crosses below 0.7",
        dict(symbol="NIFTY", kind=AlertKind.PCR, condition=B, threshold=0.7),
    ),
    (
        "NIFTY max pain shifts by 100",
        dict(symbol="NIFTY", kind=AlertKind.MAX_PAIN_SHIFT, condition=A, threshold=100.0),
    ),
    (
        "NIFTY pattern GAMMA_SQUEEZE confidence 70",
        dict(symbol="NIFTY", kind=AlertKind.PATTERN_DETECTED, condition=A,
             pattern=PatternKind.GAMMA_SQUEEZE, threshold=70.0),
    ),
    (
        "NIFTY 25500 CE oi change above 50000",
        dict(symbol="NIFTY", strike=25500.0, side=Side.CE, kind=AlertKind.OI_CHANGE,
             condition=A, threshold=50000.0),
    ),
    (
        "NIFTY volume spike 5x",
        dict(symbol="NIFTY", kind=AlertKind.VOLUME_SPIKE, condition=A, threshold=5.0),
    ),
    (
        "NIFTY spot changes 1% in 15m",
        dict(symbol="NIFTY", kind=AlertKind.PRICE, metric="spot", condition=P, threshold=1.0,
             window_s=900.0),
    ),
    (
        "NIFTY spot equals 25000 within 10",
        dict(symbol="NIFTY", kind=AlertKind.PRICE, metric="spot", condition=E, threshold=25000.0,
             tolerance=10.0),
    ),
    (
        "NIFTY feed stale 60s",
        dict(symbol="NIFTY", kind=AlertKind.STALE_FEED, condition=A, threshold=60.0),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_every_example_form_parses_to_the_expected_kwargs(
    text: str, expected: dict[str, Any], cfg: Settings
) -> None:
    assert parsed(text, cfg) == expected
    assert parsed(text.lower(), cfg) == expected  # case-insensitive
    rule = build(cfg, **expected)
    assert rule.symbol == expected["symbol"] and rule.kind is expected["kind"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nifty SPOT Crosses Above 25,000", dict(threshold=25000.0)),
        ("NIFTY > 25000", dict(kind=AlertKind.PRICE, metric="spot", condition=A)),
        ("BANKNIFTY 52000CE premium <= 350", dict(strike=52000.0, side=Side.CE, metric="ltp")),
        ("BANKNIFTY 52000 call above 350", dict(side=Side.CE, metric="ltp")),
        ("NIFTY 29-Dec-2026 25000 put iv above 0.2",
         dict(expiry=date(2026, 12, 29), threshold=0.2)),
        ("NIFTY oi change below -1.5l", dict(threshold=-150_000.0, condition=B)),
        ("NIFTY oi chg above 50k", dict(kind=AlertKind.OI_CHANGE, threshold=50_000.0)),
        ("NIFTY ivr above 80%", dict(metric="iv_rank", threshold=80.0)),
        ("NIFTY pattern gamma squeeze", dict(pattern=PatternKind.GAMMA_SQUEEZE)),
        ("NIFTY pattern call-buildup with confidence >= 55", dict(threshold=55.0)),
        ("NIFTY stale feed for 2m", dict(kind=AlertKind.STALE_FEED, threshold=120.0)),
        ("NIFTY volume spike 3 times in 10 min", dict(threshold=3.0, window_s=600.0)),
        ("NIFTY spot = 25000 ± 12.5", dict(condition=E, tolerance=12.5)),
        ("NIFTY max pain moves 150 points", dict(threshold=150.0)),
        ("NIFTY atm iv changes by 10% over 1h", dict(condition=P, threshold=10.0, window_s=3600.0)),
        ("NIFTY 25000 PE iv above 20% rearm 0.5%", dict(hysteresis=0.005)),
        ("NIFTY spot above 25000 rearm 50 cooldown 10m once", dict(
            hysteresis=50.0, cooldown_s=600.0, recurring=False)),
        ("NIFTY pcr above 1.3 from 09:30 to 11:00", dict(
            active_from=time(9, 30), active_to=time(11, 0))),
        ("NIFTY pcr above 1.3 between 10:00 and 14:30", dict(active_from=time(10, 0))),
        ("NIFTY pcr above 1.3 09:45-15:00", dict(active_to=time(15, 0))),
        ("when NIFTY spot goes under 24000", dict(condition=B, threshold=24000.0)),
    ],
)  # fmt: skip
def test_other_spellings(text: str, expected: dict[str, Any], cfg: Settings) -> None:
    got = parsed(text, cfg)
    assert {k: got.get(k) for k in expected} == expected
    build(cfg, **got)


def test_every_example_in_the_docs_parses_and_builds(cfg: Settings) -> None:
    examples = set(re.findall(r"`((?:NIFTY|BANKNIFTY)\b[^`]*)`", DOCS.read_text()))
    assert len(examples) >= 20
    for text in sorted(examples):
        build(cfg, **parse_rule_text(text, cfg))


@pytest.mark.parametrize(("text", "expected"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_rule_text_reads_back_as_the_same_rule(
    text: str, expected: dict[str, Any], cfg: Settings
) -> None:
    rule = build(cfg, **expected, cooldown_s=90, recurring=False, active_to="14:00")
    again = build(cfg, **parse_rule_text(rule_text(rule), cfg))
    assert dataclasses.replace(again, note="") == dataclasses.replace(rule, note="")


def test_summaries_read_as_one_line(cfg: Settings) -> None:
    def summary(text: str, **kw: Any) -> str:
        return rule_summary(build(cfg, **{**parse_rule_text(text, cfg), **kw}))

    assert summary("NIFTY spot crosses above 25000") == "NIFTY spot crosses above 25,000"
    assert summary("NIFTY 25000 PE iv above 20%") == "NIFTY 25000 PE iv crosses above 20%"
    assert summary("NIFTY volume spike 5x") == "NIFTY volume spike 5x in 5m"
    assert summary("NIFTY feed stale 90s") == "NIFTY feed stale 90s"
    assert (
        summary("NIFTY pcr below 0.7 cooldown 1h once from 09:30 to 15:00")
        == "NIFTY pcr crosses below 0.7 · cooldown 1h · from 09:30 to 15:00 · once"
    )
    assert summary("NIFTY spot equals 25000") == "NIFTY spot equals 25,000 within 12.5"
    assert "\n" not in summary("NIFTY pattern max pain")


# ------------------------------------------------------------------------------ parse errors


def test_unparseable_text_names_the_word_and_shows_two_examples(cfg: Settings) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule_text("NIFTY spot goes abov 25000", cfg)
    msg = str(err.value)
    assert "word 4 ('abov')" in msg
    assert msg.count("'NIFTY") + msg.count("'BANKNIFTY") >= 2  # two example forms


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "it is empty"),
        ("spot above 25000", "starts with the underlying's symbol"),
        ("NIFTYX spot above 1", "NIFTYX is not a known symbol; use one of NIFTY, BANKNIFTY"),
        ("NIFTY 25000 iv above 20%", "a strike needs a side"),
        ("NIFTY oi above 5", "write 'oi change'"),
        ("NIFTY pcr above", "at the end: expected a number"),
        ("NIFTY pcr above 1.3 extra", "word 5 ('extra')"),
        ("NIFTY pattern NOPE", "expected a pattern kind: CALL_BUILDUP"),
        ("NIFTY spot above 1% ", "a percent applies to IV"),
        ("NIFTY feed stale soon", "like 60s, 15m or 1h"),
        ("NIFTY pcr above 1 from 9:30 to 25:00", "time of day"),
        ("NIFTY 2026-13-45 spot above 1", "expiry date"),
        ("NIFTY spot above 25000 notify tgram://SECRETTOKEN/1", "word 5 ('notify')"),
    ],
)
def test_parse_errors_say_what_and_where(text: str, needle: str, cfg: Settings) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule_text(text, cfg)
    assert needle in str(err.value)
    assert "SECRETTOKEN" not in str(err.value)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_rule_error(text: str) -> None:
    cfg = Settings()
    with contextlib.suppress(RuleError):
        build_rule(cfg, **parse_rule_text(text, cfg), owner="x")


_VOCAB = """
NIFTY BANKNIFTY spot ltp iv atm rank pcr oi change volume spike max pain pattern feed stale above
below equals changes crosses within in cooldown rearm once from to between and 25000 20% 5x 15m
-1l 1.5 CE PE 2026-12-29 09:30 15:00 gamma squeeze confidence ± = > % by 99999999999999999999999
.5 1. 29-Feb-2027 99:99
"""
WORDS = tuple(_VOCAB.split())


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=10))
def test_near_miss_sentences_raise_only_rule_error(words: list[str]) -> None:
    cfg = Settings()
    with contextlib.suppress(RuleError):
        build_rule(cfg, **parse_rule_text(" ".join(words), cfg), owner="x")


# -------------------------------------------------------------------------------- validation


def spot(**kw: Any) -> dict[str, Any]:
    return dict(symbol="NIFTY", kind="PRICE", condition="above", threshold=25000.0) | kw


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        (spot(symbol="NIFTYX"), "symbol 'NIFTYX' is not known; use one of NIFTY, BANKNIFTY, "
                                "FINNIFTY, MIDCPNIFTY"),
        (spot(symbol="RELIANCE"), "[[poller.watch]]"),
        (spot(cooldown_s=-5), "cooldown must not be negative, got -5"),
        (spot(cooldown_s=math.nan), "cooldown must be a finite number"),
        (spot(hysteresis=-1), "hysteresis must not be negative"),
        (spot(condition="equals", tolerance=-1), "tolerance must not be negative"),
        (spot(condition="changes", threshold=1, window_s=-60), "window must not be negative"),
        (spot(condition="changes", threshold=1, window_s=math.inf), "window must be a finite"),
        (spot(threshold=math.nan), "threshold must be a finite number"),
        (spot(threshold=0), "a threshold for spot must be a price above 0"),
        (dict(symbol="NIFTY", kind="PCR", condition="above", threshold=0),
         "a PCR threshold is a put/call ratio above 0"),
        (dict(symbol="NIFTY", kind="PCR", condition="below", threshold=-0.5), "got -0.5"),
        (dict(symbol="NIFTY", kind="PATTERN_DETECTED", pattern="GAMMA_SQUEEZE", threshold=120),
         "minimum confidence, 0 to 100; got 120"),
        (dict(symbol="NIFTY", kind="PATTERN_DETECTED", threshold=70),
         "needs a pattern kind; use one of CALL_BUILDUP"),
        (dict(symbol="NIFTY", kind="STALE_FEED", threshold=0), "seconds without fresh data"),
        (dict(symbol="NIFTY", kind="VOLATILITY", metric="atm_iv", condition="above",
              threshold=20), "did you mean 0.2 (20%)?"),
        (dict(symbol="NIFTY", kind="VOLATILITY", metric="iv_rank", condition="above",
              threshold=101), "IV-rank threshold is 0 to 100"),
        (dict(symbol="NIFTY", kind="VOLUME_SPIKE", threshold=0.5), "more than 1"),
        (dict(symbol="NIFTY", kind="MAX_PAIN_SHIFT", threshold=-100), "points max pain must move"),
        (spot(condition="changes", threshold=0), "percent-change threshold"),
        (spot(strike=25000), "strike 25,000 needs a side"),
        (spot(side="CE"), "side CE needs a strike"),
        (spot(metric="ltp"), "metric ltp is an option's own value, so it needs a strike and side"),
        (spot(metric="spot", strike=25000, side="CE"), "takes no strike or side"),
        (dict(symbol="NIFTY", kind="VOLATILITY", metric="iv", condition="above", threshold=0.2),
         "needs a strike and side"),
        (dict(symbol="NIFTY", kind="PCR", condition="above", threshold=1.2, strike=25000,
              side="PE"), "PCR is about the whole chain"),
        (spot(condition="equals", tolerance=0), "needs a tolerance above 0"),
        (spot(tolerance=5), "tolerance applies only to equals rules"),
        (spot(window_s=60), "a window applies only to percent-change and VOLUME_SPIKE"),
        (dict(symbol="NIFTY", kind="OI_CHANGE", condition="equals", threshold=5),
         "condition equals does not apply to OI_CHANGE; use above, below"),
        (dict(symbol="NIFTY", kind="PRICE", threshold=5), "needs a condition"),
        (dict(symbol="NIFTY", kind="STALE_FEED", threshold=60, hysteresis=5),
         "hysteresis (the re-arm band) applies only to"),
        (spot(kind="PRIC"), "alert kind 'PRIC' is unknown"),
        (spot(active_from="15:00", active_to="09:30"), "the active window 15:00–09:30 is empty"),
        (spot(active_from="9"), "--from '9' is not a time of day"),
        (spot(expiry=date(2026, 11, 17)), "expiry 2026-11-17 has already passed"),
        (spot(channels=()), "needs at least one channel"),
        (spot(metric="iv"), "metric 'iv' does not apply to PRICE; use one of spot, ltp"),
        (spot(pattern="GAMMA_SQUEEZE"), "a pattern applies only to PATTERN_DETECTED"),
    ],
)  # fmt: skip
def test_validation_messages(kw: dict[str, Any], needle: str, cfg: Settings) -> None:
    with pytest.raises(RuleError) as err:
        build(cfg, **kw)
    assert needle in str(err.value)


def test_watched_equities_are_known_symbols() -> None:
    cfg = Settings(poller={"watch": [WatchItem(symbol="RELIANCE"), WatchItem(symbol="NIFTY")]})
    rule = build(cfg, **spot(symbol="reliance", threshold=1400))
    assert rule.symbol == "RELIANCE"
    assert parse_rule_text("RELIANCE spot above 1400", cfg)["symbol"] == "RELIANCE"


def test_defaults(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "asha")
    rule = build_rule(cfg, **spot(), today=TODAY)
    assert rule.owner == "asha"
    assert rule.cooldown_s == 300 and rule.window_s == 300 and rule.recurring
    assert rule.hysteresis == pytest.approx(25.0)  # 0.1 % of |threshold|
    assert rule.tolerance == 0.0 and rule.metric == "spot"
    assert rule.channels == ("app",) and rule.channel_labels == ("in-app",)
    assert rule.active_from is None and rule.active_to is None and rule.id is None
    below = build(cfg, symbol="NIFTY", kind="OI_CHANGE", condition="below", threshold=-50_000)
    assert below.hysteresis == pytest.approx(50.0)
    eq = build(cfg, **spot(condition="equals"))
    assert eq.tolerance == pytest.approx(12.5) and eq.hysteresis == 0.0
    pcr_eq = build(cfg, symbol="NIFTY", kind="PCR", condition="equals", threshold=1.0)
    assert pcr_eq.tolerance == 0.01
    pattern = build(cfg, symbol="NIFTY", kind="PATTERN_DETECTED", pattern="momentum-shift")
    assert pattern.threshold == cfg.patterns.min_confidence
    assert pattern.condition is A and pattern.hysteresis == 0.0
    leg = build(cfg, symbol="NIFTY", kind="PRICE", condition="below", threshold=90,
                strike=25000, side="put")  # fmt: skip
    assert leg.metric == "ltp" and leg.side is Side.PE
    only_to = build(cfg, **spot(active_to="14:00"))
    assert only_to.active_from == cfg.market.open and only_to.active_to == time(14, 0)


def test_channels_are_kept_as_references_and_labels(cfg: Settings) -> None:
    chans = (Channel("tag:ops", "tag:ops (ntfy://ntfy.sh/…)"), Channel("app", "in-app"),
             Channel("tag:ops", "dup"))  # fmt: skip
    rule = build(cfg, **spot(), channels=chans)
    assert rule.channels == ("tag:ops", "app")
    assert rule.channel_labels == ("tag:ops (ntfy://ntfy.sh/…)", "in-app")


def test_command_line_numbers() -> None:
    assert parse_threshold("20%", kind="VOLATILITY", condition="above", metric="iv") == 0.2
    assert parse_threshold("0.3%", kind="VOLATILITY", condition="above", metric="") == 0.003
    assert parse_threshold("10%", kind="VOLATILITY", condition="percent_change") == 10
    assert parse_threshold("1.5l", kind="OI_CHANGE", condition="below") == 150_000
    assert parse_threshold("5x", kind="VOLUME_SPIKE", condition=None) == 5
    assert parse_threshold("25,000", kind="PRICE", condition="above") == 25_000
    for bad, kind in (("abc", "PRICE"), ("5%", "PRICE"), ("5x", "PCR")):
        with pytest.raises(RuleError):
            parse_threshold(bad, kind=kind, condition="above")
    assert parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    assert parse_duration("2 min") == 120 and parse_duration("soon") is None


# ------------------------------------------------------------- contradictions are refused

# Each used to be resolved silently (the first strike dropped, the last of once/recurring kept,
# an unreachable number stored); now each is refused with one message quoting the words.
CONTRADICTIONS = [
    ("NIFTY 25000 CE 25100 PE ltp above 100", ["'25000 CE' (word 2)", "'25100 PE' (word 4)"]),
    ("NIFTY 25000CE 25100 PE ltp above 100", ["'25000CE'", "'25100 PE'"]),
    ("NIFTY spot above 25000 once recurring", ["'once' (word 5)", "'recurring' (word 6)"]),
    ("NIFTY spot above 25000 recurring once", ["'recurring'", "'once'"]),
    ("NIFTY spot above 25000 cooldown 5m cooldown 10m", ["'cooldown 5m'", "'cooldown 10m'"]),
    ("NIFTY spot above 25000 rearm 5 rearm 10", ["'rearm 5'", "'rearm 10'"]),
    ("NIFTY spot equals 25000 within 5 within 10", ["'within 5'", "'within 10'"]),
    ("NIFTY spot changes 1% in 15m in 30m", ["'in 15m' (word 5)", "'in 30m' (word 7)"]),
    ("NIFTY 2026-12-29 spot above 1 expiry 2027-01-26", ["'2026-12-29'", "'2027-01-26'"]),
    ("NIFTY pcr above 1.3 from 09:30 to 11:00 until 12:00", ["'from 09:30'", "'until 12:00'"]),
    ("NIFTY spot above 25000 once once", ["given twice ('once' at words 5 and 6)"]),
]


@pytest.mark.parametrize(("text", "words"), CONTRADICTIONS, ids=[t for t, _ in CONTRADICTIONS])
def test_a_part_given_twice_is_refused_naming_both(
    text: str, words: list[str], cfg: Settings
) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule_text(text, cfg)
    msg = str(err.value)
    assert "keep one" in msg and "\n" not in msg
    for w in words:
        assert w in msg


IMPOSSIBLE = [
    ("NIFTY spot above 1000000000000000000000000000000000000000000000",
     "threshold 1e+45 for spot can never be reached"),
    ("NIFTY 25000 CE ltp above 99999999999", "can never be reached"),
    ("NIFTY max pain shifts by 10000000", "max pain can never shift"),
    ("NIFTY 25000.5 CE ltp above 100",
     "strike 25000.5 is not on NIFTY's strike grid (every 50 points); use 25000 or 25050"),
    ("BANKNIFTY 52050 PE iv above 20%", "strike 52050 is not on BANKNIFTY's strike grid"),
    ("NIFTY spot above 25000 rearm 25000", "rearm 25,000 can never re-arm this rule"),
    ("NIFTY 25000 PE iv above 20% rearm 25%", "rearm 25% can never re-arm this rule"),
    ("NIFTY iv rank below 90 rearm 20", "rearm 20 can never re-arm this rule"),
    ("NIFTY 2099-12-29 spot above 25000", "expiry 2099-12-29 is not listed"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "needle"), IMPOSSIBLE, ids=[t for t, _ in IMPOSSIBLE])
def test_a_rule_that_could_never_fire_or_rearm_is_refused(
    text: str, needle: str, cfg: Settings
) -> None:
    with pytest.raises(RuleError) as err:
        build(cfg, **parse_rule_text(text, cfg))
    assert needle in str(err.value)


def test_what_is_possible_stays_possible(cfg: Settings) -> None:
    for text in (
        "NIFTY 25050 CE ltp above 100 rearm 99",
        "NIFTY iv rank below 90 rearm 10",
        "MIDCPNIFTY 12925 PE ltp below 40",
        "NIFTY 2031-06-24 spot above 25000",
        "NIFTY oi change above 5000 rearm 100000",
        "NIFTY spot above 9999999",
    ):
        build(cfg, **parse_rule_text(text, cfg))
