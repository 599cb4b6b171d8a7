"""The headless engine: the poller (one tick), and later analytics, patterns, alerts, notify."""
