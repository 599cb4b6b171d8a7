"""Start-up shared by commands: settings with CLI overrides, the store, the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optterm.market import utc_now

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.alerts.service import AlertService
    from optterm.engine.engine import Engine
    from optterm.engine.poller import Poller
    from optterm.providers.base import Provider
    from optterm.store import Store

__all__ = ["CliOptions", "load", "make_engine", "make_poller", "open_configured_store"]


@dataclass
class CliOptions:
    """Global options given before the subcommand (`optterm --scenario gamma_squeeze serve`)."""

    config: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # override variable -> CLI flag

    def set(self, variable: str, flag: str, value: object) -> None:
        if value is not None:
            self.overrides[variable] = str(value)
            self.labels[variable] = flag


def load(opts: CliOptions, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from file + environment, with CLI flags applied as the highest-priority overrides.

    Flags go through the same environment-override path as OPTTERM_* variables so they are
    validated by exactly the same rules.
    """
    import os

    from optterm.config import load_settings

    merged = dict(os.environ if env is None else env)
    merged.update(opts.overrides)
    settings = load_settings(opts.config, env=merged, labels=opts.labels)
    protect_settings(settings)
    return settings


def protect_settings(settings: Settings) -> None:
    """Register the secrets the settings hold with the redactor, before anything can log them:
    the parts of every channel URL that grant access and the password of each server URL."""
    from optterm.infra.redact import protect_url_password, protect_urls

    protect_urls(settings.notify.channels.values())
    for url in (
        settings.store.effective_url,
        settings.providers.nse.base_url,
        settings.providers.angelone.base_url,
        settings.providers.angelone.master_url,
    ):
        protect_url_password(url)


def store_url(settings: Settings) -> str:
    return settings.store.effective_url


async def open_configured_store(settings: Settings) -> Store:
    from optterm.store import open_store

    return await open_store(store_url(settings), file_mode=settings.store.files)


def make_poller(
    settings: Settings,
    provider: Provider,
    store: Store | None,
    *,
    alerts: AlertService | None = None,
    now: Callable[[], datetime] | None = None,
) -> Poller:
    from optterm.engine.analytics.analyzer import Analyzer
    from optterm.engine.poller import Poller, SnapshotSink, Watch

    watch = [Watch(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch]
    sink: SnapshotSink | None = None if store is None else store.snapshots
    streamed = None
    if settings.stream.enabled:  # [stream]: the watch ticks over Smart Stream, polling behind
        from optterm.engine.stream.wiring import IntervalSink, streaming
        from optterm.providers.factory import market_calendar

        calendar = market_calendar(settings)
        streamed = streaming(settings, provider, calendar, now=now or utc_now)
        if streamed is not None:
            provider = streamed
            if sink is not None:
                sink = IntervalSink(
                    sink, settings.poller.interval, calendar=calendar, now=now or utc_now
                )
    poller = Poller(
        provider,
        sink,
        watch,
        interval=settings.poller.interval,
        timeout=settings.poller.timeout,
        health_sink=None if store is None else store.health,
        analyzer=Analyzer.from_settings(
            settings,
            history=None if store is None else store.analytics,
            baselines=None if store is None else store.snapshots,
        ),
        analytics_sink=None if store is None else store.analytics,
        alerts=alerts,
        now=now or utc_now,
    )
    if streamed is not None:
        streamed.stream.publish = poller.wake  # coalesced chain updates tick the poller
        streamed.alerts = alerts  # the legs its PRICE rules watch are judged as they stream
    return poller


def make_engine(
    settings: Settings,
    provider: Provider,
    store: Store | None,
    *,
    app_sink: Any = None,
    now: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    master: Any = None,
) -> Engine:
    """Poller with analytics and alerts, plus the notification dispatcher and the saved scans
    (with a store): over the simulator's universe while the simulator is the first provider,
    over the live universe feed while Angel One is (engine/scanner/live.py). `sleep` spaces the
    feed's calls and `master` replaces the instrument master indexing every name (tests)."""
    from optterm.engine.alerts.service import AlertService
    from optterm.engine.engine import Engine
    from optterm.engine.notify.dispatcher import Dispatcher
    from optterm.infra.secrets import SecretStore
    from optterm.providers.factory import market_calendar

    if store is None:
        return Engine(make_poller(settings, provider, None, now=now))
    dispatcher = Dispatcher(store, settings, SecretStore(), app_sink=app_sink)
    calendar = market_calendar(settings)
    alerts = AlertService(
        store,
        calendar,
        on_recorded=dispatcher.wake,
        # Streaming ticks up to max_updates_per_s: the rules' version is asked once a second.
        reload_every_s=1.0 if settings.stream.enabled else 0.0,
        settings=settings,
    )
    poller = make_poller(settings, provider, store, alerts=alerts, now=now)
    scans = None
    first = settings.providers.order[0] if settings.providers.order else None
    if first == "simulator":
        from optterm.engine.scanner.live import LiveScans

        scans = LiveScans(
            store, calendar, seed=settings.providers.simulator.seed, on_recorded=dispatcher.wake
        )
    elif first == "angelone":
        feed = make_live_feed(settings, provider, now=now, sleep=sleep, master=master)
        if feed is not None:
            from optterm.engine.scanner.live import LiveScans

            scans = LiveScans(
                store,
                calendar,
                seed=settings.providers.simulator.seed,
                on_recorded=dispatcher.wake,
                feed=feed,
            )
    return Engine(poller, dispatcher, scans)


def _members(provider: Provider) -> tuple[Any, ...]:
    """The providers behind `provider` (a failover's, in order), or `provider` itself."""
    members = getattr(provider, "members", None)
    return tuple(members()) if callable(members) else (provider,)


def watched_quote_calls(settings: Settings, strikes_each_side: int, *, vix: bool = True) -> int:
    """Quote calls the watched chains make a tick on SmartAPI (50 tokens a call): each chain's
    window of CE and PE tokens and its future, and India VIX (cached 10 s: once a tick)."""
    import math

    per_chain = math.ceil((2 * (2 * strikes_each_side + 1) + 1) / 50)
    return sum(w.expiries * per_chain for w in settings.poller.watch) + (1 if vix else 0)


def make_live_feed(
    settings: Settings,
    provider: Provider,
    *,
    now: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    master: Any = None,
) -> Any:
    """The universe feed over the Angel One member of `provider` (None without one), with
    NSE's OI spurts for the previous OI when NSE is in the order too."""
    import asyncio

    from optterm.engine.scanner.livefeed import LIVE_SOURCE, LiveFeed

    members = _members(provider)
    angel = next((p for p in members if p.name == LIVE_SOURCE and hasattr(p, "quotes")), None)
    if angel is None:
        return None
    spurts = next((p for p in members if p.name == "nse" and hasattr(p, "oi_spurts")), None)
    if master is None:
        own = getattr(angel, "master", None)
        if own is not None and getattr(own, "names", ()) is None:
            master = own  # it indexes every name already
        else:
            from optterm.providers.factory import angel_master

            master = angel_master(settings, every_name=True)

    def source() -> str | None:
        # A failover's provider that answered last (None before its first answer).
        return (
            getattr(provider, "active", None)
            if len(members) > 1 or members[0] is not provider
            else provider.name
        )

    return LiveFeed(
        angel.quotes,
        master,
        master.cache_dir,
        tick_s=settings.poller.interval,
        watched_calls=watched_quote_calls(
            settings, getattr(angel, "strikes_each_side", 20), vix=bool(getattr(angel, "vix", True))
        ),
        source=source,
        now=now or utc_now,
        sleep=sleep or asyncio.sleep,
        spurts=spurts,
    )
