"""USR2: fork and exec the same command line as a new master that inherits the listening sockets.

The new master finds the descriptors in EHTTPD_LISTENERS (sockets.open_listeners) and serves on them
beside the old one; once its workers are up, TERM to the old master finishes the switch
(docs/operations.md has the sequence, with systemd too).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable

from .children import fork_blocked
from .sockets import LISTENERS_ENV, Listeners

UPGRADE_ENV = "EHTTPD_UPGRADE_FROM"  # the pid of the master that exec'd this one


def exec_new_master(listeners: Listeners, cwd: str, handled: Iterable[int]) -> int:
    """The pid of the new master. Raises OSError when fork fails."""
    env = dict(os.environ)
    env[LISTENERS_ENV] = listeners.to_env()
    env[UPGRADE_ENV] = str(os.getpid())
    fds = [sock.fileno() for sock in listeners.all()]
    argv = [sys.executable, *sys.orig_argv[1:]]
    pid, blocked = fork_blocked(handled)
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for sig in handled:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # exec keeps the mask: give back ours
            for fd in fds:
                os.set_inheritable(fd, True)
            os.chdir(cwd)
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def upgraded_from() -> str | None:
    """The old master's pid when this master was exec'd by USR2."""
    return os.environ.get(UPGRADE_ENV)
