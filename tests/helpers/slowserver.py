"""A loopback HTTP server that misbehaves at the socket level (what pytest-httpserver cannot do):
it trickles a body (or the headers) one byte at a time, accepts and never answers, or resets the connection."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Self


class LoopbackSocketServer:
    """A listening socket on 127.0.0.1 whose accept loop runs in a thread and hands each connection to
    ``handle``. Use as a context manager; ``url`` is its base URL, ``requests`` counts the requests read."""

    def __init__(self) -> None:
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        self._start(self._accept)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class TrickleServer(LoopbackSocketServer):
    """Answers every request with ``headers`` then ``body``, sending ``step`` bytes every ``interval`` seconds.

    ``trickle_headers=True`` trickles the status line and headers too. ``silent=True`` reads the request and
    sends nothing until the client goes away. Use as a context manager; ``url`` is its base URL.
    """

    def __init__(
        self,
        body: bytes = b'{"ok": true}',
        *,
        interval: float = 0.3,
        step: int = 1,
        content_type: str = "application/json",
        trickle_headers: bool = False,
        silent: bool = False,
    ):
        super().__init__()
        self.body, self.interval, self.step = body, interval, step
        self.content_type, self.trickle_headers, self.silent = content_type, trickle_headers, silent
        self.disconnected = threading.Event()

    def handle(self, conn: socket.socket) -> None:
        self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            if self.silent:
                payload = b""
            elif self.trickle_headers:
                payload = head + self.body
            else:
                conn.sendall(head)
                payload = self.body
            position = 0
            while not self._stop.is_set():
                if payload and position < len(payload):
                    try:
                        conn.sendall(payload[position : position + self.step])
                    except OSError:
                        break
                    position += self.step
                elif not self.silent:
                    return
                if self._stop.wait(self.interval):
                    break
                if _peer_closed(conn):
                    break
            self.disconnected.set()


def _peer_closed(conn: socket.socket) -> bool:
    try:
        conn.setblocking(False)
        try:
            data = conn.recv(1, socket.MSG_PEEK)
        finally:
            conn.setblocking(True)
            conn.settimeout(0.2)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class ResetServer(LoopbackSocketServer):
    """Accepts each connection, reads the request, then resets it (TCP RST: SO_LINGER 0 and close)."""

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            conn.recv(65536)
        except OSError:
            pass
        self.requests += 1
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
