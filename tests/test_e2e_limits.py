"""End-to-end: every limit and malformed input answers with its own status and a closed connection.

414, 431, 413 (Content-Length, chunked, and the handler's own limit), 400, 505, 501, 417, and the
timeouts: 408 for a slow head, 408 for a stalled body, idle connections closed, and clients dribbling
one byte at a time neither holding a thread nor escaping the header timeout.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .helpers import ServerProcess
from .httpraw import RawClient, exchange, get

HEADER_TIMEOUT = 1.0
THREADS = 2


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(
        "native_app",
        "--workers",
        "1",
        "--threads",
        str(THREADS),
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--body-timeout",
        "1",
        "--keepalive-timeout",
        "1",
    )
    with srv:
        yield srv


def refused(port: int, data: bytes) -> tuple[int, bytes]:
    """Send `data`; the server must answer once and close, saying so. Returns (status, body)."""
    (resp,), closed = exchange(port, data)
    assert resp.closes, resp.headers
    assert closed
    return resp.status, resp.body


# -- sizes ---------------------------------------------------------------------------------------------
def test_414_request_line_too_long(port):
    status, body = refused(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414
    assert b"Traceback" not in body


def test_414_comes_before_the_line_ends(port):
    """The server does not wait for a CRLF that a client may never send."""
    with RawClient(port) as client:
        client.send(b"GET /" + b"a" * 10000)
        assert client.read_response().status == 414


def test_request_line_at_the_limit_is_served(port):
    target = "/info?" + "a" * (8190 - len("GET /info? HTTP/1.1"))
    assert len(f"GET {target} HTTP/1.1") == 8190
    assert get(port, target).status == 200


def test_431_too_many_header_fields(port):
    fields = "".join(f"X-{i}: v\r\n" for i in range(99))
    with RawClient(port) as client:
        client.send(f"GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        assert client.read_response().status == 200  # exactly 100 fields, Host included, are fine
    status, _ = refused(port, f"GET / HTTP/1.1\r\nHost: x\r\n{fields}X-99: v\r\n\r\n".encode())
    assert status == 431


def test_431_header_section_too_large(port):
    status, _ = refused(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n")
    assert status == 431


def test_413_content_length_over_the_limit(port):
    status, _ = refused(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n")
    assert status == 413


def test_413_chunked_over_the_limit(port):
    # One chunk announcing 1 GiB + 1 bytes: refused as soon as the size line is read, before any data.
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40000001\r\nabc"
    status, _ = refused(port, data)
    assert status == 413


def test_413_from_the_handler_limit_content_length(port):
    # /echo accepts 1 MiB; send a bit more than that of a 2 MiB body, then stop and read the answer.
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n"
    status, _ = refused(port, head + b"x" * ((1 << 20) + 1000))
    assert status == 413


def test_413_from_the_handler_limit_chunked(port):
    chunk = b"%x\r\n%s\r\n" % (65536, b"c" * 65536)
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 17
    status, _ = refused(port, data)
    assert status == 413


# -- malformed -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",  # whitespace before the colon
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",  # not ending in chunked
        b"GET / HTTP/1.1\r\nHost: x\r\nBad\x00: v\r\n\r\n",
        b"GET http//x/ HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_400_malformed(port, data):
    status, body = refused(port, data)
    assert status == 400
    assert body.startswith(b"400 Bad Request")


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.2", b"HTTP/0.9"])
def test_505_unknown_versions(port, version):
    status, _ = refused(port, b"GET / " + version + b"\r\nHost: x\r\n\r\n")
    assert status == 505


def test_501_unknown_transfer_coding(port):
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    status, _ = refused(port, data)
    assert status == 501


def test_417_unknown_expectation(port):
    status, _ = refused(port, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n")
    assert status == 417


# -- timeouts ------------------------------------------------------------------------------------------
def test_408_slow_head(port):
    with RawClient(port) as client:
        start = time.monotonic()
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        resp = client.read_response()
        elapsed = time.monotonic() - start
        assert resp.status == 408
        assert resp.closes
        assert client.closed_by_server()
    assert HEADER_TIMEOUT * 0.9 <= elapsed <= HEADER_TIMEOUT + 2


def test_408_stalled_body(port):
    with RawClient(port) as client:
        start = time.monotonic()
        client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        resp = client.read_response()
        elapsed = time.monotonic() - start
        assert resp.status == 408
        assert resp.closes
        assert client.closed_by_server()
    assert 0.9 <= elapsed <= 3


def test_a_stalled_body_whose_error_the_handler_swallowed_is_not_drained(port):
    # The handler catches the read timeout and answers: the rest of the body may never come, so the
    # answer says Connection: close and the connection closes, instead of a drain waiting another timeout.
    with RawClient(port) as client:
        client.send(b"POST /swallow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        resp = client.read_response()
        assert (resp.status, resp.body) == (200, b"answered anyway\n")
        assert resp.closes
        start = time.monotonic()
        assert client.closed_by_server(timeout=3)
    assert time.monotonic() - start < 0.5


def _threads_stay_free_after(port: int, request: bytes, status: int) -> None:
    """As many clients as threads send `request`, get `status`, and keep their end open: a GET on a new
    connection is still answered at once, and each of those connections is then closed by the server."""
    clients = [RawClient(port) for _ in range(THREADS)]
    try:
        for client in clients:
            client.send(request)
        for client in clients:
            assert client.read_response().status == status
        start = time.monotonic()
        assert get(port, "/").status == 200
        assert time.monotonic() - start < 0.5
        for client in clients:
            assert client.closed_by_server(timeout=3)
    finally:
        for client in clients:
            client.close()


def test_bodies_that_never_come_do_not_hold_the_threads_while_drained(port):
    # Each handler ignores the body and answers, then the server drains the unread 1,000 bytes to keep the
    # connection, but only for the grace, not for the body timeout; the body never comes: not kept.
    _threads_stay_free_after(port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", 200)


def test_lingering_after_an_error_holds_no_thread(port):
    # Each 400 is followed by a lingering close (RFC 9112 §9.6) while the client keeps its end open: the
    # worker's main thread finishes those (closed once the linger, 1 s, has passed).
    _threads_stay_free_after(port, b"BAD REQUEST LINE\r\n\r\n", 400)


def test_silent_connection_is_closed_without_an_answer(port):
    with RawClient(port) as client:
        assert client.closed_by_server(timeout=HEADER_TIMEOUT + 2)


def test_idle_keep_alive_connection_is_closed(port):
    with RawClient(port) as client:
        assert client.request("GET", "/").status == 200
        start = time.monotonic()
        assert client.closed_by_server(timeout=3)
        assert time.monotonic() - start >= 0.8


def dribble(port: int, results: list, index: int) -> None:
    """Send a never-ending head one byte every 0.2 s; record (status line, seconds) of the answer."""
    data = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
        start = time.monotonic()
        received = b""
        for i in range(len(data)):
            if time.monotonic() - start > 5:
                break
            try:
                sock.send(data[i : i + 1])
                received += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if received:
                break
        results[index] = (received.split(b"\r\n", 1)[0], time.monotonic() - start)


def test_dribbling_clients_do_not_delay_others_and_get_408(port):
    # More dribblers than pool threads: if one held a thread while waiting, the others would queue.
    results: list = [None] * (THREADS + 1)
    threads = [threading.Thread(target=dribble, args=(port, results, i)) for i in range(len(results))]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        worst = 0.0
        for _ in range(20):
            start = time.monotonic()
            with RawClient(port, timeout=2) as client:
                assert client.request("GET", "/").status == 200
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.02)
    finally:
        for t in threads:
            t.join(10)
    assert worst < 0.5, f"a normal request took {worst:.2f}s beside the dribblers"
    for status_line, elapsed in results:
        assert status_line == b"HTTP/1.1 408 Request Timeout"
        assert HEADER_TIMEOUT * 0.9 <= elapsed <= HEADER_TIMEOUT + 1.5
