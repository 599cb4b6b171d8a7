"""Pattern signals as people see them, the same in `optterm patterns` and on the Patterns screen."""

from __future__ import annotations

__all__ = ["confidence_bar"]


def confidence_bar(confidence: int) -> str:
    """`82 ████████░░`: the number and a ten-cell bar, rounded to the nearest cell."""
    conf = max(0, min(100, int(confidence)))
    filled = (conf + 5) // 10
    return f"{conf:>3} {'█' * filled}{'░' * (10 - filled)}"
