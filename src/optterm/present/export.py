"""History export text, built column-wise: the CSV and JSON of `optterm history export`.

The text is exactly what the per-cell writers in present/chain.py produce (`write_csv`,
`snapshot_to_dict` + `json.dumps`): an integral value below 2**53 as an integer, any other finite
value as Python's `repr`, NaN and ±inf as an empty CSV field or JSON null. Formatting a full day
(~450k rows × 21 numbers) cell by cell costs seconds of Python; here the digits of many snapshots'
rows are computed at once as a byte matrix with numpy, and the bytes that belong to the text are
picked out with a mask in one step.

Which numbers take the fast path, and why its text equals `repr`:
- integral, |v| < 2**53: the decimal digits of the integer, as `str(int(v))`;
- 1e-4 <= |v| < 1e9 and v == q / 10**d for an integer q and some d <= 6 (the smallest): `repr`
  writes the shortest decimal that reads back as v, positionally in that range. q / 10**d is the
  decimal q·10^-d correctly rounded, so that decimal reads back as v; a shorter one would have
  fewer fractional digits and have been found at a smaller d; and below 1e9, 10^-6 is more than
  eight float steps, so no other decimal with d digits reads back as v.
Anything else (float noise such as 0.30000000000000004, exponents, 2**53 and up) is rare and
formatted by `repr` itself, cell by cell.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import UTC
from typing import IO, Final

import numpy as np

from optterm.model import LEG_FIELDS, ChainSnapshot

__all__ = ["CsvWriter", "JsonWriter", "format_numbers"]

_POW10: Final = 10 ** np.arange(19, dtype=np.int64)
_MAX_INT: Final = float(2**53)
_MAX_DEC: Final = 1e9
_MIN_DEC: Final = 1e-4
_MAX_D: Final = 6
_ZERO: Final = ord("0")


class _Blocks:
    """A row-aligned byte matrix under construction: blocks appended left to right, each with
    the mask of its bytes that belong to the text; `text()` reads it row by row."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.chars: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []

    def literal(self, text: bytes) -> None:
        if text:
            shape = (self.rows, len(text))
            self.chars.append(np.broadcast_to(np.frombuffer(text, np.uint8), shape))
            self.masks.append(np.ones(shape, dtype=bool))

    def choice(self, options: Sequence[bytes], index: np.ndarray) -> None:
        """Per row, one of `options` (index[row])."""
        width = max((len(o) for o in options), default=0)
        if not width:
            return
        table = np.zeros((len(options), width), dtype=np.uint8)
        valid = np.zeros((len(options), width), dtype=bool)
        for k, o in enumerate(options):
            table[k, : len(o)] = np.frombuffer(o, np.uint8)
            valid[k, : len(o)] = True
        self.chars.append(table[index])
        self.masks.append(valid[index])

    def numbers(self, values: np.ndarray, missing: bytes) -> None:
        chars, mask = format_numbers(values, missing)
        self.chars.append(chars)
        self.masks.append(mask)

    def text(self) -> str:
        if not self.chars:
            return ""
        chars = np.concatenate(self.chars, axis=1)
        mask = np.concatenate(self.masks, axis=1)
        return chars[mask].tobytes().decode("utf-8")


def format_numbers(v: np.ndarray, missing: bytes = b"") -> tuple[np.ndarray, np.ndarray]:
    """(chars, mask): row i of chars[mask[i]] is the text of v[i] — `str(int(v))` for an
    integral value below 2**53, `repr(v)` for any other finite one, `missing` for NaN and ±inf.
    """
    v = np.asarray(v, dtype=np.float64)
    rows = v.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(v)
        a = np.where(finite, np.abs(v), 0.0)
        ip_f = np.floor(a)
        integral = finite & (ip_f == a) & (a < _MAX_INT)
        digits = np.zeros(rows, dtype=np.intp)  # fractional digits d of the fast path
        q = np.where(integral, a, 0.0)
        todo = finite & ~integral & (a >= _MIN_DEC) & (a < _MAX_DEC)
        if todo.any():
            for d in range(1, _MAX_D + 1):
                scale = float(10**d)
                qd = np.rint(a * scale)
                ok = todo & (qd / scale == a)
                if ok.any():
                    digits[ok] = d
                    q[ok] = qd[ok]
                    todo &= ~ok
                    if not todo.any():
                        break
        fast = integral | (digits > 0)
    slow = np.flatnonzero(finite & ~fast)
    ip = np.where(fast, ip_f, 0.0).astype(np.int64)
    frac = np.where(fast, q, 0.0).astype(np.int64) - ip * _POW10[digits]
    neg = fast & (v < 0)
    n_int = np.searchsorted(_POW10[1:17], ip, side="right") + 1
    max_int = int(n_int[fast].max()) if fast.any() else 0
    max_d = int(digits.max()) if rows else 0
    slow_text = [repr(float(x)).encode() for x in v[slow].tolist()]
    slow_w = max((len(s) for s in slow_text), default=0)
    has_neg = bool(neg.any())
    width = has_neg + max_int + (1 + max_d if max_d else 0) + len(missing) + slow_w
    chars = np.zeros((rows, width), dtype=np.uint8)
    mask = np.zeros((rows, width), dtype=bool)
    col = 0
    if has_neg:
        chars[:, col] = ord("-")
        mask[:, col] = neg
        col += 1
    for j in range(max_int):
        k = max_int - 1 - j  # this slot holds the digit of 10**k
        chars[:, col] = _ZERO + (ip // _POW10[k]) % 10
        mask[:, col] = fast & (k < n_int)
        col += 1
    if max_d:
        chars[:, col] = ord(".")
        mask[:, col] = digits > 0
        col += 1
        for j in range(max_d):
            e = np.maximum(digits - 1 - j, 0)
            chars[:, col] = _ZERO + (frac // _POW10[e]) % 10
            mask[:, col] = j < digits
            col += 1
    if missing:
        chars[:, col : col + len(missing)] = np.frombuffer(missing, np.uint8)
        mask[:, col : col + len(missing)] = ~finite[:, None]
        col += len(missing)
    for r, text in zip(slow.tolist(), slow_text, strict=True):
        chars[r, col : col + len(text)] = np.frombuffer(text, np.uint8)
        mask[r, col : col + len(text)] = True
    return chars, mask


def _leg_columns(snaps: Sequence[ChainSnapshot]) -> dict[str, np.ndarray]:
    out = {"strike": np.concatenate([s.strikes for s in snaps])}
    for side in ("ce", "pe"):
        for f in LEG_FIELDS:
            out[f"{side}_{f}"] = np.concatenate([getattr(s, side).column(f) for s in snaps])
    return out


class CsvWriter:
    """`write_csv`'s text for a stream of snapshots, a batch at a time."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def header(self) -> None:
        from optterm.present.chain import CSV_COLUMNS

        csv.writer(self._out, lineterminator="\n").writerow(CSV_COLUMNS)

    def write(self, snaps: Sequence[ChainSnapshot]) -> None:
        snaps = [s for s in snaps if len(s)]
        if not snaps:
            return
        counts = np.array([len(s) for s in snaps])
        rows = int(counts.sum())
        heads = io.StringIO()
        w = csv.writer(heads, lineterminator="\n")
        for s in snaps:
            spot = _num(s.spot)
            w.writerow(
                [
                    s.provider_ts.astimezone(UTC).isoformat(),
                    s.symbol,
                    s.expiry.isoformat(),
                    s.provider,
                    s.feed.value,
                    "" if spot is None else spot,
                    s.lot_size,
                    "",  # the trailing comma before the strike
                ]
            )
        prefixes = [h.encode() for h in heads.getvalue().split("\n")[:-1]]
        b = _Blocks(rows)
        b.choice(prefixes, np.repeat(np.arange(len(snaps)), counts))
        cols = _leg_columns(snaps)
        names = list(cols)
        for k, name in enumerate(names):
            if k:
                b.literal(b",")
            b.numbers(cols[name], b"")
        b.literal(b"\n")
        self._out.write(b.text())


class JsonWriter:
    """The snapshots array of the JSON export: each element `json.dumps(snapshot_to_dict(s))`
    without `age_seconds`, after ",\\n" (or "\\n" for the first)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._written = 0

    def _head(self, snap: ChainSnapshot) -> str:
        """The document's text up to its rows: `snapshot_to_dict` of the snapshot cut to no
        strikes (same keys, same order), with the real ATM strike and strike count put back."""
        from optterm.present.chain import snapshot_to_dict

        doc = snapshot_to_dict(snap.take(slice(0, 0)))
        doc.pop("age_seconds", None)  # an export is history, not a live view
        if len(snap):
            doc["atm_strike"] = _num(float(snap.strikes[snap.atm_index()]))
        doc["strike_count"] = len(snap)
        text = json.dumps(doc)
        if not text.endswith('"rows": []}'):
            raise AssertionError("the rows are no longer the last key of a snapshot document")
        return text[: -len("[]}")]

    def write(self, snaps: Sequence[ChainSnapshot]) -> None:
        for s in snaps:
            sep = "," if self._written else ""
            self._written += 1
            head = sep + "\n" + self._head(s)
            if not len(s):
                self._out.write(head + "[]}")
                continue
            self._rows(s, head)

    def _rows(self, snap: ChainSnapshot, head: str) -> None:
        n = len(snap)
        b = _Blocks(n)
        first = np.zeros(n, dtype=np.intp)
        first[0] = 1
        b.choice([b"", (head + "[").encode()], first)
        b.literal(b'{"strike": ')
        b.numbers(snap.strikes, b"null")
        atm = np.zeros(n, dtype=np.intp)
        atm[snap.atm_index()] = 1
        b.choice([b', "atm": false', b', "atm": true'], atm)
        for side, legs in ((b"ce", snap.ce), (b"pe", snap.pe)):
            for k, f in enumerate(LEG_FIELDS):
                lead = b', "' + side + b'": {' if k == 0 else b", "
                b.literal(lead + b'"' + f.encode() + b'": ')
                b.numbers(legs.column(f), b"null")
            b.literal(b"}")
        last = np.zeros(n, dtype=np.intp)
        last[-1] = 1
        b.choice([b"}, ", b"}]}"], last)
        self._out.write(b.text())


def _num(x: float) -> int | float | None:
    """present/chain.py's JSON/CSV value of one number (the head fields are few)."""
    if not math.isfinite(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x
