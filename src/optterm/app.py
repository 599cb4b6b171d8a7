"""The Textual app. For now one screen: the latest chain of a watched symbol, refreshed per tick.

The engine runs in an async worker that survives errors; each Tick arrives as one message, so the
screen re-renders once per tick. The full dashboard is built on this shell in a later issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from optterm.engine.events import Tick
from optterm.model import ChainSnapshot, Feed
from optterm.output import IST, data_age, source_label

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.runtime import CliOptions

__all__ = ["OpttermApp", "run_tui"]

log = logging.getLogger("optterm.app")

COLUMNS = ("CE OI", "CE ΔOI", "CE Vol", "CE IV", "CE LTP", "Strike", "PE LTP", "PE IV", "PE Vol",
           "PE ΔOI", "PE OI")  # fmt: skip


def _cell(x: float, kind: str) -> str:
    if math.isnan(x):
        return ""
    if kind == "int":
        return f"{x:,.0f}"
    if kind == "signed":
        return f"{x:+,.0f}"
    if kind == "iv":
        return f"{x * 100:.2f}"
    return f"{x:,.2f}"


class TickArrived(Message):
    def __init__(self, tick: Tick) -> None:
        super().__init__()
        self.tick = tick


class OpttermApp(App[int]):
    TITLE = "optterm"
    CSS = """
    #status { height: 1; padding: 0 1; background: $boost; }
    #status.simulated { background: $warning 30%; }
    #status.stale { background: $error 40%; }
    DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        *(Binding(str(i), f"symbol({i - 1})", show=False) for i in range(1, 10)),
        Binding("right_square_bracket", "expiry(1)", "Next expiry"),
        Binding("left_square_bracket", "expiry(-1)", "Prev expiry"),
        Binding("c", "centre", "Centre on ATM"),
    ]

    def __init__(self, settings: Settings, *, store_history: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.store_history = store_history
        self.symbols = [w.symbol for w in settings.poller.watch]
        self.symbol = self.symbols[0]
        self.expiry_index = 0
        self.latest: dict[tuple[str, Any], ChainSnapshot] = {}
        self.last_tick: Tick | None = None
        self.engine_error: str | None = None
        # Set on every tick handled; lets tests and attachments wait on data, not on time.
        self.ticked = asyncio.Event()
        self._stop = asyncio.Event()
        self._engine_done = asyncio.Event()
        self._shown: tuple[str, Any] | None = None  # (symbol, expiry) on screen

    def compose(self) -> ComposeResult:
        yield Static("starting…", id="status")
        yield DataTable(id="chain", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.run_engine()
        self.set_interval(1.0, self.refresh_status)

    @work(exclusive=True, group="engine")
    async def run_engine(self) -> None:
        from optterm.providers.factory import build_provider
        from optterm.runtime import make_engine, open_configured_store

        store = provider = None
        stop = self._stop
        try:
            store = await open_configured_store(self.settings) if self.store_history else None
            provider = build_provider(self.settings)
            engine = make_engine(self.settings, provider, store, app_sink=self._toast)
            poller = engine.poller
            sub = poller.subscribe()
            await poller.resolve()
            runner = asyncio.create_task(engine.run(stop))
            while not runner.done():
                getter = asyncio.create_task(sub.get())
                done, _ = await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    self.post_message(TickArrived(getter.result()))
                else:
                    getter.cancel()
        except Exception as exc:  # shown in the status line; the app stays usable
            log.exception("engine stopped")
            self.engine_error = str(exc)
            self.refresh_status()
        finally:
            stop.set()
            if provider is not None:
                await provider.close()
            if store is not None:
                await store.close()
            self._engine_done.set()

    def _toast(self, item) -> None:
        """In-app delivery of an alert: a toast (the dispatcher runs on this app's loop)."""
        self.notify(item.body, title=item.title, severity="warning", timeout=15)

    async def action_quit(self) -> None:
        """Let the tick in progress finish and the store close before leaving."""
        self._stop.set()
        if self.workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._engine_done.wait(), 10)
        self.exit()

    def on_tick_arrived(self, message: TickArrived) -> None:
        self.last_tick = message.tick
        for update in message.tick.updates:
            snap = update.snapshot
            self.latest[(snap.symbol, snap.expiry)] = snap
        self.render_chain()
        self.refresh_status()
        self.ticked.set()

    def current(self) -> ChainSnapshot | None:
        expiries = sorted(e for s, e in self.latest if s == self.symbol)
        if not expiries:
            return None
        self.expiry_index = min(self.expiry_index, len(expiries) - 1)
        return self.latest[(self.symbol, expiries[self.expiry_index])]

    def render_chain(self) -> None:
        snap = self.current()
        table = self.query_one(DataTable)
        row_before = table.cursor_row
        table.clear()
        if snap is None:
            return
        atm = snap.atm_index()
        for i, strike in enumerate(snap.strikes.tolist()):
            ce, pe = snap.ce, snap.pe
            label = f"{strike:,.0f}" + (" ◀ATM" if i == atm else "")
            table.add_row(
                _cell(ce.oi[i], "int"),
                _cell(ce.oi_change[i], "signed"),
                _cell(ce.volume[i], "int"),
                _cell(ce.iv[i], "iv"),
                _cell(ce.ltp[i], "price"),
                label,
                _cell(pe.ltp[i], "price"),
                _cell(pe.iv[i], "iv"),
                _cell(pe.volume[i], "int"),
                _cell(pe.oi_change[i], "signed"),
                _cell(pe.oi[i], "int"),
            )
        if self._shown != (snap.symbol, snap.expiry):
            # A new chain opens on the money, where a trader looks first.
            self._shown = (snap.symbol, snap.expiry)
            self.action_centre()
        elif row_before is not None and row_before < table.row_count:
            table.move_cursor(row=row_before)

    def action_centre(self) -> None:
        snap = self.current()
        if snap is None:
            return
        table = self.query_one(DataTable)
        atm = snap.atm_index()
        table.move_cursor(row=atm, scroll=False)
        # After layout, so the table knows its height and can put ATM mid-screen.
        table.call_after_refresh(
            lambda: table.scroll_to(y=max(0, atm - table.size.height // 2), animate=False)
        )

    def refresh_status(self) -> None:
        status = self.query_one("#status", Static)
        if self.engine_error:
            status.update(Text(f"ENGINE STOPPED: {self.engine_error}"))
            status.set_class(True, "stale")
            return
        snap = self.current()
        if snap is None:
            status.update(Text(f"{self.symbol}: waiting for the first tick…"))
            return
        age = data_age(snap, datetime.now(UTC))
        stale = age > max(3 * self.settings.poller.interval, 60)
        when = snap.provider_ts.astimezone(IST).strftime("%H:%M:%S IST")
        # Text, not markup: provider names and messages must never be parsed as styles.
        status.update(
            Text(
                f"{snap.symbol} {snap.expiry:%d-%b-%Y}  spot {snap.spot:,.2f}  "
                f"[{source_label(snap)}]  data {when}  age {age:.0f}s"
                + ("  STALE" if stale else "")
                + ("  — simulated prices, not the market" if snap.feed is Feed.SIMULATED else "")
            )
        )
        status.set_class(snap.feed is Feed.SIMULATED, "simulated")
        status.set_class(stale, "stale")

    def action_symbol(self, index: int) -> None:
        if index < len(self.symbols):
            self.symbol = self.symbols[index]
            self.render_chain()
            self.refresh_status()

    def action_expiry(self, step: int) -> None:
        self.expiry_index = max(0, self.expiry_index + step)
        self.render_chain()
        self.refresh_status()


def run_tui(opts: CliOptions) -> int:
    from optterm import paths
    from optterm.logs import configure_logging
    from optterm.runtime import load

    settings = load(opts)
    # Fail before taking over the screen, with the same messages and exit codes as other commands.
    asyncio.run(_preflight(settings))
    configure_logging(settings.log.level, settings.log.format, file=paths.log_dir() / "optterm.log")
    return OpttermApp(settings).run() or 0


async def _preflight(settings: Settings) -> None:
    from optterm.providers.factory import build_provider
    from optterm.runtime import make_poller, open_configured_store

    store = await open_configured_store(settings)
    provider = build_provider(settings)
    try:
        await make_poller(settings, provider, None).resolve()
    finally:
        await provider.close()
        await store.close()
