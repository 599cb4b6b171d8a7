"""``OPTTERM_*`` environment overrides, applied on top of the file and validated with it.

A variable is ``OPTTERM_`` followed by the dotted key with ``_`` for ``.`` (case-insensitive),
e.g. ``OPTTERM_POLLER_INTERVAL=5``. Lists are comma separated; an empty value is an empty list,
or "unset" for an optional key. The watch list is written ``SYMBOL[:EXPIRIES[:STRIKES]]`` and
replaces the whole ``[[poller.watch]]`` list. Names that belong to other parts of optterm
(:data:`RESERVED_ENV_NAMES`, :data:`RESERVED_ENV_PREFIXES`) are ignored; any other
``OPTTERM_*`` variable that is not a key is an error, because a typo in an override would
otherwise be silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from optterm.config.checks import suggest
from optterm.config.keys import (
    as_model,
    described,
    dotted_key,
    list_item,
    table_name,
    target_of,
    without_none,
)
from optterm.config.schema import Settings, WatchItem
from optterm.infra.clip import quoted

__all__ = [
    "ENV_PREFIX",
    "RESERVED_ENV_NAMES",
    "RESERVED_ENV_PREFIXES",
    "apply_overrides",
    "env_overrides",
    "is_reserved_env_name",
]

ENV_PREFIX = "OPTTERM_"
# Variables that share the prefix but are not settings. OPTTERM_CONFIG picks the file;
# OPTTERM_LOG_FILE is read by logging setup. Broker credentials (OPTTERM_ANGELONE_*, and the
# shorter OPTTERM_ANGEL_* spelling) are deliberately kept out of the settings so they can never
# be echoed back in a config dump or error message. OPTTERM_TEST_* are the crash-test hooks of
# the notification dispatcher (engine/notify/dispatcher.py).
RESERVED_ENV_NAMES: frozenset[str] = frozenset({"OPTTERM_CONFIG", "OPTTERM_LOG_FILE"})
RESERVED_ENV_PREFIXES: tuple[str, ...] = ("OPTTERM_ANGELONE_", "OPTTERM_ANGEL_", "OPTTERM_TEST_")


def _env_keys() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Map every valid variable name to its key path: (leaf keys, section tables)."""
    leaves: dict[str, tuple[str, ...]] = {}
    sections: dict[str, tuple[str, ...]] = {}

    def walk(model: type[BaseModel], loc: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            sub_loc = (*loc, name)
            env_name = ENV_PREFIX + "_".join(sub_loc).upper()
            sub_model = as_model(field.annotation)
            if sub_model is None:
                leaves[env_name] = sub_loc
            else:
                sections[env_name] = sub_loc
                walk(sub_model, sub_loc)

    walk(Settings, ())
    return leaves, sections


def is_reserved_env_name(name: str) -> bool:
    """True for ``OPTTERM_*`` names that belong to other parts of optterm, not to settings."""
    upper = name.upper()
    return upper in RESERVED_ENV_NAMES or upper.startswith(RESERVED_ENV_PREFIXES)


class _EnvValueError(Exception):
    pass


def _coerce_scalar(raw: str, annotation: Any, expect: str) -> Any:
    text = raw.strip()
    # Strings, and the date/time types whose model validators parse strings strictly, pass
    # through; only numbers need converting before the strict model sees them.
    if annotation in (str, date, time, datetime):
        return text
    try:
        return TypeAdapter(annotation).validate_python(text)
    except ValidationError:
        raise _EnvValueError(f"expects {expect}; got {quoted(raw, 60)}") from None


def _coerce_watch(raw: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for index, entry in enumerate(part.strip() for part in raw.split(",") if part.strip()):
        pieces = [piece.strip() for piece in entry.split(":")]
        try:
            if len(pieces) > 3 or not pieces[0]:
                raise ValueError
            numbers = [int(piece) for piece in pieces[1:]]
        except ValueError:
            raise _EnvValueError(
                f"item {index} ({entry!r}) must be written SYMBOL[:EXPIRIES[:STRIKES]] with "
                "whole numbers, like NIFTY:3:50; items are separated by commas"
            ) from None
        item: dict[str, Any] = {"symbol": pieces[0]}
        item.update(zip(("expiries", "strikes"), numbers, strict=False))
        items.append(item)
    return items


def _coerce_env(raw: str, loc: tuple[str, ...]) -> Any:
    field = target_of(loc).field
    assert field is not None  # loc comes from walking the model
    optional, annotation = without_none(field.annotation)
    if optional and not raw.strip():
        return None
    item = list_item(annotation)
    if item is WatchItem:
        return _coerce_watch(raw)
    if item is not None:
        parts = [part for part in raw.split(",") if part.strip()]
        try:
            return [_coerce_scalar(part, item, described(field, "item")) for part in parts]
        except _EnvValueError as exc:
            raise _EnvValueError(f"{exc} (as one of the comma-separated items)") from None
    return _coerce_scalar(raw, annotation, described(field, "expect"))


def env_overrides(
    environ: Mapping[str, str], labels: Mapping[str, str]
) -> tuple[dict[tuple[str, ...], Any], dict[tuple[str | int, ...], str], list[str]]:
    """Read ``OPTTERM_*`` variables: (values by key path, origin label by key path, problems).

    ``labels`` names the command-line flag behind a variable, for messages (see load_settings).
    """
    leaves, sections = _env_keys()
    values: dict[tuple[str, ...], Any] = {}
    origins: dict[tuple[str | int, ...], str] = {}
    problems: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or is_reserved_env_name(upper):
            continue
        if upper in sections:
            loc = sections[upper]
            model = target_of(loc).model
            keys = ", ".join(
                f"{upper}_{key.upper()}" for key in (model.model_fields if model else ())
            )
            problems.append(
                f"{_origin(name, labels)} names the table {table_name(loc)}, not a key; "
                f"set one of {keys}."
            )
            continue
        if upper not in leaves:
            match = suggest(upper, leaves)
            hint = f"; did you mean {match}?" if match else "."
            problems.append(
                f"{_origin(name, labels)} does not name an optterm setting{hint} "
                f"Settings are {ENV_PREFIX}<SECTION>_<KEY> for the keys in "
                "config.example.toml; unset the variable or fix its name."
            )
            continue
        loc = leaves[upper]
        try:
            values[loc] = _coerce_env(environ[name], loc)
        except _EnvValueError as exc:
            problems.append(f"{_origin(name, labels)}: {dotted_key(loc)} {exc}.")
            continue
        origins[loc] = _origin(name, labels)
    return values, origins, problems


def _origin(name: str, labels: Mapping[str, str]) -> str:
    """How to name where an override came from: a CLI flag, or an environment variable."""
    flag = labels.get(name)
    return f"Command-line option {flag}" if flag else f"Environment variable {name}"


def apply_overrides(
    data: dict[str, Any], overrides: Mapping[tuple[str, ...], Any]
) -> dict[str, Any]:
    """A copy of the file's tables with each override set at its key path."""
    merged = dict(data)
    for loc, value in overrides.items():
        table = merged
        for part in loc[:-1]:
            child = table.get(part, {})
            if not isinstance(child, dict):
                # The file has a non-table here; leave it so its own error is reported.
                break
            table[part] = child = dict(child)
            table = child
        else:
            table[loc[-1]] = value
    return merged
