"""Alerts end to end, in process: a rule in the store, the simulator crossing it on a tick, the
event and its outbox rows committed, and real deliveries to loopback HTTP and SMTP servers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from optterm.config import load_settings
from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.notify.channels import Channel
from optterm.engine.notify.dispatcher import Dispatcher
from optterm.engine.poller import Poller, Watch
from optterm.model import AlertKind, Condition, Delivery
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from tests.notify_servers import CaptureServer, SmtpSink

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


@pytest.fixture
def servers():
    with CaptureServer() as http, SmtpSink() as smtp:
        http.fail("/down")  # this channel always answers 500
        yield http, smtp


async def test_a_crossing_is_delivered_once_to_every_channel_and_a_dead_one_fails(
    tmp_path, servers
) -> None:
    http, smtp = servers
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[notify]\n"
        f'channels = {{ hook = "{http.json_url("/hook")}", mail = "{smtp.mailto_url()}", '
        f'down = "{http.json_url("/down")}" }}\n'
        "retry_schedule = [1, 5]\n"
    )
    settings = load_settings(cfg, env={})
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    clock = [0.0]
    wall = [OPEN]
    sim = SimulatorProvider(
        seed=42, scenario="gamma_squeeze", step_seconds=15, start=OPEN, clock=lambda: clock[0]
    )
    expiry = sim._listed("NIFTY", 0)[0]
    spot0 = sim.chain_at_step("NIFTY", expiry, 0).spot
    threshold = round(spot0 * 1.004)  # the squeeze carries the spot through it
    from optterm.engine.alerts.rules import build_rule

    rule = await store.alerts.add_rule(
        build_rule(
            settings,
            symbol="NIFTY",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=threshold,
            channels=[
                Channel("tag:hook", "tag:hook"),
                Channel("tag:mail", "tag:mail"),
                Channel("tag:down", "tag:down"),
            ],
            note=f"NIFTY spot crosses above {threshold}",
            today=OPEN.date(),
        )
    )
    # Outbox rows are stamped on the real clock; retries are driven by moving this offset.
    later = [timedelta(0)]
    dispatcher = Dispatcher(store, settings, None, now=lambda: datetime.now(UTC) + later[0])
    alerts = AlertService(store, on_recorded=dispatcher.wake)
    poller = Poller(
        sim,
        store.snapshots,
        [Watch("NIFTY", 1, 20)],
        interval=15,
        timeout=5,
        now=lambda: wall[0],
        analyzer=Analyzer(history=store.analytics),
        analytics_sink=store.analytics,
        alerts=alerts,
    )
    fired = []
    try:
        for _ in range(160):  # 40 simulated minutes
            tick = await poller.tick_once()
            fired.extend(tick.alerts)
            clock[0] += 15.0
            wall[0] += timedelta(seconds=15)
            if fired:
                break
        assert len(fired) == 1, "the squeeze never crossed the threshold"
        event = fired[0]
        assert event.rule_id == rule.id and event.value >= threshold
        assert f"crossed above {threshold:,.2f}" in event.title

        assert await dispatcher.dispatch_once() == 3
        (hook,) = http.wait_for(1, "/hook")
        body = json.loads(hook.body)
        assert body["title"] == event.title
        assert "NIFTY" in body["message"] and "IST" in body["message"]
        assert "SIMULATED data, not market prices" in body["message"]
        (mail,) = smtp.wait_for(1)
        assert event.title in mail["Subject"]
        # The dead channel: first attempt now, retries at +1 s and +5 s, then FAILED.
        for step in (1, 5):
            later[0] += timedelta(seconds=step)
            await dispatcher.dispatch_once()
        assert len(http.hits("/down")) == 3
        views = await store.alerts.list_events(rule_id=rule.id)
        deliveries = {d.channel_label: d for d in views[0].deliveries}
        assert deliveries["tag:hook"].status is Delivery.SENT
        assert deliveries["tag:mail"].status is Delivery.SENT
        assert deliveries["tag:down"].status is Delivery.FAILED
        assert "500" in (deliveries["tag:down"].last_error or "")

        # The spot stays above: more ticks fire nothing and send nothing more.
        for _ in range(8):
            tick = await poller.tick_once()
            assert tick.alerts == ()
            clock[0] += 15.0
            wall[0] += timedelta(seconds=15)
        await dispatcher.dispatch_once()
        await asyncio.sleep(0)
        assert len(http.hits("/hook")) == 1 and len(smtp.wait_for(1)) == 1
    finally:
        await store.close()


async def test_an_edited_rule_is_delivered_as_it_is_now_not_as_it_was_typed(tmp_path) -> None:
    """A rule made from a sentence, edited as the TUI's form edits it (the fields change, the
    note keeps the sentence), fires: the message that reaches the channel says the new rule."""
    from optterm.engine.alerts.book import AlertBook
    from optterm.engine.alerts.rules import parse_rule_text
    from optterm.engine.events import ChainUpdate
    from tests.test_alert_eval import snap

    with CaptureServer() as http:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[notify]\nchannels = {{ hook = "{http.json_url("/hook")}" }}\n')
        settings = load_settings(cfg, env={})
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
        try:
            book = AlertBook(store, settings)
            sentence = "NIFTY spot crosses above 25000"
            typed = {**parse_rule_text(sentence, settings), "today": OPEN.date()}
            rule = await book.add(typed, ["tag:hook"])
            assert rule.id is not None and rule.note == sentence
            dispatcher = Dispatcher(store, settings, None)
            alerts = AlertService(store, on_recorded=dispatcher.wake)

            async def tick(k: int, spot: float) -> list:
                return await alerts.on_tick([ChainUpdate(snap(spot, k), True)], [], OPEN)

            assert await tick(0, 24_900.0) == []  # the running engine has the rule, armed
            edited = await book.update(rule.id, {**typed, "threshold": 25_500.0}, ["tag:hook"])
            assert edited.note == sentence  # the note is what was typed; the rule is not
            assert await tick(1, 25_100.0) == []  # past the old threshold: nothing
            [event] = await tick(2, 25_510.0)
            assert await dispatcher.dispatch_once() == 1
            (hook,) = http.wait_for(1, "/hook")
            sent = json.loads(hook.body)
            assert sent["title"] == "NIFTY spot 25,510.00 crossed above 25,500.00" == event.title
            assert "rule #1: NIFTY spot crosses above 25,500" in sent["message"]
            assert "25000" not in sent["message"] and "25,000" not in sent["message"]
        finally:
            await store.close()


async def test_a_pattern_alert_does_not_fire_again_for_the_same_signal_after_a_restart(
    tmp_path,
) -> None:
    """The pattern rule's 'once per signal' memory outlives the process: a restarted engine that
    sees the signal it already alerted on stays quiet, and still fires for a new signal."""
    from dataclasses import replace

    from optterm.engine.events import ChainUpdate
    from optterm.model import PatternKind
    from tests.test_alert_eval import T0, make_signal, rule, snap

    url = f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"
    store = await open_store(url)
    try:
        typed = rule(
            kind=AlertKind.PATTERN_DETECTED,
            pattern=PatternKind.GAMMA_SQUEEZE,
            condition=Condition.ABOVE,
            threshold=70,
            recurring=True,
        )
        await store.alerts.add_rule(replace(typed, id=None))
        first = AlertService(store)
        [event] = await first.on_tick(
            [ChainUpdate(snap(25_000.0, 0), True)], [make_signal("a", 75, T0)], T0
        )
        assert "GAMMA_SQUEEZE" in event.title
    finally:
        await store.close()

    store = await open_store(url)  # the engine restarts on the same store
    try:
        later = T0 + timedelta(minutes=5)
        again = AlertService(store)
        ticks = [ChainUpdate(snap(25_000.0, 1), True)]
        assert await again.on_tick(ticks, [make_signal("a", 80, later)], later) == []
        [new] = await again.on_tick(
            [ChainUpdate(snap(25_000.0, 2), True)], [make_signal("b", 72, later)], later
        )
        assert new.context[0] != () and ("signal", "b") in new.context
        events = await store.alerts.list_events()
        assert [e.event.title.split()[1] for e in events] == ["GAMMA_SQUEEZE", "GAMMA_SQUEEZE"]
    finally:
        await store.close()
