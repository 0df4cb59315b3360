"""The collection's own wire formats (plugins/module_utils/portmap), imported from this checkout.

The simulated gateway answers with the codecs the client uses, server side; their bytes are
held to a real gateway's by the test vectors.
"""

from __future__ import annotations

import os
import sys

_MODULE_UTILS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "module_utils")
if _MODULE_UTILS not in sys.path:
    sys.path.insert(0, _MODULE_UTILS)

from portmap import wire_natpmp  # noqa: E402  pylint: disable=wrong-import-position
from portmap import wire_pcp  # noqa: E402  pylint: disable=wrong-import-position
from portmap import wire_stun  # noqa: E402  pylint: disable=wrong-import-position
from portmap.errors import MalformedPacket  # noqa: E402  pylint: disable=wrong-import-position

__all__ = ["wire_natpmp", "wire_pcp", "wire_stun", "MalformedPacket"]
