"""NSE Clearing's SPAN risk-parameter file (`.spn`, CME SPAN XML fileFormat 4.00), read for the
underlyings asked for, and cached.

The parts read (per combined commodity `cc`, which on NSE is the trading symbol):
  pointInTime > date, isSetl; created          the business date and the snapshot
  phyPf > phy > p                              the underlying's price (exposure on options)
  futPf > fut: pe, p, cvf, ra (16 a + d)       futures: expiry, price, risk array, composite delta
  oopPf > series (pe) > opt: o, k, p, ra       options: C/P, strike, premium, risk array
  ccDef: cc, somTiers > tier > rate > val,     short-option minimum per short option unit,
         dSpread: spread, chargeMeth, rate > val, pLeg (pe, rs A/B, i)   calendar spreads
Risk-array values are the loss of one long unit in each of the 16 scenarios (positive = loss).

The file is ~50 MB, so it is streamed (iterparse, each portfolio cleared once read) and only the
wanted underlyings are kept. What was read is cached as JSON beside the other caches, keyed by
the file's name, size and modification time: a second analysis on the same file reads a few KB.
A file that is not a SPAN file, or is cut short, is refused with one line naming it.
"""

from __future__ import annotations

import contextlib
import json
import math
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

import numpy as np

from optterm.infra.atomicfile import NotARegularFile, replace_file
from optterm.strategy.errors import StrategyError

__all__ = [
    "SCENARIOS",
    "SpanCommodity",
    "SpanContract",
    "SpanError",
    "SpanFile",
    "SpanSpread",
    "load_span",
]

SCENARIOS = 16
_CACHE_VERSION = 1


class SpanError(StrategyError):
    """The SPAN file cannot be used: missing, not SPAN XML, cut short, or without the contract."""


@dataclass(frozen=True, slots=True, eq=False)
class SpanContract:
    kind: str  # FUT, CE or PE
    expiry: date
    strike: float  # NaN for futures
    price: float
    ra: np.ndarray  # 16 scenario losses of one long unit
    delta: float  # composite delta (what calendar spreads are formed from)
    cvf: float = 1.0


@dataclass(frozen=True, slots=True)
class SpanSpread:
    """A calendar spread definition: `rate` per spread of one delta unit between the A and B
    expiries (each with its delta ratio), evaluated in `priority` order."""

    priority: int
    method: str
    rate: float
    legs: tuple[tuple[date, str, float], ...]  # (expiry, side A/B, ratio)


@dataclass(frozen=True, slots=True, eq=False)
class SpanCommodity:
    code: str
    underlying: float
    contracts: dict[tuple[str, date, float], SpanContract]
    spreads: tuple[SpanSpread, ...] = ()
    som_rate: float = 0.0

    def contract(self, kind: str, expiry: date, strike: float) -> SpanContract | None:
        key = (kind, expiry, -1.0 if kind == "FUT" else round(float(strike), 4))
        return self.contracts.get(key)


@dataclass(frozen=True, slots=True, eq=False)
class SpanFile:
    source: str
    business_date: date
    created: str
    settlement: bool
    commodities: dict[str, SpanCommodity] = field(default_factory=dict)

    def describe(self) -> str:
        kind = "settlement" if self.settlement else "intraday"
        made = f", created {self.created}" if self.created else ""
        return f"SPAN {kind} file of {self.business_date.isoformat()}{made} ({self.source})"

    def commodity(self, code: str) -> SpanCommodity:
        try:
            return self.commodities[code.upper()]
        except KeyError:
            raise SpanError(
                f"{code} is not in {self.describe()}; use the file of the segment it trades in."
            ) from None


# --------------------------------------------------------------------------------- parsing


def _text(el: ET.Element | None) -> str:
    return "" if el is None or el.text is None else el.text.strip()


def _num(el: ET.Element | None, default: float = math.nan) -> float:
    t = _text(el)
    try:
        return float(t) if t else default
    except ValueError:
        return math.nan


def _day(text: str) -> date:
    return datetime.strptime(text[:8], "%Y%m%d").date()


def _ra(el: ET.Element) -> tuple[np.ndarray, float]:
    ra = el.find("ra")
    if ra is None:
        raise ValueError("a contract without a risk array (ra)")
    values = np.array([float(a.text or "nan") for a in ra.findall("a")], dtype=np.float64)
    if values.size != SCENARIOS or not np.isfinite(values).all():
        raise ValueError(f"a risk array of {values.size} values (SPAN has {SCENARIOS})")
    return values, _num(ra.find("d"), 0.0)


def _contracts(pf: ET.Element, tag: str) -> Iterator[SpanContract]:
    cvf_pf = _num(pf.find("cvf"), 1.0)
    if tag == "futPf":
        for fut in pf.findall("fut"):
            ra, d = _ra(fut)
            yield SpanContract(
                "FUT", _day(_text(fut.find("pe"))), math.nan, _num(fut.find("p")), ra, d,
                _num(fut.find("cvf"), cvf_pf),
            )  # fmt: skip
        return
    for series in pf.findall("series"):
        expiry = _day(_text(series.find("pe")))
        cvf_s = _num(series.find("cvf"), cvf_pf)
        for opt in series.findall("opt"):
            side = _text(opt.find("o")).upper()
            if side not in ("C", "P"):
                raise ValueError(f"an option of kind {side!r} (SPAN has C or P)")
            ra, d = _ra(opt)
            yield SpanContract(
                "CE" if side == "C" else "PE", expiry, _num(opt.find("k")), _num(opt.find("p")),
                ra, d, _num(opt.find("cvf"), cvf_s),
            )  # fmt: skip


def _spreads(cc: ET.Element) -> tuple[tuple[SpanSpread, ...], float]:
    som = 0.0
    tiers = cc.find("somTiers")
    if tiers is not None:
        for rate in tiers.iter("rate"):
            som = max(som, _num(rate.find("val"), 0.0))
    spreads = []
    for ds in cc.findall("dSpread"):
        legs = tuple(
            (_day(_text(leg.find("pe"))), _text(leg.find("rs")).upper(), _num(leg.find("i"), 1.0))
            for leg in ds.findall("pLeg")
        )
        rate_el = ds.find("rate")
        spreads.append(
            SpanSpread(
                int(_num(ds.find("spread"), 0.0)),
                _text(ds.find("chargeMeth")) or "F",
                _num(rate_el.find("val") if rate_el is not None else None, 0.0),
                legs,
            )
        )
    return tuple(sorted(spreads, key=lambda s: s.priority)), som


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    """The .spn stream: the file itself, or the .spn inside NSE's .zip."""
    if path.suffix.lower() != ".zip":
        with path.open("rb") as fh:
            yield fh
        return
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".spn")]
        if len(names) != 1:
            raise ValueError(f"the zip holds {len(names)} .spn files (NSE's holds one)")
        with zf.open(names[0]) as fh:
            yield fh


def _parse(path: Path, wanted: set[str]) -> SpanFile:
    contracts: dict[str, dict[tuple[str, date, float], SpanContract]] = {}
    under: dict[str, float] = {}
    defs: dict[str, tuple[tuple[SpanSpread, ...], float]] = {}
    head: dict[str, str] = {}
    root_seen = False
    with _open(path) as fh:
        for event, el in ET.iterparse(fh, events=("start", "end")):
            if event == "start":
                if not root_seen:
                    root_seen = True
                    if el.tag != "spanFile":
                        raise ValueError(f"its root element is <{el.tag}>, not <spanFile>")
                continue
            tag = el.tag
            if tag in ("created", "date", "isSetl") and tag not in head:
                head[tag] = _text(el)
            elif tag in ("phyPf", "futPf", "oopPf"):
                code = _text(el.find("pfCode")).upper()
                if code in wanted:
                    if tag == "phyPf":
                        phy = el.find("phy")
                        under[code] = _num(phy.find("p") if phy is not None else None)
                    else:
                        book = contracts.setdefault(code, {})
                        for c in _contracts(el, tag):
                            strike = -1.0 if c.kind == "FUT" else round(c.strike, 4)
                            book[(c.kind, c.expiry, strike)] = c
                el.clear()
            elif tag == "ccDef":
                code = _text(el.find("cc")).upper()
                if code in wanted:
                    defs[code] = _spreads(el)
                el.clear()
    if "date" not in head:
        raise ValueError("it has no business date (pointInTime > date)")
    commodities = {
        code: SpanCommodity(
            code, under.get(code, math.nan), contracts.get(code, {}), *defs.get(code, ((), 0.0))
        )
        for code in wanted
        if code in contracts or code in defs
    }
    return SpanFile(
        str(path),
        _day(head["date"]),
        head.get("created", ""),
        head.get("isSetl", "") in ("1", "true", "True", "Y"),
        commodities,
    )


# ----------------------------------------------------------------------------------- cache


def _stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"v": _CACHE_VERSION, "name": path.name, "size": st.st_size, "mtime": st.st_mtime_ns}


def _to_json(f: SpanFile, stamp: dict[str, Any]) -> dict[str, Any]:
    return {
        "stamp": stamp,
        "date": f.business_date.isoformat(),
        "created": f.created,
        "settlement": f.settlement,
        "commodities": {
            code: {
                "underlying": c.underlying,
                "som": c.som_rate,
                "spreads": [
                    [s.priority, s.method, s.rate, [[d.isoformat(), r, i] for d, r, i in s.legs]]
                    for s in c.spreads
                ],
                "contracts": [_contract_row(k) for k in c.contracts.values()],
            }
            for code, c in f.commodities.items()
        },
    }


def _contract_row(k: SpanContract) -> list[Any]:
    strike = None if k.kind == "FUT" else k.strike
    return [k.kind, k.expiry.isoformat(), strike, k.price, k.ra.tolist(), k.delta, k.cvf]


def _from_json(doc: dict[str, Any], source: str) -> SpanFile:
    commodities = {}
    for code, c in doc["commodities"].items():
        book = {}
        for kind, exp, strike, price, ra, delta, cvf in c["contracts"]:
            day = date.fromisoformat(exp)
            k = math.nan if strike is None else float(strike)
            book[(kind, day, -1.0 if strike is None else round(k, 4))] = SpanContract(
                kind, day, k, price, np.array(ra, dtype=np.float64), delta, cvf
            )
        spreads = tuple(
            SpanSpread(p, m, r, tuple((date.fromisoformat(d), s, i) for d, s, i in legs))
            for p, m, r, legs in c["spreads"]
        )
        commodities[code] = SpanCommodity(code, c["underlying"], book, spreads, c["som"])
    return SpanFile(
        source, date.fromisoformat(doc["date"]), doc["created"], doc["settlement"], commodities
    )


def load_span(path: Path, symbols: Iterable[str], cache_dir: Path | None = None) -> SpanFile:
    """The SPAN file at `path` (.spn or NSE's .zip) for the underlyings `symbols`, from the
    cache when it holds this very file (same name, size and modification time) and them."""
    wanted = {s.upper() for s in symbols}
    try:
        stamp = _stamp(path)
    except OSError as exc:
        raise SpanError(f"SPAN file {path}: {exc.strerror or exc}; check the path.") from None
    cached = None if cache_dir is None else cache_dir / f"{path.name}.json"
    if cached is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            doc = json.loads(cached.read_text(encoding="utf-8"))
            if doc["stamp"] == stamp and wanted <= set(doc.get("asked", [])):
                return _from_json(doc, str(path))
    try:
        parsed = _parse(path, wanted)
    except (ET.ParseError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise SpanError(
            f"{path} is not a usable SPAN risk-parameter file ({exc}); download the .spn (or "
            "its .zip) again from NSE Clearing."
        ) from None
    except OSError as exc:
        raise SpanError(f"SPAN file {path}: {exc.strerror or exc}; check the path.") from None
    if cached is not None:
        doc = _to_json(parsed, stamp)
        doc["asked"] = sorted(wanted)
        # A cache that cannot be written (or a non-file in its place) only slows the next run.
        with contextlib.suppress(OSError, NotARegularFile):
            cached.parent.mkdir(parents=True, exist_ok=True)
            with replace_file(cached) as fh:
                json.dump(doc, fh)
    return parsed
