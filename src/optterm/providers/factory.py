"""Build providers from settings. Imports each provider lazily so unused ones cost nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optterm.providers.base import Provider

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = ["ProviderUnavailable", "build_provider", "market_calendar"]


class ProviderUnavailable(Exception):
    """A configured provider cannot be built (not implemented yet, or missing credentials)."""


def market_calendar(settings: Settings):  # -> MarketCalendar (lazy import keeps config light)
    from optterm.market import MarketCalendar

    m = settings.market
    return MarketCalendar(
        tz=m.tz,
        open=m.open,
        close=m.close,
        holidays=frozenset(m.holidays),
        weekly_symbols=frozenset(s.upper() for s in m.weekly_expiry_symbols),
        expiry_weekday=m.expiry_weekday_number,
    )


def build_provider(settings: Settings, name: str | None = None) -> Provider:
    """The named provider, or the first one in `providers.order` that can be built."""
    names = [name] if name else list(settings.providers.order)
    reasons: list[str] = []
    for candidate in names:
        try:
            return _build(settings, candidate)
        except ProviderUnavailable as exc:
            reasons.append(str(exc))
    raise ProviderUnavailable("; ".join(reasons) or "no provider configured")


def _build(settings: Settings, name: str) -> Provider:
    if name == "simulator":
        from optterm.providers.simulator import SimulatorProvider

        sim = settings.providers.simulator
        return SimulatorProvider(
            seed=sim.seed,
            scenario=sim.scenario,
            speed=sim.speed,
            step_seconds=sim.step_seconds,
            start=sim.start,
            calendar=market_calendar(settings),
        )
    if name in ("nse", "angelone"):
        raise ProviderUnavailable(
            f"provider {name!r} is not available in this version of optterm yet; "
            "use 'simulator' in [providers] order"
        )
    raise ProviderUnavailable(f"unknown provider {name!r}")
