"""A small stored history with a known spot and PCR path, for the signal backtests: NIFTY's
nearest chain one snapshot a minute from 09:15 IST, written straight into a real SQLite store.
The chain itself is the seeded simulator's first one (so every analytic has a real chain to
read); its spot and put OI are set from the path (put OI = call OI × PCR, strike by strike,
so the chain's PCR is the path's exactly)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from optterm.model import ChainSnapshot, Feed
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import Store

DAY = date(2026, 11, 20)  # a Friday
OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST
STEP = timedelta(minutes=1)


def template() -> ChainSnapshot:
    sim = SimulatorProvider(seed=3, scenario="quiet", step_seconds=60, start=OPEN)
    expiry = sim._listed("NIFTY", 0)[0]
    return sim.chain_at_step("NIFTY", expiry, 0).window(20)


def chains(
    spots: Sequence[float],
    pcrs: Sequence[float],
    *,
    start: datetime = OPEN,
    provider: str = "nse",
    feed: Feed = Feed.LIVE,
) -> list[ChainSnapshot]:
    """One snapshot a minute from `start`, the i-th with spots[i] and pcrs[i]."""
    base = template()
    out = []
    for i, (spot, pcr) in enumerate(zip(spots, pcrs, strict=True)):
        at = start + i * STEP
        pe = dataclasses.replace(base.pe, oi=base.ce.oi * pcr)
        out.append(
            dataclasses.replace(
                base,
                provider=provider,
                feed=feed,
                provider_ts=at,
                fetched_at=at + timedelta(seconds=1),
                spot=spot,
                pe=pe,
            )
        )
    return out


async def store_path(store: Store, snaps: Sequence[ChainSnapshot]) -> None:
    await store.snapshots.write_many(list(snaps))
