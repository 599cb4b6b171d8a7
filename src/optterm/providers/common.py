"""What every concrete provider shares: the symbols it serves, turning a user's spelling into one
of them, and the guard that lets nothing but a ProviderError out of a call.

`ProviderBase` is for any provider; `TableProvider` adds a fixed table of underlyings (lot size,
strike step, segment) for providers that know their instruments up front, as the simulator and
the NSE website do. Angel One learns its instruments from the downloaded master instead.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar

from optterm.model import Underlying
from optterm.providers.base import (
    ProviderConnectionError,
    ProviderError,
    SegmentNotServed,
    ServerError,
    UnknownSymbol,
)
from optterm.providers.segments import segment_of

__all__ = ["ProviderBase", "TableProvider"]

log = logging.getLogger("optterm.providers")


class ProviderBase:
    """`symbols`, symbol resolution and the error guard, written once.

    A subclass sets `name` and `feed`, keeps the symbols it serves in `_served` (upper case, in
    the order `symbols()` lists them) and sets `_closed` once closed. It may refine what the
    guard does with the errors it sees (`_on_provider_error`, `_unexpected`).
    """

    name: str
    _served: Collection[str]
    _closed: bool = False
    # True where an exception's own text could quote a secret or a payload: the original is
    # then left out of the chain of the ProviderError raised in its place.
    _hide_cause: ClassVar[bool] = False

    def symbols(self) -> list[str]:
        """Underlyings this provider can serve (used in "unknown symbol" messages)."""
        return list(self._served)

    def _resolve(self, symbol: str) -> str:
        """The served symbol ``symbol`` names (any case, stray spaces); UnknownSymbol if none."""
        key = symbol.strip().upper() if isinstance(symbol, str) else ""
        if key not in self._served:
            segment = segment_of(key)
            if segment is not None:  # a real MCX/CDS name: say what this provider cannot do
                raise SegmentNotServed(
                    self.name, str(symbol), str(segment), list(self._served), self._unserved(key)
                )
            raise UnknownSymbol(self.name, str(symbol), list(self._served))
        return key

    def _unserved(self, symbol: str) -> str:
        """Why an MCX or CDS `symbol` is not served here, and how to get it ("" to say nothing)."""
        return ""

    def _ensure_open(self) -> None:
        if self._closed:
            raise ProviderConnectionError(self.name, "provider is closed")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Wrap one call: refuse once closed, and map anything untyped onto a ProviderError.

        The failover classifies errors by kind alone (base.py), so nothing else may escape.
        """
        self._ensure_open()
        try:
            yield
        except ProviderError as exc:
            self._on_provider_error(exc)
            raise
        except Exception as exc:
            error = self._unexpected(exc)
            if self._hide_cause:
                raise error from None
            raise error from exc

    def _on_provider_error(self, exc: ProviderError) -> None:
        """A typed error on its way out; a provider may clean its message here."""

    def _unexpected(self, exc: Exception) -> ProviderError:
        """The ProviderError to raise for an untyped exception (a bug of ours, or a payload
        shape we did not foresee)."""
        log.exception("%s: internal error", self.name)
        return ServerError(self.name, f"internal {self.name} error: {exc!r}")


class TableProvider(ProviderBase):
    """A provider whose underlyings are a fixed table, keyed by upper-case symbol."""

    def __init__(self, underlyings: Mapping[str, Underlying]) -> None:
        self._underlyings = {key.strip().upper(): u for key, u in underlyings.items()}
        self._served = self._underlyings
        self._closed = False

    async def underlying(self, symbol: str) -> Underlying:
        with self._guard():
            return self._underlyings[self._resolve(symbol)]
