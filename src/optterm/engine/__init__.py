"""The headless engine: runner, poller, follower, scheduler, state; analytics, alerts, notify."""
