"""`optterm scan` over the live universe: one sweep of the universe feed made by the command
(engine/scanner/sweep.py, docs/scanner.md "What a scan reads"), with a progress line on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.engine.scanner.run import ScanRun

__all__ = ["Progress", "live_run"]


def live_run(settings: Any, text: str, calendar: Any) -> ScanRun:
    """The scan over one sweep of the live universe (engine/scanner/sweep.py), a progress line
    on stderr while it runs; LiveUnavailable when Angel One cannot be built or swept."""
    from optterm.cli.context import run_async
    from optterm.engine.scanner.liveframe import run_on_frame
    from optterm.engine.scanner.sweep import LiveUnavailable, sweep_universe
    from optterm.market import utc_now
    from optterm.providers.factory import ProviderUnavailable, build_one

    try:
        provider = build_one(settings, "angelone")
    except ProviderUnavailable as exc:
        raise LiveUnavailable(str(exc)) from None
    progress = Progress()

    async def go() -> Any:
        try:
            progress.say("sweeping the F&O universe on angelone: loading the instrument master…")
            return await sweep_universe(settings, provider, calendar, now=utc_now,
                                        progress=progress.calls)  # fmt: skip
        finally:
            await provider.close()

    try:
        frame = run_async(go())
    finally:
        progress.done()
    return run_on_frame(text, frame)


class Progress:
    """One line on stderr, rewritten in place on a terminal (a log gets the last one only)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.said = ""

    def say(self, line: str) -> None:
        self.said = line
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{line}")
            sys.stderr.flush()

    def calls(self, made: int, planned: int) -> None:
        self.say(f"sweeping the F&O universe on angelone: quote call {made} of ~{planned}")

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        elif self.said:
            sys.stderr.write(self.said + "\n")
        sys.stderr.flush()
