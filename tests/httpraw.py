"""A small HTTP/1.x client over a raw socket for end-to-end tests that need to see the exact bytes.

It sends whatever bytes a test gives it and parses responses strictly (status line, fields, then the body
by Content-Length, chunked or close), so a test can check framing, pipelining order and who closed.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]  # (lower-case name, value)
    body: bytes = b""
    chunked: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def closes(self) -> bool:
        return "close" in (self.header("connection") or "").lower()


class RawClient:
    """One TCP connection to 127.0.0.1:port with a receive buffer."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError(f"connection closed with {len(self.buf)} of {n} bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise ConnectionError("connection closed in the middle of a line")
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def read_head(self) -> RawResponse:
        """The next status line and header fields (a 1xx included)."""
        status_line = self._line().decode("latin-1")
        version, status, reason = [*status_line.split(" ", 2), ""][:3]
        headers = []
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            assert name == name.strip(), f"bad field line {line!r}"
            headers.append((name.lower(), value.strip()))
        return RawResponse(version, int(status), reason, headers)

    def read_response(self, method: str = "GET", skip_1xx: bool = True) -> RawResponse:
        """The next complete response, its body read by its framing."""
        resp = self.read_head()
        while skip_1xx and 100 <= resp.status < 200:
            resp = self.read_head()
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if te:
            assert te == "chunked", te
            assert resp.header("content-length") is None, "both Content-Length and Transfer-Encoding"
            resp.chunked = True
            resp.body, resp.trailers = self._chunked()
        elif (length := resp.header("content-length")) is not None:
            resp.body = self._take(int(length))
        else:
            while self._fill():
                pass
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    def _chunked(self) -> tuple[bytes, list[tuple[str, str]]]:
        parts = []
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                break
            parts.append(self._take(size))
            assert self._take(2) == b"\r\n", "chunk data not followed by CRLF"
        trailers = []
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            trailers.append((name.lower(), value.strip()))
        return b"".join(parts), trailers

    def request(
        self, method: str, target: str, headers: dict | None = None, body: bytes = b""
    ) -> RawResponse:
        fields = {"Host": "127.0.0.1", **(headers or {})}
        if body and "Transfer-Encoding" not in fields:
            fields.setdefault("Content-Length", str(len(body)))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        self.send(head.encode("latin-1") + b"\r\n" + body)
        return self.read_response(method)

    def closed_by_server(self, timeout: float = 3.0) -> bool:
        """True if the server closes its end (EOF or reset) within `timeout` and sent nothing more."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.1)
        try:
            while time.monotonic() < deadline:
                try:
                    if not self._fill():
                        return not self.buf
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    return not self.buf
            return False
        finally:
            self.sock.settimeout(5.0)


def get(port: int, target: str, headers: dict | None = None) -> RawResponse:
    """One GET on a new connection."""
    with RawClient(port) as client:
        return client.request("GET", target, headers)


def exchange(port: int, data: bytes, count: int = 1, method: str = "GET", timeout: float = 5.0):
    """Send `data`, read `count` responses; return them and whether the server then closed."""
    with RawClient(port, timeout) as client:
        client.send(data)
        responses = [client.read_response(method) for _ in range(count)]
        return responses, client.closed_by_server(timeout=3.0)
