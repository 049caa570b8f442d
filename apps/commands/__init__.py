"""Subcommands of the edgepipe command line, one module each."""
