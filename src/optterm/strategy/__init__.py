"""The strategy builder's headless core: positions of any number of legs, their repricing on
each expiry's own forward, payoff, Greeks, probabilities and templates. No Textual, no provider,
no store: front ends hand it a market (`marketdata.StrategyMarket`) built from enriched chains."""
