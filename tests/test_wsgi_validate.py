"""End-to-end: wsgiref.validate.validator wraps the test application inside a real server process.

Every request below goes through the validator, which checks the environ, wsgi.input, wsgi.errors,
start_response, write() and the iterable protocol (close() called, bytes only) on the server's side; its
warnings are errors. Anything it finds raises in the worker and is logged, so the test reads the log: only
the canary route (which breaks the rules on purpose) may appear there.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from .helpers import ServerProcess
from .httpraw import RawClient, exchange


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = tmp_path_factory.mktemp("validate")
    (files / "data.bin").write_bytes(os.urandom(200_000))
    env = {"EHTTPD_TEST_RECORD": str(files), "EHTTPD_TEST_FILE": str(files / "data.bin")}
    # The validator's lint_app takes *args, so the interface is named rather than detected.
    args = ("--interface", "wsgi", "--workers", "1", "--threads", "4")
    srv = ServerProcess("wsgi_app:validated", *args, env=env)
    with srv:
        yield srv


def exercise(port: int) -> None:
    """Every well-behaved route, with the request shapes a server must handle."""
    with RawClient(port) as c:
        env = json.loads(c.request("GET", "/environ/caf%C3%A9?x=1", {"X-A": "1", "Cookie": "k=v"}).body)
        assert env["PATH_INFO"] == "/environ/caf\xc3\xa9"
        assert c.request("POST", "/echo", body=b"z" * 100_000).body == b"z" * 100_000
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
        assert c.read_response().body == b"abcd"
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        assert c.read_head().status == 100
        c.send(b"xyz")
        assert c.read_response().body == b"xyz"
        assert json.loads(c.request("POST", "/lines", body=b"a\nbcdef\ng\nh").body)[0] == "a\n"
        assert json.loads(c.request("POST", "/readlines", body=b"1\n2\n").body) == ["1\n", "2\n"]
        assert c.request("GET", "/stream?n=3").body.count(b"\n") == 3
        assert c.request("HEAD", "/stream").body == b""
        assert c.request("GET", "/lazy").body == b"lazy body"
        assert c.request("GET", "/multi").body == b"one two three"
        assert c.request("GET", "/empty").body == b""
        assert c.request("GET", "/nocontent").status == 204
        assert c.request("GET", "/write").body == b"written twice then returned"
        assert c.request("GET", "/write-length").body == b"0123456789"
        assert len(c.request("GET", "/file").body) == 200_000
        assert len(c.request("GET", "/file?offset=10").body) == 200_000 - 10
        assert c.request("GET", "/filelike").body == b"abc" * 10000
        assert c.request("GET", "/exc-info").status == 503
        assert c.request("GET", "/errors").body == b"logged"
        assert c.request("GET", "/head").status == 200
        assert c.request("HEAD", "/head").body == b""
        assert c.request("GET", "/cookie", {"Cookie": "a=1"}).body == b"a=1"
        assert len(c.request("GET", "/closed?id=v&n=2").body) == 2 * 16384
        assert c.request("POST", "/unread", body=b"never read").status == 200
    (resp,), closed = exchange(port, b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    assert resp.body == b"part 0\npart 1\n" and closed


def problems(log: str) -> list[str]:
    """Log lines above INFO (and any unformatted output, such as a traceback or "Exception ignored"),
    except what /errors wrote on purpose."""
    expected = ("message to wsgi.errors", "line one", "line two")
    return [
        line
        for line in log.splitlines()
        if line.strip()
        and not re.match(r"\[[^]]*\] \[\d+\] \[(DEBUG|INFO)\] ", line)
        and not any(e in line for e in expected)
    ]


def test_validator_finds_nothing_wrong(server):
    for _ in range(2):  # a second round runs on warm caches and reused threads
        exercise(server.port)
    time.sleep(0.3)  # iterables are checked for close() when collected, right after each response
    assert problems(server.log()) == []


def test_the_validator_is_really_checking(server):
    """The canary breaks PEP 3333 (read() without a size): its error must show up in the log."""
    resp = RawClient(server.port).request("POST", "/canary", body=b"abc")
    assert resp.status == 500
    deadline = time.monotonic() + 5
    while "application failed on POST /canary" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The traceback ends in the validator's wsgi.input wrapper refusing read() without a size.
    assert re.search(r"validate\.py\", line \d+, in read\n +assert_\(len\(args\) == 1\)", server.log())
