"""The `a2world` command line. Each `cmd_*.py` module here adds one subcommand group."""
