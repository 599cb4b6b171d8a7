"""The strategy being built in the TUI: legs picked from the chain and the what-if it is seen
under (spot, IV, date), analysed on the engine's latest chains of its underlying.

Written once for every front end that builds a strategy from a live chain: the dashboard adds a
leg (`b`/`s` on a chain row), the strategy screen changes lots and the what-if and shows
`analyse(state)`. It lives on the EngineState, so the strategy survives switching screens. The
maths is strategy/ (imported on first use: a TUI that never builds a strategy never loads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.state import EngineState
    from optterm.providers.angelone.positions import PositionGroup
    from optterm.store.strategies import SavedLeg, SavedStrategy
    from optterm.strategy.analysis import Analysis
    from optterm.strategy.margin import Margin
    from optterm.strategy.marketdata import StrategyMarket
    from optterm.strategy.position import Position
    from optterm.strategy.span import SpanFile

__all__ = ["BrokerKey", "DeskLeg", "DeskResult", "StrategyDesk", "WhatIf", "broker_margin"]

# One step of each what-if key: spot in percent, IV in vol points, the date in days.
SPOT_STEP_PCT = 0.5
IV_STEP = 1.0
DAY_STEP = 1


@dataclass(frozen=True, slots=True)
class DeskLeg:
    """A leg as picked: `lots` > 0 bought, < 0 sold; `price` the entry (per the fill model at the
    moment it was picked); `iv_shift` this leg's own IV what-if in vol points."""

    kind: str  # CE / PE / FUT
    expiry: date
    strike: float  # 0 for a future
    lots: int
    price: float
    iv_shift: float = 0.0

    def same_contract(self, other: DeskLeg) -> bool:
        return (self.kind, self.expiry, self.strike) == (other.kind, other.expiry, other.strike)


@dataclass(frozen=True, slots=True)
class WhatIf:
    spot_pct: float = 0.0  # spot moved by this percentage (forwards move with it)
    iv_shift: float = 0.0  # vol points on every leg
    days: int = 0  # "now" moved this many calendar days on (never past the first expiry)

    @property
    def is_live(self) -> bool:
        return self == WhatIf()


@dataclass(frozen=True, slots=True, eq=False)
class DeskResult:
    """What the screen shows: the analysis, or why there is none (`problem`, one line)."""

    analysis: Analysis | None
    problem: str | None
    whatif: WhatIf


class StrategyDesk:
    """The legs of one underlying and the what-if. Legs of another underlying start a new
    strategy (a position is on one underlying)."""

    def __init__(self) -> None:
        self.span: SpanFile | None = None  # the [strategy] span_file, read for `symbol`
        self.span_note = ""  # why there is no margin (no file set, loading, unreadable)
        self._span_key: tuple[str, str] | None = None  # (path, symbol) read or being read
        self.symbol: str | None = None
        self.legs: list[DeskLeg] = []
        self.whatif = WhatIf()
        self.version = 0  # bumped on every change: a screen redraws only what changed
        # The saved strategy the legs are (None once a leg changes), and when and where the
        # newest entry price was taken: what a save keeps.
        self.name: str | None = None
        self.priced_at: datetime | None = None
        self.source = ""
        self.compare: list[SavedStrategy] = []  # saved strategies shown beside this one
        # The broker's margin for the legs (Angel One's calculator, when logged in): the legs it
        # was asked for, its labelled figures, or why there are none ("" when not logged in).
        self.broker_key: BrokerKey | None = None
        self.broker: dict[str, Any] | None = None
        self.broker_note = ""

    def _legs_changed(self) -> None:
        self.name = None
        self._changed()

    # -- the legs -----------------------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1

    @staticmethod
    def entry_price(ltp: float, bid: float, ask: float, lots: int, fill: str = "ltp") -> float:
        """The entry of a picked leg under the fill model ([strategy] fill): the last traded
        price, the mid, or the touch (a buy pays the ask, a sell gets the bid); the LTP when a
        quote is missing."""
        if fill == "mid" and _ok(bid) and _ok(ask):
            return (bid + ask) / 2
        if fill == "touch":
            quote = ask if lots > 0 else bid
            if _ok(quote):
                return quote
        return ltp if _ok(ltp) else 0.0

    def add(
        self, symbol: str, leg: DeskLeg, *, priced_at: datetime | None = None, source: str = ""
    ) -> str:
        """Add `leg` (merged into a leg on the same contract; lots summing to zero remove it),
        its price taken at `priced_at` from `source`. Returns what happened, one line for a
        toast."""
        note = ""
        if self.symbol != symbol:
            if self.legs:
                note = f" (the {self.symbol} strategy was set aside: one underlying at a time)"
            self.symbol, self.legs, self.whatif = symbol, [], WhatIf()
            self.compare = []
        if priced_at is not None:
            self.priced_at, self.source = priced_at, source
        for i, held in enumerate(self.legs):
            if held.same_contract(leg):
                lots = held.lots + leg.lots
                if lots == 0:
                    del self.legs[i]
                    self._legs_changed()
                    return f"{_name(held)} closed: its lots net to zero{note}"
                self.legs[i] = replace(held, lots=lots)
                self._legs_changed()
                return f"{_name(self.legs[i])}{note}"
        self.legs.append(leg)
        self._legs_changed()
        return f"{_name(leg)} added at {leg.price:,.2f}{note}"

    def step_lots(self, index: int, step: int) -> None:
        """One lot more (`step` 1) or fewer (-1) on the leg's side; never through zero."""
        if not 0 <= index < len(self.legs):
            return
        g = self.legs[index]
        size = abs(g.lots) + step
        if size >= 1:
            self.legs[index] = replace(g, lots=size if g.lots > 0 else -size)
            self._legs_changed()

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.legs):
            del self.legs[index]
            self._legs_changed()

    def clear(self) -> None:
        self.legs.clear()
        self.whatif = WhatIf()
        self.compare = []
        self._legs_changed()

    # -- saved strategies ---------------------------------------------------------------------

    def to_save(self) -> tuple[str, list[SavedLeg], datetime, str]:
        """(symbol, legs, when and where the newest entry price was taken) to save; ValueError
        when there is nothing to save."""
        from optterm.store.strategies import SavedLeg

        if not self.legs or self.symbol is None:
            raise ValueError("no legs to save: add some with b / s on the chain first")
        if self.priced_at is None:
            raise ValueError("the legs' entry prices have no quote time; add them from the chain")
        legs = [SavedLeg(g.kind, g.expiry, g.strike, g.lots, g.price) for g in self.legs]
        return self.symbol, legs, self.priced_at, self.source

    def saved_as(self, name: str) -> None:
        self.name = name
        self._changed()

    def load(self, saved: SavedStrategy) -> str:
        """The saved strategy becomes the one built (its legs at their saved entry prices)."""
        self.symbol = saved.symbol
        self.legs = [DeskLeg(g.kind, g.expiry, g.strike, g.lots, g.price) for g in saved.legs]
        self.whatif = WhatIf()
        self.priced_at, self.source = saved.priced_at, saved.source
        self.compare = [c for c in self.compare if c.symbol == saved.symbol]
        self._changed()
        self.name = saved.name
        return f"{saved.name} loaded: {len(self.legs)} leg{'s' if len(self.legs) != 1 else ''}"

    def toggle_compare(self, saved: SavedStrategy) -> str:
        """Show `saved` beside the strategy built, or stop showing it. Returns what happened."""
        if any(c.name == saved.name for c in self.compare):
            self.compare = [c for c in self.compare if c.name != saved.name]
            self._changed()
            return f"{saved.name} no longer compared"
        if self.symbol is not None and saved.symbol != self.symbol:
            return (
                f"{saved.name} is a {saved.symbol} strategy; only {self.symbol} strategies "
                "compare with this one"
            )
        if self.symbol is None:
            self.symbol = saved.symbol
        self.compare.append(saved)
        self._changed()
        return f"{saved.name} compared ({len(self.compare)} beside this one)"

    def compared(self, state: EngineState, spots: Any) -> list[tuple[str, Analysis | str]]:
        """Each compared strategy analysed on the same market, what-if and spots as the one
        built, or the one-line reason it cannot be."""
        from optterm.engine.savedstrategy import position_of
        from optterm.strategy.analysis import analyse
        from optterm.strategy.errors import StrategyError

        base = self.market(state)
        out: list[tuple[str, Analysis | str]] = []
        for saved in self.compare:
            if base is None:
                out.append((saved.name, f"no chain of {saved.symbol} yet"))
                continue
            try:
                market = moved(base, self.whatif.spot_pct)
                position = position_of(saved, base.lot_size)
                first = min(market.expiry(d).settle for d in position.expiries)
                w = self.whatif
                at = min(market.now + timedelta(days=w.days), first) if w.days else None
                a = analyse(position, market, at=at, iv_shift=w.iv_shift, spots=spots)
                out.append((saved.name, a))
            except StrategyError as exc:
                out.append((saved.name, str(exc)))
        return out

    # -- the what-if --------------------------------------------------------------------------

    def step_spot(self, steps: int) -> None:
        pct = round(self.whatif.spot_pct + steps * SPOT_STEP_PCT, 6)
        self.whatif = replace(self.whatif, spot_pct=max(-50.0, min(50.0, pct)))
        self._changed()

    def step_iv(self, steps: int) -> None:
        iv = round(self.whatif.iv_shift + steps * IV_STEP, 6)
        self.whatif = replace(self.whatif, iv_shift=max(-50.0, min(100.0, iv)))
        self._changed()

    def step_leg_iv(self, index: int, steps: int) -> None:
        if 0 <= index < len(self.legs):
            g = self.legs[index]
            shift = max(-50.0, min(100.0, round(g.iv_shift + steps * IV_STEP, 6)))
            self.legs[index] = replace(g, iv_shift=shift)
            self._changed()

    def step_days(self, steps: int) -> None:
        self.whatif = replace(self.whatif, days=max(0, self.whatif.days + steps * DAY_STEP))
        self._changed()

    def reset_whatif(self) -> None:
        self.whatif = WhatIf()
        self.legs = [replace(g, iv_shift=0.0) for g in self.legs]
        self._changed()

    # -- the analysis -------------------------------------------------------------------------

    def market(self, state: EngineState) -> StrategyMarket | None:
        """The market of the strategy's underlying from the engine's latest chains (every
        expiry the engine holds), or None before any chain of it is here."""
        from optterm.strategy.marketdata import market_from_chains, rate_of

        if self.symbol is None:
            return None
        chains = [
            u.enriched
            for (sym, _), u in sorted(state.chains.items())
            if sym == self.symbol and u.enriched is not None
        ]
        if not chains:
            return None
        settings = state.settings
        return market_from_chains(chains, state.calendar, settings.market, rate_of(settings))

    def position(self) -> Position:
        from optterm.strategy.position import Leg, Position

        legs = tuple(
            Leg(g.kind, g.expiry, g.lots, g.price, g.strike, iv_shift=g.iv_shift) for g in self.legs
        )
        return Position(self.symbol or "", 1, legs)

    def analyse(self, state: EngineState) -> DeskResult:
        """Every figure of the strategy under the what-if, or the one-line reason there is
        none (no legs yet, no chain of the underlying, a leg no longer listed)."""
        from optterm.strategy.analysis import analyse
        from optterm.strategy.errors import StrategyError

        w = self.whatif
        if not self.legs:
            return DeskResult(None, "no legs yet: on the dashboard's chain press b (buy) or s "
                              "(sell) on a call or put", w)  # fmt: skip
        base = self.market(state)
        if base is None:
            return DeskResult(None, f"no chain of {self.symbol} yet", w)
        try:
            position = replace(self.position(), lot_size=base.lot_size)
            market = moved(base, w.spot_pct)
            first = min(market.expiry(d).settle for d in position.expiries)
            at = min(market.now + timedelta(days=w.days), first) if w.days else None
            return DeskResult(analyse(position, market, at=at, iv_shift=w.iv_shift), None, w)
        except StrategyError as exc:
            return DeskResult(None, str(exc), w)

    # -- the broker's book -------------------------------------------------------------------

    def take_group(self, group: PositionGroup) -> str:
        """The open F&O legs of a broker position group become the strategy (a contract held
        under two products is one leg, at the average of both). Returns what happened."""
        legs: list[DeskLeg] = []
        for r in group.open:
            if r.kind == "EQ" or r.expiry is None:
                continue
            if r.net_qty % r.lot_size:
                return (
                    f"{r.tradingsymbol}: {r.net_qty:+d} units is not a whole number of lots of "
                    f"{r.lot_size}; not imported"
                )
            leg = DeskLeg(
                r.kind, r.expiry, r.strike if r.kind != "FUT" else 0.0, r.net_qty // r.lot_size,
                r.entry,
            )  # fmt: skip
            for i, held in enumerate(legs):
                if held.same_contract(leg):
                    lots = held.lots + leg.lots
                    price = (held.price * held.lots + leg.price * leg.lots) / lots if lots else 0.0
                    legs[i] = replace(held, lots=lots, price=price)
                    break
            else:
                legs.append(leg)
        legs = [g for g in legs if g.lots]
        if not legs:
            return f"{group.symbol}: no open futures or options to analyse"
        self.symbol, self.legs, self.whatif = group.symbol, legs, WhatIf()
        # The broker's average prices, as read now.
        self.priced_at, self.source = datetime.now(UTC), "angelone positions · LIVE"
        self._legs_changed()
        when = group.expiry.isoformat() if group.expiry else ""
        return (
            f"{group.symbol} {when}: {len(legs)} leg{'s' if len(legs) != 1 else ''} from Angel "
            f"One (the broker's P&L {group.broker_pnl:,.0f})"
        )

    # -- margin -------------------------------------------------------------------------------

    def span_wanted(self, path: str | None) -> tuple[str, str] | None:
        """The (file, symbol) to read when the SPAN file set in the config is not read yet for
        the strategy's underlying; None when there is nothing to read."""
        if path is None:
            self.span_note = "set [strategy] span_file"
            return None
        if self.symbol is None:
            return None
        key = (path, self.symbol)
        if key == self._span_key:
            return None
        self._span_key = key
        self.span, self.span_note = None, "reading the SPAN file…"
        return key

    @staticmethod
    def read_span(key: tuple[str, str], cache: Path | None) -> tuple[SpanFile | None, str]:
        """Read the SPAN file: (the file, "") or (None, why not). Slow the first time (a real
        file is tens of megabytes): run it off the UI's loop, then hand it to `set_span`."""
        from optterm.strategy.span import SpanError, load_span

        path, symbol = key
        try:
            return load_span(Path(path).expanduser(), [symbol], cache), ""
        except SpanError as exc:
            return None, str(exc)

    def set_span(self, key: tuple[str, str], span: SpanFile | None, note: str) -> None:
        if self._span_key == key:  # not superseded by another underlying meanwhile
            self.span, self.span_note = span, note
            self._changed()

    def broker_wanted(self, position: Position) -> BrokerKey | None:
        """The legs to ask the broker's margin for when they are not the ones last asked; None
        when there is nothing new to ask."""
        key = (position.symbol, tuple(
            (g.kind, g.expiry, g.strike if g.is_option else 0.0, position.units(g))
            for g in position.legs
        ))  # fmt: skip
        if key == self.broker_key:
            return None
        self.broker_key, self.broker, self.broker_note = key, None, ""
        return key

    def set_broker(self, key: BrokerKey, figures: dict[str, Any] | None, note: str) -> None:
        if key == self.broker_key:  # not superseded by other legs meanwhile
            self.broker, self.broker_note = figures, note
            self._changed()

    def margin(self, a: Analysis) -> tuple[Margin | None, str]:
        """SPAN + exposure of the analysed position on the SPAN file, or why there is none."""
        from optterm import market as exchange
        from optterm.strategy.errors import StrategyError
        from optterm.strategy.margin import span_margin

        if self.span is None:
            return None, self.span_note
        mk = a.market
        try:
            m = span_margin(
                a.position,
                self.span,
                today=mk.calendar.local_date(mk.now),
                is_index=a.position.symbol in exchange.NSE_INDICES,
                underlying=mk.spot,
            )
        except StrategyError as exc:
            return None, str(exc)
        return m, ""


# (underlying, ((kind, expiry, strike, units), …)): what the broker's margin was asked for.
BrokerKey = tuple[str, tuple[tuple[str, date, float, int], ...]]


async def broker_margin(settings: Settings, key: BrokerKey) -> tuple[dict[str, Any] | None, str]:
    """Angel One's margin for the legs (its calculator: nothing is ordered), labelled, or
    (None, why not); (None, "") when there are no Angel One credentials (not logged in)."""
    from optterm.providers.factory import build_one

    try:
        provider: Any = build_one(settings, "angelone")
    except Exception:  # no credentials or no [providers.angelone]: nothing to show
        return None, ""
    symbol, legs = key
    try:
        m = await provider.margin(symbol, list(legs))
    except Exception as exc:  # the broker's or the network's: said in one line
        return None, f"Angel One: {exc}" if str(exc) else f"Angel One: {type(exc).__name__}"
    finally:
        await provider.close()
    return margin_document(m), ""


def margin_document(m: Any) -> dict[str, Any]:
    """The broker's margin reply as the screen and `optterm strategy --broker-margin` show it:
    rupees to the paisa, None where the broker gave no figure."""

    def num(x: float) -> float | None:
        return round(x, 2) if math.isfinite(x) else None

    return {
        "total": num(m.total),
        "span": num(m.span),
        "net_premium": num(m.net_premium),
        "benefit": num(m.benefit),
        "source": "Angel One margin calculator (margin/v1/batch)",
    }


async def broker_groups(settings: Settings) -> list[PositionGroup]:
    """Angel One's position groups holding open futures or options (read-only)."""
    from optterm.providers.angelone.positions import group_positions
    from optterm.providers.factory import build_one

    provider: Any = build_one(settings, "angelone")
    try:
        rows = await provider.positions()
    finally:
        await provider.close()
    return [g for g in group_positions(rows) if any(r.kind != "EQ" for r in g.open)]


def moved(market: StrategyMarket, pct: float) -> StrategyMarket:
    """The market with spot moved by `pct` percent and every forward with it (each expiry keeps
    its carry); IVs stay where they are (the IV rule decides how a leg's IV then moves)."""
    if not pct:
        return market
    f = 1.0 + pct / 100.0
    expiries = {d: replace(e, forward=e.forward * f) for d, e in market.expiries.items()}
    return replace(market, spot=market.spot * f, expiries=expiries)


def _ok(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _name(g: DeskLeg) -> str:
    side = "buy" if g.lots > 0 else "sell"
    what = "FUT" if g.kind == "FUT" else f"{g.strike:g} {g.kind}"
    return f"{side} {abs(g.lots)} lot{'s' if abs(g.lots) != 1 else ''} {what}"
