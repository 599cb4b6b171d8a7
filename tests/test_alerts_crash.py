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
from datetime import datetime, timedelta

import pytest

from optterm.config import load_settings
from optterm.store import open_store
from tests.conftest import Home
from tests.notify_servers import CaptureServer
from tests.squeeze_daemon import hook_rule, write_config
from tests.squeeze_daemon import threshold as squeeze_threshold
from tests.test_serve import _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, err
    return err


async def _add_rule(home: Home) -> float:
    settings = load_settings(home.config, env={})
    threshold = squeeze_threshold()
    assert settings.store.url
    store = await open_store(settings.store.url)
    try:
        note = f"NIFTY spot crosses above {threshold:g}"
        await store.alerts.add_rule(hook_rule(threshold, note, cooldown_s=0.0))
    finally:
        await store.close()
    return threshold


async def _fired_at(home: Home) -> datetime:
    store = await open_store(load_settings(home.config, env={}).store.url or "")
    try:
        (view,) = await store.alerts.list_events()
        return view.event.fired_at
    finally:
        await store.close()


@pytest.mark.parametrize("point", ["before_send", "after_send"])
def test_killed_around_a_send_delivers_exactly_once(home: Home, point: str) -> None:
    with CaptureServer() as http:
        write_config(home, http, strikes=15)
        threshold = asyncio.run(_add_rule(home))
        proc = _serve(home, env={"OPTTERM_TEST_PAUSE_AT": point})
        try:
            _lines_until(
                proc, lambda ln: f"OPTTERM_TEST_PAUSE_AT={point}: pausing at outbox" in ln, 1
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        sent_before_restart = len(http.hits("/hook"))
        assert sent_before_restart == (1 if point == "after_send" else 0)

        # Restart where the market had got to, so the spot is still above the threshold and
        # nothing crosses again: any second delivery would be a duplicate.
        fired_at = asyncio.run(_fired_at(home))
        write_config(home, http, start=fired_at + timedelta(minutes=1), strikes=15)
        proc = _serve(home)
        try:
            if point == "before_send":
                http.wait_for(1, "/hook", timeout=180)  # a restart under load is slow
            else:
                _lines_until(proc, lambda ln: "interrupted by a crash while sending" in ln, 1)
            _lines_until(
                proc, lambda ln: "tick 3:" in ln, 1
            )  # a few more ticks: nothing new may fire
        finally:
            log = _stop(proc)
        hits = http.hits("/hook")
        assert len(hits) == 1, log
        body = json.loads(hits[0].body)
        assert f"crossed above {threshold:,.2f}" in body["title"]
