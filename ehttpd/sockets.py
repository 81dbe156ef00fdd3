"""Listening sockets: parse a bind address, create the socket for it, and the master's set of them."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING

from .systemd import listen_fds

if TYPE_CHECKING:
    from .config import Settings


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


Prepare = Callable[[socket.socket], None]  # sets options on a listener before it listens


def bind_socket(
    spec: str,
    backlog: int = 2048,
    reuse_port: bool = False,
    unix_mode: int | None = None,
    prepare: Prepare | None = None,
) -> socket.socket:
    """Create, bind and listen on a socket for `spec`; `prepare(sock)` runs just before listen().

    Linux copies a listener's options (timeouts, TCP_NODELAY) to each connection when its handshake
    completes, so options meant for every connection must be set before the first one can queue.
    """
    family, address = parse_bind(spec)
    if family == 0:
        return adopt(address, prepare)  # type: ignore[arg-type]
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
        if prepare is not None:
            prepare(sock)
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


# -- the master's set of listeners ------------------------------------------------------------------------
LISTENERS_ENV = "EHTTPD_LISTENERS"  # set by a master for the new master it execs on USR2


def adopt(fd: int, prepare: Prepare | None = None) -> socket.socket:
    """A listening socket from an inherited descriptor (fd://N, systemd, the previous master).

    Connections that queued on it before `prepare` ran lack its options (systemd queues them while it
    starts us): the worker must not rely on inherited options for those.
    """
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    if prepare is not None:
        prepare(sock)
    return sock


class Listeners:
    """The listening sockets the master holds open for as long as it runs.

    `shared` sockets are accepted on by every worker. With --reuse-port each TCP bind gets one SO_REUSEPORT
    socket per worker slot instead (the kernel spreads connections over them); the master holds them all,
    so a slot's queue of pending connections survives the restart of its worker.
    """

    def __init__(
        self,
        shared: list[socket.socket],
        reuse: list[tuple[int, str, int]] | None = None,
        backlog: int = 2048,
        slots: dict[int, list[socket.socket]] | None = None,
        owned_paths: list[str] | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.shared = shared
        self.reuse = [list(entry) for entry in reuse or []]  # [family, host, port] of reuse-port binds
        self.backlog = backlog
        self.slots = slots or {}
        self.owned_paths = owned_paths or []  # unix socket files this server created (unlinked at exit)
        self.prepare = prepare

    def for_slot(self, number: int) -> list[socket.socket]:
        """The sockets worker slot `number` accepts on (creating its reuse-port sockets on first use)."""
        if not self.reuse:
            return list(self.shared)
        if number not in self.slots:
            self.slots[number] = [self._bind_reuse(entry) for entry in self.reuse]
        return self.shared + self.slots[number]

    def _bind_reuse(self, entry: list) -> socket.socket:
        family, host, port = entry
        spec = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        sock = bind_socket(spec, self.backlog, reuse_port=True, prepare=self.prepare)
        entry[2] = sock.getsockname()[1]  # port 0: every later slot binds the port the first one got
        return sock

    def close_slot(self, number: int) -> None:
        for sock in self.slots.pop(number, []):
            sock.close()

    def all(self) -> list[socket.socket]:
        return self.shared + [sock for socks in self.slots.values() for sock in socks]

    def describe(self) -> list[str]:
        names = [describe(sock) for sock in self.shared]
        for family, host, port in self.reuse:
            address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            names.append(f"{address} (reuse-port, {len(self.slots)} sockets)")
        return names

    def to_env(self) -> str:
        """The descriptors as JSON, for a master exec'd with them (the caller makes them inheritable)."""
        return json.dumps(
            {
                "shared": [sock.fileno() for sock in self.shared],
                "reuse": self.reuse,
                "slots": {str(n): [sock.fileno() for sock in socks] for n, socks in self.slots.items()},
                "paths": self.owned_paths,
            }
        )

    @classmethod
    def from_env(cls, text: str, backlog: int, prepare: Prepare | None = None) -> Listeners:
        data = json.loads(text)
        slots = {int(n): [adopt(fd, prepare) for fd in fds] for n, fds in data["slots"].items()}
        shared = [adopt(fd, prepare) for fd in data["shared"]]
        return cls(shared, data["reuse"], backlog, slots, data["paths"], prepare)

    def close(self, unlink: bool = True) -> None:
        for sock in self.all():
            sock.close()
        self.slots.clear()
        if unlink:
            for path in self.owned_paths:
                _remove_stale_unix_socket(path)


def open_listeners(
    settings: Settings, environ: MutableMapping[str, str] | None = None, prepare: Prepare | None = None
) -> tuple[Listeners, str]:
    """The listeners to serve on and where they come from: the previous master's (USR2), systemd's
    (LISTEN_FDS: --bind is ignored then, as gunicorn does) or bound here from --bind. `prepare` sets the
    connection options on each, before it listens where this process binds it."""
    environ = os.environ if environ is None else environ
    backlog = settings.backlog
    inherited = environ.pop(LISTENERS_ENV, None)
    if inherited:
        return Listeners.from_env(inherited, backlog, prepare), "inherited from the previous master"
    fds = listen_fds(environ)
    if fds:
        shared = [adopt(fd, prepare) for fd in fds]
        return Listeners(shared, backlog=backlog, prepare=prepare), "systemd socket activation"
    listeners = Listeners([], backlog=backlog, prepare=prepare)
    try:
        for spec in settings.bind:
            family, address = parse_bind(spec)
            if settings.reuse_port and family in (socket.AF_INET, socket.AF_INET6):
                listeners.reuse.append([family, *address])  # type: ignore[misc]
                continue
            sock = bind_socket(spec, backlog, unix_mode=settings.unix_socket_mode, prepare=prepare)
            listeners.shared.append(sock)
            if family == socket.AF_UNIX:
                listeners.owned_paths.append(address)  # type: ignore[arg-type]
    except BaseException:
        listeners.close()
        raise
    return listeners, "bound"
