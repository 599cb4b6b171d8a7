"""Reusable Textual widgets (chain table, plots, status bar)."""
