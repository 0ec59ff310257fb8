"""The nng control socket: server in the supervisor process, client for the CLI subcommands."""
