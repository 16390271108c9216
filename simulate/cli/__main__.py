"""`python -m memphase.simulate.cli ARGS` = `memphase ARGS`."""

import sys

from .commands import main

sys.exit(main())
