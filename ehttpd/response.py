"""The native `Response`: status, header fields and a body from bytes, an iterable or a file."""

from __future__ import annotations

import json as _json
import mimetypes
import os
from collections.abc import Iterable
from typing import Any

from .errors import REASONS
from .headers import Headers


class FileBody:
    """A byte range of an open file, sent with os.sendfile; the file is closed after sending."""

    __slots__ = ("file", "length", "offset", "owned")

    def __init__(self, file, offset: int = 0, length: int | None = None, owned: bool = True) -> None:
        self.file = file
        self.offset = offset
        if length is None:
            length = os.fstat(file.fileno()).st_size - offset
        self.length = length
        self.owned = owned

    def close(self) -> None:
        if self.owned:
            self.file.close()


BodyType = bytes | Iterable[bytes] | FileBody


class Response:
    """An HTTP response. `headers` replace on `set`, accumulate on `add`."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self,
        status: int = 200,
        body: BodyType = b"",
        headers: Iterable[tuple[str, str]] | Headers | None = None,
        *,
        content_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.reason = reason or REASONS.get(status, "Unknown")
        if isinstance(body, str):
            body = body.encode("utf-8")
            if content_type is None:
                content_type = "text/plain; charset=utf-8"
        self.body = body
        if headers is None:
            self.headers = Headers([("Content-Type", content_type)] if content_type is not None else ())
            return
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if content_type is not None:
            self.headers.set("Content-Type", content_type)

    # -- header helpers --------------------------------------------------------------------------------
    def set_header(self, name: str, value: str) -> Response:
        self.headers.set(name, value)
        return self

    def add_header(self, name: str, value: str) -> Response:
        self.headers.add(name, value)
        return self

    def remove_header(self, name: str) -> Response:
        self.headers.remove(name)
        return self

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def content_length(self) -> int | None:
        """The body's length when it is known before sending."""
        body = self.body
        if isinstance(body, (bytes, bytearray)):
            return len(body)
        if isinstance(body, memoryview):
            return body.nbytes
        if isinstance(body, FileBody):
            return body.length
        declared = self.headers.get("Content-Length")
        return int(declared) if declared is not None and declared.isdigit() else None

    # -- constructors ----------------------------------------------------------------------------------
    @classmethod
    def ok(cls, body: BodyType = b"", content_type: str | None = None) -> Response:
        return cls(200, body, content_type=content_type)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), content_type="text/plain; charset=utf-8")

    @classmethod
    def html(cls, html: str, status: int = 200) -> Response:
        return cls(status, html.encode("utf-8"), content_type="text/html; charset=utf-8")

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        data = _json.dumps(value, separators=(",", ":")).encode("utf-8")
        return cls(status, data, content_type="application/json")

    @classmethod
    def file(cls, path: str | os.PathLike, content_type: str | None = None) -> Response:
        """200 with a file's content, sent with os.sendfile; Content-Length comes from the file."""
        f = open(path, "rb")  # noqa: SIM115 - closed by FileBody after sending
        if content_type is None:
            content_type = mimetypes.guess_type(os.fspath(path))[0] or "application/octet-stream"
        return cls(200, FileBody(f), content_type=content_type)

    @classmethod
    def created(cls, location: str | None = None, body: BodyType = b"") -> Response:
        resp = cls(201, body)
        if location:
            resp.headers.set("Location", location)
        return resp

    @classmethod
    def no_content(cls) -> Response:
        return cls(204)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        """301, 302, 303, 307 or 308 to `location`."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"not a redirect status: {status}")
        return cls(status, headers=[("Location", location)])

    @classmethod
    def moved_permanently(cls, location: str) -> Response:
        return cls.redirect(location, 301)

    @classmethod
    def found(cls, location: str) -> Response:
        return cls.redirect(location, 302)

    @classmethod
    def see_other(cls, location: str) -> Response:
        return cls.redirect(location, 303)

    @classmethod
    def temporary_redirect(cls, location: str) -> Response:
        return cls.redirect(location, 307)

    @classmethod
    def permanent_redirect(cls, location: str) -> Response:
        return cls.redirect(location, 308)

    @classmethod
    def bad_request(cls, reason: str = "Bad Request") -> Response:
        return cls.text(reason + "\n", 400)

    @classmethod
    def unauthorized(cls, www_authenticate: str = 'Basic realm="ehttpd"') -> Response:
        return cls(
            401, b"Unauthorized\n", [("WWW-Authenticate", www_authenticate)], content_type="text/plain"
        )

    @classmethod
    def forbidden(cls) -> Response:
        return cls.text("Forbidden\n", 403)

    @classmethod
    def not_found(cls) -> Response:
        return cls.text("Not Found\n", 404)

    @classmethod
    def method_not_allowed(cls, allow: Iterable[str]) -> Response:
        return cls(405, b"Method Not Allowed\n", [("Allow", ", ".join(allow))], content_type="text/plain")

    @classmethod
    def payload_too_large(cls) -> Response:
        return cls.text("Content Too Large\n", 413)

    @classmethod
    def range_not_satisfiable(cls, length: int) -> Response:
        return cls(416, b"", [("Content-Range", f"bytes */{length}")])

    @classmethod
    def internal_error(cls) -> Response:
        return cls.text("Internal Server Error\n", 500)

    @classmethod
    def service_unavailable(cls, retry_after: int | None = None) -> Response:
        resp = cls.text("Service Unavailable\n", 503)
        if retry_after is not None:
            resp.headers.set("Retry-After", str(retry_after))
        return resp

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"
