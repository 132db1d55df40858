"""The `graphkit` command: one small module per command, thin over the library.

Nothing is imported here, so `python -m graphkit.cli.main` runs without importing its own
module twice.
"""
