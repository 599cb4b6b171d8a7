"""`store.strategies`: named strategies kept with their entry prices, when and where those were
taken; a taken or unknown name, or a damaged row, is one clear error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update

from optterm.store.errors import CorruptDatabaseError
from optterm.store.schema import strategies
from optterm.store.strategies import DuplicateStrategy, SavedLeg, UnknownStrategy

T0 = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
EXP = date(2026, 12, 8)
STRANGLE = (SavedLeg("PE", EXP, 24500.0, -2, 61.25), SavedLeg("CE", EXP, 25500.0, -2, 48.5))


async def test_a_strategy_is_saved_listed_read_back_and_removed(store):
    s = await store.strategies.save(
        "my_strangle", "NIFTY", STRANGLE, priced_at=T0, source="simulator · SIMULATED",
        line="NIFTY short strangle 24500/25500 x2", at=T0,
    )  # fmt: skip
    assert (s.name, s.symbol, s.legs, s.priced_at, s.source) == (
        "my_strangle", "NIFTY", STRANGLE, T0, "simulator · SIMULATED"
    )  # fmt: skip
    fut = (SavedLeg("FUT", EXP, 0.0, 1, 25010.0),)
    await store.strategies.save("a_fut", "NIFTY", fut, priced_at=T0, source="nse · live", at=T0)
    assert await store.strategies.names() == ["a_fut", "my_strangle"]
    assert [x.legs for x in await store.strategies.list()] == [fut, STRANGLE]
    assert (await store.strategies.get("my_strangle")).to_dict()["legs"][0] == {
        "kind": "PE", "expiry": "2026-12-08", "strike": 24500.0, "lots": -2, "price": 61.25
    }  # fmt: skip
    assert await store.strategies.remove("my_strangle") == 0
    with pytest.raises(UnknownStrategy, match="no saved strategy 'my_strangle'; `optterm"):
        await store.strategies.get("my_strangle")
    with pytest.raises(UnknownStrategy):
        await store.strategies.remove("my_strangle")


async def test_a_taken_or_unusable_name_or_bad_legs_are_refused_and_nothing_is_stored(store):
    await store.strategies.save("x", "NIFTY", STRANGLE, priced_at=T0, source="s", at=T0)
    with pytest.raises(DuplicateStrategy, match="already saved"):
        await store.strategies.save("x", "NIFTY", STRANGLE[:1], priced_at=T0, source="s", at=T0)
    for bad in ("", "1x", "-x", "a b", "a.b", "x" * 65, "ü"):
        with pytest.raises(ValueError, match="is not usable"):
            await store.strategies.save(bad, "NIFTY", STRANGLE, priced_at=T0, source="s", at=T0)
    for legs in ((), (SavedLeg("CE", EXP, 25000.0, 0, 1.0),), (SavedLeg("XX", EXP, 1.0, 1, 1.0),)):
        with pytest.raises(ValueError, match="leg"):
            await store.strategies.save("y", "NIFTY", legs, priced_at=T0, source="s", at=T0)
    assert await store.strategies.names() == ["x"]
    assert (await store.strategies.get("x")).legs == STRANGLE


@pytest.mark.parametrize("legs", ["not json", "[]", '[{"kind": "CE"}]', '{"a": 1}'])
async def test_a_damaged_row_is_one_error_naming_it_and_the_fix(store, legs):
    await store.strategies.save("hurt", "NIFTY", STRANGLE, priced_at=T0, source="s", at=T0)
    async with store.write_transaction() as conn:
        await conn.execute(update(strategies).values(legs=legs))
    with pytest.raises(CorruptDatabaseError, match=r"saved strategy 'hurt' is damaged .*"
                       r"`optterm strategy rm hurt`"):  # fmt: skip
        await store.strategies.get("hurt")
    with pytest.raises(CorruptDatabaseError):
        await store.strategies.list()
    assert await store.strategies.remove("hurt") == 0
