"""The command line: the typer root (`root.py`) and one module per command group.

Kept empty so that importing one command's module does not build the whole CLI.
"""
