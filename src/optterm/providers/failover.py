"""Failover: an ordered list of providers, each behind its own circuit breaker.

Every call goes to the first provider whose breaker lets it through; on failure it moves to the
next one within the same call, so a tick still gets its chain while the primary is down. Trips
are provider-aware:

- rate limited: open at once for the provider's hint or `rate_limit_cooldown` — never re-login;
- auth: the provider has already re-logged in once itself; open for `auth_cooldown`;
- timeout, connection, server error, bad payload: count towards the threshold;
- unknown symbol, or a segment the provider does not serve (SegmentNotServed): not a health
  verdict; skip this provider for this symbol and try the next. When none serves the symbol,
  the error says what each one said.

When a breaker's cool-down ends, the next call probes that provider (one probe at a time); a
success closes it and, being first in order, it takes the feed back. The thresholds and
cool-downs are the `[providers.failover]` settings (FailoverSettings) as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

from optterm.config import FailoverSettings
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed, ProviderHealth, Underlying
from optterm.providers.base import (
    ErrorKind,
    Provider,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SegmentNotServed,
    ServerError,
    UnknownSymbol,
)
from optterm.providers.breaker import BreakerState, CircuitBreaker
from optterm.providers.validate import MAX_STRIKES, check_chain

__all__ = ["RETRY_BACKOFF", "FailoverProvider", "NoProviderAvailable", "NotServedAnywhere"]

log = logging.getLogger("optterm.failover")
T = TypeVar("T")

_TRANSIENT = {ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER}


class NoProviderAvailable(ServerError):
    """Every provider failed or is cooling down; the message lists why, provider by provider."""


class NotServedAnywhere(UnknownSymbol):
    """No provider serves the symbol, and at least one said it is a segment it does not serve;
    the message names each provider and what it said (a usage error, like an unknown symbol)."""

    def __init__(self, provider: str, symbol: str, known: Sequence[str], said: Sequence[str]):
        super().__init__(provider, symbol, known)
        self.message = f"no provider serves {symbol!r}: " + "; ".join(said)
        self.args = (f"{provider}: {self.message}",)


# Seconds before retrying the last provider standing, doubled per retry (`retries` in
# FailoverSettings says how many). A fixed part of the mechanism, not a setting.
RETRY_BACKOFF = 0.5


class FailoverProvider:
    name = "failover"

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        policy: FailoverSettings | None = None,
        timeouts: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_strikes: int = MAX_STRIKES,
    ) -> None:
        if not providers:
            raise ValueError("failover needs at least one provider")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        self.providers = tuple(providers)
        self.policy = policy or FailoverSettings()  # [providers.failover]
        self.timeouts = dict(timeouts or {})
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self.max_strikes = max_strikes
        self.breakers = {
            p.name: CircuitBreaker(
                p.name,
                threshold=self.policy.threshold,
                cooldown=self.policy.cooldown,
                max_cooldown=self.policy.max_cooldown,
                clock=clock,
            )
            for p in providers
        }
        self._health: dict[str, ProviderHealth] = {}
        self.active: str | None = None  # the provider that answered last

    # -- the Provider protocol ----------------------------------------------------------------

    @property
    def feed(self) -> Feed:
        by_name = {p.name: p for p in self.providers}
        return by_name[self.active].feed if self.active else self.providers[0].feed

    def members(self) -> tuple[Provider, ...]:
        """The providers behind this one, in failover order."""
        return self.providers

    def symbols(self) -> list[str]:
        seen: dict[str, None] = {}
        for p in self.providers:
            seen.update(dict.fromkeys(p.symbols()))
        return list(seen)

    async def underlying(self, symbol: str) -> Underlying:
        # Which instrument a symbol names is a lookup of what the provider serves, not a request
        # for market data: counting it would credit a provider that cannot be reached with a
        # success per watched symbol (50 % for an unreachable one). Its failures still trip the
        # breaker and are shown as the last error.
        return await self._call("underlying", lambda p: p.underlying(symbol), counted=False)

    async def list_expiries(self, symbol: str) -> list[date]:
        return await self._call("list_expiries", lambda p: p.list_expiries(symbol))

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        # Every chain from every member passes the plausibility check here, inside the attempt,
        # so an implausible one is a BadPayload of that member: counted by its breaker, the
        # next member asked, nothing stored.
        async def checked(p: Provider) -> ChainSnapshot:
            return check_chain(await p.fetch_chain(symbol, expiry), max_strikes=self.max_strikes)

        return await self._call("fetch_chain", checked)

    async def fetch_spot(self, symbol: str) -> float:
        return await self._call("fetch_spot", lambda p: p.fetch_spot(symbol))

    async def close(self) -> None:
        for p in self.providers:
            try:
                await p.close()
            except Exception:  # closing one must not leave the others open
                log.exception("closing %s", p.name)

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> list[ProviderHealth]:
        """Today's record per provider, with each breaker's state as of now."""
        day = self._now().astimezone(IST).date()
        out = []
        for p in self.providers:
            h = self._stats(p.name, day)
            h.breaker = self.breakers[p.name].state.value
            out.append(h)
        return out

    def _stats(self, name: str, day: date | None = None) -> ProviderHealth:
        day = day or self._now().astimezone(IST).date()
        h = self._health.get(name)
        if h is None or h.day != day:
            h = self._health[name] = ProviderHealth(provider=name, day=day)
        return h

    # -- the mechanism ----------------------------------------------------------------------------

    async def _call(
        self, what: str, fn: Callable[[Provider], Awaitable[T]], *, counted: bool = True
    ) -> T:
        """`fn` on the first provider that can answer. `counted`: the call is a request for
        market data, counted in the provider's health (requests, successes, failures)."""
        reasons: list[str] = []
        unknown: list[UnknownSymbol] = []
        not_served: list[str] = []  # "nse: does not serve currency options ('USDINR')"
        last_error: ProviderError | None = None
        for i, provider in enumerate(self.providers):
            breaker = self.breakers[provider.name]
            if not breaker.allow():
                reasons.append(
                    f"{provider.name}: cooling down ({breaker.seconds_until_probe():.0f} s left)"
                )
                continue
            later_open = any(self.breakers[p.name].state is BreakerState.CLOSED
                             for p in self.providers[i + 1 :])  # fmt: skip
            attempts = 1 if later_open else 1 + self.policy.retries
            for attempt in range(attempts):
                try:
                    result = await self._attempt(provider, fn, counted)
                except UnknownSymbol as exc:
                    breaker.release()
                    unknown.append(exc)
                    if isinstance(exc, SegmentNotServed):
                        not_served.append(exc.message)
                        log.debug("%s", exc)
                    break
                except ProviderError as exc:
                    last_error = exc
                    retry = self._on_failure(provider.name, breaker, exc, counted)
                    if not retry or attempt + 1 >= attempts:
                        reasons.append(f"{provider.name}: {exc.message}")
                        break
                    await self._sleep(RETRY_BACKOFF * 2**attempt)
                    if not breaker.allow():
                        reasons.append(f"{provider.name}: {exc.message}")
                        break
                else:
                    if self.active != provider.name:
                        if self.active is not None:
                            log.warning("feed switched from %s to %s", self.active, provider.name)
                        self.active = provider.name
                    return result
        if unknown and not reasons:
            known = sorted({s for e in unknown for s in e.known})
            if not_served:
                said = not_served + [
                    f"{e.provider}: unknown symbol"
                    for e in unknown
                    if not isinstance(e, SegmentNotServed)
                ]
                raise NotServedAnywhere(self.name, unknown[0].symbol, known, said)
            raise UnknownSymbol(self.name, unknown[0].symbol, known)
        reasons += not_served  # beside the real failures, so the message says why each one
        if len(reasons) == 1 and last_error is not None and len(self.providers) == 1:
            raise last_error
        raise NoProviderAvailable(self.name, f"no provider could {what}: " + "; ".join(reasons))

    async def _attempt(
        self, provider: Provider, fn: Callable[[Provider], Awaitable[T]], counted: bool
    ) -> T:
        stats = self._stats(provider.name)
        if counted:
            stats.requests += 1
        t0 = self._clock()
        timeout = self.timeouts.get(provider.name)
        try:
            async with asyncio.timeout(timeout):
                result = await fn(provider)
        except TimeoutError:
            raise ProviderTimeout(provider.name, f"no answer within {timeout:g} s") from None
        except asyncio.CancelledError:
            self.breakers[provider.name].release()
            raise
        except ProviderError:
            raise
        except Exception as exc:  # a provider bug: count it, never let it escape untyped
            log.exception("%s raised an untyped error", provider.name)
            raise ServerError(provider.name, f"internal error: {exc!r}") from exc
        if counted:
            ms = (self._clock() - t0) * 1000
            stats.successes += 1
            stats.latency_ms_sum += ms
            stats.latency_ms_last = ms
        self.breakers[provider.name].record_success()
        return result

    def _on_failure(
        self, name: str, breaker: CircuitBreaker, exc: ProviderError, counted: bool
    ) -> bool:
        """Count the failure (of a `counted` call), record it as the last error, trip as its
        kind demands; True if retrying the same provider could help."""
        stats = self._stats(name)
        if counted:
            stats.failures[exc.kind.value] = stats.failures.get(exc.kind.value, 0) + 1
        stats.last_error = exc.message
        stats.last_error_at = self._now()
        if exc.kind is ErrorKind.RATE_LIMITED:
            hint = exc.retry_after if isinstance(exc, RateLimited) else None
            breaker.trip(hint if hint and hint > 0 else self.policy.rate_limit_cooldown)
            log.warning("%s rate limited: paused for %.0f s", name, breaker.seconds_until_probe())
            return False
        if exc.kind is ErrorKind.AUTH:
            breaker.trip(self.policy.auth_cooldown)
            log.warning("%s refused our credentials: %s", name, exc.message)
            return False
        was = breaker.state
        breaker.record_failure()
        if breaker.state is not was and breaker.state is BreakerState.OPEN:
            log.warning(
                "%s breaker opened after %s: next probe in %.0f s",
                name,
                exc.kind.value,
                breaker.seconds_until_probe(),
            )
        return exc.kind in _TRANSIENT and breaker.state is BreakerState.CLOSED
