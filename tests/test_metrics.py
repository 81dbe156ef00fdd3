"""--metrics-bind: the master's Prometheus endpoint sums every worker's counters exactly.

A real master with two workers; requests of known statuses from real clients (keep-alive and not, from
several threads so both workers serve); /metrics fetched with http.client and parsed by a strict parser of
the text exposition format written here (HELP/TYPE before samples, label syntax, counters ending in
_total, cumulative histogram buckets ending in +Inf equal to _count).
"""

from __future__ import annotations

import http.client
import math
import mmap
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from ehttpd.config import Settings
from ehttpd.heartbeat import METRICS_AT
from ehttpd.metrics import RequestMetrics, publish, read

from .helpers import free_port
from .httpraw import exchange
from .masterkit import Master, gone, wait_until

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*,?)?\}})? (\S+)(?: -?\d+)?$")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

# (path, status) and how many of each the test sends.
SENT = {("/", 200): 40, ("/no-content", 204): 6, ("/redirect", 303): 7, ("/nope", 404): 9, ("/boom", 500): 5}
SENT[("/unavailable", 503)] = 3
TOTAL = sum(SENT.values())
DURATION = "ehttpd_request_duration_seconds"


def parse_exposition(text: str) -> dict[str, dict]:
    """Parse the text format strictly: {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families: dict[str, dict] = {}
    current: str | None = None
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert re.fullmatch(_NAME, name), where
                family = families.setdefault(name, {"type": None, "help": None, "samples": []})
                assert not family["samples"], f"{where}: HELP/TYPE after the family's samples"
                key = parts[1].lower()
                assert family[key] is None, f"{where}: a second {parts[1]}"
                family[key] = parts[3] if len(parts) > 3 else ""
                if key == "type":
                    assert family["type"] in _TYPES, where
                current = name
            continue
        assert line, f"{where}: empty line"
        match = _SAMPLE.match(line)
        assert match, f"{where}: not a sample line"
        name, labels_text, value = match.groups()
        family_name = _family_of(name, families)
        assert family_name == current, f"{where}: sample outside its family's block"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels_text or ""))
        parsed = float(value)  # raises on anything but a float, +Inf, -Inf, NaN
        families[family_name]["samples"].append((name, labels, parsed))
    for name, family in families.items():
        assert family["type"] is not None, f"{name}: no TYPE"
        if family["type"] == "counter":
            assert name.endswith("_total"), f"the counter {name} does not end in _total"
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return families


def _family_of(sample: str, families: dict[str, dict]) -> str | None:
    if sample in families:
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and families.get(base, {}).get("type") == "histogram":
            return base
    return None


def check_histogram(name: str, samples: list) -> None:
    buckets = [(float(labels["le"]), v) for n, labels, v in samples if n == f"{name}_bucket"]
    assert buckets, f"{name}: no buckets"
    bounds = [le for le, _ in buckets]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), f"{name}: bucket order"
    assert math.isinf(bounds[-1]), f"{name}: no +Inf bucket"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"{name}: buckets are not cumulative: {counts}"
    (count,) = [v for n, _, v in samples if n == f"{name}_count"]
    (total,) = [v for n, _, v in samples if n == f"{name}_sum"]
    assert counts[-1] == count, f"{name}: +Inf bucket {counts[-1]} != _count {count}"
    assert total >= 0


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def metrics(port: int) -> dict[str, dict]:
    status, ctype, text = scrape(port)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    return parse_exposition(text)


def by_label(families: dict, family: str, label: str) -> dict[str, float]:
    return {labels[label]: v for _, labels, v in families[family]["samples"]}


def restarts(port: int) -> dict[str, float]:
    return by_label(metrics(port), "ehttpd_worker_restarts_total", "reason")


def value(families: dict, family: str) -> float:
    (sample,) = families[family]["samples"]
    return sample[2]


def served(port: int) -> float:
    """The request duration histogram's _count: every response counted."""
    families = metrics(port)
    (count,) = [v for n, _, v in families[DURATION]["samples"] if n == f"{DURATION}_count"]
    return count


def send_all(port: int) -> None:
    """Every request of SENT, from 6 client threads: half keep-alive, half a connection per request."""
    work = [path for (path, _), n in SENT.items() for _ in range(n)]
    got: Counter[int] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {} if index % 2 else {"Connection": "close"}
        try:
            for path in work[index::6]:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                with lock:
                    got[resp.status] += 1
                if not index % 2:
                    conn.close()
        finally:
            conn.close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(client, range(6)))
    assert got == Counter({status: n for (_, status), n in SENT.items()})


@pytest.fixture
def master(tmp_path):
    port = free_port()
    server = Master(
        "native_app:app",
        "--workers",
        "2",
        "--threads",
        "4",
        "--metrics-bind",
        f"127.0.0.1:{port}",
        tmp=tmp_path,
    )
    server.metrics_port = port
    server.start()
    try:
        server.wait_workers(2)
        yield server
    finally:
        server.stop()


def expected_classes() -> dict[str, int]:
    classes = Counter({"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0})
    for (_, status), n in SENT.items():
        classes[f"{status // 100}xx"] += n
    return dict(classes)


def test_metrics_count_every_request_by_status_class_in_a_cumulative_histogram(master):
    before = metrics(master.metrics_port)
    assert set(by_label(before, "ehttpd_requests_total", "code").values()) == {0}
    send_all(master.port)
    total = sum(SENT.values())
    assert wait_until(lambda: served(master.metrics_port) == total, 3)
    families = metrics(master.metrics_port)
    assert by_label(families, "ehttpd_requests_total", "code") == expected_classes()
    buckets = [
        v for n, _, v in families["ehttpd_request_duration_seconds"]["samples"] if n.endswith("_bucket")
    ]
    assert buckets[-1] == total  # and cumulative: checked by the parser
    assert value(families, "ehttpd_workers") == 2
    assert value(families, "ehttpd_threads") == 8
    assert value(families, "ehttpd_open_connections") >= 0 and value(families, "ehttpd_busy_threads") >= 0
    assert "ehttpd_queued_connections" in families
    # Both workers served (6 parallel clients); the sum is what the master shows, per worker in the status.
    rows = master.status()["workers"]
    assert sum(w["requests"] for w in rows) == total


def test_requests_refused_before_a_handler_are_counted(tmp_path):
    port = free_port()
    server = Master(
        "native_app:app",
        "--workers",
        "1",
        "--metrics-bind",
        f"127.0.0.1:{port}",
        "--header-timeout",
        "0.5",
        tmp=tmp_path,
    ).start()
    try:
        server.wait_workers(1)
        refused = [
            (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 70000 + b"\r\n\r\n", 431),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            # The handler reads a chunked body whose chunk size is not hex: its read raises the 400.
            (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", 408),  # the head never ends: the sweep's 408
        ]
        for request, status in refused:
            (resp,), closed = exchange(server.port, request)
            assert (resp.version, resp.status, closed) == ("HTTP/1.1", status, True)
        assert wait_until(lambda: served(port) == len(refused), 3), metrics(port)[DURATION]
        codes = by_label(metrics(port), "ehttpd_requests_total", "code")
        assert codes == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": len(refused), "5xx": 0}
    finally:
        server.stop()


def test_open_connections_and_busy_threads_are_live_gauges(master):
    idle = http.client.HTTPConnection("127.0.0.1", master.port, timeout=10)
    slow = http.client.HTTPConnection("127.0.0.1", master.port, timeout=10)
    try:
        idle.request("GET", "/")
        idle.getresponse().read()  # kept alive, parked
        slow.request("GET", "/sleep?ms=1500")  # holds a thread for 1.5 s
        assert wait_until(
            lambda: (
                value(metrics(master.metrics_port), "ehttpd_busy_threads") == 1
                and value(metrics(master.metrics_port), "ehttpd_open_connections") == 2
            ),
            2,
        ), scrape(master.metrics_port)[2]
        assert slow.getresponse().read() == b"slept\n"
    finally:
        idle.close()
        slow.close()
    assert wait_until(lambda: value(metrics(master.metrics_port), "ehttpd_open_connections") == 0, 3)
    assert value(metrics(master.metrics_port), "ehttpd_busy_threads") == 0


def test_a_killed_worker_counts_as_a_crash_and_its_requests_stay_counted(master):
    send_all(master.port)
    total = sum(SENT.values())
    assert wait_until(lambda: served(master.metrics_port) == total, 3)
    victim = sorted(master.worker_pids())[0]
    assert set(restarts(master.metrics_port).values()) == {0}
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: gone({victim}), 5)
    assert wait_until(
        lambda: (
            by_label(metrics(master.metrics_port), "ehttpd_worker_restarts_total", "reason")["crash"] == 1
        ),
        5,
    )
    master.wait_workers(2)
    families = metrics(master.metrics_port)
    assert by_label(families, "ehttpd_requests_total", "code") == expected_classes()  # nothing went back
    assert served(master.metrics_port) == total
    assert master.status()["restarts"] == {"crash": 1}


def test_the_metrics_address_answers_only_get_metrics(master):
    assert scrape(master.metrics_port, "/")[0] == 404
    assert scrape(master.metrics_port, "/metrics", "POST")[0] == 405
    status, _, body = scrape(master.metrics_port, "/metrics", "HEAD")
    assert (status, body) == (200, "")
    # A client that connects and says nothing does not hold up the master or the other clients.
    with socket.create_connection(("127.0.0.1", master.metrics_port), timeout=5) as mute:
        assert metrics(master.metrics_port)["ehttpd_workers"]
        assert master.status()["pid"] == master.pid
        mute.settimeout(5)
        assert mute.recv(100) == b""  # dropped after its 2 s


def test_without_metrics_bind_nothing_is_served_and_status_still_works(tmp_path):
    server = Master("native_app:app", "--workers", "1", tmp=tmp_path).start()
    try:
        server.wait_workers(1)
        assert server.status()["workers"][0]["threads"] == Settings().threads  # the default
        assert "metrics" not in server.log()
    finally:
        server.stop()


def test_per_thread_counters_lose_no_increment():
    """The counters the hot path uses, from 8 real threads at once: the totals are exact."""
    counters = RequestMetrics()
    statuses = (200, 404, 500, 301)

    def hammer(index: int) -> None:
        for i in range(5000):
            counters.observe(statuses[(i + index) % 4], 0.0001 * (i % 30))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    seen = counters.totals()  # while they run: never more than what was observed
    assert sum(seen[:5]) <= 40000
    for thread in threads:
        thread.join()
    totals = counters.totals()
    assert totals[:5] == [0, 10000, 10000, 10000, 10000]
    assert sum(totals[5:-1]) == 40000


def test_the_master_never_reads_gauges_half_published():
    # A forked child publishes the same gauges over and over while this process reads them, as the master
    # does: a read inside struct.pack_into's zeroing of the slot passed the sequence check with zeros.
    mem = mmap.mmap(-1, mmap.PAGESIZE)
    publish(mem, METRICS_AT, (7, 3, 4), None)
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            publish(mem, METRICS_AT, (7, 3, 4), None)
        os._exit(0)
    reads, wrong = 0, []
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            reads += 1
            gauges = read(mem, METRICS_AT)[0]
            if gauges != (7, 3, 4):
                wrong.append(gauges)
    finally:
        mem.close()
    assert reads > 1_000 and not wrong, (reads, len(wrong), wrong[:5])


def test_a_reload_counts_one_restart_per_worker_and_keeps_the_counts(master):
    send_all(master.port)
    old = master.worker_pids()
    master.signal(signal.SIGHUP)
    assert wait_until(lambda: not (master.worker_pids() & old) and len(master.worker_pids()) == 2, 10)
    assert wait_until(lambda: restarts(master.metrics_port)["reload"] == 2, 5)
    master.wait_workers(2)
    families = metrics(master.metrics_port)
    assert by_label(families, "ehttpd_requests_total", "code") == expected_classes()
    assert served(master.metrics_port) == TOTAL
    assert restarts(master.metrics_port)["crash"] == 0
