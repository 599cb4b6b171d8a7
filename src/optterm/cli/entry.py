"""The `optterm` entry point: `optterm --help` and `--version` answered before typer is imported,
the rest by cli/root.py.

`optterm --help` (or `-h`) with nothing else is printed from the static table in cli/commands.py
in a few milliseconds; everything else, including `optterm alerts --help`, goes through typer
(whose root prints the same page and the same version line).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

HELP_FLAGS = ("--help", "-h")


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) == 1 and args[0] in HELP_FLAGS:
        from optterm.cli.commands import render_root_help

        sys.stdout.write(render_root_help(sys.stdout))
        sys.stdout.flush()
        sys.exit(0)
    if args == ["--version"]:
        from optterm import __version__

        sys.stdout.write(f"optterm {__version__}\n")
        sys.exit(0)
    # Pydantic looks for plugins (importlib.metadata over every installed distribution, 15-40 ms)
    # the first time a model is built, which every command's config load does; optterm uses
    # none. A value the user set wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from optterm.cli.root import main as root_main

    root_main(argv)
