"""The layout rules of docs/architecture.md that neither ruff nor import-linter can check.

- The top of `src/optterm/` holds only the model, the market calendar, the Textual app and the
  package face; everything else lives in the folder of its part.
- No module imports a private name (`_x`) from another module: what a second module needs is public.
- A module over ~600 lines says in its docstring why it is one module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "optterm"
# appengine.py is the TUI's launcher beside app.py: it starts the engine before Textual is
# imported, so it cannot live in app.py, and the headless engine/ may not import the app.
TOP_LEVEL = {
    "__init__.py",
    "__main__.py",
    "model.py",
    "market.py",
    "app.py",
    "appengine.py",
    "py.typed",
}
LONG = 600
# How a long module's docstring says why it is one module.
SAYS_WHY = re.compile(r"one (long )?module|over 600 lines|longer than most", re.I)


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_the_top_level_holds_only_the_model_market_app_and_face() -> None:
    loose = sorted(p.name for p in SRC.iterdir() if p.is_file() and p.name not in TOP_LEVEL)
    assert loose == [], f"move these into the folder of their part: {loose}"


def private_imports(path: Path, root: Path = SRC) -> list[str]:
    """`from optterm.x import _y` statements in one file (a module's own privates are its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optterm")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_no_module_imports_a_private_name_from_another() -> None:
    found = [hit for p in _modules() for hit in private_imports(p)]
    assert found == []


def test_the_private_import_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from optterm.store.codec import _secret\nfrom optterm.model import __all__\n")
    assert private_imports(bad, tmp_path) == ["bad.py:1 optterm.store.codec._secret"]


def test_a_long_module_says_why_it_is_one_module() -> None:
    unexplained = []
    for p in _modules():
        lines = p.read_text(encoding="utf-8").count("\n")
        if lines > LONG:
            doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
            if not SAYS_WHY.search(doc):
                unexplained.append(f"{p.relative_to(SRC)} ({lines} lines)")
    assert unexplained == [], "split these, or say in the docstring why each is one module"
