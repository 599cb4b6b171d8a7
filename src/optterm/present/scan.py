"""How a scan's results read, for `optterm scan` and the scanner screen: one number format, one
source label, one ordering of rows by a column (n/a last, whichever way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS

__all__ = ["cell_text", "sort_rows", "source_label"]


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


def source_label(source: str) -> str:
    # Simulated figures are never shown as live: the same words as every other screen.
    return "SIMULATED via simulator" if source == "simulator" else source


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
