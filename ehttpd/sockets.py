"""Listening sockets: parse a bind address and create the socket for it."""

from __future__ import annotations

import os
import socket
import stat


def parse_bind(spec: str) -> tuple[int, object]:
    """`host:port`, `[v6]:port`, `:port`, `unix:/path` or `fd://N` → (family, address).

    For fd://N the address is the file descriptor number and the family is 0 (read from the socket).
    """
    if spec.startswith("unix:"):
        return socket.AF_UNIX, spec[5:]
    if spec.startswith("fd://"):
        return 0, int(spec[5:])
    if spec.startswith("["):
        host, sep, port = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f"bad IPv6 bind {spec!r}: use [addr]:port")
        return socket.AF_INET6, (host, _port(port, spec))
    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = spec, "8000"
    if ":" in host:
        raise ValueError(f"bad bind {spec!r}: write IPv6 addresses as [addr]:port")
    return socket.AF_INET, (host or "0.0.0.0", _port(port, spec))


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"bad port in bind {spec!r}")
    return int(text)


def bind_socket(
    spec: str, backlog: int = 2048, reuse_port: bool = False, unix_mode: int | None = None
) -> socket.socket:
    """Create, bind and listen on a socket for `spec`."""
    family, address = parse_bind(spec)
    if family == 0:
        sock = socket.socket(fileno=address)  # type: ignore[arg-type]
        sock.setblocking(False)
        return sock
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_UNIX:
            _remove_stale_unix_socket(address)  # type: ignore[arg-type]
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if family == socket.AF_UNIX and unix_mode is not None:
            os.chmod(address, unix_mode)  # type: ignore[arg-type]
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def describe(sock: socket.socket) -> str:
    """The socket's address as a bind spec, for logs."""
    addr = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{addr}"
    if sock.family == socket.AF_INET6:
        return f"[{addr[0]}]:{addr[1]}"
    return f"{addr[0]}:{addr[1]}"
