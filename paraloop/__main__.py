"""Entry point of ``python -m paraloop``."""

import sys

from .cli import main

sys.exit(main())
