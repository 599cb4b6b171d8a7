"""The strategy backtester over stored history (docs/backtest.md): spec (text or TOML), fills,
dated Indian costs, the simulation, the data-gap report and the result figures."""
