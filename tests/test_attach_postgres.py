"""The shared-server path on a real PostgreSQL the tests start: a leader and a hot spare, an
alert delivered once across a `kill -9` takeover, and an attached follower seeing the ticks."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from optterm.config import load_settings
from optterm.engine.follower import Follower
from optterm.store import open_store
from tests.conftest import Home
from tests.notify_servers import CaptureServer
from tests.squeeze_daemon import hook_rule, write_config
from tests.squeeze_daemon import threshold as squeeze_threshold
from tests.test_serve import _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]


async def test_takeover_on_postgres_never_notifies_twice_and_followers_see_ticks(
    home: Home, pg_url: str
) -> None:
    with CaptureServer() as http:
        write_config(home, http, store_url=pg_url)
        settings = load_settings(home.config, env={})
        store = await open_store(pg_url)
        threshold = squeeze_threshold()
        try:
            await store.alerts.add_rule(hook_rule(threshold, "pg"))
            leader = _serve(home)
            standby = None
            try:
                _lines_until(leader, lambda ln: "tick 2:" in ln, 1)
                standby = _serve(home, "--standby")
                _lines_until(standby, lambda ln: "standing by" in ln, 1)

                follower = Follower(store, settings)
                tick = await follower.follow_once()
                assert follower.lease_live and follower.lease.pid == leader.pid
                assert tick.updates and tick.updates[0].snapshot.symbol == "NIFTY"

                await asyncio.to_thread(http.wait_for, 1, "/hook", 60)  # fired and delivered
                killed = time.monotonic()
                leader.kill()
                await asyncio.to_thread(
                    _lines_until, standby, lambda ln: "holding the poller lease" in ln, 1
                )
                assert time.monotonic() - killed < 5.0
                await asyncio.to_thread(_lines_until, standby, lambda ln: "tick 3:" in ln, 1)
                # The new leader knows the rule already fired (its state is in the store).
                follower_tick = await follower.follow_once()
                assert follower.lease is not None and follower.lease.pid == standby.pid
                assert follower_tick.updates
            finally:
                leader.kill()
                if standby is not None:
                    standby.send_signal(signal.SIGTERM)
                    await asyncio.to_thread(standby.communicate, timeout=60)
            assert standby is not None and standby.returncode == 0
            assert len(http.hits("/hook")) == 1
            assert len(await store.alerts.list_events()) == 1
        finally:
            await store.close()
