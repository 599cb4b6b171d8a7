"""The TUI's screens and dialogs, one module each; `base.StateScreen` is what every full screen
shares (it shows the engine's state and catches up when it comes back on top)."""
