"""`optterm serve` killed with kill -9 around a delivery: the alert still arrives exactly once.

The daemon's dispatcher has two test hooks (engine/notify.py): it can stop dead after an outbox
row is committed but before it is sent (`before_send`), or after the send succeeded but before
the row is marked SENT (`after_send`). The test waits for the hook's log line, kills the process
with SIGKILL, restarts it, and counts what the loopback webhook received.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from optterm.config import load_settings
from optterm.engine.channels import Channel
from optterm.model import AlertKind, AlertRule, Condition
from optterm.providers.simulator import SimulatorProvider
from optterm.store.repository import open_store
from tests.conftest import Home, optterm_cmd
from tests.notify_servers import CaptureServer

pytestmark = pytest.mark.slow

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


def _config(home: Home, http: CaptureServer, start: datetime) -> None:
    home.write_config(
        f"""
[poller]
interval = 0.5
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 15
[providers.simulator]
seed = 42
scenario = "gamma_squeeze"
speed = 120
step_seconds = 15
start = {start.isoformat()}
[notify]
channels = {{ hook = "{http.json_url("/hook")}" }}
"""
    )


def _serve(home: Home, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        optterm_cmd("--config", str(home.config), "serve"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**home.env, **(env or {})},
        cwd=home.root,
    )


def _wait_line(proc: subprocess.Popen[str], needle: str) -> list[str]:
    seen: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"serve exited before {needle!r}:\n" + "".join(seen[-30:]))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, err
    return err


async def _add_rule(home: Home) -> float:
    settings = load_settings(home.config, env={})
    sim = SimulatorProvider(seed=42, scenario="gamma_squeeze", step_seconds=15, start=START)
    expiry = sim._listed("NIFTY", 0)[0]
    threshold = float(round(sim.chain_at_step("NIFTY", expiry, 0).spot * 1.004))
    assert settings.store.url
    store = await open_store(settings.store.url)
    try:
        await store.add_rule(
            AlertRule(
                symbol="NIFTY",
                kind=AlertKind.PRICE,
                condition=Condition.ABOVE,
                threshold=threshold,
                channels=(Channel("tag:hook", "tag:hook").ref,),
                channel_labels=("tag:hook",),
                cooldown_s=0.0,
                note=f"NIFTY spot crosses above {threshold:g}",
            )
        )
    finally:
        await store.close()
    return threshold


async def _fired_at(home: Home) -> datetime:
    store = await open_store(load_settings(home.config, env={}).store.url or "")
    try:
        (view,) = await store.list_events()
        return view.event.fired_at
    finally:
        await store.close()


@pytest.mark.parametrize("point", ["before_send", "after_send"])
def test_killed_around_a_send_delivers_exactly_once(home: Home, point: str) -> None:
    with CaptureServer() as http:
        _config(home, http, START)
        threshold = asyncio.run(_add_rule(home))
        proc = _serve(home, {"OPTTERM_TEST_PAUSE_AT": point})
        try:
            _wait_line(proc, f"OPTTERM_TEST_PAUSE_AT={point}: pausing at outbox")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        sent_before_restart = len(http.hits("/hook"))
        assert sent_before_restart == (1 if point == "after_send" else 0)

        # Restart where the market had got to, so the spot is still above the threshold and
        # nothing crosses again: any second delivery would be a duplicate.
        fired_at = asyncio.run(_fired_at(home))
        _config(home, http, fired_at + timedelta(minutes=1))
        proc = _serve(home)
        try:
            if point == "before_send":
                http.wait_for(1, "/hook", timeout=60)
            else:
                _wait_line(proc, "interrupted by a crash while sending")
            _wait_line(proc, "tick 3:")  # a few more ticks: nothing new may fire
        finally:
            log = _stop(proc)
        hits = http.hits("/hook")
        assert len(hits) == 1, log
        body = json.loads(hits[0].body)
        assert f"crossed above {threshold:,.2f}" in body["title"]
