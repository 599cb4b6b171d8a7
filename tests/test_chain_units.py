"""Units on the chain table and in its JSON: a CDS lot is a contract of 1,000 USD priced to
₹0.0025 (four decimals), an MCX chain says which futures its spot is, and an index chain reads
as it always did."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
from rich.console import Console

from optterm.model import (
    CONTRACT_SIZE,
    CONTRACT_UNIT,
    UNDERLYING_FUTURE,
    ChainSnapshot,
    Feed,
    Legs,
)
from optterm.present.chain import chain_table, lot_label, snapshot_to_dict, underlying_label

TS = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


def snap(symbol: str, spot: float, strikes: list[float], lot: int, meta: dict[str, str]):
    n = len(strikes)
    ltp = np.linspace(0.1234, 0.0125, n)
    legs = replace(Legs.empty(n), ltp=ltp, oi=np.full(n, 1500.0))
    return ChainSnapshot(
        symbol, date(2026, 11, 26), "angelone", Feed.LIVE, TS, TS, spot, lot,
        np.array(strikes), legs, legs, meta=meta,
    )  # fmt: skip


def render(s: ChainSnapshot) -> str:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(chain_table(s, now=TS))
    return console.export_text()


USDINR = snap(
    "USDINR", 84.3725, [84.0, 84.25, 84.5], 1,
    {CONTRACT_SIZE: "1000", CONTRACT_UNIT: "USD", UNDERLYING_FUTURE: "USDINR26NOV26FUT"},
)  # fmt: skip
CRUDE = snap(
    "CRUDEOIL", 6012.0, [5950.0, 6000.0, 6050.0], 100, {UNDERLYING_FUTURE: "CRUDEOIL18DEC26FUT"}
)
NIFTY = snap("NIFTY", 25012.35, [24950.0, 25000.0, 25050.0], 65, {})


def test_a_cds_lot_says_it_is_1000_usd_and_prices_show_the_quarter_paisa_tick():
    assert lot_label(USDINR) == "lot 1 = 1,000 USD"
    text = render(USDINR)
    assert "lot 1 = 1,000 USD" in text
    assert "spot 84.3725 on USDINR 26-Nov-26 FUT" in text
    assert "0.1234" in text and "84.25" in text
    doc = snapshot_to_dict(USDINR, now=TS)
    assert doc["contract"] == {"size": 1000, "unit": "USD"}
    assert doc["underlying_future"] == "USDINR26NOV26FUT"
    assert doc["lot_size"] == 1


def test_an_mcx_chain_names_the_futures_its_spot_is():
    assert underlying_label(CRUDE) == "on CRUDEOIL 18-Dec-26 FUT"
    text = render(CRUDE)
    assert "spot 6,012.00 on CRUDEOIL 18-Dec-26 FUT" in text
    assert "lot 100" in text and "lot 100 =" not in text
    assert "0.12" in text and "0.1234" not in text  # rupee prices: two decimals


def test_an_index_chain_reads_as_before():
    assert (lot_label(NIFTY), underlying_label(NIFTY)) == ("lot 65", None)
    doc = snapshot_to_dict(NIFTY, now=TS)
    assert "contract" not in doc and "underlying_future" not in doc
    (title,) = [line for line in render(NIFTY).splitlines() if "spot" in line]
    assert "spot 25,012.35 " in title and " on " not in title and "lot 65" in title


def test_cds_header_figures_keep_the_tick():
    from optterm.model import Quote
    from optterm.present.header import change_figure, futures_figure

    usd = USDINR.with_context(
        prev_close=84.36, futures=Quote(84.3725, 84.36, "angelone USDINR26NOV26FUT", TS)
    )
    assert change_figure(usd).text.startswith("+0.0125 (")
    assert futures_figure(usd, TS).text.startswith("FUT 84.3725 basis +0.0000 [")
    crude = CRUDE.with_context(prev_close=6000.0)
    assert change_figure(crude).text.startswith("+12.00 (")
