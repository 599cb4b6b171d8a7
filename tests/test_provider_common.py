"""The shared provider base: symbol resolution, the closed check and the error guard."""

from __future__ import annotations

import pytest

from optterm.market import NSE_INDICES
from optterm.model import Feed
from optterm.providers.base import (
    BadPayload,
    HasHealth,
    HasMaster,
    HasMembers,
    Provider,
    ProviderConnectionError,
    ServerError,
    UnknownSymbol,
    members,
)
from optterm.providers.common import ProviderBase, TableProvider
from optterm.providers.failover import FailoverProvider
from optterm.providers.simulator.provider import SimulatorProvider


class Table(TableProvider):
    name = "table"
    feed = Feed.SIMULATED

    async def list_expiries(self, symbol: str) -> list:
        with self._guard():
            self._resolve(symbol)
            raise KeyError("a bug of ours")

    async def fetch_chain(self, symbol, expiry):
        raise NotImplementedError

    async def fetch_spot(self, symbol: str) -> float:
        with self._guard():
            raise BadPayload(self.name, "typed errors pass through")

    async def close(self) -> None:
        self._closed = True


class Secretive(ProviderBase):
    name = "secretive"
    _hide_cause = True

    def __init__(self) -> None:
        self._served = ["NIFTY"]

    def boom(self) -> None:
        with self._guard():
            raise ValueError("token=abc123")

    def _unexpected(self, exc: Exception) -> ServerError:
        return ServerError(self.name, f"internal error ({type(exc).__name__})")


async def test_symbols_resolve_in_any_case_and_unknown_ones_list_the_known() -> None:
    p = Table(NSE_INDICES)
    assert p.symbols() == list(NSE_INDICES)
    assert (await p.underlying(" nifty ")).symbol == "NIFTY"
    with pytest.raises(UnknownSymbol) as info:
        await p.underlying("NIFTI")
    assert "NIFTY" in info.value.known
    with pytest.raises(UnknownSymbol):
        await p.underlying(42)  # type: ignore[arg-type]


async def test_the_guard_maps_untyped_errors_and_refuses_once_closed() -> None:
    p = Table(NSE_INDICES)
    with pytest.raises(ServerError, match="internal table error: KeyError") as info:
        await p.list_expiries("NIFTY")
    assert isinstance(info.value.__cause__, KeyError)  # kept for the log's traceback
    with pytest.raises(BadPayload, match="typed errors pass through"):
        await p.fetch_spot("NIFTY")
    await p.close()
    with pytest.raises(ProviderConnectionError, match="provider is closed"):
        await p.underlying("NIFTY")


def test_a_provider_may_keep_the_cause_out_of_the_chain() -> None:
    with pytest.raises(ServerError) as info:
        Secretive().boom()
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "abc123" not in str(info.value)


def test_optional_capabilities_are_protocols() -> None:
    sim = SimulatorProvider()
    fo = FailoverProvider([sim])
    assert isinstance(sim, Provider) and isinstance(fo, Provider)
    assert isinstance(fo, HasHealth) and isinstance(fo, HasMembers)
    assert not isinstance(sim, HasHealth | HasMembers | HasMaster)
    assert members(fo) == (sim,)
    assert members(sim) == (sim,)
