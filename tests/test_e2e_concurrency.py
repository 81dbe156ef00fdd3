"""End-to-end: threads are held only by work. Idle keep-alive connections, blocking handlers, the
per-process connection cap.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .helpers import ServerProcess
from .httpraw import RawClient, get

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def start_server():
    """Start servers with given flags; every one is stopped by its pid at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        srv = ServerProcess("native_app", "--workers", "1", *args)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


def read_response_bytes(sock: socket.socket) -> bytes:
    """Read one short response with a Content-Length (enough for the hello route)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_500_idle_connections_do_not_delay_normal_requests(start_server):
    threads = 4
    srv = start_server("--threads", str(threads), "--keepalive-timeout", "60", "--header-timeout", "60")
    idle: list[socket.socket] = []
    try:
        for i in range(500):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            idle.append(sock)
            if i % 2:  # half of them did one request and now sit idle in keep-alive
                sock.sendall(REQUEST)
        for sock in idle[1::2]:
            assert read_response_bytes(sock).startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda _: get(srv.port, "/").status, range(50)))
        elapsed = time.monotonic() - start
        assert statuses == [200] * 50
        # With 4 threads, if the 500 idle connections held threads, these would never be served.
        assert elapsed < 5, f"50 requests took {elapsed:.1f}s beside 500 idle connections"
        # The idle connections are still open and served when they speak again.
        for sock in idle[:10] + idle[-10:]:
            sock.sendall(REQUEST)
            assert read_response_bytes(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in idle:
            sock.close()


def timed_parallel(port: int, count: int, ms: int) -> float:
    barrier = threading.Barrier(count)

    def one(_):
        with RawClient(port, timeout=10) as client:
            barrier.wait()
            assert client.request("GET", f"/sleep?ms={ms}").status == 200

    start = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - start


def test_blocking_handlers_run_concurrently_up_to_the_thread_count(start_server):
    srv = start_server("--threads", "8")
    timed_parallel(srv.port, 8, 1)  # warm up: threads started, connections accepted
    eight = timed_parallel(srv.port, 8, 200)
    assert eight < 0.8, f"8 parallel 200 ms handlers on 8 threads took {eight:.2f}s (serial: 1.6 s)"
    # And no more than the thread count at once: 16 of them need two rounds.
    sixteen = timed_parallel(srv.port, 16, 200)
    assert sixteen >= 0.38, f"16 handlers on 8 threads took only {sixteen:.2f}s"


@pytest.mark.parametrize("route", ["/sleep?ms=1500", "/spin?ms=1500"])
def test_a_stalled_handler_does_not_hold_up_other_connections(start_server, route):
    # One thread serves while requests are fast; a handler that blocks (sleep) or computes (spin) for 1.5 s
    # gets another thread serving the other connections within milliseconds, not after it.
    srv = start_server("--threads", "4")
    results: list[int] = []
    with RawClient(srv.port, timeout=10) as slow, RawClient(srv.port, timeout=10) as other:
        assert other.request("GET", "/").status == 200  # accepted and served before the slow one starts
        waiter = threading.Thread(target=lambda: results.append(slow.request("GET", route).status))
        waiter.start()
        time.sleep(0.2)  # the slow request is in its handler
        start = time.monotonic()
        statuses = [other.request("GET", "/").status for _ in range(20)]
        took = time.monotonic() - start
        waiter.join(10)
    assert statuses == [200] * 20
    assert results == [200]
    assert took < 0.8, f"20 requests beside {route} took {took:.2f}s"


def test_connections_take_turns_one_request_each(start_server):
    # One thread, so turns are all there is. The first connection's next request arrives while its first is
    # in an 800 ms handler, but after the second connection's request: the second is answered first, not
    # after the first connection's next 800 ms. (Sent together, the two would be pipelined: served in a row.)
    srv = start_server("--threads", "1")
    done: dict[str, float] = {}
    slow = b"GET /sleep?ms=800 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def read(client: RawClient, name: str, count: int) -> None:
        for i in range(count):
            assert client.read_response().status == 200
            done[f"{name} {i}"] = time.monotonic()

    with RawClient(srv.port, timeout=10) as first, RawClient(srv.port, timeout=10) as second:
        assert first.request("GET", "/").status == 200  # both accepted, served, parked
        assert second.request("GET", "/").status == 200
        readers = [
            threading.Thread(target=read, args=(first, "first", 2)),
            threading.Thread(target=read, args=(second, "second", 1)),
        ]
        for reader in readers:
            reader.start()
        first.send(slow)
        time.sleep(0.3)  # the first request is in its handler
        second.send(REQUEST)
        time.sleep(0.2)
        first.send(slow)
        for reader in readers:
            reader.join(10)
    assert len(done) == 3
    # Answers sent back to back reach their two readers in either order; an 800 ms handler between them
    # does not: the second connection was answered before the first one's next request ran.
    waited = done["first 1"] - done["second 0"]
    assert waited > 0.4, f"the second connection waited for the first one's next turn ({waited:.3f}s)"


def test_pipelined_requests_past_one_read_are_all_answered_while_others_wait(start_server):
    # 5,000 pipelined requests (175 KB) arrive faster than one 64 KB read takes them; meanwhile other
    # connections keep asking, so after each answer the connection yields without reading. The bytes left
    # behind a full read are not reported by epoll again: the connection must read them before it parks.
    srv = start_server("--threads", "1")
    count = 5000
    stop = threading.Event()
    others: list[int] = []

    def other() -> None:
        with RawClient(srv.port, timeout=10) as client:
            while not stop.is_set():
                others.append(client.request("GET", "/").status)

    helpers = [threading.Thread(target=other) for _ in range(2)]
    for helper in helpers:
        helper.start()
    try:
        with RawClient(srv.port, timeout=10) as client:
            payload = REQUEST * count
            assert len(payload) > 2 * 65536
            sender = threading.Thread(target=client.send, args=(payload,))
            sender.start()
            statuses = [client.read_response().status for _ in range(count)]
            sender.join(10)
    finally:
        stop.set()
        for helper in helpers:
            helper.join(10)
    assert statuses == [200] * count
    assert others and set(others) == {200}


def test_connection_cap_makes_extra_connections_wait_not_fail(start_server):
    srv = start_server("--threads", "4", "--max-connections", "2", "--keepalive-timeout", "30")
    first, second = RawClient(srv.port), RawClient(srv.port)
    try:
        for client in (first, second):
            assert client.request("GET", "/").status == 200
        extra = RawClient(srv.port)  # the kernel completes the handshake; the worker does not accept yet
        try:
            extra.send(REQUEST)
            extra.sock.settimeout(0.7)
            with pytest.raises(TimeoutError):
                extra.sock.recv(1)  # not served while two connections are open
            first.close()
            extra.sock.settimeout(3)
            resp = extra.read_response()
            assert resp.status == 200
            assert extra.request("GET", "/").status == 200  # and it is a normal keep-alive connection
            assert second.request("GET", "/").status == 200  # the other one was never disturbed
        finally:
            extra.close()
    finally:
        first.close()
        second.close()
