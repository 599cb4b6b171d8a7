"""The set-up the daemon process tests share: `optterm serve` on the simulator's gamma squeeze
(NIFTY only, seed 42, 120× speed), a webhook channel `tag:hook`, and a spot rule that the squeeze
crosses within the first minutes of the session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from optterm.model import AlertKind, AlertRule, Condition
from optterm.providers.simulator.provider import SimulatorProvider
from tests.conftest import Home
from tests.notify_servers import CaptureServer

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


def write_config(
    home: Home,
    http: CaptureServer,
    *,
    start: datetime = START,
    strikes: int = 12,
    store_url: str | None = None,
) -> None:
    """The daemon's config; `store_url` for another database than the home's SQLite file."""
    head = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    home.write_config(
        head
        + f"""
[poller]
interval = 0.5
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = {strikes}
[providers.simulator]
seed = 42
scenario = "gamma_squeeze"
speed = 120
step_seconds = 15
start = {start.isoformat()}
[notify]
channels = {{ hook = "{http.json_url("/hook")}" }}
""",
        with_store=store_url is None,
    )


def threshold() -> float:
    """0.4 % above the session's opening spot: the squeeze crosses it, a quiet open does not."""
    sim = SimulatorProvider(seed=42, scenario="gamma_squeeze", step_seconds=15, start=START)
    return float(round(sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).spot * 1.004))


def hook_rule(level: float, note: str, **changes: Any) -> AlertRule:
    """NIFTY spot crossing above `level`, delivered to `tag:hook`."""
    return AlertRule(
        symbol="NIFTY",
        kind=AlertKind.PRICE,
        condition=Condition.ABOVE,
        threshold=level,
        channels=("tag:hook",),
        channel_labels=("tag:hook",),
        note=note,
        **changes,
    )
