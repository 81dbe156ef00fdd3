"""Request metrics: exact per-thread counters in each worker, summed by the master, rendered for Prometheus.

In a worker, each pool thread counts into its own list (requests by status class, a fixed-bucket duration
histogram, the sum of durations): a thread is the only writer of its list, so no increment is ever lost
and no lock is taken per request. The worker's tick (every 0.25 s) sums the lists, with the open
connections and busy threads, into its shared heartbeat page under a sequence number (a seqlock: the
master retries a read that overlapped a write). The master sums every worker's page, adds what exited
workers had served (read from their page once they are reaped), and renders the Prometheus text format.
A worker killed outright loses what it served since its last tick, at most 0.25 s of counts.
"""

from __future__ import annotations

import socket
import struct
import threading
from bisect import bisect_left
from collections import Counter
from typing import Any

from .heartbeat import store

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds, le
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
RESTART_REASONS = ("crash", "heartbeat", "request_timeout", "max_requests", "memory", "reload", "ttou")
_CLASS_OF = (4, 0, 1, 2, 3, 4, 4, 4, 4, 4)  # status // 100 % 10 -> index in CLASSES (odd ones: 5xx)
_HIST = len(CLASSES)  # where the histogram starts in a counter list; its last bucket is +Inf
_SUM = _HIST + len(BUCKETS) + 1
_COUNTS = _SUM  # integer fields of a counter list

# The worker's part of its heartbeat page: seq, open connections, busy threads, threads, counts, sum.
_SLOT = struct.Struct(f"=4Q{_COUNTS}Qd")
_SEQ = struct.Struct("=Q")


class RequestMetrics:
    """One worker's request counters; `observe` runs on pool threads, `totals` on the main thread."""

    __slots__ = ("_lists", "_local", "_lock")

    def __init__(self) -> None:
        self._local = threading.local()
        self._lists: list[list[Any]] = []
        self._lock = threading.Lock()

    def observe(self, status: int, seconds: float) -> None:
        """Count one response: a few list increments in this thread's own list."""
        try:
            counts = self._local.counts
        except AttributeError:
            counts = self._new_list()
        counts[_CLASS_OF[status // 100 % 10]] += 1
        counts[_HIST + bisect_left(BUCKETS, seconds)] += 1
        counts[_SUM] += seconds

    def _new_list(self) -> list[Any]:
        counts: list[Any] = [0] * _COUNTS + [0.0]
        with self._lock:  # once per thread
            self._lists.append(counts)
        self._local.counts = counts
        return counts

    def totals(self) -> list[Any]:
        """Every thread's counts summed (the histogram not cumulative), then the sum of durations."""
        with self._lock:
            lists = list(self._lists)
        out: list[Any] = [0] * _COUNTS + [0.0]
        for counts in lists:
            for i, value in enumerate(counts[:]):  # a copy: a reference read per item, never torn
                out[i] += value
        return out


# -- the shared page ---------------------------------------------------------------------------------------
def publish(mem: Any, offset: int, gauges: tuple[int, int, int], totals: list[Any] | None) -> None:
    """The worker's side: store its gauges (open connections, busy threads, threads) and counter totals."""
    seq = _SEQ.unpack_from(mem, offset)[0]
    store(mem, offset, _SEQ, seq + 1)  # odd: a write is in progress
    counts = totals if totals is not None else [0] * _COUNTS + [0.0]
    store(mem, offset, _SLOT, seq + 1, *gauges, *counts)
    store(mem, offset, _SEQ, seq + 2)


def read(mem: Any, offset: int) -> tuple[tuple[int, int, int], list[Any]]:
    """The master's side: (gauges, counts) as last published; retried while a write overlaps."""
    for _ in range(1000):
        values = _SLOT.unpack_from(mem, offset)
        if values[0] % 2 == 0 and _SEQ.unpack_from(mem, offset)[0] == values[0]:
            break
    return (values[1], values[2], values[3]), list(values[4:])


# -- the master's sums and the exposition text ---------------------------------------------------------------
class MasterMetrics:
    """What the master adds up: the counts of exited workers, and worker restarts by reason."""

    def __init__(self) -> None:
        self.retired: list[Any] = [0] * _COUNTS + [0.0]
        self.restarts: Counter[str] = Counter()

    def restart(self, reason: str) -> None:
        self.restarts[reason] += 1

    def worker_gone(self, counts: list[Any]) -> None:
        """Keep an exited worker's final counts, so the counters never go back."""
        for i, value in enumerate(counts):
            self.retired[i] += value

    def render(
        self, workers: list[tuple[tuple[int, int, int], list[Any]]], queued: int | None, enabled: bool
    ) -> str:
        """The Prometheus text format (version 0.0.4) of the sums over `workers` (their gauges, counts)."""
        counts = list(self.retired)
        conns = busy = threads = 0
        for (open_conns, busy_threads, pool_size), worker_counts in workers:
            conns += open_conns
            busy += busy_threads
            threads += pool_size
            for i, value in enumerate(worker_counts):
                counts[i] += value
        out: list[str] = []
        if enabled:
            _metric(out, "ehttpd_requests_total", "counter", "Responses sent, by status class.")
            for i, name in enumerate(CLASSES):
                out.append(f'ehttpd_requests_total{{code="{name}"}} {counts[i]}')
            about = "Seconds from the request head to the end of the response."
            _metric(out, "ehttpd_request_duration_seconds", "histogram", about)
            running = 0
            for i, bound in enumerate((*BUCKETS, float("inf"))):
                running += counts[_HIST + i]
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'ehttpd_request_duration_seconds_bucket{{le="{le}"}} {running}')
            out.append(f"ehttpd_request_duration_seconds_sum {counts[_SUM]!r}")
            out.append(f"ehttpd_request_duration_seconds_count {running}")
        gauges = (
            ("ehttpd_workers", "Worker processes alive.", len(workers)),
            ("ehttpd_open_connections", "Client connections open in all workers.", conns),
            ("ehttpd_busy_threads", "Pool threads serving a connection.", busy),
            ("ehttpd_threads", "Pool threads in all workers.", threads),
        )
        for name, text, value in gauges:
            _metric(out, name, "gauge", text)
            out.append(f"{name} {value}")
        if queued is not None:
            _metric(out, "ehttpd_queued_connections", "gauge", "Connections waiting to be accepted.")
            out.append(f"ehttpd_queued_connections {queued}")
        _metric(out, "ehttpd_worker_restarts_total", "counter", "Workers replaced or stopped, by reason.")
        for reason in RESTART_REASONS:
            out.append(f'ehttpd_worker_restarts_total{{reason="{reason}"}} {self.restarts[reason]}')
        return "\n".join(out) + "\n"


def _metric(out: list[str], name: str, kind: str, text: str) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")


_TCP_INFO_QUEUE = struct.Struct("=24x I")  # tcpi_unacked: on a listener, the length of its accept queue


def accept_queue(socks: list[socket.socket]) -> int | None:
    """Connections waiting in the listeners' accept queues (Linux TCP only; None when unknown)."""
    total, known = 0, False
    for sock in socks:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except OSError:
            continue
        total += _TCP_INFO_QUEUE.unpack_from(info)[0]
        known = True
    return total if known else None
