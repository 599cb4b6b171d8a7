"""Locations in the settings tree: what a key path such as ``("poller", "watch", 2, "symbol")``
designates in the schema, and how to write it (``poller.watch[2].symbol``, ``[[poller.watch]]``).

Error messages and environment overrides both walk the schema this way, so the key a message
names and the variable that sets it always agree.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from optterm.config.schema import Settings

__all__ = [
    "Target",
    "as_model",
    "described",
    "dotted_key",
    "list_item",
    "table_name",
    "target_of",
    "without_none",
]


def without_none(annotation: Any) -> tuple[bool, Any]:
    """(True, X) for ``X | None``; (False, annotation) for anything else."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return True, args[0]
    return False, annotation


def list_item(annotation: Any) -> Any | None:
    """The item type of ``list[X]``; None for anything else."""
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return None


def as_model(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation names, if it names one (a table rather than a value)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@dataclass(frozen=True)
class Target:
    """What a location in the settings tree designates."""

    model: type[BaseModel] | None  # the table at this location, if it is one
    field: FieldInfo | None  # the nearest field at or above it
    item: bool  # True when the location is an element of the field's list


def target_of(loc: Sequence[str | int]) -> Target:
    """What ``loc`` designates, walking down from :class:`Settings`."""
    model: type[BaseModel] | None = Settings
    field: FieldInfo | None = None
    item = False
    for part in loc:
        if isinstance(part, int):
            item_type = list_item(field.annotation) if field is not None else None
            model, item = as_model(item_type), True
            continue
        if model is None or part not in model.model_fields:
            return Target(None, None, False)
        field, item = model.model_fields[part], False
        model = as_model(without_none(field.annotation)[1])
    return Target(model, field, item)


def dotted_key(loc: Sequence[str | int]) -> str:
    """``poller.watch[2].symbol``: how a key is written in messages."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def table_name(loc: Sequence[str | int]) -> str:
    """``[poller]`` or ``[[poller.watch]]``: how the table at ``loc`` is written in TOML."""
    if not loc:
        return "the top-level table"
    dotted = ".".join(p for p in loc if isinstance(p, str))
    return f"[[{dotted}]]" if isinstance(loc[-1], int) else f"[{dotted}]"


def described(field: FieldInfo | None, name: str) -> str:
    """One part of a field's description (``expect``, ``unit`` or ``item``; see checks.meta)."""
    extra = field.json_schema_extra if field is not None else None
    return str(extra.get(name, "")) if isinstance(extra, dict) else ""
