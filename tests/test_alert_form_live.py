"""The alert form while the market moves: the header behind it and the value it is about stay
live. The real TUI on the real engine, driven tick by tick on a frozen clock (tests/tui_driver)."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import Input, Select

from optterm.market import IST
from optterm.model import AlertKind, Side
from optterm.screens.alert_form import AlertForm
from optterm.widgets.chain_table import ChainTable
from tests.tui_driver import Driver, make_driver


def header(screen) -> str:
    return str(screen.query_one("#status").render())


def now_line(form: AlertForm) -> str:
    return str(form.query_one("#current").render())


def nifty(d: Driver):
    update = d.app.state.chain("NIFTY")
    assert update is not None
    return update


def hhmmss(snap) -> str:
    return snap.provider_ts.astimezone(IST).strftime("%H:%M:%S")


async def wait_until(pilot, condition, seconds: float = 10.0) -> None:
    """Let the app run until `condition()` holds (a timer of its own is what makes it so)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition()


async def open_form(d: Driver, pilot) -> AlertForm:
    await pilot.press("a")  # a new alert on the chain's selected row
    await pilot.pause()
    form = d.app.screen
    assert isinstance(form, AlertForm)
    return form


async def test_the_header_behind_the_alert_form_keeps_moving(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            dashboard = d.app.screen
            await open_form(d, pilot)
            before = header(dashboard)
            assert hhmmss(nifty(d).snapshot) in before

            await d.tick(pilot)  # new data while the form is up
            snap = nifty(d).snapshot
            after = header(dashboard)
            assert after != before
            assert f"data {hhmmss(snap)} IST" in after and f"{snap.spot:,.2f}" in after

            d.wall[0] += timedelta(seconds=7)  # no tick: only the clock moves
            d.app.refresh_status()
            assert "age 7s" in header(dashboard)
    finally:
        await d.store.close()


async def test_the_form_shows_the_live_value_of_what_it_alerts_on(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            await pilot.press("down", "down", "right")  # a call or put cell of the chain
            strike, side = d.app.screen.query_one(ChainTable).selected()
            assert strike is not None and side is not None
            form = await open_form(d, pilot)
            update = nifty(d)
            snap = update.snapshot
            ltp = float(snap.side(str(side)).ltp[list(snap.strikes).index(strike)])
            line = now_line(form)
            assert f"NIFTY {snap.expiry:%d-%b} {strike:g} {side} LTP {ltp:,.2f}" in line
            assert f"SIMULATED via simulator · data {hhmmss(snap)} IST · age 0s" in line

            await d.tick(pilot)  # the value follows the ticks
            snap = nifty(d).snapshot
            ltp = float(snap.side(str(side)).ltp[list(snap.strikes).index(strike)])
            assert f"{strike:g} {side} LTP {ltp:,.2f}" in now_line(form)
            assert f"data {hhmmss(snap)} IST" in now_line(form)

            # ... and the fields: the spot, then the PCR, then a strike the chain does not list.
            form.query_one("#metric", Select).value = "spot"
            await pilot.pause()
            assert f"spot {snap.spot:,.2f}" in now_line(form)
            form.query_one("#kind", Select).value = AlertKind.PCR
            await pilot.pause()
            pcr = nifty(d).metrics.pcr_oi  # type: ignore[union-attr]
            assert f"PCR {pcr:.2f}" in now_line(form)
            form.query_one("#kind", Select).value = AlertKind.PRICE
            await pilot.pause()  # the kind's metrics are offered
            form.query_one("#metric", Select).value = "ltp"
            form.query_one("#side", Select).value = Side.PE
            form.query_one("#strike", Input).value = "12345"
            await pilot.pause()
            assert "12345 PE LTP n/a (no 12345 strike in this chain)" in now_line(form)

            d.wall[0] += timedelta(seconds=9)  # ages move with the clock, between ticks too
            await wait_until(pilot, lambda: "age 9s" in now_line(form))
    finally:
        await d.store.close()
