"""``python -m dcflow``: the ``dcflow`` command, for environments without its console script."""

import sys

from dcflow.cli import main

sys.exit(main())
