"""Pure parsing of the NSE quote payloads read around a chain: the symbol's futures and a
stock's previous close. No I/O. Each comes in two shapes, detected from the payload's keys:

Futures (the derivative quote):

* 2026 ``GetQuoteApi?functionName=getSymbolDerivativesData&symbol=NIFTY``: ``{data: [flat
  rows], timestamp}``; a future's row has ``instrumentType`` ``FUTIDX``/``FUTSTK``,
  ``underlying``, ``expiryDate``, ``lastPrice``, ``prevClose``, ``change``, ``openInterest``.
* legacy ``/api/quote-derivative?symbol=NIFTY``: ``{info: {symbol}, underlyingValue,
  fut_timestamp, stocks: [{metadata: {instrumentType: "Index Futures"/"Stock Futures",
  expiryDate, lastPrice, prevClose, change, …}, marketDeptOrderBook: {…}}], …}``.

Option rows of either shape are ignored (the chain endpoints serve the options).

Previous close of a stock (the equity quote):

* 2026 ``GetQuoteApi?functionName=getSymbolData&marketType=N&series=EQ&symbol=RELIANCE``:
  ``{equityResponse: [{metaData: {symbol, previousClose, …}, lastUpdateTime, …}]}``.
* legacy ``/api/quote-equity?symbol=RELIANCE``: ``{info: {symbol}, priceInfo: {lastPrice,
  previousClose, …}, metadata: {lastUpdateTime}, …}``.

Every payload names its symbol; one about another symbol is BadPayload, because a cached or
redirected answer for the wrong underlying would show a believable, wrong basis. Prices follow
parse.py's rules: a value that is not a positive number is NaN; a future's previous close is
``prevClose``, else ``lastPrice - change``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from optterm.providers.nse.parse import (
    as_bad_payload,
    bad_payload_error,
    number,
    parse_date,
    parse_timestamp,
)

__all__ = ["FUTURES_TYPES", "EquityQuote", "FuturesBoard", "parse_equity_quote", "parse_futures"]

# What each shape calls a future (legacy: the words; 2026: the exchange's instrument codes).
FUTURES_TYPES = frozenset({"Index Futures", "Stock Futures", "FUTIDX", "FUTSTK"})


@dataclass(frozen=True, slots=True)
class FuturesBoard:
    """A symbol's listed futures: (last, previous close) by expiry, and the payload's own time
    of them (``timestamp``/``fut_timestamp``; None when it has none)."""

    symbol: str
    contracts: dict[date, tuple[float, float]]
    ts: datetime | None

    def of_month(self, expiry: date) -> tuple[date, float, float] | None:
        """The future expiring in `expiry`'s month (the month's future of a weekly expiry too),
        as (its expiry, last, previous close); None when no such month is listed."""
        for due in sorted(self.contracts):
            if (due.year, due.month) == (expiry.year, expiry.month):
                return (due, *self.contracts[due])
        return None


@dataclass(frozen=True, slots=True)
class EquityQuote:
    symbol: str
    prev_close: float
    ts: datetime | None


def _positive(value: object) -> float:
    x = number(value)
    return x if x > 0 else math.nan


def _same_symbol(named: object, symbol: str, what: str) -> None:
    if not isinstance(named, str) or not named.strip():
        raise bad_payload_error(f"{what} for {symbol} names no symbol")
    if named.strip().upper() != symbol.upper():
        raise bad_payload_error(f"{what} for {symbol} is about {named.strip()!r}")


def _stamp(value: object) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) and value.strip() else None


def _object(payload: object, symbol: str, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping) or not payload:
        raise bad_payload_error(f"{what} for {symbol}: expected a non-empty JSON object")
    return payload


def _future(fields: Mapping[str, Any]) -> tuple[date, float, float] | None:
    """(expiry, last, previous close) of one future's fields; None for any other instrument."""
    if fields.get("instrumentType") not in FUTURES_TYPES:
        return None
    last = _positive(fields.get("lastPrice"))
    prev = _positive(fields.get("prevClose"))
    if math.isnan(prev):
        prev = _positive(round(last - number(fields.get("change")), 2))
    return parse_date(fields.get("expiryDate")), last, prev


@as_bad_payload
def parse_futures(payload: object, symbol: str) -> FuturesBoard:
    """The futures listed in a derivative quote for `symbol`, of either shape."""
    doc = _object(payload, symbol, "derivative quote")
    rows: list[Mapping[str, Any]] = []
    if "stocks" in doc:
        info = doc.get("info")
        _same_symbol(info.get("symbol") if isinstance(info, Mapping) else None, symbol, "quote")
        stocks = doc["stocks"]
        if not isinstance(stocks, list):
            raise bad_payload_error(f"derivative quote for {symbol}: 'stocks' is not a list")
        rows = [r["metadata"] for r in stocks if isinstance(r, Mapping) and _is_map(r, "metadata")]
        ts = _stamp(doc.get("fut_timestamp"))
    elif isinstance(doc.get("data"), list):
        rows = [r for r in doc["data"] if isinstance(r, Mapping)]
        for row in rows:
            _same_symbol(row.get("underlying"), symbol, "derivative quote")
        ts = _stamp(doc.get("timestamp"))
    else:
        keys = ", ".join(sorted(map(str, doc))[:8])
        raise bad_payload_error(
            f"derivative quote for {symbol}: no 'stocks' or 'data' (keys: {keys})"
        )
    contracts: dict[date, tuple[float, float]] = {}
    for fields in rows:
        got = _future(fields)
        if got is not None and not math.isnan(got[1]):
            contracts.setdefault(got[0], (got[1], got[2]))
    if not contracts:
        raise bad_payload_error(f"derivative quote for {symbol} lists no future with a price")
    return FuturesBoard(symbol.upper(), contracts, ts)


def _is_map(row: Mapping[str, Any], key: str) -> bool:
    return isinstance(row.get(key), Mapping)


@as_bad_payload
def parse_equity_quote(payload: object, symbol: str) -> EquityQuote:
    """A stock's previous close from an equity quote of either shape."""
    doc = _object(payload, symbol, "equity quote")
    if "equityResponse" in doc:
        answers = doc["equityResponse"]
        first = answers[0] if isinstance(answers, list) and answers else None
        if not isinstance(first, Mapping) or not _is_map(first, "metaData"):
            raise bad_payload_error(
                f"equity quote for {symbol}: 'equityResponse' carries no 'metaData'"
            )
        meta = first["metaData"]
        _same_symbol(meta.get("symbol"), symbol, "equity quote")
        prev, ts = _positive(meta.get("previousClose")), _stamp(first.get("lastUpdateTime"))
    elif _is_map(doc, "priceInfo"):
        info = doc.get("info")
        _same_symbol(info.get("symbol") if isinstance(info, Mapping) else None, symbol, "quote")
        prev = _positive(doc["priceInfo"].get("previousClose"))
        meta = doc.get("metadata")
        ts = _stamp(meta.get("lastUpdateTime")) if isinstance(meta, Mapping) else None
    else:
        keys = ", ".join(sorted(map(str, doc))[:8])
        raise bad_payload_error(
            f"equity quote for {symbol}: no 'equityResponse' or 'priceInfo' ({keys})"
        )
    if math.isnan(prev):
        raise bad_payload_error(f"equity quote for {symbol} has no positive previous close")
    return EquityQuote(symbol.upper(), prev, ts)
