import sys

from adapter.cli.parser import main

sys.exit(main(prog="python -m adapter"))
