"""The benchmark runner (`python -m benchmarks`): its table of figure, value, budget, reference
and verdict, and its exit status (0 only when every budget of the run holds)."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import benchmarks.__main__ as runner
import pytest

FIGURES: dict[str, dict[str, Any]] = {
    "x.ratio": {
        "value": 3.4,
        "unit": "x",
        "floor": 3,
        "reference": "peer 1,000,000 options/s",
    },
    "x.latency_ms": {"value": 0.61, "unit": "ms", "budget": 0.5, "reference": 0.42},
    "x.plain": {"value": 12_345, "unit": "rows/s", "note": "no budget, no reference"},
}


def _run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, modules: dict[str, Any]
) -> tuple[int, Path]:
    out = tmp_path / "bench.json"
    monkeypatch.setattr(runner, "OUTPUT", out)
    monkeypatch.setattr(runner, "discover", lambda filters: sorted(modules))

    def import_module(name: str) -> types.SimpleNamespace:
        result = modules[name.removeprefix("benchmarks.")]
        if isinstance(result, Exception):

            def fail() -> dict[str, Any]:
                raise result

            return types.SimpleNamespace(run=fail)
        return types.SimpleNamespace(run=lambda: result)

    monkeypatch.setattr(runner.importlib, "import_module", import_module)
    return runner.main([]), out


def test_table_has_budget_reference_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    runner.print_table(FIGURES)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["figure", "value", "budget", "reference", "verdict"]
    ratio = next(line for line in lines if line.startswith("x.ratio"))
    assert "3.400 x" in ratio and "≥ 3" in ratio and "peer 1,000,000 options/s" in ratio
    assert ratio.endswith("OK")
    latency = next(line for line in lines if line.startswith("x.latency_ms"))
    assert "≤ 0.500" in latency and "0.420 ms" in latency and latency.endswith("MISS")
    plain = next(line for line in lines if line.startswith("x.plain"))
    assert plain.split() == ["x.plain", "12,345", "rows/s"]
    assert "budgets: 1 held, 1 missed: x.latency_ms" in lines


def test_exit_status_is_zero_only_when_every_budget_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    held = {k: v for k, v in FIGURES.items() if k != "x.latency_ms"}
    status, out = _run(monkeypatch, tmp_path, {"bench_a": held})
    assert status == 0
    assert json.loads(out.read_text())["x.ratio"]["reference"] == "peer 1,000,000 options/s"

    status, _ = _run(monkeypatch, tmp_path, {"bench_a": held, "bench_b": FIGURES})
    assert status == 1

    status, out = _run(monkeypatch, tmp_path, {"bench_a": held, "bench_c": RuntimeError("x")})
    assert status == 2
    assert "x.ratio" in json.loads(out.read_text())  # the other module's figures are kept


def test_the_chain_table_bench_builds_its_inputs_with_the_current_types() -> None:
    # A bench's hand-built analytics went stale when SideAnalytics grew a field, and `make bench`
    # lost the figure with a TypeError; building one tick is cheap and catches that here.
    from benchmarks.bench_tui import _Base

    snap, enriched = _Base().tick(1)
    assert enriched.ce.oi_change.shape == snap.strikes.shape
    assert enriched.pe.buildup.dtype.name == "int8"
