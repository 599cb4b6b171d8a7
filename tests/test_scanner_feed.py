"""The universe feed over SmartAPI quotes on the loopback server: a simulated hour of 15-s
ticks for 216 underlyings beside the watched chains' own quote calls, counted request by request
on the server's side of the wire: never more than SmartAPI's 10 a second, 500 a minute or 5,000
an hour, every tick's calls done inside the tick (the watched chains never wait), the futures
and ATM columns as fresh as the plan says, and what a quote cannot give n/a with why."""

from __future__ import annotations

import copy
import json
from bisect import bisect_left

import pytest

from optterm.engine.scanner.budget import SMARTAPI_QUOTES, plan_quotes
from optterm.engine.scanner.feed import FeedMember, UniverseFeed
from optterm.engine.scanner.fields import derive
from optterm.providers.angelone.client import QUOTE_PATH
from tests.replay_server import Reply, Request
from tests.test_angelone import QUOTE_ITEM, angel, make, t  # noqa: F401 (fixtures)

# ~4,000 loopback requests: four minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

NAMES = 216
TICK_S = 15.0
TICKS = 240  # an hour


def _item(token: str, ltp: float, close: float, **more: float) -> dict:
    item = copy.deepcopy(QUOTE_ITEM)
    item.update(exchange="NFO", tradingSymbol=f"T{token}", symbolToken=token, ltp=ltp,
                close=close, **more)  # fmt: skip
    return item


def _most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max(i - bisect_left(times, at - width + 1e-9) + 1 for i, at in enumerate(times))


async def test_an_hour_of_the_universe_feed_keeps_within_smartapi_limits(angel, make, t):  # noqa: F811
    members = []
    for i in range(NAMES):
        m = FeedMember(f"S{i:03d}", "NFO", f"7{i:05d}", 10.0)
        members.append(m)
        angel.instruments[m.future_token] = _item(
            m.future_token, 1000.0 + i, 990.0 + i, open=995.0, high=1010.0 + i, low=985.0,
            avgPrice=1001.0, opnInterest=50_000 + i, tradeVolume=9_000,
        )  # fmt: skip
        for side, ltp in (("CE", 21.0), ("PE", 19.0)):
            angel.instruments[f"{m.name}{side}"] = _item(f"{m.name}{side}", ltp, ltp - 2.0)
    watched = [f"W{j:03d}" for j in range(100)]  # the watched chains' 100 option tokens
    for token in watched:
        angel.instruments[token] = _item(token, 50.0, 48.0)

    # The recorded FULL item per token, serialized once: 3,840 answers in the hour stay cheap
    # on a loaded machine (the harness's own route rebuilds each item on every request).
    wire = {token: json.dumps(item) for token, item in angel.instruments.items()}
    head = '{"status":true,"message":"SUCCESS","errorcode":"","data":{"fetched":['

    def answer(req: Request) -> Reply:
        asked = [tok for toks in req.json()["exchangeTokens"].values() for tok in toks]
        body = head + ",".join(wire[tok] for tok in asked) + '],"unfetched":[]}}'
        return Reply(200, body.encode(), {"Content-Type": "application/json"})

    angel.replay.route("POST", QUOTE_PATH, answer)
    provider = make()
    done: list[float] = []  # the fake clock at each quote request

    async def quotes(by_exchange):
        got = await provider.quotes(by_exchange)
        done.append(t.clock())  # the request is made after the limiter's wait, at this time
        return got

    plan = plan_quotes(NAMES, tick_s=TICK_S, watched_calls=2)
    assert (plan.futures_every, plan.atm_every) == (1, 1)  # 216 names fit every tick
    feed = UniverseFeed(members, plan, quotes, now=t.now, sleep=t.sleep,
                        atm_tokens=lambda name, strike: (f"{name}CE", f"{name}PE"))  # fmt: skip
    for _ in range(TICKS):
        start = t.clock()
        for part in (watched[:50], watched[50:]):  # the watched chains' calls come first
            await quotes({"NFO": part})
        await feed.tick()
        assert t.clock() - start < TICK_S  # the tick's calls fit the tick: nothing starves
        ages = feed.ages(t.now())
        assert ages["price"] is not None and ages["price"] <= plan.futures_age_s
        assert ages["straddle"] is not None and ages["straddle"] <= plan.atm_age_s
        t.advance(start + TICK_S - t.clock())

    served = angel.requests(QUOTE_PATH)
    assert len(served) == len(done) == sum(plan.calls_at(k) for k in range(TICKS))
    limits = SMARTAPI_QUOTES
    assert _most_in_any_window(done, 1.0) <= limits.per_second
    assert _most_in_any_window(done, 60.0) <= limits.per_minute
    assert _most_in_any_window(done, 3600.0) <= limits.per_hour
    assert all(len(r.json()["exchangeTokens"]["NFO"]) <= limits.tokens_per_call for r in served)

    cols = feed.columns()
    assert cols["price"][5] == 1005.0 and cols["fut_oi"][5] == 50_005
    assert cols["atm_strike"][5] == 1010.0 and cols["straddle"][5] == 40.0
    _, unavailable = derive(cols, NAMES)
    assert unavailable["prev_oi"] == "not given by the source"  # a quote has no previous OI
    assert unavailable["fut_oi_chg%"] == "needs a field the source does not give"
    assert "price_chg%" not in unavailable
