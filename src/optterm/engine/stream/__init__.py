"""Streaming: ticks from Smart Stream into columnar chains, published to the poller at most N
times a second, with REST polling as the fallback (feed, table, source)."""
