"""Alert evaluation: every rule against every tick, with crossing semantics, cheaply.

**Crossing, not level.** An ABOVE rule is *armed* while its value is below the threshold. It fires
when an armed rule's value reaches the threshold, and disarms; it re-arms only once the value is
back at or below threshold − hysteresis. A rule created while its value is already beyond the
threshold starts disarmed, so it waits for a real crossing. BELOW mirrors this; EQUALS fires on
entering threshold ± tolerance and re-arms on leaving it by more than the hysteresis;
PERCENT_CHANGE fires when |change over the window| reaches the threshold percent.

A crossing during a rule's cooldown or outside its active window is consumed without an event
(the value must come back and cross again), so cooldowns never turn into delayed spam.

**Cost.** Rules are compiled into flat numpy arrays, grouped by where their value comes from
(chain and field, plus strike for leg fields). A tick fills one value per rule with a few
vectorised gathers per group and evaluates every condition in one pass; Python code runs only for
the rules that fire and for the rare event-like kinds (patterns, stale feed). That compiled state
is why this is one module over 600 lines: the arrays, their compilation and every pass over them
change together.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo

import numpy as np

from optterm.engine.alerts.rules import is_rule_sentence, rule_summary
from optterm.engine.alerts.strategyvalues import StrategyValues
from optterm.engine.analytics.chain import Enriched
from optterm.market import MarketCalendar
from optterm.model import (
    AlertEvent,
    AlertKind,
    AlertRule,
    ChainSnapshot,
    Condition,
    Feed,
    Side,
    Signal,
)
from optterm.present.alerts import value_text

__all__ = [
    "AlertEvaluator",
    "Firing",
    "Level",
    "RuleMemory",
    "current_level",
    "describe_rule_value",
    "value_unit",
]

_NAN = float("nan")

# Condition codes in the flat arrays.
_ABOVE, _BELOW, _EQUALS, _PCT = 0, 1, 2, 3
_COND_CODE = {
    Condition.ABOVE: _ABOVE,
    Condition.BELOW: _BELOW,
    Condition.EQUALS: _EQUALS,
    Condition.PERCENT_CHANGE: _PCT,
}
# Scalar fields read from the snapshot or its metrics.
_SCALAR = {"spot", "atm_iv", "iv_rank", "pcr", "max_pain", "oi_change_total", "volume_total"}
_LEG = {"ltp", "oi_change", "iv", "volume"}


@dataclass(slots=True)
class RuleMemory:
    """What a rule remembers between ticks (persisted so a restart does not re-fire)."""

    armed: bool | None = None  # None until the first value is seen
    last_value: float | None = None
    last_fired_at: datetime | None = None
    fire_count: int = 0
    reference: float | None = None  # MAX_PAIN_SHIFT: max pain when last fired / first seen
    # PATTERN_DETECTED: (exchange-local day, signal key) already fired. Per day, so a pattern seen
    # again on a later session alerts again; restored from the store's events on restart
    # (AlertService), so a restarted engine does not alert twice on one signal.
    seen_signals: set[tuple[date, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Firing:
    rule: AlertRule
    event: AlertEvent


def _field_of(rule: AlertRule) -> str:
    """Which number a rule watches (before any percent-change/volume-spike transform)."""
    k = rule.kind
    has_leg = rule.strike is not None and rule.side is not None
    if k is AlertKind.PRICE:
        return "ltp" if has_leg else "spot"
    if k is AlertKind.OI_CHANGE:
        return "oi_change" if has_leg else "oi_change_total"
    if k is AlertKind.VOLUME_SPIKE:
        return "volume" if has_leg else "volume_total"
    if k is AlertKind.VOLATILITY:
        return (
            "iv" if has_leg else (rule.metric if rule.metric in ("atm_iv", "iv_rank") else "atm_iv")
        )
    if k is AlertKind.PCR:
        return "pcr"
    if k is AlertKind.MAX_PAIN_SHIFT:
        return "max_pain"
    return ""


def _level_name(rule: AlertRule, f: str) -> str:
    """What the field `f` of `rule` is called: "spot", "25000 CE LTP", "PCR", ..."""
    leg = f"{rule.strike:g} {rule.side}" if rule.strike is not None and rule.side else ""
    names = {
        "spot": "spot",
        "ltp": f"{leg} LTP",
        "oi_change": f"{leg} OI change",
        "oi_change_total": "OI change (all strikes)",
        "volume": f"{leg} volume",
        "volume_total": "volume (all strikes)",
        "iv": f"{leg} IV",
        "atm_iv": "ATM IV",
        "iv_rank": "IV rank",
        "pcr": "PCR",
        "max_pain": "max pain",
    }
    return names.get(f, rule.kind.value.lower())


def describe_rule_value(rule: AlertRule) -> str:
    """How a rule's value reads in a message: "NIFTY spot", "NIFTY 25000 CE LTP", ..."""
    if rule.kind is AlertKind.STRATEGY:
        return f"strategy {rule.strategy} ({rule.symbol}) {_STRATEGY_NAMES.get(rule.metric, '')}"
    what = _level_name(rule, _field_of(rule))
    if rule.kind is AlertKind.MAX_PAIN_SHIFT:
        what = "max pain shift"
    if rule.kind is AlertKind.VOLUME_SPIKE:
        what = f"{what} spike (x average)"
    exp = f" {rule.expiry:%d-%b}" if rule.expiry else ""
    return f"{rule.symbol}{exp} {what}".strip()


# How a STRATEGY rule's value reads (engine/savedstrategy.py STRATEGY_METRICS has the units).
_STRATEGY_NAMES = {"pnl": "P&L ₹", "delta": "Δ lots", "gamma": "Γ", "theta": "Θ ₹/day",
                   "vega": "vega ₹/vol-pt"}  # fmt: skip

# The unit of each field's level (see present.alerts.value_text).
_FIELD_UNIT = {
    "spot": "price",
    "ltp": "price",
    "oi_change": "oi_change",
    "oi_change_total": "oi_change",
    "volume": "contracts",
    "volume_total": "contracts",
    "iv": "iv",
    "atm_iv": "iv",
    "iv_rank": "iv_rank",
    "pcr": "ratio",
    "max_pain": "points",
}


def value_unit(rule: AlertRule) -> str:
    """The unit of the value a rule compares with its threshold, for
    `present.alerts.value_text`: a change, multiple or shift where the rule measures one, else
    the unit of the level it watches."""
    if rule.condition is Condition.PERCENT_CHANGE:
        return "percent"
    k = rule.kind
    if k is AlertKind.VOLUME_SPIKE:
        return "multiple"
    if k is AlertKind.PATTERN_DETECTED:
        return "confidence"
    if k is AlertKind.STALE_FEED:
        return "seconds"
    return _FIELD_UNIT.get(_field_of(rule), "number")


@dataclass(frozen=True, slots=True)
class Level:
    """The level a rule watches in one chain, read as the evaluator reads it: `name` ("25000
    CE LTP"), `value` (NaN when the chain has none: a strike it does not list, no analytics)
    and `unit`. For a percent-change, volume-spike or max-pain-shift rule it is the level the
    change, multiple or shift is measured on."""

    name: str
    value: float
    unit: str


def current_level(rule: AlertRule, snap: ChainSnapshot, enriched: Enriched | None) -> Level | None:
    """The level `rule` watches in this chain; None for the kinds that watch none (a pattern's
    signals, the feed's age)."""
    f = _field_of(rule)
    if not f:
        return None
    if f in _LEG:
        if rule.strike is None or rule.side is None:
            value = _NAN
        else:
            strikes = np.array([rule.strike], dtype=np.float64)
            value = float(AlertEvaluator._leg(snap, enriched, f, str(rule.side), strikes)[0])
    else:
        value = float(AlertEvaluator._scalar(snap, enriched, f))
    return Level(_level_name(rule, f), value, _FIELD_UNIT.get(f, "number"))


class AlertEvaluator:
    """Compiled rules plus their memories; `evaluate` is called once per tick."""

    def __init__(self, calendar: MarketCalendar | None = None) -> None:
        self.calendar = calendar or MarketCalendar()
        # STRATEGY rules' values (a saved strategy priced on the chains): set by the service.
        self.strategies: StrategyValues | None = None
        self.rules: list[AlertRule] = []
        self.memory: dict[int, RuleMemory] = {}
        self._compile()
        # Per chain history for PERCENT_CHANGE and VOLUME_SPIKE: (ts, snapshot, enriched).
        self._history: dict[
            tuple[str, date], deque[tuple[datetime, ChainSnapshot, Enriched | None]]
        ] = {}
        self._pain_now: dict[int, float] = {}
        self._last_fresh: dict[str, datetime] = {}  # symbol -> wall time new data last arrived
        self._max_window = 0.0

    # -- rule set ---------------------------------------------------------------------------

    def load(self, rules: Iterable[AlertRule], memory: dict[int, RuleMemory] | None = None) -> None:
        """Replace the rule set (keeping memories of rules that still exist)."""
        data_at = {r.id: float(self._at[i]) for i, r in enumerate(self.rules)}
        self.rules = [r for r in rules if r.enabled and r.id is not None]
        old = self.memory
        self.memory = {}
        for r in self.rules:
            assert r.id is not None
            self.memory[r.id] = (memory or {}).get(r.id) or old.get(r.id) or RuleMemory()
        self._compile()
        for i, r in enumerate(self.rules):
            self._at[i] = data_at.get(r.id, -math.inf)

    def _compile(self) -> None:
        rules = self.rules
        n = len(rules)
        self._threshold = np.array([r.threshold for r in rules], dtype=np.float64)
        self._hyst = np.array([max(r.hysteresis, 0.0) for r in rules], dtype=np.float64)
        self._tol = np.array([max(r.tolerance, 0.0) for r in rules], dtype=np.float64)
        self._cond = np.array([_COND_CODE[r.condition] for r in rules], dtype=np.int8)
        # Value groups: (symbol, expiry or None, field, side or None, transform, window) -> idx.
        groups: dict[tuple, list[int]] = {}
        self._special: list[int] = []
        self._strategy: list[int] = []
        for i, r in enumerate(rules):
            f = _field_of(r)
            if r.kind in (AlertKind.PATTERN_DETECTED, AlertKind.STALE_FEED):
                self._special.append(i)
                continue
            if r.kind is AlertKind.STRATEGY:
                self._strategy.append(i)
                continue
            transform = "pct" if r.condition is Condition.PERCENT_CHANGE else ""
            if r.kind is AlertKind.VOLUME_SPIKE:
                transform = "spike"
            if r.kind is AlertKind.MAX_PAIN_SHIFT:
                transform = "shift"
            window = r.window_s if transform in ("pct", "spike") else 0.0
            side = r.side.value if (f in _LEG and r.side is not None) else None
            key = (r.symbol, r.expiry, f, side, transform, window)
            groups.setdefault(key, []).append(i)
        self._groups = [
            (key, np.asarray(idx, dtype=np.intp), self._strikes_of(idx) if key[2] in _LEG else None)
            for key, idx in groups.items()
        ]
        self._max_window = max((k[5] for k, _, _ in self._groups), default=0.0)
        # Armed state and last value live in arrays (the per-tick truth); `memories()` copies
        # them into the RuleMemory objects when someone needs them (persistence, display).
        self._armed = np.zeros(n, dtype=bool)
        self._known = np.zeros(n, dtype=bool)
        self._last = np.full(n, np.nan)
        self._dirty = np.zeros(n, dtype=bool)
        # The provider time (epoch s) of the data each rule was last judged on: a value from
        # older data is not applied (the stream's alert path judges a leg between two ticks;
        # a tick whose chain was read before that packet must not step the rule back).
        self._at = np.full(n, -math.inf)
        for i, r in enumerate(rules):
            mem = self.memory.get(r.id or -1)
            if mem is not None and mem.armed is not None:
                self._armed[i] = mem.armed
                self._known[i] = True
            if mem is not None and mem.last_value is not None:
                self._last[i] = mem.last_value

    def _strikes_of(self, idx: list[int]) -> np.ndarray:
        return np.array([self.rules[i].strike for i in idx], dtype=np.float64)

    # -- values -----------------------------------------------------------------------------

    def _remember(self, snap: ChainSnapshot, e: Enriched | None) -> None:
        if self._max_window <= 0:
            return
        h = self._history.setdefault((snap.symbol, snap.expiry), deque())
        if h and h[-1][0] >= snap.provider_ts:
            return
        h.append((snap.provider_ts, snap, e))
        cutoff = snap.provider_ts - timedelta(seconds=self._max_window)
        while len(h) >= 2 and h[1][0] <= cutoff:
            h.popleft()

    def _then(
        self, snap: ChainSnapshot, window: float
    ) -> tuple[ChainSnapshot, Enriched | None] | None:
        """The newest remembered chain at least `window` seconds older than `snap`."""
        h = self._history.get((snap.symbol, snap.expiry))
        if not h:
            return None
        cutoff = snap.provider_ts - timedelta(seconds=window)
        found = None
        for ts, old, e in h:
            if ts <= cutoff:
                found = (old, e)
            else:
                break
        return found

    @staticmethod
    def _scalar(snap: ChainSnapshot, e: Enriched | None, f: str) -> float:
        if f == "spot":
            return snap.spot
        if f in ("oi_change_total", "volume_total"):
            # Over the whole chain: the metrics' totals. A snapshot's own columns only when it
            # is the whole chain (a stored or published window would undercount).
            if e is not None:
                m = e.metrics
                if f == "oi_change_total":
                    return m.ce_oi_change + m.pe_oi_change
                return m.ce_volume + m.pe_volume
            if snap.chain_strikes != len(snap):
                return _NAN
            col = "oi_change" if f == "oi_change_total" else "volume"
            return float(np.nansum(snap.ce.column(col)) + np.nansum(snap.pe.column(col)))
        if e is None:
            return _NAN
        m = e.metrics
        if f == "atm_iv":
            return m.atm_iv
        if f == "iv_rank":
            return _NAN if m.iv_rank is None else m.iv_rank
        if f == "pcr":
            return m.pcr_oi
        if f == "max_pain":
            return m.max_pain
        return _NAN

    @staticmethod
    def _leg(
        snap: ChainSnapshot, e: Enriched | None, f: str, side: str, strikes: np.ndarray
    ) -> np.ndarray:
        if f == "iv":
            if e is None:
                return np.full(strikes.shape, np.nan)
            col = e.side(side).iv
        else:
            col = snap.side(side).column(f)
        if not len(snap):
            return np.full(strikes.shape, np.nan)
        pos = np.minimum(np.searchsorted(snap.strikes, strikes), len(snap) - 1)
        return np.where(snap.strikes[pos] == strikes, col[pos], np.nan)

    def _values(
        self,
        snap: ChainSnapshot,
        e: Enriched | None,
        f: str,
        side: str | None,
        strikes: np.ndarray | None,
        n: int,
    ) -> np.ndarray:
        if f in _LEG:
            assert side is not None
            assert strikes is not None
            return self._leg(snap, e, f, side, strikes)
        return np.full(n, self._scalar(snap, e, f))

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(
        self,
        chains: Sequence[tuple[ChainSnapshot, Enriched | None]],
        signals: Sequence[Signal],
        now: datetime,
        *,
        remember: bool = True,
    ) -> list[Firing]:
        """Evaluate every rule against the chains with new data in this tick.

        `chains` holds only fresh data (a provider timestamp not seen before); `now` is the wall
        time of the tick (for the stale-feed rules). A rule whose value is missing (NaN: an IV
        without analytics) or comes from data older than it was last judged on is left as it
        is. `remember=False` keeps these chains out of the history PERCENT_CHANGE and
        VOLUME_SPIKE look back on (the stream's chains between ticks, without analytics)."""
        n = len(self.rules)
        for snap, _ in chains:
            self._last_fresh[snap.symbol] = now
        if not n:
            for snap, e in chains if remember else ():
                self._remember(snap, e)
            return []
        by_chain = {(s.symbol, s.expiry): (s, e) for s, e in chains}
        nearest: dict[str, tuple[ChainSnapshot, Enriched | None]] = {}
        for s, e in chains:
            if s.symbol not in nearest or s.expiry < nearest[s.symbol][0].expiry:
                nearest[s.symbol] = (s, e)

        value = np.full(n, np.nan)
        at = np.full(n, -math.inf)
        source: list[ChainSnapshot | None] = [None] * n
        fresh = np.zeros(n, dtype=bool)
        for (symbol, expiry, f, side, transform, window), idx, strikes in self._groups:
            got = nearest.get(symbol) if expiry is None else by_chain.get((symbol, expiry))
            if got is None:
                continue
            snap, e = got
            ts = snap.provider_ts.timestamp()
            if ts < self._at[idx].max():  # some of these rules saw newer data already
                keep = self._at[idx] <= ts
                idx = idx[keep]
                strikes = None if strikes is None else strikes[keep]
                if not idx.size:
                    continue
            v = self._values(snap, e, f, side, strikes, idx.size)
            if transform == "pct":
                then = self._then(snap, window)
                if then is None:
                    continue
                old = self._values(then[0], then[1], f, side, strikes, idx.size)
                with np.errstate(invalid="ignore", divide="ignore"):
                    v = (v / old - 1.0) * 100.0
                v = np.abs(v)
            elif transform == "spike":
                v = self._spike(snap, f, side, strikes, idx.size, window)
            elif transform == "shift":
                v = self._shift(idx, v)
            value[idx] = v
            at[idx] = ts
            fresh[idx] = True
            for i in idx.tolist():
                source[i] = snap
        if self._strategy and self.strategies is not None:
            self.strategies.observe(chains)
            for i in self._strategy:
                priced = self.strategies.value(self.rules[i])
                if priced is not None:
                    value[i], source[i], fresh[i] = priced[0], priced[1], True
        for snap, e in chains if remember else ():
            self._remember(snap, e)

        fired = self._apply(value, fresh, source)
        judged = fresh & np.isfinite(value)
        self._at[judged] = at[judged]
        out = [self._firing(i, value[i], source[i]) for i in fired]
        out.extend(self._specials(signals, now, nearest))
        return [f for f in out if f is not None]

    def _spike(
        self,
        snap: ChainSnapshot,
        f: str,
        side: str | None,
        strikes: np.ndarray | None,
        n: int,
        window: float,
    ) -> np.ndarray:
        got = self._then(snap, window)
        if got is None:
            return np.full(n, np.nan)
        then = got[0]
        v_now = self._values(snap, None, f, side, strikes, n)
        v_then = self._values(then, None, f, side, strikes, n)
        cal = self.calendar.for_symbol(snap.symbol)  # the day opens at its segment's open
        tz = cal.tz
        day_open = datetime.combine(then.provider_ts.astimezone(tz).date(), cal.open, tzinfo=tz)
        elapsed = (then.provider_ts - day_open).total_seconds()
        dt = (snap.provider_ts - then.provider_ts).total_seconds()
        if elapsed <= 0 or dt <= 0:
            return np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((v_now - v_then) / dt) / (v_then / elapsed)

    def _shift(self, idx: np.ndarray, pain: np.ndarray) -> np.ndarray:
        out = np.full(idx.size, np.nan)
        for j, i in enumerate(idx.tolist()):
            mem = self.memory[self.rules[i].id or -1]
            if not math.isfinite(pain[j]):
                continue
            self._pain_now[i] = float(pain[j])
            if mem.reference is None:
                mem.reference = float(pain[j])
            out[j] = abs(pain[j] - mem.reference)
        return out

    def _apply(
        self, value: np.ndarray, fresh: np.ndarray, source: list[ChainSnapshot | None]
    ) -> list[int]:
        """Arm/disarm and fire, vectorised over every rule with a value this tick."""
        ok = fresh & np.isfinite(value)
        thr, hyst, tol, cond = self._threshold, self._hyst, self._tol, self._cond
        dist = np.abs(value - thr)
        hit = np.select(
            [cond == _ABOVE, cond == _BELOW, cond == _EQUALS],
            [value >= thr, value <= thr, dist <= tol],
            default=value >= thr,  # percent change: |change| reaches the threshold
        )
        rearm = np.select(
            [cond == _ABOVE, cond == _BELOW, cond == _EQUALS],
            [value <= thr - hyst, value >= thr + hyst, dist > tol + hyst],
            default=value <= thr - hyst,
        )
        rearm &= ~hit
        before = self._armed.copy()
        first = ok & ~self._known
        # First sight: armed only if not already beyond the threshold (no crossing seen yet).
        self._armed[first] = ~hit[first]
        self._known[first] = True
        candidates = ok & ~first & self._armed & hit
        self._armed[ok & ~first & rearm] = True
        self._armed[candidates] = False
        self._last[ok] = value[ok]
        self._dirty |= first | (before != self._armed)
        fired = []
        for i in np.flatnonzero(candidates).tolist():
            snap = source[i]
            if snap is not None and self._allowed(self.rules[i], snap.provider_ts):
                fired.append(i)
        return fired

    def _allowed(self, rule: AlertRule, at: datetime) -> bool:
        """Active window and cooldown, judged on the data's own time."""
        mem = self.memory[rule.id or -1]
        last = mem.last_fired_at
        if last is not None and (at - last).total_seconds() < rule.cooldown_s:
            return False
        if rule.active_from is None and rule.active_to is None:
            # By default a rule is active in its instrument's session (MCX into the evening).
            return self.calendar.for_symbol(rule.symbol).is_open(at)
        local = at.astimezone(self.calendar.tz).time()
        start = rule.active_from or time(0, 0)
        end = rule.active_to or time(23, 59, 59)
        return start <= local <= end

    def _firing(self, i: int, value: float, snap: ChainSnapshot | None) -> Firing | None:
        if snap is None:
            return None
        rule = self.rules[i]
        mem = self._fired(i, snap.provider_ts)
        unit = value_unit(rule)
        what = describe_rule_value(rule)
        verb = {
            Condition.ABOVE: "crossed above",
            Condition.BELOW: "crossed below",
            Condition.EQUALS: "reached",
            Condition.PERCENT_CHANGE: (
                f"moved {value_text(value, unit)} in {rule.window_s / 60:g} min, past"
            ),
        }[rule.condition]
        if rule.kind is AlertKind.MAX_PAIN_SHIFT:
            before = mem.reference if mem.reference is not None else _NAN
            now_pain = self._pain_now.get(i, _NAN)
            title = (
                f"{rule.symbol} max pain shifted {value_text(value, unit)} points to "
                f"{value_text(now_pain, unit)}"
            )
            line = (
                f"max pain {value_text(before, unit)} → {value_text(now_pain, unit)} "
                f"(alert at {value_text(rule.threshold, unit)})"
            )
            # The next shift is measured from here, so the rule is armed again at once.
            mem.reference = now_pain if math.isfinite(now_pain) else None
            self._armed[i] = True
        else:
            title = f"{what} {value_text(value, unit)} {verb} {value_text(rule.threshold, unit)}"
            line = title
        return self._firing_of(
            rule,
            at=snap.provider_ts,
            value=value,
            title=title,
            lines=[line, f"spot {value_text(snap.spot, 'price')}"],
            provider=snap.provider,
            feed=snap.feed,
            context=(
                ("spot", snap.spot),
                ("expiry", snap.expiry.isoformat()),
                *((("strike", rule.strike),) if rule.strike is not None else ()),
                *((("side", rule.side.value),) if isinstance(rule.side, Side) else ()),
            ),
        )

    def _fired(self, i: int, at: datetime) -> RuleMemory:
        """Note that rule `i` fired at `at` (its memory is then worth persisting)."""
        mem = self.memory[self.rules[i].id or -1]
        mem.last_fired_at = at
        mem.fire_count += 1
        self._dirty[i] = True
        return mem

    def _firing_of(
        self,
        rule: AlertRule,
        *,
        at: datetime,
        value: float,
        title: str,
        lines: list[str],
        provider: str,
        feed: Feed,
        context: tuple[tuple[str, float | str], ...] = (),
    ) -> Firing:
        """The one way an event is built, whatever kind of rule fired."""
        return Firing(
            rule,
            AlertEvent(
                rule_id=rule.id or 0,
                symbol=rule.symbol,
                kind=rule.kind,
                fired_at=at,
                value=float(value),
                threshold=rule.threshold,
                title=title,
                body=_body(lines, at, provider, feed, rule, self.calendar.tz),
                provider=provider,
                feed=feed,
                context=(("unit", value_unit(rule)), *context),
            ),
        )

    def _specials(
        self,
        signals: Sequence[Signal],
        now: datetime,
        nearest: dict[str, tuple[ChainSnapshot, Enriched | None]],
    ) -> list[Firing]:
        out: list[Firing] = []
        for i in self._special:
            rule = self.rules[i]
            mem = self.memory[rule.id or -1]
            if rule.kind is AlertKind.PATTERN_DETECTED:
                # Always armed: it fires once per signal (seen_signals), not per crossing.
                if mem.armed is None:
                    mem.armed = True
                    self._dirty[i] = True
                for sig in signals:
                    if sig.symbol != rule.symbol or sig.kind is not rule.pattern:
                        continue
                    if rule.expiry is not None and sig.expiry != rule.expiry:
                        continue
                    # Fire once per signal, when its confidence first reaches the threshold.
                    day = sig.last_seen.astimezone(self.calendar.tz).date()
                    seen = (day, sig.key)
                    if sig.confidence < rule.threshold or seen in mem.seen_signals:
                        continue
                    if any(d != day for d, _ in mem.seen_signals):  # a new day: forget the old
                        mem.seen_signals = {s for s in mem.seen_signals if s[0] == day}
                    mem.seen_signals.add(seen)
                    if not self._allowed(rule, sig.last_seen):
                        continue
                    self._fired(i, sig.last_seen)
                    got = nearest.get(sig.symbol)
                    spot = got[0].spot if got else _NAN
                    title = (
                        f"{sig.symbol} {sig.kind.value} {sig.direction.value} "
                        f"({sig.confidence}/100, {sig.strength.value.replace('_', ' ').lower()})"
                    )
                    strikes = f"strikes {', '.join(f'{k:g}' for k in sig.strikes)}"
                    if math.isfinite(spot):
                        strikes += f" · spot {value_text(spot, 'price')}"
                    out.append(
                        self._firing_of(
                            rule,
                            at=sig.last_seen,
                            value=float(sig.confidence),
                            title=title,
                            lines=[sig.summary, strikes],
                            provider=sig.provider,
                            feed=sig.feed,
                            context=(
                                ("signal", sig.key),
                                ("confidence", float(sig.confidence)),
                                *sig.evidence,
                            ),
                        )
                    )
            elif rule.kind is AlertKind.STALE_FEED:
                last = self._last_fresh.get(rule.symbol)
                if last is None or not self.calendar.for_symbol(rule.symbol).is_open(now):
                    continue
                age = (now - last).total_seconds()
                stale = age >= rule.threshold
                if mem.armed is None:
                    mem.armed = True
                    self._dirty[i] = True
                if stale and mem.armed:
                    mem.armed = False
                    self._fired(i, now)
                    title = f"{rule.symbol} feed stale: no new data for {age:.0f} s"
                    out.append(
                        self._firing_of(
                            rule,
                            at=now,
                            value=age,
                            title=title,
                            lines=[title, f"last new data at {_local(last, self.calendar.tz)}"],
                            provider="optterm",
                            feed=Feed.LIVE,
                            context=(("age_s", age),),
                        )
                    )
                elif not stale and not mem.armed:
                    mem.armed = True
                    self._dirty[i] = True
        return out

    def memories(self, only_dirty: bool = False) -> dict[int, RuleMemory]:
        """Rule memories with the arrays' armed state and last value copied in; with
        `only_dirty`, just the rules whose armed state changed or that fired since the last call
        (what is worth persisting), and the dirty marks are cleared. Pattern and stale-feed
        rules keep their state in the memory itself (not in the arrays) and mark themselves
        dirty the same way, so their firings are persisted like every other rule's."""
        picked = np.flatnonzero(self._dirty) if only_dirty else range(len(self.rules))
        out: dict[int, RuleMemory] = {}
        for i in picked:
            rule = self.rules[int(i)]
            mem = self.memory[rule.id or -1]
            if self._known[i]:
                mem.armed = bool(self._armed[i])
            last = self._last[i]
            mem.last_value = float(last) if math.isfinite(last) else None
            out[rule.id or -1] = mem
        if only_dirty:
            self._dirty[:] = False
        return out


def _local(ts: datetime, tz: tzinfo) -> str:
    """Exchange time as an alert body shows it: 14:05:09 IST 24-Nov-2026."""
    at = ts.astimezone(tz)
    return f"{at:%H:%M:%S} {at.tzname()} {at:%d-%b-%Y}"


def _body(
    lines: list[str], at: datetime, provider: str, feed: Feed, rule: AlertRule, tz: tzinfo
) -> str:
    source = f"{feed.value} via {provider}"
    if feed is Feed.SIMULATED:
        source += " (SIMULATED data, not market prices)"
    # The rule as it is now, never the sentence it was first typed as (an edit changes the
    # rule, not its note); a note in the trader's own words is quoted as well.
    about = [f"rule #{rule.id}: {rule_summary(rule)}"]
    note = " ".join(rule.note.split())
    if note and not is_rule_sentence(note, rule.symbol):
        about.append(f"note: {note}")
    return "\n".join([*lines, f"{_local(at, tz)} · {source}", *about])


def with_id(rule: AlertRule, rule_id: int) -> AlertRule:
    return replace(rule, id=rule_id)
