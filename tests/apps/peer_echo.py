"""A native app for the TLS, PROXY protocol and forwarded-header tests: what the server made of the request.

Any path → JSON {"peer", "scheme", "host" (the field), "request_host" (Request.host), "pid"}; POST adds
the body's length and sha256; ?sleep=MS waits first; /file?size=N answers a file response of N bytes (made
once in $EHTTPD_TEST_FILES, or the temp dir).
"""

from __future__ import annotations

import array
import hashlib
import os
import sys
import tempfile
import time

from ehttpd import Request, Response

FILES = os.environ.get("EHTTPD_TEST_FILES") or tempfile.gettempdir()


def app(request: Request) -> Response:
    sleep = request.query_value("sleep")
    if sleep:
        time.sleep(int(sleep) / 1000)
    if request.path == "/file":
        return Response.file(pattern_file(int(request.query_value("size", "0"))))
    peer = request.peer
    info = {
        "peer": list(peer) if isinstance(peer, tuple) else peer,
        "scheme": request.scheme,
        "host": request.header("host"),
        "request_host": request.host,
        "pid": os.getpid(),
    }
    if request.method == "POST":
        data = request.body.read_all(64 << 20)
        info["length"] = len(data)
        info["sha256"] = hashlib.sha256(data).hexdigest()
    return Response.json(info)


def pattern(size: int) -> bytes:
    """Bytes where a shifted or dropped slice shows: each 4-byte word is its own offset."""
    words = array.array("I", range((size + 3) // 4))
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()[:size]


def pattern_file(size: int) -> str:
    path = os.path.join(FILES, f"peer-echo-{size}.bin")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(pattern(size))
        os.replace(tmp, path)
    return path
