"""Run the `optterm` command inside the test process, as a user's shell would run it.

A real process costs about a second of interpreter start-up and imports per command, and the CLI
tests run hundreds of commands. This driver calls the same `main()` the `optterm` entry point
calls (so the error explanation, the exit codes and the one-line messages are the real ones)
with what a fresh process would have swapped in for the call: argv, stdin, stdout and stderr
(typer's CliRunner isolation), the environment, the working directory at the front of sys.path
(`python -m` puts it there), the keyring backend chosen again from that environment, and the
logging and excepthook state put back afterwards. An exception that `main()` does not explain
ends the call as the interpreter would end the process: its traceback on stderr, exit code 1.

Commands that install signal handlers or outlive the call (`serve`, the TUI) still need a real
process: use `tests.conftest.run_process` for those.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import click.formatting
import keyring
import keyring.core
from typer.testing import CliRunner

from optterm.cli.root import main

__all__ = ["invoke"]


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `optterm ARGS` with exactly the environment `env` and working directory `cwd`."""
    argv = ["optterm", *args]
    # CliRunner applies overrides on top of os.environ; None removes a variable, so the command
    # sees `env` and nothing else, as a child process started with env=... would.
    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    runner = CliRunner()
    with _process_state(cwd), runner.isolation(input=input, env=overrides) as streams:
        out, err, _ = streams
        # A real process formats help for its own terminal width (COLUMNS), not CliRunner's 80.
        click.formatting.FORCED_WIDTH = None
        keyring.core.init_backend()  # chosen from this environment, as at a process's start
        code = _run_main(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess(
        argv, code, stdout.decode("utf-8"), stderr.decode("utf-8", "backslashreplace")
    )


def _run_main(argv: list[str]) -> int:
    saved = sys.argv
    sys.argv = argv
    try:
        main()
    except SystemExit as exc:
        return _exit_code(exc.code)
    except Exception:
        traceback.print_exc()  # what the interpreter prints for an unexplained error
        return 1
    finally:
        sys.argv = saved
    return 0  # main() always exits; reaching here would be a change in main() itself


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("text"): the interpreter prints it, exit 1
    return 1


@contextlib.contextmanager
def _process_state(cwd: Path) -> Iterator[None]:
    """Working directory, sys.path, keyring, logging and excepthook as a new process has them
    for the call, and this process's own afterwards."""
    cwd = Path(cwd).resolve()
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_keyring = keyring.get_keyring()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_hook = sys.excepthook
    os.chdir(cwd)
    sys.path.insert(0, str(cwd))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        # Modules the command imported from its working directory (a test's keyring backend)
        # belong to that call only; a later test's file of the same name must load afresh.
        for name in set(sys.modules) - saved_modules:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin and Path(origin).resolve().is_relative_to(cwd):
                del sys.modules[name]
        keyring.set_keyring(saved_keyring)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        sys.excepthook = saved_hook
