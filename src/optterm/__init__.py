"""optterm: a terminal options-intelligence workstation for F&O traders."""

__version__ = "0.1.0"
