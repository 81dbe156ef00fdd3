"""WSGI hello world for scripts/bench: 200, text/plain, a 13-byte body.

Run it with any WSGI server, e.g. ``python -m ehttpd examples.hello_wsgi:app``.
"""

BODY = b"Hello world\r\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    # A fresh list: a server may append its own headers to the one it is given.
    start_response("200 OK", list(HEADERS))
    return [BODY]
