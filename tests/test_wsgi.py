"""End-to-end: WSGI (PEP 3333) on the ehttpd engine, against a real server process over real sockets.

The application is tests/apps/wsgi_app.py. Covered: the environ (PATH_INFO decoding, SCRIPT_NAME from
--root-path, header mapping), wsgi.input (read, readline, iteration, chunked, 100-continue), framing
chosen from what the application gives, HEAD, write(), wsgi.file_wrapper, exc_info, errors before and
after the response started, wrong Content-Lengths, invalid status and headers, and close() always called.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import socket
import time
from pathlib import Path

import pytest

from ehttpd.request import split_target

from .helpers import ServerProcess
from .httpraw import RawClient, exchange

FILE_SIZE = 1 << 20


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("record")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(os.urandom(FILE_SIZE))
    return path


@pytest.fixture(scope="module")
def server(record, data_file):
    env = {"EHTTPD_TEST_RECORD": str(record), "EHTTPD_TEST_FILE": str(data_file)}
    srv = ServerProcess("wsgi_app:app", "--workers", "1", "--threads", "4", env=env)
    with srv:
        yield srv


def environ_of(port: int, target: str = "/environ", headers: dict | None = None, **kw) -> dict:
    with RawClient(port) as client:
        resp = client.request(kw.pop("method", "GET"), target, headers, **kw)
        assert resp.status == 200, resp
        data = json.loads(resp.body)
        data["_local_port"] = client.local_port
        return data


def rest_until_close(client: RawClient, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not close)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client._fill():
            return bytes(client.buf)
    raise AssertionError("the server kept the connection open")


def wait_for(path: Path, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


def wait_for_log(server: ServerProcess, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server log:\n{server.log()[-3000:]}")


# -- the environ ----------------------------------------------------------------------------------------
def test_environ_has_the_cgi_and_wsgi_keys(port):
    env = environ_of(port, "/environ?a=1&b=two")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=two"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(port))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(env["_local_port"]))
    assert env["HTTP_HOST"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.errors.type"] == "ErrorStream"
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env


def test_path_info_is_percent_decoded_as_latin1_and_raw_uri_keeps_the_encoding(port):
    target = "/environ/a%2Fb/caf%C3%A9/%25?q=%2F%C3%A9"
    env = environ_of(port, target)
    assert env["PATH_INFO"] == "/environ/a/b/caf\xc3\xa9/%"  # UTF-8 bytes carried as latin-1 (PEP 3333)
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/environ/a/b/café/%"
    assert env["RAW_URI"] == env["REQUEST_URI"] == target  # %2F stays distinguishable from /
    assert env["QUERY_STRING"] == "q=%2F%C3%A9"  # the query string is not decoded


def test_absolute_form_target_gives_its_path_and_its_host(port):
    env = environ_of(port, "http://example.com/environ/x?y=1", {"Host": "evil.example"})
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/environ/x", "y=1")
    assert env["HTTP_HOST"] == "example.com"  # RFC 9112 §3.2.2: Host is ignored for the target's authority
    env = environ_of(port, "HTTP://example.com:8080/environ", {"Host": "evil.example"})
    assert env["HTTP_HOST"] == "example.com:8080"


@pytest.mark.parametrize(
    ("target", "parts"),
    [
        ("http://h.example:1/p/q?y=1", ("/p/q", "y=1", "h.example:1")),
        ("http://h.example:1?y=/1", ("/", "y=/1", "h.example:1")),
        ("https://h.example", ("/", "", "h.example")),
        ("*", ("", "", "")),
        ("h.example:443", ("", "", "")),  # CONNECT's authority-form names a tunnel, not this host
    ],
)
def test_split_target(target, parts):
    assert split_target(target) == parts


def test_a_fragment_in_the_target_is_dropped(port):
    env = environ_of(port, "/environ/x?y=1#frag")
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["RAW_URI"]) == ("/environ/x", "y=1", "/environ/x?y=1")
    assert environ_of(port, "/environ#frag?z")["QUERY_STRING"] == ""


def test_header_fields_map_to_http_keys_underscores_dropped_repeats_joined(port):
    raw = (
        b"POST /environ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: good\r\nX_User: evil\r\nX-Rep: a\r\n"
        b"Accept: text/html\r\nX-Rep: b\r\nX-Rep: a\r\nAccept: application/json\r\nCookie: a=1\r\n"
        b"Cookie: b=2\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
    )
    with RawClient(port) as client:
        client.send(raw)
        env = json.loads(client.read_response().body)
    assert env["HTTP_X_USER"] == "good"  # X_User neither overwrote nor joined X-User
    assert not any("evil" in str(v) for v in env.values())
    assert env["HTTP_X_REP"] == "a, b, a"
    assert env["HTTP_ACCEPT"] == "text/html, application/json"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("text/plain", "3")
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_root_path_is_script_name_and_stripped_from_path_info(record, data_file):
    env_vars = {"EHTTPD_TEST_RECORD": str(record), "EHTTPD_TEST_FILE": str(data_file)}
    args = ("--workers", "1", "--threads", "2", "--root-path", "/mount")
    with ServerProcess("wsgi_app:app", *args, env=env_vars) as srv:
        env = environ_of(srv.port, "/mount/environ/x%2Fy")
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mount", "/environ/x/y")
        other = environ_of(srv.port, "/environ")  # not under the root: left alone
        assert (other["SCRIPT_NAME"], other["PATH_INFO"]) == ("/mount", "/environ")


# -- wsgi.input -----------------------------------------------------------------------------------------
def test_input_with_content_length_is_streamed_to_the_app(port):
    body = os.urandom(300_000)
    with RawClient(port) as client:
        resp = client.request("POST", "/echo", body=body)
        assert (resp.status, resp.body) == (200, body)
        again = client.request("GET", "/environ")  # the connection is still in sync
        assert again.status == 200


def test_chunked_upload_is_decoded_and_has_no_content_length(port):
    parts = [os.urandom(n) for n in (1, 5000, 70000, 3)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with RawClient(port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        resp = client.read_response()
        assert (resp.status, resp.body) == (200, b"".join(parts))
        client.send(
            b"POST /environ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        env = json.loads(client.read_response().body)
        assert "CONTENT_LENGTH" not in env and env["HTTP_TRANSFER_ENCODING"] == "chunked"


def test_input_readline_read_iteration_and_readlines(port):
    body = b"first line\nsecond line\nthird\nfourth\nlast"
    with RawClient(port) as client:
        pieces = json.loads(client.request("POST", "/lines", body=body).body)
    # readline(), readline(3), readline(), read(2), then iteration, read(5) past the end, readlines().
    assert pieces == [
        "first line\n",
        "sec",
        "ond line\n",
        "th",
        "ird\n",
        "fourth\n",
        "last",
        "",
    ]
    with RawClient(port) as client:
        lines = json.loads(client.request("POST", "/readlines", body=b"a\nb\n\nc").body)
    assert lines == ["a\n", "b\n", "\n", "c"]


def test_100_continue_is_sent_on_the_first_read_only(port):
    with RawClient(port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = client.read_head()
        assert interim.status == 100
        client.send(b"hello")
        resp = client.read_response()
        assert (resp.status, resp.body) == (200, b"hello")
    with RawClient(port) as client:  # an app that never reads: no 100, and the unsent body means close
        client.send(b"POST /unread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        resp = client.read_response(skip_1xx=False)
        assert resp.status == 200 and resp.closes


def test_no_100_continue_once_the_response_has_started(port):
    # The app sends its head with write() before it reads the body: a 100 then would land inside the 200's
    # body. The client, given a final status, sends the body anyway (as curl does after its wait).
    with RawClient(port) as client:
        client.send(
            b"POST /write-then-read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        head = client.read_head()
        assert head.status == 200
        client.send(b"hello")
        client.buf += b"".join(iter(lambda: client.sock.recv(65536), b""))  # until the server closes
        assert b"100 Continue" not in client.buf
        assert client.buf == b"8\r\nstarted;\r\n6\r\nread 5\r\n0\r\n\r\n"
        assert head.closes  # the body was not read when the head went out


def test_unread_small_body_is_drained_and_the_connection_kept(port):
    with RawClient(port) as client:
        assert client.request("POST", "/unread", body=b"x" * 1000).status == 200
        assert client.request("POST", "/echo", body=b"next").body == b"next"


def test_malformed_chunked_body_read_by_the_app_is_a_400(server, port):
    with RawClient(port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        resp = client.read_response()
        assert resp.status == 400 and resp.closes
        assert client.closed_by_server()
    time.sleep(0.2)
    assert "failed on POST /echo" not in server.log()  # a client's fault, not an application error


# -- framing --------------------------------------------------------------------------------------------
def test_generator_is_chunked_on_http11_and_keeps_the_connection(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/stream?n=3")
        assert resp.chunked and resp.header("content-length") is None
        assert resp.body == b"part 0\npart 1\npart 2\n"
        assert client.request("GET", "/stream?n=1").body == b"part 0\n"


def test_generator_is_close_delimited_on_http10(port):
    (resp,), closed = exchange(port, b"GET /stream?n=4 HTTP/1.0\r\n\r\n")
    assert resp.header("content-length") is None and resp.header("transfer-encoding") is None
    assert resp.closes and closed
    assert resp.body == b"part 0\npart 1\npart 2\npart 3\n"


def test_single_chunk_gets_its_content_length_and_keeps_http10_alive(port):
    with RawClient(port) as client:
        client.send(b"GET /head HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = client.read_response()
        assert resp.header("content-length") == "28" and resp.header("connection") == "keep-alive"
        client.send(b"GET /stream?n=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")  # same connection
        assert client.read_response().body == b"part 0\n"


def test_list_of_chunks_empty_body_and_204(port):
    with RawClient(port) as client:
        multi = client.request("GET", "/multi")
        assert (multi.status, multi.header("content-length"), multi.body) == (201, "13", b"one two three")
        empty = client.request("GET", "/empty")
        assert (empty.header("content-length"), empty.body) == ("0", b"")
        nocontent = client.request("GET", "/nocontent")
        assert nocontent.status == 204 and nocontent.header("content-length") is None
        assert client.request("GET", "/lazy").body == b"lazy body"


def test_head_sends_no_body_and_the_connection_stays_in_sync(port):
    with RawClient(port) as client:
        head = client.request("HEAD", "/head")
        assert head.status == 200 and head.header("content-length") == "28" and head.body == b""
        streamed = client.request("HEAD", "/stream")
        assert streamed.status == 200 and streamed.body == b""
        after = client.request("GET", "/head")
        assert after.body == b"body that HEAD must not send"


def test_pipelined_requests_are_answered_in_order(port):
    raw = b"".join(b"GET /stream?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in (1, 2, 3))
    with RawClient(port) as client:
        client.send(raw)
        assert [client.read_response().body.count(b"\n") for _ in range(3)] == [1, 2, 3]
        assert client.request("GET", "/empty").status == 200  # and the connection is still open


def test_write_callable_streams_before_the_iterable(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/write")
        assert resp.chunked and resp.body == b"written twice then returned"
        sized = client.request("GET", "/write-length")
        assert (sized.header("content-length"), sized.body) == ("10", b"0123456789")
        head = client.request("HEAD", "/write")
        assert head.status == 200 and head.body == b""
        assert client.request("GET", "/empty").status == 200  # still in sync
    (resp,), closed = exchange(port, b"GET /write HTTP/1.0\r\n\r\n")  # close-delimited on HTTP/1.0
    assert resp.header("content-length") is None and resp.closes and closed
    assert resp.body == b"written twice then returned"


def test_write_from_inside_the_iterable_goes_into_the_same_body(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/write-in-iter")
        assert resp.chunked and resp.body == b"yielded written yielded again"
        assert client.request("GET", "/empty").status == 200  # one head, and the stream still in sync


def test_write_past_a_filled_content_length_sends_nothing_more_and_closes(server, port):
    (resp,), closed = exchange(port, b"GET /write-past-length HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (resp.header("content-length"), resp.body) == ("5", b"01234")
    assert closed  # and nothing after the body: no second head
    wait_for_log(server, "write() after the response's whole Content-Length was sent")


def test_write_of_a_memoryview_counts_its_bytes(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/write-memoryview")
        assert resp.chunked and resp.body == array.array("i", [1, 2, 3]).tobytes()
        assert client.request("GET", "/empty").status == 200


def test_head_of_a_streamed_response_sends_no_content_length(port):
    # RFC 9110 §8.6: a Content-Length on HEAD must be what GET would send; an empty body does not say.
    with RawClient(port) as client:
        for target in ("/head-stream", "/head-stream?gen=1"):
            head = client.request("HEAD", target)
            assert head.status == 200 and head.body == b"", target
            assert head.header("content-length") is None, (target, head)
        get = client.request("GET", "/head-stream")
        assert get.chunked and get.body == b"line 0\nline 1\nline 2\n"
    (head,), closed = exchange(port, b"HEAD /head-stream HTTP/1.0\r\n\r\n", method="HEAD")
    assert head.header("content-length") is None and closed


def test_system_exit_from_the_application_answers_500_and_keeps_every_thread(server, port):
    for _ in range(6):  # more than the server's 4 threads: a thread lost to each would wedge it
        (resp,), closed = exchange(port, b"GET /exit HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.status == 500 and not closed
    assert environ_of(port)["REQUEST_METHOD"] == "GET"
    wait_for_log(server, "SystemExit: 2")


def test_exc_info_replaces_the_response_before_it_started(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/exc-info")
        assert (resp.status, resp.body) == (503, b"replaced")


def test_wsgi_errors_go_to_the_error_log(server, port):
    with RawClient(port) as client:
        assert client.request("GET", "/errors").body == b"logged"
    log = wait_for_log(server, "message to wsgi.errors")
    assert "line one" in log and "line two" in log


# -- wsgi.file_wrapper ----------------------------------------------------------------------------------
def test_file_wrapper_sends_the_file(port, data_file):
    data = data_file.read_bytes()
    with RawClient(port) as client:
        whole = client.request("GET", "/file")
        assert whole.header("content-length") == str(FILE_SIZE)
        assert hashlib.sha256(whole.body).digest() == hashlib.sha256(data).digest()
        part = client.request("GET", "/file?offset=1000&length=5000")
        assert part.header("content-length") == "5000" and part.body == data[1000:6000]
        tail = client.request("GET", f"/file?offset={FILE_SIZE - 10}")
        assert tail.body == data[-10:]
        filelike = client.request("GET", "/filelike")
        assert filelike.body == b"abc" * 10000


def test_file_wrapper_over_a_gzip_file_sends_what_read_gives(port):
    with RawClient(port) as client:
        resp = client.request("GET", "/file-gzip?id=gzip")
        assert resp.status == 200 and resp.body == b"what read() gives, not the compressed bytes\n" * 200


def test_file_wrapper_shorter_than_declared_closes(server, port, data_file):
    with RawClient(port) as client:
        client.send(f"GET /file?offset={FILE_SIZE - 10}&length=20 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert client.read_head().header("content-length") == "20"
        assert rest_until_close(client) == data_file.read_bytes()[-10:]
    wait_for_log(server, "shorter than its Content-Length 20")


# -- application errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/raise-before", "boom before start_response"),
        ("/raise-after", "boom after start_response"),
        ("/upstream-reset", "the upstream service reset the connection"),
        ("/no-start", "without calling start_response"),
        ("/twice", "start_response() called a second time"),
        ("/str-body", "not bytes"),
        ("/bad-header?kind=newline", "invalid value for response header 'X-Bad'"),
        ("/bad-header?kind=name", "invalid response header name 'Bad Name'"),
        ("/bad-header?kind=hop", "hop-by-hop header 'Connection'"),
        ("/bad-header?kind=te", "hop-by-hop header 'Transfer-Encoding'"),
        ("/bad-header?kind=type", "is not a str"),
        ("/bad-header?kind=length", "invalid Content-Length 'ten'"),
        ("/bad-header?kind=unicode", "invalid value for response header 'X-Bad'"),
        ("/bad-header?kind=notlist", "must be a list"),
        ("/bad-status?kind=text", "invalid status 'OK'"),
        ("/bad-status?kind=short", "invalid status '20 OK'"),
        ("/bad-status?kind=info", "informational status"),
    ],
)
def test_app_errors_before_the_response_started_give_500_and_a_log_line(server, port, target, logged):
    with RawClient(port) as client:
        resp = client.request("GET", target)
        assert resp.status == 500 and b"should not be sent" not in resp.body
        assert b"Traceback" not in resp.body and b"Injected" not in resp.body
        assert client.request("GET", "/empty").status == 200  # the connection is still usable
    wait_for_log(server, logged)


def test_app_error_after_the_response_started_closes_the_connection(server, port):
    with RawClient(port) as client:
        client.send(b"GET /raise-in-iter HTTP/1.1\r\nHost: x\r\n\r\n")
        head = client.read_head()
        assert head.status == 200 and head.header("transfer-encoding") == "chunked"
        # The first chunk, then the close: no terminating chunk, so the client knows it is truncated.
        assert rest_until_close(client) == b"c\r\nfirst chunk \r\n"
    wait_for_log(server, "boom in the iterable")


def test_content_length_longer_than_the_body_sent_closes_and_logs(server, port):
    with RawClient(port) as client:
        client.send(b"GET /short HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        assert client.read_head().header("content-length") == "10"
        assert rest_until_close(client) == b"01234"  # 5 bytes, then the server closes
    wait_for_log(server, "shorter than its Content-Length 10")


@pytest.mark.parametrize("target", ["/long", "/long-iter"])
def test_content_length_longer_than_declared_is_cut_and_closes(server, port, target):
    with RawClient(port) as client:
        client.send(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".encode())
        resp = client.read_response()
        assert (resp.header("content-length"), resp.body) == ("5", b"01234")
        assert client.closed_by_server()  # no desynced keep-alive: the extra bytes never go out
    wait_for_log(server, "longer than its Content-Length")


# -- close() --------------------------------------------------------------------------------------------
def test_close_is_called_after_normal_and_head_responses(port, record):
    with RawClient(port) as client:
        assert client.request("GET", "/closed?id=normal&n=3").body == b"x" * 3 * 16384
        assert client.request("HEAD", "/closed?id=head").body == b""
    assert wait_for(record / "normal.closed") and wait_for(record / "head.closed")


def test_close_is_called_when_the_client_goes_away_mid_stream(port, record):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(b"GET /forever?id=gone HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        while received < 100_000:
            received += len(sock.recv(65536))
    finally:
        sock.close()
    assert wait_for(record / "gone.closed")
