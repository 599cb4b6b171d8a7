"""`optterm strategy`: analyse a strategy (cli/strategy.py), or keep one by name.

    optterm strategy "NIFTY short strangle 24500/25500 x2"      (the same as `strategy analyse …`)
    optterm strategy save NAME "LINE" [--template T] [--expiry E] [--lots N]
    optterm strategy list | show NAME | rm NAME

A first argument that names no subcommand is a strategy line for `analyse`, as `optterm backtest`
takes a spec. A saved strategy keeps its legs, their entry prices (the chain's prices when it was
saved) and when and where those prices came from; `show` prices it on the current chain, and
alert rules (`strategy NAME pnl < -5000`, docs/alerts.md) watch it on every tick.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.backtest import SpecOrCommand
from optterm.cli.context import load_settings, print_json, run_async, run_with_store
from optterm.cli.errors import UsageProblem
from optterm.cli.strategy import strategy as analyse_command

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.strategy.marketdata import StrategyMarket

__all__ = ["strategy_app"]

STRATEGY_HELP = (
    "Analyse an option strategy on the current chain: legs, Greeks, max profit and loss, "
    "breakevens, probability of profit, payoff table and spot × IV matrix."
)


class LineOrCommand(SpecOrCommand):
    """`analyse` for a first argument that names no subcommand, and for no argument at all (it
    says what to give)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            args = ["analyse"]
        return list(super().parse_args(ctx, args))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            return "analyse", self.commands["analyse"], args
        return super().resolve_command(ctx, args)


strategy_app = typer.Typer(
    cls=LineOrCommand,
    help=STRATEGY_HELP
    + '\n\nA first argument that names no command is a strategy line: `optterm strategy "NIFTY '
    'short strangle 24500/25500 x2"` is `optterm strategy analyse …`. Save, list, show and '
    "remove named strategies with the commands below.",
    context_settings={"ignore_unknown_options": True},
)
strategy_app.command("analyse", help=STRATEGY_HELP)(analyse_command)


def _name(name: str) -> str:
    from optterm.store.strategies import check_strategy_name

    try:
        return check_strategy_name(name)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


@strategy_app.command("save")
def save(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the strategy, e.g. my_strangle.")],
    spec: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="LINE",
            help='The strategy line, e.g. "NIFTY short strangle 24500/25500 x2"; with '
            "--template, the underlying.",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="A template name, e.g. iron_condor.")
    ] = None,
    expiry: Annotated[
        str | None,
        typer.Option("--expiry", "-e", help="YYYY-MM-DD, or 1 for the nearest, 2 the next…"),
    ] = None,
    lots: Annotated[
        int | None,
        typer.Option("--lots", help=r"Strategies to hold. Default: \[strategy] lots."),
    ] = None,
) -> None:
    """Save a strategy by name, priced on the current chain (its entry prices, when, where)."""
    from optterm.cli.strategy import line_position
    from optterm.engine.savedstrategy import legs_text, saved_legs, source_of
    from optterm.store.strategies import DuplicateStrategy

    _name(name)
    settings = load_settings(ctx)

    async def taken(store: Any) -> bool:
        return name in await store.strategies.names()

    if run_with_store(settings, taken):  # before the chain is fetched: a quick refusal
        raise UsageProblem(str(DuplicateStrategy(name)))
    market, position = line_position(settings, spec, template, lots, expiry)
    line = f"--template {template} " if template else ""
    line += " ".join(spec or []).strip()

    async def keep(store: Any) -> Any:
        try:
            return await store.strategies.save(
                name, position.symbol, saved_legs(position), priced_at=market.now,
                source=source_of(market), line=line, at=datetime.now(UTC),
            )  # fmt: skip
        except DuplicateStrategy as exc:
            raise UsageProblem(str(exc)) from None

    saved = run_with_store(settings, keep)
    typer.echo(f"Saved strategy {saved.name}: {saved.symbol} {legs_text(saved.legs)}")
    typer.echo(f"  entry prices from {saved.source} at {_at(saved.priced_at, market)}")


def _at(when: datetime, market: StrategyMarket | None = None) -> str:
    from optterm.market import IST

    tz = market.calendar.tz if market is not None else IST
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


@strategy_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the saved strategies: legs, where and when they were priced."""
    from optterm.engine.savedstrategy import legs_text

    settings = load_settings(ctx)

    async def read(store: Any) -> Any:
        return await store.strategies.list()

    saved = run_with_store(settings, read)
    if as_json:
        print_json([s.to_dict() for s in saved], ensure_ascii=False)
        return
    if not saved:
        typer.echo('No saved strategies. Save one: optterm strategy save NAME "NIFTY short '
                   'strangle 24500/25500"')  # fmt: skip
        return
    for s in saved:
        typer.echo(f"{s.name}  {s.symbol} {legs_text(s.legs)}")
        typer.echo(f"    entry prices from {s.source} at {_at(s.priced_at)}")


@strategy_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The saved strategy's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Analyse a saved strategy on the current chain (P&L from its saved entry prices)."""
    from optterm.cli.strategy import print_text
    from optterm.strategy.analysis import analyse
    from optterm.strategy.errors import StrategyError
    from optterm.strategy.report import report

    _name(name)
    settings = load_settings(ctx)
    saved = run_with_store(settings, lambda store: _get(store, name))
    market = _market(settings, saved.symbol, sorted({g.expiry for g in saved.legs}))
    try:
        from optterm.engine.savedstrategy import position_of

        doc = report(analyse(position_of(saved, market.lot_size), market))
    except StrategyError as exc:
        raise UsageProblem(f"strategy {name}: {exc}") from None
    if as_json:
        print_json({"saved": saved.to_dict(), **doc}, ensure_ascii=False)
        return
    built = f" ({saved.line})" if saved.line else ""
    typer.echo(
        f"Saved strategy {saved.name}: entry prices from {saved.source} at "
        f"{_at(saved.priced_at, market)}{built}"
    )
    print_text(doc)


async def _get(store: Any, name: str) -> Any:
    from optterm.store.strategies import UnknownStrategy

    try:
        return await store.strategies.get(name)
    except UnknownStrategy as exc:
        raise UsageProblem(str(exc)) from None


@strategy_app.command("rm")
def rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The saved strategy's name.")],
) -> None:
    """Remove a saved strategy."""
    from optterm.store.strategies import UnknownStrategy

    _name(name)
    settings = load_settings(ctx)

    async def remove(store: Any) -> int:
        try:
            return int(await store.strategies.remove(name))
        except UnknownStrategy as exc:
            raise UsageProblem(str(exc)) from None

    watching = run_with_store(settings, remove)
    typer.echo(f"Removed strategy {name}.")
    if watching:
        typer.echo(
            f"  {watching} alert rule{'s still watch' if watching != 1 else ' still watches'} "
            "it and will not fire until a strategy of that name is saved again (`optterm alerts "
            "list`)."
        )


def _market(settings: Settings, symbol: str, days: list[date]) -> StrategyMarket:
    """The market of `symbol` on the chains of the saved legs' expiries (each still listed)."""

    from optterm.cli.strategy import no_expiry

    async def fetch() -> StrategyMarket:
        from optterm.engine.analytics.chain import AnalyticsParams, enrich_many
        from optterm.providers.factory import build_provider, market_calendar
        from optterm.strategy.marketdata import market_from_chains, rate_of

        provider = build_provider(settings)
        try:
            await provider.underlying(symbol)
            listed = await provider.list_expiries(symbol)
            for day in days:
                if day not in listed:
                    raise UsageProblem(no_expiry(symbol, day, listed))
            snaps = [await provider.fetch_chain(symbol, d) for d in days]
        finally:
            await provider.close()
        enriched = enrich_many(snaps, AnalyticsParams.from_settings(settings))
        return market_from_chains(
            enriched, market_calendar(settings), settings.market, rate_of(settings)
        )

    return run_async(fetch())
