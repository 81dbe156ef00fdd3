"""WSGI (PEP 3333) on the HTTP engine: the environ, start_response, write() and wsgi.file_wrapper.

`WSGIProtocol` replaces only the per-request step of `HTTPProtocol`: it builds the environ, runs the
application and turns what it gives into a `Response` for the same `ResponseWriter`, so parsing, body
streams, framing (Content-Length / chunked / close-delimited), HEAD and the keep-alive decisions are the
engine's own. The common case, one bytes chunk matching its Content-Length, goes out in one send().
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from urllib.parse import unquote_to_bytes

from .body import Body
from .config import Settings
from .connection import Connection
from .errors import ClientDisconnected, HTTPError
from .forwarded import apply_environ
from .parser import TOKEN_RE, RequestHead
from .protocol import HTTPProtocol, ServerState
from .request import split_target
from .response import FileBody, Response
from .writer import BAD_TEXT_RE, BodyStream

log = logging.getLogger("ehttpd.error")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

# PEP 3333 §"Other HTTP Features": an application must not send hop-by-hop fields (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)
_STATUS_RE = re.compile(r"([1-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*)")
_CACHE_MAX = 1024  # entries in each cache below, so odd names or values cannot grow them without bound

_statuses: dict[str, tuple[int, str]] = {}  # status line → (code, reason), validated
_fields: dict[tuple[str, str], str] = {}  # validated response (name, value) → the name in lower case
# Request field name → environ key; "" drops it (Content-Length comes from the parsed framing instead).
_keys: dict[str, str] = {"content-type": "CONTENT_TYPE", "content-length": ""}


class WSGIProtocol(HTTPProtocol):
    """Serves a WSGI application on a connection; everything but `handle` is the native engine's."""

    def __init__(self, app: WSGIApp, settings: Settings, state: ServerState) -> None:
        super().__init__(app, settings, state)  # type: ignore[arg-type]
        self.app = app
        # SCRIPT_NAME is a native string like PATH_INFO: UTF-8 bytes carried as latin-1.
        self.script_name = settings.root_path.rstrip("/").encode("utf-8").decode("latin-1")
        self.multithread = settings.threads > 1
        self.multiprocess = settings.workers != 1
        self.bases: dict[object, dict] = {}  # listening address → its constant environ keys

    def handle(self, conn: Connection, head: RequestHead) -> bool:
        """Run the application for one request and write its response; False once the connection closed."""
        body = self.make_body(conn, head)
        target = head.target
        if target[0] == "/":
            path, _, query = target.partition("?")
            authority = ""
        else:
            path, query, authority = split_target(target)
        if "%" in path:
            path = unquote_to_bytes(path).decode("latin-1")
        script = self.script_name
        if script:
            path = strip_root(path, script)
        # Copying a per-listener dict of the constant keys is twice as fast as a 20-key dict literal.
        environ = (self.bases.get(conn.server_addr) or self.base_environ(conn.server_addr)).copy()
        environ["REQUEST_METHOD"] = head.method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = query
        environ["RAW_URI"] = environ["REQUEST_URI"] = target
        environ["SERVER_PROTOCOL"] = head.version
        peer = conn.peer
        if type(peer) is tuple:
            environ["REMOTE_ADDR"] = peer[0]
            environ["REMOTE_PORT"] = str(peer[1])
        environ["wsgi.url_scheme"] = self.state.scheme
        environ["wsgi.input"] = body
        keys = _keys
        for name, value in head.headers:
            key = keys.get(name)
            if not key:
                if key is not None:
                    continue
                key = header_key(name)
                if not key:
                    continue  # "_" in the name: dropped, so X_User cannot pose as X-User (CVE-2015-0219)
            if key in environ:  # repeated: one value, as a list (RFC 9110 §5.3); cookies take "; "
                environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                environ[key] = value
        if head.content_length is not None:
            environ["CONTENT_LENGTH"] = str(head.content_length)
        if authority:  # RFC 9112 §3.2.2: an absolute-form target's authority overrides Host
            environ["HTTP_HOST"] = authority
        if conn.trusted:  # the peer is a trusted proxy: X-Forwarded-* / Forwarded name the client
            apply_environ(self.forwarders, head.headers, environ)
        sr = StartResponse(self, conn, head, body)
        result = None
        try:
            result = self.app(environ, sr)
            if type(result) is list and sr.stream is None:  # the common case, and a list has no close()
                resp = list_response(sr, result, head.method)
                result = None
            else:
                resp, rest = self.response(sr, result, head.method)
        except BaseException as exc:  # SystemExit too: a pool thread must outlive any application
            return self.failed(conn, head, sr, result, exc)
        if result is None:
            return self.respond(conn, head, body, resp)
        try:
            if resp is None:
                return self.finish_stream(conn, head, body, sr, rest)
            keep = self.respond(conn, head, body, resp)
            if rest is not None and keep and has_more(rest, sr.length):
                conn.close()  # the first chunk alone filled the Content-Length, yet more came
                return False
            return keep
        finally:
            close_result(result)

    def response(self, sr: StartResponse, result, method: str) -> tuple[Response | None, Iterator | None]:
        """Turn what the application returned into a `Response`, pulling at most its first non-empty chunk.

        Returns (response, rest): `rest` is the iterator still to check for bytes beyond the Content-Length
        when the first chunk alone filled it (that chunk went out with the head in one send), else None.
        When the body is to be streamed (write() was called, or more chunks may follow the first), the
        response is None and `rest` is what `finish_stream` sends through the stream write() uses, so a
        write() from inside the iterable lands in the same body.
        """
        if sr.stream is not None:
            return None, iter(result)
        kind = type(result)
        if kind is list or kind is tuple:
            return list_response(sr, result, method), None
        if kind is FileWrapper and sr.code:
            resp = file_response(sr, result)
            if resp is not None:
                return resp, None
        if isinstance(result, (str, bytes)):
            raise TypeError(f"the application returned {kind.__name__}, not an iterable of bytes")
        it = iter(result)
        first = b""
        for first in it:
            if sr.stream is not None:
                break
            if type(first) is not bytes and not isinstance(first, (bytes, bytearray)):
                raise TypeError(f"the application yielded {type(first).__name__}, not bytes")
            if first:
                break
        if sr.stream is not None:  # write() was called while we iterated
            return None, chain((first,), it)
        if not sr.code:
            raise RuntimeError("the application returned without calling start_response()")
        sr.sent = True  # the head goes out now: start_response() with exc_info must re-raise from here
        declared = sr.length
        if not first:
            # HEAD: an empty body says nothing of GET's length, so no Content-Length (RFC 9110 §8.6)
            return sr.make(b"" if not declared and method != "HEAD" else ()), None
        if declared == len(first):
            return sr.make(first), (it if method != "HEAD" else None)
        return None, chain((first,), it)

    def finish_stream(self, conn: Connection, head: RequestHead, body: Body, sr: StartResponse, rest) -> bool:
        """Send the head unless write() did, stream the rest, end the framing."""
        try:
            if sr.stream is None:
                sr.start_stream()
            for chunk in rest:
                sr.stream_send(chunk)
            ok = sr.stream.finish()  # type: ignore[union-attr]
        except (OSError, HTTPError):
            conn.close()
            return False
        except BaseException:
            log.exception("application failed on %s %s after its response started", head.method, head.target)
            conn.close()
            return False
        return self.settle(conn, body, sr.keep and ok and not sr.broken)

    def failed(
        self, conn: Connection, head: RequestHead, sr: StartResponse, result, exc: BaseException
    ) -> bool:
        """The application raised before its response started: answer 500 (or the body's 4xx), or close."""
        close_result(result)
        if isinstance(exc, HTTPError) and sr.stream is None:
            self.reject(conn, exc)  # the request body itself was bad or too slow
            return False
        if isinstance(exc, ClientDisconnected):  # our client went away (not the app's own connections)
            conn.close()
            return False
        log.error("application failed on %s %s", head.method, head.target, exc_info=exc)
        if sr.stream is not None:  # the head went out with a write(): nothing left to say but close
            conn.close()
            return False
        return self.respond(conn, head, sr.body, Response.internal_error())

    def base_environ(self, addr) -> dict:
        """The environ keys that are the same for every request on one listening address."""
        if isinstance(addr, tuple):
            name, port = str(addr[0]), str(addr[1])
        else:  # a UNIX socket has no port of its own
            name, port = "localhost", "443" if self.state.scheme == "https" else "80"
        base = {
            "SCRIPT_NAME": self.script_name,
            "SERVER_NAME": name,
            "SERVER_PORT": port,
            "REMOTE_ADDR": "",
            "REMOTE_PORT": "",
            "wsgi.version": (1, 0),
            "wsgi.errors": ERRORS,
            "wsgi.multithread": self.multithread,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,  # reads end at the body's end, chunked or not
        }
        if len(self.bases) < _CACHE_MAX:
            self.bases[addr] = base
        return base


class StartResponse:
    """The start_response callable of one request; also the write() callable's state."""

    __slots__ = (
        "body",
        "broken",
        "code",
        "conn",
        "head",
        "headers",
        "keep",
        "length",
        "proto",
        "reason",
        "sent",
        "stream",
    )

    def __init__(self, proto: WSGIProtocol, conn: Connection, head: RequestHead, body: Body) -> None:
        self.proto = proto
        self.conn = conn
        self.head = head
        self.body = body
        self.code = 0
        self.sent = False
        self.stream: BodyStream | _Discard | None = None

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info=None) -> Callable:
        if exc_info is not None:
            try:
                if self.sent or self.stream is not None:
                    raise exc_info[1].with_traceback(exc_info[2])  # too late to change the response
            finally:
                exc_info = None  # break the frame → traceback → frame cycle (PEP 3333)
        elif self.code:
            raise AssertionError("start_response() called a second time without exc_info")
        code, reason = _statuses.get(status) or parse_status(status)
        self.length = check_headers(headers)
        self.code = code
        self.reason = reason
        self.headers = headers
        return self.write

    def make(self, body) -> Response:
        return Response(self.code, body, self.headers, reason=self.reason)

    def write(self, data: bytes) -> None:
        """PEP 3333's imperative write(): the head goes out with the first non-empty data."""
        if not self.code:
            raise AssertionError("write() called before start_response()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if not data:
            return
        if self.stream is None:
            if self.sent:  # the head went out with a body that filled the declared Content-Length
                raise RuntimeError("write() after the response's whole Content-Length was sent")
            self.start_stream()
        self.stream_send(data)

    def start_stream(self) -> None:
        """Send the head now (the writer decides the framing) and keep the body stream for the rest."""
        proto = self.proto
        head = self.head
        keep = proto.head_goes_out(head, self.body)
        stream = BodyStream()
        self.sent = True
        self.broken = False
        self.stream = _DISCARD  # if sending the head fails, nothing more goes out
        self.keep = False
        self.keep = proto.writer.write(self.conn, self.make(stream), head.method, head.version, keep)
        if stream.conn is not None:  # None after a HEAD or a bodyless status: drop what comes
            self.stream = stream

    def stream_send(self, chunk: bytes) -> None:
        if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
        if chunk and not self.broken and not self.stream.send(chunk):  # type: ignore[union-attr]
            self.broken = True  # longer than its Content-Length: the rest is dropped, then we close


class _Discard:
    """The body stream of a HEAD (or 204 / 304) response written with write(): nothing goes out."""

    __slots__ = ()

    def send(self, chunk) -> bool:
        return True

    def finish(self) -> bool:
        return True


_DISCARD = _Discard()


def parse_status(status: str) -> tuple[int, str]:
    """Validate a status line such as "200 OK"; 1xx is refused (a WSGI response is a final one)."""
    if not isinstance(status, str):
        raise TypeError(f"status must be a str such as '200 OK', not {type(status).__name__}")
    match = _STATUS_RE.fullmatch(status)
    if match is None:
        raise ValueError(f"invalid status {status!r}: want a final code 200-599, one space, a reason")
    parsed = (int(match.group(1)), match.group(2))
    if parsed[0] < 200:
        raise ValueError(f"invalid status {status!r}: an informational status cannot end a WSGI response")
    if len(_statuses) < _CACHE_MAX:
        _statuses[status] = parsed
    return parsed


def check_headers(headers: list[tuple[str, str]]) -> int | None:
    """Validate response header fields; return the declared Content-Length, if any."""
    if type(headers) is not list:
        raise TypeError(f"response headers must be a list of (name, value) tuples, not {headers!r}")
    length = None
    known = _fields.get
    for item in headers:
        try:
            lower = known(item)
        except TypeError:  # unhashable: not a (str, str) tuple
            lower = None
        if lower is None:
            lower = check_field(item)
        if lower == "content-length":
            value = int(item[1])
            if length is not None and value != length:
                raise ValueError(f"differing Content-Length values in the response: {length}, {value}")
            length = value
    return length


def check_field(item: tuple[str, str]) -> str:
    """Validate one (name, value) field; return its lower-case name."""
    if type(item) is not tuple or len(item) != 2:
        raise TypeError(f"response header {item!r} is not a (name, value) tuple")
    name, value = item
    if not isinstance(name, str):
        raise TypeError(f"response header name {name!r} is not a str")
    if not TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid response header name {name!r}")
    lower = name.lower()
    if lower in HOP_BY_HOP:
        raise ValueError(f"hop-by-hop header {name!r} is not allowed in a WSGI response (PEP 3333)")
    if not isinstance(value, str):
        raise TypeError(f"value of response header {name!r} is not a str: {value!r}")
    if BAD_TEXT_RE.search(value):
        raise ValueError(f"invalid value for response header {name!r}: {value!r}")
    if lower == "content-length" and not (value.isascii() and value.isdigit()):
        raise ValueError(f"invalid Content-Length {value!r} in the response")
    if len(_fields) < _CACHE_MAX and type(name) is str and type(value) is str:
        _fields[item] = lower
    return lower


def header_key(name: str) -> str:
    """The environ key of a request field name (lower case, a token); "" when the name has an "_"."""
    key = "" if "_" in name else "HTTP_" + name.upper().replace("-", "_")
    if len(_keys) < _CACHE_MAX:
        _keys[name] = key
    return key


def strip_root(path: str, script: str) -> str:
    """PATH_INFO under a SCRIPT_NAME: the path without the root it is mounted at."""
    if path.startswith(script) and (len(path) == len(script) or path[len(script)] == "/"):
        return path[len(script) :]
    return path


def list_response(sr: StartResponse, result: list | tuple, method: str) -> Response:
    """A list or tuple of chunks: all in memory, so the Content-Length is known when not declared."""
    if not sr.code:
        raise RuntimeError("the application returned without calling start_response()")
    declared = sr.length
    for chunk in result:
        if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray)):
            raise TypeError(f"the application returned a {type(chunk).__name__} chunk, not bytes")
    if declared is None and method == "HEAD" and not any(result):
        return sr.make(())  # an empty body says nothing of GET's length: no Content-Length (RFC 9110 §8.6)
    if len(result) == 1 and (declared is None or declared == len(result[0])):
        return sr.make(result[0])
    resp = sr.make(result)
    if declared is None:
        resp.headers.add("Content-Length", str(sum(map(len, result))))
    return resp


def file_response(sr: StartResponse, wrapper: FileWrapper) -> Response | None:
    """A wsgi.file_wrapper over a regular file, sent with os.sendfile from its current position."""
    file = wrapper.filelike
    if not is_plain_file(file):
        return None  # a BytesIO, a socket file, or one whose read() transforms (gzip.open): iterate it
    try:
        fd = file.fileno()
        info = os.fstat(fd)
        offset = file.tell()
    except (AttributeError, OSError, ValueError):
        return None  # not a real file (BytesIO, a socket file...): iterate it instead
    if not stat.S_ISREG(info.st_mode):
        return None
    size = max(info.st_size - offset, 0)
    declared = sr.length
    if declared is None or declared <= size:
        # PEP 3333: send no more than the Content-Length the application declared.
        return sr.make(FileBody(file, offset, size if declared is None else declared, owned=False))
    # The file is shorter than declared: the writer sends what exists, logs it and closes.
    return sr.make([FileBody(file, offset, size, owned=False)])


def is_plain_file(file) -> bool:
    """Whether read() on `file` gives the bytes of its descriptor as they are, so sendfile may stand in
    for it: a binary file as open() makes them (FileIO, alone or under a BufferedReader), not a wrapper
    such as GzipFile, whose fileno() is that of the compressed file beneath it."""
    if isinstance(file, io.FileIO):
        return True
    return isinstance(file, (io.BufferedReader, io.BufferedRandom)) and isinstance(file.raw, io.FileIO)


def has_more(rest: Iterator, length: int | None) -> bool:
    """True (and logged) when an iterator still yields bytes after its Content-Length was sent."""
    try:
        for chunk in rest:
            if chunk:
                log.error("response body longer than its Content-Length %s; closing", length)
                return True
    except BaseException:
        log.exception("the application failed after its Content-Length was sent; closing")
        return True
    return False


def close_result(result) -> None:
    """PEP 3333: call the iterable's close() whatever happened, and never let it break the server."""
    if result is None or type(result) is list:
        return
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except BaseException:
            log.exception("the application's close() failed")


class FileWrapper:
    """wsgi.file_wrapper: iterates a file in blocks; the server sends a regular file with os.sendfile."""

    __slots__ = ("blksize", "filelike")

    def __init__(self, filelike, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    # Seeking lets a range wrapper (werkzeug's) skip to its start instead of reading up to it.
    def seekable(self) -> bool:
        seekable = getattr(self.filelike, "seekable", None)
        return bool(seekable and seekable())

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.filelike.seek(offset, whence)

    def tell(self) -> int:
        return self.filelike.tell()

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class ErrorStream:
    """wsgi.errors: what the application writes goes to the error log, a record per write."""

    __slots__ = ()

    def write(self, text: str) -> int:
        line = text.rstrip("\r\n")
        if line:
            log.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


ERRORS = ErrorStream()
