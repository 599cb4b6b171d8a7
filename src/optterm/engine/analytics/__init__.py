"""Per-tick analytics: Black-76 (blackmath), chain metrics (chain), OI patterns (patterns)."""
