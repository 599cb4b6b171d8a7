"""TUI figures: the option chain widget (optterm.widgets.chain_table.ChainTable) against a Textual
DataTable showing the same cells, headless at 240 × 60.

The chain: 200 strikes (NIFTY-like, step 50, ATM in the middle), `window=100` so all 200 rows are
in the widget (58 on screen below the 2 header rows), `greeks=True`: per side the OI bar, OI, ΔOI,
ΔOI%, BU (buildup tag), Vol, IV%, LTP, Δ, Γ, Θ, Vega, Bid, Ask (all fit at 240 columns) — 14
columns × 2 sides + STRIKE = 29 columns.
Every tick changes
every shown value of every row by at least one display unit (OI, ΔOI and volume by whole contracts,
IV by 0.01 %, LTP by 0.05, Δ by 0.01, Γ by 0.0001, Θ and Vega by 0.01, the buildup tag cycles);
only the strikes stay. Snapshots and analytics are built before the timed region.

- tui.chain_refresh_ms: process CPU (time.process_time) of `set_chain(next)` + `await
  pilot.pause()` (message processing, compositor, line rendering), median of REPS ticks.
- tui.datatable_refresh_ms: the reference — a DataTable of the same 200 × 29 formatted strings;
  `update_cell` for all 5,800 cells + `await pilot.pause()`, same clock, same ticks.
- tui.chain_vs_datatable_ratio: median of the per-tick ratios datatable / chain.

The two widgets live on two screens of one app; each rep switches to the chain screen, lets it
settle, times one chain tick, then does the same for the DataTable (interleaved rep by rep: the
machine is noisy, ratios from the same rep are stable).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable

from optterm.engine.analytics.chain import Enriched, SideAnalytics, enrich
from optterm.model import ChainSnapshot, Feed, Legs, Side
from optterm.widgets.chain_table import ChainTable

SIZE = (240, 60)
N_STRIKES = 200
REPS = 15
WARMUP = 3
SEED = 20261124
SPOT = 24_512.35
STEP = 50.0
T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
EXPIRY = date(2026, 11, 26)


class _Base:
    """A fixed 200-strike chain plus its analytics; `tick(t)` moves every shown value."""

    def __init__(self) -> None:
        rng = np.random.default_rng(SEED)
        n = N_STRIKES
        atm = round(SPOT / STEP) * STEP
        self.strikes = atm + STEP * (np.arange(n) - n // 2)
        k = np.log(self.strikes / SPOT)
        self.side: dict[Side, dict[str, np.ndarray]] = {}
        for side, sign in ((Side.CE, 1.0), (Side.PE, -1.0)):
            oi = np.round(2e5 * np.exp(-((k - sign * 0.01) ** 2) / 0.0008) + 500 + rng.random(n))
            self.side[side] = {
                "oi": oi,
                "oi_change": np.round(rng.normal(0, 2000, n)),
                "volume": np.round(oi * 1.5 + 100),
                "ltp": np.round(np.maximum(sign * (SPOT - self.strikes), 0) + 40, 1),
                "bid": np.round(np.maximum(sign * (SPOT - self.strikes), 0) + 39, 1),
                "ask": np.round(np.maximum(sign * (SPOT - self.strikes), 0) + 41, 1),
                "iv": 0.12 - 0.2 * k + 1.5 * k * k,
                "delta": np.clip(0.5 - sign * 8 * k, 0.02, 0.97) * sign,
                "gamma": 0.0004 * np.exp(-(k**2) / 0.002) + 0.0001,
                "theta": -(3 + 15 * np.exp(-(k**2) / 0.002)),
                "vega": 1 + 8 * np.exp(-(k**2) / 0.002),
                "buildup": rng.integers(0, 4, n).astype(np.float64),
            }
        first = self.snapshot(0)
        self.metrics = enrich(first).metrics

    def snapshot(self, t: int) -> ChainSnapshot:
        def legs(side: Side) -> Legs:
            d = self.side[side]
            return Legs(
                d["oi"] + t,
                d["oi_change"] + t,
                d["volume"] + 3 * t,
                d["ltp"] + 0.05 * t,
                d["bid"] + 0.05 * t,
                d["ask"] + 0.05 * t,
                d["iv"] + 0.0001 * t,
            )

        return ChainSnapshot(
            symbol="NIFTY",
            expiry=EXPIRY,
            provider="bench",
            feed=Feed.SIMULATED,
            provider_ts=T0 + timedelta(seconds=15 * t),
            fetched_at=T0 + timedelta(seconds=15 * t),
            spot=SPOT + 0.05 * (t % 7),  # ATM stays put: the window does not move
            lot_size=75,
            strikes=self.strikes,
            ce=legs(Side.CE),
            pe=legs(Side.PE),
        )

    def tick(self, t: int) -> tuple[ChainSnapshot, Enriched]:
        snap = self.snapshot(t)

        def analytics(side: Side) -> SideAnalytics:
            d = self.side[side]
            iv = d["iv"] + 0.0001 * t
            return SideAnalytics(
                iv,
                iv,
                d["delta"] + 0.01 * t,
                d["gamma"] + 0.0001 * t,
                d["theta"] - 0.01 * t,
                d["vega"] + 0.01 * t,
                np.zeros(N_STRIKES),  # GEX
                np.zeros(N_STRIKES),  # ΔOI over the interval
                ((d["buildup"] + t) % 4 + 1).astype(np.int8),
            )

        enr = Enriched(
            snap, analytics(Side.CE), analytics(Side.PE), np.zeros(N_STRIKES), self.metrics
        )
        return snap, enr


def _split(table: ChainTable, row: int) -> list[str]:
    """The 29 cell strings of a row exactly as the ChainTable shows them."""
    text = table.row_text(row)
    cells = [text[x0:x1] for x0, x1 in (table.column_span(Side.CE, c.key) for c in table.columns)]
    x0, x1 = table.column_span(None)
    cells.append(text[x0:x1])
    for c in reversed(table.columns):
        x0, x1 = table.column_span(Side.PE, c.key)
        cells.append(text[x0:x1])
    return cells


class _ChainScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield ChainTable(greeks=True, window=N_STRIKES // 2, id="chain")


class _TableScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(id="table")


class _BenchApp(App[None]):
    CSS = "DataTable { height: 1fr; }"

    def on_mount(self) -> None:
        self.install_screen(_ChainScreen(), "chain")
        self.install_screen(_TableScreen(), "table")


async def _measure() -> tuple[list[float], list[float], int]:
    base = _Base()
    app = _BenchApp()
    chain_ms: list[float] = []
    table_ms: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen("chain")
        await pilot.pause()
        chain = app.screen.query_one(ChainTable)
        snap, enr = base.tick(0)
        chain.set_chain(snap, enr)
        await pilot.pause()
        assert chain.row_count == N_STRIKES
        assert len(chain.column_labels) == 29
        labels = chain.column_labels
        await app.switch_screen("table")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        col_keys = table.add_columns(*labels)
        row_keys = table.add_rows(_split(chain, i) for i in range(N_STRIKES))
        await pilot.pause()
        misses = 0
        for t in range(1, WARMUP + REPS + 1):
            snap, enr = base.tick(t)
            # The DataTable gets exactly the strings the chain will show for this tick.
            await app.switch_screen("chain")
            await pilot.pause()
            before = chain.cache_misses
            t0 = time.process_time()
            chain.set_chain(snap, enr)
            await pilot.pause()
            c = time.process_time() - t0
            misses = chain.cache_misses - before
            cells = [_split(chain, i) for i in range(N_STRIKES)]
            await app.switch_screen("table")
            await pilot.pause()
            t0 = time.process_time()
            for rk, row in zip(row_keys, cells, strict=True):
                for ck, value in zip(col_keys, row, strict=True):
                    table.update_cell(rk, ck, value)
            await pilot.pause()
            d = time.process_time() - t0
            if t > WARMUP:
                chain_ms.append(c * 1e3)
                table_ms.append(d * 1e3)
    return chain_ms, table_ms, misses


def run() -> dict[str, dict[str, Any]]:
    chain_ms, table_ms, misses = asyncio.run(_measure())
    ratios = [d / c for c, d in zip(chain_ms, table_ms, strict=True)]
    what = (
        f"240x60 headless, 200 strikes x 29 columns (greeks=True: OI bar, OI, ΔOI, ΔOI%, BU, Vol, "
        f"IV%, LTP, Δ, Γ, Θ, Vega, Bid, Ask per side + STRIKE), every shown value changed; "
        f"median of {REPS} "
        f"ticks, process CPU of the update + `await pilot.pause()`"
    )
    return {
        "tui.chain_refresh_ms": {
            "value": round(statistics.median(chain_ms), 2),
            "unit": "ms",
            "budget": 20,
            "note": f"ChainTable.set_chain; {what}; {misses} rows re-rendered per tick",
        },
        "tui.datatable_refresh_ms": {
            "value": round(statistics.median(table_ms), 2),
            "unit": "ms",
            "note": f"reference DataTable, update_cell on all 5,800 cells; {what}",
        },
        "tui.chain_vs_datatable_ratio": {
            "value": round(statistics.median(ratios), 2),
            "unit": "x",
            "floor": 5,
            "note": "median of per-tick ratios DataTable / ChainTable, interleaved rep by rep",
        },
    }


if __name__ == "__main__":
    for name, fig in run().items():
        print(name, fig)
