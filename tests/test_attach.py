"""Terminals attached to a running `optterm serve`: they follow its store instead of polling.

One real daemon (a subprocess on the simulator), two followers and a real TUI (Pilot) in-process
on the same SQLite store: they see the daemon's ticks, a rule typed into the attached TUI fires from
the daemon, and `kill -9` of the daemon is reported within two intervals.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from optterm.app import OpttermApp
from optterm.config import load_settings
from optterm.engine.follower import Follower
from optterm.store import open_store
from tests.conftest import Home
from tests.notify_servers import CaptureServer
from tests.squeeze_daemon import hook_rule, write_config
from tests.squeeze_daemon import threshold as squeeze_threshold
from tests.test_alerts_screen import fill_from_sentence
from tests.test_serve import _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]


async def test_followers_and_a_tui_attach_and_a_rule_made_in_the_tui_fires_from_the_daemon(
    home: Home,
) -> None:
    with CaptureServer() as http:
        write_config(home, http)
        proc = _serve(home)
        try:
            _lines_until(proc, lambda ln: "tick 2:" in ln, 1)
            settings = load_settings(home.config, env={})
            store = await open_store(settings.store.url or "")
            try:
                a, b = Follower(store, settings), Follower(store, settings)
                first_a, first_b = await a.follow_once(), await b.follow_once()
                assert a.lease_live and b.lease_live
                assert a.lease is not None and a.lease.pid == proc.pid
                # Both show the daemon's newest chain (read back to back, before its next tick
                # at most one tick apart).
                ts_a = first_a.updates[0].snapshot.provider_ts
                ts_b = first_b.updates[0].snapshot.provider_ts
                assert abs((ts_a - ts_b).total_seconds()) <= 15
                assert first_a.updates[0].enriched is not None  # analytics recomputed locally

                app = OpttermApp(settings)
                async with app.run_test(size=(200, 50)) as pilot:
                    await app.ticked.wait()
                    status = str(app.screen.query_one("#status").render())
                    assert "ATTACHED to" in status and f"pid {proc.pid}" in status
                    # The rule is made in the attached TUI, from the keyboard.
                    threshold = squeeze_threshold()
                    await pilot.press("r")
                    await pilot.pause()
                    await pilot.press("n")
                    await pilot.pause()
                    sentence = f"NIFTY spot crosses above {threshold:g}"
                    await fill_from_sentence(pilot, sentence, ", tag:hook")
                    await pilot.press("ctrl+s")
                    await pilot.pause()
                    (rule,) = await store.alerts.list_rules()
                    assert rule.channels == ("app", "tag:hook")

                    # The daemon picks the rule up, the squeeze crosses it, the webhook gets it.
                    (hit,) = await asyncio.to_thread(http.wait_for, 1, "/hook", 60)
                    title = json.loads(hit.body)["title"]
                    assert f"crossed above {threshold:,.2f}" in title
                    # The attached TUI and a follower both get the daemon's event.
                    for _ in range(40):
                        app.ticked.clear()
                        await app.ticked.wait()
                        await pilot.pause()
                        if any(title in n.title for n in app._notifications):
                            break
                    assert any(title in n.title for n in app._notifications)
                    await pilot.press("q")
                seen = []
                for _ in range(40):
                    tick = await a.follow_once()
                    seen.extend(tick.alerts)
                    if seen:
                        break
                assert [e.title for e in seen] == [title]
                assert len(http.hits("/hook")) == 1  # fired once, by the daemon alone
            finally:
                await store.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert proc.returncode == 0


async def test_an_attached_tui_reports_a_killed_daemon_within_two_intervals(home: Home) -> None:
    with CaptureServer() as http:
        write_config(home, http)
        proc = _serve(home)
        try:
            _lines_until(proc, lambda ln: "tick 2:" in ln, 1)
            app = OpttermApp(load_settings(home.config, env={}))
            async with app.run_test(size=(200, 50)) as pilot:
                await app.ticked.wait()
                app.ticked.clear()
                status = str(app.screen.query_one("#status").render())
                assert "ATTACHED to" in status and f"pid {proc.pid}" in status
                assert app.state.chains  # the daemon's chain is on screen

                proc.kill()
                proc.wait(timeout=30)
                reported = False
                for _ in range(2):  # two follow intervals at most
                    await app.ticked.wait()
                    app.ticked.clear()
                    await pilot.pause()
                    if "DAEMON GONE" in str(app.screen.query_one("#status").render()):
                        reported = True
                        break
                assert reported
                assert any("optterm serve is gone" in n.title for n in app._notifications)
                await pilot.press("q")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


async def test_sigterm_right_after_a_firing_delivers_it_before_exiting(home: Home) -> None:
    with CaptureServer() as http:
        write_config(home, http)
        settings = load_settings(home.config, env={})
        store = await open_store(settings.store.url or "")
        threshold = squeeze_threshold()
        await store.alerts.add_rule(hook_rule(threshold, "drain"))
        await store.close()
        proc = _serve(home)
        try:
            _lines_until(proc, lambda ln: "alert #1 fired" in ln, 1)
        finally:
            proc.send_signal(signal.SIGTERM)  # the outbox row is committed, maybe not yet sent
        started = asyncio.get_running_loop().time()
        err = (await asyncio.to_thread(proc.communicate, timeout=60))[1]
        took = asyncio.get_running_loop().time() - started
        assert proc.returncode == 0, err
        assert took < settings.notify.timeout + 5 + 2  # the send's own bound + the drain bound
        assert len(http.hits("/hook")) == 1
        store = await open_store(settings.store.url or "")
        try:
            backlog = await store.outbox.backlog()
            assert backlog["SENT"] == 1 and sum(backlog.values()) == 1  # nothing left behind
        finally:
            await store.close()
