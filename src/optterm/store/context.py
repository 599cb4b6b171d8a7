"""The `context` column of a stored snapshot: what surrounds the chain, as one JSON object.

``{"futures": quote, "vix": quote, "expiries": ["2026-07-14", …]}``, each key present only when
the snapshot has it (NULL when it has none); a quote is ``{"value", "prev_close", "source",
"ts"}`` with NaN as null and ``ts`` in epoch microseconds UTC, like every other time in the
store. Rows written before revision 0007 have NULL here and read back as "not given".
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date
from typing import Any

from optterm.model import ChainSnapshot, Quote
from optterm.store.timecodec import from_us, to_us

__all__ = ["context_fields", "context_json"]

log = logging.getLogger(__name__)


def context_json(snap: ChainSnapshot) -> str | None:
    """The column's value for `snap`: None when nothing surrounds its chain."""
    doc: dict[str, Any] = {}
    for name in ("futures", "vix"):
        q: Quote | None = getattr(snap, name)
        if q is not None:
            doc[name] = {
                "value": _or_null(q.value),
                "prev_close": _or_null(q.prev_close),
                "source": q.source,
                "ts": to_us(q.ts, f"{name} time"),
            }
    if snap.expiries:
        doc["expiries"] = [d.isoformat() for d in snap.expiries]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) if doc else None


def _or_null(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def context_fields(text: str | None) -> dict[str, Any]:
    """The snapshot fields in a `context` value (nothing for a row written before revision 0007)."""
    if not text:
        return {}
    try:
        return _parse_context(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Context is what surrounds the chain: a damaged value loses it (shown as n/a), never
        # the chain itself.
        log.warning("ignoring an unreadable snapshot context (%s): %.80s", exc, text)
        return {}


def _parse_context(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("futures", "vix"):
        q = doc.get(name)
        if isinstance(q, dict):
            out[name] = Quote(
                value=math.nan if q.get("value") is None else float(q["value"]),
                prev_close=math.nan if q.get("prev_close") is None else float(q["prev_close"]),
                source=str(q.get("source", "")),
                ts=from_us(int(q["ts"])),
            )
    listed = doc.get("expiries")
    if isinstance(listed, list):
        out["expiries"] = tuple(date.fromisoformat(d) for d in listed)
    return out
