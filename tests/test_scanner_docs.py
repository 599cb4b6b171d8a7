"""docs/scanner.md lists exactly the scanner's fields (with their tiers) and presets."""

from __future__ import annotations

import re
from pathlib import Path

from optterm.engine.scanner.fields import FIELDS
from optterm.engine.scanner.presets import PRESETS

DOC = Path(__file__).resolve().parent.parent / "docs" / "scanner.md"


def _table(section: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
            rows.append([c.strip("`").replace("\\|", "|") for c in cells])
    return rows


def test_the_field_table_is_the_code_s_field_list():
    rows = _table("Fields")
    assert [r[0] for r in rows] == [f.name for f in FIELDS]
    assert [(r[1], r[2], r[3]) for r in rows] == [(f.tier, f.unit, f.meaning) for f in FIELDS]


def test_the_preset_table_is_the_code_s_presets():
    rows = _table("Presets")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (p.name, p.condition, p.sort) for p in PRESETS.values()
    ]
