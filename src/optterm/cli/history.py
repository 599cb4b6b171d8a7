"""`optterm history`: what the store holds, and exporting it as CSV or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from optterm.model import ChainSnapshot
    from optterm.store import Store

__all__ = ["day_bounds", "export", "summary_rows"]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of one exchange-local calendar day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, start + timedelta(days=1)


async def summary_rows(store: Store) -> list[dict[str, Any]]:
    rows = await store.snapshots.history()
    return [
        {
            "symbol": r.symbol,
            "expiry": r.expiry.isoformat(),
            "date": r.trading_date.isoformat(),
            "provider": r.provider,
            "snapshots": r.count,
            "first": r.first_ts.isoformat(),
            "last": r.last_ts.isoformat(),
        }
        for r in rows
    ]


async def export(
    store: Store,
    symbol: str,
    expiry: date | None,
    start: datetime,
    end: datetime,
    fmt: str,
    out: IO[str],
    *,
    progress: bool = True,
) -> int:
    """Stream snapshots to `out`; returns how many were written. Shows a progress bar on stderr."""
    from optterm.present.chain import snapshot_to_dict, write_csv

    total = await store.snapshots.count(symbol, expiry, start, end)
    snaps: AsyncIterator[ChainSnapshot] = store.snapshots.iterate(symbol, expiry, start, end)
    written = 0
    bar = _progress(total) if progress and total > 0 else None
    try:
        if fmt == "json":
            head = {
                "symbol": symbol,
                "expiry": expiry.isoformat() if expiry else None,
                "from": start.isoformat(),
                "to": end.isoformat(),
            }
            # Streamed: the snapshots array is written one element at a time, never held whole.
            out.write(json.dumps(head)[:-1] + ', "snapshots": [')
        async for snap in snaps:
            if fmt == "json":
                doc = snapshot_to_dict(snap)
                doc.pop("age_seconds", None)  # an export is history, not a live view
                out.write(("," if written else "") + "\n" + json.dumps(doc))
            else:
                write_csv(out, [snap], header=written == 0)
            written += 1
            if bar is not None:
                bar[0].update(bar[1], advance=1)
        if fmt == "json":
            out.write("\n]}\n")
        elif written == 0:
            write_csv(out, [], header=True)
    finally:
        if bar is not None:
            bar[0].stop()
    return written


def _progress(total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    progress.start()
    return progress, progress.add_task("exporting", total=total)
