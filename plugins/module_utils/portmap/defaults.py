# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package's defaults and choices, in a module that imports nothing.

The command line builds its parser from these without importing the protocol code,
so a subcommand pays only for the modules it uses.
"""

LEDGER_PATH = "/var/lib/portmap-natpmp/ledger.json"
PORT = 5351  # NAT-PMP and PCP servers listen here (RFC 6886 section 3, RFC 6887 section 19.1)
TIMEOUT = 3.0  # seconds: the one overall deadline of a request, retransmissions included
LIFETIME = 7200  # RFC 6886 section 3.3 recommends two hours
PROTOCOLS = ("tcp", "udp")
AUTO = "auto"
METHODS = (AUTO, "pcp", "natpmp", "upnp")  # the user's choice: auto, or a method of ``methods.REGISTRY``
DESCRIPTION = "portmap.natpmp"  # UPnP IGD mappings' description: this, a space and the host's name
