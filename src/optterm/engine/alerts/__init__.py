"""Alerts: the rule language (rules), evaluation on every tick (evaluate), the tick-side service."""
