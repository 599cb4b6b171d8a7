"""A provider that cannot serve a segment says so, naming the segment and itself; the failover
skips it for that symbol (no breaker trip, no failure counted) and asks the next; when no
provider serves the symbol, one clear line says what each one said, and `optterm chain` exits 2.

NSE's website serves index and stock options only (providers/nse/client.py says why), so a
commodity or currency underlying is SegmentNotServed there before any request is made.
"""

from __future__ import annotations

import pytest

from optterm.providers.base import SegmentNotServed, UnknownSymbol
from optterm.providers.breaker import BreakerState
from optterm.providers.failover import FailoverProvider, NotServedAnywhere
from optterm.providers.nse.client import NseProvider
from tests.conftest import Home, run_cli
from tests.replay_server import ReplayServer
from tests.test_failover import EXP, Clock, Scripted


@pytest.fixture
async def nse(replay: ReplayServer):
    provider = NseProvider(base_url=replay.url, min_interval=0)
    yield provider
    await provider.close()


@pytest.mark.parametrize(
    ("symbol", "segment"),
    [("USDINR", "currency"), ("crudeoil", "commodity"), ("GOLDM", "commodity")],
)
async def test_nse_names_the_segment_it_does_not_serve(nse, replay, symbol, segment):
    for call in (nse.underlying(symbol), nse.list_expiries(symbol), nse.fetch_chain(symbol, EXP)):
        with pytest.raises(SegmentNotServed) as err:
            await call
        assert err.value.segment == segment
        assert err.value.provider == "nse"
        text = str(err.value)
        assert f"nse does not serve {segment} options ('{symbol.upper()}')" in text
        assert "Angel One serves" in text
        assert "\n" not in text
    assert replay.requests == []  # known before asking NSE anything


async def test_nse_still_serves_its_indices(nse):
    assert (await nse.underlying("NIFTY")).symbol == "NIFTY"


async def test_the_failover_skips_a_provider_that_does_not_serve_the_segment(nse):
    angel = Scripted("angelone", symbols=("NIFTY", "USDINR"))
    failover = FailoverProvider([nse, angel], clock=Clock())
    snap = await failover.fetch_chain("USDINR", EXP)
    assert snap.provider == "angelone" and failover.active == "angelone"
    # No health verdict on NSE: its breaker stays closed and no failure is counted.
    assert failover.breakers["nse"].state is BreakerState.CLOSED
    health = {h.provider: h for h in failover.health()}
    assert health["nse"].failures == {} and health["nse"].last_error is None
    # Nothing stops: NSE still serves what it serves, in the same failover.
    assert (await failover.underlying("NIFTY")).symbol == "NIFTY"


async def test_when_no_provider_serves_the_symbol_the_message_names_each(nse):
    sim = Scripted("simulator", symbols=("NIFTY",))
    failover = FailoverProvider([nse, sim], clock=Clock())
    with pytest.raises(NotServedAnywhere) as err:
        await failover.fetch_chain("USDINR", EXP)
    assert isinstance(err.value, UnknownSymbol)  # a usage error, as an unknown symbol is
    text = str(err.value)
    assert text.startswith("failover: no provider serves 'USDINR': nse does not serve currency")
    assert text.endswith("; simulator: unknown symbol")


async def test_a_real_failure_elsewhere_still_says_what_nse_cannot_serve(nse):
    from optterm.providers.base import ServerError
    from optterm.providers.failover import NoProviderAvailable

    angel = Scripted("angelone", symbols=("USDINR",))
    angel.always = ServerError("angelone", "HTTP 502")
    failover = FailoverProvider([nse, angel], clock=Clock(), sleep=_no_sleep)
    with pytest.raises(NoProviderAvailable) as err:
        await failover.fetch_chain("USDINR", EXP)
    assert "angelone: HTTP 502" in str(err.value)
    assert "nse does not serve currency options ('USDINR')" in str(err.value)


async def _no_sleep(_seconds: float) -> None:
    return None


def test_optterm_chain_on_a_segment_no_provider_serves_is_one_line_and_exit_2(
    home: Home, replay: ReplayServer
):
    env = {"OPTTERM_PROVIDERS_ORDER": "nse", "OPTTERM_PROVIDERS_NSE_BASE_URL": replay.url}
    out = run_cli(home, "chain", "USDINR", env=env)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "nse does not serve currency options ('USDINR')" in lines[0]
    assert out.stdout == ""
    assert replay.requests == []


def test_the_simulator_says_how_to_play_an_mcx_symbol_it_is_not_watching(home: Home):
    """The simulator plays an MCX or CDS underlying only when it is watched: asked for one it is
    not, the line says so and how, instead of 'unknown symbol' with the indices listed."""
    out = run_cli(home, "chain", "CRUDEOIL", env={"OPTTERM_PROVIDERS_ORDER": "simulator"})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "simulator does not serve commodity options ('CRUDEOIL')" in lines[0]
    assert '[[poller.watch]] symbol = "CRUDEOIL"' in lines[0]
