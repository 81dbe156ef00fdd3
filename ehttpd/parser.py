"""Sans-I/O HTTP/1.1 request-head parser (RFC 9112 §2-§7, strict per DESIGN.md §3).

`find_head(buf, limits)` looks for a complete head in the bytes received so far and `parse_head` turns it
into a `RequestHead` with its body framing decided, or raises an `HTTPError` carrying the precise status.
Nothing here touches a socket, so tests and fuzzers can drive it byte by byte.

The head is decoded once as latin-1 (every octet maps to one character, so nothing can fail to decode) and
the common case is matched by one regular expression for the request line and one `findall` for all field
lines; only a head that does not match is examined piece by piece, to name the rule it breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from .errors import (
    BadRequest,
    ContentTooLarge,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    HTTPError,
    UnsupportedFeature,
    URITooLong,
    VersionNotSupported,
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of a request; each breach has its own status code."""

    max_request_line: int = 8190  # bytes of the request line (414)
    max_header_count: int = 100  # header field lines (431)
    max_header_bytes: int = 65536  # bytes of all header field lines (431)
    max_body: int = 1 << 30  # bytes of a decoded request body (413)
    max_chunk_line: int = 4096  # bytes of one chunk-size line with extensions (400)
    max_trailer_bytes: int = 8192  # bytes of a chunked body's trailer section (431)


DEFAULT_LIMITS = Limits()

# RFC 9110 §5.6.2 token; RFC 9110 §5.5 field-value (VCHAR / obs-text, inner SP / HTAB).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = r"((?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)"
_FIELD = "(" + _TOKEN + "):[ \t]*" + _VALUE + "[ \t]*"  # field-line = field-name ":" OWS field-value OWS
FIELD_RE = re.compile(_FIELD.encode("latin-1"))  # one field line, bytes (trailers)
_FIELD_RE = re.compile(_FIELD)
# All field lines of a head, each ending in CRLF and starting right after one: as many matches as CRLFs
# means the matches tile the field lines, so no bare CR or LF, control or stray octet hides between them.
_FIELDS_RE = re.compile("(?<=\r\n)" + _FIELD + "\r\n")
_REQUEST_LINE_RE = re.compile("(" + _TOKEN + ") ([\x21-\x7e]+) HTTP/([0-9])\\.([0-9])")
TOKEN_RE = re.compile(_TOKEN)  # also the writer's and WSGI's check of response field names
_TARGET_RE = re.compile("[\x21-\x7e]+")
_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]")
_CONTENT_LENGTH_RE = re.compile("[0-9]{1,18}")
# RFC 9110 §7.2 / RFC 3986 §3.2.2: uri-host = IP-literal / IPv4address / reg-name; port = *DIGIT.
_HOST = r"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|(?:[0-9A-Za-z._~!$&'()*+,;=-]+|%[0-9A-Fa-f]{2})+)"
_HOST_RE = re.compile(f"(?:{_HOST})?(?::[0-9]*)?")  # Host field value; may be empty
# The usual Host value (reg-name or IPv4, no %-encoding), tried first because it is cheaper.
_PLAIN_HOST_RE = re.compile(r"[0-9A-Za-z._~!$&'()*+,;=-]*(?::[0-9]*)?")
_AUTHORITY_RE = re.compile(f"{_HOST}:[0-9]+")  # RFC 9112 §3.2.3 authority-form
_ABSOLUTE_RE = re.compile(f"(?i:https?)://{_HOST}(?::[0-9]*)?(?:[/?].*)?", re.DOTALL)  # RFC 9112 §3.2.2
_OWS = " \t"
_MAX_LEADING_CRLF = 16  # RFC 9112 §2.2: ignore a few empty lines before the request line
_FRAMING = frozenset(("host", "content-length", "transfer-encoding", "connection", "expect"))
_HOSTS_SEEN: set[str] = set()  # Host values already found valid
_HOSTS_SEEN_MAX = 1024


@dataclass(slots=True)
class RequestHead:
    """A parsed request head and what it says about framing and the connection."""

    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: list[tuple[str, str]]  # (lower-case name, value) in the order received
    content_length: int | None  # None when chunked or no body
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    head_bytes: int  # bytes the head took in the buffer, terminator included


def find_head(buf: bytes | bytearray, limits: Limits = DEFAULT_LIMITS) -> int:
    """Return the end offset of a complete head in `buf` (after CRLFCRLF), or -1 if more bytes are needed.

    Raises 414/431 as soon as what arrived can no longer fit the limits, and 400 on a bare LF, so a client
    can neither make us buffer an unbounded head nor leave us waiting for a CRLFCRLF it will never send.
    """
    start = 0
    while buf.startswith(b"\r\n", start):
        start += 2
        if start > 2 * _MAX_LEADING_CRLF:
            raise BadRequest("too many empty lines before the request line")
    end = buf.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    fault = _early_fault(buf, start, len(buf), limits)
    if fault is not None:
        raise fault
    return -1


def _early_fault(buf: bytes | bytearray, start: int, size: int, limits: Limits) -> HTTPError | None:
    """The error find_head raises on an incomplete head once `size` bytes of it have arrived, if any.

    These faults show before the head is complete: a bare LF, a request line past its limit (414), field
    lines past theirs (431). Each has the buffer length at which it shows; the first one to show wins, so
    the status is the same whether the bytes come one by one, in pieces, or all at once (parse_head asks
    the same question of a complete head).
    """
    faults: list[tuple[int, HTTPError]] = []
    if buf.count(b"\n", start, size) != buf.count(b"\r\n", start, size):
        at = buf.find(b"\n", start, size)
        while buf[at - 1 : at] == b"\r":  # the first LF without its CR
            at = buf.find(b"\n", at + 1, size)
        faults.append((at + 1, BadRequest("bare LF in request head")))
    line_end = buf.find(b"\r\n", start, min(size, start + limits.max_request_line + 2))
    if line_end < 0:
        # Shows at max_request_line + 1 bytes, or one later if that byte is a CR that may start the CRLF.
        at = start + limits.max_request_line + 1
        at += buf[at - 1 : at] == b"\r"
        faults.append((at, URITooLong("request line too long")))
    else:
        # After the request line's CRLF come field lines (max_header_bytes with their CRLFs), then CRLF.
        faults.append(
            (line_end + limits.max_header_bytes + 4, HeaderFieldsTooLarge("header section too large"))
        )
    shown = [fault for fault in faults if fault[0] <= size]
    return min(shown, key=lambda fault: fault[0])[1] if shown else None


def parse_head(buf: bytes | bytearray, end: int, limits: Limits = DEFAULT_LIMITS) -> RequestHead:
    """Parse buf[:end], a complete head as located by `find_head`."""
    text = buf[:end].decode("latin-1")
    start = 0
    while text.startswith("\r\n", start):
        start += 2
    line_end = text.find("\r\n", start, end)
    if line_end < 0:  # only empty lines: never located by find_head
        raise BadRequest("malformed request line")
    fields_end = end - 2  # field lines end with their own CRLF; the last CRLF ends the head
    count = text.count("\r\n", line_end + 2, fields_end)
    match = _REQUEST_LINE_RE.fullmatch(text, start, line_end)
    # Fast path: a head that is entirely well-formed and within the limits. Anything else goes to
    # _head_fault, which names the first rule broken in a fixed order.
    if (
        match is None
        or line_end - start > limits.max_request_line
        or match.group(3) != "1"
        or match.group(4) not in ("0", "1")
        or count > limits.max_header_count
        or fields_end - line_end - 2 > limits.max_header_bytes
    ):
        _head_fault(buf, text, start, end, limits)
    if count:
        fields = _FIELDS_RE.findall(text, line_end + 2, fields_end)
        if len(fields) != count:
            _head_fault(buf, text, start, end, limits)
        headers = [(name.lower(), value) for name, value in fields]
    else:
        headers = []
    method, target, _, minor = match.groups()
    if "#" in target:
        target = _without_fragment(target)
    return _frame(method, target, "HTTP/1.1" if minor == "1" else "HTTP/1.0", headers, end, limits)


def _without_fragment(target: str) -> str:
    """The target without a "#fragment": a fragment is the client's own and has no place in a request
    target (RFC 9112 §3.2); dropped, as nginx and gunicorn do, rather than passed on in the path."""
    target = target.partition("#")[0]
    if not target:
        raise BadRequest("invalid request target")
    return target


def _head_fault(buf: bytes | bytearray, text: str, start: int, end: int, limits: Limits) -> NoReturn:
    """Raise the error for a complete head the fast path refused, checking the rules in a fixed order."""
    fault = _early_fault(buf, start, end - 1, limits)
    if fault is not None:
        raise fault
    lines = text[start : end - 4].split("\r\n")
    if any("\r" in line for line in lines):
        raise BadRequest("bare CR in request head")
    _request_line_fault(lines[0])
    if len(lines) - 1 > limits.max_header_count:
        raise HeaderFieldsTooLarge("too many header fields")
    _field_fault(lines[1:])
    raise AssertionError("head refused by the fast path but no rule broken")  # pragma: no cover


def _request_line_fault(line: str) -> None:
    """Raise the error a request line deserves; return if it is well-formed and of a supported version."""
    parts = line.split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise BadRequest("invalid method")
    if not _TARGET_RE.fullmatch(target):
        raise BadRequest("invalid request target")
    if not _VERSION_RE.fullmatch(version):
        raise BadRequest("malformed HTTP version")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise VersionNotSupported("HTTP version not supported")


def _field_fault(lines: list[str]) -> None:
    """Raise the 400 naming the rule the first bad field line breaks; return if all are well-formed."""
    for line in lines:
        if _FIELD_RE.fullmatch(line):
            continue
        if line[:1] in (" ", "\t"):
            raise BadRequest("obsolete line folding")
        name, colon, _ = line.partition(":")
        if not colon:
            raise BadRequest("header field without colon")
        if name[-1:] in (" ", "\t"):
            raise BadRequest("whitespace before colon")
        if not TOKEN_RE.fullmatch(name):
            raise BadRequest("invalid header field name")
        raise BadRequest("invalid header field value")


def _frame(
    method: str, target: str, version: str, headers: list[tuple[str, str]], end: int, limits: Limits
) -> RequestHead:
    """Decide body framing and connection persistence (RFC 9112 §6.3, §9.3)."""
    host: str | None = None
    hosts = 0
    lengths: list[str] = []
    codings: list[str] = []
    connection: list[str] = []
    expect: list[str] = []
    for name, value in headers:
        if name not in _FRAMING:
            continue
        if name == "host":
            hosts += 1
            host = value
        elif name == "connection":
            if "," in value:
                connection += [v.strip(_OWS) for v in value.lower().split(",")]
            else:  # the usual single option
                connection.append(value.lower())
        elif name == "content-length":
            lengths += [v.strip(_OWS) for v in value.split(",")]
        elif name == "transfer-encoding":
            codings += [v.strip(_OWS) for v in value.lower().split(",")]
        else:
            expect.append(value.strip(_OWS).lower())
    http11 = version == "HTTP/1.1"
    if hosts > 1:
        raise BadRequest("repeated Host header")
    if host is None:
        if http11:
            raise BadRequest("missing Host header")
    elif host not in _HOSTS_SEEN:
        if not _PLAIN_HOST_RE.fullmatch(host) and not _HOST_RE.fullmatch(host):
            raise BadRequest("invalid Host header")
        if len(_HOSTS_SEEN) < _HOSTS_SEEN_MAX:  # clients repeat a few Host values: check each once
            _HOSTS_SEEN.add(host)
    if target[0] != "/" or method == "CONNECT":
        _check_target_form(method, target)
    content_length = None
    chunked = False
    if codings:
        if lengths:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if not http11:
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        if codings[-1] != "chunked":
            raise BadRequest("Transfer-Encoding does not end in chunked")
        if len(codings) > 1:
            if "chunked" in codings[:-1]:
                raise BadRequest("chunked applied more than once")
            raise UnsupportedFeature("transfer coding not implemented")
        chunked = True
    elif lengths:
        if any(not _CONTENT_LENGTH_RE.fullmatch(v) for v in lengths):
            raise BadRequest("malformed Content-Length")
        content_length = int(lengths[0])
        if len(lengths) > 1 and any(int(v) != content_length for v in lengths):
            raise BadRequest("differing Content-Length values")
        if content_length > limits.max_body:
            raise ContentTooLarge("request body too large")
    if expect:
        if any(e != "100-continue" for e in expect):
            raise ExpectationFailed("unsupported expectation")
        expect_continue = http11 and (chunked or bool(content_length))
    else:
        expect_continue = False
    if http11:
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection and "close" not in connection
    return RequestHead(
        method, target, version, headers, content_length, chunked, keep_alive, expect_continue, end
    )


def _check_target_form(method: str, target: str) -> None:
    """RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT) or asterisk-form (OPTIONS)."""
    if target[0] == "/":
        if method == "CONNECT":
            raise BadRequest("CONNECT needs authority-form")
        return
    if target == "*":
        if method != "OPTIONS":
            raise BadRequest("asterisk-form is only for OPTIONS")
        return
    if method == "CONNECT":
        if not _AUTHORITY_RE.fullmatch(target):
            raise BadRequest("malformed authority-form target")
        return
    if not _ABSOLUTE_RE.fullmatch(target):
        raise BadRequest("malformed request target")
