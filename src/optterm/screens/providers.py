"""The providers screen: each data provider's health, live from the failover, and the last tick.

The numbers are the failover's `ProviderHealth` rows as published with every tick (today's
counts), in the configured failover order, the same fields `optterm providers` prints. Below them:
which provider served the chains on screen, and the fetch failures of the last tick.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from optterm.engine.provider_status import health_row
from optterm.market import IST
from optterm.model import Feed
from optterm.present.time import age_text
from optterm.screens.base import StateScreen
from optterm.screens.patterns import FEED_STYLE, go_back, sync_table
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.engine.state import EngineState

__all__ = ["BREAKER_STYLE", "COLUMNS", "ProvidersScreen", "serving_line"]

COLUMNS = ("#", "Provider", "Breaker", "Requests", "Success", "Last ms", "Mean ms", "Failures",
           "Last error", "When")  # fmt: skip
BREAKER_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def serving_line(state: EngineState) -> Text:
    """`serving: simulator (SIMULATED)`: who served the chains now held, per provider and feed."""
    groups: dict[tuple[str, Feed], set[str]] = defaultdict(set)
    for update in state.chains.values():
        snap = update.snapshot
        groups[(snap.provider, snap.feed)].add(snap.symbol)
    out = Text("serving: ", style="bold")
    if not groups:
        out.append("nothing yet (waiting for the first chain)", style="dim")
        return out
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0][0]))
    for i, ((provider, feed), symbols) in enumerate(ordered):
        if i:
            out.append("; ")
        out.append(f"{provider} (")
        out.append(feed.value, style=FEED_STYLE.get(feed, ""))
        out.append(")")
        if len(ordered) > 1:
            out.append(f" for {', '.join(sorted(symbols))}")
    return out


class ProvidersScreen(StateScreen):
    """Breaker state, requests, success rate, latency and errors per provider; last tick's fails."""

    TITLE = "Providers"
    DEFAULT_CSS = """
    ProvidersScreen #serving { height: auto; padding: 0 1; background: $boost; }
    ProvidersScreen #serving.simulated { background: $warning 30%; }
    ProvidersScreen #providers { height: auto; max-height: 60%; }
    ProvidersScreen #tick-pane { height: 1fr; border-top: solid $primary; padding: 0 1; }
    """
    BINDINGS: ClassVar = [Binding("escape", "back", "Back")]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield Static(id="serving")
        yield DataTable(id="providers", cursor_type="row")
        with VerticalScroll(id="tick-pane"):
            yield Static(id="tick")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#providers", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.render_state()

    def action_back(self) -> None:
        go_back(self)

    # -- data -----------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Configured providers in failover order, then any other provider with health."""
        order = list(self.state.settings.providers.order)
        health = {h.provider: h for h in self.state.health}
        names = order + [name for name in health if name not in order]
        return [
            health_row(health.get(name), name, order.index(name) + 1 if name in order else None)
            for name in names
        ]

    def _when(self, at: datetime | None) -> str:
        if at is None:
            return ""
        ago = (self.state.now() - at).total_seconds()
        text = f"{at.astimezone(IST):%H:%M:%S}"
        return f"{text} ({age_text(ago)} ago)" if ago >= 0 else text

    def row_cells(self, r: dict[str, Any]) -> list[Any]:
        breaker = r["breaker"]
        style = BREAKER_STYLE.get(breaker or "", "dim")
        failures = ", ".join(
            f"{kind} {n}" for kind, n in sorted(r["failures"].items(), key=lambda kv: -kv[1])
        )

        def ms(value: float | None) -> str:
            return "" if value is None else f"{value:,.0f}"

        rate = "" if r["success_rate"] is None else f"{r['success_rate']:.0%}"
        breaker_text = "no data yet" if breaker is None else breaker.replace("_", "-")
        return [
            Text("" if r["order"] is None else str(r["order"]), style=style),
            Text(r["provider"], style=style),
            Text(breaker_text, style=f"{style} bold" if breaker else style),
            Text(str(r["requests"]), style=style, justify="right"),
            Text(rate, style=style, justify="right"),
            Text(ms(r["latency_ms_last"]), style=style, justify="right"),
            Text(ms(r["latency_ms_mean"]), style=style, justify="right"),
            Text(failures, style=style),
            Text(r["last_error"] or "", style=style),
            Text(self._when(r["last_error_at"]), style=style),
        ]

    # -- rendering ------------------------------------------------------------------------------

    def render_state(self) -> None:
        if not self.is_mounted:
            return
        rows = self.rows()
        sync_table(
            self.query_one("#providers", DataTable),
            [(r["provider"], self.row_cells(r)) for r in rows],
        )
        serving = self.query_one("#serving", Static)
        line = serving_line(self.state)
        order = " → ".join(self.state.settings.providers.order)
        line.append(f"   failover order: {order}", style="dim")
        serving.update(line)
        simulated = any(u.snapshot.feed is Feed.SIMULATED for u in self.state.chains.values())
        serving.set_class(simulated, "simulated")
        self.sub_title = f"{len(rows)} providers · today's counts"
        self.query_one("#tick", Static).update(self.tick_text())

    def tick_text(self) -> Text:
        state = self.state
        out = Text()
        if state.engine_error:
            out.append(f"ENGINE STOPPED: {state.engine_error}\n", style="bold red")
        tick = state.last_tick
        if tick is None:
            out.append("No tick yet.", style="dim")
            return out
        out.append(
            f"Last tick #{tick.seq} at {tick.finished_at.astimezone(IST):%H:%M:%S} IST "
            f"({age_text((state.now() - tick.finished_at).total_seconds())} ago), "
            f"took {tick.duration_s:.1f} s, {len(tick.updates)} chains: ",
            style="bold",
        )
        if not state.failures:
            out.append("no fetch failures", style="green")
            return out
        n = len(state.failures)
        out.append(f"{n} fetch failure{'s' if n != 1 else ''}", style="bold red")
        for f in state.failures:
            expiry = f" {f.expiry:%d-%b-%Y}" if f.expiry else ""
            out.append(f"\n  {f.symbol}{expiry}  ")
            out.append(f.kind, style="red")
            out.append(f"  {f.message}")
        return out
