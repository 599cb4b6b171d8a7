"""A strike's series lists snapshots in time order, and two stored at the same provider time
(two providers) in the order they were stored."""

from __future__ import annotations

from dataclasses import replace

from optterm.store import Store
from tests.test_store import DAY, EXP1, T0, make_chain


async def test_same_time_snapshots_come_in_the_order_they_were_stored(store: Store) -> None:
    later = make_chain(ts=T0 + DAY / 48, seed=3)
    first = replace(make_chain(seed=1), provider="zzz")  # stored first, sorts last by name
    second = replace(make_chain(seed=2), provider="aaa")
    for snap in (later, first, second):
        assert await store.snapshots.write(snap)
    strike = float(first.strikes[5])
    series = await store.snapshots.strike_series("NIFTY", EXP1, strike, T0, T0 + DAY)
    want = [s.ce.oi[5] for s in (first, second, later)]
    assert series["ce_oi"].tolist() == want
