"""The alerts screen and the rule form, driven with the keyboard through Textual's Pilot: a real
SQLite store in tmp_path, a frozen clock, and loopback-only test sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, Select, Static

from optterm.cli.root import main
from optterm.config import Settings, load_settings
from optterm.engine.alerts.rules import build_rule
from optterm.engine.notify.channels import Channel
from optterm.engine.state import EngineState
from optterm.model import AlertEvent, AlertKind, Condition, Feed, PatternKind, Side
from optterm.screens.alert_form import AlertForm
from optterm.screens.alerts import AlertsScreen
from optterm.screens.confirm import ConfirmScreen
from optterm.store import Store
from optterm.store.alerts import RuleStateRow
from tests.conftest import Home
from tests.notify_servers import CaptureServer

NOW = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # 10:30 IST, a Friday
TODAY = NOW.date()
SECRET = "S3CRETtok3n98765"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class Harness(App[None]):
    def __init__(self, state: EngineState) -> None:
        super().__init__()
        self.state = state
        self.alerts_screen = AlertsScreen(state)

    def on_mount(self) -> None:
        self.push_screen(self.alerts_screen)


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as s:
        yield s


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    """Never the developer's real keyring."""
    kr = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: kr)
    return kr


@pytest.fixture
def settings(tmp_path: Path, server: CaptureServer, memory_keyring: MemoryKeyring) -> Settings:
    toml = tmp_path / "optterm.toml"
    toml.write_text(
        f'[notify]\ntimeout = 5\nchannels = {{ hook = "{server.json_url("hook")}" }}\n',
        encoding="utf-8",
    )
    return load_settings(toml, env={})


def make_state(settings: Settings, store: Store | None) -> EngineState:
    return EngineState(settings, store, now=lambda: NOW)


async def settle(app: App[Any], pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


@contextlib.asynccontextmanager
async def alerts_app(settings: Settings, store: Store) -> AsyncIterator[tuple[Harness, Pilot[Any]]]:
    """The alerts screen, settled, on a frozen clock."""
    app = Harness(make_state(settings, store))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        yield app, pilot


async def new_form(app: App[Any], pilot: Pilot[Any]) -> AlertForm:
    """`n` on the alerts screen: the new-rule form."""
    await pilot.press("n")
    await settle(app, pilot)
    return form(app)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


async def paste(pilot: Pilot[Any], text: str) -> None:
    """What a terminal sends for a paste into the focused field (one event, not a key each)."""
    focused = pilot.app.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


async def fill_from_sentence(pilot: Pilot[Any], sentence: str, channels: str = "") -> None:
    """In the open form: paste the one-line rule and enter it (the form fills from it), then
    type `channels` at the end of the channels field."""
    await paste(pilot, sentence)
    await pilot.press("enter")
    if channels:
        await focus_field(pilot.app, pilot, "channels")
        await pilot.press("end")
        await type_text(pilot, channels)


async def focus_field(app: App[Any], pilot: Pilot[Any], wid: str, key: str = "tab") -> None:
    """Move focus with the keyboard (tab) until the field `wid` has it."""
    for _ in range(40):
        if app.focused is not None and app.focused.id == wid:
            return
        await pilot.press(key)
    raise AssertionError(f"tab never reached #{wid}; focus is on {app.focused!r}")


def form(app: App[Any]) -> AlertForm:
    screen = app.screen
    assert isinstance(screen, AlertForm), screen
    return screen


def rules_table(app: Harness) -> DataTable:
    return app.alerts_screen.query_one("#rules", DataTable)


def cell_text(table: DataTable, row: int, col: int) -> str:
    value = table.get_row_at(row)[col]
    return getattr(value, "plain", str(value))


async def add_rule(store: Store, settings: Settings, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "symbol": "NIFTY",
        "kind": AlertKind.PRICE,
        "condition": Condition.ABOVE,
        "threshold": 25000.0,
        "today": TODAY,
        "owner": "trader",
    }
    args.update(kw)
    return await store.alerts.add_rule(build_rule(settings, **args))


# ------------------------------------------------------------------------------------ tests


@pytest.mark.slow
async def test_a_rule_is_created_with_the_keyboard_only(settings: Settings, store: Store) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        assert "none yet" in str(app.alerts_screen.query_one("#rules-title", Static).render())
        f = await new_form(app, pilot)
        assert app.focused is f.query_one("#line")
        assert str(f.query_one("#error", Static).render()) == ""  # a fresh form is not scolded

        await pilot.press("tab")
        assert app.focused is f.query_one("#symbol")
        await pilot.press("enter")
        await type_text(pilot, "bank")
        await pilot.press("enter")
        assert f.query_one("#symbol", Select).value == "BANKNIFTY"

        await pilot.press("tab")
        assert app.focused is f.query_one("#kind")
        await pilot.press("enter")
        await type_text(pilot, "put/call")
        await pilot.press("enter")
        await pilot.pause()
        assert f.query_one("#kind", Select).value is AlertKind.PCR
        assert not f.query_one("#row-metric").display  # PCR has no metric, strike or pattern
        assert not f.query_one("#row-leg").display
        assert not f.query_one("#row-pattern").display

        await pilot.press("tab")
        assert app.focused is f.query_one("#expiry")
        await pilot.press("tab")
        assert app.focused is f.query_one("#condition")
        await pilot.press("enter", "down", "enter")
        assert f.query_one("#condition", Select).value is Condition.BELOW

        await pilot.press("tab")
        assert app.focused is f.query_one("#threshold")
        await type_text(pilot, "0.7")
        await pilot.press("up")  # arrows move between fields too
        assert app.focused is f.query_one("#condition")
        assert not f.query_one("#condition", Select).expanded
        await pilot.press("down", "down")
        assert app.focused is f.query_one("#rearm")
        await pilot.press("up")
        assert app.focused is f.query_one("#threshold")
        await focus_field(app, pilot, "cooldown")
        await type_text(pilot, "10m")
        await pilot.press("tab", "space")  # once
        assert f.query_one("#once", Checkbox).value is True
        await focus_field(app, pilot, "channels")
        await pilot.press("end")
        await type_text(pilot, ", tag:hook")
        await pilot.pause()
        assert "BANKNIFTY pcr crosses below 0.7" in str(f.query_one("#preview", Static).render())
        await pilot.press("ctrl+s")
        await settle(app, pilot)

        assert app.screen is app.alerts_screen
        (rule,) = await store.alerts.list_rules()
        assert rule.symbol == "BANKNIFTY"
        assert rule.kind is AlertKind.PCR
        assert rule.condition is Condition.BELOW
        assert rule.threshold == 0.7
        assert rule.cooldown_s == 600
        assert rule.recurring is False
        assert rule.channels == ("app", "tag:hook")
        assert rule.channel_labels[1].startswith("tag:hook (json://127.0.0.1")
        assert rule.enabled
        table = rules_table(app)
        assert table.row_count == 1
        assert "BANKNIFTY pcr crosses below 0.7" in cell_text(table, 0, 1)
        assert cell_text(table, 0, 3) == "armed"
        assert cell_text(table, 0, 4) == "never"


@pytest.mark.slow
async def test_the_one_line_input_fills_the_form_and_a_bad_threshold_is_refused(
    settings: Settings, store: Store
) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        f = await new_form(app, pilot)
        await fill_from_sentence(
            pilot, "NIFTY 25000 CE ltp below 350 cooldown 10m once from 09:30 to 15:00"
        )
        await pilot.pause()
        assert f.query_one("#symbol", Select).value == "NIFTY"
        assert f.query_one("#kind", Select).value is AlertKind.PRICE
        assert f.query_one("#metric", Select).value == "ltp"
        assert f.query_one("#strike", Input).value == "25000"
        assert f.query_one("#side", Select).value is Side.CE
        assert f.query_one("#row-leg").display
        assert f.query_one("#condition", Select).value is Condition.BELOW
        assert f.query_one("#threshold", Input).value == "350"
        assert f.query_one("#cooldown", Input).value == "10m"
        assert f.query_one("#once", Checkbox).value is True
        assert f.query_one("#from", Input).value == "09:30"
        assert f.query_one("#to", Input).value == "15:00"
        assert str(f.query_one("#error", Static).render()) == ""

        # A sentence the grammar cannot read says where, and changes nothing.
        f.query_one("#line", Input).focus()
        await pilot.press("ctrl+u")
        await paste(pilot, "NIFTY spot crosses sideways 25000")
        await pilot.press("enter")
        await pilot.pause()
        assert "cannot read the rule at word 4" in str(f.query_one("#error", Static).render())
        assert f.query_one("#threshold", Input).value == "350"

        # A threshold that is not a number: the message under the form, and Save refused.
        await focus_field(app, pilot, "threshold")
        await pilot.press("ctrl+u")
        await type_text(pilot, "lots")
        await pilot.pause()
        error = str(f.query_one("#error", Static).render())
        assert "threshold: 'lots' is not a number" in error
        assert f.query_one("#error").has_class("error")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is f
        assert await store.alerts.list_rules() == []

        # The grammar's number forms are read as on the command line.
        await pilot.press("ctrl+u")
        await type_text(pilot, "0.35k")
        await pilot.pause()
        assert str(f.query_one("#error", Static).render()) == ""
        assert "NIFTY 25000 CE ltp crosses below 350" in str(f.query_one("#preview").render())

        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.alerts_screen
        assert await store.alerts.list_rules() == []


@pytest.mark.slow
async def test_a_rule_from_the_one_line_input_is_saved_with_its_text_as_note(
    settings: Settings, store: Store
) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        await new_form(app, pilot)
        await fill_from_sentence(pilot, "NIFTY atm iv below 11%")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        (rule,) = await store.alerts.list_rules()
        assert rule.kind is AlertKind.VOLATILITY
        assert rule.metric == "atm_iv"
        assert rule.threshold == 0.11
        assert rule.note == "NIFTY atm iv below 11%"


async def test_the_cli_and_the_form_save_the_same_rule(
    settings: Settings,
    store: Store,
    server: CaptureServer,
    home: Home,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both front ends hand the same sentence and channels to the alert book."""
    sentence = "BANKNIFTY pcr below 0.7 cooldown 10m once"
    home.write_config(
        f'[notify]\ntimeout = 5\nchannels = {{ hook = "{server.json_url("hook")}" }}\n'
    )
    args = ["--config", str(home.config), "alerts", "add", sentence, "--notify", "app",
            "--notify", "tag:hook"]  # fmt: skip

    def cli() -> object:
        with pytest.raises(SystemExit) as done:
            main(args)
        return done.value.code

    assert await asyncio.to_thread(cli) == 0, capsys.readouterr().err
    async with alerts_app(settings, store) as (app, pilot):
        await new_form(app, pilot)
        await fill_from_sentence(pilot, sentence, ", tag:hook")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    by_cli, by_form = await store.alerts.list_rules()
    assert by_cli.id != by_form.id
    assert replace(by_form, id=by_cli.id, created_at=by_cli.created_at) == by_cli
    assert by_cli.channels == ("app", "tag:hook") and by_cli.note == sentence


@pytest.mark.slow
async def test_edit_disable_enable_and_delete_a_rule(settings: Settings, store: Store) -> None:
    first = await add_rule(store, settings)
    async with alerts_app(settings, store) as (app, pilot):
        table = rules_table(app)
        assert table.row_count == 1
        assert app.focused is table

        await pilot.press("e")
        await settle(app, pilot)
        f = form(app)
        assert f.query_one("#threshold", Input).value == "25000"
        assert f.query_one("#channels", Input).value == "app"
        assert "Edit alert rule" in str(f.query_one("#title", Static).render())
        await focus_field(app, pilot, "threshold")
        await pilot.press("ctrl+u")
        await type_text(pilot, "25,100")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is app.alerts_screen
        (rule,) = await store.alerts.list_rules()
        assert rule.id == first.id
        assert rule.threshold == 25100
        assert rule.owner == "trader"
        assert rule.created_at == first.created_at
        assert "25,100" in cell_text(table, 0, 1)

        await pilot.press("enter")  # enter edits too; escape leaves it unchanged
        await settle(app, pilot)
        assert isinstance(app.screen, AlertForm)
        await pilot.press("escape")
        await settle(app, pilot)
        assert (await store.alerts.list_rules())[0].threshold == 25100

        await pilot.press("space")
        await settle(app, pilot)
        assert (await store.alerts.list_rules())[0].enabled is False
        assert cell_text(table, 0, 3) == "disabled"
        await pilot.press("space")
        await settle(app, pilot)
        assert (await store.alerts.list_rules())[0].enabled is True
        assert cell_text(table, 0, 3) == "armed"

        await pilot.press("x")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep it
        await settle(app, pilot)
        assert len(await store.alerts.list_rules()) == 1

        await pilot.press("x")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert app.screen is app.alerts_screen
        assert await store.alerts.list_rules() == []
        assert table.row_count == 0


@pytest.mark.slow
async def test_send_test_from_the_form_reaches_the_loopback_server(
    settings: Settings, store: Store, server: CaptureServer
) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        f = await new_form(app, pilot)
        await fill_from_sentence(pilot, "NIFTY spot crosses above 25000", ", tag:hook")
        await focus_field(app, pilot, "send-test")
        await pilot.press("enter")
        await settle(app, pilot)
        (hit,) = await server.await_for(1, "hook")
        doc = hit.json()
        assert doc["title"] == "optterm test"
        assert doc["message"] == (
            "NIFTY spot crosses above 25,000\nThis is a test message; the rule has not fired."
        )
        result = str(f.query_one("#test-result", Static).render())
        assert "in-app: skipped" in result
        assert f"tag:hook (json://127.0.0.1:{server.port}/…): OK" in result
        assert app.screen is f  # a test send does not save
        assert await store.alerts.list_rules() == []


@pytest.mark.slow
async def test_a_typed_url_is_kept_in_the_keyring_and_never_shown(
    settings: Settings, store: Store, server: CaptureServer, memory_keyring: MemoryKeyring
) -> None:
    url = server.json_url(f"direct-{SECRET}")
    async with alerts_app(settings, store) as (app, pilot):
        f = await new_form(app, pilot)
        await fill_from_sentence(pilot, "NIFTY pcr above 1.3")
        await focus_field(app, pilot, "channels")
        await pilot.press("ctrl+u")
        await paste(pilot, url)
        await pilot.pause()
        assert SECRET not in str(f.query_one("#channel-labels", Static).render())
        await focus_field(app, pilot, "send-test")
        await pilot.press("enter")
        await settle(app, pilot)
        await server.await_for(1, f"direct-{SECRET}")
        assert SECRET not in str(f.query_one("#test-result", Static).render())
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is app.alerts_screen

        (rule,) = await store.alerts.list_rules()
        assert rule.channels[0].startswith("keyring:")
        assert SECRET not in repr(rule)
        assert url in memory_keyring.entries.values()
        table = rules_table(app)
        assert SECRET not in cell_text(table, 0, 2)
        assert f"json://127.0.0.1:{server.port}/…" in cell_text(table, 0, 2)

        # Editing shows the reference, never the URL; saving keeps the channel as it was.
        await pilot.press("e")
        await settle(app, pilot)
        f = form(app)
        assert f.query_one("#channels", Input).value == rule.channels[0]
        assert SECRET not in str(f.query_one("#channel-labels", Static).render())
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        (again,) = await store.alerts.list_rules()
        assert again.channels == rule.channels
        assert again.channel_labels == rule.channel_labels

        # `t` on the screen sends through the rule's channels (the URL read from the keyring).
        await pilot.press("t")
        await settle(app, pilot)
        hits = await server.await_for(2, f"direct-{SECRET}")
        assert hits[-1].json()["title"] == f"optterm test: alert rule {rule.id}"
        toasts = [n.message for n in app._notifications]
        assert any(f"json://127.0.0.1:{server.port}/…: OK" in m for m in toasts), toasts
        assert not any(SECRET in m for m in toasts)


async def test_t_sends_a_test_through_the_rules_channels(
    settings: Settings, store: Store, server: CaptureServer
) -> None:
    rule = await add_rule(
        store,
        settings,
        channels=[
            Channel("app", "in-app"),
            Channel("tag:hook", f"tag:hook (json://127.0.0.1:{server.port}/…)"),
        ],
    )
    server.fail("hook", times=1)
    async with alerts_app(settings, store) as (app, pilot):
        await pilot.press("t")
        await settle(app, pilot)
        (hit,) = await server.await_for(1, "hook")
        assert hit.json()["title"] == f"optterm test: alert rule {rule.id}"
        (toast,) = list(app._notifications)
        assert toast.title == f"Test of alert rule {rule.id}"
        assert "in-app: skipped" in toast.message
        assert f"tag:hook (json://127.0.0.1:{server.port}/…): FAILED" in toast.message
        assert toast.severity == "error"

        app._notifications.clear()
        await pilot.press("t")
        await settle(app, pilot)
        await server.await_for(2, "hook")
        (toast,) = list(app._notifications)
        assert f"tag:hook (json://127.0.0.1:{server.port}/…): OK" in toast.message


@pytest.mark.slow
async def test_a_prefilled_form_opens_with_the_chain_rows_values(
    settings: Settings, store: Store
) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        saved: list[Any] = []
        app.push_screen(
            AlertForm(
                app.state,
                prefill={"symbol": "NIFTY", "strike": 25000.0, "side": "CE", "kind": "PRICE"},
            ),
            saved.append,
        )
        await settle(app, pilot)
        f = form(app)
        assert f.query_one("#symbol", Select).value == "NIFTY"
        assert f.query_one("#kind", Select).value is AlertKind.PRICE
        assert f.query_one("#metric", Select).value == "ltp"
        assert f.query_one("#strike", Input).value == "25000"
        assert f.query_one("#side", Select).value is Side.CE
        assert f.query_one("#row-leg").display
        # Only the threshold is missing, and the form says so.
        assert "needs a threshold" in str(f.query_one("#error", Static).render())
        await focus_field(app, pilot, "threshold")
        await type_text(pilot, "150")
        await focus_field(app, pilot, "save")
        await pilot.press("enter")  # enter on the Save button saves
        await settle(app, pilot)
        (rule,) = saved
        assert rule is not None and rule.id is not None
        assert (rule.symbol, rule.strike, rule.side, rule.metric) == (
            "NIFTY",
            25000,
            Side.CE,
            "ltp",
        )
        assert rule.threshold == 150
        assert await store.alerts.list_rules() == [rule]


@pytest.mark.slow
async def test_a_pattern_rule_offers_only_its_fields(settings: Settings, store: Store) -> None:
    async with alerts_app(settings, store) as (app, pilot):
        f = await new_form(app, pilot)
        await focus_field(app, pilot, "kind")
        await pilot.press("enter")
        await type_text(pilot, "pattern")
        await pilot.press("enter")
        await pilot.pause()
        assert f.query_one("#row-pattern").display
        assert not f.query_one("#row-condition").display  # one condition only: not asked
        assert not f.query_one("#row-rearm").display
        await pilot.press("tab")
        assert app.focused is f.query_one("#expiry")
        await focus_field(app, pilot, "pattern")
        await pilot.press("enter")
        await type_text(pilot, "call_b")
        await pilot.press("enter", "ctrl+s")  # threshold blank: [patterns] min_confidence
        await settle(app, pilot)
        (rule,) = await store.alerts.list_rules()
        assert rule.kind is AlertKind.PATTERN_DETECTED
        assert rule.pattern is PatternKind.CALL_BUILDUP
        assert rule.threshold == settings.patterns.min_confidence


async def test_events_pane_shows_deliveries_newest_first(settings: Settings, store: Store) -> None:
    rule = await add_rule(
        store,
        settings,
        channels=[Channel("app", "in-app"), Channel("tag:hook", "tag:hook (json://…)")],
        cooldown_s=600,
        active_from=time(9, 15),
        active_to=time(15, 30),
    )

    def event(minute: int, value: float) -> AlertEvent:
        return AlertEvent(
            rule_id=rule.id,
            symbol="NIFTY",
            kind=AlertKind.PRICE,
            fired_at=datetime(2026, 11, 20, 4, minute, tzinfo=UTC),
            value=value,
            threshold=25000.0,
            title=f"NIFTY spot crossed above 25,000.00 ({value:,.0f})",
            body="body",
            provider="simulator",
            feed=Feed.SIMULATED,
        )

    channels = [Channel("app", "in-app"), Channel("tag:hook", "tag:hook (json://…)")]
    older, newer = await store.alerts.record_firings(
        [(event(50, 25010), channels), (event(55, 25020), channels)],
        [RuleStateRow(rule.id, False, 25020.0, datetime(2026, 11, 20, 4, 55, tzinfo=UTC), 2)],
    )
    # The older event's webhook failed for good; the newer one's in-app row was delivered.
    for item in await store.outbox.due(now=datetime(2100, 1, 1, tzinfo=UTC)):
        if item.event_id == older.id and item.channel == "tag:hook":
            await store.outbox.mark_failed(item.id, "HTTP 500")
        if item.event_id == newer.id and item.channel == "app":
            await store.outbox.claim(item.id, NOW)
            await store.outbox.mark_sent(item.id, NOW)
    state = make_state(settings, store)
    session_only = event(58, 25030)  # in state.alerts but not in the store
    state.alerts.appendleft(session_only)
    app = Harness(state)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        table = app.alerts_screen.query_one("#events", DataTable)
        assert table.row_count == 3
        assert "25,030" in cell_text(table, 0, 2)
        assert cell_text(table, 0, 4) == "—"
        assert "25,020" in cell_text(table, 1, 2)
        assert cell_text(table, 1, 4) == "in-app SENT · tag:hook (json://…) PENDING"
        assert "25,010" in cell_text(table, 2, 2)
        assert cell_text(table, 2, 4) == "in-app PENDING · tag:hook (json://…) FAILED: HTTP 500"
        assert cell_text(table, 0, 1) == f"#{rule.id}"
        assert [cell_text(table, row, 3) for row in range(3)] == [
            "25,030.00",
            "25,020.00",
            "25,010.00",
        ]
        rules = rules_table(app)
        assert cell_text(rules, 0, 3) == "cooling down"  # fired 5 min ago, cooldown 10 min
        assert cell_text(rules, 0, 5) == "2"
        assert "10:25:00" in cell_text(rules, 0, 4)

        # A tick later the delivery is done: the cell follows, the rows stay.
        for item in await store.outbox.due(now=datetime(2100, 1, 1, tzinfo=UTC)):
            if item.event_id == newer.id:
                await store.outbox.claim(item.id, NOW)
                await store.outbox.mark_sent(item.id, NOW)
        app.alerts_screen.on_state(state)
        await settle(app, pilot)
        assert cell_text(table, 1, 4) == "in-app SENT · tag:hook (json://…) SENT"


async def test_without_a_store_the_screen_says_so_and_keys_do_nothing(
    settings: Settings,
) -> None:
    app = Harness(make_state(settings, None))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = app.alerts_screen
        assert screen.query_one("#no-store").display
        assert "No database" in str(screen.query_one("#no-store", Static).render())
        assert not screen.query_one("#rules").display
        for action in ("new", "edit", "toggle_rule", "delete", "test"):
            assert screen.check_action(action, ()) is None
        await pilot.press("n")
        await settle(app, pilot)
        assert app.screen is screen
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is not screen


async def test_confirm_screen_answers_with_keys() -> None:
    answers: list[bool | None] = []

    class Asker(App[None]):
        def on_mount(self) -> None:
            self.push_screen(ConfirmScreen("Delete it?"), answers.append)

    for keys, expected in ((("y",), True), (("n",), False), (("escape",), False),
                           (("enter",), True)):  # fmt: skip
        app = Asker()
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press(*keys)
            await pilot.pause()
        assert answers.pop() is expected


async def test_a_pattern_rule_that_fired_shows_its_last_firing_and_count(
    settings: Settings, store: Store
) -> None:
    from optterm.engine.alerts.service import AlertService
    from optterm.engine.events import ChainUpdate
    from tests.test_alert_eval import make_signal, snap

    rule = await add_rule(
        store,
        settings,
        kind=AlertKind.PATTERN_DETECTED,
        condition=None,
        threshold=70.0,
        pattern=PatternKind.GAMMA_SQUEEZE,
    )
    at = datetime(2026, 11, 20, 4, 45, tzinfo=UTC)  # 10:15 IST
    chain = replace(snap(25_000.0), provider_ts=at, fetched_at=at)
    [event] = await AlertService(store).on_tick(
        [ChainUpdate(chain, True)], [make_signal("squeeze", 80, at)], at
    )
    assert event.rule_id == rule.id
    async with alerts_app(settings, store) as (app, _pilot):
        rules = rules_table(app)
        assert "10:15:00" in cell_text(rules, 0, 4)
        assert cell_text(rules, 0, 5) == "1"
        assert cell_text(rules, 0, 3) == "armed"  # it fires again on the next signal
