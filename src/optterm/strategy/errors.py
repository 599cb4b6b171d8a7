"""The one error a strategy can be refused with: bad legs, a strike or expiry the chain does not
list, a template that does not fit. The CLI turns it into one line and exit code 2."""

from __future__ import annotations

__all__ = ["StrategyError"]


class StrategyError(ValueError):
    """A position, template or strategy line that cannot be built; the message says how to
    fix it."""
