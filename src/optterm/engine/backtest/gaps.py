"""The data-gap report of a backtest: where the stored history it read was thin or odd.

Per day with data: the snapshots read, gaps between consecutive snapshots longer than
`GAP_FACTOR` times the day's usual step (missing ticks), snapshots whose data was already old when
fetched (stale: provider time more than `STALE_S` behind the fetch), and every change of provider
(a failover mid-session). Trading days of the span with no data at all are listed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from optterm.store.timecodec import from_us

__all__ = ["GAP_FACTOR", "STALE_S", "DayGaps", "GapReport"]

GAP_FACTOR: Final = 3.0
STALE_S: Final = 120.0


@dataclass(slots=True)
class DayGaps:
    """One day's snapshots as read; times are epoch µs (the store's)."""

    day: date
    snapshots: int = 0
    stale: int = 0
    switches: list[tuple[int, str, str]] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)

    def see_many(self, ts: list[int], fetched: list[int], providers: list[str]) -> None:
        """A batch of consecutive snapshots: times, fetch times and providers."""
        self.snapshots += len(ts)
        limit = STALE_S * 1e6
        self.stale += sum(1 for t, f in zip(ts, fetched, strict=True) if f - t > limit)
        last = self._last_provider
        for t, p in zip(ts, providers, strict=True):
            if last is not None and p != last:
                self.switches.append((t, last, p))
            last = p
        self._last_provider = last
        self.ts.extend(ts)

    _last_provider: str | None = None

    def missing(self) -> list[tuple[datetime, float]]:
        """The gaps (start, seconds) longer than GAP_FACTOR x the day's median step."""
        if len(self.ts) < 3:
            return []
        steps = [(b - a) / 1e6 for a, b in zip(self.ts, self.ts[1:], strict=False)]
        usual = sorted(steps)[len(steps) // 2]
        return [
            (from_us(a), s)
            for a, s in zip(self.ts, steps, strict=False)
            if usual > 0 and s > GAP_FACTOR * usual
        ]


@dataclass(slots=True)
class GapReport:
    days: dict[date, DayGaps] = field(default_factory=dict)
    no_data: list[date] = field(default_factory=list)
    # Entries skipped because their fill snapshot carried no futures quote (futures legs).
    no_futures: list[datetime] = field(default_factory=list)

    def day(self, day: date) -> DayGaps:
        return self.days.setdefault(day, DayGaps(day))

    def summary(self) -> dict[str, Any]:
        missing = [(d, t, s) for d, g in self.days.items() for t, s in g.missing()]
        return {
            "days_without_data": [d.isoformat() for d in self.no_data],
            "missing_spans": len(missing),
            "missing_seconds": round(sum(s for _, _, s in missing), 1),
            "longest_missing": [
                {"after": t.isoformat(), "seconds": round(s, 1)}
                for _, t, s in sorted(missing, key=lambda m: -m[2])[:5]
            ],
            "stale_snapshots": sum(g.stale for g in self.days.values()),
            "provider_switches": [
                {"at": from_us(t).isoformat(), "from": a, "to": b}
                for g in self.days.values()
                for t, a, b in g.switches
            ],
            # Only when a futures leg missed its quote: the key is absent otherwise.
            **(
                {"entries_without_futures_quote": [t.isoformat() for t in self.no_futures]}
                if self.no_futures
                else {}
            ),
        }

    def line(self) -> str:
        s = self.summary()
        parts = [
            f"{s['missing_spans']} missing spans ({s['missing_seconds']:g} s)",
            f"{s['stale_snapshots']} stale snapshots",
            f"{len(s['provider_switches'])} provider switches",
        ]
        if self.no_futures:
            parts.append(f"{len(self.no_futures)} entries without a futures quote")
        if s["days_without_data"]:
            parts.append(f"{len(s['days_without_data'])} trading days without data")
        return ", ".join(parts)
