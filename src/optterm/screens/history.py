"""History: one chain's trading day drawn from the store, as charts.

Three panes for the shown symbol, expiry and day (default: the latest trading day with data):

1. OI of one strike through the day (CE and PE lines), with its change per interval as bars;
2. PCR by OI (right scale) and max pain against spot (left scale);
3. the ATM straddle premium.

Every chart's x axis is exchange time (IST, HH:MM). The store is read in an async worker on the
app's loop (its engine lives there); per-strike OI comes from `store.snapshots.strike_series`,
which decodes only the needed columns, and the chain-level lines from
`store.analytics.metrics_series`. After a tick brings a newer snapshot of the shown chain, only the
rows after the last one loaded are read.

Over 600 lines because the three panes share one loaded day (and its incremental reload on a
tick), one set of scales and one title scheme across terminal widths.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.theme import Theme
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import Feed, Metrics
from optterm.screens.base import StateScreen
from optterm.store.timecodec import DAY_US, IST_OFFSET_US
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.model import ChainSnapshot
    from optterm.store import Store

__all__ = ["NO_STORE", "PANES", "HistoryScreen", "bucket_changes"]

log = logging.getLogger("optterm.screens.history")

NO_STORE: Final = "history needs the store; it is off in this session"
PANES: Final = ("oi", "doi", "pcr", "straddle")  # ids: #pane-X, #title-X, #plot-X
_US: Final = timedelta(microseconds=1)
_MAX_BARS: Final = 24
_BAR_MINUTES: Final = (1, 5, 10, 15, 30, 60, 120)
_TICK_MINUTES: Final = (5, 10, 15, 30, 60, 90, 120, 180)
_MAX_XTICKS: Final = 5

# Line colours for dark and light backgrounds (the plot background follows the app theme).
_COLOURS: Final[dict[bool, dict[str, tuple[int, int, int]]]] = {
    True: {
        "ce": (255, 99, 99),
        "pe": (80, 200, 120),
        "spot": (235, 235, 235),
        "max_pain": (255, 170, 40),
        "pcr": (100, 180, 255),
        "straddle": (200, 140, 255),
    },
    False: {
        "ce": (200, 30, 30),
        "pe": (0, 130, 60),
        "spot": (20, 20, 20),
        "max_pain": (200, 110, 0),
        "pcr": (0, 90, 200),
        "straddle": (120, 40, 200),
    },
}


@dataclass(frozen=True, slots=True)
class _Key:
    """What one load shows; incremental refreshes apply only while it stays the same."""

    symbol: str
    expiry: date
    day: date
    strike: float


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), IST).astimezone(UTC)
    return start, start + timedelta(days=1)


def _ist_day(ts: datetime) -> date:
    return ts.astimezone(IST).date()


def _minutes(ts: datetime) -> float:
    local = ts.astimezone(IST)
    return local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60


def _minutes_us(us: np.ndarray) -> np.ndarray:
    return ((us.astype(np.int64) + IST_OFFSET_US) % DAY_US) / 60e6


def _hhmm(minute: float) -> str:
    m = round(minute)
    return f"{m // 60 % 24:02d}:{m % 60:02d}"


def _time_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """At most _MAX_XTICKS round HH:MM ticks covering [lo, hi]."""
    span = max(hi - lo, 0.0)
    step = next((s for s in _TICK_MINUTES if span / s <= _MAX_XTICKS - 1), _TICK_MINUTES[-1])
    first = math.ceil(lo / step) * step
    ticks = [float(t) for t in np.arange(first, hi + 1e-9, step)] if span else []
    if len(ticks) < 2:
        ticks = sorted({float(lo), float(hi)})
    return ticks, [_hhmm(t) for t in ticks]


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def bucket_changes(
    minutes: Sequence[float], oi: Sequence[float]
) -> tuple[list[float], list[float], int]:
    """OI change per interval: the day cut into equal buckets (at most _MAX_BARS), each bucket's
    last OI minus the previous bucket's (the first bucket: minus the day's first value).

    Returns the buckets' start minutes, the changes and the bucket size in minutes. Buckets
    without a value are skipped; the changes add up to last OI - first OI.
    """
    pts = [(t, v) for t, v in zip(minutes, oi, strict=True) if math.isfinite(v)]
    if not pts:
        return [], [], _BAR_MINUTES[0]
    lo, hi = pts[0][0], pts[-1][0]
    size = next((s for s in _BAR_MINUTES if (hi // s - lo // s) + 1 <= _MAX_BARS), _BAR_MINUTES[-1])
    last: dict[float, float] = {}
    for t, v in pts:
        last[(t // size) * size] = v
    starts = sorted(last)
    changes: list[float] = []
    prev = pts[0][1]
    for b in starts:
        changes.append(last[b] - prev)
        prev = last[b]
    return starts, changes, size


def _oi_scale(values: Sequence[float]) -> tuple[float, str, str]:
    """A divisor for contract counts, with its long and short unit names."""
    peak = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if peak >= 1e7:
        return 1e7, " (crore)", " (Cr)"
    if peak >= 1e5:
        return 1e5, " (lakh)", " (L)"
    if peak >= 1e3:
        return 1e3, " (thousand)", " (k)"
    return 1.0, "", ""


class HistoryScreen(StateScreen):
    """Charts of one chain's day, read from the store.

    `series` holds exactly what was plotted last (lists of floats, NaN where a value is missing;
    times in minutes since midnight IST): "t", "spot", "pcr", "max_pain", "straddle", "atm_iv"
    (one per stored metrics row); "oi_t", "ce_oi", "pe_oi" (one per stored snapshot);
    "doi_t", "ce_doi", "pe_doi" (one per interval bar; `doi_minutes` is the interval).
    `message` is the whole-screen message shown instead of the charts (None while they show).
    """

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    HistoryScreen #hist-head { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    HistoryScreen .pane-title {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    HistoryScreen #hist-grid { layout: grid; grid-size: 2 2; grid-gutter: 0 2; height: 1fr; }
    HistoryScreen #hist-empty {
        height: 1fr; width: 1fr; content-align: center middle; text-style: bold;
        color: $text-muted;
    }
    HistoryScreen PlotextPlot { height: 1fr; width: 1fr; }
    """
    BINDINGS: ClassVar = [
        Binding("left_square_bracket", "strike(-1)", "Strike −", key_display="["),
        Binding("right_square_bracket", "strike(1)", "Strike +", key_display="]"),
        Binding("c", "side('ce')", "CE on/off"),
        Binding("p", "side('pe')", "PE on/off"),
        Binding("left", "day(-1)", "Prev day"),
        Binding("right", "day(1)", "Next day"),
        Binding("e", "next_expiry", "Next expiry"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        state: EngineState,
        symbol: str,
        expiry: date | None = None,
        strike: float | None = None,
        *,
        day: date | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(state, name=name, id=id, classes=classes)
        self.symbol = symbol
        self.expiry: date | None = expiry
        self.day: date | None = day
        self.strike: float | None = None if strike is None else float(strike)
        self.sides: set[str] = {"ce", "pe"}
        self.series: dict[str, list[float]] = {}
        self.titles: dict[str, str] = {}  # pane -> its title as plain text
        self.doi_minutes: int = 0
        self.message: str | None = None
        self.feeds: set[Feed] = set()
        self.loads = 0  # completed store reads (full or incremental)
        self.strike_step: float | None = None
        # Which (symbol, expiry, day, strike) the data below belongs to.
        self.loaded: _Key | None = None
        self._strike_auto = strike is None  # follow the ATM when the day or expiry changes
        self._follow = day is None  # stay on the newest day as new days arrive
        self._catalog: dict[date, list[date]] | None = None  # expiry -> trading days with data
        self._strike_range: tuple[float, float] | None = None
        self._metrics: list[Metrics] = []
        self._oi_us = np.empty(0, dtype=np.int64)
        self._oi: dict[str, np.ndarray] = {"ce_oi": np.empty(0), "pe_oi": np.empty(0)}
        self._ref_key: tuple[date, date] | None = None  # (expiry, day) of the strike list
        self._ref_strikes = np.empty(0)
        self._seen_ts: datetime | None = None  # newest snapshot ts of the shown chain seen
        self._ready = False  # composed and mounted
        self._busy = False
        self._pending = False
        self._want_full = False
        self._want_catalog = True

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(id="hist-head")
        with Container(id="hist-grid"):
            for pane in PANES:
                with Vertical(classes="pane", id=f"pane-{pane}"):
                    yield Static(classes="pane-title", id=f"title-{pane}", markup=True)
                    yield PlotextPlot(id=f"plot-{pane}")
        yield Static(id="hist-empty")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.app.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._show_message("loading history…")
        self._request()

    def _on_theme_changed(self, _theme: Theme) -> None:
        if self.message is None and self.loaded is not None:
            self._draw()

    def on_resize(self) -> None:
        # Titles pick their wording by width; the plots themselves re-fit when they render.
        if self.message is None and self.loaded is not None:
            self.call_after_refresh(self._draw)

    # -- the app's tick hook ---------------------------------------------------------------------

    def render_state(self) -> None:
        """After each tick while shown, and on return: re-read only if the shown chain has a
        newer stored snapshot than the data on screen (and then only the new rows)."""
        state = self.state
        if state.store is None:
            if self.loaded is None:
                self._show_message(NO_STORE)
            return
        if self.loaded is None and self._catalog is None:
            if not self._busy:
                self._request()  # the store has just opened
            return
        update = state.chain(self.symbol, self.expiry)
        if update is None or not update.stored:
            return
        if self.expiry is None:  # nothing shown yet, and the symbol now has stored data
            self._request(catalog=True)
            return
        ts = update.snapshot.provider_ts
        if self._seen_ts is not None and ts <= self._seen_ts:
            return
        self._seen_ts = ts
        day = _ist_day(ts)
        if self._catalog is not None:
            days = self._catalog.setdefault(self.expiry, [])
            if day not in days:
                days.append(day)
                days.sort()
        if self._follow and self.day != day:
            self.day = day
            if self._strike_auto:
                self.strike = None
        if self.day == day:
            self._request()

    # -- actions --------------------------------------------------------------------------------

    def action_strike(self, steps: int) -> None:
        if self.strike is None or not self.strike_step:
            self.app.bell()
            return
        new = round((self.strike + steps * self.strike_step) / self.strike_step) * self.strike_step
        if self._strike_range is not None:
            lo, hi = self._strike_range
            if not lo - 1e-9 <= new <= hi + 1e-9:
                self.app.bell()
                self.notify(f"no strike beyond {self.strike:g} in this chain", timeout=3)
                return
        self.strike = float(new)
        self._strike_auto = False
        self._request()

    def action_side(self, side: str) -> None:
        other = "pe" if side == "ce" else "ce"
        if side in self.sides:
            self.sides.discard(side)
            if not self.sides:
                self.sides.add(other)
        else:
            self.sides.add(side)
        if self.message is None and self.loaded is not None:
            self._draw()

    def action_day(self, delta: int) -> None:
        days = (self._catalog or {}).get(self.expiry) if self.expiry else None
        if not days or self.day is None:
            self.app.bell()
            return
        if self.day in days:
            i = days.index(self.day) + delta
        else:  # an explicitly asked day without data: step to its neighbours that have some
            i = sum(d < self.day for d in days) + (delta if delta < 0 else 0)
        if not 0 <= i < len(days):
            self.app.bell()
            word = "earlier" if delta < 0 else "later"
            self.notify(f"no {word} day with {self.symbol} {self.expiry} history", timeout=3)
            return
        self.day = days[i]
        self._follow = i == len(days) - 1
        if self._strike_auto:
            self.strike = None
        self._request()

    def action_next_expiry(self) -> None:
        expiries = sorted(self._catalog or {})
        if not expiries or (len(expiries) == 1 and self.expiry == expiries[0]):
            self.app.bell()
            return
        later = [e for e in expiries if self.expiry is None or e > self.expiry]
        self.expiry = later[0] if later else expiries[0]
        days = (self._catalog or {})[self.expiry]
        if self.day not in days:
            self.day = days[-1] if days else None
            self._follow = True
        if self._strike_auto:
            self.strike = None
        self._seen_ts = None
        self._request()

    def action_reload(self) -> None:
        self._request(full=True, catalog=True)

    async def action_back(self) -> None:
        """Leave the history: the app's own `back` action (which pops this screen on a plain
        App). Override to go elsewhere."""
        await self.app.run_action("back")

    # -- loading --------------------------------------------------------------------------------

    def _request(self, *, full: bool = False, catalog: bool = False) -> None:
        """Ask for a (re)load; requests made while one runs are merged into one more pass."""
        self._want_full |= full
        self._want_catalog |= catalog
        if self.state.store is None:
            self._show_message(NO_STORE)
            return
        if self._busy:
            self._pending = True
            return
        self._busy = True
        self._load()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def _load(self) -> None:
        from optterm.store import StoreError

        try:
            while True:
                self._pending = False
                store = self.state.store
                if store is None:
                    self._show_message(NO_STORE)
                    return
                full, catalog = self._want_full, self._want_catalog
                self._want_full = self._want_catalog = False
                try:
                    await self._load_once(store, full=full, catalog=catalog)
                except StoreError as err:
                    self._show_message(f"history could not be read: {err}")
                except Exception as err:  # a bug must not take the app down
                    log.exception("history load failed")
                    self._show_message(f"history failed: {err or type(err).__name__}")
                if not self._pending:
                    return
        finally:
            self._busy = False

    async def _load_once(self, store: Store, *, full: bool, catalog: bool) -> None:
        if catalog or self._catalog is None:
            rows = await store.snapshots.history()
            cat: dict[date, set[date]] = {}
            for r in rows:
                if r.symbol == self.symbol:
                    cat.setdefault(r.expiry, set()).add(r.trading_date)
            self._catalog = {e: sorted(ds) for e, ds in cat.items()}
        expiry = self.expiry or self._default_expiry()
        if expiry is None:
            self._show_message(f"no history for {self.symbol} yet")
            self.loads += 1
            return
        self.expiry = expiry
        days = self._catalog.get(expiry, [])
        if self.day is None or (self._follow and days and self.day < days[-1]):
            self.day = days[-1] if days else None
        day = self.day
        if day is None or day not in days:
            when = "" if day is None else f" on {day:%a %d %b %Y}"
            self._show_message(f"no history for {self.symbol} {expiry.isoformat()}{when} yet")
            self._forget()
            self.loads += 1
            return
        start, end = _day_bounds(day)
        same_day = (
            not full
            and self.loaded is not None
            and (self.loaded.symbol, self.loaded.expiry, self.loaded.day)
            == (self.symbol, expiry, day)
        )

        # Chain-level metrics: everything after the last row held, or the whole day.
        if same_day and self._metrics:
            since = self._metrics[-1].ts + _US
            self._metrics = self._metrics + await store.analytics.metrics_series(
                self.symbol, expiry, since, end
            )
        else:
            self._metrics = await store.analytics.metrics_series(self.symbol, expiry, start, end)

        # The strike list (for stepping and the default ATM): the day's first snapshot.
        ref: ChainSnapshot | None = None
        if full or self._ref_key != (expiry, day):
            ref = await _first_snapshot(store, self.symbol, expiry, start, end)
            self._ref_key = (expiry, day)
            self._ref_strikes = ref.strikes if ref is not None else np.empty(0)
            if ref is not None:
                self.feeds = {ref.feed}
        if self.strike is None:
            self.strike = self._default_strike(expiry, day)
        if self.strike is None:
            self._show_message(f"no history for {self.symbol} {expiry.isoformat()} yet")
            self._forget()
            self.loads += 1
            return
        self._set_strike_grid()

        # One strike's OI: after the last snapshot held, or the whole day.
        key = _Key(self.symbol, expiry, day, self.strike)
        if same_day and self.loaded == key and self._oi_us.size:
            since_us = int(self._oi_us[-1]) + 1
            since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=since_us)
            more = await store.snapshots.strike_series(self.symbol, expiry, self.strike, since, end)
            self._oi_us = np.concatenate((self._oi_us, more.ts.astype(np.int64)))
            for f in self._oi:
                self._oi[f] = np.concatenate((self._oi[f], more[f]))
        else:
            got = await store.snapshots.strike_series(self.symbol, expiry, self.strike, start, end)
            self._oi_us = got.ts.astype(np.int64)
            self._oi = {f: np.asarray(got[f], dtype=np.float64) for f in self._oi}

        self.feeds |= {m.feed for m in self._metrics}
        newest = [m.ts for m in self._metrics[-1:]]
        if self._oi_us.size:
            newest.append(datetime(1970, 1, 1, tzinfo=UTC) + int(self._oi_us[-1]) * _US)
        if newest and (self._seen_ts is None or max(newest) > self._seen_ts):
            self._seen_ts = max(newest)
        self.loaded = key
        self.loads += 1
        if not self._metrics and not self._oi_us.size:
            self._show_message(
                f"no history for {self.symbol} {expiry.isoformat()} on {day:%a %d %b %Y} yet"
            )
            return
        self._build_series()
        self._draw()

    def _forget(self) -> None:
        self.loaded = None
        self.series = {}
        self._metrics = []
        self._oi_us = np.empty(0, dtype=np.int64)
        self._oi = {f: np.empty(0) for f in self._oi}

    def _default_expiry(self) -> date | None:
        update = self.state.chain(self.symbol)
        if update is not None:
            return update.snapshot.expiry
        cat = self._catalog or {}
        if not cat:
            return None
        newest = max(ds[-1] for ds in cat.values() if ds)
        live = [e for e, ds in cat.items() if ds and ds[-1] == newest and e >= newest]
        if live:
            return min(live)
        return max(e for e, ds in cat.items() if ds and ds[-1] == newest)

    def _default_strike(self, expiry: date, day: date) -> float | None:
        """The ATM strike of the latest chain of the shown day."""
        update = self.state.chain(self.symbol, expiry)
        if (
            update is not None
            and len(update.snapshot)
            and _ist_day(update.snapshot.provider_ts) == day
        ):
            snap = update.snapshot
            return float(snap.strikes[snap.atm_index()])
        for m in reversed(self._metrics):
            if math.isfinite(m.atm_strike):
                return float(m.atm_strike)
        strikes = self._ref_strikes
        if strikes.size:
            # No metrics stored: the strike nearest the series' spot is not known yet, so take
            # the middle of the first chain (chains are stored as a window around ATM).
            return float(strikes[strikes.size // 2])
        return None

    def _set_strike_grid(self) -> None:
        strikes = self._ref_strikes
        update = self.state.chain(self.symbol, self.expiry) if self.expiry else None
        if update is not None and self.day == _ist_day(update.snapshot.provider_ts):
            strikes = np.union1d(strikes, update.snapshot.strikes)
        if strikes.size >= 2:
            diffs = np.diff(strikes)
            self.strike_step = float(np.min(diffs[diffs > 0]))
        if not strikes.size:
            self._strike_range = None
            return
        lo, hi = float(strikes.min()), float(strikes.max())
        # The stored window follows spot through the day: allow the ATMs seen, ± half a window.
        atms = [m.atm_strike for m in self._metrics if math.isfinite(m.atm_strike)]
        if atms and self.strike_step:
            half = (strikes.size // 2) * self.strike_step
            lo, hi = min(lo, min(atms) - half), max(hi, max(atms) + half)
        if self.strike is not None:
            lo, hi = min(lo, self.strike), max(hi, self.strike)
        self._strike_range = (lo, hi)

    # -- drawing --------------------------------------------------------------------------------

    def _build_series(self) -> None:
        ms = self._metrics
        t_oi = [float(x) for x in _minutes_us(self._oi_us)]
        ce, pe = (self._oi[f].tolist() for f in ("ce_oi", "pe_oi"))
        doi_t, ce_doi, size = bucket_changes(t_oi, ce)
        pe_t, pe_doi, _ = bucket_changes(t_oi, pe)
        # Both sides share the buckets (a leg may be missing in some snapshots).
        if pe_t != doi_t:
            ce_map, pe_map = (
                dict(zip(doi_t, ce_doi, strict=True)),
                dict(zip(pe_t, pe_doi, strict=True)),
            )
            doi_t = sorted(set(doi_t) | set(pe_t))
            ce_doi = [ce_map.get(b, math.nan) for b in doi_t]
            pe_doi = [pe_map.get(b, math.nan) for b in doi_t]
        self.doi_minutes = size
        self.series = {
            "t": [_minutes(m.ts) for m in ms],
            "spot": [m.spot for m in ms],
            "pcr": [m.pcr_oi for m in ms],
            "max_pain": [m.max_pain for m in ms],
            "straddle": [m.straddle for m in ms],
            "atm_iv": [m.atm_iv for m in ms],
            "oi_t": t_oi,
            "ce_oi": ce,
            "pe_oi": pe,
            "doi_t": [float(b) for b in doi_t],
            "ce_doi": ce_doi,
            "pe_doi": pe_doi,
        }

    def _badge(self) -> str:
        """The feed badge every title starts with: SIMULATED data must never pass for the market."""
        if Feed.SIMULATED in self.feeds:
            return "[bold white on dark_magenta] SIMULATED [/] "
        if Feed.DELAYED in self.feeds:
            return "[bold black on yellow] DELAYED [/] "
        return ""

    def _set_title(self, pane: str, *variants: str) -> None:
        """Show the longest variant that fits the pane (the last one, cut with an ellipsis,
        when none does)."""
        widget = self.query_one(f"#title-{pane}", Static)
        room = widget.content_size.width
        chosen = variants[-1]
        for markup in variants:
            if not room or Text.from_markup(markup).cell_len <= room:
                chosen = markup
                break
        widget.update(chosen)
        self.titles[pane] = Text.from_markup(chosen).plain

    def _draw(self) -> None:
        s = self.series
        if not s or self.expiry is None or self.day is None or self.strike is None:
            return
        self.message = None
        self.query_one("#hist-empty").display = False
        self.query_one("#hist-grid").display = True
        colours = _COLOURS[self.app.current_theme.dark]

        def swatch(key: str, label: str) -> str:
            r, g, b = colours[key]
            return f"[bold rgb({r},{g},{b})]{label}[/]"

        xs = s["t"] + s["oi_t"]
        x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_hi <= x_lo:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        ticks = _time_ticks(x_lo, x_hi)
        badge = self._badge()
        chain = f"{self.symbol} {self.expiry:%d %b}"
        strike = f"{self.strike:g}"
        sides = [side for side in ("ce", "pe") if side in self.sides]
        head = (
            f"{badge}[b]{self.symbol}[/b] expiry {self.expiry.isoformat()} · {self._day_label()}"
            f" · strike [b]{strike}[/b] · {'+'.join(x.upper() for x in sides)}"
        )
        if Feed.SIMULATED in self.feeds:
            head += " · simulated data, not the market"
        self.query_one("#hist-head", Static).update(head)

        @contextlib.contextmanager
        def pane(name: str, nothing: str) -> Iterator[tuple[Any, list[str]]]:
            """One chart on the shared time axis: the body draws and lists its title variants
            (longest first), or lists none and the title says there was `nothing`."""
            widget = self.query_one(f"#plot-{name}", PlotextPlot)
            plt = widget.plt
            plt.clear_figure()
            plt.xlim(x_lo, x_hi)
            plt.xticks(*ticks)
            titles: list[str] = []
            yield plt, titles
            self._set_title(name, *(titles or [f"{badge}{chain}: {nothing} on this day"]))
            widget.refresh()

        # 1. OI of the strike.
        with pane("oi", f"no OI at {strike}") as (plt, titles):
            scale, unit, short = _oi_scale([v for side in sides for v in s[f"{side}_oi"]])
            drawn = []
            for side in sides:
                x, y = _finite(s["oi_t"], s[f"{side}_oi"])
                if x:
                    drawn.append(swatch(side, side.upper()))
                    plt.plot(x, [v / scale for v in y], color=colours[side])
            if drawn:
                legend = " ".join(drawn)
                titles += [
                    f"{badge}{chain} {strike} OI {legend}{unit}",
                    f"{badge}{self.symbol} {strike} OI {legend}{short}",
                ]

        # 1b. OI change per interval, as bars.
        with pane("doi", f"no ΔOI at {strike}") as (plt, titles):
            bars = [(side, s[f"{side}_doi"]) for side in sides]
            scale, unit, short = _oi_scale([v for _, ys in bars for v in ys])
            if s["doi_t"]:
                bx = [b + self.doi_minutes / 2 for b in s["doi_t"]]  # each bar mid-interval
                ys = [[v / scale if math.isfinite(v) else 0.0 for v in vals] for _, vals in bars]
                if len(bars) == 2:
                    plt.multiple_bar(bx, ys, color=[colours["ce"], colours["pe"]])
                else:
                    plt.bar(bx, ys[0], color=colours[bars[0][0]])
                plt.xlim(min(x_lo, s["doi_t"][0]), max(x_hi, s["doi_t"][-1] + self.doi_minutes))
                plt.xticks(*ticks)
                legend = " ".join(swatch(side, side.upper()) for side, _ in bars)
                every = self.doi_minutes
                titles += [
                    f"{badge}{chain} {strike} ΔOI per {every} min {legend}{unit}",
                    f"{badge}{self.symbol} {strike} ΔOI/{every}m {legend}{short}",
                    f"{badge}{strike} ΔOI/{every}m {legend}{short}",
                ]

        # 2. Max pain against spot (left scale) and PCR by OI (right scale).
        with pane("pcr", "no PCR or max pain") as (plt, titles):
            shown = []
            for key, label in (("spot", "spot"), ("max_pain", "max pain")):
                x, y = _finite(s["t"], s[key])
                if x:
                    shown.append(swatch(key, label))
                    plt.plot(x, y, color=colours[key])
            x, y = _finite(s["t"], s["pcr"])
            pcr = ""
            if x:
                pcr = swatch("pcr", "PCR")
                plt.plot(x, y, color=colours["pcr"], yside="right")
            if shown or pcr:
                long = " · ".join([*shown, f"{pcr} (OI, right scale)"] if pcr else shown)
                terse = ", ".join(shown) + (f" · {pcr} (R)" if pcr else "")
                titles += [
                    f"{badge}{chain} {long}",
                    f"{badge}{self.symbol} {terse}",
                    f"{badge}{terse}",
                ]

        # 3. ATM straddle premium.
        with pane("straddle", "no straddle premium") as (plt, titles):
            x, y = _finite(s["t"], s["straddle"])
            if x:
                plt.plot(x, y, color=colours["straddle"])
                last_iv = next((v for v in reversed(s["atm_iv"]) if math.isfinite(v)), math.nan)
                iv = f"{last_iv * 100:.1f}%" if math.isfinite(last_iv) else ""
                iv_long, iv_short = (f" · ATM IV {iv}", f" IV {iv}") if iv else ("", "")
                label, short_label = (
                    swatch("straddle", "ATM straddle"),
                    swatch("straddle", "straddle"),
                )
                titles += [
                    f"{badge}{chain} {label} ₹{y[-1]:,.1f}{iv_long}",
                    f"{badge}{self.symbol} {short_label} ₹{y[-1]:,.1f}{iv_short}",
                    f"{badge}{short_label} ₹{y[-1]:,.1f}{iv_short}",
                ]

    def _day_label(self) -> str:
        if self.day is None:
            return ""
        today = " today" if self.day == _ist_day(self.state.now()) else ""
        return f"{self.day:%a %d %b %Y}{today} (IST)"

    def _show_message(self, text: str) -> None:
        self.message = text
        if not self._ready:
            return
        self.query_one("#hist-grid").display = False
        empty = self.query_one("#hist-empty", Static)
        empty.display = True
        empty.update(text)
        head = f"[b]{self.symbol}[/b]"
        if self.expiry is not None:
            head += f" {self.expiry.isoformat()}"
        if self.day is not None:
            head += f" · {self._day_label()}"
        self.query_one("#hist-head", Static).update(head)


async def _first_snapshot(
    store: Store, symbol: str, expiry: date, start: datetime, end: datetime
) -> ChainSnapshot | None:
    it = store.snapshots.iterate(symbol, expiry, start, end, batch=1)
    async with contextlib.aclosing(it):
        async for snap in it:
            return snap
    return None
