"""`python -m optterm`: the same entry point as the `optterm` command."""

from optterm.cli.entry import main

main()
