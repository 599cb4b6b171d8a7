"""The in-process command (tests/cli_driver.py) is the command a user runs: the same exit code,
stdout and stderr as `python -m optterm` in a real process, for success, for each kind of
refusal (a bad flag, a bad config, an unknown symbol, a missing confirmation) and for input read
from stdin. The CLI tests rely on this to run in-process; these few run both ways."""

from __future__ import annotations

import pytest

from tests.conftest import Home, run_cli, run_process

pytestmark = pytest.mark.process

CASES = {
    "version": ("--version",),
    "help": ("--help",),
    "scenarios": ("scenarios",),
    "locate": ("locate", "--json"),
    "empty-history": ("history", "list", "--json"),
    "click-usage-error": ("chain",),
    "conflicting-flags": ("chain", "NIFTY", "--json", "--csv"),
    "unknown-symbol": ("chain", "NIFTYX"),
    "bad-date": ("chain", "NIFTY", "-e", "2026-02-30"),
    "no-confirmation": ("alerts", "rm", "1"),
    "no-credentials-needed": ("creds", "show", "nse"),
}


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_in_process_and_real_process_agree(home: Home, args: tuple[str, ...]) -> None:
    home.write_config()
    if args[0] == "alerts":
        run_cli(home, "--config", str(home.config), "alerts", "add", "NIFTY spot above 25000")
    full = ("--config", str(home.config), *args)
    inside, real = run_cli(home, *full), run_process(home, *full)
    assert (inside.returncode, inside.stdout, inside.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


def test_a_bad_config_is_refused_alike(home: Home) -> None:
    home.write_config("[poller]\nintervl = 5\n", with_store=False)
    args = ("--config", str(home.config), "chain", "NIFTY")
    inside, real = run_cli(home, *args), run_process(home, *args)
    assert inside.returncode == real.returncode == 2
    assert inside.stderr == real.stderr and inside.stderr.startswith("optterm: ")


def test_stdin_reaches_a_prompt_alike(home: Home) -> None:
    answers = "key\nA7654321\n1234\nnot base32!\n"
    args = ("creds", "set", "angelone")
    inside, real = run_cli(home, *args, input=answers), run_process(home, *args, input=answers)
    assert inside.returncode == real.returncode == 2
    # The prompts themselves differ: without a terminal, a real process's getpass warns that the
    # input may be echoed. What the answers led to is the same line.
    assert inside.stderr.splitlines()[-1] == real.stderr.splitlines()[-1]
    assert "TOTP" in inside.stderr.splitlines()[-1]
