"""End-to-end: the HTTP/1.1 engine and native API against a real server process over real sockets.

Keep-alive, pipelining, chunked bodies both ways, HTTP/1.0, Connection: close, 100-continue, HEAD, the
request API (query, path, safe_path), response constructors, Date/Server, a raising handler and a client
that goes away mid-body. One server per module; each test opens its own connections.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from email.utils import parsedate_to_datetime

import pytest

from .helpers import ServerProcess
from .httpraw import RawClient, exchange, get

THREADS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = tmp_path_factory.mktemp("files")
    (files / "hello.txt").write_bytes(b"hello file\n")
    srv = ServerProcess(
        "native_app", "--workers", "1", "--threads", str(THREADS), env={"EHTTPD_TEST_FILES": str(files)}
    )
    with srv:
        yield srv


def http11(method: str, target: str, *fields: str, body: bytes = b"") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f + "\r\n" for f in fields)
    return head.encode("latin-1") + b"\r\n" + body


# -- keep-alive and pipelining --------------------------------------------------------------------------
def test_keep_alive_serves_many_requests_on_one_tcp_connection(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/peer")
        first = conn.getresponse()
        sock = conn.sock
        local_port = sock.getsockname()[1]
        assert first.status == 200
        assert first.read() == str(local_port).encode()
        for i in range(6):
            if i % 2:
                conn.request("POST", "/echo", body=b"x" * i * 1000)
                resp = conn.getresponse()
                assert resp.read() == b"x" * i * 1000
            else:
                conn.request("GET", "/peer")
                resp = conn.getresponse()
                # The server saw the same client port: the very same TCP connection carried it.
                assert resp.read() == str(local_port).encode()
            assert resp.status == 200
            assert resp.getheader("Connection") is None
            assert conn.sock is sock  # http.client did not have to reconnect
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(port):
    data = (
        http11("GET", "/info/one?n=1")
        + http11("POST", "/echo", "Content-Length: 3", body=b"two")
        + http11("GET", "/info/three?n=3")
    )
    with RawClient(port) as client:
        client.send(data)
        one, two, three = (client.read_response() for _ in range(3))
        assert json.loads(one.body)["path"] == "/info/one"
        assert two.body == b"two"
        assert json.loads(three.body)["path"] == "/info/three"
        # And the connection is still usable afterwards.
        assert client.request("GET", "/").body == b"Hello world\n"


def test_pipelined_requests_in_one_byte_writes(port):
    data = http11("GET", "/info/a") + http11("HEAD", "/info/b") + http11("GET", "/info/c")
    with RawClient(port) as client:
        for i in range(len(data)):
            client.send(data[i : i + 1])
        a = client.read_response()
        b = client.read_response("HEAD")
        c = client.read_response()
    assert json.loads(a.body)["path"] == "/info/a"
    assert b.status == 200 and b.body == b""
    assert json.loads(c.body)["path"] == "/info/c"


# -- chunked in and out ----------------------------------------------------------------------------------
def test_chunked_request_body_with_extensions_and_trailers(port):
    body = (
        b"5;ext=1\r\nhello\r\n"
        b'6 ; name="quoted value" ; flag\r\n world\r\n'
        b"A\r\n, chunked!\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Other: 1 2\r\n\r\n"
    )
    with RawClient(port) as client:
        client.send(http11("POST", "/echo", "Transfer-Encoding: chunked"))
        for piece in (body[:7], body[7:30], body[30:]):  # split across writes, mid-line and mid-chunk
            time.sleep(0.05)
            client.send(piece)
        resp = client.read_response()
        assert resp.status == 200
        assert resp.body == b"hello world, chunked!"
        assert json.loads(resp.header("x-trailers")) == [["x-checksum", "abc"], ["x-other", "1 2"]]
        assert client.request("GET", "/").status == 200  # the connection survived


def test_streamed_response_is_chunked_on_http11(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/stream?n=4")
        assert resp.status == 200
        assert resp.chunked
        assert resp.header("content-length") is None
        assert resp.body == b"part 0\npart 1\npart 2\npart 3\n"
        assert not resp.closes
        assert client.request("GET", "/").status == 200


def test_streamed_response_is_close_delimited_on_http10(port):
    for extra in ("", "Connection: keep-alive\r\n"):
        with RawClient(port) as client:
            client.send(f"GET /stream?n=3 HTTP/1.0\r\n{extra}\r\n".encode())
            resp = client.read_response()  # no length, no chunks: the body ends when the server closes
            assert resp.status == 200
            assert resp.header("transfer-encoding") is None
            assert resp.header("content-length") is None
            assert resp.closes
            assert resp.body == b"part 0\npart 1\npart 2\n"
            assert client.eof


def test_empty_streamed_response(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/stream?n=0")
        assert resp.chunked and resp.body == b""


# -- HTTP/1.0 and Connection: close ----------------------------------------------------------------------
def test_http10_closes_unless_keep_alive_asked(port):
    with RawClient(port) as client:
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        resp = client.read_response()
        assert resp.version == "HTTP/1.1"
        assert resp.body == b"Hello world\n"
        assert resp.closes
        assert client.closed_by_server()


def test_http10_keep_alive_is_honoured(port):
    with RawClient(port) as client:
        for _ in range(3):
            client.send(b"GET /peer HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = client.read_response()
            assert resp.body == str(client.local_port).encode()
            assert resp.header("connection").lower() == "keep-alive"
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        assert client.read_response().closes
        assert client.closed_by_server()


def test_connection_close_from_the_client(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/", {"Connection": "close"})
        assert resp.status == 200
        assert resp.closes
        assert client.closed_by_server()


def test_http11_connection_stays_open_without_close(port):
    with RawClient(port) as client:
        client.send(http11("GET", "/info/x") + http11("GET", "/"))
        assert client.read_response().status == 200
        assert client.read_response().status == 200
        assert not client.closed_by_server(timeout=0.3)


@pytest.mark.parametrize(
    ("data", "method"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", "GET"),
        (b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", "GET"),
        (b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HEAD"),
        (b"GET / HTTP/1.1\r\n\r\n", "GET"),  # 400: no Host
        (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"),  # 400
        (
            b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "GET",
        ),
        (b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n" + b"x" * 1000, "GET"),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "GET"),  # bad chunk
    ],
    ids=[
        "http10",
        "http10-stream",
        "close",
        "close-in-list",
        "head-close",
        "no-host",
        "bad-target",
        "unread-100-continue",
        "unread-large-body",
        "bad-chunk",
    ],
)
def test_every_response_before_the_server_closes_says_connection_close(port, data, method):
    (resp,), closed = exchange(port, data, method=method)
    assert closed
    assert resp.closes, resp.headers


# -- 100-continue --------------------------------------------------------------------------------------
def test_100_continue_sent_when_the_handler_reads_the_body(port):
    with RawClient(port) as client:
        client.send(http11("POST", "/echo", "Expect: 100-continue", "Content-Length: 11"))
        interim = client.read_head()  # the client waits for it before sending the body
        assert interim.status == 100
        client.send(b"hello there")
        resp = client.read_response()
        assert resp.status == 200
        assert resp.body == b"hello there"
        assert not resp.closes
        assert client.request("GET", "/").status == 200  # the same connection goes on


def test_100_continue_chunked(port):
    with RawClient(port) as client:
        client.send(http11("POST", "/echo", "Expect: 100-continue", "Transfer-Encoding: chunked"))
        assert client.read_head().status == 100
        client.send(b"3\r\nabc\r\n0\r\n\r\n")
        assert client.read_response().body == b"abc"


def test_no_100_continue_when_the_handler_ignores_the_body(port):
    with RawClient(port) as client:
        client.send(http11("POST", "/ignore-body", "Expect: 100-continue", "Content-Length: 5000"))
        resp = client.read_response(skip_1xx=False)
        assert resp.status == 200  # the final answer, with no 100 before it
        assert resp.body == b"not reading your body\n"
        assert resp.closes  # the body never came, so the connection cannot be reused
        client.send(b"x" * 5000)  # a client that sends the body anyway is drained, not reset
        assert client.closed_by_server()


def test_unread_small_body_is_drained_and_the_connection_kept(port):
    with RawClient(port) as client:
        client.send(http11("POST", "/ignore-body", "Content-Length: 1000", body=b"y" * 1000))
        resp = client.read_response()
        assert resp.status == 200
        assert not resp.closes
        assert client.request("GET", "/").body == b"Hello world\n"


# -- HEAD ----------------------------------------------------------------------------------------------
FRAMING = ("content-length", "transfer-encoding", "content-type", "accept-ranges", "etag", "last-modified")


@pytest.mark.parametrize("target", ["/", "/stream?n=3", "/pattern", "/files/hello.txt", "/json", "/nope"])
def test_head_has_the_framing_of_get_and_no_body(port, target):
    with RawClient(port) as client:
        got = client.request("GET", target)
        head = client.request("HEAD", target)
        assert head.status == got.status
        assert head.body == b""
        for name in FRAMING:
            assert head.header(name) == got.header(name), name
        # A stray body byte after the HEAD response would be read as the next status line here.
        assert client.request("GET", "/").body == b"Hello world\n"


def test_head_http10_stream_keeps_the_connection_when_asked(port):
    with RawClient(port) as client:
        client.send(b"HEAD /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = client.read_response("HEAD")
        assert resp.status == 200
        assert not resp.closes
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        assert client.read_response().body == b"Hello world\n"


# -- request API over the wire --------------------------------------------------------------------------
def test_query_parsing(port):
    info = json.loads(get(port, "/info?a=1&b=x+y&a=2&c=%26%3D&e=").body)
    assert info["query"] == {"a": ["1", "2"], "b": ["x y"], "c": ["&="], "e": [""]}
    assert info["query_string"] == "a=1&b=x+y&a=2&c=%26%3D&e="


def test_path_percent_decoding(port):
    info = json.loads(get(port, "/caf%C3%A9/a%20b%2Fc?q=1").body)
    assert info["path"] == "/café/a b/c"
    assert info["raw_path"] == "/caf%C3%A9/a%20b%2Fc"


def test_absolute_form_target(port):
    info = json.loads(get(port, "http://127.0.0.1/info/abs?x=1").body)
    assert info["path"] == "/info/abs"
    assert info["query"] == {"x": ["1"]}


@pytest.mark.parametrize(
    "target",
    [
        "/files/../secret",
        "/files/..%2fsecret",
        "/files/%2e%2e/secret",
        "/files/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/files/a/../../secret",
        "/files/a%00b",
        "/files/..%5csecret",
    ],
)
def test_safe_path_refuses_escapes(port, target):
    resp = get(port, target)
    assert resp.status == 403
    assert b"hello" not in resp.body


def test_safe_path_serves_inside_the_root(port):
    assert get(port, "/files/hello.txt").body == b"hello file\n"
    assert get(port, "/files/./hello.txt").body == b"hello file\n"
    assert get(port, "/files/%68ello.txt").body == b"hello file\n"
    assert get(port, "/files/missing.txt").status == 404


# -- response constructors -------------------------------------------------------------------------------
def test_redirects_carry_location(port):
    resp = get(port, "/redirect")
    assert (resp.status, resp.reason, resp.header("location")) == (303, "See Other", "/elsewhere")
    resp = get(port, "/moved")
    assert (resp.status, resp.header("location")) == (301, "https://example.org/new")
    assert resp.header("content-length") == "0"


def test_error_constructors_carry_their_fields(port):
    unauthorized = get(port, "/unauthorized")
    assert unauthorized.status == 401
    assert unauthorized.header("www-authenticate") == 'Bearer realm="tests"'
    not_allowed = get(port, "/only-post")
    assert not_allowed.status == 405
    assert not_allowed.header("allow") == "POST, OPTIONS"
    unavailable = get(port, "/unavailable")
    assert unavailable.status == 503
    assert unavailable.header("retry-after") == "120"
    created = get(port, "/created")
    assert (created.status, created.header("location"), created.body) == (201, "/things/1", b"made\n")
    assert get(port, "/nope").status == 404
    assert json.loads(get(port, "/json").body) == {"ok": True, "n": [1, 2]}


def test_204_has_no_body_and_no_length(port):
    with RawClient(port) as client:
        client.send(http11("GET", "/no-content") + http11("GET", "/"))
        resp = client.read_response()
        assert resp.status == 204
        assert resp.header("content-length") is None
        assert resp.header("transfer-encoding") is None
        assert client.read_response().body == b"Hello world\n"  # nothing was sent between them


def test_date_and_server_headers(port):
    before = time.time()
    resp = get(port, "/")
    assert resp.header("server") == "ehttpd"
    date = resp.header("date")
    assert date.endswith(" GMT")
    assert before - 2 <= parsedate_to_datetime(date).timestamp() <= time.time() + 2
    assert len(resp.header_all("date")) == 1


def test_handler_server_header_is_not_doubled(port):
    resp = get(port, "/custom-server")
    assert resp.header_all("server") == ["custom/1.0"]


# -- failures ------------------------------------------------------------------------------------------
def test_system_exit_from_a_handler_answers_500_and_keeps_every_thread(server, port):
    for _ in range(10):  # more than the server's threads: a thread lost to each would wedge it
        with RawClient(port) as client:
            assert client.request("GET", "/exit").status == 500
    assert get(port, "/").status == 200
    deadline = time.monotonic() + 3
    while "SystemExit: 2" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SystemExit: 2" in server.log()


def test_raising_handler_gives_500_and_logs_the_traceback(server, port):
    with RawClient(port) as client:
        resp = client.request("GET", "/boom")
        assert resp.status == 500
        assert b"Traceback" not in resp.body
        assert b"secret-detail" not in resp.body
        assert b"RuntimeError" not in resp.body
        # The connection itself is fine: the next request on it is served.
        assert client.request("GET", "/").status == 200
    assert get(port, "/").body == b"Hello world\n"  # and on a new connection
    deadline = time.monotonic() + 3
    while "secret-detail-for-the-log-only" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: secret-detail-for-the-log-only" in log


@pytest.mark.parametrize("reset", [False, True])
def test_client_disconnecting_mid_body_does_not_harm_the_worker(port, reset):
    for _ in range(THREADS * 2):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(http11("POST", "/echo", "Content-Length: 100000", body=b"z" * 1000))
        if reset:  # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    # Every pool thread must be free again: more parallel requests than threads all complete.
    clients = [RawClient(port) for _ in range(THREADS * 2)]
    try:
        for c in clients:
            c.send(http11("POST", "/echo", "Content-Length: 2", body=b"ok"))
        assert [c.read_response().body for c in clients] == [b"ok"] * len(clients)
    finally:
        for c in clients:
            c.close()


def test_client_disconnecting_before_reading_a_large_response(port):
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(http11("GET", "/stream?n=200000"))
        sock.recv(100)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert get(port, "/").status == 200


# -- handler mistakes ------------------------------------------------------------------------------------
def test_handler_returning_something_else_is_a_500(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/not-a-response")
        assert resp.status == 500
        assert b"str" not in resp.body
        assert client.request("GET", "/").status == 200


@pytest.mark.parametrize(
    "target",
    [
        "/bad-header",
        "/bad-header-name",
        "/not-latin1-header",
        "/bad-reason",  # CR LF in the reason phrase
        "/bad-header-token",  # "Content-Length " is not a token: a second Content-Length to some parsers
        "/nul-header",
        "/status-103",  # a 1xx cannot end a response: the client would wait for the final one
    ],
)
def test_invalid_response_head_is_a_500_not_a_smuggled_field(server, port, target):
    with RawClient(port) as client:
        resp = client.request("GET", target)
        assert resp.status == 500
        assert resp.closes
        assert resp.header("injected") is None
        assert resp.header("x-bad") is None
        assert resp.header("x-name") is None
        assert client.closed_by_server()
    assert "invalid response from the application" in server.log()


def test_stream_failing_midway_ends_the_connection_without_a_complete_body(port):
    with RawClient(port) as client:
        client.send(http11("GET", "/stream-fail"))
        head = client.read_head()
        assert head.status == 200
        assert head.header("transfer-encoding") == "chunked"
        with pytest.raises(ConnectionError):
            client._chunked()  # no last chunk ever comes: the client can tell the body is incomplete
    assert get(port, "/").status == 200


def test_body_shorter_than_its_content_length_closes(port):
    with RawClient(port) as client:
        client.send(http11("GET", "/short-body"))
        head = client.read_head()
        assert head.header("content-length") == "100"
        with pytest.raises(ConnectionError):
            client._take(100)
    assert get(port, "/").status == 200


def test_file_parts_in_a_streamed_body_are_chunk_framed(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/file-parts")
        assert resp.chunked
        assert resp.body == b"<hello file\n|ell>"
        assert client.request("GET", "/").body == b"Hello world\n"  # the stream stayed in sync
    client_10 = RawClient(port)
    try:
        client_10.send(b"GET /file-parts HTTP/1.0\r\n\r\n")
        assert client_10.read_response().body == b"<hello file\n|ell>"  # close-delimited on 1.0
    finally:
        client_10.close()


def test_client_half_close_after_its_requests_still_gets_the_answers(port):
    with RawClient(port) as client:
        client.send(http11("GET", "/info/1") + http11("GET", "/info/2") + b"GET /inc")
        client.sock.shutdown(socket.SHUT_WR)  # like `nc -N`: done sending, still reading
        assert json.loads(client.read_response().body)["path"] == "/info/1"
        assert json.loads(client.read_response().body)["path"] == "/info/2"
        assert client.closed_by_server()
