"""Angel One's instrument master (`OpenAPIScripMaster.json`): download, cache, index.

The master is one JSON array of ~160k rows and tens of MB, republished daily with no SLA. It is the
only place SmartAPI's numeric tokens, trading symbols, lot sizes
and tick sizes come from; symbols are looked up here, never built by hand.

Caching: the file is downloaded at most once per *edition*, the latest IST trading day whose
`refresh_after` time (default 08:30 IST, before pre-open; Angel's publishing time is not
documented) has passed. So a copy fetched on Friday serves the whole weekend, and Monday's first
use after 08:30 fetches Monday's. The download streams into a temporary file beside the cache,
is parsed and sanity-checked (a non-empty list with OPTIDX rows), and only then atomically
renamed over the cache. A failed, truncated or garbage download never replaces the last good
copy: that copy stays in use, the failure is logged and shown in `status()`, and the next
attempt waits `retry_after_failure` seconds so a broken mirror is not hammered with 30 MB GETs.

Row format (real rows in fixtures/providers/smartapi_scripmaster_*.json): `strike` and
`tick_size` are strings ×100 (`"2440000.000000"` is the 24400 strike, `"5.000000"` is ₹0.05),
`expiry` is `"28JUL2026"` (some third-party copies have title case, so parsing ignores case),
`lotsize` is a string, and the option side is the `CE`/`PE` suffix of `symbol`. Currency options
(CDS, OPTCUR) scale the strike ×1e7 instead (`"832500000.000000"` is 83.25; a public test copied
from the live master shows it), their tick ×100 like the others (`"0.25"` is ₹0.0025).

Options on futures (MCX OPTFUT, CDS OPTCUR) are written on one futures contract, which the master
does not name: each series' underlying is the first futures of the same name and segment that
expires on or after the series (`underlying_future`). That is the rule the exchange states,
read on the master's own expiries, never a month name: an energy option expires two business
days before its futures (24-May options on the 28-May futures), and a bullion option after its
month's futures, so it sits on the next one ("May" GOLDM options of 27 May on the 5-Jun futures).

Over 600 lines because download, edition rules, validation, the atomic cache swap and the index
over ~160k rows are one lifecycle with one lock; each part is small.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx

from optterm.config import ANGELONE_MASTER_URL
from optterm.infra.filemode import make_dirs
from optterm.market import IST, MarketCalendar
from optterm.providers.base import (
    BadPayload,
    ProviderConnectionError,
    ProviderError,
    ServerError,
)
from optterm.providers.http import make_client, transport_errors
from optterm.providers.segments import plausible_underlying

__all__ = [
    "BUILTIN_INDEX_TOKENS",
    "DEFAULT_MASTER_URL",
    "MASTER_FILENAME",
    "MONTH_NUMBERS",
    "ON_FUTURES",
    "VIX_NAME",
    "Contract",
    "Future",
    "IndexInstrument",
    "InstrumentMaster",
    "MasterIndex",
    "MasterStatus",
    "ProgressCallback",
    "parse_expiry",
]

log = logging.getLogger(__name__)

DEFAULT_MASTER_URL = ANGELONE_MASTER_URL  # the settings' default, [providers.angelone]
MASTER_FILENAME = "OpenAPIScripMaster.json"
PROVIDER = "angelone"

ProgressCallback = Callable[[int, int | None], None]

_OPTION_TYPES = frozenset({"OPTIDX", "OPTSTK", "OPTFUT", "OPTCUR"})
_FUTURE_TYPES = frozenset({"FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR"})
# Options written on a futures contract rather than on a spot index or stock.
ON_FUTURES = frozenset({"OPTFUT", "OPTCUR"})
# When an underlying name has options on several segments, which one a chain means.
_EXCHANGE_PREFERENCE = ("NFO", "BFO", "MCX", "CDS")
# Segments indexed whatever the `names` filter says (MasterIndex.from_rows).
_ALWAYS_KEPT = frozenset({"MCX", "CDS"})
# The master's strike is ×100, except on CDS (×1e7).
_STRIKE_SCALE = {"CDS": 1e7}
MONTH_NUMBERS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_EXPIRY_RE = re.compile(r"^(\d{1,2})([A-Za-z]{3})(\d{4})$")
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Contract:
    """One option contract as the master lists it (prices in rupees, not ×100)."""

    token: str
    tradingsymbol: str
    name: str
    expiry: date
    expiry_code: str  # "28JUL2026": the spelling optionGreek's `expirydate` expects back
    strike: float
    option_type: str  # "CE" or "PE"
    lot_size: int
    tick_size: float
    exchange: str  # exch_seg: "NFO", "BFO", "MCX"
    instrument_type: str


@dataclass(frozen=True, slots=True)
class Future:
    """One futures contract as the master lists it (`NIFTY28JUL26FUT`, instrument FUTIDX)."""

    token: str
    tradingsymbol: str
    name: str
    expiry: date
    exchange: str  # exch_seg: "NFO", "BFO", "MCX"


@dataclass(frozen=True, slots=True)
class IndexInstrument:
    """A spot instrument (index AMXIDX row, or an equity's cash row) used for the underlying."""

    name: str
    token: str
    tradingsymbol: str
    exchange: str
    source: str  # "master" or "builtin"


# Used only when the master lacks the AMXIDX rows. The stale rows
# `26009 BANKNIFTY` / `26074 MIDCPNIFTY` (instrumenttype "") are deliberately not used: 26074 was
# seen returning empty data.
BUILTIN_INDEX_TOKENS: dict[str, IndexInstrument] = {
    name: IndexInstrument(name, token, symbol, "NSE", "builtin")
    for name, token, symbol in (
        ("NIFTY", "99926000", "Nifty 50"),
        ("BANKNIFTY", "99926009", "Nifty Bank"),
        ("FINNIFTY", "99926037", "Nifty Fin Service"),
        ("MIDCPNIFTY", "99926074", "NIFTY MID SELECT"),
        ("NIFTYNXT50", "99926013", "Nifty Next 50"),
        ("INDIA VIX", "99926017", "India VIX"),
    )
}
VIX_NAME = "INDIA VIX"  # the AMXIDX row's `name`


def parse_expiry(text: str) -> date:
    """`"28JUL2026"` (any case) → date; ValueError otherwise."""
    m = _EXPIRY_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a DDMMMYYYY expiry: {text!r}")
    month = MONTH_NUMBERS.get(m.group(2).upper())
    if month is None:
        raise ValueError(f"unknown month in expiry {text!r}")
    return date(int(m.group(3)), month, int(m.group(1)))


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("not a number")
    return float(value)


def _contract(row: Mapping[str, Any]) -> Contract | None:
    """The option contract in `row`, None for a non-option row; ValueError for a broken one."""
    itype = row.get("instrumenttype")
    if itype not in _OPTION_TYPES:
        return None
    symbol = str(row["symbol"])
    side = symbol[-2:].upper()
    if side not in ("CE", "PE"):
        raise ValueError("option symbol without CE/PE suffix")
    exchange = str(row.get("exch_seg", "")).upper()
    strike = _num(row["strike"]) / _STRIKE_SCALE.get(exchange, 100.0)
    lot = int(_num(row["lotsize"]))
    token = str(row["token"]).strip()
    name = str(row["name"]).strip().upper()
    if strike <= 0 or lot <= 0 or not token or not name:
        raise ValueError("option row with a non-positive strike or lot size")
    tick = _num(row.get("tick_size", "0") or "0") / 100.0
    code = str(row["expiry"]).strip().upper()
    return Contract(
        token=token,
        tradingsymbol=symbol,
        name=name,
        expiry=parse_expiry(code),
        expiry_code=code,
        strike=round(strike, 4),
        option_type=side,
        lot_size=lot,
        tick_size=tick,
        exchange=exchange,
        instrument_type=str(itype),
    )


def _future(row: Mapping[str, Any]) -> Future:
    """The futures contract in a FUTIDX/FUTSTK/FUTCOM row; ValueError for a broken one."""
    token = str(row["token"]).strip()
    name = str(row["name"]).strip().upper()
    if not token or not name:
        raise ValueError("futures row without a token or a name")
    return Future(
        token=token,
        tradingsymbol=str(row["symbol"]),
        name=name,
        expiry=parse_expiry(str(row["expiry"]).strip()),
        exchange=str(row.get("exch_seg", "")).upper(),
    )


def _by_preference(exchange: str) -> tuple[int, str]:
    return (
        _EXCHANGE_PREFERENCE.index(exchange) if exchange in _EXCHANGE_PREFERENCE else 99,
        exchange,
    )


class MasterIndex:
    """Lookups over the parsed master: options by (name, expiry, strike, side), futures by
    month, spot tokens."""

    def __init__(
        self,
        contracts: Iterable[Contract],
        indices: Mapping[str, IndexInstrument],
        equities: Mapping[str, IndexInstrument] | None = None,
        *,
        futures: Iterable[Future] = (),
        rows: int = 0,
        skipped: int = 0,
        index_option_rows: int = 0,
    ) -> None:
        by_key: dict[tuple[str, str], dict[date, dict[tuple[float, str], Contract]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for c in contracts:
            # First row wins on a duplicate (name, expiry, strike, side): the master is not
            # supposed to have any, and a stable choice beats the last one seen.
            by_key[(c.name, c.exchange)][c.expiry].setdefault((c.strike, c.option_type), c)
        self._options: dict[str, dict[date, list[Contract]]] = {}
        self._lookup: dict[str, dict[date, dict[tuple[float, str], Contract]]] = {}
        for name in sorted({n for n, _ in by_key}):
            exchanges = sorted((ex for n, ex in by_key if n == name), key=_by_preference)
            chosen = by_key[(name, exchanges[0])]
            self._lookup[name] = {e: dict(v) for e, v in chosen.items()}
            self._options[name] = {
                e: sorted(v.values(), key=lambda c: (c.strike, c.option_type))
                for e, v in chosen.items()
            }
        # Futures per name, preferred segment first, then by expiry (a name can be traded on
        # several segments; the one its options use comes first).
        self._futures: dict[str, list[Future]] = defaultdict(list)
        for f in sorted(futures, key=lambda f: (_by_preference(f.exchange), f.expiry)):
            self._futures[f.name].append(f)
        self._indices = dict(indices)
        self._equities = dict(equities or {})
        self.rows = rows
        self.skipped = skipped
        # OPTIDX rows in the source before any `names` filter: the "is this a master" check.
        self.index_option_rows = index_option_rows

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], names: Iterable[str] | None = None
    ) -> MasterIndex:
        """Index raw master rows; `names` limits which underlyings' NFO and BFO options are
        kept (every MCX and CDS option and futures row is: a few thousand, and the master is
        what says which commodities and currencies have options)."""
        wanted = {n.upper() for n in names} if names is not None else None
        contracts: list[Contract] = []
        futures: list[Future] = []
        indices: dict[str, IndexInstrument] = {}
        cash: dict[str, IndexInstrument] = {}
        total = skipped = optidx = 0
        for row in rows:
            total += 1
            if not isinstance(row, Mapping):
                skipped += 1
                continue
            try:
                itype = row.get("instrumenttype")
                if itype == "AMXIDX":
                    inst = IndexInstrument(
                        str(row["name"]).strip().upper(),
                        str(row["token"]).strip(),
                        str(row["symbol"]),
                        str(row.get("exch_seg", "")).upper(),
                        "master",
                    )
                    # NSE first: the same name can exist as an index on another segment.
                    if inst.name not in indices or inst.exchange == "NSE":
                        indices[inst.name] = inst
                    continue
                if itype == "" and row.get("exch_seg") == "NSE":
                    symbol = str(row.get("symbol", ""))
                    if symbol.endswith("-EQ"):
                        name = str(row["name"]).strip().upper()
                        cash[name] = IndexInstrument(
                            name, str(row["token"]).strip(), symbol, "NSE", "master"
                        )
                    continue
                keep = (
                    wanted is None
                    or str(row.get("name", "")).strip().upper() in wanted
                    or row.get("exch_seg") in _ALWAYS_KEPT
                )
                if itype in _FUTURE_TYPES:
                    if keep:
                        futures.append(_future(row))
                    continue
                if itype not in _OPTION_TYPES:
                    continue
                if itype == "OPTIDX":
                    optidx += 1
                if not keep:
                    continue
                contract = _contract(row)
            except (KeyError, ValueError, TypeError, OverflowError):
                skipped += 1
                continue
            if contract is not None:
                contracts.append(contract)
        names_with_options = {c.name for c in contracts}
        equities = {n: inst for n, inst in cash.items() if n in names_with_options}
        return cls(
            contracts,
            indices,
            equities,
            futures=futures,
            rows=total,
            skipped=skipped,
            index_option_rows=optidx,
        )

    # -- lookups ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Underlyings with at least one listed option."""
        return sorted(self._options)

    @property
    def option_count(self) -> int:
        return sum(len(v) for by_exp in self._options.values() for v in by_exp.values())

    def expiries(self, name: str, on_or_after: date | None = None) -> list[date]:
        """Listed expiries of `name`, nearest first (from `on_or_after` when given)."""
        listed = self._options.get(name.upper(), {})
        return sorted(e for e in listed if on_or_after is None or e >= on_or_after)

    def chain(self, name: str, expiry: date) -> list[Contract]:
        """All contracts of one expiry, sorted by strike then CE before PE."""
        return list(self._options.get(name.upper(), {}).get(expiry, ()))

    def strikes(self, name: str, expiry: date) -> list[float]:
        return sorted({c.strike for c in self.chain(name, expiry)})

    def option(self, name: str, expiry: date, strike: float, option_type: str) -> Contract | None:
        table = self._lookup.get(name.upper(), {}).get(expiry, {})
        return table.get((round(float(strike), 4), option_type.upper()))

    def lot_size(self, name: str, expiry: date) -> int | None:
        """The lot size of one expiry (lot sizes change between expiries; §4.1)."""
        lots = Counter(c.lot_size for c in self.chain(name, expiry))
        return lots.most_common(1)[0][0] if lots else None

    def tick_size(self, name: str, expiry: date) -> float | None:
        ticks = Counter(c.tick_size for c in self.chain(name, expiry) if c.tick_size > 0)
        return ticks.most_common(1)[0][0] if ticks else None

    def strike_step(self, name: str, expiry: date) -> float | None:
        """The most common gap between listed strikes (wings are often wider)."""
        strikes = self.strikes(name, expiry)
        gaps = Counter(round(b - a, 4) for a, b in itertools.pairwise(strikes))
        return gaps.most_common(1)[0][0] if gaps else None

    def exchange_of(self, name: str) -> str | None:
        """The segment (`exch_seg`) whose options of `name` are indexed; None if none are."""
        for listed in self._options.get(name.upper(), {}).values():
            return listed[0].exchange if listed else None
        return None

    def on_futures(self, name: str, expiry: date) -> bool:
        """True when the series' options are written on a futures contract (MCX, CDS)."""
        listed = self.chain(name, expiry)
        return bool(listed) and listed[0].instrument_type in ON_FUTURES

    def underlying_future(self, name: str, expiry: date) -> Future | None:
        """The futures contract an option series on futures is written on: the first futures
        of its name and segment expiring on or after the series (see the module docstring).
        None when the series is not on futures, or the master lists no such futures close
        enough to be it (segments.plausible_underlying)."""
        listed = self.chain(name, expiry)
        if not listed or listed[0].instrument_type not in ON_FUTURES:
            return None
        exchange = listed[0].exchange
        first = next(
            (
                f
                for f in self._futures.get(name.upper(), ())
                if f.exchange == exchange and f.expiry >= expiry
            ),
            None,
        )
        # A master without the right futures must not hand over the next month's instead.
        if first is None or not plausible_underlying(name, expiry, first.expiry):
            return None
        return first

    def future(self, name: str, expiry: date) -> Future | None:
        """The future that expires in the month of an option `expiry` (None when none is
        listed, as for expiries beyond the three listed futures months)."""
        month = (expiry.year, expiry.month)
        listed = self._futures.get(name.upper(), ())
        return next((f for f in listed if (f.expiry.year, f.expiry.month) == month), None)

    def index(self, name: str) -> IndexInstrument | None:
        """The spot instrument of an index (AMXIDX row, else the built-in table)."""
        key = name.upper()
        return self._indices.get(key) or BUILTIN_INDEX_TOKENS.get(key)

    def equity(self, name: str) -> IndexInstrument | None:
        """The NSE cash (-EQ) row of a stock that has options."""
        return self._equities.get(name.upper())

    def spot_instrument(self, name: str) -> IndexInstrument | None:
        return self.index(name) or self.equity(name)


def _sane(doc: object, *, min_rows: int) -> list[dict[str, Any]]:
    if not isinstance(doc, list):
        raise ValueError(f"expected a JSON array, got {type(doc).__name__}")
    if len(doc) < min_rows:
        raise ValueError(f"only {len(doc)} rows (expected at least {min_rows})")
    return doc


def _parse_file(path: Path, names: Iterable[str] | None, min_rows: int) -> MasterIndex:
    with path.open("rb") as fh:
        doc = json.load(fh)
    index = MasterIndex.from_rows(_sane(doc, min_rows=min_rows), names)
    if not index.index_option_rows:
        raise ValueError("no OPTIDX rows (not an instrument master, or a truncated one)")
    return index


@dataclass(frozen=True, slots=True)
class MasterStatus:
    """What the CLI/TUI shows about the master (no secrets here: the file is public)."""

    cache_path: Path
    downloaded_at: datetime | None
    edition: date | None
    current: bool  # the cached copy is today's edition
    rows: int | None
    options: int | None
    last_error: str | None
    downloading: tuple[int, int | None] | None = None  # (bytes so far, total) while downloading


class InstrumentMaster:
    """The instrument master, downloaded at most once per edition and cached in `cache_dir`.

    `now` gives the wall time (UTC-aware) that decides the edition; `clock` is monotonic and
    paces retries after a failure. `names` limits the underlyings whose options are indexed
    (None keeps every option row). `min_rows` is the smallest row count accepted as a master.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        *,
        url: str = DEFAULT_MASTER_URL,
        names: Iterable[str] | None = None,
        timeout: float = 60.0,
        calendar: MarketCalendar | None = None,
        refresh_after: dtime = dtime(8, 30),
        retry_after_failure: float = 900.0,
        min_rows: int = 1,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.url = url
        self.names = None if names is None else frozenset(n.upper() for n in names)
        self.timeout = timeout
        self.calendar = calendar or MarketCalendar()
        self.refresh_after = refresh_after
        self.retry_after_failure = retry_after_failure
        self.min_rows = max(1, min_rows)
        self._now = now or (lambda: datetime.now(UTC))
        self._clock = clock
        self._index: MasterIndex | None = None
        self._downloaded_at: datetime | None = None
        self._loaded_from_disk = False
        self._next_attempt: float | None = None
        self._lock = asyncio.Lock()
        self.last_error: str | None = None
        self.downloading: tuple[int, int | None] | None = None

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / MASTER_FILENAME

    @property
    def meta_path(self) -> Path:
        return self.cache_dir / (MASTER_FILENAME + ".meta.json")

    @property
    def index(self) -> MasterIndex | None:
        """The index in memory (None before the first `ensure`)."""
        return self._index

    def edition(self, at: datetime) -> date:
        """The master edition current at `at`: the latest IST trading day past `refresh_after`."""
        local = at.astimezone(IST)
        day = local.date()
        if local.time() < self.refresh_after:
            day -= timedelta(days=1)
        if not self.calendar.is_trading_day(day):
            day = self.calendar.previous_trading_day(day)
        return day

    def _is_current(self) -> bool:
        if self._downloaded_at is None:
            return False
        return self.edition(self._downloaded_at) >= self.edition(self._now())

    def status(self) -> MasterStatus:
        idx = self._index
        return MasterStatus(
            cache_path=self.cache_path,
            downloaded_at=self._downloaded_at,
            edition=self.edition(self._downloaded_at) if self._downloaded_at else None,
            current=self._is_current(),
            rows=idx.rows if idx else None,
            options=idx.option_count if idx else None,
            last_error=self.last_error,
            downloading=self.downloading,
        )

    async def ensure(
        self, *, progress: ProgressCallback | None = None, force: bool = False
    ) -> MasterIndex:
        """The current index: cached, or downloaded if the cache is not this edition's.

        Raises a ProviderError only when there is no usable copy at all.
        """
        async with self._lock:
            if self._index is None and not self._loaded_from_disk:
                self._loaded_from_disk = True
                await self._load_cache()
            if self._index is not None and self._is_current() and not force:
                return self._index
            waiting = self._next_attempt is not None and self._clock() < self._next_attempt
            if self._index is not None and waiting and not force:
                return self._index
            try:
                await self._download(progress)
            except ProviderError as exc:
                self._next_attempt = self._clock() + self.retry_after_failure
                self.last_error = exc.message
                if self._index is None:
                    raise
                log.warning(
                    "instrument master download failed (%s); still using the copy downloaded %s",
                    exc.message,
                    self._downloaded_at.isoformat() if self._downloaded_at else "earlier",
                )
            return self._index  # type: ignore[return-value]  # set by _download or above

    async def _load_cache(self) -> None:
        path = self.cache_path
        try:
            index = await asyncio.to_thread(_parse_file, path, self.names, self.min_rows)
        except FileNotFoundError:
            return
        except (OSError, ValueError, RecursionError) as exc:
            self.last_error = f"cached master {path} is unusable: {exc}"
            log.warning("%s; it will be downloaded again", self.last_error)
            return
        self._index = index
        self._downloaded_at = await asyncio.to_thread(self._read_meta, path)

    def _read_meta(self, path: Path) -> datetime | None:
        try:
            doc = json.loads(self.meta_path.read_text(encoding="utf-8"))
            at = datetime.fromisoformat(doc["downloaded_at"])
            if at.tzinfo is not None:
                return at
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:  # no sidecar: the file's own age is the next best thing
            return datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            return None

    async def _download(self, progress: ProgressCallback | None) -> None:
        tmp: Path | None = None
        try:
            await asyncio.to_thread(make_dirs, self.cache_dir)  # the user's own (0700)
            fd, tmp_name = await asyncio.to_thread(
                tempfile.mkstemp, prefix=f".{MASTER_FILENAME}.", suffix=".part", dir=self.cache_dir
            )
            tmp = Path(tmp_name)
            with os.fdopen(fd, "wb") as out:
                size = await self._stream_to(out, progress)
                out.flush()
                os.fsync(out.fileno())
            try:
                index = await asyncio.to_thread(_parse_file, tmp, self.names, self.min_rows)
            except (ValueError, OSError, RecursionError) as exc:
                raise BadPayload(
                    PROVIDER, f"instrument master download is not usable ({exc})"
                ) from None
            downloaded_at = self._now()
            # Only now, with a parsed and sane file, may it replace the last good copy.
            await asyncio.to_thread(os.replace, tmp, self.cache_path)
        except OSError as exc:
            raise ProviderConnectionError(
                PROVIDER, f"cannot write the instrument master cache in {self.cache_dir}: {exc}"
            ) from None
        finally:
            self.downloading = None
            if tmp is not None:
                await asyncio.to_thread(_discard, tmp)
        self._index = index
        self._downloaded_at = downloaded_at
        self._next_attempt = None
        self.last_error = None
        try:
            await asyncio.to_thread(self._write_meta, downloaded_at, size, index.rows)
        except OSError as exc:  # the file's mtime stands in for the sidecar
            log.warning("could not write %s: %s", self.meta_path, exc)
        log.info(
            "instrument master downloaded: %d rows, %d options, %d bytes",
            index.rows,
            index.option_count,
            size,
        )

    async def _stream_to(self, out: Any, progress: ProgressCallback | None) -> int:
        where = f"GET {httpx.URL(self.url).copy_with(query=None)}"
        async with make_client("", timeout=self.timeout) as client:
            with transport_errors(PROVIDER, where):
                async with client.stream("GET", self.url) as resp:
                    if resp.status_code != 200:
                        raise ServerError(
                            PROVIDER, f"{where}: HTTP {resp.status_code}", status=resp.status_code
                        )
                    total = _content_length(resp)
                    written = 0
                    self.downloading = (0, total)
                    _report(progress, 0, total)
                    async for chunk in resp.aiter_bytes(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        # Status screens poll this; the CLI's bar gets the callback.
                        self.downloading = (resp.num_bytes_downloaded, total)
                        _report(progress, resp.num_bytes_downloaded, total)
                    if total is not None and resp.num_bytes_downloaded < total:
                        raise BadPayload(
                            PROVIDER,
                            f"{where}: download ended early "
                            f"({resp.num_bytes_downloaded} of {total} bytes)",
                        )
                    return written

    def _write_meta(self, downloaded_at: datetime, size: int, rows: int) -> None:
        doc = {
            "downloaded_at": downloaded_at.isoformat(),
            "edition": self.edition(downloaded_at).isoformat(),
            "url": self.url,
            "bytes": size,
            "rows": rows,
        }
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, self.meta_path)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _content_length(resp: httpx.Response) -> int | None:
    try:
        value = int(resp.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _report(progress: ProgressCallback | None, done: int, total: int | None) -> None:
    if progress is None:
        return
    try:
        progress(done, total)
    except Exception:  # a broken progress bar must not cost us the download
        log.debug("instrument master progress callback failed", exc_info=True)
