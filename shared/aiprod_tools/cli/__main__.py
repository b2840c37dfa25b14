"""``python -m aiprod_tools.cli``: the ``aiprod`` command without its console script."""

import sys

from aiprod_tools.cli import main

sys.exit(main())
