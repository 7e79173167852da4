"""``python -m snakebatch status results/<run>``: see snakebatch.cli."""

import sys

from snakebatch.cli import main

sys.exit(main())
