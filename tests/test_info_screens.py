"""The info screens (patterns, providers, help) driven by Textual's Pilot on a frozen clock."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import _character_to_key
from textual.screen import Screen
from textual.widgets import DataTable, Static

import optterm.screens
from optterm.config import load_settings
from optterm.engine.events import ChainUpdate, FetchFailure, Tick
from optterm.engine.state import EngineState
from optterm.model import (
    ChainSnapshot,
    Direction,
    Feed,
    Legs,
    PatternKind,
    ProviderHealth,
    Signal,
    Strength,
)
from optterm.present.patterns import confidence_bar
from optterm.screens import patterns as patterns_module
from optterm.screens.help import KEYMAP, HelpScreen, key_names, keymap_keys
from optterm.screens.patterns import PatternsScreen
from optterm.screens.providers import ProvidersScreen
from tests.conftest import Home

NOW = datetime(2026, 11, 20, 4, 45, tzinfo=UTC)  # 10:15:00 IST
EXPIRY = date(2026, 11, 26)


def make_state(**fields: Any) -> EngineState:
    state = EngineState(load_settings(None, env={}), None, now=lambda: NOW)
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def signal(
    kind: PatternKind,
    symbol: str,
    *,
    confidence: int,
    seen_min_ago: float,
    direction: Direction = Direction.BULLISH,
    ttl_min: float = 15,
    provider: str = "simulator",
    feed: Feed = Feed.SIMULATED,
    evidence: tuple[tuple[str, float], ...] = (("change_pct", 7.5),),
) -> Signal:
    last = NOW - timedelta(minutes=seen_min_ago)
    return Signal(
        key=f"{kind.value}:{symbol}:{EXPIRY.isoformat()}:up",
        kind=kind,
        symbol=symbol,
        expiry=EXPIRY,
        direction=direction,
        strikes=(24500.0, 24600.0),
        confidence=confidence,
        strength=Strength.from_confidence(confidence),
        evidence=evidence,
        summary=f"{kind.value.lower()} on {symbol}",
        first_seen=last - timedelta(minutes=4),
        last_seen=last,
        expires_at=last + timedelta(minutes=ttl_min),
        provider=provider,
        feed=feed,
    )


CALL = signal(
    PatternKind.CALL_BUILDUP,
    "NIFTY",
    confidence=82,
    seen_min_ago=1,
    direction=Direction.BEARISH,
    evidence=(("band_oi_change_pct", 12.5), ("breadth", 0.8), ("premium_agreement", float("nan"))),
)
PUT = signal(
    PatternKind.PUT_BUILDUP, "BANKNIFTY", confidence=65, seen_min_ago=2, provider="nse",
    feed=Feed.LIVE,
)  # fmt: skip
SQUEEZE = signal(PatternKind.GAMMA_SQUEEZE, "NIFTY", confidence=71, seen_min_ago=30)  # expired
PAIN = signal(PatternKind.MAX_PAIN, "FINNIFTY", confidence=55, seen_min_ago=45)  # expired, stored


class FakeStore:
    """A store whose analytics repository returns fixed signals and counts the reads."""

    def __init__(self, signals: list[Signal]) -> None:
        self.signals = signals
        self.calls = 0
        self.analytics = self

    async def load_signals(self, *args: Any, **kwargs: Any) -> list[Signal]:
        self.calls += 1
        return list(self.signals)


class Harness(App[None]):
    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make
        self.shown: Screen[Any] | None = None

    def on_mount(self) -> None:
        self.shown = self.make()
        self.push_screen(self.shown)


class HarnessWithBack(Harness):
    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__(make)
        self.backs = 0

    def action_back(self) -> None:
        self.backs += 1


def cells(table: DataTable[Any], row: int) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(row)]


def column(table: DataTable[Any], name: str) -> list[str]:
    index = [c.value for c in table.columns].index(name)
    return [cells(table, r)[index] for r in range(table.row_count)]


def content(widget: Static) -> str:
    value = widget.content
    return value.plain if isinstance(value, Text) else str(value)


def snapshot(provider: str = "simulator", feed: Feed = Feed.SIMULATED) -> ChainSnapshot:
    n = 3
    legs = Legs(*(np.full(n, 1.0) for _ in range(7)))
    return ChainSnapshot(
        symbol="NIFTY",
        expiry=EXPIRY,
        provider=provider,
        feed=feed,
        provider_ts=NOW - timedelta(seconds=5),
        fetched_at=NOW - timedelta(seconds=4),
        spot=24550.0,
        lot_size=75,
        strikes=np.array([24500.0, 24550.0, 24600.0]),
        ce=legs,
        pe=legs,
    )


@pytest.fixture(autouse=True)
def _isolated(home: Home) -> None:
    """No developer config decides what these tests see."""


# --- patterns --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_patterns_rows_filters_and_detail() -> None:
    store = FakeStore([PAIN, SQUEEZE])
    state = make_state(active_signals=(CALL, PUT))
    state.recent_signals.extend([CALL, PUT, SQUEEZE])
    state.store = store  # type: ignore[assignment]
    app = Harness(lambda: PatternsScreen(state))
    async with app.run_test(size=(200, 50)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.shown
        assert isinstance(screen, PatternsScreen)
        assert store.calls == 1
        table = screen.query_one("#signals", DataTable)
        # Active first, strongest first; then the rest newest first; the stored one joined.
        assert column(table, "Symbol") == ["NIFTY", "BANKNIFTY", "NIFTY", "FINNIFTY"]
        assert column(table, "Kind") == ["CALL_BUILDUP", "PUT_BUILDUP", "GAMMA_SQUEEZE", "MAX_PAIN"]
        assert column(table, "state") == ["●", "●", "·", "·"]
        first = dict(zip([c.value for c in table.columns], cells(table, 0), strict=True))
        assert first["Time"] == "10:14:00"  # IST of last_seen
        assert first["Confidence"].strip() == "82 ████████░░"
        assert first["Direction"] == "bearish"
        assert first["Strength"] == "strong"
        assert first["Strikes"] == "24500, 24600"
        assert first["Age"] == "5m"  # from the app clock to first_seen
        assert first["Source"] == "simulator SIMULATED"
        assert column(table, "Source")[1] == "nse LIVE"
        direction = table.get_row_at(0)[[c.value for c in table.columns].index("Direction")]
        assert "red" in str(direction.style)
        notice = content(screen.query_one("#patterns-notice", Static))
        assert "2 active · 2 recent" in notice and "SIMULATED" in notice
        assert screen.query_one("#patterns-notice").has_class("simulated")

        # The cursor starts on the first row: its evidence and definition are shown.
        detail = content(screen.query_one("#detail", Static))
        assert "band_oi_change_pct" in detail and "12.5" in detail
        assert "premium_agreement" in detail and "n/a" in detail
        assert "Definition (docs/patterns.md)" in detail
        assert "Call open interest is being added at and above the money." in detail
        assert "simulated prices, not the market" in detail
        await pilot.press("down", "down")
        detail = content(screen.query_one("#detail", Static))
        assert "GAMMA_SQUEEZE" in detail and "expired" in detail
        assert "spot runs into the heaviest open-interest strike" in detail

        await pilot.press("s")
        assert "symbol: NIFTY" in screen.sub_title
        assert column(table, "Kind") == ["CALL_BUILDUP", "GAMMA_SQUEEZE"]
        await pilot.press("s", "s")
        assert "symbol: FINNIFTY" in screen.sub_title
        assert column(table, "Kind") == ["MAX_PAIN"]
        await pilot.press("s")
        assert "symbol: all" in screen.sub_title
        assert table.row_count == 4

        await pilot.press("k")
        assert "kind: CALL_BUILDUP" in screen.sub_title
        assert column(table, "Kind") == ["CALL_BUILDUP"]
        for _ in PatternKind:
            await pilot.press("k")
        assert "kind: all" in screen.sub_title

        await pilot.press("a")
        assert "active only" in screen.sub_title
        assert column(table, "Kind") == ["CALL_BUILDUP", "PUT_BUILDUP"]
        await pilot.press("a")
        assert "active + recent" in screen.sub_title
        assert table.row_count == 4


async def test_patterns_follow_ticks_and_the_engines_verdict() -> None:
    state = make_state()
    app = Harness(lambda: PatternsScreen(state))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.shown
        assert isinstance(screen, PatternsScreen)
        table = screen.query_one("#signals", DataTable)
        assert table.row_count == 0
        assert "No signals match" in content(screen.query_one("#detail", Static))

        # A tick: the engine says only PUT is active (it judges on the data's own clock).
        tick = Tick(seq=1, started_at=NOW, finished_at=NOW, signals=(CALL, PUT), active=(PUT,))
        state.apply(tick)
        screen.on_state(state)
        await pilot.pause()
        assert column(table, "Kind") == ["PUT_BUILDUP", "CALL_BUILDUP"]
        assert column(table, "state") == ["●", "·"]

        # A refreshed signal updates its row in place; the cursor stays on it.
        table.move_cursor(row=1)
        refreshed = replace(CALL, updates=1, confidence=91, last_seen=NOW)
        state.apply(Tick(seq=2, started_at=NOW, finished_at=NOW, signals=(refreshed,),
                         active=(refreshed, PUT)))  # fmt: skip
        screen.on_state(state)
        await pilot.pause()
        assert column(table, "Kind") == ["CALL_BUILDUP", "PUT_BUILDUP"]
        assert column(table, "Confidence")[0] == confidence_bar(91)
        assert table.cursor_row == 0  # followed its row to the top
        assert "refreshed 1×" in content(screen.query_one("#detail", Static))


async def test_simulated_signals_age_on_the_simulators_clock() -> None:
    # The simulator's session runs days behind the app clock here.
    sim_now = NOW - timedelta(days=3)
    old = replace(
        CALL,
        first_seen=sim_now - timedelta(minutes=2),
        last_seen=sim_now - timedelta(minutes=1),
        expires_at=sim_now + timedelta(minutes=14),
    )
    snap = replace(snapshot(), provider_ts=sim_now, fetched_at=NOW)
    state = make_state(active_signals=(old,))
    state.chains[("NIFTY", EXPIRY)] = ChainUpdate(snap, stored=True)
    app = Harness(lambda: PatternsScreen(state))
    async with app.run_test(size=(160, 40)):
        screen = app.shown
        assert isinstance(screen, PatternsScreen)
        table = screen.query_one("#signals", DataTable)
        assert column(table, "Age") == ["2m"]
        assert column(table, "state") == ["●"]


async def test_definition_falls_back_to_the_built_in_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    patterns_module._doc_sections.cache_clear()
    monkeypatch.setattr(patterns_module, "_docs_candidates", lambda: [tmp_path / "none.md"])
    try:
        for kind in PatternKind:
            source, text = patterns_module.definition(kind)
            assert source == "built in" and text
    finally:
        monkeypatch.undo()
        patterns_module._doc_sections.cache_clear()
    source, text = patterns_module.definition(PatternKind.MOMENTUM_SHIFT)
    assert source == "docs/patterns.md" and "Trending OI" in text and "**" not in text


async def test_a_failing_store_is_reported_not_fatal() -> None:
    class BrokenStore:
        def __init__(self) -> None:
            self.analytics = self

        async def load_signals(self, *args: Any, **kwargs: Any) -> list[Signal]:
            raise RuntimeError("database is locked")

    state = make_state(active_signals=(CALL,))
    state.store = BrokenStore()  # type: ignore[assignment]
    app = Harness(lambda: PatternsScreen(state))
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.shown
        assert isinstance(screen, PatternsScreen)
        assert screen.query_one("#signals", DataTable).row_count == 1
        assert "database is locked" in content(screen.query_one("#patterns-notice", Static))


# --- providers -------------------------------------------------------------------------------


def health() -> tuple[ProviderHealth, ...]:
    return (
        ProviderHealth(
            provider="simulator",
            day=NOW.date(),
            requests=200,
            successes=196,
            failures={"timeout": 3, "internal": 1},
            latency_ms_sum=196 * 12.5,
            latency_ms_last=9.0,
        ),
        ProviderHealth(
            provider="nse",
            day=NOW.date(),
            requests=20,
            successes=10,
            failures={"http": 8, "timeout": 2},
            latency_ms_sum=10 * 400.0,
            latency_ms_last=350.0,
            breaker="open",
            last_error="HTTP 503 from nseindia.com [not markup]",
            last_error_at=NOW - timedelta(minutes=5),
        ),
        ProviderHealth(provider="angelone", day=NOW.date(), requests=1, breaker="half_open"),
    )


async def test_providers_breakers_numbers_errors_and_serving() -> None:
    state = make_state(health=health())
    state.chains[("NIFTY", EXPIRY)] = ChainUpdate(snapshot(), stored=True)
    failure = FetchFailure("BANKNIFTY", EXPIRY, "timeout", "no answer in 8 s")
    state.failures = (failure,)
    state.last_tick = Tick(
        seq=7,
        started_at=NOW - timedelta(seconds=12),
        finished_at=NOW - timedelta(seconds=10),
        failures=(failure,),
    )
    app = Harness(lambda: ProvidersScreen(state))
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.shown
        assert isinstance(screen, ProvidersScreen)
        table = screen.query_one("#providers", DataTable)
        assert column(table, "Provider") == ["simulator", "nse", "angelone"]
        assert column(table, "#") == ["1", "", ""]  # failover order; the others are not in it
        assert column(table, "Breaker") == ["closed", "open", "half-open"]
        sim = dict(zip([c.value for c in table.columns], cells(table, 0), strict=True))
        assert sim["Requests"] == "200"
        assert sim["Success"] == "98%"
        assert sim["Last ms"] == "9" and sim["Mean ms"] == "12"
        assert sim["Failures"] == "timeout 3, internal 1"
        nse = dict(zip([c.value for c in table.columns], cells(table, 1), strict=True))
        assert nse["Last error"] == "HTTP 503 from nseindia.com [not markup]"
        assert nse["When"] == "10:10:00 (5m ago)"
        assert nse["Failures"] == "http 8, timeout 2"
        styles = [str(table.get_row_at(r)[2].style) for r in range(3)]
        assert "green" in styles[0] and "red" in styles[1] and "yellow" in styles[2]
        assert "red" in str(table.get_row_at(1)[8].style)  # the whole row, not just the breaker

        serving = content(screen.query_one("#serving", Static))
        assert serving.startswith("serving: simulator (SIMULATED)")
        assert screen.query_one("#serving").has_class("simulated")
        tick = content(screen.query_one("#tick", Static))
        assert "Last tick #7 at 10:14:50 IST" in tick
        assert "1 fetch failure" in tick and "BANKNIFTY" in tick and "no answer in 8 s" in tick

        # The next tick: the breaker closed again, no failures, a second provider serves.
        recovered = health()
        recovered[1].breaker = "closed"
        state.health = recovered
        state.failures = ()
        state.chains[("BANKNIFTY", EXPIRY)] = ChainUpdate(
            replace(snapshot("nse", Feed.DELAYED), symbol="BANKNIFTY"), stored=True
        )
        screen.on_state(state)
        await pilot.pause()
        assert column(table, "Breaker") == ["closed", "closed", "half-open"]
        assert "no fetch failures" in content(screen.query_one("#tick", Static))
        serving = content(screen.query_one("#serving", Static))
        assert "nse (DELAYED) for BANKNIFTY" in serving
        assert "simulator (SIMULATED) for NIFTY" in serving


async def test_providers_before_any_data() -> None:
    state = make_state()
    state.engine_error = "no provider could be built"
    app = Harness(lambda: ProvidersScreen(state))
    async with app.run_test(size=(80, 24)):
        screen = app.shown
        assert isinstance(screen, ProvidersScreen)
        table = screen.query_one("#providers", DataTable)
        assert column(table, "Breaker") == ["no data yet"]
        assert "nothing yet" in content(screen.query_one("#serving", Static))
        tick = content(screen.query_one("#tick", Static))
        assert "ENGINE STOPPED: no provider could be built" in tick and "No tick yet." in tick


# --- help and the key map ----------------------------------------------------------------------


async def test_help_renders_every_key() -> None:
    app = Harness(lambda: HelpScreen(make_state()))
    async with app.run_test(size=(120, 40)):
        screen = app.shown
        assert isinstance(screen, HelpScreen)
        for title, entries in KEYMAP:
            text = content(screen.query_one(f"#help-{title.lower().replace(' ', '-')}", Static))
            assert text.startswith(title)
            for keys, description in entries:
                assert any(
                    line.strip().startswith(keys) and line.rstrip().endswith(description)
                    for line in text.splitlines()
                ), (title, keys)


def test_keymap_has_the_required_keys() -> None:
    sections = dict(KEYMAP)
    assert list(sections)[:5] == ["Global", "Dashboard", "Alerts", "Patterns", "History"]
    need = {
        "Global": "d p r v h question_mark t ctrl+p q",
        "Dashboard": "1 5 9 slash right_square_bracket left_square_bracket g plus minus c a up "
        "down pageup pagedown home end left right enter",
        "Alerts": "n enter e space x delete t escape",
        "Patterns": "s k a",
        "History": "left_square_bracket right_square_bracket left right e r",
        "Dialogs": "y n enter escape",
    }
    for title, keys in need.items():
        have = {k for entry, _ in sections[title] for k in key_names(entry)}
        assert set(keys.split()) <= have, title
    assert "ctrl+enter" not in keymap_keys()


def _ui_modules() -> list[str]:
    """The app and every screen module present now (others are added in parallel)."""
    folder = Path(optterm.screens.__file__).parent
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    return ["optterm.app", *(f"optterm.screens.{name}" for name in names)]


def test_every_shown_or_described_binding_is_in_the_keymap() -> None:
    documented = keymap_keys()
    checked: list[str] = []
    broken: list[str] = []
    missing: list[str] = []
    unchecked: list[str] = []
    for name in _ui_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("optterm."):
                raise
            # It needs a module of ours that is still being written: say so, loudly.
            warnings.warn(
                f"{name} not checked against KEYMAP: it imports {exc.name}, which does not "
                "exist yet",
                stacklevel=1,
            )
            unchecked.append(name)
            continue
        except Exception as exc:  # a module that exists must import; say which and why
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, DOMNode)):
                continue
            if cls.__module__ != name:
                continue
            checked.append(cls.__name__)
            for raw in cls.__dict__.get("BINDINGS", ()):
                binding = Binding(*raw) if isinstance(raw, tuple) else raw
                if not (binding.show or binding.description):
                    continue
                for key in (k.strip() for k in binding.key.split(",")):
                    if (_character_to_key(key) if len(key) == 1 else key) not in documented:
                        missing.append(
                            f"{name}.{cls.__name__}: {key!r} → "
                            f"{binding.action} ({binding.description or 'no description'})"
                        )
    assert not broken, "screen modules that do not import:\n" + "\n".join(broken)
    assert {"OpttermApp", "PatternsScreen", "ProvidersScreen", "HelpScreen"} <= set(checked)
    assert not missing, "bindings missing from help.KEYMAP:\n" + "\n".join(missing)


# --- back, and rendering at small and large sizes --------------------------------------------


@pytest.mark.parametrize("screen_cls", [PatternsScreen, ProvidersScreen, HelpScreen])
async def test_escape_goes_back(screen_cls: type[Screen[Any]]) -> None:
    app = Harness(lambda: screen_cls(make_state()))  # type: ignore[call-arg]
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.screen is app.shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not app.shown and len(app.screen_stack) == 1

    with_back = HarnessWithBack(lambda: screen_cls(make_state()))  # type: ignore[call-arg]
    async with with_back.run_test(size=(100, 30)) as pilot:
        await pilot.press("escape")
        await pilot.pause()
        assert with_back.backs == 1 and with_back.screen is with_back.shown


def full_state() -> EngineState:
    state = make_state(active_signals=(CALL, PUT), health=health())
    state.recent_signals.extend([CALL, PUT, SQUEEZE, PAIN])
    state.chains[("NIFTY", EXPIRY)] = ChainUpdate(snapshot(), stored=True)
    state.failures = (FetchFailure("NIFTY", None, "internal", "boom " * 30),)
    state.last_tick = Tick(seq=3, started_at=NOW, finished_at=NOW, failures=state.failures)
    return state


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
@pytest.mark.parametrize("screen_cls", [PatternsScreen, ProvidersScreen, HelpScreen])
async def test_renders_at_small_and_large_sizes(
    screen_cls: type[Screen[Any]], size: tuple[int, int]
) -> None:
    state = full_state()
    app = Harness(lambda: screen_cls(state))  # type: ignore[call-arg]
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.shown
        assert screen is not None and app.screen is screen
        screen.on_state(state)  # type: ignore[attr-defined]
        await pilot.pause()
        svg = app.export_screenshot()
        assert screen.TITLE and screen.TITLE in svg


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released): connections are
    refused at once, nothing leaves the machine."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_provider_shows_zero_success(tmp_path: Path) -> None:
    """NSE on a closed port, three watched symbols: resolving them asks nothing of the network,
    so only the chain requests count, and every one of them failed."""
    from optterm.engine.compose import make_poller
    from optterm.providers.factory import build_provider

    cfg = tmp_path / "optterm.toml"
    cfg.write_text(
        f'[providers]\norder = ["nse"]\n[providers.nse]\nbase_url = "http://127.0.0.1:'
        f'{closed_port()}"\nmin_interval = 0.2\n[providers.failover]\nretries = 0\n'
    )
    settings = load_settings(cfg, env={})
    assert len(settings.poller.watch) == 3
    provider = build_provider(settings)
    poller = make_poller(settings, provider, None)
    try:
        await poller.resolve()
        for _ in range(2):
            tick = await poller.tick_once()
            assert tick.failures and not tick.updates
    finally:
        await provider.close()
    (nse,) = tick.health
    assert nse.requests > 0 and nse.successes == 0 and nse.failed == nse.requests
    assert nse.success_rate == 0.0

    state = make_state(health=tick.health)
    state.settings = settings
    app = Harness(lambda: ProvidersScreen(state))
    async with app.run_test(size=(200, 50)):
        screen = app.shown
        assert isinstance(screen, ProvidersScreen)
        row = dict(
            zip(
                [c.value for c in screen.query_one("#providers", DataTable).columns],
                cells(screen.query_one("#providers", DataTable), 0),
                strict=True,
            )
        )
        assert row["Provider"] == "nse" and row["Success"] == "0%"
        assert row["Requests"] == str(nse.requests) and "connection" in row["Failures"]


async def test_dashboard_signal_ages_run_on_the_datas_clock() -> None:
    """A simulated session days behind the wall clock: a signal first seen two simulated
    minutes ago is 2m old, not thousands of minutes (the wall clock against simulated time)."""
    from optterm.screens.dashboard import DashboardScreen

    sim_now = NOW - timedelta(days=3)
    sig = replace(
        CALL,
        first_seen=sim_now - timedelta(minutes=2),
        last_seen=sim_now - timedelta(seconds=30),
        expires_at=sim_now + timedelta(minutes=14),
    )
    live = replace(PUT, first_seen=NOW - timedelta(minutes=7))  # a live one: the app clock
    snap = replace(snapshot(), provider_ts=sim_now, fetched_at=NOW)
    state = make_state(active_signals=(sig, live))
    state.chains[("NIFTY", EXPIRY)] = ChainUpdate(snap, stored=True)
    assert state.clock_for(Feed.SIMULATED) == sim_now
    assert state.clock_for(Feed.LIVE) == NOW
    app = Harness(lambda: DashboardScreen(state))
    async with app.run_test(size=(220, 50)):
        text = content(app.shown.query_one("#signals", Static))
        lines = [line for line in text.splitlines() if "·" in line and "24500" in line]
        assert len(lines) == 2, text
        assert lines[0].rstrip().endswith("· 2m"), text
        assert lines[1].rstrip().endswith("· 7m"), text
