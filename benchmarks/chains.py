"""Realistic option chains for the store benchmarks, generated with numpy only.

Independent of the product's simulator on purpose: the benchmark must measure the store on data
shaped like a real NSE day (OI integers of realistic magnitude drifting tick to tick, prices on the
0.05 tick from a smooth Black-Scholes curve with noise, IV to 0.0001, a few missing quotes), and
must not move when the simulator is tuned.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from optterm.model import ChainSnapshot, Feed, Legs

__all__ = ["SESSION_OPEN_UTC", "DaySimulator", "IndexSpec"]

# 09:15 IST on a Monday.
SESSION_OPEN_UTC = datetime(2026, 11, 23, 3, 45, tzinfo=UTC)
_erf = np.frompyfunc(math.erf, 1, 1)


def _ncdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


@dataclass(frozen=True)
class IndexSpec:
    symbol: str
    spot: float
    step: float
    lot_size: int


INDICES = (
    IndexSpec("NIFTY", 24_512.35, 50, 65),
    IndexSpec("BANKNIFTY", 52_310.80, 100, 30),
    IndexSpec("FINNIFTY", 23_488.10, 50, 60),
)
EXPIRY_DAYS = (1, 8, 29)


class DaySimulator:
    """Len(indices) × len(expiries) chains advancing together, one `tick()` per poll."""

    def __init__(
        self,
        n_strikes: int = 100,
        seed: int = 7,
        interval_s: float = 15.0,
        indices: tuple[IndexSpec, ...] = INDICES,
        expiry_days: tuple[int, ...] = EXPIRY_DAYS,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.interval = timedelta(seconds=interval_s)
        self.indices = indices
        self.expiry_days = expiry_days
        self.n = n_strikes
        self.t = SESSION_OPEN_UTC
        self.spot = np.array([ix.spot for ix in indices])
        rows = len(indices) * len(expiry_days)
        self.row_index = np.repeat(np.arange(len(indices)), len(expiry_days))
        self.tau_days = np.tile(np.array(expiry_days, dtype=float), len(indices))
        self.expiries = [
            SESSION_OPEN_UTC.date() + timedelta(days=d) for _ in indices for d in expiry_days
        ]
        half = n_strikes // 2
        atm = np.round(self.spot / [ix.step for ix in indices]) * [ix.step for ix in indices]
        steps = np.array([ix.step for ix in indices])
        self.strikes = (atm[:, None] + steps[:, None] * (np.arange(n_strikes) - half))[
            self.row_index
        ]
        k = np.log(self.strikes / self.spot[self.row_index][:, None])
        # Open interest: puts heavier below spot, calls above, bumps at round strikes, nearer
        # expiries busier. Magnitudes as NSE reports them (contracts): 10^3 .. 3·10^5.
        near = (1.0 / np.sqrt(self.tau_days))[:, None]
        round_bump = 1.0 + 1.5 * (np.mod(self.strikes, 500) == 0)
        base = 2.0e5 * near * round_bump
        self.ce_oi = np.round(
            base * np.exp(-((k - 0.01) ** 2) / 0.0008) + 500 * self.rng.random((rows, n_strikes))
        )
        self.pe_oi = np.round(
            base * np.exp(-((k + 0.01) ** 2) / 0.0008) + 500 * self.rng.random((rows, n_strikes))
        )
        self.ce_open = self.ce_oi.copy()
        self.pe_open = self.pe_oi.copy()
        self.ce_vol = np.zeros((rows, n_strikes))
        self.pe_vol = np.zeros((rows, n_strikes))
        # Deep in-the-money quotes that a provider does not give an IV or a bid for.
        self.no_iv = (np.abs(k) > 0.06) & (self.rng.random((rows, n_strikes)) < 0.3)
        self.base_iv = 0.11 + 0.02 * near[:, 0]

    def _prices(self, spot: np.ndarray, iv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tau = (self.tau_days[:, None] - self._elapsed_days()) / 365.0
        tau = np.maximum(tau, 1e-4)
        s = spot[self.row_index][:, None]
        sd = iv * np.sqrt(tau)
        d1 = (np.log(s / self.strikes) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        call = s * _ncdf(d1) - self.strikes * _ncdf(d2)
        put = call - s + self.strikes
        return call, put

    def _elapsed_days(self) -> float:
        return (self.t - SESSION_OPEN_UTC).total_seconds() / 86_400.0

    def tick(self) -> list[ChainSnapshot]:
        rng = self.rng
        rows, n = self.strikes.shape
        self.t += self.interval
        self.spot *= np.exp(rng.normal(0.0, 0.0002, self.spot.shape))
        s = self.spot[self.row_index][:, None]
        k = np.log(self.strikes / s)
        iv = self.base_iv[:, None] - 0.25 * k + 1.8 * k * k + rng.normal(0.0, 0.0008, (rows, n))
        iv = np.round(np.maximum(iv, 0.03), 4)
        call, put = self._prices(self.spot, iv)
        noise = rng.normal(0.0, 0.3, (2, rows, n))
        ce_ltp = np.maximum(np.round((call + noise[0]) * 20) / 20, 0.05)
        pe_ltp = np.maximum(np.round((put + noise[1]) * 20) / 20, 0.05)
        spread = np.round(1 + 40 * np.abs(k) + rng.integers(0, 3, (2, rows, n)))
        ce_bid = np.maximum(ce_ltp - spread[0] * 0.05, 0.05)
        pe_bid = np.maximum(pe_ltp - spread[1] * 0.05, 0.05)
        ce_ask = np.round((ce_ltp + spread[0] * 0.05) * 20) / 20
        pe_ask = np.round((pe_ltp + spread[1] * 0.05) * 20) / 20
        ce_bid = np.round(ce_bid * 20) / 20
        pe_bid = np.round(pe_bid * 20) / 20
        ce_bid[self.no_iv] = np.nan
        pe_bid[self.no_iv[:, ::-1]] = np.nan
        # OI and volume move where there is trading: mostly near the money.
        activity = np.exp(-(k**2) / 0.002)
        for oi, vol in ((self.ce_oi, self.ce_vol), (self.pe_oi, self.pe_vol)):
            traded = rng.poisson(activity * (20 + oi / 400.0))
            change = np.round(rng.normal(0.05, 0.35, (rows, n)) * traded)
            oi += change
            np.maximum(oi, 0, out=oi)
            vol += traded
        ce_iv = np.where(self.no_iv, np.nan, iv)
        pe_iv = np.where(self.no_iv[:, ::-1], np.nan, iv)
        out = []
        for r in range(rows):
            ix = self.indices[self.row_index[r]]
            ce = Legs(
                self.ce_oi[r],
                self.ce_oi[r] - self.ce_open[r],
                self.ce_vol[r],
                ce_ltp[r],
                ce_bid[r],
                ce_ask[r],
                ce_iv[r],
            )
            pe = Legs(
                self.pe_oi[r],
                self.pe_oi[r] - self.pe_open[r],
                self.pe_vol[r],
                pe_ltp[r],
                pe_bid[r],
                pe_ask[r],
                pe_iv[r],
            )
            out.append(
                ChainSnapshot(
                    symbol=ix.symbol,
                    expiry=self.expiries[r],
                    provider="bench",
                    feed=Feed.SIMULATED,
                    provider_ts=self.t,
                    fetched_at=self.t + timedelta(milliseconds=350),
                    spot=round(float(self.spot[self.row_index[r]]) * 20) / 20,
                    lot_size=ix.lot_size,
                    strikes=self.strikes[r],
                    ce=ce,
                    pe=pe,
                    meta={"source": "benchmark"},
                )
            )
        return out

    def day(self, ticks: int) -> Iterator[list[ChainSnapshot]]:
        for _ in range(ticks):
            yield self.tick()
