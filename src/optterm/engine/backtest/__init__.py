"""Backtests on stored history (issue 19): `signals` replays the product's own alert rules and
pattern detectors over stored days and measures what the spot did after each firing."""
