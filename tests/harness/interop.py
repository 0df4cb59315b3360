"""Helpers for the interop tests: our client, a listener and a WAN-side connection, run in namespaces."""

from __future__ import annotations

import os
import sys
import textwrap

MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "plugins", "module_utils")


def client_script(body: str) -> list:
    """argv running ``body`` with the client package importable, printing JSON lines."""
    prelude = (
        "import json, sys\n"
        f"sys.path.insert(0, {MODULE_UTILS!r})\n"
        "from portmap.client import Client\n"
        "from portmap import errors\n"
        "def out(value):\n"
        "    print(json.dumps(value), flush=True)\n"
    )
    return [sys.executable, "-c", prelude + body]


LISTENER = textwrap.dedent("""
    import socket, sys
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", int(sys.argv[1])))
    server.listen(8)
    greeting = (sys.argv[2] if len(sys.argv) > 2 else "hello from the host").encode() + b"\\n"
    print("listening", flush=True)
    while True:
        conn, peer = server.accept()
        conn.sendall(greeting)
        conn.close()
""")

CONNECT = textwrap.dedent("""
    import socket, sys
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect((sys.argv[1], int(sys.argv[2])))
        print(sock.recv(100).decode().strip())
    except OSError as exc:
        print(f"failed: {exc.__class__.__name__}")
""")


def wan_connect(topology, port):
    result = topology.run(topology.wan, [sys.executable, "-c", CONNECT, topology.gw_wan_address, str(port)])
    return result.stdout.strip()
