"""Market-data providers: a common async protocol and typed errors (see base.py)."""
