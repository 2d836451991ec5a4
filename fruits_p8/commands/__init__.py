"""The command groups of `fruits-p8` (cli.py builds the parser from them)."""
