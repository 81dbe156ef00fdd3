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

from .errors import (
    BadRequest,
    ContentTooLarge,
    ExpectationFailed,
    HeaderFieldsTooLarge,
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
_VALUE = r"((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)"
FIELD_RE = re.compile(
    ("(" + _TOKEN + "):[ \t]*" + _VALUE + "[ \t]*").encode("latin-1")
)  # one field line, bytes
_FIELD_RE = re.compile("(" + _TOKEN + "):[ \t]*" + _VALUE + "[ \t]*")
# All field lines of a head, each ending in CRLF; `^` (MULTILINE) pins every match to the start of a line.
_FIELDS_RE = re.compile("^(" + _TOKEN + "):[ \t]*" + _VALUE + "[ \t]*\r\n", re.MULTILINE)
_REQUEST_LINE_RE = re.compile("(" + _TOKEN + ") ([\x21-\x7e]+) HTTP/([0-9])\\.([0-9])")
_TOKEN_RE = re.compile(_TOKEN)
_TARGET_RE = re.compile("[\x21-\x7e]+")
_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]")
_CONTENT_LENGTH_RE = re.compile("[0-9]{1,18}")
# RFC 9110 §7.2 / RFC 3986 §3.2.2: uri-host = IP-literal / IPv4address / reg-name; port = *DIGIT.
_HOST = r"(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|(?:[0-9A-Za-z._~!$&'()*+,;=-]+|%[0-9A-Fa-f]{2})+)"
_HOST_RE = re.compile(f"(?:{_HOST})?(?::[0-9]*)?")  # Host field value; may be empty
_AUTHORITY_RE = re.compile(f"{_HOST}:[0-9]+")  # RFC 9112 §3.2.3 authority-form
_ABSOLUTE_RE = re.compile(f"(?i:https?)://{_HOST}(?::[0-9]*)?(?:[/?].*)?", re.DOTALL)  # RFC 9112 §3.2.2
_OWS = " \t"
_MAX_LEADING_CRLF = 16  # RFC 9112 §2.2: ignore a few empty lines before the request line
_SPECIAL = frozenset(("host", "content-length", "transfer-encoding", "connection", "expect"))


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
    size = len(buf)
    line_end = buf.find(b"\r\n", start, start + limits.max_request_line + 2)
    if line_end < 0:
        # A trailing CR may be the first half of the request line's CRLF.
        if size - start - buf.endswith(b"\r") > limits.max_request_line:
            raise URITooLong("request line too long")
    elif size - line_end - 4 > limits.max_header_bytes - 1:
        # After the request line's CRLF: field lines (max_header_bytes with their CRLFs) and one CR.
        raise HeaderFieldsTooLarge("header section too large")
    if buf.count(b"\n", start) != buf.count(b"\r\n", start):
        raise BadRequest("bare LF in request head")
    return -1


def parse_head(buf: bytes | bytearray, end: int, limits: Limits = DEFAULT_LIMITS) -> RequestHead:
    """Parse buf[:end], a complete head as located by `find_head`."""
    text = buf[:end].decode("latin-1")
    start = 0
    while text.startswith("\r\n", start):
        start += 2
    body_end = end - 4  # the request line and field lines, without the final CRLFCRLF
    crlfs = text.count("\r\n", start, body_end)
    if text.count("\r", start, body_end) != crlfs:
        raise BadRequest("bare CR in request head")
    if text.count("\n", start, body_end) != crlfs:
        raise BadRequest("bare LF in request head")
    line_end = text.find("\r\n", start, body_end)
    if line_end < 0:
        line_end = body_end
    if line_end - start > limits.max_request_line:
        raise URITooLong("request line too long")
    match = _REQUEST_LINE_RE.fullmatch(text, start, line_end)
    if match is None:
        _request_line_fault(text[start:line_end])
    method, target, major, minor = match.groups()
    if major != "1" or minor not in "01":
        raise VersionNotSupported("HTTP version not supported")
    # Field lines, each with its CRLF: from after the request line's CRLF to before the final CRLF.
    if crlfs > limits.max_header_count:
        raise HeaderFieldsTooLarge("too many header fields")
    if end - 2 - (line_end + 2) > limits.max_header_bytes:
        raise HeaderFieldsTooLarge("header section too large")
    fields = _FIELDS_RE.findall(text, line_end + 2, end - 2) if crlfs else []
    if len(fields) != crlfs:
        _field_fault(text[line_end + 2 : end - 4].split("\r\n"))
    headers = [(name.lower(), value) for name, value in fields]
    return _frame(method, target, "HTTP/1." + minor, headers, end, limits)


def _request_line_fault(line: str) -> None:
    """Raise the 400 naming what is wrong with a request line the fast pattern refused."""
    parts = line.split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise BadRequest("invalid method")
    if not _TARGET_RE.fullmatch(target):
        raise BadRequest("invalid request target")
    raise BadRequest("malformed HTTP version")


def _field_fault(lines: list[str]) -> None:
    """Raise the 400 naming the rule the first bad field line breaks."""
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
        if not _TOKEN_RE.fullmatch(name):
            raise BadRequest("invalid header field name")
        raise BadRequest("invalid header field value")
    raise BadRequest("malformed header section")  # not reached: some line failed the combined pattern


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
        if name not in _SPECIAL:
            continue
        if name == "host":
            hosts += 1
            host = value
        elif name == "content-length":
            lengths.extend(v.strip(_OWS) for v in value.split(","))
        elif name == "transfer-encoding":
            codings.extend(v.strip(_OWS).lower() for v in value.split(","))
        elif name == "connection":
            connection.extend(v.strip(_OWS).lower() for v in value.split(","))
        else:
            expect.append(value.strip(_OWS).lower())
    http11 = version == "HTTP/1.1"
    if hosts > 1:
        raise BadRequest("repeated Host header")
    if host is None:
        if http11:
            raise BadRequest("missing Host header")
    elif not _HOST_RE.fullmatch(host):
        raise BadRequest("invalid Host header")
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
        if len(set(map(int, lengths))) != 1:
            raise BadRequest("differing Content-Length values")
        content_length = int(lengths[0])
        if content_length > limits.max_body:
            raise ContentTooLarge("request body too large")
    if expect and any(e != "100-continue" for e in expect):
        raise ExpectationFailed("unsupported expectation")
    if http11:
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection and "close" not in connection
    return RequestHead(
        method,
        target,
        version,
        headers,
        content_length,
        chunked,
        keep_alive,
        bool(expect) and http11 and (chunked or bool(content_length)),
        end,
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
