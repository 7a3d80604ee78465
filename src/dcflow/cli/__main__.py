"""``python -m dcflow.cli``: the ``dcflow`` command."""

import sys

from dcflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
