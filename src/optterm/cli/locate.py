"""`optterm locate`: where optterm reads its config and keeps its data and logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from optterm.cli.context import load_settings, options, print_json

__all__ = ["locate"]


def locate(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print where optterm reads its config and keeps its data and logs."""
    from optterm.engine.compose import store_url
    from optterm.infra import paths

    opts = options(ctx)
    settings = load_settings(ctx)
    config_file = opts.config or os.environ.get("OPTTERM_CONFIG") or paths.config_file()
    doc = {
        "config": str(config_file),
        "config_exists": Path(config_file).exists(),
        "data": str(paths.data_dir()),
        "logs": str(paths.log_dir()),
        "store": _redact_url(store_url(settings)),
    }
    if as_json:
        print_json(doc)
        return
    for key, value in doc.items():
        if key != "config_exists":
            note = "" if key != "config" or doc["config_exists"] else "  (not created; defaults)"
            typer.echo(f"{key:<7} {value}{note}")


def _redact_url(url: str) -> str:
    """The store's URL with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads (nor could the store open it): as given
        return url
