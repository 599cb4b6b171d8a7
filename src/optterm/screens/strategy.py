"""The strategy screen: the legs picked on the dashboard's chain (`b`/`s`), their payoff chart,
Greeks, figures and P&L tables, seen under a what-if of spot, IV and date moved by keys.

Everything shown is the engine's strategy desk (engine/strategydesk.py) analysed on the latest
chains of the underlying, recomputed on each tick and each key; the maths is strategy/, the
same figures `optterm strategy` prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from optterm.engine.state import EngineState
from optterm.present.header import gamma_spec, level_spec
from optterm.present.money import rupees_whole as _money
from optterm.screens.base import StateScreen
from optterm.screens.patterns import go_back
from optterm.screens.strategy_compare import COMPARE_STYLES, compare_lines, compare_text
from optterm.widgets.payoff_chart import ChartData, Curve, Mark, PayoffChart, money_short
from optterm.widgets.status_bar import StatusBar
from optterm.widgets.text_panel import TextPanel

if TYPE_CHECKING:
    from optterm.engine.strategydesk import DeskResult
    from optterm.strategy.analysis import Analysis

__all__ = ["StrategyScreen", "figures_text", "whatif_text"]

# The legs table's columns: (head, width, rank). The narrowest screen keeps the lowest ranks; a
# column that does not fit is left out whole, never cut (as `optterm strategy` prints it). Cells
# are two apart.
LEG_COLUMNS = (
    ("Leg", 12, 0), ("Expiry", 9, 6), ("Qty", 4, 1), ("Entry", 9, 2), ("Now", 9, 8),
    ("IV %", 6, 5), ("IV±", 4, 9), ("Δ lots", 7, 3), ("Θ ₹/day", 8, 4), ("V ₹/pt", 8, 7),
)  # fmt: skip


def fit_leg_columns(width: int) -> tuple[int, ...]:
    """The indices of the legs columns that fit in `width` cells."""
    shown = sorted(range(len(LEG_COLUMNS)), key=lambda i: LEG_COLUMNS[i][2])
    while len(shown) > 1 and sum(LEG_COLUMNS[i][1] + 2 for i in shown) > width:
        shown.pop()
    return tuple(sorted(shown))


SIDE_WIDTH = 48
NARROW = 110  # below this many columns the figures go under the chart, in short
TALL = 34  # from this many lines the P&L tables show beside the chart


def _short(x: float | None) -> str:
    return money_short(math.nan if x is None else x)


def _when(when: datetime, tz: Any) -> str:
    return when.astimezone(tz).strftime("%d-%b %H:%M")


def whatif_text(result: DeskResult) -> str:
    w = result.whatif
    parts = []
    if w.spot_pct:
        parts.append(f"spot {w.spot_pct:+g} %")
    if w.iv_shift:
        parts.append(f"IV {w.iv_shift:+g} vol pts")
    if w.days:
        parts.append(f"T+{w.days} d")
    return "what-if: " + (", ".join(parts) if parts else "none (live)")


def figures_text(
    a: Analysis, doc: dict[str, Any], *, short: bool = False, live: bool = True
) -> Text:
    """The figures beside (or, `short`, under) the chart: P&L now, max profit and loss, the
    breakevens, the probabilities, the Greeks, the premium and the model they are under."""
    g = doc["greeks"]
    lv = level_spec(doc["symbol"])  # USDINR's levels to four places (89 said nothing)
    bes = ", ".join(f"{b['spot']:{lv}}" for b in doc["breakevens"]) or "none"
    prem = doc["net_premium"] or 0.0
    pop = doc["pop_pct"]
    text = Text()

    def row(label: str, value: str, style: str = "") -> None:
        text.append(f"{label:<12}", "dim")
        text.append(value + "\n", style)

    pnl = doc["pnl_now"]
    label = "P&L now" if live else "P&L what-if"
    row(label, _money(pnl), "bold " + ("green" if (pnl or 0) >= 0 else "red"))
    row("Max profit", _money(doc["max_profit"], doc["max_profit_unlimited"]), "green")
    row("Max loss", _money(doc["max_loss"], doc["max_loss_unlimited"]), "red")
    row("Breakevens", bes, "yellow")
    row(
        "POP",
        ("n/a" if pop is None else f"{pop:.1f} %") + f" · EV {_money(doc['expected_pnl'])}",
    )
    row(
        "Δ",
        f"{g['delta_lots']:+.2f} lots · ₹{g['delta_rupees_per_pct']:+,.0f}/1 %"
        if g["delta_lots"] is not None
        else "n/a",
    )
    row(
        "Θ · V", f"₹{g['theta_per_day'] or 0:+,.0f}/day · ₹{g['vega_per_vol_pt'] or 0:+,.0f}/vol-pt"
    )
    row("Γ", f"{g['gamma'] or 0:{gamma_spec(g['gamma'])}}")
    row("Premium", f"{_money(abs(prem))} {'debit' if prem > 0 else 'credit'}")
    if not short:
        m = doc["model"]
        bands = doc["sigma_bands"]
        row("±1σ", f"{bands['-1σ']:{lv}} – {bands['+1σ']:{lv}}", "blue")
        row("±2σ", f"{bands['-2σ']:{lv}} – {bands['+2σ']:{lv}}", "blue")
        mg = doc.get("margin")
        if mg is not None:
            rom = mg["return_on_margin_pct"]
            row(
                "Margin",
                f"{_money(mg['total'])} = SPAN {_money(mg['span'])} + exp {_money(mg['exposure'])}",
            )
            row("RoM", "n/a" if rom is None else f"{rom:.1f} % (max profit / margin + paid)")
        else:
            row("Margin", doc.get("margin_note") or "n/a", "dim")
        bm = doc.get("broker_margin")
        if bm is not None:  # only when logged in at Angel One
            row("Broker", f"{_money(bm['total'])} Angel One (SPAN {_money(bm['span'])})")
        elif doc.get("broker_note"):
            row("Broker", doc["broker_note"], "dim")
        text.append(f"{m['described']}; σ {m['vol_pct']:.2f} %\n", "dim")
    for note in doc["notes"][:1]:
        text.append(note + "\n", "dim italic")
    text.rstrip()
    return text


def figures_line(doc: dict[str, Any], *, live: bool = True) -> Text:
    """The figures in four lines, for a narrow screen (under the chart)."""
    g = doc["greeks"]
    lv = level_spec(doc["symbol"])
    bes = ", ".join(f"{b['spot']:{lv}}" for b in doc["breakevens"]) or "none"
    prem = doc["net_premium"] or 0.0
    pop = doc["pop_pct"]
    pnl = doc["pnl_now"] or 0.0
    return Text.assemble(
        ("P&L now " if live else "P&L what-if ", "dim"),
        (_money(pnl), "bold " + ("green" if pnl >= 0 else "red")),
        ("  Max profit ", "dim"), (_money(doc["max_profit"], doc["max_profit_unlimited"]), "green"),
        ("  Max loss ", "dim"), (_money(doc["max_loss"], doc["max_loss_unlimited"]), "red"),
        ("\nBreakevens ", "dim"), (bes, "yellow"),
        ("  POP ", "dim"), "n/a" if pop is None else f"{pop:.1f} %",
        ("  EV ", "dim"), _money(doc["expected_pnl"]),
        ("\nΔ ", "dim"), f"{g['delta_lots'] or 0:+.2f} lots",
        ("  Θ ", "dim"), f"₹{g['theta_per_day'] or 0:+,.0f}/day",
        ("  V ", "dim"), f"₹{g['vega_per_vol_pt'] or 0:+,.0f}/vol-pt",
        ("  Γ ", "dim"), f"{g['gamma'] or 0:{gamma_spec(g['gamma'])}}",
        ("\nPremium ", "dim"), f"{_money(abs(prem))} {'debit' if prem > 0 else 'credit'}",
    )  # fmt: skip


def tables_text(doc: dict[str, Any], tz: Any) -> Text:
    """P&L by spot and date, then by spot and IV shift: the report's tables, compact."""
    pt, ivm = doc["payoff_table"], doc["iv_matrix"]
    lv = level_spec(doc["symbol"])
    out = Text()
    dates = [_when(datetime.fromisoformat(d), tz)[:6] for d in pt["dates"]]
    out.append("P&L by spot and date\n", "bold")
    out.append(f"{'spot':>7}" + "".join(f"{d:>9}" for d in dates) + "\n", "dim")
    for i, s in enumerate(pt["spots"]):
        cells = "".join(
            f"{money_short(r[i] if r[i] is not None else math.nan):>9}" for r in pt["pnl"]
        )
        out.append(f"{s:>7{lv}}{cells}\n")
    out.append("P&L by spot and IV shift (now)\n", "bold")
    out.append(f"{'IV':>4}" + "".join(f"{s:>8{lv}}" for s in ivm["spots"]) + "\n", "dim")
    for shift, r in zip(ivm["iv_shifts"], ivm["pnl"], strict=True):
        cells = "".join(f"{_short(v):>8}" for v in r)
        out.append(f"{shift:>+4g}{cells}\n")
    out.rstrip()
    return out


def zoom(a: Analysis) -> Any:
    """The spots the chart shows: the strikes, the breakevens and the ±2σ band, with a quarter
    of that span again on each side (the 1,001 computed spots run ±15 %, mostly flat tails)."""
    bands = a.dist.bands()
    points = [bands["-2σ"], bands["+2σ"], a.market.spot, *a.breakevens]
    points += [g.strike for g in a.position.legs if g.is_option]
    lo, hi = min(points), max(points)
    pad = 0.25 * max(hi - lo, a.market.spot * 0.01)
    view = (a.spots >= lo - pad) & (a.spots <= hi + pad)
    return view if int(view.sum()) >= 2 else slice(None)


class StrategyScreen(StateScreen):
    DEFAULT_CSS = """
    StrategyScreen #title { height: 1; padding: 0 1; background: $boost; }
    StrategyScreen #body { height: 1fr; }
    StrategyScreen #left { width: 1fr; }
    StrategyScreen #side { width: 48; padding: 0 1; border-left: tall $panel; }  /* SIDE_WIDTH */
    StrategyScreen #legend { height: 1; padding: 0 1; }
    StrategyScreen #legs { height: auto; max-height: 9; padding: 0 1 0 0; }
    StrategyScreen #strip { height: auto; padding: 0 1; display: none; }
    StrategyScreen #tables { height: auto; padding: 1 0 0 0; }
    StrategyScreen.narrow #side { display: none; }
    StrategyScreen.narrow #strip { display: block; }
    StrategyScreen.short #tables { display: none; }
    """
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back"),
        Binding("up", "select(-1)", "Previous leg", show=False),
        Binding("down", "select(1)", "Next leg", show=False),
        Binding("plus,equals_sign", "lots(1)", "+lot"),
        Binding("minus", "lots(-1)", "-lot"),
        Binding("x,delete", "remove", "Remove leg"),
        Binding("left", "spot(-1)", "Spot -"),
        Binding("right", "spot(1)", "Spot +"),
        Binding("comma", "iv(-1)", "IV -"),
        Binding("full_stop", "iv(1)", "IV +"),
        Binding("less_than_sign", "leg_iv(-1)", "Leg IV -", show=False),
        Binding("greater_than_sign", "leg_iv(1)", "Leg IV +", show=False),
        Binding("left_square_bracket", "days(-1)", "Day -"),
        Binding("right_square_bracket", "days(1)", "Day +"),
        Binding("0", "reset", "Live"),
        Binding("C", "clear", "Clear", show=False),
        Binding("P", "broker", "Broker positions", show=False),
        Binding("W", "save", "Save", show=False),
        Binding("L", "load", "Load", show=False),
        Binding("V", "compare", "Compare", show=False),
        Binding("B", "backtest", "Backtest this"),
    ]

    def __init__(self, state: EngineState) -> None:
        super().__init__(state)
        self._drawn: tuple[int, int] | None = None  # (desk version, tick) last drawn
        self.selected = 0  # the leg that +/-, x and the leg IV keys act on
        self._group = -1  # the broker position group `P` showed last
        self.result: DeskResult | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield TextPanel(id="title")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield TextPanel(id="legend")
                yield PayoffChart(id="chart")
                yield TextPanel(id="strip")
                yield TextPanel(id="legs")
            with Vertical(id="side"):
                yield TextPanel(id="figures")
                yield TextPanel(id="tables")
        yield Footer()

    def on_mount(self) -> None:
        self._fit()
        self.render_state()

    def on_resize(self) -> None:
        self._fit()
        self.call_after_refresh(self._refit_legs)

    def _refit_legs(self) -> None:
        if self.result is not None:
            self._legs(self.result.analysis)

    def _fit(self) -> None:
        size = self.app.size
        self.set_class(size.width < NARROW, "narrow")
        self.set_class(size.height < TALL, "short")

    @property
    def desk(self) -> Any:
        return self.state.strategy

    def render_state(self) -> None:
        drawn = (self.desk.version, self.state.ticks)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.redraw()

    def redraw(self) -> None:
        """Recompute and draw: the figures, the chart and the legs (one key step, one tick)."""
        desk = self.desk
        self.result = result = desk.analyse(self.state)
        a = result.analysis
        title = self.query_one("#title", TextPanel)
        if a is None:
            title.show(Text(f"Strategy · {result.problem}", style="bold"))
            self.query_one(PayoffChart).plot(None, result.problem or "")
            for name in ("#figures", "#tables", "#strip", "#legend"):
                self.query_one(name, TextPanel).show("")
            self._legs(None)
            return
        from optterm.strategy.recognise import recognise
        from optterm.strategy.report import report

        doc = report(a)
        margin, why = desk.margin(a)
        if margin is not None:
            from optterm.strategy.report import margin_report

            doc["margin"] = margin_report(a, margin)
        doc["margin_note"] = why
        wanted = desk.span_wanted(self.state.settings.strategy.span_file)
        if wanted is not None:
            self._read_span(wanted)
        asked = desk.broker_wanted(a.position)
        if asked is not None:
            self._ask_broker(asked)
        doc["broker_margin"], doc["broker_note"] = desk.broker, desk.broker_note
        tz = a.market.calendar.tz
        template = recognise(a.position.legs)
        name = template.name.replace("_", " ") if template else "custom"
        feed = f" · {a.market.feed.upper()}" if a.market.feed not in ("", "live") else ""
        saved = f" · {desk.name}" if desk.name else ""
        title.show(
            Text.assemble(
                (f"{a.market.symbol} {name}{saved}", "bold"),
                f" · spot {a.market.spot:,.2f} · at {_when(a.at, tz)} · ",
                (whatif_text(result), "yellow" if not result.whatif.is_live else "dim"),
                feed,
            )
        )
        live = result.whatif.is_live and not any(g.iv_shift for g in desk.legs)
        others = desk.compared(self.state, a.spots) if desk.compare else []
        if others:
            figures = compare_text([(desk.name or "this", a), *others])
            strip = compare_lines([(desk.name or "this", a), *others])
        else:
            figures, strip = figures_text(a, doc, live=live), figures_line(doc, live=live)
        self.query_one("#figures", TextPanel).show(figures)
        self.query_one("#strip", TextPanel).show(strip)
        self.query_one("#tables", TextPanel).show(tables_text(doc, tz))
        self._chart(a, others)
        self._legs(a)

    def _read_span(self, key: tuple[str, str]) -> None:
        """Read the configured SPAN file on a thread; the figures redraw when it is in."""
        from optterm.infra.paths import cache_dir

        desk = self.desk

        def work() -> None:
            span, note = desk.read_span(key, cache_dir() / "span")
            self.app.call_from_thread(self._span_read, key, span, note)

        self.run_worker(work, thread=True, group="span", exit_on_error=False)

    def _ask_broker(self, key: Any) -> None:
        """The broker's margin for the legs (Angel One, when logged in), asked on a thread;
        the figures redraw when it answers."""
        import asyncio

        from optterm.engine.strategydesk import broker_margin

        settings = self.state.settings

        def work() -> None:
            figures, note = asyncio.run(broker_margin(settings, key))
            self.app.call_from_thread(self._broker_in, key, figures, note)

        self.run_worker(work, thread=True, group="broker-margin", exit_on_error=False)

    def _broker_in(self, key: Any, figures: Any, note: str) -> None:
        self.desk.set_broker(key, figures, note)
        if self.is_mounted:
            self.render_state()

    def _span_read(self, key: tuple[str, str], span: Any, note: str) -> None:
        self.desk.set_span(key, span, note)
        if self.is_mounted:
            self.render_state()

    def _chart(self, a: Analysis, others: Sequence[tuple[str, Analysis | str]] = ()) -> None:
        tz = a.market.calendar.tz
        expiry = a.curves[-1]
        curves = []
        label_now = "now" if a.at == a.market.now else f"at {_when(a.at, tz)}"
        if a.at < a.profile.at:
            curves.append(Curve(label_now, a.curves[0], "cyan"))
        # Compared strategies: their expiry payoffs, one colour each, under this one's.
        compared = [(n, o) for n, o in others if not isinstance(o, str)]
        for (n, o), style in zip(compared, COMPARE_STYLES, strict=False):
            curves.append(Curve(n, o.curves[-1], style))
        curves.append(Curve("expiry", expiry))
        bands = a.dist.bands()
        marks = [Mark(a.market.spot, "│", "bold white")]
        marks += [Mark(b, "┆", "yellow") for b in a.breakevens]
        marks += [Mark(v, "╎", "blue" if "1" in k else "dim blue") for k, v in bands.items()]
        view = zoom(a)
        shown = [Curve(c.label, c.pnl[view], c.style) for c in curves]
        self.query_one(PayoffChart).plot(ChartData(a.spots[view], shown, marks))
        names: list[str | tuple[str, str]] = []
        for (n, _), style in zip(compared, COMPARE_STYLES, strict=False):
            names += [("  ⠒⠒ ", style), n]
        self.query_one("#legend", TextPanel).show(
            Text.assemble(
                ("⠒⠒ ", "cyan"), f"{label_now}  ", ("⠒⠒", "green"), ("⠒ ", "red"),
                f"expiry {_when(a.profile.at, tz)}  ", ("│", "bold"), " spot  ",
                ("┆", "yellow"), " breakeven  ", ("╎", "blue"), " ±1σ ±2σ",
                *names,
            )
        )  # fmt: skip

    def _legs(self, a: Analysis | None) -> None:
        """The legs as a table: each column that fits whole (by rank), the selected leg in
        reverse, the total of the Greeks under them."""
        panel = self.query_one("#legs", TextPanel)
        legs = self.desk.legs
        self.selected = max(0, min(self.selected, len(legs) - 1))
        width = self.query_one("#left").size.width or self.app.size.width
        shown = fit_leg_columns(width - 2)  # 2: the panel's padding
        g = a.greeks if a is not None else None
        rows: list[list[str]] = []
        for i, leg in enumerate(legs):
            side = "B" if leg.lots > 0 else "S"
            cells = [
                f"{side} FUT" if leg.kind == "FUT" else f"{side} {leg.strike:g} {leg.kind}",
                leg.expiry.strftime("%d-%b-%y"),
                f"{leg.lots:+d}", f"{leg.price:,.2f}",
            ]  # fmt: skip
            if g is not None and a is not None:
                cells += [
                    f"{a.leg_values[i]:,.2f}",
                    f"{100 * g.iv[i]:.2f}",
                    f"{leg.iv_shift:+g}" if leg.iv_shift else "",
                    f"{g.delta_lots[i]:+.3f}",
                    f"{g.theta[i]:+,.0f}",
                    f"{g.vega[i]:+,.0f}",
                ]
            else:
                cells += [""] * 6
            rows.append(cells)
        if g is not None and legs:
            t = g.total()
            rows.append([
                "total", "", "", "", "", "", "",
                f"{t['delta_lots']:+.3f}", f"{t['theta']:+,.0f}", f"{t['vega']:+,.0f}",
            ])  # fmt: skip

        def line(cells: list[str]) -> str:
            out = []
            for c in shown:
                w = LEG_COLUMNS[c][1]
                out.append(f"{cells[c]:<{w}}" if c < 2 else f"{cells[c]:>{w}}")
            return " " + "  ".join(out)

        text = Text(line([head for head, _, _ in LEG_COLUMNS]), style="bold")
        for i, cells in enumerate(rows):
            if i == len(legs):
                style = "bold"
            else:
                style = "green" if legs[i].lots > 0 else "red"
                if i == self.selected:
                    style += " reverse"
            text.append("\n")
            text.append(line(cells), style)
        panel.show(text if legs else Text(""))

    # -- keys -------------------------------------------------------------------------------

    def _leg_index(self) -> int:
        return self.selected

    def action_select(self, step: int) -> None:
        self.selected = max(0, min(self.selected + step, len(self.desk.legs) - 1))
        self._legs(self.result.analysis if self.result is not None else None)

    def _after(self) -> None:
        self.render_state()

    def action_back(self) -> None:
        go_back(self)

    def action_lots(self, step: int) -> None:
        self.desk.step_lots(self._leg_index(), step)
        self._after()

    def action_remove(self) -> None:
        self.desk.remove(self._leg_index())
        self._after()

    def action_clear(self) -> None:
        self.desk.clear()
        self._after()

    def action_spot(self, steps: int) -> None:
        self.desk.step_spot(steps)
        self._after()

    def action_iv(self, steps: int) -> None:
        self.desk.step_iv(steps)
        self._after()

    def action_leg_iv(self, steps: int) -> None:
        self.desk.step_leg_iv(self._leg_index(), steps)
        self._after()

    def action_days(self, steps: int) -> None:
        self.desk.step_days(steps)
        self._after()

    def action_broker(self) -> None:
        """The next of the broker's position groups (Angel One, read-only) as the strategy:
        fetched on a thread (the instrument master and a network call), then analysed."""
        import asyncio

        from optterm.engine.strategydesk import broker_groups

        settings = self.state.settings
        self.notify("Reading the positions at Angel One…", timeout=3)

        def work() -> None:
            try:
                groups: Any = asyncio.run(broker_groups(settings))
            except Exception as exc:  # a provider's or a config's: said in one line
                groups = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            self.app.call_from_thread(self._groups_in, groups)

        self.run_worker(work, thread=True, group="broker", exit_on_error=False)

    def _groups_in(self, groups: Any) -> None:
        if isinstance(groups, str):
            self.notify(f"Broker positions: {groups}", severity="error", timeout=8, markup=False)
            return
        if not groups:
            self.notify("No open futures or options at Angel One.", timeout=5)
            return
        self._group = (self._group + 1) % len(groups)
        said = self.desk.take_group(groups[self._group])
        more = f" ({self._group + 1} of {len(groups)}: P for the next)" if len(groups) > 1 else ""
        self.notify(said + more, timeout=6, markup=False)
        self.selected = 0
        self.render_state()

    def action_reset(self) -> None:
        self.desk.reset_whatif()
        self._after()

    # -- saved strategies (store.strategies, through the engine's loop; dialogs awaited) ----

    @work(exclusive=True, group="strategy-store", exit_on_error=False)
    async def action_save(self) -> None:
        """Save the strategy under a name typed in a dialog, with when and where the newest
        entry price was taken."""
        from optterm.screens.strategy_dialogs import ask_and_save

        if await ask_and_save(self, self.state, self.desk) is not None:
            self.render_state()

    @work(exclusive=True, group="strategy-store", exit_on_error=False)
    async def action_load(self) -> None:
        """A saved strategy (picked) becomes the one built, at its saved entry prices."""
        from optterm.screens.strategy_dialogs import pick_saved

        saved = await pick_saved(self, self.state, "Load a saved strategy: enter loads")
        if saved is not None:
            self.notify(self.desk.load(saved), timeout=4, markup=False)
            self.selected = 0
            self.render_state()

    @work(exclusive=True, group="strategy-store", exit_on_error=False)
    async def action_compare(self) -> None:
        """A saved strategy (picked) shown beside this one, or no longer shown."""
        from optterm.screens.strategy_dialogs import pick_saved

        title = "Compare with: enter adds it (or removes one already compared)"
        saved = await pick_saved(self, self.state, title)
        if saved is not None:
            self.notify(self.desk.toggle_compare(saved), timeout=4, markup=False)
            self.render_state()

    def action_backtest(self) -> None:
        """Backtest this: the legs as the spec of the backtest screen (screens/backtest.py)."""
        from optterm.screens.backtest import backtest_legs

        backtest_legs(self.app, self.state)
