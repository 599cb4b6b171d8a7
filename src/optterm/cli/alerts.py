"""`optterm alerts` and `optterm notify`: alert rules in, history and test sends out.

Wiring only: every command imports what it needs when it runs, and every change to the rules
goes through the alert book (engine/alerts/book.py), as the TUI's do. A rule and its channels
are validated completely before anything is written, and a channel's URL is never printed: only
its redacted label.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optterm.cli.context import (
    load_settings,
    print_json,
    read_store,
    run_reading_store,
    run_with_store,
)
from optterm.cli.errors import UsageProblem
from optterm.infra.clip import clip
from optterm.present.time import SINCE_HELP, when_text

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.alerts.book import AlertBook, ChannelResult
    from optterm.model import AlertRule
    from optterm.store import Store
    from optterm.store.alerts import EventView
    from optterm.store.plainread import PlainReader
    from optterm.store.rows import RuleStateRow

__all__ = ["alerts_app", "notify_app"]

alerts_app = typer.Typer(
    help="Alert rules: add (one line or flags), list, enable, disable, remove, history, test.",
    no_args_is_help=True,
)
notify_app = typer.Typer(help="Notification channels: send a test message.", no_args_is_help=True)

_EXAMPLE = 'optterm alerts add "NIFTY spot crosses above 25000"'


# ------------------------------------------------------------------------------------ helpers


def _print_json(doc: Any) -> None:
    print_json(doc, ensure_ascii=False)  # labels and notes as typed (…, ₹), not as \u escapes


# Rule ids are 64-bit database integers: a larger number is refused as a usage error (exit 2)
# before it can overflow the database driver.
ID_RANGE: dict[str, Any] = {"min": 1, "max": 2**63 - 1}


def _unknown(rule_id: int) -> UsageProblem:
    return UsageProblem(f"no alert rule {rule_id}; `optterm alerts list` shows them.")


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else x


def _when(ts: datetime | None, settings: Settings, now: datetime) -> str:
    return when_text(ts, settings.market.tz, now)


def _book(settings: Settings, use: Callable[[AlertBook], Awaitable[Any]]) -> Any:
    """Run one use case of the alert book on the configured store; its errors as usage errors."""
    from optterm.engine.alerts.book import AlertBook, AlertBookError, UnknownAlertRule

    try:
        return run_with_store(settings, lambda store: use(AlertBook(store, settings)))
    except UnknownAlertRule as exc:
        raise _unknown(exc.rule_id) from None
    except AlertBookError as exc:
        raise UsageProblem(str(exc)) from None


def _rule_doc(rule: AlertRule, st: RuleStateRow | None, now: datetime) -> dict[str, Any]:
    from optterm.engine.alerts.rules import rule_summary
    from optterm.present.alerts import rule_state

    return {
        "id": rule.id,
        "summary": rule_summary(rule),
        "owner": rule.owner,
        "symbol": rule.symbol,
        "kind": rule.kind.value,
        "condition": rule.condition.value,
        "threshold": rule.threshold,
        "expiry": rule.expiry.isoformat() if rule.expiry else None,
        "strike": rule.strike,
        "side": rule.side.value if rule.side else None,
        "metric": rule.metric,
        "pattern": rule.pattern.value if rule.pattern else None,
        "strategy": rule.strategy,
        "hysteresis": rule.hysteresis,
        "tolerance": rule.tolerance,
        "window_s": rule.window_s,
        "cooldown_s": rule.cooldown_s,
        "recurring": rule.recurring,
        "active_from": f"{rule.active_from:%H:%M}" if rule.active_from else None,
        "active_to": f"{rule.active_to:%H:%M}" if rule.active_to else None,
        "channels": list(rule.channel_labels or rule.channels),
        "channel_refs": list(rule.channels),
        "enabled": rule.enabled,
        "note": rule.note,
        "created_at": rule.created_at.isoformat() if rule.created_at else None,
        "state": rule_state(rule, st, now),
        "last_fired_at": (
            st.last_fired_at.isoformat() if st is not None and st.last_fired_at else None
        ),
        "fire_count": st.fire_count if st is not None else 0,
    }


def _duration(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    from optterm.engine.alerts.rules import parse_duration

    seconds = parse_duration(text)
    if seconds is None:
        raise UsageProblem(
            f"{flag} {text!r} is not a duration; write seconds (300) or 90s, 15m, 1h, 1h30m."
        )
    return seconds


def _notify_specs(notify: list[str] | None) -> list[str] | None:
    """The --notify specs (None: in-app only); an empty one is refused here, naming the flag."""
    if not notify:
        return None
    if any(not spec.strip() for spec in notify):
        raise UsageProblem("--notify needs a channel: app, tag:NAME or an Apprise URL")
    return [spec.strip() for spec in notify]


# ---------------------------------------------------------------------------------------- add


@alerts_app.command("add")
def alerts_add(
    ctx: typer.Context,
    text: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEXT",
            help='The rule in one line, e.g. "NIFTY spot crosses above 25000" (docs/alerts.md).',
            show_default=False,
        ),
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Underlying, e.g. NIFTY.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="PRICE, OI_CHANGE, VOLUME_SPIKE, PATTERN_DETECTED, VOLATILITY, PCR, "
            "MAX_PAIN_SHIFT or STALE_FEED."
        ),
    ] = None,
    condition: Annotated[
        str | None, typer.Option(help="above, below, equals or percent_change.")
    ] = None,
    threshold: Annotated[
        str | None, typer.Option(help="The value, e.g. 25000, 1.3, 20% (an IV), 5x.")
    ] = None,
    expiry: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: nearest).")] = None,
    strike: Annotated[float | None, typer.Option(help="Strike of the option watched.")] = None,
    side: Annotated[str | None, typer.Option(help="CE or PE, with --strike.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="PRICE: spot|ltp; VOLATILITY: iv|atm_iv|iv_rank.")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="PATTERN_DETECTED: the pattern, e.g. GAMMA_SQUEEZE.")
    ] = None,
    hysteresis: Annotated[
        str | None, typer.Option(help="Re-arm band in the value's units (IV: 0.5%).")
    ] = None,
    tolerance: Annotated[str | None, typer.Option(help="equals: the ± band.")] = None,
    window: Annotated[
        str | None, typer.Option(help="percent_change / VOLUME_SPIKE window, e.g. 15m.")
    ] = None,
    cooldown: Annotated[
        str | None, typer.Option(help="Quiet time after firing (default 5m).")
    ] = None,
    recurring: Annotated[
        bool | None,
        typer.Option(
            "--recurring/--once", help="Fire every crossing (default), or once then disable."
        ),
    ] = None,
    active_from: Annotated[
        str | None, typer.Option("--from", help="Active from HH:MM (default: market hours).")
    ] = None,
    active_to: Annotated[str | None, typer.Option("--to", help="Active until HH:MM.")] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(
            "--notify",
            metavar="SPEC",
            help="app | tag:NAME (\\[notify] channels) | an Apprise URL (kept in the OS keyring). "
            "Repeatable; default app.",
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Owner (default: your user name).")] = None,
    note: Annotated[str | None, typer.Option(help="A note kept with the rule.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rule as JSON.")] = False,
) -> None:
    """Add an alert rule, from one line of text or from flags (flags win over the text)."""
    from optterm.engine.alerts.book import AlertBookError, draft_rule
    from optterm.engine.alerts.rules import RuleError

    settings = load_settings(ctx)
    specs = _notify_specs(notify)
    flags = {
        "symbol": symbol,
        "kind": kind,
        "condition": condition,
        "expiry": expiry,
        "strike": strike,
        "side": side,
        "metric": metric,
        "pattern": pattern,
        "recurring": recurring,
        "active_from": active_from,
        "active_to": active_to,
        "owner": owner,
        "note": note,
    }
    typed = {"window": window, "cooldown": cooldown, "threshold": threshold,
             "hysteresis": hysteresis, "tolerance": tolerance}  # fmt: skip
    try:
        kw = _rule_fields(settings, " ".join(text or []).strip(), flags, typed)
        draft_rule(settings, kw, specs)  # everything checked before the store is opened
    except (RuleError, AlertBookError) as exc:
        raise UsageProblem(str(exc)) from None
    rule = _book(settings, lambda book: book.add(kw, specs))
    now = datetime.now(UTC)
    if as_json:
        _print_json(_rule_doc(rule, None, now))
        return
    doc = _rule_doc(rule, None, now)
    typer.echo(f"Added alert rule {rule.id}: {doc['summary']}")
    typer.echo(f"  notify: {', '.join(doc['channels'])}")


def _rule_fields(
    settings: Settings, line: str, flags: dict[str, Any], typed: dict[str, str | None]
) -> dict[str, Any]:
    """build_rule keyword arguments from the one-line text and the flags given (flags win).
    `typed` holds the flags still as typed: durations, and the threshold and bands, which are
    read in the units of the rule's kind, metric and condition."""
    from optterm.engine.alerts.rules import parse_rule_text, parse_threshold

    kw: dict[str, Any] = parse_rule_text(line, settings) if line else {}
    kw.update({k: v for k, v in flags.items() if v is not None})
    for name in ("window", "cooldown"):
        if (seconds := _duration(typed[name], f"--{name}")) is not None:
            kw[f"{name}_s"] = seconds
    if "symbol" not in kw or "kind" not in kw:
        raise UsageProblem(
            "say what to watch: the rule as one line of text, e.g. "
            f"{_EXAMPLE}, or flags, e.g. --symbol NIFTY --kind PRICE --condition above "
            "--threshold 25000."
        )
    unit = {"kind": kw["kind"], "condition": kw.get("condition"), "metric": kw.get("metric")}
    for name in ("threshold", "hysteresis", "tolerance"):
        if (text := typed[name]) is not None:
            kw[name] = parse_threshold(text, **unit)
    kw.setdefault("condition", None)
    kw.setdefault("threshold", None)
    return kw


# --------------------------------------------------------------------------------------- list


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    all_owners: Annotated[
        bool, typer.Option("--all-owners", help="Every owner's rules, not only yours.")
    ] = False,
    symbol: Annotated[str | None, typer.Option(help="Only this underlying.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Alert rules with their channels (redacted), state and last firing."""
    from optterm.engine.alerts.rules import default_owner

    settings = load_settings(ctx)
    owner = None if all_owners else default_owner()
    sym = symbol.strip().upper() if symbol else None

    def plain(reader: PlainReader) -> tuple[list[AlertRule], dict[int, RuleStateRow]]:
        return reader.list_rules(owner=owner, symbol=sym), reader.load_activity()

    async def read(store: Store) -> tuple[list[AlertRule], dict[int, RuleStateRow]]:
        return await store.alerts.list_rules(
            owner=owner, symbol=sym
        ), await store.alerts.load_activity()

    rules, states = read_store(settings, plain, read)
    now = datetime.now(UTC)
    docs = [_rule_doc(r, states.get(r.id or -1), now) for r in rules]
    if as_json:
        _print_json(docs)
        return
    if not docs:
        scope = f" for {clip(sym)}" if sym else ""
        more = "" if all_owners else " of yours (--all-owners shows everyone's)"
        typer.echo(f"No alert rules{scope}{more}. Add one: {_EXAMPLE}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    cols = ["ID", *(["Owner"] if all_owners else []), "Rule", "Notify", "State", "Last fired",
            "Fires"]  # fmt: skip
    table = Table(*cols, title="Alert rules")
    from optterm.present.alerts import STATE_STYLE

    for r, d in zip(rules, docs, strict=True):
        st = states.get(r.id or -1)
        state = d["state"]
        table.add_row(
            str(d["id"]),
            *([escape(d["owner"])] if all_owners else []),
            escape(d["summary"]),
            escape(", ".join(d["channels"])),
            f"[{STATE_STYLE.get(state, 'white')}]{state}[/]",
            _when(st.last_fired_at if st else None, settings, now),
            str(d["fire_count"]),
        )
    Console().print(table)


# --------------------------------------------------------------------------- rm, enable, disable


def _existing(settings: Settings, rule_id: int) -> AlertRule:
    return _book(settings, lambda book: book.get(rule_id))


@alerts_app.command("rm")
def alerts_rm(
    ctx: typer.Context,
    rule_id: Annotated[
        int, typer.Argument(metavar="ID", help="The rule's id (alerts list).", **ID_RANGE)
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an alert rule (its fired events stay in the history)."""
    from optterm.engine.alerts.rules import rule_summary

    settings = load_settings(ctx)
    rule = _existing(settings, rule_id)
    summary = rule_summary(rule)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem(
                f"not deleting alert rule {rule_id} ({summary}) without confirmation: there is "
                "no terminal to ask on; pass --yes to delete it."
            )
        if not typer.confirm(f"Delete alert rule {rule_id}: {summary}?"):
            typer.echo("Nothing deleted.")
            raise typer.Exit(1)
    _book(settings, lambda book: book.remove(rule_id))
    typer.echo(
        f"Deleted alert rule {rule_id}: {summary}. Its firings stay in "
        f"`optterm alerts history {rule_id}`."
    )


def _set_enabled(ctx: typer.Context, rule_id: int, enabled: bool) -> None:
    from optterm.engine.alerts.rules import rule_summary

    settings = load_settings(ctx)
    rule = _book(settings, lambda book: book.set_enabled(rule_id, enabled))
    typer.echo(f"{'Enabled' if enabled else 'Disabled'} alert rule {rule_id}: {rule_summary(rule)}")


@alerts_app.command("enable")
def alerts_enable(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument(metavar="ID", **ID_RANGE)]
) -> None:
    """Enable an alert rule (a one-shot rule that fired can be enabled again)."""
    _set_enabled(ctx, rule_id, True)


@alerts_app.command("disable")
def alerts_disable(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument(metavar="ID", **ID_RANGE)]
) -> None:
    """Disable an alert rule; it keeps its settings and history."""
    _set_enabled(ctx, rule_id, False)


# ------------------------------------------------------------------------------------ history


def _since(text: str, settings: Settings, now: datetime) -> datetime:
    from optterm.present.time import SinceError, parse_since

    try:
        return parse_since(text, now=now, tz=settings.market.tz)
    except SinceError as exc:
        raise UsageProblem(str(exc)) from None


def _event_doc(v: EventView) -> dict[str, Any]:
    e = v.event
    return {
        "id": e.id,
        "rule_id": e.rule_id,
        "symbol": e.symbol,
        "kind": e.kind.value,
        "fired_at": e.fired_at.isoformat(),
        "value": _num(e.value),
        "threshold": _num(e.threshold),
        "title": e.title,
        "body": e.body,
        "provider": e.provider,
        "feed": e.feed.value,
        "context": [[n, x if isinstance(x, str) else _num(x)] for n, x in e.context],
        "deliveries": [
            {
                "channel": d.channel_label,
                "status": d.status.value,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            }
            for d in v.deliveries
        ],
    }


@alerts_app.command("history")
def alerts_history(
    ctx: typer.Context,
    rule_id: Annotated[
        int | None, typer.Argument(metavar="ID", help="Only this rule's firings.", **ID_RANGE)
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this underlying.")] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help=f"Since {SINCE_HELP}."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fired alerts, newest first, with each channel's delivery status."""
    settings = load_settings(ctx)
    now = datetime.now(UTC)
    start = _since(since, settings, now) if since else None
    sym = symbol.strip().upper() if symbol else None
    views = run_reading_store(
        settings,
        lambda store: store.alerts.list_events(
            rule_id=rule_id, symbol=sym, since=start, limit=limit
        ),
    )
    docs = [_event_doc(v) for v in views]
    if as_json:
        _print_json(docs)
        return
    if not docs:
        typer.echo(
            "No alerts have fired"
            + (f" for rule {rule_id}" if rule_id is not None else "")
            + (f" on {sym}" if sym else "")
            + (" in that time" if start else "")
            + ". Rules are evaluated while `optterm serve` or the TUI runs."
        )
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from optterm.present.alerts import event_value_text

    colours = {"SENT": "green", "FAILED": "red", "PENDING": "yellow", "SENDING": "yellow"}
    table = Table("Time", "Rule", "Alert", "Value", "Deliveries", title="Alert history")
    for v, d in zip(views, docs, strict=True):
        parts = []
        for dl in d["deliveries"]:
            status = f"[{colours.get(dl['status'], 'white')}]{dl['status']}[/]"
            if dl["attempts"] > 1:
                status += f" after {dl['attempts']} tries"
            if dl["last_error"] and dl["status"] != "SENT":
                status += f": {escape(dl['last_error'])}"
            parts.append(f"{escape(dl['channel'])} {status}")
        value = "" if d["value"] is None else event_value_text(v.event)
        table.add_row(
            _when(v.event.fired_at, settings, now),
            f"#{d['rule_id']}",
            escape(d["title"]),
            value,
            "\n".join(parts) or "—",
        )
    Console().print(table)


# --------------------------------------------------------------------------------- test sends


def _report(results: list[ChannelResult]) -> None:
    """One line per channel, those not sent first (as they are known before any send ends);
    exit status 1 when any failed."""
    from optterm.present.alerts import channel_result_line

    for r in sorted(results, key=lambda r: r.sent):
        typer.echo(channel_result_line(r))
    raise typer.Exit(1 if any(r.ok is False for r in results) else 0)


@alerts_app.command("test")
def alerts_test(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument(metavar="ID", **ID_RANGE)]
) -> None:
    """Send a test message to every channel of a rule now (in-app channels are skipped)."""
    settings = load_settings(ctx)
    _rule, results = _book(settings, lambda book: book.send_test_message(rule_id))
    _report(results)


@notify_app.command("test")
def notify_test(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(metavar="URL", help="An Apprise URL, or tag:NAME from the config.")
    ],
) -> None:
    """Send a test message to one channel now, to check its URL works."""
    from optterm.engine.alerts.book import send_test_message
    from optterm.engine.notify.channels import (
        ChannelError,
        parse_channel_spec,
        redact_url,
        resolve_channel,
        validate_url,
    )

    settings = load_settings(ctx)
    spec = url.strip()
    # What cannot be a channel at all is a usage error (exit 2), unlike a channel that fails.
    try:
        if spec.startswith("tag:"):
            parse_channel_spec(spec, settings, None)
            resolve_channel(spec, settings, None)
        elif (problem := validate_url(spec)) is not None:
            raise ChannelError(f"{redact_url(spec)}: {problem}")
    except ChannelError as exc:
        raise UsageProblem(str(exc)) from None
    body = "If you can read this, optterm can deliver alerts to this channel."
    import asyncio

    _report(asyncio.run(send_test_message(settings, [spec], "optterm test", body)))
