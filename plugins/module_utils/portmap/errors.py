# Copyright (c) portmap.natpmp contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions raised by the portmap client package.

Every error the package raises derives from PortmapError, so a caller (a module,
the renewal job, the command line) turns them into a message in one place.
"""

from __future__ import annotations


class PortmapError(Exception):
    """Base class of every error raised by this package."""


class InputError(PortmapError):
    """A value given by the user (a module option, a command-line argument) is not valid.

    The message names the parameter and the values it allows.  Any other exception
    from this package that is not a PortmapError is a bug, and shows its traceback.
    """


class MalformedPacket(PortmapError, ValueError):
    """A datagram that is not a valid message of the protocol."""


class GatewayTimeout(PortmapError):
    """The gateway did not answer within the overall deadline."""


class GatewayUnreachable(PortmapError):
    """The gateway's host answered with ICMP port unreachable (nothing listens)."""


class DiscoveryError(PortmapError):
    """No gateway address could be found."""


class LockTimeout(PortmapError):
    """The per-host lock file could not be acquired in time."""


class ResultCodeError(PortmapError):
    """The gateway answered with a non-zero result code.

    ``method`` is the protocol spoken (``natpmp`` or ``pcp``), ``code`` the numeric
    result code and ``name`` its name in the protocol's RFC.
    """

    def __init__(self, method: str, code: int, name: str, detail: str = "") -> None:
        self.method = method
        self.code = code
        self.name = name
        self.detail = detail
        text = f"gateway answered {name} (result code {code})"
        if detail:
            text = f"{detail}: {text}"
        super().__init__(text)


class UnsupportedVersion(ResultCodeError):
    """Result 1 in both protocols: the gateway does not speak this protocol version."""


class NotAuthorized(ResultCodeError):
    """Result 2 in both protocols: the gateway refuses the request (NAT-PMP "Not Authorized/Refused")."""


class NetworkFailure(ResultCodeError):
    """NAT-PMP result 3, PCP result 7 NETWORK_FAILURE: the gateway has no working public side."""


class OutOfResources(ResultCodeError):
    """NAT-PMP result 4, PCP result 8 NO_RESOURCES: no more mappings (table full, or no free port)."""


class UnsupportedOpcode(ResultCodeError):
    """NAT-PMP result 5, PCP result 4 UNSUPP_OPCODE: the gateway does not know the request's opcode."""


class MalformedRequest(ResultCodeError):
    """PCP result 3 MALFORMED_REQUEST: the gateway could not parse the request."""


class UnsupportedOption(ResultCodeError):
    """PCP result 5 UNSUPP_OPTION: a mandatory option the gateway does not support."""


class MalformedOption(ResultCodeError):
    """PCP result 6 MALFORMED_OPTION: an option the gateway could not parse."""


class UnsupportedProtocol(ResultCodeError):
    """PCP result 9 UNSUPP_PROTOCOL: the gateway does not map this transport protocol."""


class UserQuotaExceeded(ResultCodeError):
    """PCP result 10 USER_EX_QUOTA: this host has as many mappings as the gateway allows it."""


class CannotProvideExternal(ResultCodeError):
    """PCP result 11 CANNOT_PROVIDE_EXTERNAL: the suggested external address or port cannot be had."""


class AddressMismatch(ResultCodeError):
    """PCP result 12 ADDRESS_MISMATCH: the address inside the request is not the one it came from."""


class ExcessiveRemotePeers(ResultCodeError):
    """PCP result 13 EXCESSIVE_REMOTE_PEERS: too many remote peers (PEER, FILTER)."""


class UnknownResultCode(ResultCodeError):
    """A result code the protocol's RFC does not define."""


class StunError(PortmapError):
    """A STUN server answered with an error, or with a response this client must not accept."""


class NoPublicAddress(PortmapError):
    """The gateway has no usable public address (a second NAT upstream, or no WAN link)."""


class UpnpFault(ResultCodeError):
    """A UPnP IGD control action answered with a SOAP fault.

    ``code`` is the UPnPError errorCode, ``name`` its name in the IGD specification
    (WANIPConnection:2, section 2.5), ``method`` is ``upnp``.
    """

    def __init__(self, code: int, name: str, detail: str = "") -> None:
        super().__init__("upnp", code, name, detail)
        self.args = (f"{detail + ': ' if detail else ''}gateway answered {name} (UPnP error {code})",)


class UpnpInvalidArgs(UpnpFault):
    """UPnP error 402 InvalidArgs: the gateway refused an argument (often a lease of 0)."""


class UpnpActionFailed(UpnpFault):
    """UPnP error 501 ActionFailed: miniupnpd's answer when it has no public address."""


class UpnpNotAuthorized(UpnpFault):
    """UPnP error 606 ActionNotAuthorized: the gateway refuses this action (secure mode, another client)."""


class UpnpNoSuchEntry(UpnpFault):
    """UPnP error 714 NoSuchEntryInArray, 713 SpecifiedArrayIndexInvalid or 730 PortMappingNotFound: no such mapping."""


class UpnpConflict(UpnpFault):
    """UPnP error 718 ConflictInMappingEntry, or 729 ConflictWithOtherMechanisms: the port is held."""


class UpnpOnlyPermanentLeases(UpnpFault):
    """UPnP error 725 OnlyPermanentLeasesSupported: the gateway takes lease 0 only."""


class UpnpNoPortMapsAvailable(UpnpFault):
    """UPnP error 728 NoPortMapsAvailable: the gateway's table is full."""


class UpnpProtocolError(PortmapError):
    """The IGD answered outside the protocol (an HTTP error, a missing value, a URL on another host)."""
