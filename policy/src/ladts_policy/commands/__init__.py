"""Subcommands of the ``ladts`` CLI: thin argument parsing around library functions."""
