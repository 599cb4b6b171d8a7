"""Benchmarks — not tests, never run by pytest. `python -m benchmarks [filter]`."""
