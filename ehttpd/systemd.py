"""systemd socket activation and readiness notification, without libsystemd (as gunicorn's systemd.py)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import MutableMapping

SD_LISTEN_FDS_START = 3  # the first descriptor systemd passes, sd_listen_fds(3)


def listen_fds(environ: MutableMapping[str, str] | None = None, unset: bool = True) -> list[int]:
    """The descriptors systemd passed to this process (3, 4, ...), or [] when there are none.

    As sd_listen_fds(3): they are ours only if LISTEN_PID is our pid (the variables are inherited by
    children that must not take them for their own), and `unset` removes the variables for that reason.
    The descriptors get close-on-exec, like every descriptor Python opens.
    """
    environ = os.environ if environ is None else environ
    try:
        if int(environ.get("LISTEN_PID", "")) != os.getpid():
            return []
        count = int(environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    finally:
        if unset:
            for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                environ.pop(name, None)
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(count, 0)))
    for fd in fds:
        os.set_inheritable(fd, False)
    return fds


def notify(state: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET; False when not run by systemd.

    sd_notify(3): one datagram on a unix socket; a leading "@" names the abstract namespace.
    """
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def reloading_state() -> str:
    """The RELOADING message; Type=notify-reload (systemd 253+) wants the CLOCK_MONOTONIC time with it."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
