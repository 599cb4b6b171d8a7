"""Replay ("time travel"): the engine run over a stored session instead of a live feed.

`source.ReplaySource` is provider-shaped: the poller fetches from it the snapshot of each chain
in force at the replay's cursor. `session.Replay` owns a Poller built like the live one (the
same Analyzer, detectors and alert evaluation) with replay-scoped state: nothing it computes is
stored, alert firings are returned, never recorded or sent, and every history-based figure
reads only what was stored before the cursor.
"""

from optterm.engine.replay.session import DayEvents, Replay, ReplayProblem

__all__ = ["DayEvents", "Replay", "ReplayProblem"]
