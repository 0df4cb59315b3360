"""The simulated gateway: ``python3 -m simgw`` from the collection's root (see README.md)."""

from .control import control
from .gateway import SimulatedGateway
from .netns import in_private_netns

__all__ = ["SimulatedGateway", "control", "in_private_netns"]
