"""A plain WSGI application for the end-to-end tests of ehttpd/wsgi.py, one route per behaviour.

`app` is the raw application (it also misbehaves on purpose on some routes); `validated` wraps the
well-behaved routes in wsgiref.validate.validator with its warnings turned into errors, so any breach of
PEP 3333 by the server raises in the worker and shows in its log.

Routes that record something (close() calls, what was read) write a file named by the `id` query
parameter into the directory in $EHTTPD_TEST_RECORD, for the test to read.
"""

from __future__ import annotations

import array
import gzip
import json
import os
import sys
import time
import warnings
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

RECORD = Path(os.environ.get("EHTTPD_TEST_RECORD", "/tmp"))
FILE = os.environ.get("EHTTPD_TEST_FILE", "")
GZIPPED_TEXT = b"what read() gives, not the compressed bytes\n" * 200


def record(environ, what: str) -> None:
    ident = parse_qs(environ.get("QUERY_STRING", "")).get("id", ["x"])[0]
    with open(RECORD / f"{ident}.{what}", "a") as f:
        f.write(what + "\n")


def query(environ, name: str, default: str = "") -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def text(start_response, body: bytes, status: str = "200 OK", extra=()):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *extra])
    return [body]


class Recorded:
    """A response iterable that records close(); `forever` keeps streaming until the client goes away."""

    def __init__(self, environ, count: int, delay: float = 0.0) -> None:
        self.environ = environ
        self.count = count
        self.delay = delay

    def __iter__(self):
        i = 0
        while self.count < 0 or i < self.count:
            if self.delay:
                time.sleep(self.delay)
            yield b"x" * 16384
            i += 1

    def close(self) -> None:
        record(self.environ, "closed")


# -- well-behaved routes (also served under the validator) ----------------------------------------------
def r_environ(environ, start_response):
    """The str-valued environ and a few facts about the wsgi.* values, as JSON."""
    data = {k: v for k, v in environ.items() if isinstance(v, str)}
    data["wsgi.version"] = list(environ["wsgi.version"])
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        data[key] = environ.get(key)
    data["wsgi.errors.type"] = type(environ["wsgi.errors"]).__name__
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def r_echo(environ, start_response):
    """The request body, read with read(n) until b"" (works for chunked bodies without CONTENT_LENGTH)."""
    stream = environ["wsgi.input"]
    parts = []
    while chunk := stream.read(65536):
        parts.append(chunk)
    assert stream.read(10) == b""  # past the end
    return text(start_response, b"".join(parts))


def r_lines(environ, start_response):
    """Reads the body with readline, readline(n), read(n), iteration and readlines, reports the pieces."""
    stream = environ["wsgi.input"]
    pieces = [stream.readline(), stream.readline(3), stream.readline(), stream.read(2)]
    pieces += list(stream)
    pieces.append(stream.read(5))
    pieces += stream.readlines()
    body = json.dumps([p.decode("latin-1") for p in pieces]).encode()
    return text(start_response, body)


def r_readlines(environ, start_response):
    lines = environ["wsgi.input"].readlines()
    return text(start_response, json.dumps([line.decode() for line in lines]).encode())


def r_stream(environ, start_response):
    """A generator response without Content-Length: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
    count = int(query(environ, "n", "5"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (f"part {i}\n".encode() for i in range(count))


def r_lazy(environ, start_response):
    """start_response called from inside the generator, at its first iteration (PEP 3333 allows it)."""

    def body():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b""
        yield b"lazy "
        yield b"body"

    return body()


def r_multi(environ, start_response):
    """A list of several chunks and no Content-Length: the server can add it."""
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Multi", "yes")])
    return [b"one ", b"", b"two ", b"three"]


def r_empty(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


def r_nocontent(environ, start_response):
    start_response("204 No Content", [])
    return []


def r_write(environ, start_response):
    """The imperative write() callable, then more chunks from the iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    write(b"")
    write(b"twice ")
    return [b"then returned"]


def r_write_in_iter(environ, start_response):
    """write() called while the server iterates the returned iterable: it goes into the same body."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"yielded "
        write(b"written ")
        yield b"yielded again"

    return body()


def r_head_stream(environ, start_response):
    """As Werkzeug answers HEAD on a streamed response: no Content-Length and an empty body (a tuple, or
    an empty generator with ?gen=1)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["REQUEST_METHOD"] == "HEAD":
        return iter(()) if query(environ, "gen") else ()
    return (b"line %d\n" % i for i in range(3))


def r_file_gzip(environ, start_response):
    """wsgi.file_wrapper over gzip.open(): its fileno() is the compressed file's, its read() decompresses."""
    path = RECORD / (query(environ, "id", "x") + ".gz")
    with gzip.open(path, "wb") as f:
        f.write(GZIPPED_TEXT)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](gzip.open(path, "rb"), 8192)


def r_write_length(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    write(b"01234")
    write(b"56789")
    return []


def r_file(environ, start_response):
    """wsgi.file_wrapper over a real file (sent with os.sendfile), from an offset when asked."""
    f = open(FILE, "rb")  # noqa: SIM115 - the server closes it through the wrapper
    offset = int(query(environ, "offset", "0"))
    f.seek(offset)
    headers = [("Content-Type", "application/octet-stream")]
    if query(environ, "length"):
        headers.append(("Content-Length", query(environ, "length")))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)


def r_filelike(environ, start_response):
    """wsgi.file_wrapper over something that is not a file: the server iterates it."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](BytesIO(b"abc" * 10000), 4096)


def r_exc_info(environ, start_response):
    """An error caught before anything was sent: start_response again with exc_info replaces the head."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise RuntimeError("caught")
    except RuntimeError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced"]


def r_errors(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("message to wsgi.errors\n")
    errors.writelines(["line one\n", "line two\n"])
    errors.flush()
    return text(start_response, b"logged")


def r_head(environ, start_response):
    """Sends a body on HEAD too: the server must drop it."""
    return text(start_response, b"body that HEAD must not send")


def r_cookie(environ, start_response):
    return text(start_response, environ.get("HTTP_COOKIE", "").encode())


# -- misbehaving routes (only in `app`) -----------------------------------------------------------------
def r_upstream_reset(environ, start_response):
    """The application's own connection (a database, an API) was reset: its error, not the client's."""
    raise ConnectionResetError("the upstream service reset the connection")


def r_exit(environ, start_response):
    """SystemExit, as argparse raises inside a request: not an Exception, yet no reason to lose a thread."""
    raise SystemExit(2)


def r_write_past_length(environ, start_response):
    """The first chunk fills the declared Content-Length, then the iterable calls write()."""
    write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])

    def body():
        yield b"01234"
        write(b"extra")

    return body()


def r_write_memoryview(environ, start_response):
    """write() with a memoryview of 4-byte items: its length in bytes is not len()."""
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    write(memoryview(array.array("i", [1, 2, 3])))
    return []


def r_raise_before(environ, start_response):
    raise RuntimeError("boom before start_response")


def r_raise_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise RuntimeError("boom after start_response")


def r_raise_in_iter(environ, start_response):
    def body():
        yield b"first chunk "
        raise RuntimeError("boom in the iterable")

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


def r_short(environ, start_response):
    """Declares 10 bytes, sends 5 (in a generator, so nothing can be known in advance)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return iter([b"01234"])


def r_long(environ, start_response):
    """Declares 5 bytes, sends 10 in one chunk."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"0123456789"]


def r_long_iter(environ, start_response):
    """Declares 5 bytes; the first chunk fills it, the second is too much."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return iter([b"01234", b"56789"])


def r_bad_header(environ, start_response):
    kind = query(environ, "kind")
    headers = {
        "newline": [("X-Bad", "a\r\nInjected: yes")],
        "name": [("Bad Name", "x")],
        "hop": [("Connection", "close")],
        "te": [("Transfer-Encoding", "chunked")],
        "type": [("X-Bad", 5)],
        "length": [("Content-Length", "ten")],
        "unicode": [("X-Bad", "\u20ac")],
        "notlist": (("X-Bad", "x"),),
    }[kind]
    start_response("200 OK", headers)
    return [b"should not be sent"]


def r_bad_status(environ, start_response):
    start_response({"text": "OK", "short": "20 OK", "info": "101 Switching"}[query(environ, "kind")], [])
    return [b"should not be sent"]


def r_twice(environ, start_response):
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [b"should not be sent"]


def r_no_start(environ, start_response):
    return [b"no start_response"]


def r_str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def r_forever(environ, start_response):
    """Streams until the client disconnects; close() is recorded."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(environ, -1, delay=0.01)


def r_closed(environ, start_response):
    """A finite recorded iterable (close() must be called after a normal response too)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(environ, int(query(environ, "n", "2")))


def r_write_then_read(environ, start_response):
    """Starts its response with write(), then reads the request body and sends its length."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"started;")
    data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return [b"read %d" % len(data)]


def r_unread(environ, start_response):
    """Does not read the request body at all."""
    return text(start_response, b"ignored your body")


ROUTES = {
    "/environ": r_environ,
    "/echo": r_echo,
    "/lines": r_lines,
    "/readlines": r_readlines,
    "/stream": r_stream,
    "/lazy": r_lazy,
    "/multi": r_multi,
    "/empty": r_empty,
    "/nocontent": r_nocontent,
    "/write": r_write,
    "/write-length": r_write_length,
    "/write-in-iter": r_write_in_iter,
    "/head-stream": r_head_stream,
    "/file-gzip": r_file_gzip,
    "/file": r_file,
    "/filelike": r_filelike,
    "/exc-info": r_exc_info,
    "/errors": r_errors,
    "/head": r_head,
    "/cookie": r_cookie,
    "/closed": r_closed,
    "/unread": r_unread,
    "/write-then-read": r_write_then_read,
}
MISBEHAVING = {
    "/raise-before": r_raise_before,
    "/exit": r_exit,
    "/upstream-reset": r_upstream_reset,
    "/write-past-length": r_write_past_length,
    "/write-memoryview": r_write_memoryview,
    "/raise-after": r_raise_after,
    "/raise-in-iter": r_raise_in_iter,
    "/short": r_short,
    "/long": r_long,
    "/long-iter": r_long_iter,
    "/bad-header": r_bad_header,
    "/bad-status": r_bad_status,
    "/twice": r_twice,
    "/no-start": r_no_start,
    "/str-body": r_str_body,
    "/forever": r_forever,
}


def route(routes):
    def application(environ, start_response):
        path = environ["PATH_INFO"]
        handler = routes.get(path) or routes.get("/" + path.split("/", 2)[1] if path else "")
        if handler is None:
            return text(start_response, b"no route\n", "404 Not Found")
        return handler(environ, start_response)

    return application


def r_canary(environ, start_response):
    """Breaks PEP 3333 on purpose (read() without a size): proves the validator is really checking."""
    environ["wsgi.input"].read()
    return text(start_response, b"not reached under the validator")


app = route({**ROUTES, **MISBEHAVING})
validated = validator(route({**ROUTES, "/canary": r_canary}))
