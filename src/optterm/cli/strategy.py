"""`optterm strategy`: a multi-leg strategy analysed on the current chain.

    optterm strategy "NIFTY short strangle 24500/25500 x2" [--at DATE] [--iv +2] [--json]
    optterm strategy --template iron_condor NIFTY [--delta 0.2] [--width 2] [--lots 1]

Every figure of strategy/report.py is printed, with the model it was computed under. Leg prices
are the chain's last traded prices; each expiry is priced on its own forward. Nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import load_settings, parse_date, print_json, run_async
from optterm.cli.errors import UsageProblem

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.strategy.line import StrategyLine
    from optterm.strategy.margin import Margin
    from optterm.strategy.marketdata import StrategyMarket
    from optterm.strategy.position import Position

__all__ = ["line_position", "no_expiry", "print_text", "strategy"]


def strategy(
    ctx: typer.Context,
    spec: Annotated[
        list[str] | None,
        typer.Argument(
            help='A strategy line in quotes, e.g. "NIFTY short strangle 24500/25500 x2" or '
            '"NIFTY +1 24900CE -2 25000CE +1 25100CE"; with --template, the underlying.',
            metavar="LINE",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", "-t", help="A template name (see --templates), e.g. iron_condor."
        ),
    ] = None,
    expiry: Annotated[
        str | None,
        typer.Option("--expiry", "-e", help="YYYY-MM-DD, or 1 for the nearest, 2 the next…"),
    ] = None,
    lots: Annotated[
        int | None,
        typer.Option(
            "--lots", help=r"Strategies to hold (multiplies every leg). Default: \[strategy] lots."
        ),
    ] = None,
    offset: Annotated[
        float | None, typer.Option("--offset", help="Template: C1/P1 this many strikes from ATM.")
    ] = None,
    delta: Annotated[
        float | None, typer.Option("--delta", help="Template: C1/P1 at this |delta|, e.g. 0.2.")
    ] = None,
    premium: Annotated[
        float | None, typer.Option("--premium", help="Template: C1/P1 priced nearest this.")
    ] = None,
    straddle: Annotated[
        float | None,
        typer.Option("--straddle", help="Template: C1/P1 at ATM ± this multiple of the straddle."),
    ] = None,
    width: Annotated[int, typer.Option("--width", help="Template: wing width in strikes.")] = 2,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Value the position at this date (its close) or 'YYYY-MM-DD HH:MM' (exchange "
            "time), before the first expiry.",
        ),
    ] = None,
    targets: Annotated[
        list[str] | None,
        typer.Option("--target", help="Add a P&L column at this date (repeatable), like --at."),
    ] = None,
    iv: Annotated[float, typer.Option("--iv", help="Shift every leg's IV by vol points.")] = 0.0,
    anchor: Annotated[
        str, typer.Option("--anchor", help="Probabilities anchored on: forward or spot.")
    ] = "forward",
    day_count: Annotated[
        str,
        typer.Option("--day-count", help="Volatility clock: calendar (/365) or trading (/252)."),
    ] = "calendar",
    iv_rule: Annotated[
        str, typer.Option("--iv-rule", help="sticky_strike or sticky_moneyness.")
    ] = "sticky_strike",
    drift: Annotated[
        float, typer.Option("--drift", help="Annual drift of the probability model.")
    ] = 0.0,
    vol: Annotated[
        float | None,
        typer.Option("--vol", help="Probability model volatility in % (default: ATM IV)."),
    ] = None,
    span: Annotated[
        Path | None,
        typer.Option(
            "--span",
            help="NSE Clearing SPAN file (.spn or its .zip): add SPAN + exposure margin.",
        ),
    ] = None,
    broker_margin: Annotated[
        bool,
        typer.Option(
            "--broker-margin",
            help="Also ask Angel One's margin calculator (needs its credentials; nothing is "
            "ordered).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    list_templates: Annotated[
        bool, typer.Option("--templates", help="List the templates by view and exit.")
    ] = False,
) -> None:
    """Analyse an option strategy on the current chain: legs, Greeks, max profit and loss,
    breakevens, probability of profit, payoff table and spot × IV matrix."""
    from optterm.strategy.errors import StrategyError

    if list_templates:
        _print_templates(as_json)
        return
    try:
        line = _line(spec, template, 1 if lots is None else lots)
        placement = _placement(offset, delta, premium, straddle, width)
        model = _model(anchor, day_count, iv_rule, drift, vol)
    except StrategyError as exc:
        raise UsageProblem(str(exc)) from None
    settings = load_settings(ctx)
    if lots is None:  # the configured default, as if given
        line = replace(line, multiplier=line.multiplier * settings.strategy.lots)
    market, line = run_async(_market(settings, line, expiry))
    try:
        from optterm.strategy.analysis import analyse

        position = line.resolve(market, placement)
        first = min(market.expiry(d).settle for d in position.expiries)
        when = _at(at, market, first, "--at")
        extra = [_at(t, market, first, "--target") for t in targets or ()]
        analysis = analyse(
            position,
            market,
            model,
            at=when,
            targets=sorted(d for d in extra if d is not None),
            iv_shift=iv,
        )
        margin = None if span is None else _margin(span, position, market)
    except StrategyError as exc:
        raise UsageProblem(str(exc)) from None
    from optterm.strategy.report import margin_report, report

    doc = report(analysis)
    if margin is not None:
        doc["margin"] = margin_report(analysis, margin)
    if broker_margin:
        doc["broker_margin"] = run_async(_broker_margin(settings, position))
    if as_json:
        print_json(doc)
    else:
        print_text(doc)


def line_position(
    settings: Settings,
    spec: list[str] | None,
    template: str | None,
    lots: int | None,
    expiry: str | None,
) -> tuple[StrategyMarket, Position]:
    """A strategy line (or a template on an underlying) resolved on the current chain, strikes
    placed the default way: what `optterm strategy save` keeps."""
    from optterm.strategy.errors import StrategyError

    try:
        line = _line(spec, template, 1 if lots is None else lots)
        if lots is None:
            line = replace(line, multiplier=line.multiplier * settings.strategy.lots)
        market, line = run_async(_market(settings, line, expiry))
        return market, line.resolve(market, _placement(None, None, None, None, 2))
    except StrategyError as exc:
        raise UsageProblem(str(exc)) from None


def _line(spec: list[str] | None, template: str | None, lots: int) -> StrategyLine:
    from optterm.strategy.errors import StrategyError
    from optterm.strategy.line import StrategyLine, parse_line
    from optterm.strategy.templates import by_name

    if lots <= 0:
        raise StrategyError(f"--lots {lots}: hold a whole number >= 1 of the strategy.")
    words = " ".join(spec or []).strip()
    if template is not None:
        t = by_name(template)
        if t is None:
            raise StrategyError(
                f"unknown template {template!r}; `optterm strategy --templates` lists them."
            )
        if not words or len(words.split()) != 1:
            raise StrategyError(
                f"--template {t.name} needs one underlying, e.g. "
                f"`optterm strategy --template {t.name} NIFTY`."
            )
        return StrategyLine(words.upper(), t, multiplier=lots)
    if not words:
        raise StrategyError(
            'give a strategy, e.g. optterm strategy "NIFTY short strangle 24500/25500 x2", '
            "or --template NAME SYMBOL."
        )
    line = parse_line(words)
    return replace(line, multiplier=line.multiplier * lots)


def _placement(
    offset: float | None, delta: float | None, premium: float | None, straddle: float | None,
    width: int,
) -> Any:  # fmt: skip
    from optterm.strategy.errors import StrategyError
    from optterm.strategy.placement import Placement

    given = {
        k: v
        for k, v in (
            ("offset", offset), ("delta", delta), ("premium", premium), ("straddle", straddle)
        )
        if v is not None
    }  # fmt: skip
    if len(given) > 1:
        raise StrategyError(
            f"place strikes one way: {', '.join('--' + k for k in given)} were all given."
        )
    by, value = next(iter(given.items())) if given else ("offset", None)
    return Placement(by, value, width)  # type: ignore[arg-type]


def _model(anchor: str, day_count: str, iv_rule: str, drift: float, vol: float | None) -> Any:
    from optterm.strategy.errors import StrategyError
    from optterm.strategy.settings import ModelSettings

    if vol is not None and not (math.isfinite(vol) and 0 < vol <= 1000):
        raise StrategyError(f"--vol {vol:g}: give the model's volatility in %, like 12.5.")
    rule = iv_rule.replace("-", "_")
    return ModelSettings(
        anchor=anchor,  # type: ignore[arg-type]
        day_count=day_count,  # type: ignore[arg-type]
        iv_rule=rule,  # type: ignore[arg-type]
        drift=drift,
        vol=None if vol is None else vol / 100.0,
    )


def _at(text: str | None, market: StrategyMarket, first: datetime, flag: str) -> datetime | None:
    """--at / --target: a date (valued at its close) or a date and time in exchange time."""
    if text is None:
        return None
    cal = market.calendar
    raw = text.strip().replace("T", " ")
    if " " in raw:
        day_text, clock = raw.split(None, 1)
        try:
            hh, mm = (int(x) for x in clock.split(":"))
            when_t = time(hh, mm)
        except ValueError:
            raise UsageProblem(
                f"{flag} {text!r}: write the time as HH:MM, e.g. --at '2026-11-20 12:30'."
            ) from None
    else:
        day_text, when_t = raw, cal.close
    day = parse_date(day_text, flag)
    when = datetime.combine(day, when_t, tzinfo=cal.tz)
    if not market.now <= when <= first:
        lo = market.now.astimezone(cal.tz)
        hi = first.astimezone(cal.tz)
        raise UsageProblem(
            f"{flag} {text}: value the strategy between now ({lo:%Y-%m-%d %H:%M}) and its first "
            f"expiry ({hi:%Y-%m-%d %H:%M})."
        )
    return when


def _margin(path: Path, position: Position, market: StrategyMarket) -> Margin:
    """SPAN + exposure on the file, today's expiry-day rules, options' exposure on the spot."""
    from optterm import market as exchange
    from optterm.infra.paths import cache_dir
    from optterm.strategy.margin import span_margin
    from optterm.strategy.span import load_span

    f = load_span(path, [position.symbol], cache_dir() / "span")
    return span_margin(
        position,
        f,
        today=market.calendar.local_date(market.now),
        is_index=position.symbol in exchange.NSE_INDICES,
        underlying=market.spot,
    )


async def _broker_margin(settings: Settings, position: Position) -> dict[str, Any]:
    """Angel One's own figure for the legs (its margin calculator), beside the SPAN estimate."""
    from optterm.engine.strategydesk import margin_document
    from optterm.providers.factory import build_one

    provider: Any = build_one(settings, "angelone")
    legs = [(g.kind, g.expiry, g.strike, position.units(g)) for g in position.legs]
    try:
        m = await provider.margin(position.symbol, legs)
    finally:
        await provider.close()
    return margin_document(m)


async def _market(
    settings: Settings, line: StrategyLine, expiry_arg: str | None
) -> tuple[StrategyMarket, StrategyLine]:
    """The chains the line needs, enriched, as one market; the line with its expiry fixed."""
    from optterm.engine.analytics.chain import AnalyticsParams, enrich_many
    from optterm.providers.factory import build_provider, market_calendar
    from optterm.strategy.marketdata import market_from_chains, rate_of

    provider = build_provider(settings)
    symbol = line.symbol
    try:
        await provider.underlying(symbol)
        listed = await provider.list_expiries(symbol)
        if not listed:
            raise UsageProblem(f"{symbol} has no listed expiries at {provider.name}.")
        near = _near(symbol, listed, expiry_arg, line.expiry)
        wanted = set(listed[: line.expiries_wanted])
        wanted.add(near)
        later = [d for d in listed if d > near]
        if later and line.expiries_wanted > 1:
            wanted.add(later[0])
        for g in line.legs:
            if isinstance(g.expiry, date):
                if g.expiry not in listed:
                    raise UsageProblem(no_expiry(symbol, g.expiry, listed))
                wanted.add(g.expiry)
        snaps = [await provider.fetch_chain(symbol, d) for d in sorted(wanted)]
    finally:
        await provider.close()
    enriched = enrich_many(snaps, AnalyticsParams.from_settings(settings))
    market = market_from_chains(
        enriched, market_calendar(settings), settings.market, rate_of(settings)
    )
    return market, replace(line, expiry=near)


def no_expiry(symbol: str, day: date, listed: list[date]) -> str:
    shown = ", ".join(d.isoformat() for d in listed)
    return f"{symbol} has no expiry on {day.isoformat()}; listed: {shown}."


def _near(symbol: str, listed: list[date], arg: str | None, from_line: date | None) -> date:
    if arg is None:
        day = from_line or listed[0]
    elif arg.isdigit():
        n = int(arg)
        if not 1 <= n <= len(listed):
            shown = ", ".join(d.isoformat() for d in listed)
            raise UsageProblem(
                f"--expiry {n}: {symbol} has {len(listed)} listed expiries ({shown}); "
                f"use 1 to {len(listed)} or a date."
            )
        day = listed[n - 1]
    else:
        day = parse_date(arg, "--expiry")
    if day not in listed:
        raise UsageProblem(no_expiry(symbol, day, listed))
    return day


# ------------------------------------------------------------------------------------ output


def _print_templates(as_json: bool) -> None:
    from optterm.strategy.templates import TEMPLATES, VIEWS

    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "view": t.view,
            "legs": [
                f"{'+' if g.lots > 0 else ''}{g.lots} {g.kind}"
                + ("" if g.kind == "FUT" else f" {g.at}")
                + (" next expiry" if g.expiry else "")
                for g in t.legs
            ],
            "strikes": t.strike_exprs(),
        }
        for t in TEMPLATES
    ]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Strategy templates (A = ATM, C1/P1 = first call/put strike, W = wing)")
    for col in ("view", "name", "legs", "strikes in a line"):
        table.add_column(col)
    for view in VIEWS:
        for r in rows:
            if r["view"] == view:
                table.add_row(view, r["name"], ", ".join(r["legs"]), "/".join(r["strikes"]))
    Console().print(table)


def _money(x: float | None, unlimited: bool = False) -> str:
    if unlimited:
        return "Unlimited"
    if x is None:
        return "n/a"
    sign = "-" if x < 0 else ""
    return f"{sign}₹{abs(x):,.0f}" if abs(x) >= 100 else f"{sign}₹{abs(x):,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} %"


# The legs table's columns, each with its rank: the narrowest terminal keeps the lowest ranks.
# A column that does not fit is left out whole (and named under the table) rather than cut: a
# clipped "-0.07…" is a number the trader cannot read.
LEG_COLUMNS: tuple[tuple[str, int], ...] = (
    ("leg", 0), ("expiry", 6), ("qty", 1), ("entry", 2), ("value", 8), ("IV %", 5),
    ("Δ lots", 3), ("Δ ₹/1 %", 9), ("Γ", 10), ("Θ ₹/day", 4), ("V ₹/vol-pt", 7),
)  # fmt: skip


def _fit_columns(
    columns: tuple[tuple[str, int], ...], fits: Callable[[list[int]], bool]
) -> list[int]:
    """The indices of the columns shown, in table order: every column, less the highest ranks
    until `fits` says the table is within the terminal (the first column always stays)."""
    shown = sorted(range(len(columns)), key=lambda i: columns[i][1])
    while len(shown) > 1 and not fits(sorted(shown)):
        shown.pop()
    return sorted(shown)


def _when(iso: str, tz: Any) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%d-%b %H:%M")


def print_text(doc: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from optterm.market import IST, contract_text
    from optterm.present.header import gamma_spec, symbol_price_decimals

    out = Console()
    name = doc["strategy"].replace("_", " ")
    feed = f" · {doc['feed'].upper()}" if doc.get("feed") and doc["feed"] != "live" else ""
    # A currency pair's prices in quarter paise (USDINR 88.9800, a premium of 0.1075); an MCX or
    # CDS lot says what it is ("1 lot = 1,000 USD"), an NSE one its units.
    d = symbol_price_decimals(doc["symbol"])
    px = f",.{d}f"
    lot = contract_text(doc["symbol"]) or f"lot {doc['lot_size']}"
    out.print(
        f"[b]{doc['symbol']} {name}[/b] · spot {doc['spot']:{px}} · {lot} · "
        f"as of {_when(doc['as_of'], IST)} · {doc['provider']}{feed}",
        highlight=False,
    )

    def cell(v: float | None, fmt: str) -> str:
        return "" if v is None else format(v, fmt)

    t = doc["greeks"]
    rows: list[list[str]] = []
    for g in doc["legs"]:
        what = "FUT" if g["strike"] is None else f"{g['strike']:g}{g['kind']}"
        rows.append([
            f"{'B' if g['lots'] > 0 else 'S'}{abs(g['lots'])} {what}",
            date.fromisoformat(g["expiry"][:10]).strftime("%d-%b-%y"),
            f"{g['quantity']:+,}",
            cell(g["entry"], px),
            cell(g["value"], px),
            cell(g["iv_pct"], ".2f"),
            cell(g["delta_lots"], "+.3f"),
            cell(g["delta_rupees_per_pct"], "+,.0f"),
            cell(g["gamma"], gamma_spec(g["gamma"])),
            cell(g["theta_per_day"], "+,.0f"),
            cell(g["vega_per_vol_pt"], "+,.0f"),
        ])  # fmt: skip
    rows.append([
        "total", "", "", "", "", "",
        cell(t["delta_lots"], "+.3f"), cell(t["delta_rupees_per_pct"], "+,.0f"),
        cell(t["gamma"], gamma_spec(t["gamma"])), cell(t["theta_per_day"], "+,.0f"),
        cell(t["vega_per_vol_pt"], "+,.0f"),
    ])  # fmt: skip

    def legs_table(shown: list[int]) -> Table:
        legs = Table(title="Legs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for i in shown:
            name = LEG_COLUMNS[i][0]
            legs.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
        for row in rows:
            legs.add_row(*(row[i] for i in shown))
        return legs

    def wide(legs: Table) -> int:
        # Its natural width: measured against the terminal's, Rich reports no more than that.
        return out.measure(legs, options=out.options.update_width(10_000)).maximum

    shown = _fit_columns(LEG_COLUMNS, lambda shown: wide(legs_table(shown)) <= out.width)
    out.print(legs_table(shown))
    left_out = [LEG_COLUMNS[i][0] for i in range(len(LEG_COLUMNS)) if i not in shown]
    if left_out:
        out.print(
            f"({', '.join(left_out)}: not shown at {out.width} columns; --json has every figure)",
            highlight=False,
        )
    prem = doc["net_premium"] or 0.0
    paid = "debit" if prem > 0 else "credit"
    bes = ", ".join(f"{b['spot']:{px}} ({b['pct_from_spot']:+.2f} %)" for b in doc["breakevens"])
    rr = doc["reward_risk"]
    lines = [
        f"Net premium   {_money(abs(prem))} {paid}",
        f"P&L now       {_money(doc['pnl_now'])} at spot ({_when(doc['at'], IST)})",
        f"Max profit    {_money(doc['max_profit'], doc['max_profit_unlimited'])}",
        f"Max loss      {_money(doc['max_loss'], doc['max_loss_unlimited'])}",
        f"Reward:risk   {'n/a' if rr is None else f'1:{rr:.2f}'}",
        f"Breakevens    {bes or 'none'}",
        f"POP           {_pct(doc['pop_pct'])} · expected P&L {_money(doc['expected_pnl'])} · "
        f"P(max profit) {_pct(doc['p_max_profit_pct'])} · "
        f"P(max loss) {_pct(doc['p_max_loss_pct'])}",
        "σ bands       " + ", ".join(f"{k} {v:{px}}" for k, v in doc["sigma_bands"].items()),
    ]
    for text in lines:
        out.print(text, highlight=False)
    m = doc["model"]
    out.print(
        f"Model         {m['described']}; σ {m['vol_pct']:.2f} %, anchor {m['anchor_value']:{px}},"
        f" T {m['years']:.5f} y to {_when(doc['first_expiry'], IST)}; IV shift {m['iv_shift']:+g}",
        highlight=False,
    )
    if "margin" in doc:
        mg = doc["margin"]
        rom = mg["return_on_margin_pct"]
        out.print(
            f"Margin        SPAN {_money(mg['span'])} + exposure {_money(mg['exposure'])} = "
            f"{_money(mg['total'])} (scan {_money(mg['scan_risk'])}, calendar "
            f"{_money(mg['calendar_charge'])}, net option value "
            f"{_money(mg['net_option_value'])}) · return on margin "
            f"{'n/a' if rom is None else f'{rom:.1f} %'}",
            highlight=False,
        )
        out.print(f"              from the {mg['source']}", highlight=False)
    if "broker_margin" in doc:
        bm = doc["broker_margin"]
        out.print(
            f"Broker margin {_money(bm['total'])} (SPAN {_money(bm['span'])}, hedge benefit "
            f"{_money(bm['benefit'])}) from the {bm['source']}",
            highlight=False,
        )
    for note in doc["notes"]:
        out.print(f"Note          {note}", highlight=False)
    pt = doc["payoff_table"]
    table = Table(title="P&L by spot and date", title_justify="left")
    table.add_column("spot", justify="right")
    for d in pt["dates"]:
        table.add_column(_when(d, IST), justify="right")
    for i, s in enumerate(pt["spots"]):
        table.add_row(f"{s:{px}}", *(_money(row[i]) for row in pt["pnl"]))
    out.print(table)
    ivm = doc["iv_matrix"]
    matrix = Table(
        title=f"P&L by spot and IV shift at {_when(doc['at'], IST)}", title_justify="left"
    )
    matrix.add_column("IV shift", justify="right")
    for s in ivm["spots"]:
        matrix.add_column(f"{s:{px}}", justify="right")
    for shift, row in zip(ivm["iv_shifts"], ivm["pnl"], strict=True):
        matrix.add_row(f"{shift:+g}", *(_money(v) for v in row))
    out.print(matrix)
