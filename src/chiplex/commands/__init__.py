"""Subcommands of `chiplex`: one module each, with `register(subparsers)` setting `handler`."""
