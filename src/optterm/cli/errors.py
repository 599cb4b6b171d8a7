"""Errors the CLI turns into a one-paragraph message and an exit code, never a traceback."""

from __future__ import annotations

__all__ = ["OutputFailed", "UsageProblem"]


class UsageProblem(Exception):
    """Bad command-line input that the CLI parser could not catch (exit code 2)."""


class OutputFailed(Exception):
    """Writing a command's output failed at run time (disk full, I/O error): exit code 1."""
