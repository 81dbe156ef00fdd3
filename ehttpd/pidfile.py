"""The master's pid file: written atomically, removed only by the master it names."""

from __future__ import annotations

import os

import psutil


def write(path: str, pid: int) -> None:
    """Write `pid` to `path` atomically; OSError (and no file left behind) when it cannot be written."""
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as file:
            file.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def running_master(path: str) -> int | None:
    """The pid of another live ehttpd master that `path` names, if any: a stale file (no such process, a
    zombie, or a pid since reused by a process that is not ehttpd) names none."""
    try:
        pid = read(path)
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and runs_ehttpd(pid) else None


def runs_ehttpd(pid: int) -> bool | None:
    """Whether `pid` is a live ehttpd process (its title, or its command line before the title is set);
    None when that cannot be told (another user's process)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "ehttpd" in " ".join(proc.cmdline())
    except psutil.AccessDenied:
        return None
    except psutil.Error:
        return False


def read(path: str) -> int:
    """The pid in `path`; OSError or ValueError when there is no valid one."""
    with open(path, encoding="ascii") as file:
        return int(file.read().strip())


def remove_if_ours(path: str, pid: int) -> None:
    try:
        if read(path) == pid:
            os.unlink(path)
    except (OSError, ValueError):
        pass
