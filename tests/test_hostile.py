"""What a second hostile pass over the CLI found after issue 14's fixes: typed text echoed in
full by messages the first pass did not reach, an export range at the calendar's edge that
crashed, and a strike no chain lists that a rule accepted."""

from __future__ import annotations

import pytest

from tests.conftest import Home, run_cli

LONG = "A" * 100_000


@pytest.mark.parametrize(
    "args",
    [
        ("chain", "NIFTY", "--interval", LONG),
        ("history", "export", "NIFTY", "--format", LONG),
        ("alerts", "add", "NIFTY spot crosses above 25000", "--owner", LONG),
    ],
    ids=["chain-interval", "export-format", "alert-owner"],
)
def test_huge_option_text_is_not_echoed_in_full(home: Home, args: tuple[str, ...]) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "--provider", "simulator", *args)
    assert out.returncode == 2, out.stderr[:300]
    assert "Traceback" not in out.stderr
    assert len(out.stdout + out.stderr) < 1500, out.stderr[:300]
    assert "100,000 characters" in out.stderr, out.stderr[:300]


@pytest.mark.parametrize(
    "args",
    [
        ("--date", "9999-12-31"),
        ("--to", "9999-12-31"),
        ("--from", "0001-01-01", "--to", "9999-12-31"),
        ("--from", "0001-01-01"),
    ],
    ids=["date-last-day", "to-last-day", "whole-calendar", "from-first-day"],
)
def test_an_export_range_at_the_calendars_edge_exports_what_is_there(
    home: Home, args: tuple[str, ...]
) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "history", "export", "NIFTY", *args)
    assert "Traceback" not in out.stderr, out.stderr[-400:]
    assert out.returncode == 0, out.stderr[-400:]
    assert "No stored snapshots for NIFTY" in out.stderr


@pytest.mark.parametrize("strike", ["1e300", "99999999"])
def test_a_strike_no_chain_lists_is_refused(home: Home, strike: str) -> None:
    home.write_config()
    out = run_cli(
        home, "--config", str(home.config), "alerts", "add", "--symbol", "NIFTY",
        "--kind", "PRICE", "--metric", "ltp", "--condition", "above", "--threshold", "250",
        "--strike", strike, "--side", "CE",
    )  # fmt: skip
    assert out.returncode == 2, out.stdout
    assert "is not a strike any chain lists" in out.stderr and len(out.stderr) < 300
    listed = run_cli(home, "--config", str(home.config), "alerts", "list", "--json")
    assert '"strike"' not in listed.stdout or "1e+300" not in listed.stdout


def test_a_huge_negative_number_is_shown_as_typed_not_as_300_digits(home: Home) -> None:
    home.write_config()
    out = run_cli(
        home, "--config", str(home.config), "alerts", "add", "--symbol", "NIFTY",
        "--kind", "PRICE", "--metric", "ltp", "--condition", "above", "--threshold", "250",
        "--strike", "-1e308", "--side", "CE",
    )  # fmt: skip
    assert out.returncode == 2
    assert "-1e+308" in out.stderr and len(out.stderr) < 200, out.stderr
