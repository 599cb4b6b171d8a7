"""The figures under the chain fit the screen: flowed into its width without cutting a figure,
and on a short terminal only the most important stay, so the chain keeps its rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from optterm.engine.analytics.chain import enrich
from optterm.model import Metrics
from optterm.present.chain import metrics_fitted, metrics_lines
from optterm.providers.nse.parse import parse_chains
from tests.conftest import FIXTURES

FETCHED = datetime(2025, 7, 17, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    name = "nse_option-chain-indices_NIFTY_2025-07-17_full.json"
    payload = json.loads((FIXTURES / name).read_bytes())
    chains = parse_chains(payload, "NIFTY", lot_size=75, fetched_at=FETCHED)
    return enrich(chains[min(chains)]).metrics


def figures(lines: list[str]) -> list[str]:
    """Every figure shown, whichever line it landed on."""
    text = " · ".join(lines).replace(": ", " · ").replace("; ", " · ")
    return [part.strip() for part in text.split(" · ")]


@pytest.mark.parametrize("width", [60, 78, 118, 198])
def test_every_figure_is_whole_and_within_the_width(metrics: Metrics, width: int) -> None:
    lines = metrics_fitted(metrics, width, max_lines=99)
    assert all(len(line) <= width for line in lines)
    # Nothing dropped with room to spare, and no figure split between lines.
    assert sorted(figures(lines)) == sorted(figures(metrics_lines(metrics)))


def test_a_short_screen_keeps_the_figures_read_first(metrics: Metrics) -> None:
    everything = metrics_fitted(metrics, 78, max_lines=99)
    short = metrics_fitted(metrics, 78, max_lines=3)
    assert len(everything) > 3 >= len(short)
    shown = " ".join(short)
    for first in ("PCR OI", "max pain", "view: ", "support (max put OI)", "straddle"):
        assert first in shown
    # The reasons of the view and the forward are the first to go.
    assert "forward" not in shown and metrics.view.reasons[0] not in shown


def test_wide_enough_reads_as_the_command_line_footer(metrics: Metrics) -> None:
    assert metrics_fitted(metrics, 400, max_lines=99) == metrics_lines(metrics)
