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
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC
from typing import IO, Any, Final

import numpy as np

from optterm.model import LEG_FIELDS, ChainSnapshot
from optterm.store.snapshots import BATCH_COLUMNS, SnapshotBatch

__all__ = ["CsvWriter", "JsonWriter", "format_numbers"]

_POW10: Final = 10 ** np.arange(19, dtype=np.int64)
_POW10_F: Final = np.array([float(10**d) for d in range(7)])  # exact: 10**d < 2**53
_MAX_INT: Final = float(2**53)
_MAX_DEC: Final = 1e9
_MIN_DEC: Final = 1e-4
_MAX_D: Final = 6
_ZERO: Final = ord("0")
# Byte slots formatted into text per piece: below glibc's 128 KiB mmap threshold, so the
# allocator reuses the pieces' memory instead of mapping fresh pages for each.
_PIECE: Final = 64 * 1024


class _Blocks:
    """A row-aligned byte matrix under construction: blocks appended left to right, each with
    the mask of its bytes that belong to the text; `pieces()` reads it row by row.

    Built transposed (one contiguous line of the matrix per byte slot of a block), so every
    fill is a contiguous write; one transpose at the end."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._parts: list[tuple[int, Callable[[np.ndarray, np.ndarray], None]]] = []
        self._nul = False  # does a literal or an option hold a NUL byte (see pieces())

    def literal(self, text: bytes) -> None:
        if text:
            self._nul |= b"\0" in text
            raw = np.frombuffer(text, np.uint8)[:, None]

            def fill(chars: np.ndarray, mask: np.ndarray) -> None:
                chars[:] = raw
                mask[:] = True

            self._parts.append((len(text), fill))

    def choice(self, options: Sequence[bytes], index: np.ndarray) -> None:
        """Per row, one of `options` (index[row])."""
        width = max((len(o) for o in options), default=0)
        if not width:
            return
        self._nul |= any(b"\0" in o for o in options)
        table = np.zeros((width, len(options)), dtype=np.uint8)
        valid = np.zeros((width, len(options)), dtype=bool)
        for k, o in enumerate(options):
            table[: len(o), k] = np.frombuffer(o, np.uint8)
            valid[: len(o), k] = True

        def fill(chars: np.ndarray, mask: np.ndarray) -> None:
            np.take(table, index, axis=1, out=chars)
            if self._nul:
                np.take(valid, index, axis=1, out=mask)
            else:  # a shorter option's padding is NUL already, which pieces() drops
                mask[:] = True

        self._parts.append((width, fill))

    def numbers(self, values: np.ndarray, missing: bytes) -> None:
        num = _Numbers(values, missing)
        self._parts.append((num.width, num.fill))

    def pieces(self, scratch: _Scratch | None = None) -> Iterator[str]:
        """The rows' text, a few hundred rows at a time (write each before asking for the
        next). `scratch`: the matrices kept from the previous batch of the same writer."""
        width = sum(w for w, _ in self._parts)
        if not width or not self.rows:
            return
        if scratch is None:
            scratch = _Scratch()
        chars, mask = scratch.matrices(width, self.rows)
        at = 0
        for w, fill in self._parts:
            fill(chars[at : at + w], mask[at : at + w])
            at += w
        if self._nul:  # a NUL of the text's own: pick its bytes by the mask
            picked = chars.ravel(order="F")[mask.ravel(order="F")]
            yield picked.tobytes().decode("utf-8")
            return
        # The text has no NUL byte (numbers are digits, signs, points, repr and the missing
        # marker), so a byte outside it becomes NUL and bytes.translate drops those in one C
        # pass over the row-major bytes. A full NIFTY day (462k rows, ~86 MB of byte slots):
        # 0.19 s against 0.28 s for boolean indexing and 0.48 s for np.compress, which makes
        # an index array of every kept byte first.
        np.multiply(chars, mask, out=chars)
        # Whole rows at a time, each piece's bytes, text and encoded text small enough for
        # the allocator to reuse the same memory: a batch's text in one piece (~3 MB, three
        # times over) was handed back to the kernel and faulted in again for every batch.
        step = max(1, _PIECE // width)
        for lo in range(0, self.rows, step):
            yield chars[:, lo : lo + step].T.tobytes().translate(None, b"\0").decode("utf-8")


class _Scratch:
    """The byte matrices of `_Blocks.pieces`, kept by a writer from one batch to the next.

    A day's export formats ~25 batches of ~20k rows. Allocated afresh for every batch, their
    ~8 MB went back to the kernel and were faulted in again each time."""

    def __init__(self) -> None:
        self._chars = np.empty(0, dtype=np.uint8)
        self._mask = np.empty(0, dtype=bool)

    def matrices(self, width: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        size = width * rows
        if self._chars.size < size:
            self._chars = np.empty(size, dtype=np.uint8)
            self._mask = np.empty(size, dtype=bool)
        return self._chars[:size].reshape(width, rows), self._mask[:size].reshape(width, rows)


class _Numbers:
    """The text of a float64 column: `str(int(v))` for an integral value below 2**53, `repr(v)`
    for any other finite one, `missing` for NaN and ±inf; laid out as `width` byte slots per
    value (sign, integer digits, point, fractional digits, missing, repr) of which a mask keeps
    the ones that belong to each value's text."""

    def __init__(self, values: np.ndarray, missing: bytes) -> None:
        v = np.asarray(values, dtype=np.float64)
        rows = v.shape[0]
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(v)
            self.all_finite = bool(finite.all())
            a = np.abs(v) if self.all_finite else np.where(finite, np.abs(v), 0.0)
            ip_f = np.floor(a)
            integral = (ip_f == a) & (a < _MAX_INT)
            if not self.all_finite:
                integral &= finite
            digits = np.zeros(rows, dtype=np.intp)  # fractional digits d of the fast path
            if integral.all():  # OI, volume, strikes, quantities: no fractions to look for
                fast = integral
            else:
                todo = ~integral & finite & (a >= _MIN_DEC) & (a < _MAX_DEC)
                left = int(np.count_nonzero(todo))
                # Over the whole column, not a gathered subset: most values of a price or IV
                # column are still open until their last digit, and whole-column passes cost
                # a third of gathering and scattering them.
                for d in range(1, _MAX_D + 1):
                    if not left:
                        break
                    scale = float(10**d)
                    qd = np.rint(a * scale)
                    ok = qd / scale == a
                    ok &= todo
                    # A value is found once (ok only where still to do), so adding d sets its
                    # digits: a masked np.copyto costs ~10x more here.
                    digits += ok * d
                    todo &= ~ok
                    left -= int(np.count_nonzero(ok))
                fast = integral | (digits > 0)
        self.rows = rows
        self.finite = finite
        self.fast = fast
        self.digits = digits
        self.all_fast = bool(fast.all())
        self.slow = np.flatnonzero(finite & ~fast)
        self.max_d = int(digits.max()) if rows else 0
        if self.all_fast:
            top = float(ip_f.max(initial=0.0))
        else:
            top = float(ip_f[fast].max()) if fast.any() else 0.0
        # int32 digit arithmetic where the integers allow it: twice the lanes of int64.
        itype: type[np.signedinteger[Any]] = (
            np.int32 if (top + 1.0) * 10.0**self.max_d < 2**31 else np.int64
        )
        ip: np.ndarray = (ip_f if self.all_fast else np.where(fast, ip_f, 0.0)).astype(itype)
        self.ip = ip
        # No digit slots when no value takes the fast path (an all-missing column: six of a
        # simulated chain's twenty-one): they would all be masked out.
        self.max_int = len(str(int(top))) if rows and fast.any() else 0
        if self.max_d:
            # The fractional digits left-aligned on max_d places: a slot's digit is then a
            # division by the same power of ten for every row.
            pow10: np.ndarray = _POW10.astype(itype)
            # Each row's integer q (value = q / 10**d): the search's own rint(a * 10**d), made
            # once for the digits found rather than kept up to date at every step.
            with np.errstate(invalid="ignore", over="ignore"):
                q = np.rint(a * _POW10_F[digits])
            qi: np.ndarray = np.where(fast, q, 0.0).astype(itype)
            self.frac = (qi - ip * pow10[digits]) * pow10[self.max_d - digits]
        self.neg = (v < 0) if self.all_fast else fast & (v < 0)
        self.has_neg = bool(self.neg.any())
        self.slow_text = [repr(float(x)).encode() for x in v[self.slow].tolist()]
        slow_w = max((len(s) for s in self.slow_text), default=0)
        self.missing = missing
        self.width = (
            self.has_neg
            + self.max_int
            + (1 + self.max_d if self.max_d else 0)
            + (len(missing) if not self.all_finite else 0)
            + slow_w
        )

    def fill(self, chars: np.ndarray, mask: np.ndarray) -> None:
        at = 0
        if self.has_neg:
            chars[at] = ord("-")
            mask[at] = self.neg
            at += 1
        digits = _digits(self.ip, self.max_int)
        for k in range(self.max_int):  # from the units digit leftwards
            slot = at + self.max_int - 1 - k
            if k == 0:  # "0" is written for a zero, so the units digit is always there
                mask[slot] = self.fast
            else:  # a digit of 10**k is written when the integer part reaches 10**k
                # 10**k in ip's own type (it fits: ip reaches it): an int64 scalar would make
                # numpy widen every int32 of ip first.
                np.greater_equal(self.ip, self.ip.dtype.type(_POW10[k]), out=mask[slot])
                if not self.all_fast:
                    mask[slot] &= self.fast
            np.add(next(digits), _ZERO, out=chars[slot], casting="unsafe")
        at += self.max_int
        if self.max_d:
            chars[at] = ord(".")
            mask[at] = self.digits > 0
            at += 1
            digits = _digits(self.frac, self.max_d)
            for k in range(self.max_d):
                slot = at + self.max_d - 1 - k
                np.add(next(digits), _ZERO, out=chars[slot], casting="unsafe")
                np.less(self.max_d - 1 - k, self.digits, out=mask[slot])
            at += self.max_d
        if not self.all_finite:
            n = len(self.missing)
            chars[at : at + n] = np.frombuffer(self.missing, np.uint8)[:, None]
            mask[at : at + n] = ~self.finite
            at += n
        if at < chars.shape[0]:
            chars[at:] = 0
            mask[at:] = False
            for r, text in zip(self.slow.tolist(), self.slow_text, strict=True):
                chars[at : at + len(text), r] = np.frombuffer(text, np.uint8)
                mask[at : at + len(text), r] = True


def _digits(t: np.ndarray, n: int) -> Iterator[np.ndarray]:
    """The `n` lowest decimal digits of the non-negative integers `t`, units first, each in the
    same buffer (use it before asking for the next). floor_divide, multiply and subtract into
    kept buffers: 2.6x cheaper than np.divmod, which allocates its two results every digit."""
    x = t.copy()
    q = np.empty_like(x)
    r = np.empty_like(x)
    for _ in range(n):
        np.floor_divide(x, 10, out=q)
        np.multiply(q, 10, out=r)
        np.subtract(x, r, out=r)
        yield r
        x, q = q, x


def format_numbers(v: np.ndarray, missing: bytes = b"") -> tuple[np.ndarray, np.ndarray]:
    """(chars, mask): row i of chars[mask[i]] is the text of v[i] — `str(int(v))` for an
    integral value below 2**53, `repr(v)` for any other finite one, `missing` for NaN and ±inf.
    """
    num = _Numbers(v, missing)
    chars = np.zeros((num.width, num.rows), dtype=np.uint8)
    mask = np.zeros((num.width, num.rows), dtype=bool)
    num.fill(chars, mask)
    return chars.T, mask.T


class CsvWriter:
    """`write_csv`'s text for a stream of snapshot batches."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._scratch = _Scratch()

    def header(self) -> None:
        from optterm.present.chain import CSV_COLUMNS

        csv.writer(self._out, lineterminator="\n").writerow(CSV_COLUMNS)

    def write(self, batch: SnapshotBatch) -> None:
        rows = int(batch.counts.sum())
        if not rows:
            return
        heads = io.StringIO()
        w = csv.writer(heads, lineterminator="\n")
        for s in batch.heads:
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
                    "",  # the comma before the strike
                ]
            )
        prefixes = [h.encode() for h in heads.getvalue().split("\n")[:-1]]
        b = _Blocks(rows)
        b.choice(prefixes, np.repeat(np.arange(len(prefixes)), batch.counts))
        for k, name in enumerate(BATCH_COLUMNS):
            if k:
                b.literal(b",")
            b.numbers(batch.columns[name], b"")
        b.literal(b"\n")
        for piece in b.pieces(self._scratch):
            self._out.write(piece)


class JsonWriter:
    """The elements of the JSON export's snapshots array: each `json.dumps(snapshot_to_dict(s))`
    without `age_seconds`, after ",\\n" (or "\\n" for the first)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._written = 0
        self._scratch = _Scratch()

    def _head(self, head: ChainSnapshot, strikes: np.ndarray) -> str:
        """The document's text up to its rows: `snapshot_to_dict` of the snapshot without its
        strikes (same keys, same order), with the real ATM strike and strike count put in."""
        from optterm.present.chain import snapshot_to_dict

        doc = snapshot_to_dict(head)
        doc.pop("age_seconds", None)  # an export is history, not a live view
        if strikes.size:
            doc["atm_strike"] = _num(float(strikes[_atm(strikes, head.spot)]))
        doc["strike_count"] = int(strikes.size)
        text = json.dumps(doc)
        if not text.endswith('"rows": []}'):
            raise AssertionError("the rows are no longer the last key of a snapshot document")
        sep = "," if self._written else ""
        self._written += 1
        return sep + "\n" + text[: -len("[]}")]

    def write(self, batch: SnapshotBatch) -> None:
        strikes = batch.columns["strike"]
        ends = np.cumsum(batch.counts).tolist()
        rows = ends[-1] if ends else 0
        prefix = [b""]
        first = np.zeros(rows, dtype=np.intp)
        atm = np.zeros(rows, dtype=np.intp)
        last = np.zeros(rows, dtype=np.intp)
        pending = ""  # documents of snapshots without strikes, written before the next row
        start = 0
        for head, end in zip(batch.heads, ends, strict=True):
            text = self._head(head, strikes[start:end])
            if end == start:
                pending += text + "[]}"
                continue
            prefix.append((pending + text + "[").encode())
            pending = ""
            first[start] = len(prefix) - 1
            atm[start + _atm(strikes[start:end], head.spot)] = 1
            last[end - 1] = 1
            start = end
        if rows:
            b = _Blocks(rows)
            b.choice(prefix, first)
            b.literal(b'{"strike": ')
            b.numbers(strikes, b"null")
            b.choice([b', "atm": false', b', "atm": true'], atm)
            for side in ("ce", "pe"):
                for k, f in enumerate(LEG_FIELDS):
                    lead = f', "{side}": {{' if k == 0 else ", "
                    b.literal(f'{lead}"{f}": '.encode())
                    b.numbers(batch.columns[f"{side}_{f}"], b"null")
                b.literal(b"}")
            b.choice([b"}, ", b"}]}"], last)
            for piece in b.pieces(self._scratch):
                self._out.write(piece)
        if pending:
            self._out.write(pending)


def _atm(strikes: np.ndarray, spot: float) -> int:
    """`ChainSnapshot.atm_index` of these strikes."""
    return int(np.argmin(np.abs(strikes - spot)))


def _num(x: float) -> int | float | None:
    """present/chain.py's JSON/CSV value of one number (the head fields are few)."""
    if not math.isfinite(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x
