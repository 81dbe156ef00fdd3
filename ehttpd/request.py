"""The native `Request`: what the handler gets for one HTTP request."""

from __future__ import annotations

import posixpath
from urllib.parse import parse_qs, unquote, unquote_to_bytes

from .body import Body
from .headers import Headers


class Request:
    """One request: method, target, version, headers, peer address and the body as a stream."""

    __slots__ = (
        "_host",
        "_query",
        "body",
        "headers",
        "keep_alive",
        "method",
        "peer",
        "scheme",
        "server",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        body: Body,
        peer: tuple | str | None,
        server: tuple | str | None = None,
        scheme: str = "http",
        keep_alive: bool = True,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.peer = peer
        self.server = server
        self.scheme = scheme
        self.keep_alive = keep_alive
        self._query: dict[str, list[str]] | None = None
        self._host: str | None = None  # set when a trusted proxy forwarded the host; else read when asked

    @property
    def host(self) -> str:
        """The host[:port] the client asked for: what a trusted proxy forwarded (X-Forwarded-Host or
        Forwarded host=), else the authority of an absolute-form target (RFC 9112 §3.2.2), else the Host
        field ("" when an HTTP/1.0 request has none)."""
        if self._host is None:
            target = self.target
            if target[0] != "/" and "://" in target:
                self._host = split_target(target)[2]
            else:
                self._host = self.headers.get("host") or ""
        return self._host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def raw_path(self) -> str:
        """The path as sent, still percent-encoded (absolute-form targets reduced to their path)."""
        target = self.target
        if target[0] != "/":
            return split_target(target)[0] if "://" in target else target  # else "*" or an authority
        return target.split("?", 1)[0]

    @property
    def path(self) -> str:
        """The percent-decoded path (UTF-8, invalid bytes replaced)."""
        return unquote(self.raw_path, errors="replace")

    @property
    def query_string(self) -> str:
        _, sep, query = self.target.partition("?")
        return query if sep else ""

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters; repeated keys keep every value; `+` is a space as in HTML forms."""
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def safe_path(self) -> str | None:
        """The decoded path as a relative file path with no way out of a served directory, or None.

        Refuses `..` segments (also when percent-encoded), NUL bytes and backslashes rather than
        normalising them away, so `/a/../../etc/passwd` is refused, not quietly turned into `etc/passwd`.
        """
        raw = unquote_to_bytes(self.raw_path)
        if b"\x00" in raw or b"\\" in raw:
            return None
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        segments = [s for s in path.split("/") if s not in ("", ".")]
        if any(s == ".." for s in segments):
            return None
        return posixpath.join(*segments) if segments else ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} {self.version}>"


def split_target(target: str) -> tuple[str, str, str]:
    """(path, query, authority) of an absolute-form target; asterisk- and authority-form have no path, and
    give no authority (a CONNECT target names where to tunnel, not this server's host)."""
    if "://" not in target:
        return "", "", ""
    rest = target.split("://", 1)[1]
    slash = rest.find("/")
    question = rest.find("?")
    if slash < 0 or 0 <= question < slash:
        end = question if question >= 0 else len(rest)
        path_query = "/" + rest[question:] if question >= 0 else "/"
    else:
        end = slash
        path_query = rest[slash:]
    path, _, query = path_query.partition("?")
    return path, query, rest[:end]
