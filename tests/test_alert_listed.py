"""A rule on an expiry that is not listed, or a strike off the symbol's grid, is refused when
it is made, judged from the latest chain the store holds (engine/alerts/listed.py), for
equities whose grid only their chain tells. A real SQLite store and a recorded NSE chain."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from optterm.config import Settings, load_settings
from optterm.engine.alerts.book import AlertBook, AlertBookError
from optterm.store import Store
from tests.test_nse import RELIANCE
from tests.test_nse_parse import chains_of, fixture

TODAY = date(2025, 7, 17)  # the recorded chain's day


def rule(**kw: Any) -> dict[str, Any]:
    return {"symbol": "RELIANCE", "kind": "PRICE", "metric": "ltp", "condition": "above",
            "threshold": 50.0, "owner": "trader", "today": TODAY, **kw}  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    toml = tmp_path / "optterm.toml"
    toml.write_text('[[poller.watch]]\nsymbol = "RELIANCE"\n', encoding="utf-8")
    return load_settings(toml, env={})


@pytest.fixture
async def book(store: Store, settings: Settings) -> AlertBook:
    chains = chains_of(fixture(RELIANCE), "RELIANCE", lot=500)
    # Stored as the poller stores them: a window around ATM, not the whole chain.
    await store.snapshots.write_many([c.window(10) for c in chains.values()])
    return AlertBook(store, settings)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (
            rule(strike=1505.0, side="CE"),
            "strike 1505 is not on RELIANCE's strike grid (every 10 points in the latest chain); "
            "use 1500 or 1510",
        ),
        (
            rule(strike=1500.0, side="CE", expiry=date(2025, 8, 7)),
            "expiry 2025-08-07 is not listed for RELIANCE; listed: 2025-07-31, 2025-08-28, "
            "2025-09-30",
        ),
    ],
    ids=["off-grid", "not-listed"],
)
async def test_what_the_symbol_does_not_list_is_refused(
    book: AlertBook, store: Store, fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(AlertBookError) as err:
        await book.add(fields)
    assert needle in str(err.value)
    assert await store.alerts.list_rules() == []


async def test_a_listed_strike_far_from_the_window_and_a_listed_expiry_are_kept(
    book: AlertBook,
) -> None:
    saved = await book.add(rule(strike=1120.0, side="PE", expiry=date(2025, 8, 28)))
    assert saved.id is not None and saved.strike == 1120.0
