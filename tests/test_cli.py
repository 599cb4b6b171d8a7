"""The CLI as a user meets it: the real command, real files, exit codes and messages."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
from datetime import date

import pytest
from typer import _click as click

from tests.conftest import Home, run_cli


def test_version(home: Home) -> None:
    out = run_cli(home, "--version")
    assert out.returncode == 0
    assert out.stdout.startswith("optterm ")


def test_chain_json_has_spot_expiry_lot_and_41_two_sided_strikes(home: Home) -> None:
    out = run_cli(home, "chain", "NIFTY", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["symbol"] == "NIFTY"
    assert doc["feed"] == "SIMULATED" and doc["provider"] == "simulator"
    assert doc["lot_size"] == 65
    assert doc["spot"] > 10_000
    assert date.fromisoformat(doc["expiry"]) >= date.fromisoformat(doc["provider_ts"][:10])
    rows = doc["rows"]
    assert len(rows) >= 41
    both = [r for r in rows if r["ce"]["ltp"] is not None and r["pe"]["ltp"] is not None]
    assert len(both) >= 41
    atm = [r for r in rows if r["atm"]]
    assert len(atm) == 1 and atm[0]["strike"] == doc["atm_strike"]
    assert abs(doc["atm_strike"] - doc["spot"]) <= 25  # NIFTY strike step is 50


def test_chain_csv_and_table(home: Home) -> None:
    out = run_cli(home, "chain", "BANKNIFTY", "--csv", "--strikes", "5")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 11
    strikes = [float(r["strike"]) for r in rows]
    assert all(b - a == 100 for a, b in itertools.pairwise(strikes))
    table = run_cli(home, "chain", "NIFTY", "-n", "3")
    assert table.returncode == 0, table.stderr
    assert "SIMULATED" in table.stdout and "▶" in table.stdout


def test_chain_carries_iv_greeks_and_a_metrics_footer(home: Home) -> None:
    # One simulated step per hour: both commands read the same chain.
    frozen = {"OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600"}
    out = run_cli(home, "chain", "NIFTY", "--json", "-n", "10", env=frozen)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    whole = json.loads(run_cli(home, "chain", "NIFTY", "--json", "-n", "300", env=frozen).stdout)
    assert whole["provider_ts"] == doc["provider_ts"]
    m = doc["metrics"]
    # The figures are the whole chain's, whatever number of rows is printed.
    assert m == whole["metrics"]
    assert doc["metrics_strikes"] == doc["chain_strikes"] == len(whole["rows"]) > len(doc["rows"])
    total_ce = sum(r["ce"]["oi"] or 0 for r in whole["rows"])
    total_pe = sum(r["pe"]["oi"] or 0 for r in whole["rows"])
    assert m["pcr_oi"] == pytest.approx(total_pe / total_ce)
    window_ce = sum(r["ce"]["oi"] or 0 for r in doc["rows"])
    window_pe = sum(r["pe"]["oi"] or 0 for r in doc["rows"])
    assert m["pcr_oi"] != pytest.approx(window_pe / window_ce)
    assert m["max_pain"] in [r["strike"] for r in whole["rows"]]
    assert m["forward_source"] == "parity" and m["view"]["reasons"]
    atm = next(r for r in doc["rows"] if r["atm"])
    assert 0.3 < atm["ce"]["delta"] < 0.7 and -0.7 < atm["pe"]["delta"] < -0.3
    assert atm["ce"]["gamma"] > 0 and atm["ce"]["theta"] < 0 and atm["ce"]["vega"] > 0
    assert atm["ce"]["iv_solved"] == pytest.approx(atm["ce"]["iv"], abs=0.005)

    table = run_cli(home, "chain", "NIFTY", "-n", "3", "--greeks", env={"COLUMNS": "220"})
    assert table.returncode == 0, table.stderr
    assert "CE Δ" in table.stdout and "Vega" in table.stdout
    for label in ("PCR OI", "max pain", "support (max put OI)", "ATM", "GEX", "view:"):
        assert label in table.stdout, label


def test_chain_expiry_by_position_and_date(home: Home) -> None:
    first = json.loads(run_cli(home, "chain", "NIFTY", "--json", "-e", "2").stdout)
    again = json.loads(run_cli(home, "chain", "NIFTY", "--json", "-e", first["expiry"]).stdout)
    assert again["expiry"] == first["expiry"]
    bad = run_cli(home, "chain", "NIFTY", "-e", "2026-02-30")
    assert bad.returncode == 2
    assert "YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli(home, "chain", "NIFTY", "-e", "2031-01-01")
    assert missing.returncode == 2 and "listed" in missing.stderr


def test_unknown_symbol_lists_known_ones(home: Home) -> None:
    out = run_cli(home, "chain", "NIFTYX")
    assert out.returncode == 2
    assert "NIFTYX" in out.stderr
    for known in ("BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTY"):
        assert known in out.stderr
    assert "Traceback" not in out.stderr


def test_scenario_flag_is_validated(home: Home) -> None:
    out = run_cli(home, "--scenario", "gama_squeeze", "chain", "NIFTY")
    assert out.returncode == 2
    assert "gamma_squeeze" in out.stderr and "Traceback" not in out.stderr
    ok = run_cli(home, "--scenario", "gamma_squeeze", "--seed", "7", "chain", "NIFTY", "--json")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[poller\ninterval = 5\n", ["line", "optterm.toml"]),
        ("[poller]\nintervl = 5\n", ["intervl", "interval"]),
        ('[poller]\ninterval = "fast"\n', ["interval", "fast"]),
        ("[store]\nretention_days = -1\n", ["retention_days"]),
    ],
    ids=["malformed-toml", "unknown-key", "wrong-type", "impossible-value"],
)
def test_bad_config_exits_2_with_one_clear_message(
    home: Home, text: str, needles: list[str]
) -> None:
    home.write_config(text, with_store=False)
    out = run_cli(home, "--config", str(home.config), "chain", "NIFTY")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr
    assert not home.db.exists()


def test_unwritable_database_path(home: Home) -> None:
    blocker = home.root / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    home.config.write_text(f'[store]\nurl = "sqlite+aiosqlite:///{blocker}/sub/optterm.db"\n')
    out = run_cli(home, "--config", str(home.config), "history", "list")
    assert out.returncode == 2
    assert str(blocker) in out.stderr and "Traceback" not in out.stderr
    assert blocker.read_text() == "a file where a directory should be"


def test_corrupted_database_is_reported_and_left_untouched(home: Home) -> None:
    home.write_config()
    home.db.parent.mkdir(parents=True)
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 40
    home.db.write_bytes(garbage)
    out = run_cli(home, "--config", str(home.config), "history", "list")
    assert out.returncode == 2
    assert str(home.db) in out.stderr and "Traceback" not in out.stderr
    assert home.db.read_bytes() == garbage


def test_locate_reports_paths(home: Home) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "locate", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["config"] == str(home.config) and doc["config_exists"] is True
    assert doc["data"].startswith(home.env["XDG_DATA_HOME"])
    assert str(home.db) in doc["store"]


def test_history_list_on_empty_store(home: Home) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "history", "list", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    with sqlite3.connect(home.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_usage_errors_exit_2(home: Home) -> None:
    out = run_cli(home, "chain")
    assert out.returncode == 2
    out = run_cli(home, "chain", "NIFTY", "--json", "--csv")
    assert out.returncode == 2 and "--json" in out.stderr
    out = run_cli(home, "history", "export", "NIFTY", "--format", "xml")
    assert out.returncode == 2 and "csv or json" in out.stderr


def _commands(group, path=()):
    """Every command of the CLI with its path (`("alerts", "add")`), depth first. Through
    list_commands/get_command: the root group loads its commands only when asked."""
    for name, command in _children(group):
        yield (*path, name), command
        if hasattr(command, "commands"):  # a command group
            yield from _commands(command, (*path, name))


def _children(command):
    """(name, command) of a group's commands; nothing for a plain command."""
    if not hasattr(command, "list_commands"):
        return []
    ctx = click.Context(command)
    return [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]


def test_help_shows_bracketed_config_names_as_written(home: Home) -> None:
    """Help text is Rich markup: a config name such as [providers.simulator] would vanish from
    `--help` unless escaped. Every bracketed word in any command's or option's help is shown."""
    import re

    import typer

    from optterm.cli.root import app

    root = typer.main.get_command(app)
    bracketed = re.compile(r"(?<!\\)\[([a-z_.]+)\]|\\\[([a-z_.]+)\]")
    checked = 0
    for path, command in [((), root), *_commands(root)]:
        texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
        # A group's help lists its commands with the first line of their help, as `optterm
        # --help` lists `scenarios` with its [providers.simulator].
        texts += [(c.help or "").split("\n")[0] for _, c in _children(command)]
        wanted = {f"[{a or b}]" for text in texts for a, b in bracketed.findall(text)}
        if not wanted:
            continue
        out = run_cli(home, *path, "--help")
        assert out.returncode == 0, out.stderr
        shown = " ".join(out.stdout.split())  # help wraps lines
        for word in wanted:
            assert word in shown, f"`{' '.join(('optterm', *path))} --help` lost {word}"
            checked += 1
    assert checked >= 3  # [providers.simulator] in `optterm --help` and `scenarios --help`, …
