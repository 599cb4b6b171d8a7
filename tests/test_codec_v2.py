"""Blobs written by format version 2 (committed, made by the version-2 encoder: one deflate
stream per snapshot) decode forever: every column and every single cell comes back as stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optterm.model import LEG_FIELDS
from optterm.store.codec import ColumnBlob, decode_chain, decode_columns

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "codec" / "v2_blobs.npz"


@pytest.fixture(scope="module")
def v2() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def _blob(v2: dict[str, np.ndarray], name: str) -> bytes:
    blob = v2[f"{name}_blob"].tobytes()
    assert blob[0] == 2  # really a version-2 blob
    return blob


def test_a_version_2_chain_decodes_bit_for_bit(v2: dict[str, np.ndarray]) -> None:
    strikes, ce, pe = decode_chain(_blob(v2, "chain"))
    assert np.array_equal(strikes, v2["chain_strike"])
    for side, legs in (("ce", ce), ("pe", pe)):
        for f in LEG_FIELDS:
            src = v2[f"chain_{side}_{f}"]
            assert np.array_equal(legs.column(f), src, equal_nan=True), (side, f)


def test_version_2_cells_and_awkward_values(v2: dict[str, np.ndarray]) -> None:
    blob = _blob(v2, "awkward")
    cols = decode_columns(blob)
    cb = ColumnBlob(blob)
    for name in ("strike", "ce_oi", "pe_ltp", "ce_iv"):
        src = v2[f"awkward_{name}"]
        assert np.array_equal(cols[name], src, equal_nan=True), name
        cells = np.array([cb.value(name, i) for i in range(src.size)])
        assert np.array_equal(cells, src, equal_nan=True), name


def test_an_empty_version_2_blob(v2: dict[str, np.ndarray]) -> None:
    assert decode_columns(_blob(v2, "empty"))["strike"].shape == (0,)
