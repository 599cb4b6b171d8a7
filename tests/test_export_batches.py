"""The export's text does not depend on how the snapshots are batched: each writer keeps its
byte matrices from one batch to the next (present/export.py `_Scratch`), and a smaller or
narrower batch after a larger one must not carry any of the earlier batch's bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import optterm.cli.history as history
from tests.test_export_golden import _export, _fill


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("batches") / "batches.db"
    asyncio.run(_fill(db))
    return db


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_any_batch_size_writes_the_same_text(
    filled: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = await _export(filled, fmt)
    # 13 snapshots: batches of 5 end with a smaller one; the last snapshot (awkward numbers,
    # a wider text) makes the widths change between batches.
    for size in (1, 2, 5):
        monkeypatch.setattr(history, "_BATCH", size)
        assert await _export(filled, fmt) == whole, size
