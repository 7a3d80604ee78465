"""``python -m dcflow``: the ``dcflow`` command, for environments without its console script."""

import sys

from dcflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
