"""Textual screens (one module per screen or modal); the TUI issue fills these in."""
