"""Supervision under load: a hung worker (heartbeat), a stuck request (request timeout), recycling after
--max-requests and over --max-worker-memory, one worker at a time."""

from __future__ import annotations

import http.client
import re
import threading
import time

from .masterkit import Load, Master, get, gone, wait_until


def _background_get(port: int, path: str) -> threading.Thread:
    def request() -> None:
        try:
            get(port, path, timeout=30)
        except Exception:
            pass  # this request is the one that hangs: its failure is expected

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    return thread


def test_a_hung_worker_is_found_by_its_heartbeat_aborted_with_its_stacks_and_replaced(tmp_path):
    master = Master("hang:app", "--workers", "2", "--threads", "4", "--timeout", "2", tmp=tmp_path).start()
    try:
        before = master.wait_workers(2)
        load = Load(master.port, threads=6).start()
        load.wait_ok(100)
        _background_get(master.port, "/hang")  # holds the GIL: the worker's main loop stops beating
        found = master.wait_log(r"worker \d \(pid (\d+)\) has not beaten for [\d.]+s \(--timeout 2s\)", 8)
        hung = int(found.group(1))
        assert hung in before
        # faulthandler's dump on SIGABRT: the stack of the thread stuck in the handler.
        master.wait_log(r'File ".*hang\.py", line \d+ in app', 5)
        assert wait_until(lambda: gone({hung}), 5), "the hung worker was not killed"
        now = master.wait_workers(2)
        assert hung not in now
        load.wait_ok(200)
        load.stop()
        # Only the requests on the hung worker fail: at most one per client connection.
        assert len(load.failures) <= 6, load.summary()
        print(load.summary())
    finally:
        master.stop()


def test_a_stuck_request_logs_its_stack_and_its_worker_is_replaced_gracefully(tmp_path):
    master = Master(
        "hang:app",
        "--workers",
        "2",
        "--threads",
        "4",
        "--request-timeout",
        "1",
        "--graceful-timeout",
        "3",
        tmp=tmp_path,
    ).start()
    try:
        before = master.wait_workers(2)
        load = Load(master.port, threads=6).start()
        load.wait_ok(100)
        _background_get(master.port, "/stuck")
        master.wait_log(r"a request has run [\d.]+s \(--request-timeout 1s\)", 5)
        master.wait_log(r"time\.sleep\(120\)", 1)  # the stuck thread's stack, with the line it is on
        found = master.wait_log(r"worker \d \(pid (\d+)\) stops gracefully: a request ran past", 3)
        stuck = int(found.group(1))
        assert stuck in before
        assert wait_until(lambda: gone({stuck}), 6), "the worker with the stuck request did not exit"
        assert stuck not in master.wait_workers(2)
        load.wait_ok(200)
        load.stop()
        assert not load.failures, load.summary()  # its other requests finished
        print(load.summary())
    finally:
        master.stop()


def test_a_stuck_request_keeps_its_worker_accepting_until_the_successor_is_up(tmp_path):
    # One worker, and an app that takes 1.5 s to import: if the worker with the stuck request stopped
    # accepting at once, every request would wait for the successor's import.
    master = Master(
        "slowboot:app",
        "--workers",
        "1",
        "--request-timeout",
        "1",
        "--graceful-timeout",
        "3",
        tmp=tmp_path,
        env={"EHTTPD_TEST_BOOT": "1.5"},
    ).start()
    try:
        (stuck,) = master.wait_workers(1, timeout=15)
        _background_get(master.port, "/stuck")
        slowest = 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert get(master.port, "/", timeout=5)[0] == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
        master.wait_log(r"stops gracefully: a request ran past --request-timeout", 5)
        assert stuck not in master.wait_workers(1, timeout=10)
        assert slowest < 0.5, slowest
    finally:
        master.stop()


def test_max_requests_recycles_one_worker_at_a_time_under_load(tmp_path):
    master = Master(
        "slow:app",
        "--workers",
        "2",
        "--threads",
        "8",
        "--max-requests",
        "1500",
        "--max-requests-jitter",
        "500",
        tmp=tmp_path,
    ).start()
    try:
        master.wait_workers(2)
        load = Load(master.port, threads=8).start()
        assert wait_until(lambda: master.log().count("starting its successor") >= 4, 20), master.log()[-3000:]
        load.wait_ok(100)
        load.stop()
        assert not load.failures, load.summary()
        print(load.summary())
        _assert_one_replacement_at_a_time(master.log())
    finally:
        master.stop()


def _assert_one_replacement_at_a_time(log: str) -> None:
    """Between 'starting its successor' for a worker and that worker's graceful stop, no other starts."""
    in_flight: int | None = None
    for line in log.splitlines():
        started = re.search(r"worker \d \(pid (\d+)\) .*: starting its successor", line)
        stopped = re.search(r"worker \d \(pid (\d+)\) stops gracefully", line)
        if started:
            assert in_flight is None, f"two replacements at once:\n{log}"
            in_flight = int(started.group(1))
        elif stopped and int(stopped.group(1)) == in_flight:
            in_flight = None


def test_a_worker_over_the_memory_limit_is_recycled_under_load(tmp_path):
    master = Master("memhog:app", "--workers", "2", "--max-worker-memory", "80", tmp=tmp_path).start()
    try:
        before = master.wait_workers(2)
        load = Load(master.port, threads=6).start()
        load.wait_ok(100)
        conn = http.client.HTTPConnection("127.0.0.1", master.port, timeout=10)
        for _ in range(5):  # one keep-alive connection: the same worker grows by 16 MB each time
            conn.request("GET", "/grow")
            resp = conn.getresponse()
            grown = int(resp.read())
        conn.close()
        found = master.wait_log(r"worker \d \(pid (\d+)\) uses \d+ MB \(--max-worker-memory 80\)", 8)
        assert int(found.group(1)) == grown and grown in before
        assert wait_until(lambda: gone({grown}), 5)
        assert grown not in master.wait_workers(2)
        load.wait_ok(100)
        load.stop()
        assert not load.failures, load.summary()
        print(load.summary())
        _assert_one_replacement_at_a_time(master.log())
    finally:
        master.stop()
