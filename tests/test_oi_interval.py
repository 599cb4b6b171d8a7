"""ΔOI and buildups over one chosen interval, and a market view that does not flicker.

Sessions are the seeded simulator stepped by hand (a tick = one 15 s step), so every baseline
time and every ΔOI is known exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optterm.config import load_settings
from optterm.engine.analytics import viewhold
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.analytics.changes import MAX_SAMPLES, ChangeBook, Sample, classify
from optterm.engine.analytics.viewhold import EXIT_SCORE, HOLD_TICKS, ViewHold
from optterm.engine.events import Tick
from optterm.engine.follower import Follower
from optterm.engine.poller import Poller, Watch
from optterm.engine.runner import Runner
from optterm.infra import paths
from optterm.market import IST, OI_INTERVAL_CYCLE, OiInterval
from optterm.model import LEG_FIELDS, Bias, Buildup, ChainSnapshot, Feed, Legs, MarketView, Metrics
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from tests.conftest import Home, run_cli
from tests.test_runner import Recorder, settings_for

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
EXP = date(2026, 11, 24)
STEP = 15.0
RISING = {int(Buildup.LONG_BUILDUP), int(Buildup.SHORT_BUILDUP)}
FALLING = {int(Buildup.SHORT_COVERING), int(Buildup.LONG_UNWINDING)}


class Session:
    """A simulated session polled one step per tick, by hand."""

    def __init__(
        self,
        scenario: str = "quiet",
        seed: int = 42,
        *,
        store=None,
        interval: OiInterval | None = None,
        strikes: int = 20,
        start_step: int = 0,
    ) -> None:
        self.clock = [0.0]
        self.sim = SimulatorProvider(
            seed=seed, scenario=scenario, step_seconds=STEP, start=OPEN, clock=self.clock_now
        )
        self.clock[0] = start_step * STEP  # the same session, joined later
        self.analyzer = Analyzer(
            history=None if store is None else store.analytics,
            baselines=None if store is None else store.snapshots,
            interval=interval,
        )
        self.poller = Poller(
            self.sim,
            None if store is None else store.snapshots,
            [Watch("NIFTY", 1, strikes)],
            interval=STEP,
            timeout=5,
            now=self.sim.sim_now,
            analyzer=self.analyzer,
            analytics_sink=None if store is None else store.analytics,
        )

    def clock_now(self) -> float:
        return self.clock[0]

    async def tick(self) -> Tick:
        tick = await self.poller.tick_once()
        self.clock[0] += STEP
        return tick

    def whole(self) -> ChainSnapshot:
        """The whole chain of the last tick (what the analyzer saw)."""
        (update,) = self.poller.last_tick.updates  # type: ignore[union-attr]
        e = self.analyzer.latest(update.snapshot.symbol, update.snapshot.expiry)
        assert e is not None
        return e.snapshot

    def at(self, step: int) -> ChainSnapshot:
        snap = self.whole()
        return self.sim.chain_at_step(snap.symbol, snap.expiry, step)


def hms(ts: datetime) -> str:
    return ts.astimezone(IST).strftime("%H:%M:%S")


# -- the interval itself --------------------------------------------------------------------------


def test_intervals_parse_name_and_cycle() -> None:
    assert OiInterval.parse("day") == OiInterval() and OiInterval().is_day
    assert OiInterval.parse(" 15m ").minutes == 15 and OiInterval.parse("30min").name == "30m"
    assert OiInterval.parse("10:05") == OiInterval(at=time(10, 5))
    assert [i.name for i in OI_INTERVAL_CYCLE] == ["day", "5m", "15m", "30m"]
    assert [OiInterval.parse(n).next().name for n in ("day", "5m", "30m", "10:05")] == [
        "5m",
        "15m",
        "day",
        "day",
    ]
    for bad in ("7m", "week", "25:00", "10:61", ""):
        with pytest.raises(ValueError, match="use day, 5m, 15m, 30m or a time of today as HH:MM"):
            OiInterval.parse(bad)


@given(st.lists(st.floats(-1e4, 1e4) | st.just(math.nan), min_size=1, max_size=40), st.data())
def test_a_buildup_always_has_the_sign_of_its_oi_change(d_oi: list[float], data) -> None:
    d_px = data.draw(
        st.lists(st.floats(-50, 50) | st.just(math.nan), min_size=len(d_oi), max_size=len(d_oi))
    )
    oi, px = np.array(d_oi), np.array(d_px)
    codes = classify(oi, px)
    for c, o in zip(codes.tolist(), oi.tolist(), strict=True):
        if c in RISING:
            assert o >= 1.0
        elif c in FALLING:
            assert o <= -1.0
        else:
            assert c == 0


# -- the view -------------------------------------------------------------------------------------


def view(score: float, bias: Bias) -> MarketView:
    return MarketView(bias, score, ("raw",))


def test_view_hold_rule() -> None:
    hold = ViewHold()
    assert hold.update(view(1.0, Bias.BULLISH)).bias is Bias.BULLISH  # the first shows at once
    # One-tick flips, as the old view did tick to tick, never get through.
    for k in range(20):
        raw = view(-1.0, Bias.BEARISH) if k % 2 else view(0.0, Bias.NEUTRAL)
        assert hold.update(raw).bias is Bias.BULLISH
    # The band: at +0.5 bullish stays bullish however long.
    for _ in range(10):
        shown = hold.update(view(EXIT_SCORE, Bias.NEUTRAL))
        assert shown.bias is Bias.BULLISH and "held bullish" in shown.reasons[-1]
    # A change that persists is taken on its HOLD_TICKS-th chain, not before.
    for k in range(1, HOLD_TICKS):
        shown = hold.update(view(-1.0, Bias.BEARISH))
        assert shown.bias is Bias.BULLISH
        assert f"bearish for {k} of {HOLD_TICKS}" in shown.reasons[-1]
    assert hold.update(view(-1.0, Bias.BEARISH)) == view(-1.0, Bias.BEARISH)


async def quiet_hour(seed: int) -> int:
    """How many times the view shown changes in an hour (240 ticks) of the quiet scenario."""
    session = Session("quiet", seed)
    shown = []
    for _ in range(240):
        (update,) = (await session.tick()).updates
        assert update.metrics is not None
        shown.append(update.metrics.view.bias)
    return sum(1 for a, b in itertools.pairwise(shown) if a != b)


@pytest.mark.parametrize("seed", [42, 1])
async def test_quiet_session_view_changes_at_most_three_times_an_hour(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bound: ≤ 3 changes in an hour (240 ticks of 15 s) of the quiet scenario. Nothing moves
    # for good on a quiet tape; what is left are votes that sit on a threshold for minutes
    # (a PCR at 1.20, spot at a max-pain band's edge), and each change is held HOLD_TICKS
    # chains. Measured: 3 (seed 42) and 2 (seed 1); the view before any of this changed 23
    # times in 34 ticks.
    assert await quiet_hour(seed) <= 3
    if seed == 42:
        # Without the band and the hold, this hour flips far more: the test can fail. (Seed 1
        # is steady even without them since premiums are measured from the previous close.)
        monkeypatch.setattr(viewhold, "HOLD_TICKS", 1)
        monkeypatch.setattr(viewhold, "EXIT_SCORE", 1.0)
        assert await quiet_hour(seed) >= 10


async def test_a_trending_session_still_gets_its_view() -> None:
    session = Session("call_writing", 42)
    # The writing builds at a growing pace: by 20 minutes (80 ticks of 15 s) the day's buildups
    # and the view are bearish, through the hold.
    for _ in range(80):
        (update,) = (await session.tick()).updates
    assert update.metrics is not None and update.metrics.view.bias is Bias.BEARISH
    assert any("day's buildups lean bearish" in r for r in update.metrics.view.reasons)


# -- ΔOI and buildups over the interval ------------------------------------------------------------

INTERVALS = [*OI_INTERVAL_CYCLE, OiInterval(at=time(9, 20))]


async def test_buildup_agrees_with_the_oi_change_beside_it_for_every_interval() -> None:
    session = Session("put_writing", 3)
    checked = classified = 0
    for _ in range(130):  # past half an hour: every interval has its full baseline by the end
        await session.tick()
        whole = session.whole()
        for interval in INTERVALS:
            ch = session.analyzer.changes.changes(whole, interval)
            for leg in (ch.ce, ch.pe):
                rising = np.isin(leg.buildup, list(RISING))
                falling = np.isin(leg.buildup, list(FALLING))
                assert (leg.oi[rising] >= 1).all() and (leg.oi[falling] <= -1).all()
                assert (leg.buildup[~(np.abs(leg.oi) >= 1)] == 0).all()
                checked += leg.oi.size
                classified += int(rising.sum() + falling.sum())
        # What the chain update carries is the configured interval's (day), the same arrays.
        (update,) = session.poller.last_tick.updates  # type: ignore[union-attr]
        e = update.enriched
        assert e is not None and e.change.interval.is_day
        day = session.analyzer.changes.day(whole).take(_window_of(whole, update.snapshot))
        assert np.array_equal(e.ce.oi_change, day.ce.oi, equal_nan=True)
        assert np.array_equal(e.ce.buildup, day.ce.buildup)
    assert checked > 100_000 and classified > 10_000


def _window_of(whole: ChainSnapshot, window: ChainSnapshot) -> slice:
    lo = int(np.searchsorted(whole.strikes, window.strikes[0]))
    return slice(lo, lo + len(window))


async def test_each_interval_measures_from_its_baseline() -> None:
    session = Session("call_writing", 42)
    for _ in range(81):  # ticks at steps 0..80: the last chain is at 09:35:00
        await session.tick()
    whole = session.whole()
    now = whole.provider_ts
    assert hms(now) == "09:35:00"
    book = session.analyzer.changes

    def expect(interval: str, step: int, label: str, complete: bool = True) -> None:
        ch = book.changes(whole, OiInterval.parse(interval))
        base = session.at(step)
        assert ch.basis.since == base.provider_ts and ch.basis.label == label, interval
        assert ch.basis.complete is complete and ch.basis.available
        assert np.allclose(ch.ce.oi, whole.ce.oi - base.ce.oi, equal_nan=True)
        assert np.allclose(ch.pe.price, whole.pe.ltp - base.pe.ltp, equal_nan=True)

    expect("5m", 60, "since 09:30:00 (5m)")
    expect("15m", 20, "since 09:20:00 (15m)")
    expect("30m", 0, "since 09:15:00 (20m of 30m)", complete=False)  # the session is 20 min old
    expect("09:20", 20, "since 09:20:00 (pinned 09:20)")
    expect("09:31", 64, "since 09:31:00 (pinned 09:31)")
    # The day: OI from the provider's change on the day; the premium from the day's first
    # chain (the simulator gives no previous close), and the label says so.
    day = book.changes(whole, OiInterval())
    assert day.basis.label == "since prev close"
    assert np.array_equal(day.ce.oi, whole.ce.oi_change, equal_nan=True)
    # The day's premium change is from each leg's previous close (the simulator gives one).
    assert np.allclose(day.ce.price, whole.ce.ltp - whole.ce.prev_close, equal_nan=True)
    # Not reached yet, and nothing before it at all.
    assert not book.changes(whole, OiInterval.parse("14:00")).basis.available
    assert book.changes(whole, OiInterval.parse("14:00")).basis.label == "14:00: not reached yet"
    assert np.isnan(book.changes(whole, OiInterval.parse("14:00")).ce.oi).all()


async def test_switching_the_interval_redoes_the_chain_on_screen_at_once() -> None:
    session = Session("call_writing", 42)
    sub = session.poller.subscribe()
    for _ in range(25):
        await session.tick()
    last = session.poller.last_tick
    assert last is not None
    labels = []
    for interval in ("5m", "15m", "09:16", "day"):
        tick = await session.poller.set_oi_interval(OiInterval.parse(interval))
        assert tick is not None and tick.seq == last.seq and not tick.signals
        (update,) = tick.updates
        assert update.snapshot is last.updates[0].snapshot and not update.stored
        assert update.enriched is not None and update.enriched.metrics == last.updates[0].metrics
        labels.append(update.enriched.change.label)
    assert labels == [  # the last chain is at 09:21:00
        "since 09:16:00 (5m)",
        "since 09:15:00 (6m of 15m)",
        "since 09:16:00 (pinned 09:16)",
        "since prev close",
    ]
    published = []
    while not sub.queue.empty():
        published.append(await sub.get())
    assert len(published) == 25 + 4  # every redone tick went to the subscribers too
    # The next real tick is measured over the interval in force.
    await session.poller.set_oi_interval(OiInterval.parse("5m"))
    (update,) = (await session.tick()).updates
    assert update.enriched is not None and update.enriched.change.label == "since 09:16:15 (5m)"


async def test_a_restart_mid_session_measures_from_the_stored_history(store) -> None:
    first = Session("call_writing", 42, store=store)
    for _ in range(40):  # 09:15:00 .. 09:24:45 stored
        await first.tick()
    # The last view stored was bearish; a fresh engine starts with that view shown.
    (update,) = first.poller.last_tick.updates  # type: ignore[union-attr]
    assert update.metrics is not None
    last_view = update.metrics.view.bias

    again = Session("call_writing", 42, store=store, interval=OiInterval.parse("5m"), start_step=40)
    (update,) = (await again.tick()).updates
    e = update.enriched
    assert e is not None and hms(update.snapshot.provider_ts) == "09:25:00"
    assert e.change.label == "since 09:20:00 (5m)" and e.change.complete
    base = again.sim.chain_at_step("NIFTY", update.snapshot.expiry, 20)
    k = update.snapshot.strikes
    idx = np.searchsorted(base.strikes, k)
    # Measured from the stored window of 09:20: its strikes, NaN where it held none.
    known = np.isfinite(e.ce.oi_change)
    stored = base.window(20).strikes
    assert np.array_equal(k[known], k[np.isin(k, stored)])
    assert np.allclose(e.ce.oi_change[known], (update.snapshot.ce.oi - base.ce.oi[idx])[known])
    assert update.metrics is not None and update.metrics.view.bias is last_view
    # The day's premium baseline is the day's first stored chain, not this one.
    day = again.analyzer.changes.changes(again.whole(), OiInterval())
    assert day.basis.label == "since prev close"


async def test_a_fresh_engine_holds_the_view_stored_earlier_today(store) -> None:
    session = Session("quiet", 42, store=store, start_step=8)
    stored = Metrics(
        **{
            **{f: math.nan for f in Metrics.__dataclass_fields__},
            "symbol": "NIFTY",
            "expiry": (await session.sim.list_expiries("NIFTY"))[0],
            "ts": OPEN + timedelta(minutes=1),
            "provider": "simulator",
            "feed": Feed.SIMULATED,
            "forward_source": "parity",
            "iv_rank": None,
            "iv_percentile": None,
            "view": MarketView(Bias.BEARISH, -1.0, ("stored",)),
        }
    )
    await store.analytics.save_metrics([stored])
    (update,) = (await session.tick()).updates
    assert update.metrics is not None
    view_now = update.metrics.view
    assert view_now.bias is Bias.BEARISH and "held" in view_now.reasons[-1]


def test_baselines_are_bounded_however_fast_the_poll() -> None:
    book = ChangeBook()
    book.set_interval(OiInterval(minutes=30))
    k = np.array([100.0, 110.0])
    ts0 = OPEN
    snap = None
    for i in range(3 * 3600):  # three hours polled every second
        at = ts0 + timedelta(seconds=i)
        legs = Legs(
            np.full(2, 100.0 + i),
            *(np.full(2, np.nan),) * 2,
            np.full(2, 5.0),
            *(np.full(2, np.nan),) * 3,
        )
        snap = ChainSnapshot(
            "X", date(2026, 11, 24), "t", Feed.LIVE, at, at, 105.0, 1, k, legs, legs
        )
        book.observe(snap)
        assert book.samples("X", EXP) <= MAX_SAMPLES
    assert snap is not None
    ch = book.changes(snap)
    assert ch.basis.complete and snap.provider_ts - ch.basis.since >= timedelta(minutes=30)
    assert snap.provider_ts - ch.basis.since <= timedelta(minutes=30, seconds=30)
    assert ch.ce.oi[0] == snap.ce.oi[0] - (100.0 + (ch.basis.since - ts0).total_seconds())


def test_a_kept_sample_does_not_pin_the_chains_leg_block() -> None:
    # The simulator's chains (like Legs.of_block) share one block of every leg field of both
    # sides; the book keeps samples for half an hour and must hold only their four columns.
    block = (
        np.arange(2 * len(LEG_FIELDS) * 3, dtype=np.float64).reshape(2, len(LEG_FIELDS), 3).copy()
    )
    block.flags.writeable = False
    at = OPEN
    snap = ChainSnapshot(
        "X",
        EXP,
        "t",
        Feed.LIVE,
        at,
        at,
        105.0,
        1,
        np.array([100.0, 110.0, 120.0]),
        Legs.of_block(block[0]),
        Legs.of_block(block[1]),
    )
    kept = Sample.kept(snap)
    for column in (kept.ce_oi, kept.ce_ltp, kept.pe_oi, kept.pe_ltp):
        assert column.base is None and not np.shares_memory(column, block)
    assert np.array_equal(kept.ce_ltp, snap.ce.ltp) and np.array_equal(kept.pe_oi, snap.pe.oi)


def test_simulated_data_is_never_a_baseline_for_market_data() -> None:
    book = ChangeBook()
    k = np.array([100.0])
    legs = Legs(*(np.ones(1),) * 7)
    for feed, minute in ((Feed.SIMULATED, 0), (Feed.LIVE, 20)):
        at = OPEN + timedelta(minutes=minute)
        book.observe(
            ChainSnapshot("X", date(2026, 11, 24), "t", feed, at, at, 100.0, 1, k, legs, legs)
        )
    at = OPEN + timedelta(minutes=21)
    live = ChainSnapshot("X", date(2026, 11, 24), "t", Feed.LIVE, at, at, 100.0, 1, k, legs, legs)
    assert book.changes(live, OiInterval(minutes=15)).basis.label == "since 09:35:00 (1m of 15m)"


# -- the interval from the outside: config, CLI, the runner ----------------------------------------


def test_config_default_and_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[display]\noi_interval = "15M"\n')
    assert load_settings(cfg, env={}).display.interval == OiInterval(minutes=15)
    assert load_settings(None, env={}).display.oi_interval == "day"


def test_cli_interval_flag_and_config(home: Home) -> None:
    bad = run_cli(home, "chain", "NIFTY", "--interval", "7m")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    assert "--interval '7m' is not an OI interval; use day, 5m, 15m, 30m" in bad.stderr

    cfg = home.root / "bad.toml"
    cfg.write_text('[display]\noi_interval = "weekly"\n')
    out = run_cli(home, "--config", str(cfg), "chain", "NIFTY")
    assert out.returncode == 2 and "display.oi_interval" in out.stderr
    assert "Traceback" not in out.stderr

    # No history anywhere: a minute interval says so, and nothing is made up.
    out = run_cli(home, "chain", "NIFTY", "--json", "-n", "3", "--interval", "15m")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["change"] == {
        "interval": "15m",
        "label": "15m: no earlier chain yet",
        "since": None,
        "complete": False,
        "available": False,
    }
    for row in doc["rows"]:
        for side in ("ce", "pe"):
            assert row[side]["interval_oi_change"] is None and row[side]["buildup"] is None
    assert not (paths.data_dir() / "optterm.db").exists()  # a one-off fetch records nothing


async def test_cli_measures_from_the_stored_history(home: Home) -> None:
    # History from 09:15 to 09:59 in the store (one chain a minute), then `optterm chain` at
    # 10:00 (one simulated step per hour: the chain it reads is fixed).
    env = {
        "OPTTERM_PROVIDERS_SIMULATOR_START": "2026-11-20T10:00:00+05:30",
        "OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600",
    }
    early = SimulatorProvider(seed=42, step_seconds=60, start=OPEN)
    expiry = (await early.list_expiries("NIFTY"))[0]
    store = await open_store(paths.default_store_url())
    try:
        await store.snapshots.write_many(
            [early.chain_at_step("NIFTY", expiry, k).window(30) for k in range(45)]
        )
    finally:
        await store.close()
    out = await asyncio.to_thread(
        run_cli, home, "chain", "NIFTY", "--json", "-n", "2", "--interval", "15m", env=env
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["change"]["label"] == "since 09:45:00 (15m)" and doc["change"]["complete"]
    base = early.chain_at_step("NIFTY", expiry, 30)
    now = SimulatorProvider(
        seed=42, step_seconds=3600, start=datetime(2026, 11, 20, 4, 30, tzinfo=UTC)
    ).chain_at_step("NIFTY", expiry, 0)
    for row in doc["rows"]:
        i, j = (int(np.flatnonzero(s.strikes == row["strike"])[0]) for s in (now, base))
        assert row["ce"]["interval_oi_change"] == pytest.approx(now.ce.oi[i] - base.ce.oi[j])
    table = await asyncio.to_thread(
        run_cli, home, "chain", "NIFTY", "-n", "2", "--interval", "15m", env=env
    )
    assert "ΔOI and buildups since 09:45:00 (15m)" in table.stdout


async def test_runner_switches_the_interval_of_a_running_engine(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    rec = Recorder()
    stop = asyncio.Event()
    runner = Runner(settings, role="auto", listener=rec, history=False)
    running = asyncio.create_task(runner.run(stop))
    await rec.until(lambda: rec.ticks)
    assert runner.oi_interval.is_day
    runner.set_oi_interval(OiInterval(minutes=5))

    def over_5m() -> bool:
        e = rec.ticks[-1].updates[0].enriched
        return e is not None and e.change.interval == OiInterval(minutes=5)

    await rec.until(over_5m)
    label = rec.ticks[-1].updates[0].enriched.change.label  # type: ignore[union-attr]
    # The session is seconds old: there is no 5 min baseline yet, and the label says so.
    assert label == "5m: no earlier chain yet" or (label.startswith("since ") and "of 5m)" in label)
    stop.set()
    assert await running is None


async def test_a_follower_measures_the_interval_from_the_stored_chains(store) -> None:
    session = Session("call_writing", 42, store=store)
    for _ in range(30):  # stored: 09:15:00 .. 09:22:15
        await session.tick()
    settings = load_settings(None, env={"OPTTERM_POLLER_WATCH": "NIFTY:1:20"})
    follower = Follower(store, settings, now=lambda: session.whole().provider_ts)
    (update,) = (await follower.follow_once()).updates
    assert update.enriched is not None
    assert update.enriched.change.label == "since prev close"
    tick = await follower.set_oi_interval(OiInterval.parse("5m"))
    assert tick is not None
    (redone,) = tick.updates
    e = redone.enriched
    assert e is not None and e.change.label == "since 09:17:15 (5m)"
    assert e.metrics == update.metrics  # the daemon's whole-chain figures, untouched
    base = session.at(9)
    idx = np.searchsorted(base.strikes, redone.snapshot.strikes)
    known = np.isfinite(e.pe.oi_change)
    assert known.sum() > 30
    expected = redone.snapshot.pe.oi - base.pe.oi[idx]
    assert np.allclose(e.pe.oi_change[known], expected[known])


async def test_i_on_the_dashboard_cycles_the_interval_of_the_running_engine(
    tmp_path: Path,
) -> None:
    from optterm.app import OpttermApp

    app = OpttermApp(settings_for(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        await app.first_chain.wait()

        def shown() -> str | None:
            update = app.state.chain("NIFTY")
            e = None if update is None else update.enriched
            return None if e is None else e.change.interval.name

        assert shown() == "day"
        for expected in ("5m", "15m", "30m", "day"):
            await pilot.press("i")
            assert any(f"over {expected}" in n.message for n in app._notifications)
            while shown() != expected:  # the redone chain arrives with the engine's news
                app.ticked.clear()
                await app.ticked.wait()
        await pilot.press("q")


def test_the_day_interval_names_what_each_change_is_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from optterm.engine.analytics import changes
    from optterm.engine.analytics.changes import Sample, day_change

    k = np.array([100.0, 110.0])
    nan = np.full(2, np.nan)

    def chain(minute: int, oi: float, oi_change: np.ndarray, ltp: float) -> ChainSnapshot:
        at = OPEN + timedelta(minutes=minute)
        legs = Legs(np.full(2, oi), oi_change, nan, np.full(2, ltp), nan, nan, nan)
        return ChainSnapshot("X", EXP, "t", Feed.LIVE, at, at, 105.0, 1, k, legs, legs)

    first = Sample.of(chain(0, 100.0, np.full(2, 10.0), 5.0))
    with_day = chain(30, 130.0, np.full(2, 40.0), 4.0)  # OI +40 on the day, premium 5 → 4
    no_day = chain(30, 130.0, nan, 4.0)  # a provider without a day change

    def label(cur: ChainSnapshot, base: Sample | None) -> tuple[str, list[int]]:
        ch = day_change(cur, base)
        return ch.basis.label, ch.ce.buildup.tolist()

    sb = int(Buildup.SHORT_BUILDUP)
    assert label(with_day, first) == ("since prev close (premium since 09:15:00)", [sb, sb])
    assert label(with_day, None) == (
        "since prev close (premium change n/a: no earlier chain today)",
        [0, 0],
    )
    assert label(no_day, first) == (
        "since 09:15:00 (first chain today; no day change given)",
        [sb, sb],
    )
    assert not day_change(no_day, None).basis.available
    # With the previous close (6.0: premium down 2 on the day) the day is exactly the close's.
    monkeypatch.setattr(changes, "previous_close", lambda legs: np.full(2, 6.0))
    ch = day_change(with_day, first)
    assert ch.basis.label == "since prev close" and ch.basis.complete and ch.basis.since is None
    assert ch.ce.price.tolist() == [-2.0, -2.0] and ch.ce.oi.tolist() == [40.0, 40.0]
    assert day_change(no_day, first).basis.label == (
        "since 09:15:00 (OI: first chain today, no day change given; premium: prev close)"
    )
