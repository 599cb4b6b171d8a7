"""The `optterm` command: the typer root, its global options, `main` and how errors are told.

Every command lives in its own module under cli/, listed in cli/commands.py and imported only
when it runs (the root group below loads it by name), so `optterm alerts list` builds one command
group, not sixteen, and commands that do not open the TUI never import Textual.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from typer import _click as click

from optterm import __version__
from optterm.cli.commands import COMMANDS, render_root_help
from optterm.cli.errors import OutputFailed, UsageProblem
from optterm.engine.compose import CliOptions

__all__ = ["app", "main"]


class LazyRoot(typer.core.TyperGroup):
    """The root group: commands come from the table in cli/commands.py and their modules are
    imported on first use; the root's help is drawn from the table, without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [c.name for c in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            entry = next((c for c in COMMANDS if c.name == cmd_name), None)
            if entry is None:
                return None
            self.commands[cmd_name] = _load(entry.name, entry.module, entry.attr)
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(render_root_help(sys.stdout))


def _load(name: str, module: str, attr: str) -> click.Command:
    """The click command for one table entry: a typer sub-app, or one function as a command."""
    target = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        # A command whose help is not its docstring declares it beside it (daemon.STATUS_HELP).
        help_text = getattr(importlib.import_module(module), f"{attr.upper()}_HELP", None)
        single.command(name=name, help=help_text)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


app = typer.Typer(
    cls=LazyRoot,
    name="optterm",
    help="Options-intelligence terminal for F&O traders. With no command, opens the TUI.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"optterm {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: OPTTERM_CONFIG or the platform path)."
        ),
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="Simulator scenario (see `optterm scenarios`).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed.")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per real second.")] = None,
    provider: Annotated[
        str | None, typer.Option(help="Use only this provider (angelone, nse, simulator).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    opts = CliOptions(config=config)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SCENARIO", "--scenario", scenario)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SEED", "--seed", seed)
    opts.set("OPTTERM_PROVIDERS_SIMULATOR_SPEED", "--speed", speed)
    opts.set("OPTTERM_PROVIDERS_ORDER", "--provider", provider)
    opts.set("OPTTERM_LOG_LEVEL", "--log-level", log_level)
    ctx.obj = opts
    if ctx.invoked_subcommand is None:
        from optterm.appengine import run_tui  # the only way into the TUI, so only here

        raise typer.Exit(run_tui(ctx.obj))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: known problems become one paragraph on stderr and an exit code, no traceback.
    `argv` (default: the process's arguments) lets a test run the command in-process."""
    code = 0
    try:
        app(args=None if argv is None else list(argv), prog_name="optterm")
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        code, message = _explain(exc)
        if message is None:
            raise
        from optterm.infra.redact import redact

        if message:
            with contextlib.suppress(OSError):
                sys.stderr.write(f"optterm: {redact(message)}\n")
                sys.stderr.flush()
    code = _flush_stdout(code)
    sys.exit(code)


def _flush_stdout(code: int) -> int:
    """Flush stdout now, where a failure can still be told: at interpreter exit it would be a
    traceback-like 'Exception ignored' line. A reader that went away (`| head`) is not an error
    of ours; a full disk or a closed stdout is (exit 1)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as err:
        _silence_stdout()
        with contextlib.suppress(OSError):
            sys.stderr.write(f"optterm: {_output_problem(err)}\n")
        return code or 1
    return code


def _silence_stdout() -> None:
    # Point fd 1 at /dev/null so the interpreter's own final flush has nowhere to fail.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _output_problem(err: OSError) -> str:
    return (
        f"cannot write the output: {err.strerror or err}. Write it somewhere with free space "
        "(or to the terminal), then run the command again."
    )


# Writing our output failed: the disk (or /dev/full) is full, or the file system said no.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def _explain(exc: Exception) -> tuple[int, str | None]:
    """(exit code, message) for errors a user can fix; (1, None) re-raises a genuine bug."""
    from optterm.config import ConfigError
    from optterm.providers.base import ProviderError, UnknownSymbol
    from optterm.providers.factory import ProviderUnavailable
    from optterm.store import StoreError, StoreIOError, StoreUnavailable

    if isinstance(exc, BrokenPipeError):
        _silence_stdout()  # the reader went away (`| head`): nothing to tell it
        return 1, ""
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS and exc.filename is None:
        _silence_stdout()
        return 1, _output_problem(exc)
    if isinstance(exc, StoreUnavailable | StoreIOError):
        return 1, str(exc)  # an outage: nothing wrong with the command; try again later
    if isinstance(exc, ConfigError | StoreError | UsageProblem | ProviderUnavailable):
        return 2, str(exc)
    if isinstance(exc, UnknownSymbol):
        return 2, str(exc)
    if isinstance(exc, OutputFailed):
        return 1, str(exc)
    if isinstance(exc, ProviderError):
        return 1, f"market data unavailable: {exc}"
    return 1, None


if __name__ == "__main__":
    main()
