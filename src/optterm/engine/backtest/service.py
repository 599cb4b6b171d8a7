"""A backtest as a use case, once for every front end: the spec read (a line or a .toml file),
the span checked, the cost table found, the run played over the store with its progress and a
stop, and the result saved. `optterm backtest run` and the TUI's backtest screen both call it;
each only draws the progress and the result its own way.

`run_and_save` is a coroutine on the store's loop (the TUI runs it there with
engine/loopproxy.beside): `on_day` and `stop` are plain callables, called between days and
batches, so a front end on another thread passes thread-safe ones (a message post, a flag).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from optterm.engine.backtest.costs import CostTable, load_costs
from optterm.engine.backtest.simulate import BacktestProblem
from optterm.engine.backtest.spec import Spec, SpecError, parse_spec, parse_toml_spec

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store

__all__ = [
    "MAX_SPAN_YEARS",
    "check_span",
    "default_costs",
    "read_spec",
    "run_and_save",
    "spec_from_legs",
]

# A span a backtest reads day by day: longer than F&O has existed is a typo, not a request (an
# 8,000-year span was one store query per day, for hours, before anything was said).
MAX_SPAN_YEARS: Final = 50


def check_span(first: date, last: date, names: tuple[str, str] = ("--from", "--to")) -> None:
    """A BacktestProblem for a span no store can hold: reversed, a day in year 9999 (the day
    after it is past the calendar's end) or more than MAX_SPAN_YEARS long. `names` are what
    the front end calls the two days (the CLI's flags, the screen's fields)."""
    if last < first:
        raise BacktestProblem(
            f"{names[1]} {last.isoformat()} is before {names[0]} {first.isoformat()}; swap them."
        )
    for name, day in zip(names, (first, last), strict=True):
        if day.year >= 9999:
            raise BacktestProblem(
                f"{name} {day.isoformat()} is too far ahead; give a day before 9999-01-01."
            )
    days = (last - first).days + 1
    if days > MAX_SPAN_YEARS * 366:
        raise BacktestProblem(
            f"{names[0]} {first.isoformat()} {names[1]} {last.isoformat()} spans {days:,} days; "
            f"give at most {MAX_SPAN_YEARS} years (`optterm history list` shows the days stored)."
        )


def read_spec(text: str) -> Spec:
    """The spec a line describes, or the one in the .toml file it names; a SpecError saying
    what is wrong otherwise."""
    if not text.strip().endswith(".toml"):
        return parse_spec(text)
    path = Path(text.strip()).expanduser()
    try:
        body = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise SpecError(
            f"the spec file {path} is not UTF-8 text (a binary file?); pass the .toml "
            "spec docs/backtest.md describes."
        ) from None
    return parse_toml_spec(body, str(path))


def default_costs(path: Path | None = None) -> CostTable:
    """The cost table in `path`; without one, costs.toml beside config.toml, else the shipped
    table. A CostError naming the file and row when it is unusable."""
    from optterm.infra.paths import config_file

    if path is None:
        beside = config_file().parent / "costs.toml"
        path = beside if beside.is_file() else None
    return load_costs(path)


async def run_and_save(
    store: Store,
    spec: Spec,
    first: date,
    last: date,
    table: CostTable,
    settings: Settings,
    *,
    allow_simulated: bool = False,
    on_day: Callable[[int, int], Any] | None = None,
    stop: Callable[[], bool] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Play `spec` over first..last and keep the result: the document (results.py) with its
    stored `id`. A run stopped by `stop()` is kept as what it has, marked interrupted. A
    BacktestProblem or CostError before anything is stored when the run cannot be made."""
    from optterm.engine.backtest.results import to_document
    from optterm.engine.backtest.simulate import run_backtest
    from optterm.providers.factory import market_calendar

    calendar = market_calendar(settings)

    async def replayed() -> list[int]:
        from optterm.engine.backtest.entries import replayed_firings

        return await replayed_firings(
            store, settings, spec, first, last, calendar, allow_simulated=allow_simulated, stop=stop
        )

    out = await run_backtest(
        store,
        spec,
        first,
        last,
        table,
        settings.market.tz,
        allow_simulated=allow_simulated,
        on_day=on_day,
        stop=stop,
        trading_day=calendar.is_trading_day,
        replayed=replayed,
    )
    doc = to_document(out, settings.market.tz)
    doc["id"] = await store.backtests.save(doc, at or datetime.now(UTC))
    return doc


def spec_from_legs(
    symbol: str, legs: Sequence[tuple[str, date, float, int]], listed: Sequence[date]
) -> str:
    """A spec line for legs built elsewhere (the strategy screen's: kind, expiry, strike,
    lots), strikes fixed as picked, on the same rank of expiry each day (`expiry N` when not
    the nearest), entered and left at the default times. A SpecError when a backtest cannot
    take them: no legs, option legs on three expiries or more. A calendar's legs carry their
    rank (`@1`, `@2`). A futures leg is backtested as the future
    of the options' expiry month (the one stored beside their chain), whatever month it was."""
    if not legs:
        raise SpecError(
            "the strategy has no legs to backtest: add some with b / s on the chain first."
        )
    if all(kind == "FUT" for kind, *_ in legs):
        raise SpecError(
            "backtests price a future from beside an option chain: add an option leg "
            "or type a spec."
        )
    expiries = sorted({e for k, e, _, _ in legs if k != "FUT"})
    if len(expiries) > 2:
        raise SpecError(
            f"the legs are on {len(expiries)} expiries; a backtest takes at most two (a "
            "calendar): keep the legs of two expiries or type a spec."
        )
    ordered = sorted(listed)

    def rank(e: date) -> int:
        return ordered.index(e) + 1 if e in ordered else 1

    parts = [symbol]
    for kind, e, strike, lots in sorted(legs, key=lambda g: (g[2], g[0], g[1])):
        at = f"@{rank(e)}" if len(expiries) > 1 else ""  # a calendar: each leg's own rank
        parts.append(f"{lots:+d} FUT" if kind == "FUT" else f"{lots:+d} {strike:g}{kind}{at}")
    if len(expiries) == 1 and rank(expiries[0]) > 1:
        parts.append(f"expiry {rank(expiries[0])}")
    parts.append("enter at 09:20 exit at 15:15")
    return " ".join(parts)
