"""The figures a header shows around a chain, written once for the TUI's header and `optterm
chain`: the day's change (from the previous close, never from whenever this process started),
which listed expiry the chain is and how far off, the future of the expiry's month with its
basis, and India VIX. Each figure that comes from its own quote says its source and age, and a
figure the provider does not give reads "n/a": nothing here is estimated.

Figures are plain text with a sign (+1 up, -1 down, 0 neither or n/a) that front ends colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from optterm.market import CURRENCY, IST, MarketCalendar, contract_text, segment_of
from optterm.model import ChainSnapshot, Feed, Quote
from optterm.present.time import age_text

__all__ = [
    "Figure",
    "change_figure",
    "days_to_expiry",
    "expiry_figure",
    "feed_mode_figure",
    "futures_figure",
    "header_figures",
    "price_decimals",
    "quote_age",
    "replay_badge",
    "session_text",
    "speed_text",
    "symbol_price_decimals",
    "vix_figure",
]


@dataclass(frozen=True, slots=True)
class Figure:
    text: str
    sign: int = 0  # +1 up (green), -1 down (red), 0 neither


def _sign(x: float) -> int:
    return 0 if math.isnan(x) or x == 0 else (1 if x > 0 else -1)


def price_decimals(snap: ChainSnapshot) -> int:
    """Decimals a price of this chain needs: 4 for currency options (a ₹0.0025 tick, whose
    contracts have a fixed size), else 2."""
    return 4 if snap.contract is not None else symbol_price_decimals(snap.symbol)


def symbol_price_decimals(symbol: str) -> int:
    """Decimals of `symbol`'s prices when only its name is known: 4 for a currency pair."""
    return 4 if segment_of(symbol) == CURRENCY else 2


def level_spec(symbol: str) -> str:
    """The format of a price level of `symbol` read at a glance (breakevens, σ bands, the P&L
    grid's spots): whole rupees for NSE and MCX (25,700; 5,450), a currency pair's four places
    (88.7925), where whole rupees would say 89 for every level."""
    return f",.{symbol_price_decimals(symbol)}f" if segment_of(symbol) == CURRENCY else ",.0f"


def gamma_spec(gamma: float | None) -> str:
    """Gamma to the places its size needs: NIFTY's -0.00123 a point, a USDINR position's -1,482
    a rupee (five places printed it -1481.88380)."""
    size = abs(gamma) if gamma is not None else 0.0
    return "+,.0f" if size >= 100 else "+,.2f" if size >= 1 else "+.5f"


def change_figure(snap: ChainSnapshot) -> Figure:
    """ "+68.12 (+0.27%)": spot against the previous close; "chg n/a" without one."""
    diff = snap.change
    if math.isnan(diff) or not snap.prev_close:
        return Figure("chg n/a")
    d = price_decimals(snap)
    return Figure(f"{diff:+,.{d}f} ({diff / snap.prev_close:+.2%})", _sign(diff))


def days_to_expiry(snap: ChainSnapshot) -> int:
    """Calendar days from the data's exchange-local date to the expiry (0 on expiry day)."""
    return (snap.expiry - snap.provider_ts.astimezone(IST).date()).days


def expiry_figure(snap: ChainSnapshot) -> Figure:
    """ "expiry 2/6 · 8d": which of the listed expiries, and the calendar days left."""
    rank = snap.expiry_rank
    place = f"expiry {rank[0]}/{rank[1]}" if rank else "expiry n/a"
    days = days_to_expiry(snap)
    left = "expires today" if days == 0 else f"{days}d to expiry"
    return Figure(f"{place} · {left}")


def quote_age(snap: ChainSnapshot, quote: Quote, now: datetime) -> float:
    """Seconds since `quote` was current. Simulated quotes carry simulated times, like their
    chain, so they age from when the chain was fetched (present.chain.data_age does the same)."""
    since = snap.fetched_at if snap.feed is Feed.SIMULATED else quote.ts
    return max(0.0, (now - since).total_seconds())


def _where(snap: ChainSnapshot, quote: Quote, now: datetime) -> str:
    return f"[{quote.source} · {age_text(quote_age(snap, quote, now))}]"


def futures_figure(snap: ChainSnapshot, now: datetime) -> Figure:
    """ "FUT 25,748.75 basis +20.30 [source · age]": the month's future and future − spot."""
    q = snap.futures
    if q is None or math.isnan(q.value):
        return Figure("FUT n/a")
    basis = q.value - snap.spot
    d = price_decimals(snap)
    shown = "n/a" if math.isnan(basis) else f"{basis:+,.{d}f}"
    return Figure(f"FUT {q.value:,.{d}f} basis {shown} {_where(snap, q, now)}", _sign(basis))


def vix_figure(snap: ChainSnapshot, now: datetime) -> Figure:
    """ "VIX 13.54 +0.50 (+3.83%) [source · age]": India VIX against its previous close."""
    q = snap.vix
    if q is None or math.isnan(q.value):
        return Figure("VIX n/a")
    diff = q.change
    move = ""
    if not math.isnan(diff) and q.prev_close:
        move = f" {diff:+.2f} ({diff / q.prev_close:+.2%})"
    return Figure(f"VIX {q.value:,.2f}{move} {_where(snap, q, now)}", _sign(diff))


def feed_mode_figure(snap: ChainSnapshot, now: datetime) -> Figure | None:
    """ "STREAM · 0.4s" or "POLL · stream 12s": how a streamed watch got this chain, and the
    age of the stream's last packet. None when streaming is off ([stream] enabled = false)."""
    mode = snap.meta.get("feed_mode")
    if mode is None:
        return None
    age = "no packet yet"
    at = snap.meta.get("stream_packet_at")
    if at:
        try:
            age = age_text(max(0.0, (now - datetime.fromisoformat(at)).total_seconds()))
        except ValueError:
            age = "n/a"
    if mode == "STREAM":
        return Figure(f"STREAM · {age}")
    return Figure(f"POLL · stream {age}", -1)


def header_figures(snap: ChainSnapshot, now: datetime) -> list[Figure]:
    """The line under the chain's own: for an MCX or currency contract first what one lot is
    ("1 lot = 1,000 USD"), then expiry, future, VIX (and STREAM / POLL when streaming). India
    VIX is NSE's equity volatility: an MCX or currency chain does not show it (a "VIX n/a"
    there would read as missing data)."""
    figures = [expiry_figure(snap), futures_figure(snap, now)]
    contract = contract_text(snap.symbol)
    if contract is not None:
        figures.insert(0, Figure(contract))
    if segment_of(snap.symbol) is None:
        figures.append(vix_figure(snap, now))
    mode = feed_mode_figure(snap, now)
    return figures if mode is None else [*figures, mode]


def session_text(calendar: MarketCalendar, now: datetime, open_now: bool) -> str:
    """ " market open ", or for a segment with a session of its own its name and today's hours:
    " MCX 09:00–23:30 open " (MCX's close follows US daylight saving time)."""
    state = "open" if open_now else "closed"
    if calendar.segment is None:
        return f" market {state} "
    return f" {calendar.session_label(calendar.local_date(now))} {state} "


def speed_text(speed: float) -> str:
    """ "60×", "½×", "0.25×": a replay's speed, session seconds per second."""
    if speed == 0.5:
        return "½×"
    return f"{speed:g}×"


def replay_badge(cursor: datetime, snapshot: datetime, *, playing: bool, speed: float) -> str:
    """ "REPLAY 10:45:00 (snapshot 10:44:45) ▶ 60×": the cursor, the time of the chain shown
    (the newest stored at or before the cursor), and the transport, in exchange time."""
    state = f"▶ {speed_text(speed)}" if playing else f"❚❚ {speed_text(speed)}"
    return (
        f"REPLAY {cursor.astimezone(IST):%H:%M:%S} "
        f"(snapshot {snapshot.astimezone(IST):%H:%M:%S}) {state}"
    )
