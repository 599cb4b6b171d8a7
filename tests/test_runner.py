"""The engine's lifecycle (engine/runner.py), in-process: several runners on one SQLite store.

The real simulator at a 0.2 s interval; every wait is on what a runner reports to its Listener.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from optterm.config import Settings, load_settings
from optterm.engine.engine import Engine
from optterm.engine.events import Tick
from optterm.engine.follower import Follower
from optterm.engine.runner import Listener, Runner, paced_by_market
from optterm.store import Store
from optterm.store.lease import LeaseHeld


class Recorder(Listener):
    """Writes down what the runner says, in order, and lets the test wait for it."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.ticks: list[Tick] = []
        self.follower: Follower | None = None
        self.engine: Engine | None = None
        self.lost: str | None = None
        self._changed = asyncio.Event()

    def _note(self, what: str) -> None:
        self.events.append(what)
        self._changed.set()

    def store_opened(self, store: Store | None) -> None:
        self._note("store" if store is not None else "no store")

    def following(self, follower: Follower) -> None:
        self.follower = follower
        self._note("following")

    def polling(self, engine: Engine) -> None:
        self.engine = engine
        self._note("polling")

    def standing_by(self) -> None:
        self._note("standing by")

    def tick(self, tick: Tick) -> None:
        self.ticks.append(tick)
        self._note("tick")

    def daemon_gone(self) -> None:
        self._note("daemon gone")

    def lease_lost(self, message: str) -> None:
        self.lost = message
        self._note("lease lost")

    async def until(self, condition: Callable[[], object]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()


def settings_for(tmp_path: Path) -> Settings:
    cfg = tmp_path / "optterm.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "o.db"}"\n'
        '[poller]\ninterval = 0.2\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\n'
        "strikes = 5\n"
    )
    return load_settings(cfg, env={})


def lease_row(tmp_path: Path) -> sqlite3.Row:
    with sqlite3.connect(tmp_path / "o.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM leases WHERE name = 'poller'").fetchone()


async def test_auto_follows_the_poller_hears_it_go_and_polls_here_when_asked(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    leader, attached = Recorder(), Recorder()
    stop_leader, stop_attached = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(Runner(settings, role="poll", listener=leader).run(stop_leader))
    await leader.until(lambda: leader.ticks)
    assert leader.events[:3] == ["store", "polling", "tick"]

    runner = Runner(settings, role="auto", listener=attached)
    following = asyncio.create_task(runner.run(stop_attached))
    await attached.until(lambda: attached.ticks)
    assert attached.events[:3] == ["store", "following", "tick"]
    assert attached.follower is not None and attached.follower.lease_live
    assert attached.follower.lease is not None and attached.follower.lease.pid == os.getpid()
    assert attached.ticks[0].updates[0].snapshot.symbol == "NIFTY"  # the leader's, read back
    assert attached.ticks[0].next_in is None  # read from the store, not polled

    stop_leader.set()
    assert await leading is None
    await attached.until(lambda: "daemon gone" in attached.events)
    assert "polling" not in attached.events  # it waits to be asked

    runner.poll_here()
    await attached.until(lambda: "polling" in attached.events and attached.ticks[-1].next_in)
    assert attached.ticks[-1].next_in == 0.2  # polled here, at the configured pace
    assert lease_row(tmp_path)["lease_no"] == 2 and lease_row(tmp_path)["released_at"] is None
    stop_attached.set()
    assert await following is None
    assert attached.events[-1] == "no store"
    assert lease_row(tmp_path)["released_at"] is not None


async def test_asked_to_poll_while_another_holds_the_lease_auto_follows_it(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    leader, eager = Recorder(), Recorder()
    stop_leader, stop_eager = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(Runner(settings, role="poll", listener=leader).run(stop_leader))
    await leader.until(lambda: leader.ticks)

    runner = Runner(settings, role="auto", listener=eager)
    runner.poll_here()  # before it runs: no look for a daemon, straight to the lease
    running = asyncio.create_task(runner.run(stop_eager))
    await eager.until(lambda: eager.ticks)
    assert eager.events[:3] == ["store", "following", "tick"]  # the lease was held: follow
    assert "polling" not in eager.events
    stop_eager.set()
    stop_leader.set()
    assert await running is None and await leading is None
    assert lease_row(tmp_path)["lease_no"] == 1  # never taken by the follower


async def test_poll_refuses_a_held_lease_and_a_standby_takes_over_when_it_is_let_go(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    leader, spare = Recorder(), Recorder()
    stop_leader, stop_spare = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(Runner(settings, role="poll", listener=leader).run(stop_leader))
    await leader.until(lambda: leader.ticks)

    refused = Recorder()
    with pytest.raises(LeaseHeld, match="Another optterm serve is already polling"):
        await Runner(settings, role="poll", listener=refused).run(asyncio.Event())
    assert refused.events == ["store", "no store"]  # opened, closed, never polled

    standing = asyncio.create_task(Runner(settings, role="standby", listener=spare).run(stop_spare))
    await spare.until(lambda: "standing by" in spare.events)
    stop_leader.set()
    assert await leading is None
    await spare.until(lambda: spare.ticks)
    assert spare.events[:4] == ["store", "standing by", "polling", "tick"]
    assert lease_row(tmp_path)["lease_no"] == 2
    stop_spare.set()
    assert await standing is None


async def test_a_lost_lease_stops_polling_and_says_why(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    leader = Recorder()
    leading = asyncio.create_task(
        Runner(settings, role="poll", listener=leader).run(asyncio.Event())
    )
    await leader.until(lambda: leader.ticks)

    def take_over() -> None:  # what a new holder's acquisition does to the row
        with sqlite3.connect(tmp_path / "o.db") as db:
            db.execute("UPDATE leases SET lease_no = lease_no + 1 WHERE name = 'poller'")

    await asyncio.to_thread(take_over)
    lost = await leading  # the next heartbeat (every 2 s) finds the row moved on
    assert lost == "the store's poller lease row moved on"
    assert leader.lost is not None and "lost the poller lease #1" in leader.lost
    assert leader.events[-2:] == ["lease lost", "no store"]


async def test_without_a_store_it_just_polls(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    rec = Recorder()
    stop = asyncio.Event()
    running = asyncio.create_task(
        Runner(settings, role="auto", listener=rec, history=False).run(stop)
    )
    await rec.until(lambda: len(rec.ticks) >= 2)
    assert rec.events[:2] == ["no store", "polling"]
    assert all(not u.stored for t in rec.ticks for u in t.updates)
    stop.set()
    assert await running is None
    assert not (tmp_path / "o.db").exists()


def test_the_market_paces_live_providers_but_not_the_simulator_alone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert not paced_by_market(settings)
    live = settings.model_copy(
        update={"providers": settings.providers.model_copy(update={"order": ["nse"]})}
    )
    assert paced_by_market(live)
    assert Runner(live, role="poll").cadence and not Runner(settings, role="poll").cadence
    assert Runner(settings, role="poll", cadence=True).cadence
