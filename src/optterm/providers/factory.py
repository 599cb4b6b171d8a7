"""Build providers from settings. Imports each provider lazily so unused ones cost nothing.

A provider's section is passed on whole (its keys are the provider's keyword arguments), so a
new setting reaches its provider without another line here; what is not a setting (paths,
credentials, the calendar) is added beside it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from optterm.providers.base import Provider

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.model import Underlying
    from optterm.providers.angelone.master import InstrumentMaster

__all__ = [
    "ProviderUnavailable",
    "build_one",
    "build_provider",
    "market_calendar",
    "simulated_underlyings",
]

log = logging.getLogger("optterm.providers")


class ProviderUnavailable(Exception):
    """A configured provider cannot be built (not implemented yet, or missing credentials)."""


def market_calendar(settings: Settings) -> MarketCalendar:
    """The exchange calendar of the settings. Its holidays: every NSE list optterm knows (the
    shipped ones, each year replaced by the exchange's own once fetched) plus `[market]
    holidays`, which adds closures and never removes any."""
    from optterm.market import MarketCalendar, all_days
    from optterm.providers.nse.holidays import known_lists

    m = settings.market
    return MarketCalendar(
        tz=m.tz,
        open=m.open,
        close=m.close,
        holidays=all_days(known_lists()) | frozenset(m.holidays),
        weekly_symbols=frozenset(s.upper() for s in m.weekly_expiry_symbols),
        expiry_weekday=m.expiry_weekday_number,
    )


def simulated_underlyings(settings: Settings) -> dict[str, Underlying]:
    """What the simulator plays: the NSE indices, and every watched MCX commodity or currency
    pair (each on its own segment's session)."""
    from optterm.market import CDS_UNDERLYINGS, MCX_UNDERLYINGS, NSE_INDICES

    table = dict(NSE_INDICES)
    for w in settings.poller.watch:
        known = MCX_UNDERLYINGS.get(w.symbol) or CDS_UNDERLYINGS.get(w.symbol)
        if known is not None:
            table[w.symbol] = known
    return table


def build_provider(settings: Settings, name: str | None = None) -> Provider:
    """The providers of `providers.order` (or just `name`) behind one failover.

    A provider that cannot be built here (no credentials, not available) is left out with a
    warning, so the feed starts on whatever can serve; if none can, that is an error.
    """
    from optterm.providers.failover import FailoverProvider

    names = [name] if name else list(settings.providers.order)
    built: list[Provider] = []
    reasons: list[str] = []
    for candidate in names:
        try:
            built.append(_build(settings, candidate))
        except ProviderUnavailable as exc:
            reasons.append(str(exc))
    if not built:
        raise ProviderUnavailable("; ".join(reasons) or "no provider configured")
    for reason in reasons:
        log.warning("provider left out: %s", reason)
    timeouts = {p.name: _timeout(settings, p.name) for p in built}
    return FailoverProvider(
        built,
        policy=settings.providers.failover,
        timeouts=timeouts,
        max_strikes=settings.providers.max_strikes,
    )


def build_one(settings: Settings, name: str) -> Provider:
    """One provider on its own, without failover (for probes and diagnostics)."""
    return _build(settings, name)


def _timeout(settings: Settings, name: str) -> float:
    per_provider = getattr(settings.providers, name, None)
    # The whole budget for one attempt; the provider's HTTP timeout sits inside it.
    return getattr(per_provider, "timeout", None) or settings.poller.timeout


def _build(settings: Settings, name: str) -> Provider:
    if name == "simulator":
        from optterm.providers.simulator.provider import SimulatorProvider
        from optterm.providers.simulator.universe import DEFAULT_SIZE

        return SimulatorProvider(
            **settings.providers.simulator.model_dump(),
            calendar=market_calendar(settings),
            underlyings=simulated_underlyings(settings),
            universe=DEFAULT_SIZE,  # the scanner's stocks, each played when first asked for
        )
    if name == "nse":
        from optterm.infra import paths
        from optterm.providers.nse.client import NseProvider

        return NseProvider(
            **settings.providers.nse.model_dump(),
            cookie_path=paths.cache_dir() / "nse_cookies.json",
        )
    if name == "angelone":
        return _build_angelone(settings)
    raise ProviderUnavailable(f"unknown provider {name!r}")


def _build_angelone(settings: Settings) -> Provider:
    from optterm.infra.secrets import CredentialError, SecretStore, SecretStoreError
    from optterm.providers.angelone.client import AngelOneProvider

    store = SecretStore()
    try:
        creds = store.load()
    except (CredentialError, SecretStoreError) as exc:
        raise ProviderUnavailable(f"angelone: {exc}") from None
    if creds is None:
        missing = ", ".join(store.describe().get("missing", [])) or "credentials"
        raise ProviderUnavailable(
            f"angelone: no credentials (missing {missing}); run `optterm creds set angelone` "
            "or set OPTTERM_ANGELONE_* (see `optterm doctor`)"
        )
    master = angel_master(settings)
    return AngelOneProvider(
        **settings.providers.angelone.model_dump(exclude={"master_url"}),  # master's, below
        credentials=creds,
        master=master,
        token_store=store,
        # Quote only the strikes the watchlist keeps: every extra token costs request budget.
        strikes_each_side=max((w.strikes for w in settings.poller.watch), default=20),
    )


def angel_master(settings: Settings, *, every_name: bool = False) -> InstrumentMaster:
    """The instrument master for the watched indices' chains, or with `every_name` for every
    underlying (the scanner's F&O universe; parsing all ~160k rows takes a few seconds)."""
    from optterm.infra import paths
    from optterm.market import NSE_INDICES
    from optterm.providers.angelone.master import InstrumentMaster

    return InstrumentMaster(
        paths.cache_dir() / "angelone",
        url=settings.providers.angelone.master_url,
        names=None if every_name else list(NSE_INDICES),
        calendar=market_calendar(settings),
    )
