"""Start-up shared by commands: settings with CLI overrides, the store, the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
) -> Engine:
    """Poller with analytics and alerts, plus the notification dispatcher and the saved scans
    (with a store; the scans while the simulator is the first provider: engine/scanner/live.py)."""
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
    )
    scans = None
    if settings.providers.order and settings.providers.order[0] == "simulator":
        from optterm.engine.scanner.live import LiveScans

        scans = LiveScans(
            store, calendar, seed=settings.providers.simulator.seed, on_recorded=dispatcher.wake
        )
    poller = make_poller(settings, provider, store, alerts=alerts, now=now)
    return Engine(poller, dispatcher, scans)
