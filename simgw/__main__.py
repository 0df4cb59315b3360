"""``python3 -m simgw``: the simulated gateway, or ``python3 -m simgw ctl SOCKET JSON...``."""

import sys

from .gateway import main

sys.exit(main())
