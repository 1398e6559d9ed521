"""The `rhtui` command and its subcommands."""
