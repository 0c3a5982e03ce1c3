"""The `movinet` command line: parser (options), commands (one function each), options (--model,
--set, --weights), watch's loop, offline training and evaluation.

`movinet` (pyproject.toml's console script) and `python -m adapter` run main().
"""

from adapter.cli.parser import main

__all__ = ["main"]
