"""Where the simulated gateway runs: multicast only inside a network namespace of its own."""

from __future__ import annotations

import os


def in_private_netns() -> bool:
    """True inside a network namespace made with ``ip netns add`` (one named in /run/netns).

    (/proc/1/ns/net, the initial namespace, may not be readable even by root in a sandbox;
    the named namespaces are what the tests create, so matching one of them is the safe test.)
    """
    try:
        own = os.stat("/proc/self/ns/net")
        names = os.listdir("/run/netns")
    except OSError:
        return False
    for name in names:
        try:
            other = os.stat(os.path.join("/run/netns", name))
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (own.st_dev, own.st_ino):
            return True
    return False


def refuse_multicast(option: str, what: str, instead: str) -> None:
    """Raise ValueError in the initial network namespace: nothing is ever multicast off the machine."""
    if not in_private_netns():
        raise ValueError(f"{option}=multicast is refused in the initial network namespace "
                         f"({what} must never leave the machine); use {instead}")
