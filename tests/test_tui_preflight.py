"""What the TUI checks before it takes over the screen (the engine's pre-flight, engine/runner.py):
a store it cannot open or a watched symbol no provider lists is one line on stderr and exit 2,
as from any other command, with no traceback and no screen drawn."""

from __future__ import annotations

import pytest

from tests.conftest import Home, run_process

pytestmark = pytest.mark.process


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_watched_symbol_no_provider_lists_stops_the_tui_before_it_starts(home: Home) -> None:
    home.write_config('[[poller.watch]]\nsymbol = "NIFTYX"\nexpiries = 1\n')
    done = run_process(home, "--config", str(home.config))
    assert done.returncode == 2, done
    assert "NIFTYX" in _one_line(done.stderr)
    assert done.stdout == ""  # the screen was never taken over


def test_a_store_that_cannot_be_opened_stops_the_tui_before_it_starts(home: Home) -> None:
    blocker = home.root / "data"
    blocker.write_text("a file where the store's folder should be", encoding="utf-8")
    home.write_config()
    done = run_process(home, "--config", str(home.config))
    assert done.returncode == 2, done
    assert str(blocker) in _one_line(done.stderr)
    assert done.stdout == ""
