"""The simulator's universe: vectorised, seeded, every raw scanner field, quiet bands, flows."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from optterm.engine.scanner.fields import FIELD_INDEX, RAW_FIELDS, derive
from optterm.market import NSE_INDICES
from optterm.providers.simulator.universe import FLOW_NAMES_EACH, FLOWS, UniverseSim

DAY = date(2026, 12, 3)


def test_gives_every_raw_field_as_one_array_across_the_universe():
    sim = UniverseSim(seed=3, size=250, day=DAY)
    cols = sim.advance()
    assert set(cols) == set(RAW_FIELDS)
    assert all(isinstance(v, np.ndarray) and v.shape == (250,) for v in cols.values())
    assert len(set(sim.names)) == 250
    assert sim.names[: len(NSE_INDICES)] == tuple(NSE_INDICES)
    values, reasons = derive(cols, 250)
    assert reasons == {}
    assert np.isfinite(values).all()


def test_a_step_depends_only_on_seed_day_and_step():
    a = UniverseSim(seed=9, day=DAY)
    b = UniverseSim(seed=9, day=DAY)
    at_300 = {k: v.copy() for k, v in a.seek(300).items()}
    a.seek(600)
    again = a.seek(300)  # backwards: replayed from the open
    for k in at_300:
        np.testing.assert_array_equal(again[k], at_300[k])
    for _ in range(300):
        b.advance()
    np.testing.assert_array_equal(b.columns()["price"], at_300["price"])
    other = UniverseSim(seed=10, day=DAY).seek(300)
    assert not np.array_equal(other["price"], at_300["price"])


def test_flows_play_on_a_few_stocks_and_the_quiet_universe_has_none():
    sim = UniverseSim(seed=5, day=DAY)
    assert tuple(sim.spec.flows) == FLOWS
    names = [n for f in FLOWS for n in sim.spec.flows[f]]
    assert len(set(names)) == len(FLOWS) * FLOW_NAMES_EACH
    assert not set(names) & set(NSE_INDICES)
    assert UniverseSim(seed=5, day=DAY, flows=False).spec.flows == {}


@pytest.mark.parametrize("seed", [1, 42])
def test_the_quiet_market_stays_inside_its_bands_all_session(seed: int):
    sim = UniverseSim(seed=seed, day=DAY, flows=False, step_seconds=60.0)
    worst = {"price_chg%": 0.0, "fut_oi_chg%": 0.0, "atm_iv_chg%": 0.0, "rvol": 0.0}
    pcr = []
    for _ in range(sim.steps):
        values, _ = derive(sim.advance(), len(sim.names))
        for f in worst:
            worst[f] = max(worst[f], float(np.nanmax(np.abs(values[FIELD_INDEX[f]]))))
        pcr.append(values[FIELD_INDEX["pcr"]])
    assert worst["price_chg%"] < 1.0
    assert worst["fut_oi_chg%"] < 5.0
    assert worst["atm_iv_chg%"] < 10.0
    assert worst["rvol"] < 3.0
    assert np.min(pcr) > 0.5 and np.max(pcr) < 1.8
