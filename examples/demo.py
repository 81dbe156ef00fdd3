"""A small native-API demo: routes, query strings, JSON, a streamed body and a file with ranges."""

from __future__ import annotations

import os

from ehttpd import Request, Response


def app(request: Request) -> Response:
    path = request.path
    if path == "/":
        return Response.html(
            "<h1>ehttpd demo</h1><ul>"
            '<li><a href="/hello?name=world">/hello?name=world</a></li>'
            '<li><a href="/json">/json</a></li>'
            '<li><a href="/stream">/stream</a> (chunked)</li>'
            '<li><a href="/source">/source</a> (this file, with byte ranges)</li></ul>'
        )
    if path == "/hello":
        return Response.text(f"Hello {request.query_value('name', 'world')}!\n")
    if path == "/json":
        return Response.json({"method": request.method, "path": path, "query": request.query})
    if path == "/stream":
        return Response.ok((f"line {i}\n".encode() for i in range(10)), content_type="text/plain")
    if path == "/echo" and request.method == "POST":
        return Response.ok(request.body.read_all(1 << 20), content_type="application/octet-stream")
    if path == "/source":
        from ehttpd.ranges import with_ranges

        return with_ranges(request, Response.file(os.path.abspath(__file__), content_type="text/plain"))
    return Response.not_found()
