"""Stream sockets served in the gateway's loop: the control channel (Unix) and the IGD's HTTP (TCP)."""

from __future__ import annotations

import selectors
import socket
from typing import Dict, Optional


def unregister(selector: Optional[selectors.BaseSelector], sock: socket.socket) -> None:
    """Take ``sock`` out of ``selector`` if it is there."""
    if selector is not None:
        try:
            selector.unregister(sock)
        except (KeyError, ValueError):
            pass


class StreamServer:
    """A listening socket whose connections are read into buffers; ``received`` says what to do with one."""

    def __init__(self) -> None:
        self._listener: Optional[socket.socket] = None
        self._selector: Optional[selectors.BaseSelector] = None
        self._buffers: Dict[socket.socket, bytes] = {}
        self._peers: Dict[socket.socket, str] = {}  # every connection not yet closed, with its peer's address

    def listen(self, sock: socket.socket, selector: selectors.BaseSelector) -> None:
        sock.listen(32)
        sock.setblocking(False)
        self._listener, self._selector = sock, selector
        selector.register(sock, selectors.EVENT_READ, self._on_accept)

    def close(self) -> None:
        for conn in list(self._peers):
            self.drop(conn)
        if self._listener is not None:
            unregister(self._selector, self._listener)
            self._listener.close()
            self._listener = None

    def drop(self, conn: socket.socket) -> None:
        """Close a connection (once; it may already be out of the selector)."""
        self._buffers.pop(conn, None)
        if self._peers.pop(conn, None) is not None:
            unregister(self._selector, conn)
            conn.close()

    def is_open(self, conn: socket.socket) -> bool:
        return conn in self._peers

    def _on_accept(self, sock: socket.socket) -> None:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._buffers[conn] = b""
        self._peers[conn] = peer[0] if isinstance(peer, tuple) else ""
        assert self._selector is not None
        self._selector.register(conn, selectors.EVENT_READ, self._on_data)

    def _on_data(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.drop(conn)
            return
        left = self.received(conn, self._buffers[conn] + chunk, self._peers[conn])
        if left is not None and conn in self._buffers:
            self._buffers[conn] = left

    def received(self, conn: socket.socket, buffer: bytes, peer: str) -> Optional[bytes]:
        """Handle what ``conn`` sent so far; return what is left for later (None: nothing more to read)."""
        raise NotImplementedError
