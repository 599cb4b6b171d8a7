"""The engine runs the universe feed when Angel One is the first provider: against the loopback
SmartAPI (tests/test_angelone.py's server, replaying the recorded FULL quote item for every
token), on a fake clock, for a simulated hour of 15-s ticks. The engine built by compose starts
with the live feed; the member list comes from the instrument master (near futures and ATM
legs, no list written down) with the change against the cached list reported; the feed sweeps
beside the watched NIFTY chain; a saved scan's entry reaches the outbox as LIVE from angelone;
every quote request is counted on the server's side and SmartAPI's 10/s, 500/min and 5,000/h
hold; the watched chain's poll never waits on the shared limiter and every tick's work ends
inside its 15 s. A failover to another provider pauses the scans and says so."""

from __future__ import annotations

import copy
import json
import math
from bisect import bisect_left
from datetime import UTC, date
from typing import Any

import pytest

from optterm.config import load_settings
from optterm.config.schema import WatchItem
from optterm.engine.compose import make_engine, make_live_feed, watched_quote_calls
from optterm.engine.notify.channels import parse_channel_spec
from optterm.engine.scanner.budget import SMARTAPI_QUOTES
from optterm.engine.scanner.live import LiveScans
from optterm.engine.scanner.universe import UNIVERSE_FILENAME, Member, Universe
from optterm.market import MarketCalendar
from optterm.model import Feed
from optterm.providers.angelone.client import QUOTE_PATH
from optterm.store import open_store
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_angel_master import NOW, fixture_rows, master_rows, option_rows
from tests.test_angelone import QUOTE_ITEM, Angel, make, t  # noqa: F401 (fixtures)

STOCKS = 60
TICK_S = 15.0
TICKS = 240  # an hour
MOVER = "S007"  # 4 % up on its previous close: the saved scan's one entry
EXPIRY = "28JUL2026"


def _future_row(name: str, token: str, itype: str) -> dict[str, Any]:
    template = next(
        r
        for r in fixture_rows("smartapi_scripmaster_sample_mixed_rows_2026.json")
        if r["instrumenttype"] == "FUTSTK"
    )
    return {**template, "token": token, "symbol": f"{name}28JUL26FUT", "name": name,
            "expiry": EXPIRY, "instrumenttype": itype, "exch_seg": "NFO"}  # fmt: skip


def _item(token: str, ltp: float, close: float, oi: float) -> dict[str, Any]:
    item = copy.deepcopy(QUOTE_ITEM)
    item.update(exchange="NFO", tradingSymbol=f"T{token}", symbolToken=token, ltp=ltp,
                close=close, opnInterest=oi, tradeVolume=9_000, avgPrice=ltp)  # fmt: skip
    return item


def _universe_rows() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The master rows (NIFTY, BANKNIFTY, BHARTIARTL as tests/test_angel_master.py lists them,
    plus STOCKS stock names with five strikes each, every one with its July future) and the
    futures' quote items by token."""
    rows = master_rows()
    items: dict[str, dict[str, Any]] = {}
    for name, itype, price in (("NIFTY", "FUTIDX", 25040.0), ("BANKNIFTY", "FUTIDX", 56010.0),
                               ("BHARTIARTL", "FUTSTK", 1921.0)):  # fmt: skip
        token = f"9{len(items):04d}"
        rows.append(_future_row(name, token, itype))
        items[token] = _item(token, price, price, 1_000_000)
    for i in range(STOCKS):
        name = f"S{i:03d}"
        rows += option_rows(name, EXPIRY, [90.0, 95.0, 100.0, 105.0, 110.0], lot=500,
                            first_token=100_000 + 10 * i, instrument="OPTSTK")  # fmt: skip
        token = f"8{i:04d}"
        rows.append(_future_row(name, token, "FUTSTK"))
        ltp = 104.0 if name == MOVER else 100.1
        items[token] = _item(token, ltp, 100.0, 50_000 + i)
    return rows, items


@pytest.fixture
def angel(replay: ReplayServer) -> Angel:
    rows, items = _universe_rows()
    server = Angel(replay, rows)
    server.instruments.update(items)
    return server


def _live_settings() -> Any:
    base = load_settings(None, env={})
    return base.model_copy(
        update={
            "providers": base.providers.model_copy(update={"order": ["angelone"]}),
            "poller": base.poller.model_copy(
                update={"watch": [WatchItem(symbol="NIFTY", expiries=1, strikes=20)]}
            ),
        }
    )


def _most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max(i - bisect_left(times, at - width + 1e-9) + 1 for i, at in enumerate(times))


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_the_engine_runs_the_live_feed_within_budget_and_alerts_an_entry(
    angel: Angel,
    make,  # noqa: F811
    t,  # noqa: F811
    tmp_path,
) -> None:
    done: list[float] = []  # the fake clock at every quote request the server answers

    def counted(req: Request) -> Reply:
        done.append(t.clock())
        return Reply.json(angel.quote_body(req))

    angel.replay.route("POST", QUOTE_PATH, counted)
    provider = make()
    settings = _live_settings()
    master = provider.master
    # The universe cached yesterday had a name that has left the F&O list since.
    gone = Universe((Member("GONE", "stock", 100, 5.0, (date(2026, 7, 28),)),),
                    date(2026, 7, 17), "angelone")  # fmt: skip
    master.cache_dir.mkdir(parents=True, exist_ok=True)
    (master.cache_dir / UNIVERSE_FILENAME).write_text(json.dumps(gone.to_dict()))

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        app = parse_channel_spec("app", settings, None)
        await store.scans.add("movers", "scan fno where price_chg% > 2", NOW.astimezone(UTC),
                              channels=[app])  # fmt: skip
        engine = make_engine(settings, provider, store, now=t.now, sleep=t.sleep, master=master)
        scans = engine.scans
        assert scans is not None and scans.feed is not None  # Angel One first: the live feed
        poller = engine.poller
        await poller.resolve()
        poll_waits: list[float] = []
        for _ in range(TICKS):
            start = t.clock()
            tick = await poller.tick_once()
            poll_waits.append(t.clock() - start)
            assert not tick.failures
            await scans.on_tick(tick.finished_at)
            assert t.clock() - start < TICK_S  # the feed's sweep fits the tick
            t.advance(start + TICK_S - t.clock())

        feed = scans.feed
        assert feed.plan is not None and feed.change is not None
        names = feed.names
        assert {"NIFTY", "BANKNIFTY", "BHARTIARTL", MOVER} <= set(names)
        assert len(names) == STOCKS + 3  # every name with a listed future, none written down
        assert feed.change.removed == ("GONE",) and MOVER in feed.change.added
        assert feed.feed is not None
        quote_plan = feed.feed.plan
        assert quote_plan.watched_calls == watched_quote_calls(settings, 20, vix=False) == 2
        assert (quote_plan.futures_every, quote_plan.atm_every) == (1, 1)

        # The shared limiter never held the watched chain back for the feed: after the first
        # tick (its login) every poll takes the same 1/9 s on the fake clock, its own two
        # quote calls paced at SmartAPI's 10/s less the headroom, far inside the interval.
        assert max(poll_waits[1:]) == pytest.approx(min(poll_waits[1:]))
        assert max(poll_waits[1:]) < 0.2
        # Counted on the server: SmartAPI's published limits hold over the hour.
        limits = SMARTAPI_QUOTES
        assert _most_in_any_window(done, 1.0) <= limits.per_second
        assert _most_in_any_window(done, 60.0) <= limits.per_minute
        assert _most_in_any_window(done, 3600.0) <= limits.per_hour
        feed_calls = sum(quote_plan.calls_at(k) - quote_plan.watched_calls for k in range(TICKS))
        assert len(done) >= feed_calls + TICKS  # the feed's sweeps and a chain poll a tick
        assert all(
            len(tokens) <= limits.tokens_per_call
            for r in angel.requests(QUOTE_PATH)
            for tokens in r.json()["exchangeTokens"].values()
        )

        # Every column carries its age: quoted ones as old as their tier, statics from the
        # day's master, what SmartAPI does not give (previous OI without NSE) none.
        assert scans.ages["price"] is not None and scans.ages["price"] <= TICK_S
        assert scans.ages["straddle"] is not None and scans.ages["straddle"] <= TICK_S
        assert scans.ages["lot_size"] == 0.0 and scans.ages["prev_oi"] is None

        # The saved scan's entry went through the outbox as live data, once.
        entered = [e for e in await store.scans.events("movers") if e.kind == "enter"]
        assert [e.symbol for e in entered] == [MOVER]
        views = await store.alerts.list_events()
        assert len(views) == 1
        (event,) = (v.event for v in views)
        assert (event.symbol, event.feed, event.provider) == (MOVER, Feed.LIVE, "angelone")
        assert views[0].deliveries[0].channel == "app"
        assert await store.scans.runs("movers")
    finally:
        await store.close()


class _Failover:
    """The failover's face as compose sees it: its members and the one that answered last."""

    name = "failover"

    def __init__(self, *members: Any) -> None:
        self._members = members
        self.active: str | None = None

    def members(self) -> tuple[Any, ...]:
        return self._members


async def test_a_failover_pauses_the_live_scans_and_says_the_source_changed(
    angel: Angel,
    make,  # noqa: F811
    t,  # noqa: F811
    tmp_path,
) -> None:
    provider = make()

    class Nse:
        name = "nse"

    failover = _Failover(provider, Nse())
    settings = _live_settings()
    feed = make_live_feed(settings, failover, now=t.now, sleep=t.sleep)  # type: ignore[arg-type]
    assert feed is not None
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        await store.scans.add("movers", "scan fno where price_chg% > 2", NOW.astimezone(UTC))
        scans = LiveScans(store, MarketCalendar(), seed=1, feed=feed)
        failover.active = "nse"  # the chains failed over: the feed's quotes are not NSE's
        assert await scans.on_tick(t.now()) == 0
        assert "scanner source changed: the chains come from nse" in scans.status
        assert feed.plan is None and angel.requests(QUOTE_PATH) == []  # nothing swept
        failover.active = "angelone"  # back: the scans resume, the status clears
        await scans.on_tick(t.now())
        assert scans.status == "" and feed.plan is not None
        assert angel.requests(QUOTE_PATH)
    finally:
        await store.close()


def test_no_live_feed_without_angel_one_in_the_order() -> None:
    class Nse:
        name = "nse"

    assert make_live_feed(_live_settings(), _Failover(Nse())) is None  # type: ignore[arg-type]


async def test_nse_oi_spurts_give_the_previous_oi_at_nse_pace(
    angel: Angel,
    make,  # noqa: F811
    t,  # noqa: F811
) -> None:
    """With NSE in the order the feed asks its OI-spurts page for the previous OI, once per
    `spurts_every_s` (NSE's OI refreshes about every 3 minutes; the site takes ~1 request a
    second): the near future's previous OI is its OI scaled by NSE's OI change of the
    underlying, so `fut_oi_chg%` is NSE's figure; a name NSE does not list stays n/a, and a
    failing page leaves the column n/a with why, the quotes going on."""
    from optterm.engine.scanner.fields import FIELD_INDEX, derive

    asked: list[float] = []
    fail = False

    class Nse:
        name = "nse"

        async def oi_spurts(self) -> dict[str, tuple[float, float]]:
            asked.append(t.clock())
            if fail:
                raise RuntimeError("HTTP 503")
            return {MOVER: (60_000.0, 50_000.0), "NIFTY": (1_100_000.0, 1_000_000.0)}

    provider = make()
    feed = make_live_feed(_live_settings(), _Failover(provider, Nse()), now=t.now, sleep=t.sleep)  # type: ignore[arg-type]
    assert feed is not None and feed.spurts is not None
    await feed.start(t.now().date())
    names = feed.names
    for _ in range(13):  # 13 ticks of 15 s: the page is asked at 0 s and 180 s only
        start = t.clock()
        cols = await feed.step(t.now())
        t.advance(start + TICK_S - t.clock())
    assert len(asked) == 2 and asked[1] - asked[0] >= 180.0
    values, unavailable = derive(cols, len(names))
    chg = values[FIELD_INDEX["fut_oi_chg%"]]
    assert chg[names.index(MOVER)] == pytest.approx(20.0)
    assert chg[names.index("NIFTY")] == pytest.approx(10.0)
    assert math.isnan(chg[names.index("S001")])  # not on NSE's page: n/a, not zero
    assert "fut_oi_chg%" not in unavailable
    ages = feed.ages(t.now())
    assert ages["prev_oi"] is not None and ages["prev_oi"] < 180.0
    fail = True
    t.advance(180.0)
    await feed.step(t.now())
    assert feed.spurts_error == "NSE OI spurts unavailable: HTTP 503"


async def test_a_failing_sweep_is_said_once_and_the_scans_go_on_after_it(
    angel: Angel,
    make,  # noqa: F811
    t,  # noqa: F811
    tmp_path,
    caplog,
) -> None:
    from tests.test_angelone import rate_limited

    provider = make()
    feed = make_live_feed(_live_settings(), provider, now=t.now, sleep=t.sleep)
    assert feed is not None
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        await store.scans.add("movers", "scan fno where price_chg% > 2", NOW.astimezone(UTC))
        scans = LiveScans(store, MarketCalendar(), seed=1, feed=feed)
        angel.queue(QUOTE_PATH, *[rate_limited()] * 40)
        for _ in range(2):
            assert await scans.on_tick(t.now()) == 0
            t.advance(TICK_S)
        assert scans.status.startswith("scanner live feed from angelone failed:")
        said = [r for r in caplog.records if "scanner live feed from angelone failed" in r.message]
        assert len(said) == 1  # once, not every tick
        for _ in range(40):  # once the queued 403s are spent the server answers again
            await scans.on_tick(t.now())
            t.advance(TICK_S)
            if not scans.status:
                break
        assert scans.status == ""
        assert scans.ages["price"] is not None
    finally:
        await store.close()


def test_the_watched_chains_calls_counted_for_the_plan() -> None:
    settings = _live_settings()  # NIFTY, one expiry, ±20 strikes
    assert watched_quote_calls(settings, 20, vix=False) == 2  # 82 legs and the future: 83 tokens
    assert watched_quote_calls(settings, 20) == 3  # India VIX's quote, once a tick
    assert watched_quote_calls(settings, 12, vix=False) == 2  # 50 legs and the future: 51
    assert watched_quote_calls(settings, 11, vix=False) == 1  # 46 legs and the future: 47


@pytest.mark.timeout(300)
async def test_the_running_engine_sends_a_live_entry_through_the_dispatcher(
    angel: Angel,
    make,  # noqa: F811
    t,  # noqa: F811
    tmp_path,
) -> None:
    """Engine.run as the runner runs it (poller, dispatcher and live scans side by side): the
    feed sweeps after the engine's ticks and the entry is delivered to the in-app channel."""
    import asyncio

    from optterm.model import AlertKind

    provider = make()
    settings = _live_settings()
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        app = parse_channel_spec("app", settings, None)
        await store.scans.add("movers", "scan fno where price_chg% > 2", NOW.astimezone(UTC),
                              channels=[app])  # fmt: skip
        delivered = asyncio.Event()
        got: list[Any] = []

        def sink(item: Any) -> None:
            got.append(item)
            delivered.set()

        engine = make_engine(settings, provider, store, app_sink=sink, now=t.now, sleep=t.sleep,
                             master=provider.master)  # fmt: skip
        scans = engine.scans
        assert scans is not None and scans.feed is not None
        step = scans.on_tick

        async def then_tick_again(now: Any) -> int:
            queued = await step(now)
            t.advance(TICK_S)  # the fake clock moves a tick; the next tick comes at once
            engine.poller.wake()
            return queued

        scans.on_tick = then_tick_again  # type: ignore[method-assign]
        await engine.poller.resolve()
        stop = asyncio.Event()
        job = asyncio.create_task(engine.run(stop))
        try:
            await asyncio.wait_for(delivered.wait(), 120)
        finally:
            stop.set()
            await asyncio.wait_for(job, 60)
        (item,) = got
        assert (item.kind, item.symbol, item.channel) == (AlertKind.SCAN_ENTER, MOVER, "app")
        assert item.title == f"{MOVER} entered scan movers"
        assert "LIVE via angelone" in item.body and "SIMULATED" not in item.body
    finally:
        await store.close()
