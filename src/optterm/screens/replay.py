"""Replay ("time travel"): one stored chain's day, as the dashboard showed it, at any time.

Entered from the dashboard (`T`) for the chain it shows, on that chain's day, at its newest
stored point. The engine's replay (engine/replay) runs beside the store, on the engine's loop
(engine/loopproxy.beside), so the screen never waits on it and the live feed keeps polling and
recording meanwhile; live ticks do not touch this screen. Everything shown is as of the cursor:
the chain with its analytics, the metrics, the signals and alert firings up to then (a scan of
the whole day runs in the background for the timeline's marks and `n`/`N`). Nothing a replay
computes is stored or sent.

Keys (mpv/YouTube/TradingView conventions): space play/pause, `.`/`,` one snapshot on/back,
shift+→/← (or `]`/`[`) ±5 min, ctrl+→/← (or `}`/`{`) ±30 min, `>`/`<` double/halve the speed,
`@` go to a time, `O` the open, `Y` the previous session's close, `n`/`N` the next/previous
signal or alert, `=` pin a baseline (ΔOI and buildups since the pin; ΔIV and Δpremium of the
selected strike under the chain), `L` or escape back to LIVE.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from optterm.engine.loopproxy import beside
from optterm.engine.replay import DayEvents, Replay, ReplayProblem
from optterm.market import IST
from optterm.present.chain import metrics_fitted, source_label
from optterm.present.header import replay_badge
from optterm.screens.base import StateScreen
from optterm.store.timecodec import from_us
from optterm.widgets.chain_table import ChainTable
from optterm.widgets.timeline import Timeline

if TYPE_CHECKING:
    from optterm.engine.events import ChainUpdate, Tick
    from optterm.engine.replay.session import Mark
    from optterm.engine.state import EngineState

__all__ = ["GoToTime", "ReplayScreen", "pin_line"]

log = logging.getLogger("optterm.tui")

SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DEFAULT_SPEED = 60.0
NO_STORE = "Replay needs the store; it is off in this session."


class GoToTime(ModalScreen[str | None]):
    """Ask for a time to go to: `10:45`, `-30m`, `+5m`, `open`, `close`."""

    DEFAULT_CSS = """
    GoToTime { align: center middle; }
    GoToTime #goto { width: 50; height: auto; border: round $accent; background: $surface; }
    GoToTime #goto-note { color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="goto"):
            yield Input(placeholder="10:45, -30m, +5m, open or close", id="goto-input")
            yield Static("enter: go · escape: cancel", id="goto-note")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _at_strike(update: ChainUpdate, strike: float) -> int | None:
    hits = [i for i, k in enumerate(update.snapshot.strikes.tolist()) if abs(k - strike) < 1e-6]
    return hits[0] if hits else None


def _delta(now: float, then: float, fmt: str) -> str:
    d = now - then
    return "n/a" if math.isnan(d) else format(d, fmt)


def pin_line(pinned: tuple[datetime, ChainUpdate], now: ChainUpdate, strike: float | None) -> str:
    """What changed since the pin: spot, total OI per side, ATM IV and, for the selected strike,
    each side's ΔOI, ΔIV (points) and Δpremium."""
    at, then = pinned
    a, b = then.snapshot, now.snapshot
    parts = [f"PIN {at.astimezone(IST):%H:%M:%S} → spot {_delta(b.spot, a.spot, '+,.2f')}"]
    ma, mb = then.metrics, now.metrics
    if ma is not None and mb is not None:
        parts.append(f"CE OI {_delta(mb.ce_oi, ma.ce_oi, '+,.0f')}")
        parts.append(f"PE OI {_delta(mb.pe_oi, ma.pe_oi, '+,.0f')}")
        parts.append(f"ATM IV {_delta(mb.atm_iv * 100, ma.atm_iv * 100, '+.2f')} pts")
    if strike is not None:
        i, j = _at_strike(then, strike), _at_strike(now, strike)
        if i is not None and j is not None:
            for side in ("CE", "PE"):
                la, lb = a.side(side), b.side(side)
                iv_a = then.enriched.side(side).iv[i] if then.enriched else math.nan
                iv_b = now.enriched.side(side).iv[j] if now.enriched else math.nan
                parts.append(
                    f"{strike:g} {side} ΔOI {_delta(lb.oi[j], la.oi[i], '+,.0f')} "
                    f"ΔIV {_delta(iv_b * 100, iv_a * 100, '+.2f')} "
                    f"Δprem {_delta(lb.ltp[j], la.ltp[i], '+,.2f')}"
                )
    return " · ".join(parts)


SIDE_WIDTH = 44  # the signal and alert panes, border included
SIDE_MIN_SCREEN = 120  # narrower screens give the chain the whole width


def _flow(parts: list[str], width: int) -> list[str]:
    """The header's parts joined with ` · ` into as few lines of `width` as it takes, never
    splitting a part: a narrow terminal still shows the source and the day, on a second line."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines


class ReplayScreen(StateScreen):
    """One chain's stored day at a cursor (see the module docstring)."""

    DEFAULT_CSS = """
    ReplayScreen #replay-head { height: auto; padding: 0 1; background: $warning 40%;
                                text-style: bold; }
    ReplayScreen #body { height: 1fr; }
    ReplayScreen #main { width: 1fr; }
    ReplayScreen #side { width: 44; border-left: tall $panel; }
    ReplayScreen.-narrow #side { display: none; }
    ReplayScreen ChainTable { height: 1fr; }
    ReplayScreen #metrics { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #pin { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #timeline { margin: 0 1; }
    ReplayScreen .pane-title { background: $panel; text-style: bold; padding: 0 1; }
    ReplayScreen #signals { height: 1fr; padding: 0 1; }
    ReplayScreen #events { height: 1fr; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("space", "play", "Play/pause"),
        Binding("full_stop", "step(1)", "Step"),
        Binding("comma", "step(-1)", "Back", show=False),
        # Shift/ctrl+arrows as in video players; the brackets do the same in a terminal (or a
        # tmux) that does not deliver modified arrows.
        Binding("shift+right,right_square_bracket", "shift(300)", "+5m", show=False),
        Binding("shift+left,left_square_bracket", "shift(-300)", "-5m", show=False),
        Binding("ctrl+right,right_curly_bracket", "shift(1800)", "+30m", show=False),
        Binding("ctrl+left,left_curly_bracket", "shift(-1800)", "-30m", show=False),
        Binding("greater_than_sign", "speed(2)", "Faster", show=False),
        Binding("less_than_sign", "speed(0.5)", "Slower", show=False),
        Binding("at", "goto", "Go to"),
        Binding("O", "open", "Open", show=False),
        Binding("Y", "previous_close", "Prev close", show=False),
        Binding("n", "mark(1)", "Next signal"),
        Binding("N", "mark(-1)", "Prev signal", show=False),
        Binding("equals_sign", "pin", "Pin"),
        Binding("L,escape", "live", "LIVE"),
    ]

    def __init__(
        self,
        state: EngineState,
        symbol: str,
        expiry: date,
        day: date,
        at: datetime | None = None,
    ) -> None:
        super().__init__(state)
        self.symbol, self.expiry, self.day = symbol, expiry, day
        self.start_at = at
        self.replay: Replay | None = None
        self.times: list[datetime] = []
        self.tick: Tick | None = None
        self.cursor: datetime | None = None
        self.events: DayEvents | None = None
        self.marks: list[Mark] = []
        self.playing = False
        self.speed = DEFAULT_SPEED
        self.pinned: tuple[datetime, ChainUpdate] | None = None
        self.message = ""
        self.moves = 0  # completed moves (tests wait on it)
        self._lock = asyncio.Lock()
        self._wanted: datetime | None = None  # the newest time a drag of the timeline asked for

    def compose(self) -> ComposeResult:
        yield Static(id="replay-head")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield ChainTable(id="chain", oi_unit=self.state.settings.display.oi_unit)
                yield Static(id="metrics")
                yield Static(id="pin")
                yield Timeline(id="timeline")
            with Vertical(id="side"):
                yield Static("Signals up to the cursor", classes="pane-title")
                yield Static(id="signals")
                yield Static("Alerts the rules fired (never sent)", classes="pane-title")
                yield Static(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(not self._side_shown(), "-narrow")
        self.query_one(ChainTable).window = 20
        self.query_one(ChainTable).focus()
        self._render_head()
        self._open(self.day, self.start_at)

    def render_state(self) -> None:
        """Live ticks keep coming (the feed records on): they do not move a replay."""

    # -- opening --------------------------------------------------------------------------------

    @work(group="replay-open", exclusive=True, exit_on_error=False)
    async def _open(self, day: date, at: datetime | None) -> None:
        store = self.state.store
        if store is None:
            self._say(NO_STORE)
            return
        settings = self.state.settings
        try:
            replay = await beside(
                store, Replay.open, settings, day, [self.symbol], self.expiry, rules=True
            )
        except ReplayProblem as exc:
            self._say(str(exc))
            return
        except Exception as exc:  # the store away, a damaged row: said, never a crash
            log.exception("replay: opening %s %s failed", self.symbol, day)
            self._say(f"Replay could not open: {exc}")
            return
        async with self._lock:
            self.playing = False
            self.replay, self.day, self.events, self.marks = replay, day, None, []
            self.times = [from_us(t) for t in replay.times]
            self.pinned = None
            tick = await replay.to(self.times[-1] if at is None else at)
            self._show(tick, None)
        self._scan(day)

    @work(group="replay-scan", exclusive=True, exit_on_error=False)
    async def _scan(self, day: date) -> None:
        """The whole day through the engine once, for the timeline's marks and `n`/`N`."""
        store, replay = self.state.store, self.replay
        if store is None or replay is None:
            return
        try:
            scan = await beside(
                store, Replay.open, self.state.settings, day, [self.symbol], self.expiry
            )
            events = await scan.run()
        except Exception as exc:
            log.warning("replay: scanning %s %s failed: %s", self.symbol, day, exc)
            return
        if replay is not self.replay:
            return  # another day was opened meanwhile
        self.events = events
        self.marks = replay.marks(events)
        self._render_timeline()
        self._render_side()

    # -- moving ---------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.message = text
        self.notify(text, severity="warning", timeout=6)
        self._render_head()

    async def _move(
        self, how: Callable[[Replay], Awaitable[Tick | None]], cursor: datetime | None = None
    ) -> None:
        replay = self.replay
        if replay is None:
            return
        async with self._lock:
            try:
                tick = await how(replay)
            except ReplayProblem as exc:
                self._say(str(exc))
                return
            if tick is not None:
                self.message = ""
                self._show(tick, cursor)

    def _go(
        self, how: Callable[[Replay], Awaitable[Tick | None]], c: datetime | None = None
    ) -> None:
        self.playing = False
        self.run_worker(self._move(how, c), group="replay-move", exit_on_error=False)

    def action_step(self, n: int) -> None:
        replay = self.replay
        if replay is None:
            return
        if n > 0:
            self._go(lambda r: r.step())
        else:
            self._go(lambda r: r.go(r.index - 1) if r.index > 0 else _none())

    def action_shift(self, seconds: int) -> None:
        if self.cursor is None:
            return
        at = self.cursor + timedelta(seconds=seconds)
        self._go(lambda r: r.to(at))

    def action_open(self) -> None:
        self._go(lambda r: r.go(0))

    def action_goto(self) -> None:
        def chosen(text: str | None) -> None:
            replay = self.replay
            if not text or replay is None:
                return
            try:
                at = replay.resolve(text)
            except ReplayProblem as exc:
                self._say(str(exc))
                return
            self._go(lambda r: r.seek(at), at)

        self.app.push_screen(GoToTime(), chosen)

    def on_timeline_picked(self, message: Timeline.Picked) -> None:
        self.playing = False
        self._wanted = message.at
        self.run_worker(self._follow_drag(), group="replay-drag", exclusive=True)

    async def _follow_drag(self) -> None:
        while self._wanted is not None:
            at, self._wanted = self._wanted, None

            async def to(r: Replay, at: datetime = at) -> Tick:
                return await r.to(at)

            await self._move(to)

    def action_mark(self, step: int) -> None:
        if self.events is None:
            self.notify("Still going through the day for its signals and alerts…", timeout=3)
            return
        if self.cursor is None:
            return
        found = [m for m in self.marks if m.kind in ("signal", "alert")]
        here = self.cursor
        nxt = (
            next((m for m in found if m.at > here), None)
            if step > 0
            else next((m for m in reversed(found) if m.at < here), None)
        )
        if nxt is None:
            self.notify("No further signal or alert that way.", timeout=3)
            return
        self._go(lambda r: r.seek(nxt.at), nxt.at)

    def action_previous_close(self) -> None:
        self.playing = False

        async def go() -> None:
            store = self.state.store
            if store is None:
                self._say(NO_STORE)
                return
            prev = await beside(
                store,
                Replay.previous_day,
                self.state.settings,
                self.symbol,
                self.expiry,
                self.day,
            )
            if prev is None:
                self._say(f"No {self.symbol} {self.expiry} day is stored before {self.day}.")
                return
            self._open(prev, None)

        self.run_worker(go(), group="replay-move", exit_on_error=False)

    def action_pin(self) -> None:
        tick, cursor = self.tick, self.cursor
        if tick is None or cursor is None or not tick.updates:
            return
        if self.pinned is not None:
            self.pinned = None
            self._go(lambda r: r.pin(None), cursor)
            return
        self.pinned = (cursor, tick.updates[0])
        self._go(lambda r: r.pin(cursor), cursor)

    def action_speed(self, factor: float) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self.speed))
        i = max(0, min(len(SPEEDS) - 1, i + (1 if factor > 1 else -1)))
        self.speed = SPEEDS[i]
        self._render_head()

    def action_play(self) -> None:
        if self.replay is None:
            return
        self.playing = not self.playing
        self._render_head()
        if self.playing:
            self._play()

    @work(group="replay-play", exclusive=True, exit_on_error=False)
    async def _play(self) -> None:
        """Step at `speed` times the session's pace until paused or the day ends."""
        while self.playing and self.replay is not None:
            replay = self.replay
            i = replay.index
            if i + 1 >= len(self.times):
                self.playing = False
                self._render_head()
                self.notify("End of the stored day.", timeout=3)
                return
            gap = (self.times[i + 1] - self.times[i]).total_seconds() if i >= 0 else 0.0
            t0 = time.monotonic()
            await self._move(lambda r: r.step())
            # The session's own pace: the next snapshot after its gap divided by the speed.
            wait = gap / self.speed - (time.monotonic() - t0)
            if wait > 0 and self.playing:
                await asyncio.sleep(wait)

    def action_live(self) -> None:
        self.playing = False
        self.app.pop_screen()

    # -- rendering ------------------------------------------------------------------------------

    def _show(self, tick: Tick, cursor: datetime | None) -> None:
        self.tick = tick
        self.moves += 1
        if tick.updates:
            snap = tick.updates[0].snapshot
            self.cursor = cursor or snap.provider_ts
            table = self.query_one(ChainTable)
            first = table.row_count == 0
            table.set_chain(snap, tick.updates[0].enriched)
            if first:
                table.center_atm()
        self._render_head()
        m = tick.updates[0].metrics if tick.updates else None
        width = max(self.app.size.width - (SIDE_WIDTH + 2 if self._side_shown() else 0) - 2, 20)
        self.query_one("#metrics", Static).update(
            Text("\n".join(metrics_fitted(m, width, max_lines=3))) if m else Text("")
        )
        self._render_pin()
        self._render_timeline()
        self._render_side()

    def _side_shown(self) -> bool:
        return self.app.size.width >= SIDE_MIN_SCREEN

    def on_resize(self) -> None:
        # Below SIDE_MIN_SCREEN columns the signal and alert panes would squeeze the puts off the
        # chain; the timeline's marks and `n`/`N` still reach every signal and firing.
        self.set_class(not self._side_shown(), "-narrow")
        if self.tick is not None:
            self._render_head()

    def _render_head(self) -> None:
        head = self.query_one("#replay-head", Static)
        tick = self.tick
        if tick is None or not tick.updates or self.cursor is None:
            text = self.message or f"REPLAY {self.symbol} {self.expiry} · opening {self.day}…"
            head.update(Text(text))
            return
        snap = tick.updates[0].snapshot
        badge = replay_badge(self.cursor, snap.provider_ts, playing=self.playing, speed=self.speed)
        parts = [
            badge,
            f"{snap.symbol} {snap.expiry:%d-%b-%Y}",
            f"{self.day:%a %d-%b-%Y}",
            source_label(snap),
        ]
        if self.pinned is not None:
            parts.append(f"pin {self.pinned[0].astimezone(IST):%H:%M:%S}")
        if self.message:
            parts.append(self.message)
        head.update(Text("\n".join(_flow(parts, self.app.size.width - 2))))

    def _render_pin(self) -> None:
        pin = self.query_one("#pin", Static)
        tick = self.tick
        if self.pinned is None or tick is None or not tick.updates:
            pin.update(Text("= pins this time as a baseline", style="dim"))
            return
        strike = self.query_one(ChainTable).selected()[0]
        pin.update(Text(pin_line(self.pinned, tick.updates[0], strike)))

    def _render_timeline(self) -> None:
        replay = self.replay
        if replay is None or not self.times:
            return
        opened, closed = replay.calendar.session_bounds(self.day)
        self.query_one(Timeline).show(
            min(opened, self.times[0]), max(closed, self.times[-1]), self.times, self.marks,
            self.cursor,
        )  # fmt: skip

    def _render_side(self) -> None:
        cursor = self.cursor
        sig_lines: list[Text] = []
        alert_lines: list[Text] = []
        if cursor is not None and self.events is not None:
            sigs = [s for s in self.events.signals if s.first_seen <= cursor][-10:]
            for s in reversed(sigs):
                sig_lines.append(
                    Text.assemble(
                        (f"{s.first_seen.astimezone(IST):%H:%M:%S} ", "dim"),
                        (f"{s.kind.value} ", "bold"),
                        f"{s.direction.value} {s.confidence}",
                    )
                )
            fired = [a for a in self.events.alerts if a.fired_at <= cursor][-10:]
            for a in reversed(fired):
                alert_lines.append(
                    Text.assemble(
                        (f"{a.fired_at.astimezone(IST):%H:%M:%S} ", "dim"), (a.title, "bold yellow")
                    )
                )
        elif self.tick is not None:
            for s in self.tick.active[:10]:
                sig_lines.append(Text(f"{s.kind.value} {s.direction.value} {s.confidence}"))
        waiting = "going through the day…" if self.events is None else None
        self.query_one("#signals", Static).update(
            Text("\n").join(sig_lines) if sig_lines else Text(waiting or "none yet", style="dim")
        )
        self.query_one("#events", Static).update(
            Text("\n").join(alert_lines)
            if alert_lines
            else Text(waiting or "none yet", style="dim")
        )

    def on_chain_table_row_selected(self, message: Any) -> None:
        self._render_pin()

    def on_chain_table_cursor_moved(self, message: Any) -> None:
        self._render_pin()  # the pin line follows the strike under the cursor


async def _none() -> None:
    return None
