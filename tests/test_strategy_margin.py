"""SPAN + exposure margin from a SPAN file built for the test, worked out by hand."""

from __future__ import annotations

import math
import os
import zipfile
from datetime import date
from pathlib import Path

import pytest

from optterm.strategy import span as span_module
from optterm.strategy.margin import span_margin
from optterm.strategy.position import Leg, Position
from optterm.strategy.span import SpanError, load_span
from tests.span_files import CALL_RA, PUT_RA, span_xml, write_span

NEAR, FAR = date(2026, 11, 24), date(2026, 12, 29)
BEFORE = date(2026, 11, 12)
LOT = 65


@pytest.fixture
def spn(tmp_path: Path) -> Path:
    return write_span(tmp_path / "nsccl.20261112.i1.spn")


def _pos(*legs: Leg, symbol: str = "NIFTY", lot: int = LOT) -> Position:
    return Position(symbol, lot, legs)


def _margin(spn: Path, pos: Position, today: date = BEFORE, index: bool = True):
    f = load_span(spn, [pos.symbol])
    return span_margin(pos, f, today=today, is_index=index)


def test_one_lot_of_futures_is_its_worst_scenario_plus_2_percent_exposure(spn: Path) -> None:
    m = _margin(spn, _pos(Leg("FUT", NEAR, 1, 25100.0)))
    assert m.scan_risk == 2000 * LOT
    assert m.span == 2000 * LOT
    assert m.exposure == pytest.approx(0.02 * 25100 * LOT)
    assert m.total == pytest.approx(130000 + 32630)
    assert "SPAN intraday file of 2026-11-12, created 20261112 1030" in m.source


def test_a_short_call_pays_its_premium_in_through_the_net_option_value(spn: Path) -> None:
    m = _margin(spn, _pos(Leg("CE", NEAR, -1, 300.0, 25000.0)))
    assert m.scan_risk == 580 * LOT  # scenario 12: up 3/3, vol down
    assert m.net_option_value == -300 * LOT
    assert m.span == (580 + 300) * LOT
    assert m.exposure == pytest.approx(0.02 * 25000 * LOT)  # on the underlying, not premium
    # Bought instead: the premium covers the risk; no SPAN, no exposure.
    long = _margin(spn, _pos(Leg("CE", NEAR, 1, 300.0, 25000.0)))
    assert long.span == 0.0 and long.exposure == 0.0


def test_a_short_strangle_nets_its_scenarios(spn: Path) -> None:
    pos = _pos(Leg("CE", NEAR, -2, 300.0, 25000.0), Leg("PE", NEAR, -2, 80.0, 24500.0))
    m = _margin(spn, pos)
    worst = max(-2 * LOT * (c + p) for c, p in zip(CALL_RA, PUT_RA, strict=True))
    assert m.scan_risk == pytest.approx(worst)
    assert m.short_option_minimum == 5.0 * 4 * LOT  # the file's 5 per short option unit
    assert m.span == pytest.approx(worst + 2 * LOT * (300 + 80))
    assert m.exposure == pytest.approx(0.02 * 25000 * 4 * LOT)


def test_a_calendar_spread_is_charged_per_spread_and_loses_its_benefit_on_expiry_day(
    spn: Path,
) -> None:
    pos = _pos(Leg("FUT", NEAR, 1, 25100.0), Leg("FUT", FAR, -1, 25300.0))
    m = _margin(spn, pos)
    assert m.scan_risk == pytest.approx(0.01 * 2000 * LOT)  # the far leg moves 1 % more
    assert m.calendar_charge == pytest.approx(420 * LOT)  # 65 delta units spread
    assert m.span == pytest.approx(0.01 * 2000 * LOT + 420 * LOT)
    # On the near expiry's day (an index): each expiry scanned alone, no spread formed.
    day = _margin(spn, pos, today=NEAR)
    assert day.calendar_charge == 0.0
    assert day.scan_risk == pytest.approx(2000 * LOT + 2020 * LOT)
    assert day.expiry_day
    # A stock, since 5-May-2026, loses it on its expiry day too (SEBI, 5-Feb-2026).
    rel = _pos(Leg("FUT", NEAR, 1, 1505.0), Leg("FUT", FAR, -1, 1512.0), symbol="RELIANCE", lot=500)
    stock = _margin(spn, rel, today=NEAR, index=False)
    assert stock.calendar_charge == 0.0
    assert stock.exposure == pytest.approx(0.035 * (1505 + 1512) * 500)
    # The day before, it spreads.
    assert _margin(spn, rel, index=False).calendar_charge == pytest.approx(30 * 500)


def test_before_may_2026_a_stock_kept_its_calendar_benefit_on_expiry_day(tmp_path: Path) -> None:
    near, far = date(2026, 4, 28), date(2026, 5, 26)
    f = write_span(tmp_path / "old.spn", near="20260428", far="20260526")
    rel = _pos(Leg("FUT", near, 1, 1505.0), Leg("FUT", far, -1, 1512.0), symbol="RELIANCE", lot=500)
    stock = _margin(f, rel, today=near, index=False)
    assert stock.calendar_charge == pytest.approx(30 * 500)
    nifty = _pos(Leg("FUT", near, 1, 25100.0), Leg("FUT", far, -1, 25300.0))
    assert _margin(f, nifty, today=near).calendar_charge == 0.0  # an index: since Feb-2025


def test_the_calendar_charge_counts_delta_units_not_lots(spn: Path) -> None:
    """The file's rate is per spread of one unit of the underlying: three lots of a futures
    calendar are 3 x 65 spreads; an option leg spreads its composite delta."""
    three = _pos(Leg("FUT", NEAR, 3, 25100.0), Leg("FUT", FAR, -3, 25300.0))
    assert _margin(spn, three).calendar_charge == pytest.approx(420 * 3 * LOT)
    # Short 2 lots of the near 25000 call (composite delta 0.55), long 1 lot of far futures:
    # near delta -1.1 x 65, far +65: 65 spreads form, limited by the far leg.
    mixed = _pos(Leg("CE", NEAR, -2, 300.0, 25000.0), Leg("FUT", FAR, 1, 25300.0))
    assert _margin(spn, mixed).calendar_charge == pytest.approx(420 * LOT)


def test_a_short_option_expiring_today_carries_2_percent_more_exposure(spn: Path) -> None:
    pos = _pos(Leg("CE", NEAR, -1, 300.0, 25000.0))
    assert _margin(spn, pos, today=NEAR).exposure == pytest.approx(0.04 * 25000 * LOT)


def test_the_file_is_cached_and_reread_only_when_it_changes(
    spn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_span(spn, ["NIFTY"], cache)
    assert (cache / f"{spn.name}.json").is_file()

    def no_parse(*_a: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(span_module, "_parse", no_parse)
    again = load_span(spn, ["nifty"], cache)
    assert again.business_date == first.business_date == BEFORE
    pos = _pos(Leg("CE", NEAR, -1, 300.0, 25000.0), Leg("FUT", FAR, 1, 25300.0))
    a = span_margin(pos, first, today=BEFORE, is_index=True)
    b = span_margin(pos, again, today=BEFORE, is_index=True)
    assert a == b
    # Another underlying, or a changed file, is read from the file again.
    with pytest.raises(AssertionError, match="parsed again"):
        load_span(spn, ["RELIANCE"], cache)
    st = spn.stat()
    os.utime(spn, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(AssertionError, match="parsed again"):
        load_span(spn, ["NIFTY"], cache)


def test_nse_zip_is_read_like_the_spn(spn: Path, tmp_path: Path) -> None:
    z = tmp_path / "nsccl.20261112.i1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("nsccl.20261112.i1.spn", span_xml())
    assert load_span(z, ["NIFTY"]).commodity("NIFTY").underlying == 25000.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (span_xml()[:1500], "is not a usable SPAN risk-parameter file"),
        ("<html><body>Access denied</body></html>", "not <spanFile>"),
        (span_xml().replace("<a>-1400</a>", "", 1), "risk array of 15 values"),
        (span_xml().replace("<date>20261112</date>", ""), "no business date"),
        ("", "is not a usable SPAN"),
    ],
)
def test_a_corrupt_span_file_is_refused_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.spn"
    bad.write_text(content, encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(SpanError, match=message) as err:
        load_span(bad, ["NIFTY"], cache)
    assert "\n" not in str(err.value)
    assert not cache.exists()  # nothing stored


def test_missing_file_underlying_or_contract_says_so(spn: Path, tmp_path: Path) -> None:
    with pytest.raises(SpanError, match="check the path"):
        load_span(tmp_path / "nope.spn", ["NIFTY"])
    f = load_span(spn, ["NIFTY"])
    with pytest.raises(SpanError, match="BANKNIFTY is not in SPAN intraday file"):
        f.commodity("BANKNIFTY")
    with pytest.raises(SpanError, match=r"NIFTY 25100 CE 2026-11-24 is not in SPAN"):
        span_margin(_pos(Leg("CE", NEAR, -1, 1.0, 25100.0)), f, today=BEFORE, is_index=True)
    assert math.isfinite(f.commodity("NIFTY").underlying)
