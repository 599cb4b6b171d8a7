"""Smart Stream 2.0 binary packets: one packet in full (`parse_packet`), or many as columns
(`parse_batch`, the hot path).

Layout (little-endian; offsets in bytes, prices in paise, times in ms since the Unix epoch):

    every mode   0 mode u8 · 1 exchange type u8 · 2 token, 25 bytes ASCII, NUL-padded
                 27 sequence i64 · 35 exchange time i64 (DEPTH: the packet's time)
    LTP (1)      43 last traded price i64                                   → 51 bytes
    QUOTE (2)    51 last traded qty i64 · 59 average price i64 · 67 volume i64
                 75 total buy qty f64 · 83 total sell qty f64
                 91 open · 99 high · 107 low · 115 close (previous session) i64 → 123 bytes
    SNAP (3)     123 last trade time i64 · 131 OI i64 · 139 OI change % i64
                 147 best five: 10 × (flag u16 (1 buy, 0 sell) · qty i64 · price i64 · orders u16)
                 347 upper circuit · 355 lower circuit · 363 52-week high · 371 low i64 → 379 bytes
    DEPTH (4)    43 twenty bids then at 243 twenty asks, each (qty i32 · price i32 · orders i16)
                                                                             → 443 bytes

A packet's length must be its mode's; anything else (unknown mode, short, long, a token that is
not ASCII digits and letters) is a StreamParseError, the only exception this module raises.
An empty book level (price 0) is NaN, as in the REST quote.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = [
    "PACKET_LENGTHS",
    "BatchTicks",
    "Exchange",
    "Level",
    "Mode",
    "Packet",
    "StreamParseError",
    "parse_batch",
    "parse_packet",
]


class Mode(IntEnum):
    LTP = 1
    QUOTE = 2
    SNAP_QUOTE = 3
    DEPTH = 4


class Exchange(IntEnum):
    """Smart Stream's exchange types (the SDK's constants)."""

    NSE_CM = 1
    NSE_FO = 2
    BSE_CM = 3
    BSE_FO = 4
    MCX_FO = 5
    NCX_FO = 7
    CDE_FO = 13


PACKET_LENGTHS = {Mode.LTP: 51, Mode.QUOTE: 123, Mode.SNAP_QUOTE: 379, Mode.DEPTH: 443}
_MODE_OF_LENGTH = {n: m for m, n in PACKET_LENGTHS.items()}
_PAISE = 100.0


class StreamParseError(ValueError):
    """A binary message that is not a Smart Stream packet of a known mode."""


# -- one packet, every field -------------------------------------------------------------------

_HEAD = struct.Struct("<BB25sqqq")  # mode, exchange, token, sequence, time, ltp
_QUOTE = struct.Struct("<qqqddqqqq")  # from 51
_SNAP = struct.Struct("<qqq")  # from 123
_LEVEL5 = struct.Struct("<HqqH")
_LIMITS = struct.Struct("<qqqq")  # from 347
_LEVEL20 = struct.Struct("<iih")


@dataclass(frozen=True, slots=True)
class Level:
    price: float  # rupees
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet decoded in full. Fields a mode does not carry are None."""

    mode: Mode
    exchange: int
    token: str
    sequence: int
    exchange_time_ms: int
    ltp: float | None = None
    last_qty: int | None = None
    avg_price: float | None = None
    volume: int | None = None
    total_buy_qty: float | None = None
    total_sell_qty: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    last_trade_time_ms: int | None = None
    oi: int | None = None
    oi_change_pct: int | None = None
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    upper_circuit: float | None = None
    lower_circuit: float | None = None
    high_52w: float | None = None
    low_52w: float | None = None


def _token(raw: bytes) -> str:
    text = raw.split(b"\0", 1)[0]
    if not text or not text.isalnum() or not text.isascii():
        raise StreamParseError(f"token field {raw[:25]!r} is not an ASCII token")
    return text.decode("ascii")


def _rupees(paise: int) -> float:
    return paise / _PAISE


def parse_packet(data: bytes | bytearray | memoryview) -> Packet:
    """Decode one binary message in full (tests, diagnostics; the feed uses parse_batch)."""
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    if len(buf) < 2:
        raise StreamParseError(f"a packet of {len(buf)} bytes is too short for a header")
    try:
        mode = Mode(buf[0])
    except ValueError:
        raise StreamParseError(f"unknown subscription mode {buf[0]}") from None
    want = PACKET_LENGTHS[mode]
    if len(buf) != want:
        raise StreamParseError(f"a {mode.name} packet is {want} bytes, got {len(buf)}")
    _, exchange, raw_token, seq, ts, ltp = _HEAD.unpack_from(buf, 0)
    token = _token(raw_token)
    if mode is Mode.DEPTH:
        bids = tuple(_depth_level(buf, 43 + 10 * i) for i in range(20))
        asks = tuple(_depth_level(buf, 243 + 10 * i) for i in range(20))
        return Packet(mode, exchange, token, seq, ts, bids=bids, asks=asks)
    if mode is Mode.LTP:
        return Packet(mode, exchange, token, seq, ts, ltp=_rupees(ltp))
    ltq, atp, vol, tbq, tsq, op, hi, lo, cl = _QUOTE.unpack_from(buf, 51)
    quote = dict(
        ltp=_rupees(ltp),
        last_qty=ltq,
        avg_price=_rupees(atp),
        volume=vol,
        total_buy_qty=tbq,
        total_sell_qty=tsq,
        open=_rupees(op),
        high=_rupees(hi),
        low=_rupees(lo),
        close=_rupees(cl),
    )
    if mode is Mode.QUOTE:
        return Packet(mode, exchange, token, seq, ts, **quote)
    ltt, oi, oi_pct = _SNAP.unpack_from(buf, 123)
    bids_l: list[Level] = []
    asks_l: list[Level] = []
    for i in range(10):
        flag, qty, price, orders = _LEVEL5.unpack_from(buf, 147 + 20 * i)
        (bids_l if flag == 1 else asks_l).append(Level(_rupees(price), qty, orders))
    upper, lower, h52, l52 = _LIMITS.unpack_from(buf, 347)
    return Packet(
        mode,
        exchange,
        token,
        seq,
        ts,
        last_trade_time_ms=ltt,
        oi=oi,
        oi_change_pct=oi_pct,
        bids=tuple(bids_l),
        asks=tuple(asks_l),
        upper_circuit=_rupees(upper),
        lower_circuit=_rupees(lower),
        high_52w=_rupees(h52),
        low_52w=_rupees(l52),
        **quote,
    )


def _depth_level(buf: memoryview, at: int) -> Level:
    qty, price, orders = _LEVEL20.unpack_from(buf, at)
    return Level(_rupees(price), qty, orders)


# -- many packets, the columns the chain needs ---------------------------------------------------

_COMMON = [
    ("mode", "u1"),
    ("exchange", "u1"),
    ("token", "S25"),
    ("seq", "<i8"),
    ("time", "<i8"),
]
_LEVEL5_DT = np.dtype([("flag", "<u2"), ("qty", "<i8"), ("price", "<i8"), ("orders", "<u2")])
_LEVEL20_DT = np.dtype([("qty", "<i4"), ("price", "<i4"), ("orders", "<i2")])
_DTYPES = {
    Mode.LTP: np.dtype([*_COMMON, ("ltp", "<i8")]),
    Mode.QUOTE: np.dtype(
        [
            *_COMMON,
            ("ltp", "<i8"),
            ("ltq", "<i8"),
            ("atp", "<i8"),
            ("volume", "<i8"),
            ("tbq", "<f8"),
            ("tsq", "<f8"),
            ("open", "<i8"),
            ("high", "<i8"),
            ("low", "<i8"),
            ("close", "<i8"),
        ]
    ),
    Mode.DEPTH: np.dtype([*_COMMON, ("bids", _LEVEL20_DT, (20,)), ("asks", _LEVEL20_DT, (20,))]),
}
_DTYPES[Mode.SNAP_QUOTE] = np.dtype(
    [
        *_DTYPES[Mode.QUOTE].descr,
        ("ltt", "<i8"),
        ("oi", "<i8"),
        ("oi_pct", "<i8"),
        ("book", _LEVEL5_DT, (10,)),
        ("limits", "<i8", (4,)),
    ]
)
for _m, _dt in _DTYPES.items():
    assert _dt.itemsize == PACKET_LENGTHS[_m], (_m, _dt.itemsize)

_COLUMNS = ("ltp", "volume", "oi", "close", "bid", "ask", "bid_qty", "ask_qty")


@dataclass(slots=True)
class BatchTicks:
    """Many packets as aligned columns (rupees; NaN where the packet's mode has no such field).
    `rejected` counts messages that were not packets; `first_error` says what the first was."""

    token: np.ndarray  # bytes (S25, NULs stripped)
    mode: np.ndarray
    exchange: np.ndarray
    time_ms: np.ndarray
    ltp: np.ndarray
    volume: np.ndarray
    oi: np.ndarray
    close: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_qty: np.ndarray
    ask_qty: np.ndarray
    rejected: int = 0
    first_error: str | None = field(default=None)

    def __len__(self) -> int:
        return int(self.token.shape[0])


def _empty_columns(n: int) -> dict[str, np.ndarray]:
    return {name: np.full(n, np.nan) for name in _COLUMNS}


def _best(price: np.ndarray, qty: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first level where `mask` holds, per row (NaN when none, or its price is 0)."""
    first = mask.argmax(axis=1)
    rows = np.arange(price.shape[0])
    found = mask[rows, first]
    p = price[rows, first].astype(np.float64) / _PAISE
    q = qty[rows, first].astype(np.float64)
    bad = ~found | (p <= 0)
    p[bad] = np.nan
    q[bad] = np.nan
    return p, q


def _group(mode: Mode, arr: np.ndarray) -> dict[str, np.ndarray]:
    cols = _empty_columns(arr.shape[0])
    if mode is not Mode.DEPTH:
        cols["ltp"] = arr["ltp"] / _PAISE
    if mode in (Mode.QUOTE, Mode.SNAP_QUOTE):
        cols["volume"] = arr["volume"].astype(np.float64)
        cols["close"] = arr["close"] / _PAISE
    if mode is Mode.SNAP_QUOTE:
        cols["oi"] = arr["oi"].astype(np.float64)
        book = arr["book"]
        flag = book["flag"]
        cols["bid"], cols["bid_qty"] = _best(book["price"], book["qty"], flag == 1)
        cols["ask"], cols["ask_qty"] = _best(book["price"], book["qty"], flag == 0)
    elif mode is Mode.DEPTH:
        every = np.ones((arr.shape[0], 20), dtype=bool)
        cols["bid"], cols["bid_qty"] = _best(arr["bids"]["price"], arr["bids"]["qty"], every)
        cols["ask"], cols["ask_qty"] = _best(arr["asks"]["price"], arr["asks"]["qty"], every)
    return cols


def parse_batch(messages: Sequence[bytes]) -> BatchTicks:
    """Decode many binary messages into columns, in arrival order. Messages that are not
    packets are counted in `rejected`, never raised: one bad packet must not cost the batch."""
    by_length: dict[int, list[bytes]] = {}
    order: dict[int, list[int]] = {}
    rejected = 0
    first_error: str | None = None
    for i, msg in enumerate(messages):
        n = len(msg)
        if n in _MODE_OF_LENGTH:
            by_length.setdefault(n, []).append(msg)
            order.setdefault(n, []).append(i)
        else:
            rejected += 1
            if first_error is None:
                first_error = f"a message of {n} bytes is no packet length"
    parts: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
    for n, msgs in by_length.items():
        mode = _MODE_OF_LENGTH[n]
        arr = np.frombuffer(b"".join(msgs), dtype=_DTYPES[mode])
        idx = np.asarray(order[n], dtype=np.int64)
        ok = arr["mode"] == mode.value
        if not ok.all():
            bad = int((~ok).sum())
            rejected += bad
            if first_error is None:
                first_error = f"{bad} message(s) of {n} bytes with a mode other than {mode.name}"
            arr, idx = arr[ok], idx[ok]
        parts.append((arr, idx, _group(mode, arr)))
    return _assemble(parts, rejected, first_error)


def _assemble(
    parts: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
    rejected: int,
    first_error: str | None,
) -> BatchTicks:
    if not parts:
        head = [np.empty(0, dtype="S25")] + [np.empty(0, dtype=t) for t in ("u1", "u1", "i8")]
        return _ticks(head, _empty_columns(0), rejected, first_error)
    if len(parts) == 1:
        arr, _, cols = parts[0]
        head = [arr["token"], arr["mode"], arr["exchange"], arr["time"]]
        return _ticks(head, cols, rejected, first_error)
    # Several modes in one batch: put them back in arrival order so a later packet of a token
    # overwrites an earlier one when the chain applies them.
    sort = np.argsort(np.concatenate([idx for _, idx, _ in parts]), kind="stable")

    def cat(pick: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pick)[sort]

    head = [cat([a[name] for a, _, _ in parts]) for name in ("token", "mode", "exchange", "time")]
    cols = {name: cat([c[name] for _, _, c in parts]) for name in _COLUMNS}
    return _ticks(head, cols, rejected, first_error)


def _ticks(
    head: list[np.ndarray], cols: dict[str, np.ndarray], rejected: int, first_error: str | None
) -> BatchTicks:
    token, mode, exchange, time_ms = head
    return BatchTicks(
        token=token,
        mode=mode,
        exchange=exchange,
        time_ms=time_ms,
        ltp=cols["ltp"],
        volume=cols["volume"],
        oi=cols["oi"],
        close=cols["close"],
        bid=cols["bid"],
        ask=cols["ask"],
        bid_qty=cols["bid_qty"],
        ask_qty=cols["ask_qty"],
        rejected=rejected,
        first_error=first_error,
    )
