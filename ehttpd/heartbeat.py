"""A worker's heartbeat and request counter, in a page of memory it shares with the master.

The master maps one anonymous shared page per worker just before forking it. On every tick of its main loop
the worker stores the time (CLOCK_MONOTONIC: one clock for every process) and its request count there; the
master reads them to tell a hung worker from a busy one, to recycle after --max-requests and for the status
command. A store into memory: no system call, no pipe to fill, nothing to clean up on a crash.
"""

from __future__ import annotations

import mmap
import struct

_BEAT = struct.Struct("=dQ")  # last beat (monotonic seconds, 0.0 = not up yet), requests served
_FLAGS = struct.Struct("=I")
_FLAGS_AT = 16
_ERROR_AT = 32  # a boot error message: 2-byte length, then UTF-8
_ERROR_MAX = 1024
METRICS_AT = 2048  # metrics.py's part: gauges and request counters (see metrics.publish)

RETIRE = 1  # the worker asks to be replaced (a request passed --request-timeout)


def store(mem: mmap.mmap, offset: int, layout: struct.Struct, *values: object) -> None:
    """Write `values` into the shared page in one copy. Not `layout.pack_into`: it zeroes the fields before
    writing them, and a reader in between sees zeros (a beat of 0.0 made the master kill a healthy worker
    as "not beaten for 25005 s")."""
    mem[offset : offset + layout.size] = layout.pack(*values)


class Heartbeat:
    """One worker's slot; the worker writes, the master reads."""

    __slots__ = ("_mem",)

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and MAP_SHARED: survives fork, shared

    # -- the worker's side ---------------------------------------------------------------------------------
    def beat(self, requests: int, now: float) -> None:
        store(self._mem, 0, _BEAT, now, requests)

    def ask_retirement(self) -> None:
        store(self._mem, _FLAGS_AT, _FLAGS, self.flags | RETIRE)

    def report_boot_error(self, message: str) -> None:
        data = message.encode("utf-8", "replace")[:_ERROR_MAX]
        self._mem[_ERROR_AT : _ERROR_AT + 2 + len(data)] = len(data).to_bytes(2, "little") + data

    @property
    def memory(self) -> mmap.mmap:
        """The page itself, for metrics.publish / metrics.read at METRICS_AT."""
        return self._mem

    # -- the master's side ---------------------------------------------------------------------------------
    @property
    def last_beat(self) -> float:
        return _BEAT.unpack_from(self._mem, 0)[0]

    @property
    def requests(self) -> int:
        return _BEAT.unpack_from(self._mem, 0)[1]

    @property
    def flags(self) -> int:
        return _FLAGS.unpack_from(self._mem, _FLAGS_AT)[0]

    @property
    def retirement_asked(self) -> bool:
        return bool(self.flags & RETIRE)

    @property
    def boot_error(self) -> str:
        size = int.from_bytes(self._mem[_ERROR_AT : _ERROR_AT + 2], "little")
        return self._mem[_ERROR_AT + 2 : _ERROR_AT + 2 + size].decode("utf-8", "replace")

    def close(self) -> None:
        self._mem.close()
