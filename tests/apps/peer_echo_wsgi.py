"""A WSGI app for the TLS, PROXY protocol and forwarded-header tests: the connection keys of its environ."""

from __future__ import annotations

import json

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")


def app(environ, start_response):
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
