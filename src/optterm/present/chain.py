"""Chain and history rendering for the CLI: a Rich table for people, JSON and CSV for scripts.

JSON/CSV carry every value exactly as stored: integral values print as integers, NaN (no value)
is `null` in JSON and an empty field in CSV, never 0.

Units: OI and volume are in contracts and the lot size in units, as the exchange reports them,
except where a contract has a fixed size (CDS: a lot of 1 is one contract of 1,000 USD, priced
in rupees per USD to ₹0.0025); there the header says what a lot is and prices show four
decimals. Options on a futures contract (MCX) say which futures their spot is.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from optterm.market import IST
from optterm.model import LEG_FIELDS, Buildup, ChainSnapshot, Feed, Metrics, Quote
from optterm.present.header import (
    change_figure,
    header_figures,
    price_decimals,
    symbol_price_decimals,
)

if TYPE_CHECKING:
    from optterm.engine.analytics.chain import Enriched

__all__ = [
    "CSV_COLUMNS",
    "basis_line",
    "chain_table",
    "csv_rows",
    "data_age",
    "lot_label",
    "metrics_fitted",
    "metrics_lines",
    "metrics_to_dict",
    "snapshot_to_dict",
    "source_label",
    "strike_decimals",
    "strike_text",
    "underlying_label",
    "write_csv",
]

CSV_COLUMNS: tuple[str, ...] = (
    "provider_ts",
    "symbol",
    "expiry",
    "provider",
    "feed",
    "spot",
    "lot_size",
    "strike",
    *(f"ce_{f}" for f in LEG_FIELDS),
    *(f"pe_{f}" for f in LEG_FIELDS),
)


def _num(x: float) -> int | float | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def data_age(snap: ChainSnapshot, now: datetime | None = None) -> float:
    """Seconds since the data was current.

    Live data ages from the provider's own timestamp. Simulated data runs on a simulated session
    clock that has nothing to do with the wall clock, so it ages from when it was fetched.
    """
    now = now or datetime.now(UTC)
    since = snap.fetched_at if snap.feed is Feed.SIMULATED else snap.provider_ts
    return max(0.0, (now - since).total_seconds())


def source_label(snap: ChainSnapshot) -> str:
    return f"{snap.feed.value} via {snap.provider}"


def lot_label(snap: ChainSnapshot) -> str:
    """ "lot 65" (units), or where contracts have a fixed size "lot 1 = 1,000 USD"."""
    contract = snap.contract
    if contract is None:
        return f"lot {snap.lot_size:,}"
    size, unit = contract
    return f"lot {snap.lot_size:,} = {snap.lot_size * size:,.0f} {unit}".rstrip()


_FUT_SYMBOL = re.compile(r"^(?P<name>.+?)(?P<day>\d{2})(?P<mon>[A-Z]{3})(?P<yy>\d{2})FUT$")


def underlying_label(snap: ChainSnapshot) -> str | None:
    """ "on CRUDEOIL 18-Dec-26 FUT" for options on a futures contract (the spot is its price);
    None for options on an index or a stock."""
    symbol = snap.underlying_future
    if symbol is None:
        return None
    m = _FUT_SYMBOL.match(symbol)
    if m is None:
        return f"on {symbol}"
    return f"on {m['name']} {m['day']}-{m['mon'].title()}-{m['yy']} FUT"


_ANALYTIC_FIELDS = ("iv", "delta", "gamma", "theta", "vega")


def _leg_dict(snap: ChainSnapshot, enriched: Enriched | None, side: str, i: int) -> dict[str, Any]:
    legs = snap.side(side)
    out: dict[str, Any] = {f: _num(float(legs.column(f)[i])) for f in LEG_FIELDS}
    if enriched is not None:
        a = enriched.side(side)
        # The provider's numbers stay as given; ours sit beside them, named as ours.
        out["iv_used"] = _num(float(a.iv[i]))
        out["iv_solved"] = _num(float(a.iv_solved[i]))
        for name in _ANALYTIC_FIELDS[1:]:
            out[name] = _num(float(getattr(a, name)[i]))
        # Over the chosen interval (the document's "change"), like the buildup beside it.
        out["interval_oi_change"] = _num(float(a.oi_change[i]))
        out["buildup"] = Buildup(int(a.buildup[i])).label or None
    return out


def metrics_to_dict(m: Metrics) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in m.__dataclass_fields__:
        value = getattr(m, name)
        if name in ("symbol", "expiry", "ts", "provider", "feed", "view"):
            continue
        doc[name] = _num(float(value)) if isinstance(value, float | int) else value
    doc["view"] = {
        "bias": m.view.bias.value,
        "score": m.view.score,
        "reasons": list(m.view.reasons),
    }
    return doc


def snapshot_to_dict(
    snap: ChainSnapshot, *, now: datetime | None = None, enriched: Enriched | None = None
) -> dict[str, Any]:
    atm = snap.atm_index() if len(snap) else None
    rows = []
    for i, strike in enumerate(snap.strikes.tolist()):
        rows.append(
            {
                "strike": _num(strike),
                "atm": i == atm,
                "ce": _leg_dict(snap, enriched, "CE", i),
                "pe": _leg_dict(snap, enriched, "PE", i),
            }
        )
    doc: dict[str, Any] = {
        "symbol": snap.symbol,
        "expiry": snap.expiry.isoformat(),
        "provider": snap.provider,
        "feed": snap.feed.value,
        "provider_ts": snap.provider_ts.astimezone(UTC).isoformat(),
        "fetched_at": snap.fetched_at.astimezone(UTC).isoformat(),
        "age_seconds": round(data_age(snap, now), 3),
        "spot": _num(snap.spot),
        "prev_close": _num(snap.prev_close),
        "change": _num(snap.change),
        "futures": _quote_dict(snap.futures),
        "vix": _quote_dict(snap.vix),
        "expiries": [d.isoformat() for d in snap.expiries],
        "lot_size": snap.lot_size,
        "atm_strike": _num(float(snap.strikes[atm])) if atm is not None else None,
        "strike_count": len(snap),
        "rows": rows,
    }
    # Only where they apply, so an index or stock chain's document is what it always was.
    if snap.contract is not None:
        doc["contract"] = {"size": _num(snap.contract[0]), "unit": snap.contract[1]}
    if snap.underlying_future is not None:
        doc["underlying_future"] = snap.underlying_future
    if enriched is not None:
        doc["metrics"] = metrics_to_dict(enriched.metrics)
        # The metrics are over the whole chain; the rows may be a window of it.
        doc["metrics_strikes"] = enriched.chain_strikes
        doc["chain_strikes"] = snap.chain_strikes
        change = enriched.change
        doc["change"] = {
            "interval": change.interval.name,
            "label": change.label,
            "since": None if change.since is None else change.since.astimezone(UTC).isoformat(),
            "complete": change.complete,
            "available": change.available,
        }
    return doc


def _quote_dict(q: Quote | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {
        "value": _num(q.value),
        "prev_close": _num(q.prev_close),
        "source": q.source,
        "ts": q.ts.astimezone(UTC).isoformat(),
    }


def csv_rows(snaps: Iterable[ChainSnapshot]) -> Iterator[list[Any]]:
    for snap in snaps:
        head = [
            snap.provider_ts.astimezone(UTC).isoformat(),
            snap.symbol,
            snap.expiry.isoformat(),
            snap.provider,
            snap.feed.value,
            _num(snap.spot),
            snap.lot_size,
        ]
        ce = [snap.ce.column(f) for f in LEG_FIELDS]
        pe = [snap.pe.column(f) for f in LEG_FIELDS]
        for i, strike in enumerate(snap.strikes.tolist()):
            vals = [_num(float(c[i])) for c in ce] + [_num(float(c[i])) for c in pe]
            yield [*head, _num(strike), *("" if v is None else v for v in vals)]


def write_csv(out: IO[str], snaps: Iterable[ChainSnapshot], header: bool = True) -> None:
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(CSV_COLUMNS)
    w.writerows(csv_rows(snaps))


def _fmt_int(x: float) -> str:
    return "" if math.isnan(x) else f"{x:,.0f}"


def _fmt_signed(x: float) -> str:
    return "" if math.isnan(x) else f"{x:+,.0f}"


def _fmt_price(x: float) -> str:
    return "" if math.isnan(x) else f"{x:,.2f}"


def _fmt_price4(x: float) -> str:
    return "" if math.isnan(x) else f"{x:,.4f}"


def _fmt_iv(x: float) -> str:
    return "" if math.isnan(x) else f"{x * 100:.2f}"


def _fmt_greek(digits: int):
    def fmt(x: float) -> str:
        return "" if math.isnan(x) else f"{x:.{digits}f}"

    return fmt


# (label, column, formatter, source): "legs" reads the snapshot, "calc" our analytics.
def _fmt_buildup(x: float) -> str:
    return _BU_TAGS.get(int(x), "") if x == x else ""


_BU_TAGS = {
    int(Buildup.LONG_BUILDUP): "LB",
    int(Buildup.SHORT_BUILDUP): "SB",
    int(Buildup.SHORT_COVERING): "SC",
    int(Buildup.LONG_UNWINDING): "LU",
}
# (label, column, formatter, source): "legs" reads the snapshot, "calc" our analytics (where a
# leg field, the snapshot's when there are none). ΔOI and BU are over the same interval.
_CE = (
    ("OI", "oi", _fmt_int, "legs"),
    ("ΔOI", "oi_change", _fmt_signed, "calc"),
    ("BU", "buildup", _fmt_buildup, "calc"),
    ("Volume", "volume", _fmt_int, "legs"),
    ("IV%", "iv", _fmt_iv, "calc"),
    ("Bid", "bid", _fmt_price, "legs"),
    ("Ask", "ask", _fmt_price, "legs"),
    ("LTP", "ltp", _fmt_price, "legs"),
)
_GREEKS = (
    ("Δ", "delta", _fmt_greek(2), "calc"),
    ("Γ", "gamma", _fmt_greek(4), "calc"),
    ("Θ/day", "theta", _fmt_greek(2), "calc"),
    ("Vega", "vega", _fmt_greek(2), "calc"),
)


def _pick(snap: ChainSnapshot, enriched: Enriched | None, side: str, field: str, source: str):
    if source == "calc" and enriched is not None:
        return getattr(enriched.side(side), field)
    if field in LEG_FIELDS:
        return snap.side(side).column(field)
    return None


def strike_text(x: float, decimals: int | None = None) -> str:
    """A strike as the exchange writes it: thousands separated, no trailing zeros (25,700;
    102.5; 88.75), or with `decimals` places (a chain's column: strike_decimals); empty for
    NaN."""
    if math.isnan(x):
        return ""
    if decimals is not None:
        return f"{x:,.{decimals}f}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def strike_decimals(strikes: Iterable[float]) -> int:
    """The places that write every strike of a grid alike (0 for NIFTY's 25,700; 1 for a
    2.5-rupee stock grid; 2 for USDINR's 88.75): a column of 86, 86.25, 86.5 reads as three
    different kinds of number, 86.00, 86.25, 86.50 as one."""
    places = 0
    for x in strikes:
        if math.isfinite(x):
            text = f"{x:.2f}".rstrip("0")
            places = max(places, len(text) - text.index(".") - 1)
    return places


def _or_na(text: str) -> str:
    return text or "n/a"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 100:.2f}%"


def _ratio(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def _places(symbol: str) -> tuple[int | None, int]:
    """A footer's decimals: strikes (None: as the exchange writes them; a currency pair's two,
    88.75 and 89.00 alike) and prices (USDINR's straddle 0.2075 and forward 89.0100: four)."""
    p = symbol_price_decimals(symbol)
    return (2 if p == 4 else None), p


def metrics_lines(m: Metrics) -> list[str]:
    """The footer under a chain: the numbers a trader reads first, each with its basis."""
    k, p = _places(m.symbol)
    rank = "n/a (too little history)" if m.iv_rank is None else f"{m.iv_rank:.0f}"
    pct = "" if m.iv_percentile is None else f" · IV pctile {m.iv_percentile:.0f}"
    # No gamma exposure at all: no level where it changes sign either.
    flip = "n/a" if math.isnan(m.gex) else (strike_text(m.gamma_flip, k) or "none within 5%")
    return [
        f"PCR OI {_ratio(m.pcr_oi)} · PCR vol {_ratio(m.pcr_volume)} · "
        f"PCR ΔOI {_ratio(m.pcr_oi_change)} · max pain {_or_na(strike_text(m.max_pain, k))}",
        f"support (max put OI) {_or_na(strike_text(m.support, k))} · resistance (max call OI) "
        f"{_or_na(strike_text(m.resistance, k))} · most put OI added "
        f"{_or_na(strike_text(m.support_change, k))}"
        f" · most call OI added {_or_na(strike_text(m.resistance_change, k))}",
        f"ATM {strike_text(m.atm_strike, k)} IV {_pct(m.atm_iv)} · straddle "
        f"{'n/a' if math.isnan(m.straddle) else f'{m.straddle:,.{p}f}'} · 25Δ RR "
        f"{'n/a' if math.isnan(m.rr25) else f'{m.rr25 * 100:+.2f} vol'} · IV rank {rank}{pct}",
        f"GEX {'n/a' if math.isnan(m.gex) else f'{m.gex / 1e7:+,.2f} cr/1%'} · flip "
        f"{flip} · call wall {_or_na(strike_text(m.call_wall, k))} · "
        f"put wall {_or_na(strike_text(m.put_wall, k))} · "
        f"forward {m.forward:,.{p}f} ({m.forward_source})",
        f"view: {m.view.line()}",
    ]


def _metric_items(m: Metrics) -> list[list[tuple[str, int]]]:
    """The footer's figures in reading order, grouped as metrics_lines groups them, each with a
    rank: 1 is what a trader reads first and keeps longest when the footer must be shorter."""
    k, p = _places(m.symbol)
    rank = "n/a (too little history)" if m.iv_rank is None else f"{m.iv_rank:.0f}"
    flip = "n/a" if math.isnan(m.gex) else (strike_text(m.gamma_flip, k) or "none within 5%")
    groups = [
        [
            (f"PCR OI {_ratio(m.pcr_oi)}", 1),
            (f"PCR vol {_ratio(m.pcr_volume)}", 4),
            (f"PCR ΔOI {_ratio(m.pcr_oi_change)}", 4),
            (f"max pain {_or_na(strike_text(m.max_pain, k))}", 1),
        ],
        [
            (f"support (max put OI) {_or_na(strike_text(m.support, k))}", 2),
            (f"resistance (max call OI) {_or_na(strike_text(m.resistance, k))}", 2),
            (f"most put OI added {_or_na(strike_text(m.support_change, k))}", 4),
            (f"most call OI added {_or_na(strike_text(m.resistance_change, k))}", 4),
        ],
        [
            (f"ATM {strike_text(m.atm_strike, k)} IV {_pct(m.atm_iv)}", 2),
            (f"straddle {'n/a' if math.isnan(m.straddle) else f'{m.straddle:,.{p}f}'}", 2),
            (f"25Δ RR {'n/a' if math.isnan(m.rr25) else f'{m.rr25 * 100:+.2f} vol'}", 4),
            (f"IV rank {rank}", 4),
        ],
        [
            (f"GEX {'n/a' if math.isnan(m.gex) else f'{m.gex / 1e7:+,.2f} cr/1%'}", 3),
            (f"flip {flip}", 3),
            (f"call wall {_or_na(strike_text(m.call_wall, k))}", 3),
            (f"put wall {_or_na(strike_text(m.put_wall, k))}", 3),
            (f"forward {m.forward:,.{p}f} ({m.forward_source})", 5),
        ],
        # The view's reasons read as one sentence after its bias: "view: neutral: a; b".
        [(f"view: {m.view.bias.value}", 1)]
        + [(("; " if i else ": ") + reason, 5) for i, reason in enumerate(m.view.reasons)],
    ]
    if m.iv_percentile is not None:
        groups[2].append((f"IV pctile {m.iv_percentile:.0f}", 4))
    return groups


def _flow(groups: list[list[tuple[str, int]]], width: int, *, grouped: bool) -> list[str]:
    """Figures laid out in lines of at most `width` cells; a figure is never split across lines
    (a number is never cut). `grouped`: each group starts a new line (else only the view
    does). A figure that begins with its own joiner (the view's reasons: ": " or "; ") keeps
    it within a line and drops it at a line's start."""
    lines: list[str] = []
    line = ""
    for i, group in enumerate(groups):
        if line and (grouped or i == len(groups) - 1):
            lines.append(line)
            line = ""
        for text, _rank in group:
            joined = text if text.startswith((": ", "; ")) else " · " + text
            bare = joined[2:] if joined.startswith((": ", "; ")) else joined[3:]
            if not line:
                line = bare
            elif len(line) + len(joined) <= width:
                line += joined
            else:
                lines.append(line)
                line = bare
    if line:
        lines.append(line)
    return lines


def metrics_fitted(m: Metrics, width: int, max_lines: int) -> list[str]:
    """The footer for a screen `width` cells wide in at most `max_lines` lines: the figures flow
    into the width (a line per group while that fits, else packed), and when they need more
    lines the least important go first (the view's reasons and the forward, then the
    secondary PCRs and IV figures, then gamma); PCR, max pain and the view's bias stay. A
    figure wider than the screen is the only one cut, at its end."""
    groups = _metric_items(m)
    lines: list[str] = []
    for drop in (6, 5, 4, 3, 2):
        kept = [g for g in ([(t, r) for t, r in g if r < drop] for g in groups) if g]
        for grouped in (True, False):
            lines = _flow(kept, width, grouped=grouped)
            if len(lines) <= max_lines:
                return [_cut(line, width) for line in lines]
    return [_cut(line, width) for line in lines[:max_lines]]


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def basis_line(enriched: Enriched, shown: int) -> str:
    """What the figures are over: the chain's strikes (against the `shown` rows) and the
    interval of ΔOI and buildups."""
    listed = enriched.snapshot.chain_strikes
    over = enriched.chain_strikes
    if over is None:
        figures = "figures over the whole chain"
    elif over < listed:
        figures = f"figures over the {over} strikes quoted of {listed} listed"
    else:
        figures = f"figures over all {over} strikes"
    table = "" if shown >= (over or listed) else f" (table shows {shown})"
    return f"{figures}{table} · ΔOI and buildups {enriched.change.label}"


def chain_table(
    snap: ChainSnapshot,
    *,
    now: datetime | None = None,
    enriched: Enriched | None = None,
    greeks: bool = False,
):  # -> rich.table.Table
    from rich.table import Table
    from rich.text import Text

    now = now or datetime.now(UTC)
    age = data_age(snap, now)
    ts = snap.provider_ts.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S IST")
    colour = {1: "green", -1: "red"}
    change = change_figure(snap)
    on = underlying_label(snap)
    decimals = price_decimals(snap)
    title = Text.assemble(
        (f"{snap.symbol} ", "bold"),
        f"expiry {snap.expiry:%d-%b-%Y} · spot ",
        (f"{snap.spot:,.{decimals}f}", "bold"),
        f" {on}" if on else "",
        " ",
        (change.text, colour.get(change.sign, "")),
        f" · {lot_label(snap)}\n",
        Text(" · ").join(Text(f.text, colour.get(f.sign, "")) for f in header_figures(snap, now)),
    )
    caption = f"{source_label(snap)} · data time {ts} · age {age:.0f}s"
    if snap.feed is Feed.SIMULATED:
        caption += " · SIMULATED DATA, NOT MARKET PRICES"
    if enriched is not None:
        caption += (
            "\nIV% is the provider's where it gives one, else solved from LTP (Black-76 on the "
            f"{enriched.metrics.forward_source} forward); Greeks are ours; "
            "max pain strike underlined"
            f"\nΔOI and BU (buildup) {enriched.change.label}"
        )
    cols = list(_CE)
    if decimals == 4:
        cols = [(lb, f, _fmt_price4 if fmt is _fmt_price else fmt, src) for lb, f, fmt, src in cols]
    if greeks and enriched is not None:
        # Greeks take the quote columns' place: the table must still fit a terminal.
        cols = [c for c in cols if c[1] not in ("bid", "ask")]
        greek_cols = list(_GREEKS)
        if decimals == 4:  # theta and vega are rupees of premium: a currency option's quarter paise
            greek_cols = [
                (lb, f, _fmt_greek(4) if f in ("theta", "vega") else fmt, src)
                for lb, f, fmt, src in greek_cols
            ]
        cols[-1:-1] = greek_cols
    table = Table(title=title, caption=caption, header_style="bold", pad_edge=False, expand=False)
    for label, *_ in cols:
        table.add_column(f"CE {label}", justify="right", style="green")
    table.add_column("Strike", justify="center", style="bold", no_wrap=True, min_width=12)
    for label, *_ in reversed(cols):
        table.add_column(f"PE {label}", justify="right", style="red")
    ce_cols = [(fmt, _pick(snap, enriched, "CE", f, src)) for _, f, fmt, src in cols]
    pe_cols = [(fmt, _pick(snap, enriched, "PE", f, src)) for _, f, fmt, src in reversed(cols)]
    atm = snap.atm_index() if len(snap) else -1
    pain = enriched.metrics.max_pain if enriched is not None else math.nan
    places = strike_decimals(snap.strikes.tolist())
    for i, strike in enumerate(snap.strikes.tolist()):
        ce = [fmt(float(c[i])) if c is not None else "" for fmt, c in ce_cols]
        pe = [fmt(float(c[i])) if c is not None else "" for fmt, c in pe_cols]
        cell = Text(strike_text(strike, places), style="underline" if strike == pain else "")
        if i == atm:
            table.add_row(*ce, Text.assemble("▶ ", cell, " ◀"), *pe, style="reverse")
        else:
            table.add_row(*ce, cell, *pe)
    return table
