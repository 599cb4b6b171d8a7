"""Run the benchmarks: `python -m benchmarks [name-filter ...]`.

Every `benchmarks/bench_*.py` module exposes `run() -> dict[str, dict]`, each figure being
`{"value": number, "unit": str, "budget": number (optional), "floor": number (optional),
"reference": str or number (optional), "note": str (optional)}`: `budget` is a maximum (lower is
better: times, sizes), `floor` a minimum (higher is better: throughputs, speed-up ratios), and
`reference` what the figure was measured against in the same run where it has such a yardstick
(`python -c pass`, the two-ndtr floor, a peer library), as a short text ("py_vollib_vectorized
1,104,000 options/s") or a number in the figure's unit. The figures are merged into
build/bench.json (figures from modules not run this time are kept) and printed as a table of
figure, value, budget, reference and verdict. With filters, only modules whose name contains one
of them run (`python -m benchmarks store`). Exit status 0 only when every figure of the run holds
its budget or floor, 1 when one does not (verdict MISS), 2 when a module fails.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
OUTPUT = PACKAGE_DIR.parent / "build" / "bench.json"


def discover(filters: list[str]) -> list[str]:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if m.name.startswith("bench_") and not m.ispkg
    )
    if filters:
        names = [n for n in names if any(f in n.removeprefix("bench_") for f in filters)]
    return names


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def over_budget(fig: dict[str, Any]) -> bool:
    budget = fig.get("budget")
    floor = fig.get("floor")
    return (budget is not None and fig["value"] > budget) or (
        floor is not None and fig["value"] < floor
    )


def _limits(fig: dict[str, Any]) -> str:
    """The budget column: `≤ x` for a budget (maximum), `≥ x` for a floor (minimum)."""
    parts = []
    if fig.get("floor") is not None:
        parts.append(f"≥ {_fmt(fig['floor'])}")
    if fig.get("budget") is not None:
        parts.append(f"≤ {_fmt(fig['budget'])}")
    return ", ".join(parts)


def _reference(fig: dict[str, Any]) -> str:
    ref = fig.get("reference")
    if ref is None:
        return ""
    if isinstance(ref, int | float) and not isinstance(ref, bool):
        return f"{_fmt(ref)} {fig.get('unit', '')}".rstrip()
    return str(ref)


def verdict(fig: dict[str, Any]) -> str:
    """OK or MISS against the figure's budget or floor; empty for a figure that has neither."""
    if not _limits(fig):
        return ""
    return "MISS" if over_budget(fig) else "OK"


def print_table(figures: dict[str, dict[str, Any]]) -> None:
    rows = [("figure", "value", "budget", "reference", "verdict")]
    for name, fig in figures.items():
        value = f"{_fmt(fig['value'])} {fig.get('unit', '')}".rstrip()
        rows.append((name, value, _limits(fig), _reference(fig), verdict(fig)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        print(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
            f"{r[3]:<{widths[3]}}  {r[4]}".rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    missed = [name for name, fig in figures.items() if over_budget(fig)]
    held = sum(1 for fig in figures.values() if _limits(fig)) - len(missed)
    summary = f"\nbudgets: {held} held, {len(missed)} missed"
    print(summary + (f": {', '.join(missed)}" if missed else ""))


def main(argv: list[str]) -> int:
    modules = discover(argv)
    if not modules:
        print(f"no benchmark module matches {argv}", file=sys.stderr)
        return 2
    figures: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name in modules:
        t0 = time.perf_counter()
        print(f"running {name} …", file=sys.stderr, flush=True)
        try:
            result = importlib.import_module(f"benchmarks.{name}").run()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        figures.update(result)
        print(f"  {name} took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    merged: dict[str, Any] = {}
    if OUTPUT.exists():
        try:
            merged = json.loads(OUTPUT.read_text(encoding="utf-8"))
        except ValueError:
            merged = {}
    merged.update(figures)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print_table(figures)
    print(f"\nwritten to {OUTPUT}")
    if failed:
        print(f"failed (no figures): {', '.join(failed)}")
        return 2
    return 1 if any(over_budget(f) for f in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
