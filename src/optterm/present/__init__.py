"""Presentation shared by the CLI and the TUI: number and age formats, chain tables, `--since`."""
