"""Smart Stream packets: every mode's fields decoded exactly as the test server encoded them, the
columnar batch agreeing with the one-packet decoder, and fuzzed bytes raising only
StreamParseError."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.providers.angelone.stream.packets import (
    Mode,
    StreamParseError,
    parse_batch,
    parse_packet,
)
from tests.stream_server import Book, Spec, encode

BIDS = [Book(10_050 - 5 * i, 75 * (i + 1), i + 1) for i in range(5)]
ASKS = [Book(10_060 + 5 * i, 65 * (i + 1), i + 2) for i in range(5)]


def full_spec(mode: int, token: str = "43521") -> Spec:
    return Spec(
        mode=mode,
        token=token,
        exchange=2,
        seq=987_654_321,
        time_ms=1_785_300_123_456,
        ltp=10_055,
        ltq=65,
        atp=10_012,
        volume=1_234_500,
        tbq=98_765.0,
        tsq=87_654.5,
        open=9_800,
        high=10_400,
        low=9_750,
        close=9_900,
        ltt_ms=1_785_300_120_000,
        oi=4_321_000,
        oi_pct=-3,
        bids=BIDS,
        asks=ASKS,
        upper=20_000,
        lower=5,
        high52=55_000,
        low52=100,
    )


def test_ltp_packet_fields() -> None:
    p = parse_packet(encode(full_spec(1)))
    assert (p.mode, p.exchange, p.token, p.sequence) == (Mode.LTP, 2, "43521", 987_654_321)
    assert p.exchange_time_ms == 1_785_300_123_456
    assert p.ltp == 100.55  # paise → rupees
    assert p.volume is None and p.oi is None and p.bids == ()


def test_quote_packet_fields() -> None:
    p = parse_packet(encode(full_spec(2)))
    assert p.mode is Mode.QUOTE
    assert (p.ltp, p.last_qty, p.avg_price, p.volume) == (100.55, 65, 100.12, 1_234_500)
    assert (p.total_buy_qty, p.total_sell_qty) == (98_765.0, 87_654.5)
    assert (p.open, p.high, p.low, p.close) == (98.0, 104.0, 97.5, 99.0)
    assert p.oi is None and p.bids == ()


def test_snap_quote_packet_fields() -> None:
    p = parse_packet(encode(full_spec(3)))
    assert p.mode is Mode.SNAP_QUOTE
    assert (p.ltp, p.volume, p.close) == (100.55, 1_234_500, 99.0)
    assert (p.last_trade_time_ms, p.oi, p.oi_change_pct) == (1_785_300_120_000, 4_321_000, -3)
    assert [(b.price, b.quantity, b.orders) for b in p.bids] == [
        (b.price_paise / 100, b.qty, b.orders) for b in BIDS
    ]
    assert [(a.price, a.quantity, a.orders) for a in p.asks] == [
        (a.price_paise / 100, a.qty, a.orders) for a in ASKS
    ]
    assert (p.upper_circuit, p.lower_circuit, p.high_52w, p.low_52w) == (200.0, 0.05, 550.0, 1.0)


def test_depth_packet_fields() -> None:
    bids = [Book(10_000 - i, 10 + i, i) for i in range(20)]
    asks = [Book(10_100 + i, 20 + i, i + 1) for i in range(20)]
    spec = full_spec(4)
    spec.bids, spec.asks = bids, asks
    p = parse_packet(encode(spec))
    assert p.mode is Mode.DEPTH and p.ltp is None
    assert p.exchange_time_ms == 1_785_300_123_456
    assert [(b.price, b.quantity, b.orders) for b in p.bids] == [
        (b.price_paise / 100, b.qty, b.orders) for b in bids
    ]
    assert [(a.price, a.quantity, a.orders) for a in p.asks] == [
        (a.price_paise / 100, a.qty, a.orders) for a in asks
    ]


def test_batch_columns_match_every_mode_in_arrival_order() -> None:
    depth = full_spec(4, "3")
    depth.bids, depth.asks = [Book(9_000, 40, 2)], [Book(9_100, 50, 3)]
    msgs = [encode(full_spec(1, "1")), encode(full_spec(2, "2")), encode(depth)]
    msgs += [encode(full_spec(3, "4")), b"\x07garbage", encode(full_spec(1, "5"))]
    b = parse_batch(msgs)
    assert list(b.token) == [b"1", b"2", b"3", b"4", b"5"]
    assert b.rejected == 1 and b.first_error is not None
    assert list(b.mode) == [1, 2, 4, 3, 1]
    assert b.ltp[[0, 1, 3, 4]].tolist() == [100.55] * 4 and math.isnan(b.ltp[2])
    assert b.volume[1] == b.volume[3] == 1_234_500 and math.isnan(b.volume[0])
    assert b.oi[3] == 4_321_000 and np.isnan(b.oi[[0, 1, 2, 4]]).all()
    assert (b.bid[3], b.bid_qty[3], b.ask[3], b.ask_qty[3]) == (100.5, 75, 100.6, 65)
    assert (b.bid[2], b.bid_qty[2], b.ask[2], b.ask_qty[2]) == (90.0, 40, 91.0, 50)
    assert b.close[1] == 99.0 and (b.time_ms == 1_785_300_123_456).all()


def test_empty_book_levels_are_nan() -> None:
    spec = full_spec(3)
    spec.bids, spec.asks = [], []
    b = parse_batch([encode(spec)])
    assert np.isnan([b.bid[0], b.ask[0], b.bid_qty[0], b.ask_qty[0]]).all()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "too short"),
        (b"\x09" + bytes(50), "unknown subscription mode"),
        (encode(full_spec(3))[:-1], "SNAP_QUOTE packet is 379 bytes"),
        (b"\x01\x02" + b"\xff" * 49, "not an ASCII token"),
    ],
)
def test_bad_packets_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(StreamParseError, match=why):
        parse_packet(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.one_of(
        st.binary(max_size=500),
        st.sampled_from([51, 123, 379, 443])
        .flatmap(
            lambda n: st.tuples(st.integers(0, 255), st.binary(min_size=n - 1, max_size=n - 1))
        )
        .map(lambda t: bytes([t[0]]) + t[1]),
    )
)
def test_fuzzed_bytes_raise_only_stream_parse_error(data: bytes) -> None:
    with contextlib.suppress(StreamParseError):
        parse_packet(data)
    b = parse_batch([data, data])
    assert len(b) + b.rejected == 2
