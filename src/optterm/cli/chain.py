"""`optterm chain`: one option chain fetched now, as a table, JSON or CSV.

The figures (PCR, max pain, walls, GEX, view) are computed over the whole chain as the provider
gave it; `--strikes` only sets how many rows are printed. ΔOI and buildups are over `--interval`
(default `[display] oi_interval`); a minute or pinned interval measures from the store's history
of the chain when there is one (`optterm serve` recording it), and says so when there is not.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from optterm.cli.context import load_settings, parse_date, print_json, run_async
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.analytics.chain import Enriched
    from optterm.market import OiInterval
    from optterm.model import ChainSnapshot
    from optterm.store import Store

__all__ = ["chain"]

log = logging.getLogger("optterm.cli")


def chain(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Underlying, e.g. NIFTY.")],
    expiry: Annotated[
        str | None,
        typer.Option(
            "--expiry", "-e", help="YYYY-MM-DD, DD-Mon-YYYY, or 1 for the nearest, 2 the next…"
        ),
    ] = None,
    strikes: Annotated[
        int,
        typer.Option(
            "--strikes",
            "-n",
            min=1,
            max=300,
            help="Strikes printed each side of ATM (the figures are over the whole chain).",
        ),
    ] = 20,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            "-i",
            help="ΔOI and buildups over: day (since the previous close), 5m, 15m, 30m, or "
            "since a time of today HH:MM. Default: \\[display] oi_interval.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    greeks: Annotated[
        bool, typer.Option("--greeks", "-g", help="Add delta, gamma, theta/day and vega columns.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="The stored chain as of this exchange time, e.g. 2026-11-17T10:45 (from the "
            "store; figures as the engine had them then).",
        ),
    ] = None,
) -> None:
    """Fetch one option chain now and print it with IV, Greeks, ΔOI and buildups, and the
    chain's metrics (CE | strike | PE, ATM marked, MP = max pain)."""
    from optterm.market import OiInterval

    if as_json and as_csv:
        raise UsageProblem("--json and --csv cannot be used together; pick one.")
    chosen: OiInterval | None = None
    if interval is not None:
        try:
            chosen = OiInterval.parse(interval)
        except ValueError as exc:
            raise UsageProblem(f"--interval {exc}.") from None
    settings = load_settings(ctx)
    chosen = chosen or settings.display.interval
    label = None
    if at is not None:
        whole, enriched, label = _stored_chain(settings, symbol.upper(), expiry, at, chosen)
    else:
        whole, enriched = run_async(
            _fetch_chain(settings, symbol.upper(), expiry, chosen, analyse=not as_csv)
        )
    snap = whole.window(strikes) if len(whole) else whole
    if as_csv:
        from optterm.present.chain import write_csv

        write_csv(sys.stdout, [snap])
        return
    shown = enriched.window(strikes) if enriched is not None else None
    if as_json:
        from optterm.present.chain import snapshot_to_dict

        # A stored chain's age is as of the time asked for (how old it was then), not now.
        as_of = None if label is None else datetime.fromisoformat(label[0])
        doc = snapshot_to_dict(snap, now=as_of, enriched=shown)
        if label is not None:
            doc["as_of"], doc["replay"] = label[0], True
        print_json(doc)
    else:
        from rich.console import Console

        from optterm.present.chain import basis_line, chain_table, metrics_lines

        console = Console()
        if label is not None:
            console.print(label[1], highlight=False)
        as_of = None if label is None else datetime.fromisoformat(label[0])
        console.print(chain_table(snap, now=as_of, enriched=shown, greeks=greeks))
        if shown is not None:
            for line in metrics_lines(shown.metrics):
                console.print(line, highlight=False)
            console.print(basis_line(shown, len(snap)), highlight=False)


def _stored_chain(
    settings: Settings, symbol: str, expiry_arg: str | None, at_arg: str, interval: OiInterval
) -> tuple[ChainSnapshot, Enriched | None, tuple[str, str]]:
    """The stored chain in force at `at_arg` with the figures the engine had then (a replay
    up to it): (snapshot, analytics, (the time asked in ISO form, the label line))."""
    from optterm.cli.context import run_reading_store
    from optterm.cli.replay import parse_at, stored_expiry
    from optterm.engine.replay import Replay, ReplayProblem
    from optterm.present.chain import source_label

    at = parse_at(at_arg, settings)
    tz = settings.market.tz
    day = at.astimezone(tz).date()

    async def go(store: Store) -> tuple[ChainSnapshot, Enriched | None]:
        try:
            r = await Replay.open(store, settings, day, [symbol], rules=False, interval=interval)
            r = r.only(symbol, stored_expiry(r, symbol, expiry_arg))
            tick = await r.seek(at)
        except ReplayProblem as exc:
            raise UsageProblem(str(exc)) from None
        update = tick.updates[0]
        return update.snapshot, update.enriched

    snap, enriched = run_reading_store(settings, go)
    local = at.astimezone(tz)
    line = (
        f"[bold]REPLAY[/] {symbol} {snap.expiry.isoformat()} as of {local:%Y-%m-%d %H:%M:%S} "
        f"{local.tzname()}: snapshot {snap.provider_ts.astimezone(tz):%H:%M:%S} "
        f"({source_label(snap)}), from the store"
    )
    return snap, enriched, (at.isoformat(), line)


async def _fetch_chain(
    settings: Settings, symbol: str, expiry_arg: str | None, interval: OiInterval, analyse: bool
) -> tuple[ChainSnapshot, Enriched | None]:
    from optterm.providers.factory import build_provider

    provider = build_provider(settings)
    try:
        await provider.underlying(symbol)
        expiries = await provider.list_expiries(symbol)
        if not expiries:
            raise UsageProblem(f"{symbol} has no listed expiries at {provider.name}.")
        listed = ", ".join(e.isoformat() for e in expiries)
        if expiry_arg is None:
            expiry = expiries[0]
        elif expiry_arg.isdigit():
            n = int(expiry_arg)
            if not 1 <= n <= len(expiries):
                raise UsageProblem(
                    f"--expiry {n}: {symbol} has {len(expiries)} listed expiries ({listed}); "
                    f"use 1 to {len(expiries)} or a date."
                )
            expiry = expiries[n - 1]
        else:
            expiry = parse_date(expiry_arg, "--expiry")
            if expiry not in expiries:
                raise UsageProblem(f"{symbol} has no expiry on {expiry}; listed: {listed}.")
        snap = await provider.fetch_chain(symbol, expiry)
    finally:
        await provider.close()
    if not analyse or not len(snap):
        return snap, None
    return snap, await _analyse(settings, snap, interval)


async def _analyse(settings: Settings, snap: ChainSnapshot, interval: OiInterval) -> Enriched:
    """The whole chain's analytics, ΔOI and buildups measured from the store's history of it
    when there is a store (never created here: a one-off fetch keeps no history)."""
    from optterm.engine.analytics.chain import AnalyticsParams, enrich
    from optterm.engine.analytics.changes import ChangeBook

    store = None
    if _reads_history(snap, interval):
        from optterm.engine.compose import store_url
        from optterm.store import open_store
        from optterm.store.errors import StoreError

        try:
            store = await open_store(store_url(settings), create=False)
        except (StoreError, OSError) as exc:  # no history: the day change reads from the chain
            log.debug("no stored history for ΔOI baselines: %s", exc)
    try:
        book = ChangeBook(settings.market, None if store is None else store.snapshots)
        book.set_interval(interval)
        await book.seed([snap])
        return enrich(
            snap,
            params=AnalyticsParams.from_settings(settings),
            changes=book.changes(snap),
            day=book.day(snap),
        )
    finally:
        if store is not None:
            await store.close()


def _reads_history(snap: ChainSnapshot, interval: OiInterval) -> bool:
    """Can earlier chains change the figures over `interval`? Not over the day when the chain
    carries its own change on the day (OI) and previous closes (premium): day_change then takes
    nothing from them, so no store is opened (that would import SQLAlchemy: ~0.4 s of a run)."""
    import numpy as np

    from optterm.engine.analytics.changes import previous_close

    if not interval.is_day:
        return True
    legs = (snap.ce, snap.pe)
    has_day = any(bool(np.isfinite(leg.oi_change).any()) for leg in legs)
    return not (has_day and all(previous_close(leg) is not None for leg in legs))
