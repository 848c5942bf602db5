"""`python -m devcloud up|down|status`."""

import sys

from devcloud.cli import main

sys.exit(main())
