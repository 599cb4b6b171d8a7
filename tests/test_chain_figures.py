"""Chain figures are over the whole chain as the provider gave it, never over the window shown.

The recorded NSE chains carry NSE's own totals for the nearest expiry (`filtered.CE/PE.totOI`,
`totVol`): PCR and the OI and volume totals must equal them exactly, through every path a chain
takes (the poller, the store, a follower of the store, `optterm chain`), whatever the window.
Two fixtures are left out of the equality, on purpose: the TRIMMED NIFTY file keeps the original
totals over 21 rows (SOURCES.md), and the 2026 GetQuoteApi payload carries no totals; both are in
the window-invariance test. The SmartAPI recordings hold no option chain.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pytest

from optterm.config import PollerSettings, Settings, WatchItem
from optterm.engine.alerts.evaluate import AlertEvaluator
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.analytics.chain import enrich, max_pain
from optterm.engine.events import ChainUpdate
from optterm.engine.follower import Follower
from optterm.engine.poller import Poller, Watch
from optterm.model import (
    AlertKind,
    AlertRule,
    ChainSnapshot,
    Condition,
    Feed,
    Legs,
    Metrics,
    Segment,
    Underlying,
)
from optterm.present.chain import metrics_lines
from optterm.providers.nse.parse import parse_chains
from tests.conftest import FIXTURES, Home, run_cli
from tests.replay_server import ReplayServer, Reply

WITH_TOTALS = {
    "NIFTY": "nse_option-chain-indices_NIFTY_2025-07-17_full.json",
    "BANKNIFTY": "nse_option-chain-indices_BANKNIFTY_2025-07-16_full.json",
    "BANKNIFTY23": "nse_option-chain-indices_BANKNIFTY_2023-05-03_full.json",
    "FINNIFTY": "nse_option-chain-indices_FINNIFTY_2025-07-16_full.json",
    "MIDCPNIFTY": "nse_option-chain-indices_MIDCPNIFTY_2025-07-16_full.json",
    "RELIANCE": "nse_option-chain-equities_RELIANCE_2025-07-17_full.json",
}
WITHOUT_TOTALS = {
    "NIFTY_TRIMMED": (
        "nse_option-chain-indices_NIFTY_2025-07-17_TRIMMED_nearest-expiry_atm+-10.json"
    ),
    "NIFTY_2026": "nse_GetQuoteApi_getOptionChainData_NIFTY_2026-07-10_full.json",
}
WINDOWS = (5, 20, 50)
FETCHED = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
EXPIRY_T = date(2026, 11, 24)


def test_every_recorded_nse_chain_is_covered() -> None:
    chains = {p.name for p in FIXTURES.glob("nse_*.json") if "option" in p.name.lower()}
    chains -= {"nse_GetQuoteApi_getOptionChainDropdown_NIFTY_2026-07.json"}
    assert chains == set(WITH_TOTALS.values()) | set(WITHOUT_TOTALS.values())


def nearest(name: str, symbol: str = "NIFTY") -> tuple[ChainSnapshot, dict[str, Any]]:
    payload = json.loads((FIXTURES / name).read_bytes())
    chains = parse_chains(payload, symbol, lot_size=75, fetched_at=FETCHED)
    return chains[min(chains)], payload


class Recorded:
    """A provider serving one recorded chain, whole, as NSE gave it."""

    name = "nse"
    feed = Feed.DELAYED

    def __init__(self, snap: ChainSnapshot) -> None:
        self.snap = snap

    async def underlying(self, symbol: str) -> Underlying:
        return Underlying(symbol, Segment.INDEX, self.snap.lot_size, 50)

    async def list_expiries(self, symbol: str) -> list[date]:
        return [self.snap.expiry]

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        return self.snap

    async def fetch_spot(self, symbol: str) -> float:
        return self.snap.spot

    async def close(self) -> None:
        pass


def assert_published(m: Metrics, payload: dict[str, Any]) -> None:
    """Totals and PCR as NSE published them (exactly: sums of whole contracts)."""
    filt = payload["filtered"]
    ce_oi, pe_oi = filt["CE"]["totOI"], filt["PE"]["totOI"]
    ce_vol, pe_vol = filt["CE"]["totVol"], filt["PE"]["totVol"]
    assert (m.ce_oi, m.pe_oi, m.ce_volume, m.pe_volume) == (ce_oi, pe_oi, ce_vol, pe_vol)
    assert m.pcr_oi == pe_oi / ce_oi
    assert m.pcr_volume == pe_vol / ce_vol


def poller_for(snap: ChainSnapshot, strikes: int, store: Any = None) -> Poller:
    return Poller(
        Recorded(snap),
        None if store is None else store.snapshots,
        [Watch(snap.symbol, 1, strikes)],
        interval=15,
        timeout=5,
        now=lambda: snap.provider_ts,
        analyzer=Analyzer(
            history=None if store is None else store.analytics,
            baselines=None if store is None else store.snapshots,
        ),
        analytics_sink=None if store is None else store.analytics,
    )


@pytest.mark.parametrize("key", sorted(WITH_TOTALS))
@pytest.mark.parametrize("strikes", WINDOWS)
async def test_published_totals_and_pcr_whatever_the_window(key: str, strikes: int) -> None:
    snap, payload = nearest(WITH_TOTALS[key])
    tick = await poller_for(snap, strikes).tick_once()
    (update,) = tick.updates
    assert update.enriched is not None and update.metrics is not None
    assert len(update.snapshot) == len(snap.window(strikes))  # the window is published…
    assert update.enriched.chain_strikes == len(snap)  # …with the whole chain's figures
    assert_published(update.metrics, payload)
    # Everything chain-level is the whole chain's: the same as analysing it directly.
    whole = enrich(snap).metrics
    for name in ("max_pain", "support", "resistance", "pcr_oi_change", "gex", "call_wall"):
        a, b = getattr(update.metrics, name), getattr(whole, name)
        assert a == b or (math.isnan(a) and math.isnan(b)), name


@pytest.mark.parametrize("name", sorted({**WITH_TOTALS, **WITHOUT_TOTALS}.values()))
async def test_every_window_gives_the_same_figures(name: str) -> None:
    snap, _ = nearest(name)
    seen = []
    for strikes in WINDOWS:
        (update,) = (await poller_for(snap, strikes).tick_once()).updates
        assert update.metrics is not None
        seen.append(update.metrics)
    assert seen[0] == seen[1] == seen[2]
    assert seen[0].ce_oi == float(np.nansum(snap.ce.oi))


def brute_max_pain(snap: ChainSnapshot) -> float:
    """Max pain by its definition: the strike minimising the payout over ALL strikes."""
    k, ce, pe = snap.strikes, np.nan_to_num(snap.ce.oi), np.nan_to_num(snap.pe.oi)
    payout = [float(np.sum(ce * np.maximum(s - k, 0) + pe * np.maximum(k - s, 0))) for s in k]
    return float(k[int(np.argmin(payout))])


@pytest.mark.parametrize("key", sorted(WITH_TOTALS))
async def test_max_pain_is_over_every_strike(key: str) -> None:
    snap, _ = nearest(WITH_TOTALS[key])
    (update,) = (await poller_for(snap, 5).tick_once()).updates
    assert update.metrics is not None
    assert update.metrics.max_pain == brute_max_pain(snap)


@pytest.mark.parametrize(("key", "window_pain"), [("FINNIFTY", 26950.0), ("RELIANCE", 1490.0)])
def test_a_window_would_have_moved_max_pain(key: str, window_pain: float) -> None:
    # What the poller computed before (the window's max pain) differs from the definition on
    # these chains: the test above fails on the old behaviour.
    snap, _ = nearest(WITH_TOTALS[key])
    assert enrich(snap.window(5)).metrics.max_pain == window_pain != brute_max_pain(snap)
    assert max_pain(snap.strikes, snap.ce.oi, snap.pe.oi)[0] == brute_max_pain(snap)


async def test_store_keeps_a_window_and_the_whole_chains_totals(store: Any) -> None:
    snap, payload = nearest(WITH_TOTALS["MIDCPNIFTY"], "MIDCPNIFTY")
    poller = poller_for(snap, 50, store)
    await poller.tick_once()
    stored = await store.snapshots.latest("MIDCPNIFTY", snap.expiry)
    assert stored is not None and len(stored) == len(snap.window(50)) < len(snap)
    assert stored.chain_strikes == len(snap)  # a stored window says it is one
    # The metrics row carries the whole chain's totals; that is what history reads.
    m = await store.analytics.latest_metrics("MIDCPNIFTY", snap.expiry)
    assert m is not None
    assert_published(m, payload)
    # Re-summing the stored window would be 16 % off on PCR: the reason the row exists.
    window_pcr = np.nansum(stored.pe.oi) / np.nansum(stored.ce.oi)
    assert abs(window_pcr / m.pcr_oi - 1) > 0.15

    # A terminal following that store shows the daemon's whole-chain figures over the window.
    settings = Settings(
        poller=PollerSettings(watch=[WatchItem(symbol="MIDCPNIFTY", expiries=1, strikes=50)])
    )
    follower = Follower(store, settings, now=lambda: snap.provider_ts)
    (update,) = (await follower.follow_once()).updates
    assert isinstance(update, ChainUpdate) and update.metrics is not None
    assert len(update.snapshot) == len(stored)
    assert_published(update.metrics, payload)
    assert update.metrics.max_pain == brute_max_pain(snap)


def serve_nse(replay: ReplayServer, name: str) -> dict[str, str]:
    def prime(_req: object) -> Reply:
        return Reply(200, b"<html></html>", {"Set-Cookie": "nseappid=t; Path=/"})

    replay.route("GET", "/option-chain", prime)
    replay.route("GET", "/api/option-chain-indices", Reply.file(FIXTURES / name))
    return {
        "OPTTERM_PROVIDERS_ORDER": "nse",
        "OPTTERM_PROVIDERS_NSE_BASE_URL": replay.url,
        "OPTTERM_PROVIDERS_NSE_ENDPOINTS": "legacy",
        "OPTTERM_PROVIDERS_NSE_MIN_INTERVAL": "0.2",
    }


@pytest.mark.parametrize("key", ["NIFTY", "MIDCPNIFTY"])
def test_chain_command_prints_the_same_figures_for_any_strikes(
    home: Home, replay: ReplayServer, key: str
) -> None:
    env = serve_nse(replay, WITH_TOTALS[key])
    _, payload = nearest(WITH_TOTALS[key])
    docs = {}
    for n in ("5", "50"):
        out = run_cli(home, "chain", key, "--json", "--strikes", n, env=env)
        assert out.returncode == 0, out.stderr
        docs[n] = json.loads(out.stdout)
        assert len(docs[n]["rows"]) <= 2 * int(n) + 1
        m = docs[n]["metrics"]
        filt = payload["filtered"]
        assert (m["ce_oi"], m["pe_oi"]) == (filt["CE"]["totOI"], filt["PE"]["totOI"])
        assert m["pcr_oi"] == filt["PE"]["totOI"] / filt["CE"]["totOI"]
        assert docs[n]["metrics_strikes"] == docs[n]["chain_strikes"] >= len(docs[n]["rows"])
    assert docs["5"]["metrics"] == docs["50"]["metrics"]
    # The printed footer says the same, and says what the figures are over.
    lines = {}
    for n in ("5", "50"):
        out = run_cli(home, "chain", key, "--strikes", n, env=env)
        assert out.returncode == 0, out.stderr
        lines[n] = [ln for ln in out.stdout.splitlines() if ln.startswith("PCR OI")]
        assert f"figures over all {docs[n]['chain_strikes']} strikes" in out.stdout
    assert lines["5"] == lines["50"] and lines["5"]


def test_no_oi_means_no_max_pain_and_no_gamma_means_no_gex() -> None:
    k = np.array([100.0, 110.0, 120.0])
    nan = np.full(3, np.nan)
    ts = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    legs = Legs(np.zeros(3), nan, np.zeros(3), np.array([5.0, 2.0, 1.0]), nan, nan, nan)
    snap = ChainSnapshot(
        "X", date(2026, 12, 1), "t", Feed.SIMULATED, ts, ts, 110.0, 50, k, legs, legs
    )
    m = enrich(snap).metrics
    assert math.isnan(m.max_pain)  # not the lowest strike
    assert math.isnan(m.gex)  # no OI for any gamma: not +0.00
    text = "\n".join(metrics_lines(m))
    assert "max pain n/a" in text and "GEX n/a" in text and "flip n/a" in text
    assert "+0.00" not in text
    # With OI and prices GEX is a number again.
    priced = Legs(np.full(3, 10.0), nan, np.zeros(3), np.array([12.0, 4.0, 1.0]), nan, nan, nan)
    m2 = enrich(
        ChainSnapshot(
            "X", date(2026, 12, 1), "t", Feed.SIMULATED, ts, ts, 110.0, 50, k, priced, priced
        )
    ).metrics
    assert math.isfinite(m2.gex) and m2.max_pain == 110.0


def test_chain_wide_alert_totals_are_the_whole_chains() -> None:
    # OI added far from the money only: the published window (2 strikes each side) holds none.
    k = 24_000.0 + 100.0 * np.arange(21)
    ts = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)

    def chain(step: int, far_change: float) -> ChainSnapshot:
        change = np.zeros(21)
        change[[0, 20]] = far_change
        legs = Legs(
            np.full(21, 1e4),
            change,
            np.full(21, 50.0),
            np.full(21, 10.0),
            *(np.full(21, np.nan),) * 3,
        )
        at = ts + timedelta(seconds=15 * step)
        return ChainSnapshot("NIFTY", EXPIRY_T, "t", Feed.LIVE, at, at, 25_000.0, 65, k, legs, legs)

    rule = AlertRule(
        "NIFTY",
        AlertKind.OI_CHANGE,
        Condition.ABOVE,
        5_000.0,
        id=1,
        cooldown_s=0.0,
        active_from=time(0, 0),
        active_to=time(23, 59),
    )
    for with_analytics in (True, False):
        ev = AlertEvaluator()
        ev.load([rule])
        fired = []
        for step, far in enumerate((0.0, 3_000.0)):
            whole = chain(step, far)
            window = whole.window(2)
            e = enrich(whole).window(2) if with_analytics else None
            fired += ev.evaluate([(window, e)], [], window.provider_ts)
        if with_analytics:  # 4 x 3,000 over the whole chain, though 0 in the window
            assert [f.event.value for f in fired] == [12_000.0]
        else:  # a window with no metrics cannot tell the chain's total: nothing, not 0
            assert fired == []
