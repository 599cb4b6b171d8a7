"""Every figure of an analysis as plain data (the CLI's --json, and what the text shows):
numbers in rupees or points, NaN as null, an unlimited side as null with a flag beside it.

The tables: P&L at a few spots (the sigma bands and spot, to the tick) for each date (now or
--at, each target, the first expiry), and the same spots against global IV shifts at --at.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from optterm.strategy.analysis import Analysis, round_tick
from optterm.strategy.margin import Margin
from optterm.strategy.recognise import recognise

__all__ = ["IV_SHIFTS", "margin_report", "report", "table_spots"]

IV_SHIFTS = (-5.0, -2.0, 0.0, 2.0, 5.0)


def _num(x: float, digits: int = 4) -> float | None:
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def table_spots(a: Analysis) -> list[float]:
    """-2 sigma, -1 sigma, spot, +1 sigma, +2 sigma, to the tick."""
    b = a.dist.bands()
    tick = a.market.tick
    spots = [b["-2σ"], b["-1σ"], a.market.spot, b["+1σ"], b["+2σ"]]
    return [round_tick(s, tick) for s in spots]


def report(a: Analysis) -> dict[str, Any]:
    pos, mk = a.position, a.market
    template = recognise(pos.legs)
    g = a.greeks
    legs = []
    for i, leg in enumerate(pos.legs):
        legs.append(
            {
                "kind": leg.kind,
                "strike": None if not leg.is_option else leg.strike,
                "expiry": leg.expiry.isoformat(),
                "lots": leg.lots,
                "quantity": pos.units(leg),
                "entry": _num(leg.price),
                "value": _num(a.leg_values[i]),
                "iv_pct": _num(100 * g.iv[i]),
                "delta_lots": _num(g.delta_lots[i], 6),
                "delta_rupees_per_pct": _num(g.delta_rupees[i], 2),
                "gamma": _num(g.gamma[i], 8),
                "theta_per_day": _num(g.theta[i], 2),
                "vega_per_vol_pt": _num(g.vega[i], 2),
            }
        )
    totals = g.total()
    spots = table_spots(a)
    dates = a.curve_dates
    table = a.pricer.pnl(dates, np.array(spots), a.iv_shift)
    shifts = np.array(IV_SHIFTS) + a.iv_shift
    matrix = a.pricer.iv_matrix(a.at, np.array(spots), shifts)
    spot = mk.spot

    def local(when: datetime) -> str:
        """Every time in exchange time, as the exchange's clock reads it."""
        return when.astimezone(mk.calendar.tz).isoformat()

    return {
        "symbol": mk.symbol,
        "strategy": template.name if template else "custom",
        "view": template.view if template else None,
        "as_of": local(mk.now),
        "at": local(a.at),
        "provider": mk.provider,
        "feed": mk.feed,
        "spot": _num(spot),
        "lot_size": pos.lot_size,
        "expiries": [d.isoformat() for d in pos.expiries],
        "first_expiry": local(a.profile.at),
        "model": {
            "anchor": a.model.anchor,
            "anchor_value": _num(a.dist.anchor),
            "day_count": a.model.day_count,
            "iv_rule": a.model.iv_rule,
            "drift": a.model.drift,
            "vol_pct": _num(100 * a.dist.vol),
            "years": _num(a.dist.years, 8),
            "iv_shift": a.iv_shift,
            "described": a.model.describe(),
        },
        "legs": legs,
        "greeks": {
            "delta_lots": _num(totals["delta_lots"], 6),
            "delta_rupees_per_pct": _num(totals["delta_rupees"], 2),
            "gamma": _num(totals["gamma"], 8),
            "theta_per_day": _num(totals["theta"], 2),
            "vega_per_vol_pt": _num(totals["vega"], 2),
        },
        "net_premium": _num(a.net_premium, 2),
        "pnl_now": _num(a.pnl_now, 2),
        "max_profit": _num(a.max_profit, 2),
        "max_profit_unlimited": a.max_profit == math.inf,
        "max_loss": _num(a.max_loss, 2),
        "max_loss_unlimited": a.max_loss == -math.inf,
        "reward_risk": _num(a.reward_risk),
        "breakevens": [
            {"spot": round_tick(b, mk.tick), "pct_from_spot": _num(100 * (b / spot - 1), 3)}
            for b in a.breakevens
        ],
        "pop_pct": _num(100 * a.odds.pop, 3),
        "expected_pnl": _num(a.odds.expected, 2),
        "p_max_profit_pct": _num(100 * a.odds.p_max_profit, 3),
        "p_max_loss_pct": _num(100 * a.odds.p_max_loss, 3),
        "sigma_bands": {k: round_tick(v, mk.tick) for k, v in a.dist.bands().items()},
        "payoff_table": {
            "spots": spots,
            "dates": [local(d) for d in dates],
            "pnl": [[_num(v, 2) for v in row] for row in table],
        },
        "iv_matrix": {
            "spots": spots,
            "iv_shifts": [float(s) for s in shifts],
            "pnl": [[_num(v, 2) for v in row] for row in matrix],
        },
        "profile_exact": a.profile.exact,
        "notes": a.notes,
    }


def margin_report(a: Analysis, m: Margin) -> dict[str, Any]:
    """The margin figures; return on margin = max profit / (margin + premium paid), None when
    the profit is unlimited."""
    paid = max(a.net_premium, 0.0)
    funds = m.total + paid
    rom = a.max_profit / funds if math.isfinite(a.max_profit) and funds > 0 else math.nan
    return {
        "scan_risk": _num(m.scan_risk, 2),
        "calendar_charge": _num(m.calendar_charge, 2),
        "short_option_minimum": _num(m.short_option_minimum, 2),
        "net_option_value": _num(m.net_option_value, 2),
        "span": _num(m.span, 2),
        "exposure": _num(m.exposure, 2),
        "total": _num(m.total, 2),
        "premium_paid": _num(paid, 2),
        "return_on_margin_pct": _num(100 * rom, 3),
        "expiry_day_rules": m.expiry_day,
        "source": m.source,
    }
