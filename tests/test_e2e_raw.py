"""End-to-end: raw connection mode (`@ehttpd.raw`), a line echo protocol of our own over TCP."""

from __future__ import annotations

import socket

import pytest

from .helpers import ServerProcess


@pytest.fixture(scope="module")
def port():
    # One thread: a connection waiting between exchanges must not hold it, or the second client stalls.
    srv = ServerProcess("raw_echo", "--workers", "1", "--threads", "1", "--keepalive-timeout", "10")
    srv.start()
    try:
        yield srv.port
    finally:
        srv.stop()


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_echo_lines_and_keep_the_connection(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for line in (b"hello\n", b"second line\n", b"GET / HTTP/1.1\n"):
            sock.sendall(line)
            assert read_exactly(sock, 6 + len(line)) == b"echo: " + line


def test_several_lines_in_one_send_each_get_an_exchange(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"a\nbb\nccc\n")
        assert read_exactly(sock, 27) == b"echo: a\necho: bb\necho: ccc\n"


def test_line_split_across_sends(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hal")
        sock.sendall(b"ves\n")
        assert read_exactly(sock, 13) == b"echo: halves\n"


def test_handler_returning_false_closes(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"one\nquit\n")
        data = b""
        while chunk := sock.recv(100):
            data += chunk
        assert data == b"echo: one\nbye\n"


def test_idle_raw_connection_does_not_hold_the_only_thread(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as a:
        a.sendall(b"from a\n")
        assert read_exactly(a, 13) == b"echo: from a\n"
        with socket.create_connection(("127.0.0.1", port), timeout=3) as b:
            b.sendall(b"from b\n")
            assert read_exactly(b, 13) == b"echo: from b\n"
        a.sendall(b"again\n")
        assert read_exactly(a, 12) == b"echo: again\n"
