"""Start-up cost of the CLI as a user pays it: whole `optterm …` processes, in a hermetic home.

- cli.python_startup_ms: `python -c pass`, the reference, measured in the same rounds.
- cli.help_ms and cli.help_vs_python_ratio: `optterm --help`, absolute and as a multiple of the
  reference (the goal that holds on a loaded machine too).
- cli.alerts_list_ms, cli.patterns_ms, cli.status_ms, cli.history_list_ms: the commands that read
  the store and fetch nothing, on a store that exists and is at the current schema (a user's
  second command, not the one that creates the database).
- cli.chain_sim_ms: `optterm chain NIFTY` on the simulator (fetch, analytics, table).
- cli.alerts_list_channel_ms: `alerts list` again, with a notification channel configured (every
  command's config load checks it; config/verdicts.py keeps that from costing an Apprise import
  each time).

Each figure is the median of ROUNDS runs; the commands take turns within a round, so a burst of
load from elsewhere falls on all of them alike. Bytecode is compiled first, as `make` does (see
the Makefile's `bytecode`): with PYTHONDONTWRITEBYTECODE=1 nothing else would write it.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.home import isolated_env

ROUNDS = 9
SRC = Path(__file__).resolve().parent.parent / "src"

# name → (arguments after `optterm --config CONFIG`, budget in ms); None: no --config.
COMMANDS: dict[str, tuple[tuple[str, ...], float]] = {
    "cli.help_ms": (("--help",), 300),
    "cli.alerts_list_ms": (("alerts", "list"), 300),
    "cli.patterns_ms": (("patterns",), 300),
    "cli.status_ms": (("status",), 300),
    "cli.history_list_ms": (("history", "list"), 300),
    "cli.chain_sim_ms": (("--provider", "simulator", "chain", "NIFTY"), 500),
    "cli.alerts_list_channel_ms": (("alerts", "list"), 300),
}
# These run with CHANNEL_CONFIG instead of the empty config.
WITH_CHANNEL = frozenset({"cli.alerts_list_channel_ms"})
CHANNEL_CONFIG = '[notify]\nchannels = { desk = "ntfy://ntfy.example.com/optterm-alerts" }\n'

HELP_RATIO_BUDGET = 3.0


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - t0) * 1000
    # `status` exits 1 for "unhealthy" (no daemon here): a verdict, not a failure to run.
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and "status" not in argv):
        raise RuntimeError(f"{argv[3:]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def _argv(config: Path, args: tuple[str, ...]) -> list[str]:
    base = [sys.executable, "-m", "optterm"]
    if args == ("--help",):
        return [*base, "--help"]  # exactly what a user types first
    return [*base, "--config", str(config), *args]


def run() -> dict[str, Any]:
    compileall.compile_dir(SRC, quiet=1, workers=0)
    samples: dict[str, list[float]] = {name: [] for name in ["python", *COMMANDS]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = isolated_env(root)
        config = root / "optterm.toml"
        config.write_text("")
        with_channel = root / "channel.toml"
        with_channel.write_text(CHANNEL_CONFIG)

        def argv(name: str) -> list[str]:
            return _argv(with_channel if name in WITH_CHANNEL else config, COMMANDS[name][0])

        bare = [sys.executable, "-c", "pass"]
        # Create the store (the first command migrates it) and warm the OS's file cache.
        for name in COMMANDS:
            _time(argv(name), env, root)
        _time(bare, env, root)
        for _ in range(ROUNDS):
            samples["python"].append(_time(bare, env, root))
            for name in COMMANDS:
                samples[name].append(_time(argv(name), env, root))
    med = {name: statistics.median(values) for name, values in samples.items()}
    figures: dict[str, Any] = {
        "cli.python_startup_ms": {
            "value": round(med["python"], 1),
            "unit": "ms",
            "note": f"reference: `python -c pass`, median of {ROUNDS} in the same rounds",
        }
    }
    for name, (args, budget) in COMMANDS.items():
        figures[name] = {
            "value": round(med[name], 1),
            "unit": "ms",
            "budget": budget,
            "note": (
                f"`optterm {' '.join(args)}`{' (a channel configured)' * (name in WITH_CHANNEL)}"
                f", whole process, median of {ROUNDS} "
                f"({min(samples[name]):.0f}–{max(samples[name]):.0f} ms); "
                f"{med[name] / med['python']:.1f}× `python -c pass` ({med['python']:.0f} ms)"
            ),
        }
    figures["cli.help_vs_python_ratio"] = {
        "value": round(med["cli.help_ms"] / med["python"], 2),
        "unit": "x",
        "budget": HELP_RATIO_BUDGET,
        "note": "median `optterm --help` over median `python -c pass`, same rounds",
    }
    return figures
