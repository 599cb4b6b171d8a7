"""Pydantic's validation errors, reworded: one sentence per problem naming where the value came
from (the file, an ``OPTTERM_*`` variable or a command-line option), the dotted key and what is
allowed, in the words of the field's own description and never in pydantic's.

The wording is part of the product (people fix their config from it), and tests pin it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from optterm.config.checks import redact_url, suggest
from optterm.config.keys import (
    as_model,
    described,
    dotted_key,
    list_item,
    table_name,
    target_of,
    without_none,
)

__all__ = ["Origins", "translate"]

# Where an override came from, by key path: "Environment variable OPTTERM_POLLER_INTERVAL".
Origins = Mapping[tuple[str | int, ...], str]


def translate(exc: ValidationError, file: Path | None, origins: Origins) -> list[str]:
    """One self-contained sentence per error in ``exc``, each naming its source and key."""
    problems = []
    for error in exc.errors(include_url=False):
        error_loc = tuple(error["loc"])
        loc = error_loc
        if error["type"] == "optterm":
            loc = (*error_loc, *error["ctx"].get("subloc", ()))
        problems.append(f"{_source_of(loc, error_loc, file, origins)}: {_describe(error, loc)}")
    return problems


def _expectation(loc: Sequence[str | int]) -> str:
    target = target_of(loc)
    if target.model is not None:
        return f"a table ({table_name(loc)})"
    if target.field is None:
        return "a value of another type"
    annotation = without_none(target.field.annotation)[1]
    if target.item:
        return described(target.field, "item") or "a value of another type"
    item = list_item(annotation)
    if item is not None and as_model(item) is not None:
        return f"an array of tables ([[{dotted_key(loc)}]])"
    return described(target.field, "expect") or "a value of another type"


def _plain_number(value: object) -> str:
    """15.0 as "15", so a bound of an integer field does not read as a fraction."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _found(value: object, loc: Sequence[str | int] = ()) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {_plain_number(value)}"
    if isinstance(value, str):
        is_url = bool(loc) and str(loc[-1]).endswith("url")
        text = redact_url(value) if is_url else value
        if len(text) > 60:
            text = text[:57] + "..."
        return f"the string {text!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, time):
        return f"the time {value.isoformat()}"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def _bounds(field: FieldInfo | None) -> tuple[object, object]:
    low = high = None
    for constraint in field.metadata if field is not None else ():
        low = getattr(constraint, "ge", getattr(constraint, "gt", low))
        high = getattr(constraint, "le", getattr(constraint, "lt", high))
    return low, high


_RANGE_ERRORS = frozenset(
    {"greater_than_equal", "greater_than", "less_than_equal", "less_than", "finite_number"}
)


def _describe(error: Mapping[str, Any], loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    key = dotted_key(loc)
    if kind == "extra_forbidden":
        parent, name = loc[:-1], str(loc[-1])
        model = target_of(parent).model
        allowed = list(model.model_fields) if model is not None else []
        match = suggest(name, allowed)
        hint = f"; did you mean '{dotted_key((*parent, match))}'?" if match else "."
        return (
            f"unknown key '{key}'{hint} The keys allowed "
            f"{'in ' + table_name(parent) if parent else 'at the top level'} are: "
            f"{', '.join(allowed)}."
        )
    if kind == "missing":
        parent = loc[:-1]
        # Array-of-tables entries are known by their index, plain tables by their header.
        where = dotted_key(parent) if parent and isinstance(parent[-1], int) else table_name(parent)
        return f"{where} is missing the required key '{loc[-1]}'."
    if kind == "optterm":
        return f"{key} {error['ctx']['reason']}."
    if kind in _RANGE_ERRORS:
        target = target_of(loc)
        low, high = _bounds(target.field)
        unit = described(target.field, "unit")
        unit = f" {unit}" if unit else ""
        return (
            f"{key} must be between {_plain_number(low)} and {_plain_number(high)}{unit}; "
            f"got {_found(value, loc)}."
        )
    if kind == "too_short":
        return f"{key} must not be empty; give {_expectation(loc)}."
    if kind.endswith(("_type", "_parsing")) or kind in {"int_from_float", "is_instance_of"}:
        return f"{key} expects {_expectation(loc)}; got {_found(value, loc)}."
    # Anything not anticipated above: pydantic's one-line summary, never its full dump.
    return f"{key}: {error['msg']}."


def _source_of(
    loc: tuple[str | int, ...],
    error_loc: tuple[str | int, ...],
    file: Path | None,
    origins: Origins,
) -> str:
    for size in range(len(loc), 0, -1):
        if loc[:size] in origins:
            return origins[loc[:size]]
    # A cross-field check (close before open) can fail because of a variable that set the
    # *other* field; name it too so the reader looks in both places.
    related = ", ".join(sorted(v for k, v in origins.items() if k[: len(error_loc)] == error_loc))
    if file is None:
        return related or "The built-in defaults"
    if related:
        return f"Config file {file} together with {related[0].lower()}{related[1:]}"
    return f"Config file {file}"
