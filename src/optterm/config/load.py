"""Finding, reading and validating the settings: :func:`load_settings` and :class:`ConfigError`.

Where the file comes from, first match wins:

1. the ``path`` argument of :func:`load_settings` (the CLI's ``--config``);
2. the ``OPTTERM_CONFIG`` environment variable;
3. :func:`optterm.infra.paths.config_file` (``$XDG_CONFIG_HOME/optterm/config.toml`` on Linux),
   if it exists;
4. otherwise no file: the built-in defaults.

A file named by 1 or 2 must exist. ``OPTTERM_*`` overrides (env.py) are applied on top of the
file and validated together with it; every problem, whatever its source, ends up in one
:class:`ConfigError` whose message names the file or variable, the key and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optterm.config.checks import redact_url
from optterm.config.env import apply_overrides, env_overrides
from optterm.config.messages import translate
from optterm.config.schema import Settings
from optterm.infra import paths

__all__ = ["ConfigError", "load_settings"]

# Enough problems to fix in one go without burying the first one.
_MAX_PROBLEMS = 5
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class ConfigError(Exception):
    """Settings could not be loaded. ``message`` is one self-contained paragraph.

    ``problems`` holds one sentence per problem (the message joins them); ``path`` is the
    config file involved, if any.
    """

    def __init__(
        self, message: str, *, problems: Sequence[str] = (), path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems) or (message,)
        self.path = path

    def __str__(self) -> str:
        return self.message


def _error(problems: Sequence[str], path: Path | None) -> ConfigError:
    shown = list(problems[:_MAX_PROBLEMS])
    if len(problems) > len(shown):
        shown.append(f"(And {len(problems) - len(shown)} more.)")
    return ConfigError(
        "Invalid optterm configuration. " + " ".join(shown), problems=problems, path=path
    )


def load_settings(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate settings; raise :class:`ConfigError` on any problem.

    ``path`` is an explicit config file (the CLI's ``--config``); ``env`` replaces
    ``os.environ`` as the source of ``OPTTERM_*`` variables (the default config location
    still comes from the process environment, through platformdirs). ``labels`` names the
    command-line flag behind an ``OPTTERM_*`` entry of ``env`` so messages say ``--scenario``
    rather than a variable the user never set. Nothing is written.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    file, how = _locate_file(path, environ)
    data = _read_toml(file, how) if file is not None else {}
    overrides, origins, problems = env_overrides(environ, labels or {})
    try:
        settings = Settings.validated(apply_overrides(data, overrides), file)
    except ValidationError as exc:
        problems += translate(exc, file, origins)
    else:
        if not problems:
            return settings
    raise _error(problems, file) from None


def _locate_file(path: Path | str | None, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """The file to read and how it was chosen (for messages); None when there is none."""
    if path is not None:
        return Path(path).expanduser().absolute(), "named explicitly"
    named = next((value for name, value in environ.items() if name.upper() == "OPTTERM_CONFIG"), "")
    if named.strip():
        return Path(named.strip()).expanduser().absolute(), "named by OPTTERM_CONFIG"
    default = paths.config_file()
    if default.exists():
        return default, "the default location"
    return None, ""


def _read_toml(file: Path, how: str) -> dict[str, Any]:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {file} ({how}) does not exist. Create it (config.example.toml "
            "documents every key), or name another file.",
            path=file,
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"Config file {file} ({how}) is a directory; name the TOML file inside it.",
            path=file,
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Config file {file} ({how}) cannot be read: {exc.strerror or exc}.", path=file
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {file} is not UTF-8 text (bad byte at offset {exc.start}); "
            "TOML files must be UTF-8.",
            path=file,
        ) from None
    # Windows editors (Notepad) save UTF-8 with a byte-order mark, which TOML does not allow
    # and tomllib reports as an invalid statement at line 1: it carries no meaning, drop it.
    text = text.removeprefix("\ufeff")
    try:
        return tomllib.loads(text)
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(
            f"Config file {file} nests arrays or tables too deeply to be an optterm config; "
            "fix or replace it (config.example.toml documents every key).",
            path=file,
        ) from None
    except tomllib.TOMLDecodeError as exc:
        complaint = str(exc)
        match = _TOML_POSITION_RE.search(complaint)
        if match is None:
            where = complaint.replace("(at end of document)", "at the end of the file").strip()
        else:
            line, column = int(match.group(1)), int(match.group(2))
            source_lines = text.splitlines()
            shown = source_lines[line - 1].strip() if 0 < line <= len(source_lines) else ""
            shown = redact_url(shown)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            where = f"{complaint[: match.start()]} at line {line}, column {column}"
            if shown:
                where += f" (the line reads: {shown})"
        raise ConfigError(
            f"Config file {file} is not valid TOML: {where}. Fix the syntax and try again.",
            path=file,
        ) from None
