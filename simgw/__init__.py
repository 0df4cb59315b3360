"""The simulated NAT-PMP and PCP gateway: ``python3 -m simgw`` from the collection's root (see README.md)."""

from .gateway import SimulatedGateway, control, in_private_netns

__all__ = ["SimulatedGateway", "control", "in_private_netns"]
