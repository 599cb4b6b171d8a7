"""`optterm strategy` as a user meets it: on the simulator's chain, every figure printed, bad
input refused in one line with exit code 2."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Home, run_cli
from tests.span_files import CALL_RA, PUT_RA, write_span

# One fixed simulated market: the chain is the same in every call of a test.
FROZEN = {
    "OPTTERM_PROVIDERS_SIMULATOR_START": "2026-11-12T10:00:00+05:30",
    "OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600",
}


def _json(home: Home, *args: str, config: str | None = None) -> dict[str, Any]:
    head = ("--config", config) if config else ()
    out = run_cli(home, *head, "strategy", *args, "--json", env=FROZEN)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _strikes(doc: dict[str, Any]) -> str:
    return "/".join(f"{g['strike']:g}" for g in sorted(doc["legs"], key=lambda g: g["strike"]))


def test_template_and_line_give_the_same_strangle_and_lots_scale_it(home: Home) -> None:
    one = _json(home, "--template", "short_strangle", "NIFTY")
    assert one["strategy"] == "short_strangle" and one["view"] == "neutral"
    assert one["provider"] == "simulator"
    assert one["max_loss_unlimited"] is True and one["max_loss"] is None
    assert one["max_profit"] == pytest.approx(-one["net_premium"])
    assert len(one["breakevens"]) == 2
    assert 0 < one["pop_pct"] < 100
    lot = one["lot_size"]
    assert [g["quantity"] for g in one["legs"]] == [-lot, -lot]
    two = _json(home, f"NIFTY short strangle {_strikes(one)} x2")
    assert two["strategy"] == "short_strangle"
    assert [g["quantity"] for g in two["legs"]] == [-2 * lot, -2 * lot]
    assert two["max_profit"] == pytest.approx(2 * one["max_profit"], abs=0.02)
    assert two["greeks"]["vega_per_vol_pt"] == pytest.approx(
        2 * one["greeks"]["vega_per_vol_pt"], abs=0.02
    )
    assert two["breakevens"] == one["breakevens"]
    assert two["pop_pct"] == one["pop_pct"]
    for key in ("payoff_table", "iv_matrix", "sigma_bands", "model", "expected_pnl"):
        assert key in two
    # Every time in exchange time.
    times = [two["as_of"], two["at"], two["first_expiry"], *two["payoff_table"]["dates"]]
    assert all(t.endswith("+05:30") for t in times), times


def test_signed_legs_are_recognised_and_iv_and_at_move_the_figures(home: Home) -> None:
    base = _json(home, "--template", "short_strangle", "NIFTY")
    lo, hi = (g["strike"] for g in sorted(base["legs"], key=lambda g: g["strike"]))
    line = f"NIFTY -1 {lo:g}PE -1 {hi:g}CE"
    legs = _json(home, line)
    assert legs["strategy"] == "short_strangle"
    assert legs["pnl_now"] == pytest.approx(base["pnl_now"], abs=0.01)
    # Short vega: two vol points more cost money now.
    up = _json(home, line, "--iv", "+2")
    assert up["model"]["iv_shift"] == 2.0
    assert up["pnl_now"] < legs["pnl_now"] - 100
    # Short theta: a day later at the same spot, money made.
    day = (date.fromisoformat(legs["expiries"][0]) - timedelta(days=1)).isoformat()
    day_before = _json(home, line, "--at", f"{day} 09:30")
    assert day_before["at"] == f"{day}T09:30:00+05:30"
    # --target adds columns to the payoff table, between --at (first) and the expiry (last).
    cols = _json(home, line, "--target", day, "--target", f"{day} 12:00")["payoff_table"]
    assert cols["dates"][1:3] == [f"{day}T12:00:00+05:30", f"{day}T15:40:00+05:30"]
    assert len(cols["dates"]) == 4 and all(len(row) == 5 for row in cols["pnl"])
    assert day_before["pnl_now"] > legs["pnl_now"]


def test_a_calendar_spans_two_expiries(home: Home) -> None:
    doc = _json(home, "--template", "call_calendar", "NIFTY", "--day-count", "trading")
    assert doc["strategy"] == "call_calendar"
    assert len(doc["expiries"]) == 2
    assert doc["profile_exact"] is False and doc["notes"]
    assert doc["max_loss_unlimited"] is False and doc["max_profit_unlimited"] is False
    assert doc["model"]["day_count"] == "trading"


def test_text_prints_every_figure_and_the_model(home: Home) -> None:
    out = run_cli(home, "strategy", "--template", "iron_condor", "NIFTY", "--delta", "0.2",
                  env={**FROZEN, "COLUMNS": "200"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for expected in (
        "NIFTY iron condor",
        "SIMULATED",
        "Legs",
        "total",
        "Net premium",
        "credit",
        "Max profit",
        "Max loss",
        "Reward:risk   1:",
        "Breakevens",
        "POP",
        "P(max profit)",
        "σ bands",
        "lognormal on forward, ATM IV, drift 0, calendar/365, IV sticky strike",
        "P&L by spot and date",
        "P&L by spot and IV shift",
    ):
        assert expected in text, expected
    assert "Unlimited" not in text


@pytest.mark.parametrize("columns", ["80", "100", "200"])
def test_every_number_is_whole_at_any_width(home: Home, columns: str) -> None:
    # Rich cut cells to fit ("-0.07…", "2026-1…"): columns that do not fit are left out whole
    # and named instead.
    out = run_cli(home, "strategy", "--template", "iron_condor", "NIFTY",
                  env={**FROZEN, "COLUMNS": columns})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    assert all(len(line) <= int(columns) for line in out.stdout.splitlines())
    if columns == "80":
        assert (
            "Γ" in out.stdout and "not shown at 80 columns; --json has every figure" in out.stdout
        )
    if columns == "200":
        assert "not shown" not in out.stdout


def test_templates_are_listed(home: Home) -> None:
    out = run_cli(home, "strategy", "--templates", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) >= 25
    assert {"name": "iron_condor", "view": "neutral"}.items() <= rows[16].items()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NIFTY short strangle 24513/25500"], "is not listed"),
        (["NIFTY long call 25000", "-e", "2031-01-01"], "NIFTY has no expiry on 2031-01-01"),
        (["NIFTY short strangle x0"], "multiplier must be a whole number >= 1"),
        (["NIFTY -0 25000CE"], "non-zero lots"),
        (["--template", "iron_condor", "NIFTY", "--lots", "0"], "--lots 0"),
        (["--template", "iron_condor", "NIFTY", "--lots", "-2"], "--lots -2"),
        (["--template", "iron_condor", "NIFTY", "--offset", "400"], "does not fit the chain"),
        (["--template", "moonshot", "NIFTY"], "unknown template 'moonshot'"),
        (["--template", "long_call"], "needs one underlying"),
        (["NIFTY straddle", "--at", "2031-01-01"], "--at 2031-01-01: value the strategy between"),
        (["NIFTY straddle", "--target", "2026-11-12 25:00"], "--target"),
        (["NIFTY straddle", "--delta", "0.2", "--offset", "2"], "place strikes one way"),
        (["NIFTY straddle", "--anchor", "moon"], "anchor must be spot or forward"),
        (["NIFTY straddle", "--iv", "nan"], "IV shift nan is not a number of vol points"),
        (["NIFTY straddle", "--iv", "inf"], "IV shift inf is not a number of vol points"),
        (["NIFTY straddle", "--vol", "nan"], "--vol nan: give the model's volatility in %"),
        (["NIFTY straddle", "--vol", "0"], "--vol 0: give the model's volatility in %"),
        (["NIFTY straddle", "--offset", "nan"], "--offset nan does not place a strike"),
        (["NIFTY straddle", "--drift", "nan"], "drift must be a finite annual rate"),
        (["NIFTYX straddle"], "unknown symbol"),
        ([], "give a strategy"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Home, args: list[str], message: str) -> None:
    out = run_cli(home, "strategy", *args, env=FROZEN)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""


def test_span_margin_from_the_exchange_file(home: Home) -> None:
    base = _json(home, "--template", "short_strangle", "NIFTY")
    put, call = sorted(base["legs"], key=lambda g: g["strike"])
    near = base["expiries"][0].replace("-", "")
    spn = write_span(home.root / "nsccl.spn", near=near, call=call["strike"], put=put["strike"])
    doc = _json(home, f"NIFTY short strangle {_strikes(base)}", "--span", str(spn))
    m = doc["margin"]
    lot = doc["lot_size"]
    worst = max(-lot * (c + p) for c, p in zip(CALL_RA, PUT_RA, strict=True))
    assert m["scan_risk"] == pytest.approx(worst)
    assert m["span"] == pytest.approx(worst + lot * (300 + 80))  # the file's premiums
    assert m["exposure"] == pytest.approx(0.02 * doc["spot"] * 2 * lot, abs=0.01)
    assert m["total"] == pytest.approx(m["span"] + m["exposure"], abs=0.01)
    assert m["return_on_margin_pct"] == pytest.approx(
        100 * doc["max_profit"] / m["total"], abs=1e-3
    )
    assert "2026-11-12" in m["source"]
    text = run_cli(home, "strategy", f"NIFTY short strangle {_strikes(base)}", "--span", str(spn),
                   env={**FROZEN, "COLUMNS": "200"})  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "Margin        SPAN ₹" in text.stdout and "return on margin" in text.stdout
    # The cache of what was read is kept under the user's cache folder.
    assert list(home.root.rglob("span/nsccl.spn.json"))


def test_a_corrupt_or_foreign_span_file_is_one_line_exit_2(home: Home) -> None:
    bad = home.root / "bad.spn"
    bad.write_text("<spanFile><pointInTime><date>2026", encoding="utf-8")
    out = run_cli(home, "strategy", "NIFTY straddle", "--span", str(bad), env=FROZEN)
    assert out.returncode == 2
    assert "is not a usable SPAN risk-parameter file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""
    good = write_span(home.root / "old.spn")  # its contracts are not the simulator's
    out = run_cli(home, "strategy", "NIFTY straddle", "--span", str(good), env=FROZEN)
    assert out.returncode == 2
    assert "is not in SPAN intraday file of 2026-11-12" in out.stderr


def test_the_strategy_section_sets_the_lots_and_the_rate(home: Home) -> None:
    """[strategy] lots is --lots when not given; [strategy] rate discounts the legs (the
    chain's own IVs are still solved at [analytics] rate, so the entries do not move)."""
    base = _json(home, "--template", "long_straddle", "NIFTY")
    config = str(home.write_config("[strategy]\nlots = 3\nrate = 0.2\n"))
    three = _json(home, "--template", "long_straddle", "NIFTY", config=config)
    lot = base["lot_size"]
    assert [g["quantity"] for g in three["legs"]] == [3 * lot, 3 * lot]
    assert [g["entry"] for g in three["legs"]] == [g["entry"] for g in base["legs"]]
    # A higher rate discounts every option's value more: worth less now per unit.
    for hi, lo in zip(three["legs"], base["legs"], strict=True):
        assert hi["value"] < lo["value"]
    given = _json(home, "--template", "long_straddle", "NIFTY", "--lots", "1", config=config)
    assert [g["quantity"] for g in given["legs"]] == [lot, lot]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('fill = "bid"', "strategy.fill must be one of ltp, mid, touch; got 'bid'"),
        ("lots = 0", "strategy.lots must be between 1 and 10000"),
        ('rate = "6.5"', "strategy.rate expects an annual rate as a decimal"),
    ],
)
def test_a_bad_strategy_section_is_one_line_and_exit_2(
    home: Home, section: str, message: str
) -> None:
    config = str(home.write_config(f"[strategy]\n{section}\n"))
    out = run_cli(
        home, "--config", config, "strategy", "--template", "long_straddle", "NIFTY", env=FROZEN
    )
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""


def test_broker_margin_without_credentials_is_one_line_exit_2(home: Home) -> None:
    out = run_cli(home, "strategy", "NIFTY short strangle", "--broker-margin", env=FROZEN)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "angelone: no credentials" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""


def test_broker_margin_is_printed_beside_the_span_estimate(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's glue: the legs go to the broker in units with their side, its figures come
    back labelled (the HTTP exchange itself: test_broker_positions.py, on a loopback server)."""
    from optterm.providers import factory
    from optterm.providers.angelone.margin import BrokerMargin

    asked: list[tuple[str, list[tuple[Any, ...]]]] = []

    class Broker:
        async def margin(self, symbol: str, legs: list[tuple[Any, ...]]) -> BrokerMargin:
            asked.append((symbol, legs))
            return BrokerMargin(total=150_000.0, span=120_000.5, net_premium=-9_000.0, benefit=0.0)

        async def close(self) -> None:
            pass

    monkeypatch.setattr(factory, "build_one", lambda settings, name: Broker())
    doc = _json(home, "--template", "short_strangle", "NIFTY", "--broker-margin")
    ((symbol, legs),) = asked
    lot = doc["lot_size"]
    assert symbol == "NIFTY"
    assert [(k, q) for k, _, _, q in legs] == [("CE", -lot), ("PE", -lot)] or [
        (k, q) for k, _, _, q in legs
    ] == [("PE", -lot), ("CE", -lot)]
    assert doc["broker_margin"]["total"] == 150_000.0
    assert doc["broker_margin"]["span"] == 120_000.5
    text = run_cli(home, "strategy", "--template", "short_strangle", "NIFTY", "--broker-margin",
                   env=FROZEN)  # fmt: skip
    assert "Broker margin ₹150,000 (SPAN ₹120,000" in text.stdout
    assert "Angel One margin calculator" in text.stdout
