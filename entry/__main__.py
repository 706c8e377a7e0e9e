"""``python -m harvestkit``: the same as the ``harvestkit`` command."""

import sys

from harvestkit.cli import main

sys.exit(main())
