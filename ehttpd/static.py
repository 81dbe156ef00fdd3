"""Serve files from a directory: safe paths only, byte ranges, HEAD, and 304 for a matching ETag."""

from __future__ import annotations

import os

from .ranges import add_validators, with_ranges
from .request import Request
from .response import Response


def serve_file(request: Request, root: str | os.PathLike, prefix: str = "/") -> Response:
    """The file under `root` that the request path names below the URL `prefix`.

    403 for a path that tries to leave `root` (`..`, also percent-encoded, NUL, or a symlink pointing out),
    404 for anything that is not a regular file (a directory serves its index.html; named without its
    trailing slash, it is a 301 to the name with one, as nginx does, so that the page's relative links
    resolve inside it; a file named with a trailing slash is a 404), 405 for methods other than GET and HEAD.
    """
    if request.method not in ("GET", "HEAD"):
        return Response.method_not_allowed(("GET", "HEAD"))
    rel = request.safe_path()
    if rel is None:
        return Response.forbidden()
    mount = prefix.strip("/")
    if mount:
        if rel != mount and not rel.startswith(mount + "/"):
            return Response.not_found()
        rel = rel[len(mount) + 1 :]
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, rel))
    if path != base and not path.startswith(base + os.sep):
        return Response.forbidden()  # a symlink inside root that points outside it
    raw_path = request.raw_path
    if os.path.isdir(path):
        if not raw_path.endswith("/"):
            query = request.query_string
            return Response.redirect(raw_path + "/" + ("?" + query if query else ""), 301)
        path = os.path.join(path, "index.html")
    elif raw_path.endswith("/"):
        return Response.not_found()
    if not os.path.isfile(path):
        return Response.not_found()
    try:
        response = Response.file(path)
    except PermissionError:
        return Response.forbidden()
    except OSError:
        return Response.not_found()
    add_validators(response)
    if _not_modified(request, response):
        response.body.close()
        return Response(304, b"", [(k, v) for k, v in response.headers if k.lower() != "content-type"])
    return with_ranges(request, response)


def _not_modified(request: Request, response: Response) -> bool:
    """RFC 9110 §13.1.2 If-None-Match (weak comparison) against the file's ETag."""
    asked = request.headers.get("if-none-match")
    etag = response.headers.get("ETag")
    if asked is None or etag is None:
        return False
    if asked.strip() == "*":
        return True
    strip = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == strip for tag in asked.split(","))
