"""Time blocks (store/blockcodec.py): consecutive snapshots of a chain coded together,
bit-exact, much smaller than a blob each, and damage always reported as a CodecError."""

from __future__ import annotations

import contextlib
import json
import struct
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.market import NSE_INDICES
from optterm.model import LEG_FIELDS, ChainSnapshot, Legs
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import CodecError
from optterm.store.blockcodec import (
    MAX_MEMBERS,
    Member,
    decode_block,
    decode_block_columns,
    encode_block,
    head_length,
)
from optterm.store.codec import encode_chain
from optterm.store.context import context_json
from optterm.store.timecodec import to_us
from tests.test_codec import assert_round_trip, damaged_behind_checksum

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST


def member(snap: ChainSnapshot, fetched_us: int = 0, snap_id: int = 1) -> Member:
    ts = to_us(snap.provider_ts, "provider_ts")
    return Member(
        id=snap_id,
        provider_ts=ts,
        fetched_at=ts + fetched_us,
        spot=snap.spot,
        lot_size=snap.lot_size,
        prev_close=snap.prev_close,
        feed=str(snap.feed),
        meta=json.dumps(snap.meta, sort_keys=True) if snap.meta else None,
        context=context_json(snap),
        strikes=snap.strikes,
        ce=snap.ce,
        pe=snap.pe,
    )


def polls(symbol: str = "NIFTY", first: int = 300, count: int = 64) -> list[ChainSnapshot]:
    """Consecutive 15 s polls of a simulated chain, cut as the poller stores them (ATM ± 50):
    the window moves with the spot, so members do not all have the same strikes."""
    sim = SimulatorProvider(
        seed=7,
        step_seconds=15,
        start=START,
        clock=lambda: 0.0,
        underlyings={symbol: NSE_INDICES[symbol]},
    )
    expiry = sim._listed(symbol, 0)[0]
    return [sim.chain_at_step(symbol, expiry, k).window(50) for k in range(first, first + count)]


def assert_same(a: Member, b: Member) -> None:
    assert_round_trip(a.strikes, b.strikes)
    for side in ("ce", "pe"):
        for f in LEG_FIELDS:
            assert_round_trip(getattr(a, side).column(f), getattr(b, side).column(f))
    head = ("id", "provider_ts", "fetched_at", "lot_size", "feed", "meta", "context")
    assert [getattr(a, h) for h in head] == [getattr(b, h) for h in head]
    assert_round_trip(np.array([a.spot, a.prev_close]), np.array([b.spot, b.prev_close]))


def test_a_day_of_polls_round_trips_bit_for_bit_with_moving_windows() -> None:
    snaps = polls(count=96)
    assert len({tuple(s.strikes) for s in snaps}) > 1  # the window moved: unions are exercised
    members = [member(s, fetched_us=1234 + i, snap_id=10 + 9 * i) for i, s in enumerate(snaps)]
    for size in (1, 2, 64, 96):
        back = decode_block(encode_block(members[:size])).members
        assert len(back) == size
        for a, b in zip(members, back, strict=False):
            assert_same(a, b)


def test_a_block_costs_well_under_half_of_one_blob_per_poll() -> None:
    # The reason blocks exist: most of a chain does not move between two polls.
    snaps = polls(count=64)
    members = [member(s) for s in snaps]
    each = sum(
        len(encode_chain(s, zstd=True)) + len(m.context or "")
        for s, m in zip(snaps, members, strict=True)
    )
    assert len(encode_block(members)) < 0.45 * each


def legs_from(rng: np.random.Generator, n: int, tick: float) -> Legs:
    oi = rng.integers(0, 10**6, n).astype(float)
    ltp = np.round(rng.uniform(0.05, 900, n) / tick) * tick
    noisy = ltp - 0.05 * 3  # float arithmetic lands a step or two off the tick
    iv = np.round(rng.uniform(0.05, 0.9, n), 4)
    iv[rng.random(n) < 0.2] = np.nan
    return Legs(
        oi=oi,
        oi_change=oi - rng.integers(0, 5000, n),
        volume=oi * 3,
        ltp=ltp,
        bid=noisy,
        ask=ltp + rng.uniform(0, 1, n),  # off every grid: stored as float64
        iv=iv,
    )


def test_every_kind_of_column_and_gaps_round_trip() -> None:
    rng = np.random.default_rng(3)
    members = []
    for i in range(12):
        strikes = 100.0 * np.arange(i % 3, 30 + i % 5)  # members with different strikes
        n = strikes.size
        ce, pe = legs_from(rng, n, 0.05), legs_from(rng, n, 0.01)  # bid/ask grids differ
        members.append(
            Member(
                id=i,
                provider_ts=i,
                fetched_at=i + 1,
                spot=float("nan") if i == 4 else 2500.25,
                lot_size=None if i == 2 else 50,
                prev_close=float("nan"),
                feed="SIMULATED",
                meta=None,
                context='{"vix":null}' if i % 2 else None,
                strikes=strikes,
                ce=ce,
                pe=pe,
            )
        )
    back = decode_block(encode_block(members)).members
    for a, b in zip(members, back, strict=True):
        assert_same(a, b)
    # A column absent from every member (no bid quantities given) comes back all NaN.
    assert np.isnan(back[0].ce.column("bid_qty")).all()


def test_minus_zero_is_the_only_inexact_value() -> None:
    n = 4
    vals = np.array([-0.0, 0.0, 1.5, -2.25])
    legs = Legs(vals, vals, vals, vals, vals, vals, vals)
    m = Member(1, 1, 1, 1.0, 1, np.nan, "LIVE", None, None, np.arange(n, dtype=float), legs, legs)
    got = decode_block(encode_block([m])).members[0].ce.ltp
    assert np.array_equal(got, [0.0, 0.0, 1.5, -2.25])
    assert not np.signbit(got[0])


_value = st.one_of(
    st.integers(-(10**7), 10**7).map(float),
    st.integers(0, 10**6).map(lambda k: k / 20),
    st.tuples(st.integers(0, 10**6), st.integers(0, 9)).map(lambda kj: kj[0] / 20 - 0.05 * kj[1]),
    st.integers(1, 10**6).map(lambda k: k / 3),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 5).flatmap(
        lambda b: st.lists(st.lists(_value, min_size=6, max_size=6), min_size=b, max_size=b)
    )
)
def test_any_values_round_trip(rows: list[list[float]]) -> None:
    members = []
    for i, row in enumerate(rows):
        v = np.array(row)
        legs = Legs(v, v[::-1].copy(), v, v, v[::-1].copy(), v, v)
        members.append(
            Member(i, i, i, 1.0, 1, np.nan, "LIVE", None, None, np.arange(6.0), legs, legs)
        )
    for a, b in zip(members, decode_block(encode_block(members)).members, strict=True):
        assert_same(a, b)


def _read_all(blob: bytes) -> None:
    decode_block(blob)


def test_truncated_and_damaged_blocks_raise_codec_error() -> None:
    blob = encode_block([member(s) for s in polls(count=8)])
    for cut in range(0, len(blob), 7):
        with pytest.raises(CodecError):
            _read_all(blob[:cut])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(CodecError, match="checksum"):
        _read_all(bytes(flipped))
    # Damage behind a valid checksum, in the head and in the rest: the decoder's own checks
    # must name it, never crash.
    h = head_length(blob)
    for damaged in damaged_behind_checksum(blob, 5, 20, crc_at=12, covered_from=20, covered_to=h):
        with contextlib.suppress(CodecError):
            _read_all(damaged)
            decode_block_columns(damaged[:h], ["ce_oi", "pe_oi"], strike=float(damaged[0]))
    for damaged in damaged_behind_checksum(blob, 6, h, crc_at=16, covered_from=h):
        with contextlib.suppress(CodecError):
            _read_all(damaged)


def test_a_newer_block_version_says_so() -> None:
    blob = bytearray(encode_block([member(polls(count=1)[0])]))
    blob[0] = 9
    with pytest.raises(CodecError, match="version 9"):
        decode_block(bytes(blob))


def test_a_header_claiming_too_many_members_is_refused_before_allocating() -> None:
    blob = bytearray(encode_block([member(polls(count=1)[0])]))
    struct.pack_into("<H", blob, 2, MAX_MEMBERS + 1)  # offset 2: the member count
    with pytest.raises(CodecError, match="impossible size"):
        decode_block(bytes(blob))


def test_encoding_refuses_an_empty_block() -> None:
    with pytest.raises(ValueError, match="1 to"):
        encode_block([])


def test_some_columns_decode_without_the_others() -> None:
    snaps = polls(count=10)
    blob = encode_block([member(s, snap_id=100 + i) for i, s in enumerate(snaps)])
    cols = decode_block_columns(blob, ["ce_bid", "pe_oi"])  # ce_bid is coded against ce_ltp
    assert set(cols.values) == {"ce_bid", "pe_oi"}
    assert cols.ids.tolist() == list(range(100, 110))
    for i, s in enumerate(snaps):
        assert_round_trip(cols.union[cols.present[i]], s.strikes)
        assert_round_trip(cols.values["ce_bid"][i, cols.present[i]], s.ce.bid)
        assert_round_trip(cols.values["pe_oi"][i, cols.present[i]], s.pe.oi)
    with pytest.raises(ValueError, match="unknown block column"):
        decode_block_columns(blob, ["strike"])
    # One strike's cells alone (what a strike's series reads), and a strike no member has.
    strike = float(snaps[0].strikes[3])
    one = decode_block_columns(blob, ["ce_bid", "pe_iv"], strike=strike)
    assert one.union.tolist() == [strike]
    for i, s in enumerate(snaps):
        at = np.flatnonzero(s.strikes == strike)
        want = [s.ce.bid[at[0]], s.pe.iv[at[0]]] if at.size else [np.nan, np.nan]
        assert_round_trip(
            np.array([one.values["ce_bid"][i, 0], one.values["pe_iv"][i, 0]]), np.array(want)
        )
    assert decode_block_columns(blob, ["ce_oi"], strike=1.5).union.size == 0


def test_the_head_alone_serves_oi_and_says_when_it_is_not_enough() -> None:
    snaps = polls(count=12)
    blob = encode_block([member(s, snap_id=i) for i, s in enumerate(snaps)])
    head = blob[: head_length(blob)]
    assert len(head) < len(blob) / 3
    strike = float(snaps[0].strikes[5])
    whole = decode_block_columns(blob, ["ce_oi", "pe_oi"], strike=strike)
    alone = decode_block_columns(head, ["ce_oi", "pe_oi"], strike=strike)
    for name in ("ce_oi", "pe_oi"):
        assert_round_trip(alone.values[name], whole.values[name])
    assert_round_trip(alone.spot, np.array([s.spot for s in snaps]))
    with pytest.raises(ValueError, match="whole block"):
        decode_block_columns(head, ["ce_ltp"])
    with pytest.raises(ValueError, match="whole block"):
        decode_block_columns(head).texts()
