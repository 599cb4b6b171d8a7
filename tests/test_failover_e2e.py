"""Failover end to end: real providers against real HTTP servers on 127.0.0.1, the real poller,
and the simulator as the next provider.

Each scenario: the primary serves tick 1; then it fails in one way; that same tick and every tick
after still get their chain from the next provider; the primary's breaker opens (and the primary
is then left alone); after the cool-down one probe goes to the primary, which takes the feed back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from optterm.config import FailoverSettings
from optterm.engine.poller import Poller, Watch
from optterm.market import IST
from optterm.providers.breaker import BreakerState
from optterm.providers.failover import FailoverProvider
from optterm.providers.nse.client import NseProvider
from optterm.providers.simulator.provider import SimulatorProvider
from tests.conftest import FIXTURES
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_angel_master import NOW as ANGEL_NOW
from tests.test_angelone import LTP_PATH, Angel, angel, make, rate_limited, t  # noqa: F401
from tests.test_nse import GQ, PRIME, FakeTime, getquote, needs_cookie, prime_page
from tests.test_nse_parse import AKAMAI


def simulator_on(day: datetime) -> SimulatorProvider:
    # Started on the primary's trading day, so it lists the same NIFTY expiries.
    start = day.astimezone(IST).replace(hour=9, minute=15, second=0, microsecond=0)
    return SimulatorProvider(seed=5, start=start, clock=lambda: 0.0)


# A provider that answers gets all the time a loaded machine may need: the scenario's clock is
# fake, and a real deadline on an answer would race the machine, not test the failover.
ANSWERS_WITHIN_S = 10.0
# A provider that never answers (a hanging server) times out after this long instead: nothing
# can answer in time, so however loaded the machine the outcome is the same, only sooner.
HANGS_FOR_S = 0.05


async def run_scenario(
    primary,
    fallback,
    clock,
    advance: Callable[[float], None],
    break_it,
    heal,
    hits,
    *,
    hangs: bool = False,
) -> None:
    failover = FailoverProvider(
        [primary, fallback],
        policy=FailoverSettings(threshold=3, cooldown=30, rate_limit_cooldown=120),
        timeouts={primary.name: ANSWERS_WITHIN_S, fallback.name: ANSWERS_WITHIN_S},
        clock=clock,
    )
    poller = Poller(failover, None, [Watch("NIFTY", 1, 10)], interval=15, timeout=20, clock=clock)
    try:
        tick = await poller.tick_once()
        assert [u.snapshot.provider for u in tick.updates] == [primary.name]

        break_it()
        if hangs:
            failover.timeouts[primary.name] = HANGS_FOR_S
        for _ in range(3):
            tick = await poller.tick_once()
            assert not tick.failures  # no tick lost while switching
            assert [u.snapshot.provider for u in tick.updates] == ["simulator"]
            assert tick.updates[0].snapshot.feed.value == "SIMULATED"
        breaker = failover.breakers[primary.name]
        assert breaker.state is BreakerState.OPEN

        before = hits()
        tick = await poller.tick_once()
        assert [u.snapshot.provider for u in tick.updates] == ["simulator"]
        assert hits() == before  # an open breaker sends nothing to the primary

        heal()
        failover.timeouts[primary.name] = ANSWERS_WITHIN_S
        advance(breaker.seconds_until_probe() + 1)
        tick = await poller.tick_once()
        assert [u.snapshot.provider for u in tick.updates] == [primary.name]
        assert breaker.state is BreakerState.CLOSED and failover.active == primary.name
        health = {h.provider: h for h in tick.health}
        assert health[primary.name].failed >= 1 and health["simulator"].successes >= 4
    finally:
        await failover.close()


def nse_failure(mode: str) -> Callable[[Request], Reply]:
    if mode == "500":
        return lambda req: Reply.json({"error": "internal"}, status=500)
    if mode == "timeout":
        return lambda req: Reply(hang=True)
    if mode == "html":
        return lambda req: Reply.file(FIXTURES / AKAMAI, status=404)
    if mode == "empty":
        return lambda req: Reply.json({})
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["500", "timeout", "html", "empty"])
async def test_nse_primary_fails_over_to_the_next_and_comes_back(
    replay: ReplayServer, mode: str
) -> None:
    fake = FakeTime()
    state = {"failing": False}

    def api(req: Request) -> Reply:
        return nse_failure(mode)(req) if state["failing"] else getquote(req)

    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, needs_cookie(api))
    nse = NseProvider(
        base_url=replay.url,
        timeout=5.0,
        cache_ttl=0.0,
        clock=fake.clock,
        sleep=fake.sleep,
        now=fake.now,
    )
    api_paths = {"/api/NextApi/apiClient/GetQuoteApi", "/api/option-chain-v3",
                 "/api/option-chain-contract-info", "/api/option-chain-indices"}  # fmt: skip
    await run_scenario(
        nse,
        simulator_on(fake.now()),
        fake.clock,
        fake.advance,
        break_it=lambda: state.update(failing=True),
        heal=lambda: state.update(failing=False),
        hits=lambda: sum(1 for r in replay.requests if r.path in api_paths),
        hangs=mode == "timeout",
    )


async def test_angel_plain_text_403_rate_limit_fails_over_without_relogin(
    make,  # noqa: F811
    angel: Angel,  # noqa: F811
    t,  # noqa: F811
) -> None:
    primary = make()

    def break_it() -> None:
        angel.queue(LTP_PATH, *[rate_limited() for _ in range(10)])

    def heal() -> None:
        angel._queued.pop(LTP_PATH, None)

    await run_scenario(
        primary,
        simulator_on(ANGEL_NOW),
        t.clock,
        t.advance,
        break_it=break_it,
        heal=heal,
        hits=lambda: len(angel.rest()),
    )
    assert angel.logins == 1  # the first login only: a rate limit never triggers another
    assert timedelta(0) <= t.now() - ANGEL_NOW < timedelta(hours=1)
