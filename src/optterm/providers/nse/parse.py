"""Pure parsing of NSE option-chain JSON into ChainSnapshots (no I/O).

NSE has served three shapes, all handled here and detected from the payload's own keys, never
from the URL it came from (the site has answered old URLs with new shapes before):

* ``GETQUOTE`` (2026 ``GetQuoteApi?functionName=getOptionChainData``): a flat
  ``{timestamp, underlyingValue, data: [...]}`` for one expiry; rows carry ``expiryDates`` as
  ``DD-MM-YYYY``; legs quote ``buyPrice1``/``sellPrice1``.
* ``V3`` (Dec-2025 ``option-chain-v3``): ``records``/``filtered`` like the legacy shape, one
  expiry per payload, rows keyed ``expiryDates`` (a string); legs may quote either
  ``buyPrice1``/``sellPrice1`` or ``bidprice``/``askPrice``.
* ``LEGACY`` (``option-chain-indices`` / ``-equities``): ``records.data`` with *all* expiries
  mixed, rows keyed ``expiryDate`` (``DD-Mon-YYYY``), legs quote ``bidprice``/``askPrice``.

Normalisation decisions (the ChainSnapshot contract is "NaN = no value", model.py):

* a row without a CE (or PE) leg gives NaN in every column of that side, never 0;
* ``impliedVolatility`` is a percentage; 0 means "NSE could not solve it" (far OTM, illiquid,
  ITM on expiry day), so 0 → NaN and the rest is divided by 100;
* ``lastPrice`` 0 means the strike never traded (NSE shows 0 with pChange -100), so → NaN;
* ``bidprice``/``askPrice`` 0 means an empty side of the book (no real quote is below one tick),
  so → NaN;
* open interest, its change and volume keep 0 (a listed contract with no OI is a fact), and
  fractional OI (contracts from before a lot-size change) is kept as is;
* a leg's previous close is ``lastPrice - change`` (NSE gives the change, not the close),
  rounded to the paisa to drop float noise such as ``-116.29999999999998``; NaN where the leg
  never traded (``lastPrice`` 0);
* the quantities on the best bid and offer (``bidQty``/``askQty``, or ``buyQuantity1``/
  ``sellQuantity1``) are in units of the underlying; 0, or a side without a price, is NaN;
* the underlying's previous close is ``records.index.previousClose`` where the payload has that
  block (legacy index chains); the other shapes do not carry it (the client may add it);
* numbers may arrive as ints, floats or numeric strings; anything else in a cell (``"-"``,
  None, a dict, a non-finite or a negative price) is NaN for that cell only;
* a structural problem (no strikes, a strike that is not a positive number, duplicate strikes,
  no timestamp, no spot, an unparseable date) makes the whole payload a BadPayload: an empty
  or half-read chain is never presented as data.

Any exception raised while parsing becomes BadPayload, so callers only ever see ProviderError.

Over 600 lines because the three chain shapes, the expiry lists and the index board share one
set of normalisation rules (numbers, dates, NaN) and one error contract; they are one module so
that a rule is written once.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import numpy as np

from optterm.market import IST
from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs
from optterm.providers.base import BadPayload, ProviderError

__all__ = [
    "FEED",
    "INDEX_NAMES",
    "PROVIDER",
    "VIX_NAME",
    "IndexBoard",
    "Shape",
    "as_bad_payload",
    "bad_payload_error",
    "detect_shape",
    "format_expiry",
    "loads",
    "number",
    "parse_chain",
    "parse_chains",
    "parse_date",
    "parse_expiries",
    "parse_index_board",
    "parse_spot",
    "parse_timestamp",
]

PROVIDER = "nse"
# The NSE website's JSON is what its public option-chain page shows: delayed by the exchange
# (and frozen at the close), never a live feed, so it must be labelled DELAYED on screen.
FEED = Feed.DELAYED

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Shape(enum.StrEnum):
    GETQUOTE = "getquote"
    V3 = "v3"
    LEGACY = "legacy"


# Leg columns in LEG_FIELDS order, each with the NSE keys that may carry it (first found wins).
# The prev_close column first holds NSE's `change`, and becomes lastPrice - change in _matrix.
_LEG_KEYS: tuple[tuple[str, ...], ...] = (
    ("openInterest",),
    ("changeinOpenInterest",),
    ("totalTradedVolume",),
    ("lastPrice",),
    ("bidprice", "buyPrice1"),
    ("askPrice", "sellPrice1"),
    ("impliedVolatility",),
    ("change",),
    ("bidQty", "buyQuantity1"),
    ("askQty", "sellQuantity1"),
)
assert len(_LEG_KEYS) == len(LEG_FIELDS)
_COL = {name: i for i, name in enumerate(LEG_FIELDS)}
# Columns where a negative number cannot be real data (oi_change and the change are signed).
_NON_NEGATIVE = [_COL[n] for n in ("oi", "volume", "ltp", "bid", "ask", "iv", "bid_qty", "ask_qty")]
# Columns where NSE writes 0 for "no value" (see the module docstring).
_ZERO_IS_MISSING = [_COL[n] for n in ("ltp", "bid", "ask", "iv", "bid_qty", "ask_qty")]
_MISSING_LEG = (None,) * len(LEG_FIELDS)

# Month names are matched by hand rather than with strptime("%b"): %b follows the process
# locale, and a front end that calls setlocale() must not break the parser.
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_MONTH_NAMES = {i: m.title() for m, i in _MONTHS.items()}


def as_bad_payload(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Any failure inside a parser is the payload's fault as far as callers are concerned."""

    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except ProviderError:
            raise
        except Exception as exc:
            raise BadPayload(
                PROVIDER, f"unexpected payload structure ({type(exc).__name__}: {exc})"
            ) from exc

    return wrapper


def bad_payload_error(message: str) -> BadPayload:
    return BadPayload(PROVIDER, message)


# -- scalars ----------------------------------------------------------------------------------


def parse_date(text: object) -> date:
    """``14-Jul-2026`` (legacy, v3, dropdown) or ``14-07-2026`` (GetQuoteApi rows) as a date."""
    if not isinstance(text, str):
        raise bad_payload_error(f"expected a date string, got {type(text).__name__} {text!r:.40}")
    parts = text.strip().split("-")
    if len(parts) != 3:
        raise bad_payload_error(
            f"unrecognised date {text!r:.40} (expected DD-Mon-YYYY or DD-MM-YYYY)"
        )
    day, month, year = parts
    if len(year) != 4 or not year.isdigit() or not day.isdigit():
        raise bad_payload_error(
            f"unrecognised date {text!r:.40} (expected DD-Mon-YYYY or DD-MM-YYYY)"
        )
    month_no = int(month) if month.isdigit() else _MONTHS.get(month.upper())
    if month_no is None:
        raise bad_payload_error(f"unrecognised month in date {text!r:.40}")
    try:
        return date(int(year), month_no, int(day))
    except ValueError as exc:
        raise bad_payload_error(f"impossible date {text!r:.40} ({exc})") from None


def format_expiry(expiry: date) -> str:
    """An expiry as NSE's URLs want it: ``14-Jul-2026`` (English month, whatever the locale)."""
    return f"{expiry.day:02d}-{_MONTH_NAMES[expiry.month]}-{expiry.year:04d}"


def parse_timestamp(text: object) -> datetime:
    """NSE's ``17-Jul-2025 15:30:00`` (IST wall time, no zone) as a UTC-aware datetime."""
    if not isinstance(text, str) or not text.strip():
        raise bad_payload_error(f"missing or non-text timestamp {text!r:.40}")
    day_part, _, time_part = text.strip().partition(" ")
    day = parse_date(day_part)
    pieces = time_part.strip().split(":") if time_part.strip() else []
    if not 2 <= len(pieces) <= 3 or not all(p.isdigit() for p in pieces):
        raise bad_payload_error(
            f"unrecognised timestamp {text!r:.40} (expected DD-Mon-YYYY HH:MM:SS)"
        )
    hour, minute, second = (int(p) for p in [*pieces, "0"][:3])
    try:
        local = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST)
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise bad_payload_error(f"impossible timestamp {text!r:.40} ({exc})") from None


def number(value: object) -> float:
    """One cell as float; NaN for anything that is not a finite number (see module docstring)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, int | float):
        try:
            out = float(value)
        except OverflowError:
            return math.nan
    elif isinstance(value, str):
        try:
            out = float(value.strip().replace(",", ""))
        except ValueError:
            return math.nan
    else:
        return math.nan
    return out if math.isfinite(out) else math.nan


# -- shape ------------------------------------------------------------------------------------


@as_bad_payload
def loads(raw: bytes | str) -> Any:
    """JSON text → Python objects; HTML block pages and broken JSON become BadPayload."""
    head = raw[:200].lstrip()[:1]
    if head in (b"<", "<"):
        raise bad_payload_error(
            "expected JSON, got an HTML page (an NSE/Akamai block or 'not found' page)"
        )
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad_payload_error(f"body is not valid JSON ({type(exc).__name__}: {exc})") from None


def _records(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    records = payload["records"]
    if records is None:
        raise bad_payload_error(
            "'records' is null: NSE served no chain (blocked session or no data)"
        )
    if not isinstance(records, Mapping):
        raise bad_payload_error(f"'records' is a {type(records).__name__}, expected an object")
    return records


def _rows_of(payload: Mapping[str, Any], shape: Shape) -> list[Any]:
    rows = payload.get("data") if shape is Shape.GETQUOTE else _records(payload).get("data")
    if not isinstance(rows, list):
        raise bad_payload_error(f"chain rows ('data') are a {type(rows).__name__}, expected a list")
    if not rows:
        raise bad_payload_error("the chain has no rows: NSE answered with an empty option chain")
    return rows


@as_bad_payload
def detect_shape(payload: object) -> Shape:
    """Which of the three NSE chain shapes `payload` is, or BadPayload saying what it is not."""
    if not isinstance(payload, Mapping):
        raise bad_payload_error(f"expected a JSON object, got {type(payload).__name__}")
    if not payload:
        raise bad_payload_error("empty JSON object {}: NSE answers this when it blocks the session")
    if "records" in payload:
        rows = _rows_of(payload, Shape.LEGACY)
        first = rows[0]
        if isinstance(first, Mapping) and isinstance(first.get("expiryDates"), str):
            return Shape.V3
        return Shape.LEGACY
    if "data" in payload:
        _rows_of(payload, Shape.GETQUOTE)
        return Shape.GETQUOTE
    if "expiryDates" in payload:
        raise bad_payload_error(
            "this is an expiry list (dropdown/contract-info), not an option chain"
        )
    keys = ", ".join(sorted(map(str, payload))[:8])
    raise bad_payload_error(f"unrecognised payload: no 'records' or 'data' (keys: {keys})")


# -- expiries ---------------------------------------------------------------------------------


@as_bad_payload
def parse_expiries(payload: object) -> list[date]:
    """Expiries listed in any NSE payload, nearest first.

    Accepts the GetQuoteApi dropdown and v3 contract-info (``{"expiryDates": [...]}``), a
    legacy/v3 chain (``records.expiryDates``, or its rows when that list is absent) and a
    GetQuoteApi chain (its rows).
    """
    if not isinstance(payload, Mapping):
        raise bad_payload_error(f"expected a JSON object, got {type(payload).__name__}")
    if not payload:
        raise bad_payload_error("empty JSON object {}: NSE answers this when it blocks the session")
    listed: object = None
    if "records" in payload:
        listed = _records(payload).get("expiryDates")
    elif "expiryDates" in payload:
        listed = payload["expiryDates"]
        if listed is None:
            raise bad_payload_error("'expiryDates' is null: NSE listed no expiries")
    if listed is None:
        shape = detect_shape(payload)
        groups = _group_rows(_rows_of(payload, shape))
        return sorted(groups)
    if not isinstance(listed, list):
        raise bad_payload_error(f"'expiryDates' is a {type(listed).__name__}, expected a list")
    expiries = sorted({parse_date(text) for text in listed})
    if not expiries:
        raise bad_payload_error("NSE listed no expiries")
    return expiries


# -- chains -----------------------------------------------------------------------------------


def _row_expiry(row: Mapping[str, Any]) -> object:
    text = row.get("expiryDate")
    if text is None:
        text = row.get("expiryDates")
    if text is None:
        for side in ("CE", "PE"):
            leg = row.get(side)
            if isinstance(leg, Mapping) and leg.get("expiryDate") is not None:
                return leg["expiryDate"]
    return text


class _Group:
    """The rows of one expiry, collected before they become numpy columns."""

    __slots__ = ("ce", "pe", "strikes")

    def __init__(self) -> None:
        self.strikes: list[object] = []
        self.ce: list[Mapping[str, Any] | None] = []
        self.pe: list[Mapping[str, Any] | None] = []


def _leg(row: Mapping[str, Any], side: str, index: int) -> Mapping[str, Any] | None:
    leg = row.get(side)
    if leg is None or isinstance(leg, Mapping):
        return leg or None
    raise bad_payload_error(
        f"row {index}: {side} leg is a {type(leg).__name__}, expected an object"
    )


def _group_rows(rows: Iterable[Any]) -> dict[date, _Group]:
    groups: dict[date, _Group] = {}
    # Thousands of rows share a handful of date strings; parse each string once.
    seen: dict[str, date] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise bad_payload_error(f"row {i} is a {type(row).__name__}, expected an object")
        text = _row_expiry(row)
        if isinstance(text, str) and text in seen:
            expiry = seen[text]
        else:
            expiry = parse_date(text)
            if isinstance(text, str):
                seen[text] = expiry
        group = groups.get(expiry)
        if group is None:
            group = groups[expiry] = _Group()
        ce, pe = _leg(row, "CE", i), _leg(row, "PE", i)
        strike = row.get("strikePrice")
        if strike is None:
            strike = (ce or pe or {}).get("strikePrice")
        group.strikes.append(strike)
        group.ce.append(ce)
        group.pe.append(pe)
    return groups


def _leg_values(leg: Mapping[str, Any] | None) -> tuple[object, ...]:
    if leg is None:
        return _MISSING_LEG
    out = []
    for keys in _LEG_KEYS:
        value = leg.get(keys[0])
        if value is None and len(keys) > 1:
            value = leg.get(keys[1])
        out.append(value)
    return tuple(out)


def _matrix(legs: list[Mapping[str, Any] | None]) -> np.ndarray:
    """(n, len(LEG_FIELDS)) float64 of leg values, in LEG_FIELDS order, normalised as
    documented."""
    raw = [_leg_values(leg) for leg in legs]
    try:
        # One C-level conversion for the common all-numeric case (None becomes NaN).
        mat = np.array(raw, dtype=np.float64).reshape(len(raw), len(LEG_FIELDS))
    except (TypeError, ValueError, OverflowError):
        mat = np.array([[number(v) for v in values] for values in raw], dtype=np.float64)
        mat = mat.reshape(len(raw), len(LEG_FIELDS))
    if any(isinstance(v, bool) for values in raw for v in values):
        # numpy reads True as 1.0; a boolean is never a price or a quantity.
        mat = np.array([[number(v) for v in values] for values in raw], dtype=np.float64)
        mat = mat.reshape(len(raw), len(LEG_FIELDS))
    mat[~np.isfinite(mat)] = np.nan
    sub = mat[:, _NON_NEGATIVE]
    sub[sub < 0] = np.nan
    mat[:, _NON_NEGATIVE] = sub
    sub = mat[:, _ZERO_IS_MISSING]
    sub[sub == 0] = np.nan
    mat[:, _ZERO_IS_MISSING] = sub
    mat[:, _COL["iv"]] /= 100.0
    prev = np.round(mat[:, _COL["ltp"]] - mat[:, _COL["prev_close"]], 2)
    prev[~(prev > 0)] = np.nan  # NaN ltp or change, and nonsense
    mat[:, _COL["prev_close"]] = prev
    # A quantity on an empty side of the book is not a quote.
    for qty, price in (("bid_qty", "bid"), ("ask_qty", "ask")):
        mat[np.isnan(mat[:, _COL[price]]), _COL[qty]] = np.nan
    return mat


def _strike_column(values: list[object], expiry: date) -> np.ndarray:
    try:
        strikes = np.array(values, dtype=np.float64)
        if strikes.ndim != 1 or any(isinstance(v, bool) for v in values):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        strikes = np.array([number(v) for v in values], dtype=np.float64)
    bad = ~(np.isfinite(strikes) & (strikes > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise bad_payload_error(f"{expiry}: strike {values[i]!r:.40} is not a positive number")
    return strikes


def _build(
    group: _Group,
    *,
    symbol: str,
    expiry: date,
    shape: Shape,
    provider_ts: datetime,
    fetched_at: datetime,
    spot: float,
    lot_size: int,
    prev_close: float,
    listed: tuple[date, ...],
) -> ChainSnapshot:
    strikes = _strike_column(group.strikes, expiry)
    order = np.argsort(strikes, kind="stable")
    strikes = strikes[order]
    dup = np.diff(strikes) == 0
    if dup.any():
        raise bad_payload_error(
            f"{symbol} {expiry}: strike {strikes[int(np.argmax(dup))]:g} appears twice"
        )
    ce = _matrix(group.ce)[order]
    pe = _matrix(group.pe)[order]
    chain = ChainSnapshot(
        symbol=symbol,
        expiry=expiry,
        provider=PROVIDER,
        feed=FEED,
        provider_ts=provider_ts,
        fetched_at=fetched_at,
        spot=spot,
        lot_size=lot_size,
        strikes=strikes,
        ce=Legs(*ce.T),
        pe=Legs(*pe.T),
        meta={"shape": shape.value},
        prev_close=prev_close,
        expiries=listed,
    )
    if not (chain.ce.present().any() or chain.pe.present().any()):
        raise bad_payload_error(f"{symbol} {expiry}: no strike carries open interest or a price")
    return chain


def _header(payload: Mapping[str, Any], shape: Shape) -> Mapping[str, Any]:
    return payload if shape is Shape.GETQUOTE else _records(payload)


def _spot(payload: Mapping[str, Any], shape: Shape, rows: list[Any]) -> float:
    spot = number(_header(payload, shape).get("underlyingValue"))
    if spot > 0:
        return spot
    # Every leg repeats the underlying's value; use it when the header lacks one.
    for row in rows:
        if isinstance(row, Mapping):
            for side in ("CE", "PE"):
                leg = row.get(side)
                if isinstance(leg, Mapping) and number(leg.get("underlyingValue")) > 0:
                    return number(leg.get("underlyingValue"))
    raise bad_payload_error("no positive 'underlyingValue' (spot) anywhere in the payload")


@as_bad_payload
def parse_spot(payload: object) -> float:
    """The underlying's value carried by a chain payload of any shape."""
    shape = detect_shape(payload)
    assert isinstance(payload, Mapping)
    return _spot(payload, shape, _rows_of(payload, shape))


def _prev_close(payload: Mapping[str, Any], shape: Shape) -> float:
    """The underlying's previous close, where the payload says it (NaN elsewhere)."""
    index = None if shape is Shape.GETQUOTE else _records(payload).get("index")
    value = number(index.get("previousClose")) if isinstance(index, Mapping) else math.nan
    return value if value > 0 else math.nan


def _listed(payload: Mapping[str, Any], shape: Shape) -> tuple[date, ...]:
    """The expiries the payload lists for the symbol (legacy `records.expiryDates`), or ()."""
    listed = None if shape is Shape.GETQUOTE else _records(payload).get("expiryDates")
    if not isinstance(listed, list):
        return ()
    return tuple(sorted({parse_date(text) for text in listed}))


@dataclass(frozen=True, slots=True)
class _Prepared:
    shape: Shape
    groups: dict[date, _Group]
    provider_ts: datetime
    spot: float
    prev_close: float
    listed: tuple[date, ...]


def _prepare(payload: object, symbol: str, lot_size: int) -> _Prepared:
    shape = detect_shape(payload)
    assert isinstance(payload, Mapping)
    if not isinstance(lot_size, int) or lot_size <= 0:
        raise ValueError(f"lot_size must be a positive int, got {lot_size!r}")
    rows = _rows_of(payload, shape)
    provider_ts = parse_timestamp(_header(payload, shape).get("timestamp"))
    spot = _spot(payload, shape, rows)
    groups = _group_rows(rows)
    return _Prepared(
        shape, groups, provider_ts, spot, _prev_close(payload, shape), _listed(payload, shape)
    )


@as_bad_payload
def parse_chains(
    payload: object, symbol: str, *, lot_size: int, fetched_at: datetime
) -> dict[date, ChainSnapshot]:
    """Every expiry in `payload` as a ChainSnapshot, keyed and ordered by expiry.

    A legacy payload carries all expiries; GetQuoteApi and v3 payloads carry one. `lot_size`
    is the caller's (NSE's chain JSON does not carry it); `fetched_at` must be tz-aware.
    """
    p = _prepare(payload, symbol, lot_size)
    return {
        expiry: _chain_of(p, expiry, symbol, lot_size, fetched_at) for expiry in sorted(p.groups)
    }


@as_bad_payload
def parse_chain(
    payload: object, symbol: str, expiry: date, *, lot_size: int, fetched_at: datetime
) -> ChainSnapshot:
    """The chain of one `expiry` from `payload`; BadPayload if the payload does not carry it."""
    p = _prepare(payload, symbol, lot_size)
    group = p.groups.get(expiry)
    if group is None:
        listed = ", ".join(format_expiry(d) for d in sorted(p.groups)) or "none"
        raise bad_payload_error(
            f"{symbol}: the payload has no expiry {format_expiry(expiry)} (has: {listed})"
        )
    return _chain_of(p, expiry, symbol, lot_size, fetched_at)


def _chain_of(
    p: _Prepared, expiry: date, symbol: str, lot_size: int, fetched_at: datetime
) -> ChainSnapshot:
    """One expiry's chain out of a prepared payload."""
    return _build(
        p.groups[expiry],
        symbol=symbol,
        expiry=expiry,
        shape=p.shape,
        provider_ts=p.provider_ts,
        fetched_at=fetched_at,
        spot=p.spot,
        lot_size=lot_size,
        prev_close=p.prev_close,
        listed=p.listed,
    )


# -- the index board (/api/allIndices) ---------------------------------------------------------

# What NSE's index list calls each underlying with options: its rows carry the name twice,
# `index` ("NIFTY FINANCIAL SERVICES") and the shorter `indexSymbol` ("NIFTY FIN SERVICE"), and
# either may be matched. The rows have the shape of a legacy chain's `records.index` block.
INDEX_NAMES: dict[str, tuple[str, ...]] = {
    "NIFTY": ("NIFTY 50",),
    "BANKNIFTY": ("NIFTY BANK",),
    "FINNIFTY": ("NIFTY FINANCIAL SERVICES", "NIFTY FIN SERVICE"),
    "MIDCPNIFTY": ("NIFTY MIDCAP SELECT", "NIFTY MID SELECT"),
    "NIFTYNXT50": ("NIFTY NEXT 50",),
}
VIX_NAME = "INDIA VIX"


@dataclass(frozen=True, slots=True)
class IndexBoard:
    """NSE's list of index values: (last, previous close) by upper-case index name, and the
    board's own time (its `timestamp`, IST wall time; None when it has none)."""

    rows: dict[str, tuple[float, float]]
    ts: datetime | None

    def get(self, *names: str) -> tuple[float, float] | None:
        for name in names:
            row = self.rows.get(name.upper())
            if row is not None:
                return row
        return None


@as_bad_payload
def parse_index_board(payload: object) -> IndexBoard:
    """`GET /api/allIndices`: `{"data": [{"index", "indexSymbol", "last", "previousClose", …}],
    "timestamp": "16-Oct-2023 15:30:00", …}`. A value that is not a positive number is NaN."""
    if not isinstance(payload, Mapping):
        raise bad_payload_error(f"expected a JSON object, got {type(payload).__name__}")
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise bad_payload_error("the index list has no 'data' rows")
    rows: dict[str, tuple[float, float]] = {}
    for row in data:
        if not isinstance(row, Mapping):
            continue
        last, prev = number(row.get("last")), number(row.get("previousClose"))
        value = (last if last > 0 else math.nan, prev if prev > 0 else math.nan)
        for key in ("index", "indexSymbol"):
            name = row.get(key)
            if isinstance(name, str) and name.strip():
                rows.setdefault(name.strip().upper(), value)
    if not rows:
        raise bad_payload_error("the index list names no index")
    stamp = payload.get("timestamp")
    ts = parse_timestamp(stamp) if isinstance(stamp, str) and stamp.strip() else None
    return IndexBoard(rows, ts)
