"""Pattern signals as people see them, the same in `optterm patterns`, `optterm replay` and on
the Patterns screen."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.model import Signal

__all__ = ["confidence_bar", "signal_to_dict"]


def confidence_bar(confidence: int) -> str:
    """`82 ████████░░`: the number and a ten-cell bar, rounded to the nearest cell."""
    conf = max(0, min(100, int(confidence)))
    filled = (conf + 5) // 10
    return f"{conf:>3} {'█' * filled}{'░' * (10 - filled)}"


def signal_to_dict(s: Signal) -> dict[str, Any]:
    """A signal as JSON: times in UTC ISO form, NaN evidence as null."""
    return {
        "key": s.key,
        "kind": str(s.kind),
        "symbol": s.symbol,
        "expiry": s.expiry.isoformat(),
        "direction": str(s.direction),
        "strength": str(s.strength),
        "confidence": s.confidence,
        "strikes": list(s.strikes),
        "summary": s.summary,
        "evidence": [[n, None if v != v else v] for n, v in s.evidence],
        "first_seen": s.first_seen.astimezone(UTC).isoformat(),
        "last_seen": s.last_seen.astimezone(UTC).isoformat(),
        "expires_at": s.expires_at.astimezone(UTC).isoformat(),
        "updates": s.updates,
        "provider": s.provider,
        "feed": str(s.feed),
    }
