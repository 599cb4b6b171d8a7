"""The snapshot blob codec: lossless where it matters, partial decoding, clear errors on damage."""

from __future__ import annotations

import contextlib
import random
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs
from optterm.store import CodecError, StoreError
from optterm.store.codec import (
    COLUMNS,
    ColumnBlob,
    decode_chain,
    decode_columns,
    encode_chain,
    encode_columns,
)

TS = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def realistic_chain(n: int = 60, seed: int = 1) -> ChainSnapshot:
    rng = np.random.default_rng(seed)
    strikes = 24_000 + 50.0 * np.arange(n)
    k = np.log(strikes / 24_510.0)

    def legs(sign: float) -> Legs:
        oi = np.round(2e5 * np.exp(-((k - sign * 0.01) ** 2) / 0.001)) + rng.integers(0, 900, n)
        ltp = np.maximum(np.round((np.maximum(sign * (24_510 - strikes), 0) + 80) * 20) / 20, 0.05)
        bid = ltp - 0.05 * rng.integers(1, 5, n)
        bid[rng.random(n) < 0.1] = np.nan
        iv = np.round(0.12 + 0.3 * k * k + rng.normal(0, 0.002, n), 4)
        iv[:3] = np.nan
        return Legs(oi, oi - rng.integers(0, 5000, n), oi * 3, ltp, bid, ltp + 0.1, iv)

    return ChainSnapshot(
        "NIFTY", date(2026, 11, 24), "sim", Feed.SIMULATED, TS, TS, 24_510.35, 65, strikes,
        legs(-1.0), legs(1.0),
    )  # fmt: skip


def one_column(values: list[float] | np.ndarray) -> np.ndarray:
    blob = encode_columns({"ce_ltp": np.asarray(values, dtype=np.float64)})
    return decode_columns(blob)["ce_ltp"]


def assert_round_trip(src: np.ndarray, out: np.ndarray) -> None:
    """The codec's guarantee: bit-for-bit, NaN as NaN (and -0.0 as 0.0, which compares equal)."""
    assert out.shape == src.shape
    assert np.array_equal(src, out, equal_nan=True), src[~((src == out) | np.isnan(src))]


def test_realistic_chain_round_trips_exactly() -> None:
    snap = realistic_chain()
    strikes, ce, pe = decode_chain(encode_chain(snap))
    assert np.array_equal(strikes, snap.strikes)
    assert ce.equals(snap.ce)
    assert pe.equals(snap.pe)


def test_blob_is_much_smaller_than_raw_columns() -> None:
    snap = realistic_chain(100)
    raw = 15 * 100 * 8
    assert len(encode_chain(snap)) < raw / 3


def test_integers_and_tick_prices_are_exact() -> None:
    ints = [0, 1, -1, 123_456_789, -98_765, 2**52 - 1, -(2**52) + 1]
    assert one_column(ints).tolist() == ints
    ticks = [k / 20 for k in range(0, 400_000, 37)]
    assert one_column(ticks).tolist() == ticks
    iv = [round(0.0001 * k, 4) for k in range(1, 5000, 7)]
    assert one_column(iv).tolist() == iv
    paise = [k / 100 for k in range(-500, 500, 3)]
    assert one_column(paise).tolist() == paise


def test_arithmetic_noise_stays_bit_exact_and_cheap() -> None:
    rng = np.random.default_rng(4)
    ltp = np.round(rng.uniform(1, 2000, 200) * 20) / 20
    noisy = ltp - 0.05 * rng.integers(1, 6, 200)  # 972.5500000000001 and friends
    assert not np.array_equal(noisy, np.round(noisy * 20) / 20)
    assert np.array_equal(one_column(noisy), noisy)
    assert one_column([0.1 + 0.2, 1.5])[0] == 0.1 + 0.2
    clean = len(encode_columns({"ce_bid": np.round(noisy * 20) / 20}))
    assert len(encode_columns({"ce_bid": noisy})) < clean + 200 * 0.5


def test_off_grid_values_are_kept_bit_for_bit() -> None:
    assert np.signbit(one_column([-0.0, 1.0])[0]) == np.False_  # the one documented exception
    cases = [
        [4.333333333333333, 1.0, 2.0],  # fractional OI after a lot-size change
        [1e20, 3.0, -7e19],  # beyond any integer grid
        [0.123456789012, 0.5, np.nan],  # a solver's IV
        [2.0**-10, 0.25, 1.5],  # exact in float32
        [5e-324, 1e-300, 0.0],  # subnormals
        [np.inf, -np.inf, 1.0, np.nan],
    ]
    for values in cases:
        out = one_column(values)
        assert np.array_equal(out, np.array(values), equal_nan=True), values


def test_nan_layouts() -> None:
    assert np.isnan(one_column([np.nan] * 5)).all()
    assert one_column([]).shape == (0,)
    for values in ([np.nan, 1.0], [1.0, np.nan], [np.nan, 2.5, np.nan, 2.55, np.nan, np.nan]):
        assert np.array_equal(one_column(values), values, equal_nan=True)
    strikes = np.arange(5.0)
    empty = ChainSnapshot(
        "X", date(2026, 1, 1), "p", Feed.LIVE, TS, TS, 1.0, 1, [], *2 * [Legs.empty(0)]
    )
    got = decode_chain(encode_chain(empty))
    assert got[0].shape == (0,)
    assert len(got[1]) == 0
    one = ChainSnapshot(
        "X", date(2026, 1, 1), "p", Feed.LIVE, TS, TS, 1.0, 1, strikes[:1],
        Legs(*(np.array([v]) for v in range(7))), Legs.empty(1),
    )  # fmt: skip
    s, ce, pe = decode_chain(encode_chain(one))
    assert s.tolist() == [0.0]
    assert ce.equals(one.ce)
    assert pe.equals(one.pe)


def test_partial_decode_and_single_cells_match_the_full_decode() -> None:
    snap = realistic_chain(75, seed=3)
    blob = encode_chain(snap)
    cb = ColumnBlob(blob)
    assert cb.n_rows == 75
    assert cb.names == COLUMNS
    assert set(decode_columns(blob, ["pe_oi"])) == {"pe_oi"}
    for name in COLUMNS:
        col = cb.column(name)
        src = snap.strikes if name == "strike" else snap.side(name[:2].upper()).column(name[3:])
        assert np.array_equal(col, src, equal_nan=True), name
        for i in range(75):
            v = cb.value(name, i)
            assert v == col[i] or (np.isnan(v) and np.isnan(col[i])), (name, i)
    with pytest.raises(IndexError):
        cb.value("ce_oi", 75)
    with pytest.raises(ValueError, match="unknown column"):
        cb.column("ce_gamma")


def test_same_strikes_give_the_same_segment_key() -> None:
    a, b = realistic_chain(40, seed=1), realistic_chain(40, seed=2)
    ka = ColumnBlob(encode_chain(a)).segment_key("strike")
    assert ka == ColumnBlob(encode_chain(b)).segment_key("strike")
    assert ka != ColumnBlob(encode_chain(realistic_chain(41))).segment_key("strike")


def test_a_column_the_blob_lacks_decodes_as_nan() -> None:
    blob = encode_columns({"strike": np.arange(3.0), "ce_oi": np.ones(3)})
    cb = ColumnBlob(blob)
    assert np.isnan(cb.column("pe_iv")).all()
    assert np.isnan(cb.value("pe_iv", 1))
    assert cb.segment_key("pe_iv") is None


def test_encoder_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown column"):
        encode_columns({"gamma": np.ones(2)})
    with pytest.raises(ValueError, match="expected 2"):
        encode_columns({"strike": np.ones(2), "ce_oi": np.ones(3)})
    with pytest.raises(ValueError, match="one-dimensional"):
        encode_columns({"strike": np.ones((2, 2))})


# ------------------------------------------------------------------------------ damaged blobs


def _decode_everything(blob: bytes) -> None:
    cb = ColumnBlob(blob)
    for name in COLUMNS:
        cb.column(name)
        for i in range(min(cb.n_rows, 5)):
            cb.value(name, i)


def test_truncated_blobs_raise_codec_error() -> None:
    blob = encode_chain(realistic_chain(30))
    for cut in range(len(blob)):
        with pytest.raises(CodecError):
            _decode_everything(blob[:cut])
    with pytest.raises(CodecError):
        _decode_everything(blob + b"\x00")


def test_flipped_bytes_raise_codec_error() -> None:
    blob = encode_chain(realistic_chain(30))
    rng = random.Random(5)
    for _ in range(300):
        damaged = bytearray(blob)
        damaged[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        with pytest.raises(CodecError):
            _decode_everything(bytes(damaged))


def test_damage_behind_a_valid_checksum_never_crashes_numpy() -> None:
    # As if the bytes were damaged before the checksum was computed: the decoder's own checks
    # must turn every inconsistency into a CodecError, never an IndexError or numpy error.
    for damaged in damaged_behind_checksum(encode_chain(realistic_chain(30, seed=9)), 11, 1):
        with contextlib.suppress(CodecError):
            _decode_everything(damaged)


def damaged_behind_checksum(
    blob: bytes,
    seed: int,
    first: int,
    *,
    crc_at: int = 6,
    covered_from: int = 10,
    covered_to: int | None = None,
) -> Iterator[bytes]:
    """2,000 copies of `blob`, each with 1-3 bytes from offset `first` on (to `covered_to`)
    changed and the header's CRC (at `crc_at`, over the bytes from `covered_from` to
    `covered_to`, else the end) fixed up to match, so the decoder's own checks are what must
    catch them."""
    end = len(blob) if covered_to is None else covered_to
    rng = random.Random(seed)
    for _ in range(2000):
        damaged = bytearray(blob)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(first, end)] = rng.randrange(256)
        crc = zlib.crc32(bytes(damaged[covered_from:end]))
        damaged[crc_at : crc_at + 4] = struct.pack("<I", crc)
        yield bytes(damaged)


def test_newer_format_version_is_reported() -> None:
    blob = bytearray(encode_chain(realistic_chain(5)))
    blob[0] = 3
    with pytest.raises(CodecError, match="version 3") as err:
        ColumnBlob(bytes(blob))
    assert isinstance(err.value, StoreError)


# ------------------------------------------------------------------------------ property test

_ints = st.integers(min_value=-(2**60), max_value=2**60).map(float)
_small_ints = st.integers(min_value=-(10**7), max_value=10**7).map(float)
_ticks = st.integers(min_value=0, max_value=10**7).map(lambda k: k / 20)
_iv = st.integers(min_value=0, max_value=50_000).map(lambda k: k / 10_000)
_noisy_ticks = st.tuples(st.integers(0, 10**6), st.integers(0, 9)).map(
    lambda kj: kj[0] / 20 - 0.05 * kj[1]
)
_fractions = st.integers(min_value=1, max_value=10**6).map(lambda k: k / 3)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_nan = st.just(float("nan"))


@st.composite
def _column(draw: st.DrawFn, n: int) -> list[float]:
    kinds = ["ints", "small", "ticks", "noisy", "iv", "fractions", "floats", "mixed"]
    kind = draw(st.sampled_from(kinds))
    base = {
        "ints": _ints,
        "small": _small_ints,
        "ticks": _ticks,
        "noisy": _noisy_ticks,
        "iv": _iv,
        "fractions": _fractions,
        "floats": _floats,
        "mixed": st.one_of(_small_ints, _ticks, _noisy_ticks, _floats),
    }[kind]
    return draw(
        st.lists(st.one_of(base, _nan) if draw(st.booleans()) else base, min_size=n, max_size=n)
    )


@st.composite
def _columns(draw: st.DrawFn) -> dict[str, list[float]]:
    n = draw(st.integers(min_value=0, max_value=40))
    names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6, unique=True))
    return {name: draw(_column(n)) for name in names}


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_columns())
def test_any_columns_round_trip_within_the_guarantee(cols: dict[str, list[float]]) -> None:
    arrays = {k: np.array(v, dtype=np.float64) for k, v in cols.items()}
    blob = encode_columns(arrays)
    cb = ColumnBlob(blob)
    for name, src in arrays.items():
        out = cb.column(name)
        assert_round_trip(src, out)
        for i in range(src.shape[0]):
            v = cb.value(name, i)
            assert v == out[i] or (np.isnan(v) and np.isnan(out[i]))


def test_column_ids_are_frozen_and_cover_every_leg_field() -> None:
    # Ids are the format: the first fifteen are what every stored blob since version 1 uses,
    # and new columns only ever come after them.
    original = ("oi", "oi_change", "volume", "ltp", "bid", "ask", "iv")
    added = ("prev_close", "bid_qty", "ask_qty")
    assert COLUMNS[:15] == (
        "strike",
        *(f"ce_{f}" for f in original),
        *(f"pe_{f}" for f in original),
    )
    assert COLUMNS[15:] == (*(f"ce_{f}" for f in added), *(f"pe_{f}" for f in added))
    assert original + added == LEG_FIELDS


def test_a_blob_without_the_new_columns_decodes_them_as_nan() -> None:
    # What every snapshot stored before prev_close and the quantities existed looks like.
    snap = realistic_chain(20)
    cols: dict[str, np.ndarray] = {"strike": snap.strikes}
    for side, legs in (("ce", snap.ce), ("pe", snap.pe)):
        for f in LEG_FIELDS[:7]:
            cols[f"{side}_{f}"] = legs.column(f)
    strikes, ce, pe = decode_chain(encode_columns(cols))
    assert np.array_equal(strikes, snap.strikes)
    for legs, want in ((ce, snap.ce), (pe, snap.pe)):
        for f in LEG_FIELDS[:7]:
            assert np.array_equal(legs.column(f), want.column(f), equal_nan=True)
        for f in LEG_FIELDS[7:]:
            assert legs.column(f).shape == (20,) and np.isnan(legs.column(f)).all()


def test_prev_close_and_quantities_round_trip() -> None:
    snap = realistic_chain(30, seed=5)
    rng = np.random.default_rng(9)

    def with_extras(legs: Legs) -> Legs:
        prev = np.round(legs.ltp * rng.uniform(0.7, 1.3, 30) * 20) / 20
        prev[4] = np.nan
        qty = 65.0 * rng.integers(1, 40, 30)
        qty[np.isnan(legs.bid)] = np.nan
        cols = {n: legs.column(n) for n in LEG_FIELDS[:7]}
        return Legs(**cols, prev_close=prev, bid_qty=qty, ask_qty=qty * 2)

    full = ChainSnapshot(
        snap.symbol, snap.expiry, snap.provider, snap.feed, TS, TS, snap.spot, 65, snap.strikes,
        with_extras(snap.ce), with_extras(snap.pe),
    )  # fmt: skip
    _, ce, pe = decode_chain(encode_chain(full))
    assert ce.equals(full.ce) and pe.equals(full.pe)
    assert np.isnan(ce.prev_close[4]) and ce.prev_close[5] == full.ce.prev_close[5]


def test_the_written_bytes_are_pinned() -> None:
    """The encoder is tuned for speed now and then: the bytes it writes for the same columns
    must not move (stores compare and deduplicate blobs; a reader of cells relies on the
    layout). The digest was taken from the encoder before its per-column loop was vectorised."""
    import hashlib

    h = hashlib.sha256()
    for seed in range(1, 6):
        for n in (1, 7, 60, 201):
            h.update(encode_chain(realistic_chain(n, seed)))
    v = np.array([972.55 - 0.05 * 3, np.nan, 1e-9, 4.333333333333333, 2.0**60, -0.0, 12.5])
    for version in (1, 2):
        h.update(encode_columns({"ce_ltp": v, "pe_iv": v[::-1].copy()}, version=version))
    assert h.hexdigest() == "d148a23c5c60ac3466e1ad6c4ba84a12e194c159b19bf3eb942d1ddf456330d4"
