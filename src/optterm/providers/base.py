"""The provider protocol and the error taxonomy every provider maps its failures onto.

The failover (a later layer) decides what to do from the error *kind* alone: a rate limit opens
the breaker without re-login, an auth failure triggers one re-login, the rest count towards the
breaker threshold. Providers must never let another exception type escape.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from optterm.infra.clip import quoted
from optterm.model import ChainSnapshot, Feed, ProviderHealth, Underlying

if TYPE_CHECKING:
    from optterm.providers.angelone.master import InstrumentMaster

__all__ = [
    "AuthError",
    "BadPayload",
    "ErrorKind",
    "HasHealth",
    "HasMaster",
    "HasMembers",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "SegmentNotServed",
    "ServerError",
    "UnknownSymbol",
    "members",
]


class ErrorKind(enum.StrEnum):
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    BAD_PAYLOAD = "bad_payload"
    UNKNOWN_SYMBOL = "unknown_symbol"


class ProviderError(Exception):
    kind: ErrorKind = ErrorKind.SERVER

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class ProviderConnectionError(ProviderError):
    kind = ErrorKind.CONNECTION


class ProviderTimeout(ProviderError):
    kind = ErrorKind.TIMEOUT


class AuthError(ProviderError):
    kind = ErrorKind.AUTH


class RateLimited(ProviderError):
    kind = ErrorKind.RATE_LIMITED

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ServerError(ProviderError):
    kind = ErrorKind.SERVER

    def __init__(self, provider: str, message: str, status: int | None = None) -> None:
        super().__init__(provider, message)
        self.status = status


class BadPayload(ProviderError):
    kind = ErrorKind.BAD_PAYLOAD


class UnknownSymbol(ProviderError):
    """A usage error, not a provider fault: the symbol is not traded or not known here."""

    kind = ErrorKind.UNKNOWN_SYMBOL

    def __init__(self, provider: str, symbol: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(provider, f"unknown symbol {quoted(symbol)}; known symbols: {listed}")
        self.symbol = symbol
        self.known = tuple(sorted(known))


class SegmentNotServed(UnknownSymbol):
    """The symbol is real, but this provider does not serve its segment (NSE's website has no
    MCX chain, for one). Like an unknown symbol it is no health verdict: the failover skips this
    provider for this symbol and asks the next, and says so if no provider serves it."""

    def __init__(
        self, provider: str, symbol: str, segment: str, known: Sequence[str], why: str = ""
    ) -> None:
        super().__init__(provider, symbol, known)
        self.segment = segment
        self.message = f"{provider} does not serve {segment} options ({quoted(symbol)})" + (
            f": {why}" if why else ""
        )
        self.args = (f"{provider}: {self.message}",)


@runtime_checkable
class Provider(Protocol):
    """What the poller needs from a source of option chains. All methods are coroutines.

    Implementations raise only ProviderError subclasses. `name` and `feed` are read-only: a
    plain class attribute satisfies them, and so does a property (the failover's feed is that
    of whichever member answered last).
    """

    @property
    def name(self) -> str: ...

    @property
    def feed(self) -> Feed: ...

    def symbols(self) -> Sequence[str]:
        """Underlyings this provider can serve (used in 'unknown symbol' messages)."""
        ...

    async def underlying(self, symbol: str) -> Underlying: ...

    async def list_expiries(self, symbol: str) -> list[date]:
        """Expiries with listed options, nearest first."""
        ...

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot: ...

    async def fetch_spot(self, symbol: str) -> float: ...

    async def close(self) -> None: ...


# Optional capabilities. Callers test for them with isinstance rather than probing attribute
# names, so a rename is a type error instead of a silently missing feature.


@runtime_checkable
class HasHealth(Protocol):
    """Keeps a health record per underlying provider (the failover does)."""

    def health(self) -> list[ProviderHealth]:
        """Today's record per provider, as of now."""
        ...


@runtime_checkable
class HasMaster(Protocol):
    """Backed by a downloaded instrument master whose progress the UI shows (Angel One)."""

    @property
    def master(self) -> InstrumentMaster: ...


@runtime_checkable
class HasMembers(Protocol):
    """Stands for several providers (the failover); `members` lists them in order."""

    def members(self) -> Sequence[Provider]: ...


def members(provider: Provider) -> Sequence[Provider]:
    """The providers behind `provider`: a failover's members in order, else just itself."""
    return provider.members() if isinstance(provider, HasMembers) else (provider,)
