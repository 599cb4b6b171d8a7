"""Backtests on stored history (docs/backtest.md): the strategy backtester (spec in text or TOML,
fills, dated Indian costs, the simulation, the data-gap report, the result figures) and `signals`,
which replays the product's own alert rules and pattern detectors over stored days and measures
what the spot did after each firing."""
