"""How a scan's results read, for `optterm scan` and the scanner screen: one number format, one
source label, each column's age (n/a with the reason), one ordering of rows by a column (n/a
last, whichever way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS
from optterm.present.time import age_text


class ScanRun(Protocol):
    """What of a run (engine/scanner/run.py ScanRun) is shown here."""

    @property
    def source(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def ages(self) -> Mapping[str, float | None]: ...
    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def result(self) -> Any: ...
    def column_age(self, column: str, now: datetime | None = None) -> float | None: ...


__all__ = [
    "TIER_NAMES",
    "ScanRun",
    "ages_line",
    "cell_text",
    "column_ages",
    "feed_word",
    "sort_rows",
    "source_label",
    "tiers_line",
]

TIER_NAMES = {"futures": "futures", "atm": "ATM", "chain": "chain fields"}


# Fields that count things (units of a lot, contracts, days): whole numbers, never "550.00".
_COUNT_UNITS = frozenset({"units", "contracts", "days"})


def cell_text(value: Any, field: str | None = None) -> str:
    """A result cell: n/a for a missing number, a word as it is, a count (`field` in units,
    contracts or days) as a whole number, any other number with two decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if field is not None and float(value).is_integer() and _unit(field) in _COUNT_UNITS:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _unit(field: str) -> str | None:
    i = FIELD_INDEX.get(field)
    return None if i is None else FIELDS[i].unit


def feed_word(source: str) -> str:
    """LIVE or SIMULATED: what a scan's source is (the store's replay is neither)."""
    if source == "simulator":
        return "SIMULATED"
    return "STORED" if source == "store" else "LIVE"


def source_label(source: str) -> str:
    # Simulated figures are never shown as live: the same words as every other screen.
    return f"{feed_word(source)} via {source}"


def _na(run: ScanRun, column: str) -> str:
    return run.result.unavailable.get(column) or f"not given by {run.source}"


def column_ages(run: ScanRun, now: datetime) -> dict[str, float | None]:
    """Each shown column's age in seconds as of `now` (None: n/a)."""
    return {c: run.column_age(c, now) for c in run.columns}


def ages_line(run: ScanRun, now: datetime) -> str:
    """ "ages: price_chg% 4s · ivp n/a (why)" for the shown columns ("" with none)."""
    parts = []
    for column, age in column_ages(run, now).items():
        parts.append(f"{column} n/a ({_na(run, column)})" if age is None
                     else f"{column} {age_text(age)}")  # fmt: skip
    return "ages: " + " · ".join(parts) if parts else ""


def tiers_line(run: ScanRun, now: datetime) -> str:
    """ "futures 4s · ATM 38s · chain fields n/a (not given by angelone)": how old each tier
    of the source is (its freshest column), as of `now`."""
    from optterm.engine.scanner.fields import FIELDS

    shift = max(0.0, (now - run.at).total_seconds())
    parts = []
    for tier, word in TIER_NAMES.items():
        given = [a for f in FIELDS if f.tier == tier and f.derived is None
                 and (a := run.ages.get(f.name)) is not None]  # fmt: skip
        if given:
            parts.append(f"{word} {age_text(min(given) + shift)}")
        else:
            parts.append(f"{word} n/a (not given by {run.source})")
    return " · ".join(parts)


def sort_rows(
    rows: Sequence[Mapping[str, Any]], column: str, *, descending: bool
) -> list[Mapping[str, Any]]:
    """`rows` ordered by `column` (numbers as numbers, words alphabetically); a row whose value
    is n/a comes last either way, as in the scan's own `sort`."""
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]

    def key(row: Mapping[str, Any]) -> tuple[int, Any]:
        value = row[column]
        return (0, value) if isinstance(value, str) else (1, float(value))

    return sorted(present, key=key, reverse=descending) + missing
