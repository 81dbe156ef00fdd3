"""The master's pid file: written atomically, removed only by the master it names."""

from __future__ import annotations

import os


def write(path: str, pid: int) -> None:
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w", encoding="ascii") as file:
        file.write(f"{pid}\n")
    os.replace(tmp, path)


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
