"""A small stored history with known prices for the backtest tests: NIFTY, three days (Fri 20,
Mon 23 and Tue 24 Nov 2026, the expiry), three strikes, a handful of snapshots a day at chosen
times. Every price is written here so a test can compute its result by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from optterm.engine.backtest.costs import CostTable
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed, Legs
from optterm.store import Store

EXPIRY = date(2026, 11, 24)
DAYS = (date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 24))
STRIKES = (24900.0, 25000.0, 25100.0)


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    ltp: float


def q(bid: float, ask: float, ltp: float | None = None) -> Quote:
    return Quote(bid, ask, (bid + ask) / 2 if ltp is None else ltp)


def at(day: date, hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=IST).astimezone(UTC)


def snap(
    ts: datetime,
    spot: float,
    ce: dict[float, Quote],
    pe: dict[float, Quote],
    *,
    lot: int = 75,
    feed: Feed = Feed.LIVE,
    provider: str = "nse",
    expiry: date = EXPIRY,
) -> ChainSnapshot:
    n = len(STRIKES)

    def legs(quotes: dict[float, Quote]) -> Legs:
        get = [quotes.get(k) for k in STRIKES]
        col = lambda f: np.array([np.nan if x is None else getattr(x, f) for x in get])  # noqa: E731
        return Legs(
            oi=np.full(n, 1000.0),
            oi_change=np.zeros(n),
            volume=np.full(n, 10.0),
            ltp=col("ltp"),
            bid=col("bid"),
            ask=col("ask"),
            iv=np.full(n, 0.12),
        )

    return ChainSnapshot(
        symbol="NIFTY",
        expiry=expiry,
        provider=provider,
        feed=feed,
        provider_ts=ts,
        fetched_at=ts + timedelta(seconds=1),
        spot=spot,
        lot_size=lot,
        strikes=np.array(STRIKES),
        ce=legs(ce),
        pe=legs(pe),
    )


def flat(ts: datetime, spot: float, ce: float, pe: float, **kw: object) -> ChainSnapshot:
    """Every strike quoted: the 25000 pair at ce/pe (bid, ask = price -/+ 0.5), the wings at
    half and double of them."""
    cq = {24900.0: q(ce * 2 - 0.5, ce * 2 + 0.5), 25000.0: q(ce - 0.5, ce + 0.5),
          25100.0: q(ce / 2 - 0.5, ce / 2 + 0.5)}  # fmt: skip
    pq = {24900.0: q(pe / 2 - 0.5, pe / 2 + 0.5), 25000.0: q(pe - 0.5, pe + 0.5),
          25100.0: q(pe * 2 - 0.5, pe * 2 + 0.5)}  # fmt: skip
    return snap(ts, spot, cq, pq, **kw)  # type: ignore[arg-type]


def three_days(lots: tuple[int, int, int] = (75, 75, 75)) -> list[ChainSnapshot]:
    """Per day: 09:15, 09:20:00 (exactly the entry time), 09:20:15, 12:00, 15:15:00, 15:15:15,
    15:29:45. The 25000 straddle's mids, in order: see PRICES."""
    out = []
    for day, lot in zip(DAYS, lots, strict=True):
        for hhmmss, spot, ce, pe in PRICES[day]:
            out.append(flat(at(day, hhmmss), spot, ce, pe, lot=lot))
    return out


# (time, spot, 25000 CE mid, 25000 PE mid) per day.
PRICES = {
    DAYS[0]: [
        ("09:15:00", 25010, 120.0, 110.0),
        ("09:20:00", 25005, 118.0, 112.0),  # the entry time's own quote: never used
        ("09:20:15", 25000, 116.0, 114.0),  # the entry fills here
        ("12:00:00", 25020, 110.0, 100.0),
        ("15:15:00", 25030, 104.0, 96.0),  # the exit time's own quote: never used
        ("15:15:15", 25040, 102.0, 94.0),  # the exit fills here
        ("15:29:45", 25050, 101.0, 93.0),
    ],
    DAYS[1]: [
        ("09:15:00", 25100, 90.0, 60.0),
        ("09:20:00", 25100, 88.0, 62.0),
        ("09:20:15", 25100, 86.0, 64.0),
        ("12:00:00", 25150, 120.0, 40.0),
        ("15:15:00", 25180, 150.0, 30.0),
        ("15:15:15", 25190, 160.0, 28.0),
        ("15:29:45", 25200, 170.0, 25.0),
    ],
    DAYS[2]: [
        ("09:15:00", 25200, 200.0, 5.0),
        ("09:20:00", 25210, 205.0, 4.0),
        ("09:20:15", 25220, 210.0, 3.0),
        ("12:00:00", 25250, 240.0, 2.0),
        ("15:15:00", 25240, 236.0, 1.5),
        ("15:15:15", 25230, 228.0, 1.5),
        ("15:29:45", 25200, 200.5, 1.0),
    ],
}


async def store_history(store: Store, snaps: list[ChainSnapshot]) -> None:
    await store.snapshots.write_many(snaps)


def costs_oct_2024() -> CostTable:
    """The shipped cost table as it stood before the 2026-27 budget: without its 2026-04-01
    options row (STT 0.15 % on premium and on exercise). The hand computations of the
    mechanics tests (calendars, futures legs, rule entries, segments) were worked at the
    Oct-2024 options STT, 0.1 % on premium and 0.125 % exercised, and stay stated at it; the
    straddle and exercise tests of test_backtest.py check the 2026 row itself."""
    from importlib import resources

    from optterm.engine.backtest.costs import parse_costs

    text = resources.files("optterm").joinpath("data", "costs", "nse.toml").read_text("utf-8")
    row = re.search(r"\n\[\[rates\]\]\nfrom = 2026-04-01.*?\n\n", text, flags=re.S)
    assert row is not None, "the shipped table's 2026-04-01 options row moved"
    return parse_costs(text.replace(row.group(0), "\n\n"), "the shipped table before 2026-04-01")
