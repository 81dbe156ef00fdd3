"""The master's own small endpoints: the control socket (`ehttpd status`) and the Prometheus /metrics address.

Both are served from the master's select loop with non-blocking sockets, not from a thread: a thread in a
process that forks could hold a lock (logging's, the allocator's) at the moment of a fork and leave the
worker with it locked forever, and signals would still be handled by the main thread only. Each endpoint is a
non-blocking listener plus its few open connections; a request is one short message, read as it arrives,
answered from the master's live view, and the answer is written as far as the socket takes it. A slow
client never blocks the loop: it is dropped after CLIENT_TIMEOUT, and at most MAX_CLIENTS are open.

Control socket: a unix stream socket, mode 0600; one JSON object per connection ({"cmd": "status"}, ended
by a newline or by the client's shutdown), answered with one JSON object, then closed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import Any

from .sockets import bind_socket

log = logging.getLogger("ehttpd.error")

CLIENT_TIMEOUT = 2.0  # seconds a client has to send its request and take the answer
MAX_CLIENTS = 16  # per endpoint; more wait in the listen queue
MAX_REQUEST = 8192  # bytes


class _Client:
    __slots__ = ("deadline", "inbuf", "outbuf", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbuf = b""
        self.outbuf: bytes | None = None  # set once the request is complete


class LoopServer:
    """A listener and its clients, driven by the owner's select(): `readers()`, `writers()`, `ready()`."""

    def __init__(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.clients: dict[int, _Client] = {}

    # -- what subclasses define ----------------------------------------------------------------------------
    def complete(self, data: bytes, eof: bool) -> bool:
        raise NotImplementedError

    def answer(self, data: bytes) -> bytes:
        raise NotImplementedError

    # -- the loop's side -----------------------------------------------------------------------------------
    def readers(self) -> list[int]:
        fds = [fd for fd, c in self.clients.items() if c.outbuf is None]
        if len(self.clients) < MAX_CLIENTS:
            fds.append(self.listener.fileno())
        return fds

    def writers(self) -> list[int]:
        return [fd for fd, c in self.clients.items() if c.outbuf is not None]

    def ready(self, readable: set[int], writable: set[int], now: float) -> None:
        """Serve what select() reported; never blocks."""
        if self.listener.fileno() in readable:
            self._accept(now)
        for fd, client in list(self.clients.items()):
            try:
                if fd in readable and client.outbuf is None:
                    self._read(client)
                if client.outbuf is not None and (fd in writable or client.outbuf):
                    self._write(client)
            except OSError:
                self._drop(client)
                continue
            if now >= client.deadline and fd in self.clients:
                self._drop(client)

    def _accept(self, now: float) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("endpoint accept failed: %s", exc)
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = _Client(sock, now + CLIENT_TIMEOUT)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        client.inbuf += data
        if len(client.inbuf) > MAX_REQUEST:
            self._drop(client)
        elif self.complete(client.inbuf, not data):
            try:
                client.outbuf = self.answer(client.inbuf)
            except Exception:
                log.exception("endpoint answer failed")
                self._drop(client)
        elif not data:
            self._drop(client)  # closed before a whole request

    def _write(self, client: _Client) -> None:
        assert client.outbuf is not None
        try:
            sent = client.sock.send(client.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        client.outbuf = client.outbuf[sent:]
        if not client.outbuf:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._drop(client)
        self.listener.close()

    def close_in_child(self) -> None:
        """In a forked worker: drop the descriptors without touching the shared socket file."""
        for client in self.clients.values():
            client.sock.close()
        self.listener.close()


class ControlServer(LoopServer):
    """The control socket: {"cmd": "status"} → the master's status view as JSON."""

    def __init__(self, path: str, status: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.status = status
        super().__init__(_bind_unix(path))
        self.inode = os.stat(path).st_ino

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\n" in data

    def answer(self, data: bytes) -> bytes:
        try:
            request = json.loads(data.split(b"\n", 1)[0] or b"{}")
            cmd = request.get("cmd", "status") if isinstance(request, dict) else None
        except ValueError:
            cmd = None
        if cmd == "status":
            reply: dict[str, Any] = self.status()
        else:
            reply = {"error": 'unknown request; send {"cmd": "status"}'}
        return json.dumps(reply).encode() + b"\n"

    def close(self) -> None:
        """Close, and remove the socket file unless a newer master (an upgrade) has taken its name."""
        super().close()
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass


class MetricsServer(LoopServer):
    """GET /metrics over HTTP/1.x → the Prometheus text; anything else 404 (or 405), then close."""

    def __init__(self, spec: str, render: Callable[[], str]) -> None:
        self.spec = spec
        self.render = render
        super().__init__(bind_socket(spec, 64))

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\r\n\r\n" in data or b"\n\n" in data

    def answer(self, data: bytes) -> bytes:
        method, _, rest = data.split(b"\r\n", 1)[0].partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if path != b"/metrics":
            return _http(404, "Not Found", b"not found; try /metrics\n", "text/plain")
        if method not in (b"GET", b"HEAD"):
            return _http(405, "Method Not Allowed", b"GET only\n", "text/plain")
        body = self.render().encode()
        response = _http(200, "OK", body, "text/plain; version=0.0.4; charset=utf-8")
        return response[: len(response) - len(body)] if method == b"HEAD" else response


def _http(status: int, reason: str, body: bytes, ctype: str) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _bind_unix(path: str) -> socket.socket:
    """A listening unix socket at `path`, mode 0600. A socket file nobody answers on is stale and replaced;
    one a live master answers on (the old master of a USR2 upgrade) is taken over: the newest master owns
    the name, and the old one leaves the file alone when it exits (ControlServer.close checks the inode)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    return sock


def query(path: str, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """The client's side: send `request` to the control socket at `path`, return the JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    reply = json.loads(b"".join(chunks))
    if not isinstance(reply, dict):
        raise ValueError("the control socket answered something other than a JSON object")
    return reply
