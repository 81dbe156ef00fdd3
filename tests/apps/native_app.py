"""A native handler with one route per engine behaviour the end-to-end tests exercise.

Files are served from the directory in the EHTTPD_TEST_FILES environment variable (under /files/).
"""

from __future__ import annotations

import json
import os
import time

from ehttpd import FileBody, Request, Response
from ehttpd.ranges import with_ranges
from ehttpd.static import serve_file

FILES = os.environ.get("EHTTPD_TEST_FILES", ".")
PATTERN = bytes(range(256)) * 40  # 10240 bytes where every offset is recognisable (offset % 256)


def hello(request: Request) -> Response:
    return Response.text("Hello world\n")


def peer(request: Request) -> Response:
    """The client's port, so a test can tell which TCP connection carried a request."""
    return Response.text(str(request.peer[1]))


def echo(request: Request) -> Response:
    """The request body back, with the chunked trailers (if any) as a JSON header."""
    data = request.body.read_all(1 << 20)
    resp = Response.ok(data, content_type="application/octet-stream")
    trailers = getattr(request.body, "trailers", None)
    if trailers is not None:
        resp.set_header("X-Trailers", json.dumps(trailers))
    resp.set_header("X-Method", request.method)
    return resp


def ignore_body(request: Request) -> Response:
    return Response.text("not reading your body\n")


def stream(request: Request) -> Response:
    """An iterable body: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
    n = int(request.query_value("n", "5"))
    return Response.ok((f"part {i}\n".encode() for i in range(n)), content_type="text/plain")


def sleep(request: Request) -> Response:
    time.sleep(int(request.query_value("ms", "200")) / 1000)
    return Response.text("slept\n")


def spin(request: Request) -> Response:
    """Keep the CPU busy (no I/O, no sleep) for `ms` milliseconds."""
    end = time.perf_counter() + int(request.query_value("ms", "200")) / 1000
    while time.perf_counter() < end:
        pass
    return Response.text("spun\n")


def boom(request: Request) -> Response:
    raise RuntimeError("secret-detail-for-the-log-only")


def swallow(request: Request) -> Response:
    """A handler that catches the body's read error (a timeout) and answers anyway."""
    try:
        request.body.read()
    except Exception:
        pass
    return Response.text("answered anyway\n")


def exit_now(request: Request) -> Response:
    raise SystemExit(2)  # as argparse does inside a request: not an Exception


def stream_fail(request: Request) -> Response:
    def parts():
        yield b"first\n"
        yield b"second\n"
        raise RuntimeError("generator-broke-mid-stream")

    return Response.ok(parts(), content_type="text/plain")


def short_body(request: Request) -> Response:
    """Declares 100 bytes, produces 10: the server must not leave the client waiting for the rest."""
    return Response.ok(iter([b"0123456789"])).set_header("Content-Length", "100")


def file_parts(request: Request) -> Response:
    """An iterable mixing bytes and FileBody items with no declared length: chunked on HTTP/1.1."""
    f = open(os.path.join(FILES, request.query_value("name", "hello.txt")), "rb")  # noqa: SIM115

    def parts():
        try:
            yield b"<"
            yield FileBody(f, 0, None, owned=False)
            yield b"|"
            yield FileBody(f, 1, 3, owned=False)
            yield b">"
        finally:
            f.close()

    return Response.ok(parts(), content_type="application/octet-stream")


def info(request: Request) -> Response:
    return Response.json(
        {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": request.query,
            "query_string": request.query_string,
            "safe_path": request.safe_path(),
            "version": request.version,
            "headers": request.headers.items(),
        }
    )


def pattern(request: Request) -> Response:
    resp = Response.ok(PATTERN, content_type="application/octet-stream")
    resp.set_header("ETag", '"pattern-v1"')
    resp.set_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
    return with_ranges(request, resp)


def big(request: Request) -> Response:
    """Response.file of a named file with ranges (the 1 GB sparse file test)."""
    return with_ranges(request, Response.file(os.path.join(FILES, request.query_value("name", "big.bin"))))


ROUTES = {
    "/": hello,
    "/peer": peer,
    "/echo": echo,
    "/ignore-body": ignore_body,
    "/stream": stream,
    "/sleep": sleep,
    "/boom": boom,
    "/exit": exit_now,
    "/swallow": swallow,
    "/pattern": pattern,
    "/stream-fail": stream_fail,
    "/short-body": short_body,
    "/file-parts": file_parts,
    "/not-a-response": lambda r: "just a string",
    "/bad-header": lambda r: Response.text("x").set_header("X-Bad", "a\r\nInjected: 1"),
    "/bad-header-name": lambda r: Response.text("x").set_header("X-Bad\r\nInjected", "1"),
    "/not-latin1-header": lambda r: Response.text("x").set_header("X-Name", "\u65e5\u672c"),
    "/bad-reason": lambda r: Response(200, b"x", reason="OK\r\nInjected: 1"),
    "/bad-header-token": lambda r: Response.text("x").set_header("Content-Length ", "0"),
    "/nul-header": lambda r: Response.text("x").set_header("X-Bad", "a\x00b"),
    "/status-103": lambda r: Response(103),
    "/big": big,
    "/redirect": lambda r: Response.redirect("/elsewhere", 303),
    "/moved": lambda r: Response.moved_permanently("https://example.org/new"),
    "/unauthorized": lambda r: Response.unauthorized('Bearer realm="tests"'),
    "/only-post": lambda r: Response.method_not_allowed(["POST", "OPTIONS"]),
    "/unavailable": lambda r: Response.service_unavailable(retry_after=120),
    "/no-content": lambda r: Response.no_content(),
    "/created": lambda r: Response.created("/things/1", b"made\n"),
    "/json": lambda r: Response.json({"ok": True, "n": [1, 2]}),
    "/spin": spin,
    "/custom-server": lambda r: Response.text("mine\n").set_header("Server", "custom/1.0"),
}


def app(request: Request) -> Response:
    path = request.path
    if path.startswith(("/info", "/caf")):
        return info(request)
    if path.startswith("/files"):
        return serve_file(request, FILES, prefix="/files")
    route = ROUTES.get(path)
    return route(request) if route is not None else Response.not_found()
