"""A failure that repeats (each tick, each lease beat): logged as it starts, changes or clears.

A full disk fails every chain's write on every tick: logged per occurrence that was ten
warnings a tick, burying everything else (and filling the very disk that is full). Instead one
warning says what failed and that repeats are counted; one line says when the message changes
(with how often the previous one happened) and one when it works again (with the count). The
tick's FetchFailure records and the poller's counters still see every occurrence.
"""

from __future__ import annotations

import logging

__all__ = ["RepeatedFailure"]


class RepeatedFailure:
    """One recurring condition (e.g. "storing snapshots"), reported on change only."""

    def __init__(self, log: logging.Logger, what: str, unit: str = "tick") -> None:
        self.log = log
        self.what = what
        self.unit = unit  # what one round of attempts is called: a tick, a beat
        self.message: str | None = None  # the failure going on, None while all is well
        self.count = 0  # occurrences of it so far
        self.ticks = 0  # rounds (ticks, beats) it happened in

    def failed(self, message: str, count: int = 1) -> None:
        """`count` occurrences of a failure saying `message` in this tick."""
        if message == self.message:
            self.count += count
            self.ticks += 1
            return
        if self.message is None:
            self.log.warning(
                "%s failed: %s (%d this %s; repeats are counted, not logged, until it "
                "changes or clears)",
                self.what,
                message,
                count,
                self.unit,
                extra={"failing": self.what},
            )
        else:
            self.log.warning(
                "%s now fails with: %s (after %d failure(s) over %d %s(s) of: %s)",
                self.what,
                message,
                self.count,
                self.ticks,
                self.unit,
                self.message,
                extra={"failing": self.what},
            )
        self.message, self.count, self.ticks = message, count, 1

    def succeeded(self) -> None:
        if self.message is None:
            return
        self.log.warning(
            "%s works again after %d failure(s) over %d %s(s) of: %s",
            self.what,
            self.count,
            self.ticks,
            self.unit,
            self.message,
            extra={"recovered": self.what},
        )
        self.message, self.count, self.ticks = None, 0, 0
