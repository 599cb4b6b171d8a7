"""The simulator quotes the chains a poller steps along with in one pass (`legs_together`), and a
chain's window is views of its frozen columns: neither may change a single bit of what a
provider returns."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from optterm.market import IST
from optterm.model import LEG_FIELDS, ChainSnapshot, Legs
from optterm.providers.simulator import provider as provider_module
from optterm.providers.simulator.provider import SimulatorProvider

START = datetime(2026, 11, 18, 9, 15, tzinfo=IST)
SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY")


def _sim(scenario: str) -> SimulatorProvider:
    return SimulatorProvider(
        seed=11, scenario=scenario, step_seconds=15.0, start=START, clock=lambda: 0.0
    )


def _same(a: ChainSnapshot, b: ChainSnapshot) -> None:
    assert a.strikes.tobytes() == b.strikes.tobytes()
    assert a.spot == b.spot
    for side in ("ce", "pe"):
        for name in LEG_FIELDS:
            x, y = getattr(getattr(a, side), name), getattr(getattr(b, side), name)
            assert x.tobytes() == y.tobytes(), (a.symbol, a.expiry, side, name)


@pytest.mark.parametrize("scenario", ["quiet", "call_writing", "gamma_squeeze"])
def test_chains_quoted_together_are_the_chains_quoted_alone(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched: list[int] = []
    real = provider_module.legs_together

    def counting(states: list, k: int) -> None:  # type: ignore[type-arg]
        batched.append(len(states))
        real(states, k)

    monkeypatch.setattr(provider_module, "legs_together", counting)
    together = _sim(scenario)
    chains = [(s, e) for s in SYMBOLS for e in together.calendar.expiries(s, START.date(), 3)]
    # One provider per chain: a chain alone is never quoted with another.
    alone = {c: _sim(scenario) for c in chains}
    for step in range(0, 60, 3):  # a poller that skips steps now and then, as at speed
        got = [together.chain_at_step(s, e, step) for s, e in chains]
        for (s, e), snap in zip(chains, got, strict=True):
            _same(snap, alone[(s, e)].chain_at_step(s, e, step))
    assert batched and max(batched) == len(chains)  # the batched pass did run, for them all


def test_a_chain_asked_for_at_an_earlier_step_is_quoted_alone_and_the_same() -> None:
    sim = _sim("quiet")
    chains = [(s, sim.calendar.expiries(s, START.date(), 1)[0]) for s in SYMBOLS]
    for step in range(5):
        for s, e in chains:
            sim.chain_at_step(s, e, step)
    s, e = chains[1]
    _same(sim.chain_at_step(s, e, 2), _sim("quiet").chain_at_step(s, e, 2))


def test_a_window_is_frozen_views_equal_to_a_copy() -> None:
    snap = _sim("quiet").chain_at_step(
        "NIFTY", _sim("quiet").calendar.expiries("NIFTY", START.date(), 1)[0], 4
    )
    cut = snap.window(10)
    atm = snap.atm_index()
    sl = slice(atm - 10, atm + 11)
    assert cut.strikes.tobytes() == snap.strikes[sl].tobytes()
    for name in LEG_FIELDS:
        col = getattr(cut.ce, name)
        assert col.tobytes() == getattr(snap.ce, name)[sl].tobytes()
        with pytest.raises(ValueError, match="WRITEABLE"):
            col.flags.writeable = True
    assert cut.meta["chain_strikes"] == str(len(snap))
    assert "chain_strikes" not in snap.meta  # the window's meta is its own


def test_legs_of_block_takes_only_a_frozen_float_block() -> None:
    block = np.arange(len(LEG_FIELDS) * 3, dtype=np.float64).reshape(len(LEG_FIELDS), 3).copy()
    with pytest.raises(ValueError, match="frozen"):
        Legs.of_block(block)
    view = block.view()
    view.flags.writeable = False  # frozen, but the array it shows is not: refused
    with pytest.raises(ValueError, match="frozen"):
        Legs.of_block(view)
    with pytest.raises(ValueError, match="float64"):
        Legs.of_block(block[:2])
    block.flags.writeable = False
    legs = Legs.of_block(block)
    assert legs.ltp.tolist() == block[LEG_FIELDS.index("ltp")].tolist()
    with pytest.raises(ValueError, match="WRITEABLE"):
        legs.oi.flags.writeable = True
