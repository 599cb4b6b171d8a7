"""Alert rules on a saved strategy's P&L or Greeks (`strategy NAME pnl below -5000`): the
grammar, the store's strategy behind the rule, and a rule firing from simulated ticks into
the outbox once per crossing, told as SIMULATED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from optterm.config import Settings, load_settings
from optterm.engine.alerts.book import AlertBook, AlertBookError
from optterm.engine.alerts.rules import RuleError, build_rule, parse_rule_text, rule_text
from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.poller import Poller, Watch
from optterm.model import AlertKind, Condition, Feed
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.store.strategies import SavedLeg
from tests.conftest import Home, run_cli
from tests.test_alerts_screen import memory_keyring, server, settings  # noqa: F401 (fixtures)

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
SETTINGS = Settings()


@pytest.mark.parametrize(
    ("text", "metric", "condition", "threshold"),
    [
        ("strategy my_strangle pnl < -5000", "pnl", Condition.BELOW, -5000.0),
        ("strategy my_strangle pnl crosses below -5,000", "pnl", Condition.BELOW, -5000.0),
        ("strategy my_strangle delta > 2", "delta", Condition.ABOVE, 2.0),
        ("when strategy s-1 theta above 0 cooldown 10m", "theta", Condition.ABOVE, 0.0),
        ("strategy x vega below -1500 once", "vega", Condition.BELOW, -1500.0),
    ],
)
def test_the_strategy_subject_reads_and_writes_back(text, metric, condition, threshold) -> None:
    kw = parse_rule_text(text, SETTINGS)
    assert (kw["kind"], kw["metric"], kw["condition"], kw["threshold"]) == (
        AlertKind.STRATEGY, metric, condition, threshold
    )  # fmt: skip
    rule = build_rule(SETTINGS, **{**kw, "symbol": "NIFTY"})
    assert rule.strategy == kw["strategy"] and rule.symbol == "NIFTY"
    again = parse_rule_text(rule_text(rule), SETTINGS)
    assert {k: v for k, v in again.items() if k != "note"} == {
        k: v for k, v in kw.items() if k != "note"
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy 9lives pnl < 1", "expected a saved strategy's name"),
        ("strategy s foo > 1", "expected what to watch: pnl, delta, gamma, theta or vega"),
        ("strategy s pnl changes 5%", "crosses above or below a number"),
        ("strategy s pnl equals 5", "crosses above or below a number"),
        ("strategy s", "at the end: expected what to watch"),
    ],
)
def test_a_bad_strategy_rule_is_one_clear_error(text, message) -> None:
    with pytest.raises(RuleError, match=message):
        build_rule(SETTINGS, **parse_rule_text(text, SETTINGS))


async def test_the_book_takes_the_symbol_from_the_saved_strategy_and_refuses_an_unknown_one(
    store,
) -> None:
    book = AlertBook(store, SETTINGS)
    with pytest.raises(AlertBookError, match="no saved strategy 'nope'; `optterm strategy list`"):
        await book.add(parse_rule_text("strategy nope pnl < -5000", SETTINGS), ["app"])
    assert await store.alerts.list_rules() == []
    leg = SavedLeg("CE", datetime(2026, 11, 25).date(), 52000.0, 1, 300.0)
    await store.strategies.save("bn", "BANKNIFTY", [leg], priced_at=OPEN, source="s", at=OPEN)
    rule = await book.add(parse_rule_text("strategy bn delta > 2", SETTINGS), ["app"])
    assert (rule.symbol, rule.kind, rule.strategy, rule.metric) == (
        "BANKNIFTY", AlertKind.STRATEGY, "bn", "delta"
    )  # fmt: skip
    (stored,) = await store.alerts.list_rules()
    assert stored.strategy == "bn" and stored.id == rule.id


def test_alerts_add_on_an_unknown_strategy_is_one_line_exit_2(home: Home) -> None:
    home.write_config()
    out = run_cli(home, "--config", str(home.config), "alerts", "add",
                  "strategy nope pnl below -5000")  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "no saved strategy 'nope'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


async def test_a_rule_on_a_saved_strategy_fires_once_per_crossing_into_the_outbox(tmp_path):
    cfg = load_settings(None, env={})
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    clock = [0.0]
    wall = [OPEN]
    sim = SimulatorProvider(
        seed=42, scenario="gamma_squeeze", step_seconds=15, start=OPEN, clock=lambda: clock[0]
    )
    expiry = sim._listed("NIFTY", 0)[0]
    chain = sim.chain_at_step("NIFTY", expiry, 0)
    atm = int(np.argmin(np.abs(chain.strikes - chain.spot)))
    # A long call entered 5 points above its price then: a loss now, a profit once the
    # squeeze lifts the call by more than 5.
    entry = float(chain.ce.ltp[atm]) + 5.0
    leg = SavedLeg("CE", expiry, float(chain.strikes[atm]), 1, entry)
    await store.strategies.save("long_call", "NIFTY", [leg], priced_at=OPEN,
                                source="simulator · SIMULATED", at=OPEN)  # fmt: skip
    book = AlertBook(store, cfg)
    rule = await book.add(parse_rule_text("strategy long_call pnl above 0", cfg), ["app"])
    alerts = AlertService(store, settings=cfg)
    poller = Poller(
        sim, store.snapshots, [Watch("NIFTY", 1, 20)], interval=15, timeout=5,
        now=lambda: wall[0], analyzer=Analyzer(history=store.analytics),
        analytics_sink=store.analytics, alerts=alerts,
    )  # fmt: skip

    async def step() -> tuple:
        tick = await poller.tick_once()
        clock[0] += 15.0
        wall[0] += timedelta(seconds=15)
        return tick.alerts

    try:
        first = await step()
        assert first == ()
        values = alerts.evaluator.memories()[rule.id]
        assert values.armed is True and values.last_value < 0  # a loss: armed below 0
        fired = []
        for _ in range(160):  # 40 simulated minutes
            fired.extend(await step())
            if fired:
                break
        (event,) = fired
        assert event.rule_id == rule.id and event.kind is AlertKind.STRATEGY
        assert event.value >= 0 and event.feed is Feed.SIMULATED
        assert event.title.startswith("strategy long_call (NIFTY) P&L ₹")
        assert "crossed above 0.00" in event.title
        assert "SIMULATED" in event.body
        due = await store.outbox.due(datetime.now(UTC) + timedelta(seconds=1))
        assert [(o.event_id, o.channel) for o in due] == [(event.id, "app")]
        # While the P&L stays above 0: nothing more.
        for _ in range(8):
            assert await step() == ()
        assert len(await store.alerts.list_events(rule_id=rule.id)) == 1
    finally:
        await store.close()


def test_a_strategy_rule_is_not_backtested_on_its_firings() -> None:
    from optterm.engine.backtest.signals import rule_from_text

    with pytest.raises(RuleError, match="backtest the strategy itself"):
        rule_from_text("strategy s pnl below -5000", SETTINGS, OPEN.date())


def test_strategy_values_price_the_saved_legs_on_fresh_chains_only(caplog) -> None:
    """The value is the strategy's P&L from its saved entry prices on the latest chains, only
    on a tick that brings a chain of its underlying; a strategy that is not saved, or a leg on
    an expiry not polled, is no value (the log says why, once)."""
    from optterm.engine.alerts.strategyvalues import StrategyValues
    from optterm.engine.analytics.chain import AnalyticsParams, enrich_many
    from optterm.market import MarketCalendar
    from optterm.model import AlertRule
    from optterm.store.strategies import SavedStrategy
    from optterm.strategy.marketdata import rate_of

    sim = SimulatorProvider(seed=42, scenario="quiet", step_seconds=15, start=OPEN,
                            clock=lambda: 0.0)  # fmt: skip
    near, later = sim._listed("NIFTY", 0)[:2]
    snap = sim.chain_at_step("NIFTY", near, 0)
    (e,) = enrich_many([snap], AnalyticsParams.from_settings(SETTINGS))
    atm = int(np.argmin(np.abs(snap.strikes - snap.spot)))
    k, ltp = float(snap.strikes[atm]), float(snap.ce.ltp[atm])

    def saved(name: str, expiry, price: float) -> SavedStrategy:
        leg = SavedLeg("CE", expiry, k, -2, price)
        return SavedStrategy(1, name, "NIFTY", (leg,), OPEN, "s", "", OPEN)

    def rule(name: str, metric: str = "pnl") -> AlertRule:
        return AlertRule("NIFTY", AlertKind.STRATEGY, Condition.BELOW, -5000.0, id=1,
                         metric=metric, strategy=name)  # fmt: skip

    values = StrategyValues(MarketCalendar(), SETTINGS.market, rate_of(SETTINGS))
    values.load({"short": saved("short", near, ltp + 10.0), "far": saved("far", later, ltp)})
    values.observe([(snap, e)])
    pnl, source = values.value(rule("short"))
    # The strategy screen's figures of the same legs on the same chain.
    from optterm.engine.savedstrategy import position_of
    from optterm.strategy.analysis import analyse
    from optterm.strategy.marketdata import market_from_chains

    market = market_from_chains([e], MarketCalendar(), SETTINGS.market, rate_of(SETTINGS))
    a = analyse(position_of(values.saved["short"], snap.lot_size), market)
    assert source is snap
    assert pnl == pytest.approx(a.pnl_now, rel=1e-12)
    # Sold 10 points above the chain's price: about +10 x 2 lots.
    assert pnl == pytest.approx(10.0 * 2 * snap.lot_size, rel=0.02)
    delta, _ = values.value(rule("short", "delta"))
    assert delta == pytest.approx(a.greeks.total()["delta_lots"], rel=1e-12)
    assert -2.0 < delta < 0.0  # short calls: negative delta, in lots
    with caplog.at_level("WARNING", logger="optterm.alerts"):
        assert values.value(rule("gone")) is None
        assert values.value(rule("gone")) is None
        assert values.value(rule("far")) is None  # its expiry is not among the chains
        assert values.value(rule("far")) is None
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2, told
    assert "strategy gone cannot be priced: no saved strategy" in told[0]
    assert f"strategy far cannot be priced: NIFTY has no expiry on {later}" in told[1]
    values.observe([])  # a tick with no new chain of NIFTY: nothing to evaluate
    assert values.value(rule("short")) is None


@pytest.mark.slow
async def test_the_alerts_screen_lists_a_strategy_rule_and_says_how_to_edit_it(
    settings,  # noqa: F811  (the Alerts screen tests' fixture)
    store,
) -> None:
    """The rule reads as its one line in the list; `e` does not open the form (it has no
    strategy field) and says how to change the rule instead."""
    from optterm.screens.alert_form import AlertForm
    from tests.test_alerts_screen import alerts_app, cell_text, rules_table, settle

    leg = SavedLeg("CE", datetime(2026, 11, 26).date(), 25000.0, -1, 100.0)
    await store.strategies.save("ms", "NIFTY", [leg], priced_at=OPEN, source="s", at=OPEN)
    await AlertBook(store, settings).add(
        parse_rule_text("strategy ms pnl below -5000", settings), ["app"]
    )
    async with alerts_app(settings, store) as (app, pilot):
        assert "strategy ms pnl crosses below -5,000" in cell_text(rules_table(app), 0, 1)
        await pilot.press("e")
        await settle(app, pilot)
        assert not isinstance(app.screen, AlertForm)
        assert any("edited as one line" in n.message for n in app._notifications)
