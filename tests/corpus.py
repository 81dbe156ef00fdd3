"""Request corpus shared by tests/test_parser.py and scripts/parser_bench.py.

VALID holds (name, bytes, expected requests); INVALID holds (bytes, expected status, the RFC rule the
bytes break). Every case is parsed with LIMITS, small enough that the limit cases stay short.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehttpd.parser import Limits

LIMITS = Limits(
    max_request_line=100,
    max_header_count=10,
    max_header_bytes=512,
    max_body=1000,
    max_chunk_line=64,
    max_trailer_bytes=128,
)


@dataclass(frozen=True)
class Req:
    """What one request in a VALID case must parse to."""

    method: str
    target: str
    version: str = "HTTP/1.1"
    headers: tuple[tuple[str, str], ...] = (("host", "example.com"),)
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    body: bytes = b""
    trailers: tuple[tuple[str, str], ...] = ()


def r(request_line: bytes, *fields: bytes, body: bytes = b"") -> bytes:
    """A request: the request line, each field line, the empty line, then the body, all CRLF-terminated."""
    return b"".join(line + b"\r\n" for line in (request_line, *fields)) + b"\r\n" + body


HOST = b"Host: example.com"
HOST_H = ("host", "example.com")

# A typical browser GET (6 header fields) and the minimal GET wrk sends: the benchmark's hot path.
BROWSER_GET = r(
    b"GET /index.html?q=1 HTTP/1.1",
    HOST,
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    b"Accept-Language: en-US,en;q=0.5",
    b"Accept-Encoding: gzip, deflate, br",
    b"Connection: keep-alive",
)
WRK_GET = r(b"GET / HTTP/1.1", b"Host: 127.0.0.1:8080")
POST_CL = r(
    b"POST /form HTTP/1.1",
    HOST,
    b"Content-Type: application/x-www-form-urlencoded",
    b"Content-Length: 27",
    body=b"name=ehttpd&lang=python&v=1",
)
CHUNKED = r(
    b"POST /upload HTTP/1.1",
    HOST,
    b"Transfer-Encoding: chunked",
    body=b'5;name=val;q="quoted \\" str"\r\nhello\r\n6 ; ext\r\n world\r\n'
    b"0\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n",
)
# The same body without the chunk extensions llhttp refuses (BWS, quoted-string): for the benchmark.
CHUNKED_PLAIN = r(
    b"POST /upload HTTP/1.1",
    HOST,
    b"Transfer-Encoding: chunked",
    body=b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n",
)

CHUNKED_EXPECTED = Req(
    "POST",
    "/upload",
    headers=(HOST_H, ("transfer-encoding", "chunked")),
    chunked=True,
    body=b"hello world",
    trailers=(("x-checksum", "abc"), ("x-other", "1")),
)

VALID: list[tuple[str, bytes, list[Req]]] = [
    ("wrk-get", WRK_GET, [Req("GET", "/", headers=(("host", "127.0.0.1:8080"),))]),
    (
        "browser-get",
        BROWSER_GET,
        [
            Req(
                "GET",
                "/index.html?q=1",
                headers=(
                    HOST_H,
                    (
                        "user-agent",
                        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                    ),
                    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                    ("accept-language", "en-US,en;q=0.5"),
                    ("accept-encoding", "gzip, deflate, br"),
                    ("connection", "keep-alive"),
                ),
            )
        ],
    ),
    (
        "post-content-length",
        POST_CL,
        [
            Req(
                "POST",
                "/form",
                headers=(
                    HOST_H,
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("content-length", "27"),
                ),
                content_length=27,
                body=b"name=ehttpd&lang=python&v=1",
            )
        ],
    ),
    (
        "post-content-length-0",
        r(b"POST / HTTP/1.1", HOST, b"Content-Length: 0"),
        [Req("POST", "/", headers=(HOST_H, ("content-length", "0")), content_length=0)],
    ),
    ("chunked-ext-trailers", CHUNKED, [CHUNKED_EXPECTED]),
    ("chunked-plain-trailers", CHUNKED_PLAIN, [CHUNKED_EXPECTED]),
    (
        "chunked-upper-hex-leading-zeros",
        r(
            b"PUT /x HTTP/1.1",
            HOST,
            b"Transfer-Encoding: Chunked",
            body=b"0000A\r\n0123456789\r\n00\r\n\r\n",
        ),
        [
            Req(
                "PUT",
                "/x",
                headers=(HOST_H, ("transfer-encoding", "Chunked")),
                chunked=True,
                body=b"0123456789",
            )
        ],
    ),
    (
        "chunked-empty-body",
        r(b"POST / HTTP/1.1", HOST, b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        [Req("POST", "/", headers=(HOST_H, ("transfer-encoding", "chunked")), chunked=True)],
    ),
    (
        "chunked-data-with-crlf-inside",
        r(b"POST / HTTP/1.1", HOST, b"Transfer-Encoding: chunked", body=b"4\r\n\r\n\r\n\r\n0\r\n\r\n"),
        [
            Req(
                "POST",
                "/",
                headers=(HOST_H, ("transfer-encoding", "chunked")),
                chunked=True,
                body=b"\r\n\r\n",
            )
        ],
    ),
    ("http10-get", r(b"GET / HTTP/1.0"), [Req("GET", "/", "HTTP/1.0", headers=(), keep_alive=False)]),
    (
        "http10-keep-alive",
        r(b"GET /a HTTP/1.0", b"Connection: Keep-Alive", HOST),
        [
            Req(
                "GET",
                "/a",
                "HTTP/1.0",
                headers=(("connection", "Keep-Alive"), HOST_H),
                keep_alive=True,
            )
        ],
    ),
    (
        "http10-post-content-length",
        r(b"POST / HTTP/1.0", b"Content-Length: 3", body=b"abc"),
        [
            Req(
                "POST",
                "/",
                "HTTP/1.0",
                headers=(("content-length", "3"),),
                content_length=3,
                keep_alive=False,
                body=b"abc",
            )
        ],
    ),
    (
        "http11-connection-close",
        r(b"GET / HTTP/1.1", HOST, b"Connection: close"),
        [Req("GET", "/", headers=(HOST_H, ("connection", "close")), keep_alive=False)],
    ),
    (
        "http11-connection-list",
        r(b"GET / HTTP/1.1", HOST, b"Connection: keep-alive, Upgrade", b"Upgrade: websocket"),
        [
            Req(
                "GET",
                "/",
                headers=(HOST_H, ("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")),
            )
        ],
    ),
    (
        "close-then-pipelined-junk-is-not-read",
        r(b"GET / HTTP/1.1", HOST, b"Connection: close") + b"JUNK\x00\r\n\r\n",
        [Req("GET", "/", headers=(HOST_H, ("connection", "close")), keep_alive=False)],
    ),
    (
        "absolute-form",
        r(b"GET http://example.com:8080/x?y=1 HTTP/1.1", HOST),
        [Req("GET", "http://example.com:8080/x?y=1")],
    ),
    (
        "absolute-form-https-no-path",
        r(b"GET HTTPS://example.com HTTP/1.1", HOST),
        [Req("GET", "HTTPS://example.com")],
    ),
    ("options-asterisk", r(b"OPTIONS * HTTP/1.1", HOST), [Req("OPTIONS", "*")]),
    (
        "connect-authority-form",
        r(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"),
        [Req("CONNECT", "example.com:443", headers=(("host", "example.com:443"),))],
    ),
    (
        "connect-ipv6",
        r(b"CONNECT [2001:db8::1]:443 HTTP/1.1", b"Host: [2001:db8::1]:443"),
        [Req("CONNECT", "[2001:db8::1]:443", headers=(("host", "[2001:db8::1]:443"),))],
    ),
    ("leading-empty-line", b"\r\n" + r(b"GET / HTTP/1.1", HOST), [Req("GET", "/")]),
    ("sixteen-leading-empty-lines", b"\r\n" * 16 + r(b"GET / HTTP/1.1", HOST), [Req("GET", "/")]),
    (
        "pipelined-two-gets",
        r(b"GET /1 HTTP/1.1", HOST) + r(b"GET /2 HTTP/1.1", HOST),
        [Req("GET", "/1"), Req("GET", "/2")],
    ),
    (
        "pipelined-post-then-get",
        r(b"POST /p HTTP/1.1", HOST, b"Content-Length: 4", body=b"GET ") + r(b"GET /2 HTTP/1.1", HOST),
        [
            Req("POST", "/p", headers=(HOST_H, ("content-length", "4")), content_length=4, body=b"GET "),
            Req("GET", "/2"),
        ],
    ),
    (
        "pipelined-chunked-then-get",
        CHUNKED + r(b"DELETE /2 HTTP/1.1", HOST),
        [CHUNKED_EXPECTED, Req("DELETE", "/2")],
    ),
    (
        "expect-100-continue",
        r(b"PUT /f HTTP/1.1", HOST, b"Expect: 100-continue", b"Content-Length: 2", body=b"ok"),
        [
            Req(
                "PUT",
                "/f",
                headers=(HOST_H, ("expect", "100-continue"), ("content-length", "2")),
                content_length=2,
                expect_continue=True,
                body=b"ok",
            )
        ],
    ),
    (
        "expect-100-continue-case-chunked",
        r(
            b"POST / HTTP/1.1",
            HOST,
            b"Expect: 100-Continue",
            b"Transfer-Encoding: chunked",
            body=b"0\r\n\r\n",
        ),
        [
            Req(
                "POST",
                "/",
                headers=(HOST_H, ("expect", "100-Continue"), ("transfer-encoding", "chunked")),
                chunked=True,
                expect_continue=True,
            )
        ],
    ),
    (
        "expect-100-continue-without-body",
        r(b"GET / HTTP/1.1", HOST, b"Expect: 100-continue"),
        [Req("GET", "/", headers=(HOST_H, ("expect", "100-continue")))],
    ),
    (
        "expect-100-continue-ignored-on-http10",
        r(b"POST / HTTP/1.0", b"Expect: 100-continue", b"Content-Length: 1", body=b"x"),
        [
            Req(
                "POST",
                "/",
                "HTTP/1.0",
                headers=(("expect", "100-continue"), ("content-length", "1")),
                content_length=1,
                keep_alive=False,
                body=b"x",
            )
        ],
    ),
    (
        "content-length-identical-list",
        r(b"POST / HTTP/1.1", HOST, b"Content-Length: 3, 3", b"Content-Length: 003", body=b"abc"),
        [
            Req(
                "POST",
                "/",
                headers=(HOST_H, ("content-length", "3, 3"), ("content-length", "003")),
                content_length=3,
                body=b"abc",
            )
        ],
    ),
    (
        "field-value-ows-empty-obs-text",
        r(
            b"GET / HTTP/1.1",
            HOST,
            b"X-Spaced: \t a  b \t",
            b"X-Empty:",
            b"X-Blank:  \t ",
            b"X-Latin: caf\xe9",
        ),
        [
            Req(
                "GET",
                "/",
                headers=(
                    HOST_H,
                    ("x-spaced", "a  b"),
                    ("x-empty", ""),
                    ("x-blank", ""),
                    ("x-latin", "caf\xe9"),
                ),
            )
        ],
    ),
    (
        "field-name-case-and-tchars",
        r(b"GET / HTTP/1.1", b"HOST: example.com", b"X-!#$%&'*+.^_`|~: v"),
        [Req("GET", "/", headers=(HOST_H, ("x-!#$%&'*+.^_`|~", "v")))],
    ),
    (
        "extension-method-and-target-chars",
        r(b"M-SEARCH_1 /a%20b/c;p?x=[1]&y=~!$'()*+,@: HTTP/1.1", HOST),
        [Req("M-SEARCH_1", "/a%20b/c;p?x=[1]&y=~!$'()*+,@:")],
    ),
    (
        "target-fragment-dropped",  # RFC 9112 §3.2: no fragment in a request-target; nginx drops it too
        r(b"GET /p?a=1#frag HTTP/1.1", HOST) + r(b"GET http://a/b#c?d HTTP/1.1", HOST),
        [Req("GET", "/p?a=1"), Req("GET", "http://a/b")],
    ),
    (
        "host-ipv6-and-empty",
        r(b"GET / HTTP/1.1", b"Host: [::1]:8080") + r(b"GET http://a/ HTTP/1.1", b"Host:"),
        [
            Req("GET", "/", headers=(("host", "[::1]:8080"),)),
            Req("GET", "http://a/", headers=(("host", ""),)),
        ],
    ),
    (
        "request-line-exactly-at-limit",
        r(b"GET /" + b"a" * 86 + b" HTTP/1.1", HOST),  # 100 bytes = LIMITS.max_request_line
        [Req("GET", "/" + "a" * 86)],
    ),
    (
        "header-count-and-bytes-exactly-at-limit",
        # 10 field lines (LIMITS.max_header_count) taking 512 bytes with their CRLFs (max_header_bytes)
        r(b"GET / HTTP/1.1", HOST, *[b"X-%d: " % i + b"v" * 48 for i in range(8)], b"X-Last: " + b"v" * 43),
        [
            Req(
                "GET",
                "/",
                headers=(
                    HOST_H,
                    *[(f"x-{i}", "v" * 48) for i in range(8)],
                    ("x-last", "v" * 43),
                ),
            )
        ],
    ),
    (
        "body-exactly-at-limit",
        r(b"POST / HTTP/1.1", HOST, b"Content-Length: 1000", body=b"b" * 1000)
        + r(
            b"POST / HTTP/1.1",
            HOST,
            b"Transfer-Encoding: chunked",
            body=b"3e8\r\n" + b"c" * 1000 + b"\r\n0\r\n\r\n",
        ),
        [
            Req(
                "POST",
                "/",
                headers=(HOST_H, ("content-length", "1000")),
                content_length=1000,
                body=b"b" * 1000,
            ),
            Req(
                "POST",
                "/",
                headers=(HOST_H, ("transfer-encoding", "chunked")),
                chunked=True,
                body=b"c" * 1000,
            ),
        ],
    ),
    (
        "chunk-line-exactly-at-limit",
        r(
            b"POST / HTTP/1.1",
            HOST,
            b"Transfer-Encoding: chunked",
            body=b"1;" + b"e" * 62 + b"\r\nz\r\n0\r\n\r\n",  # 64-byte chunk line = max_chunk_line
        ),
        [Req("POST", "/", headers=(HOST_H, ("transfer-encoding", "chunked")), chunked=True, body=b"z")],
    ),
]

_GET = b"GET / HTTP/1.1"
_POST = b"POST / HTTP/1.1"
_TE = b"Transfer-Encoding: chunked"


def _chunked(body: bytes) -> bytes:
    return r(_POST, HOST, _TE, body=body)


# (bytes, status, rule). Single faults, so that the status does not depend on how the bytes arrive.
INVALID: list[tuple[bytes, int, str]] = [
    # --- request line (RFC 9112 §3) ---
    (
        r(b"GET  / HTTP/1.1", HOST),
        400,
        "RFC 9112 §3: request-line = method SP request-target SP HTTP-version",
    ),
    (r(b"GET / HTTP/1.1 ", HOST), 400, "RFC 9112 §3: no whitespace after HTTP-version"),
    (r(b" GET / HTTP/1.1", HOST), 400, "RFC 9112 §3: no whitespace before the method"),
    (r(b"GET\t/\tHTTP/1.1", HOST), 400, "RFC 9112 §3: separators are single SP, not HTAB"),
    (r(b"GET /a b HTTP/1.1", HOST), 400, "RFC 9112 §3.2: no whitespace is allowed in the request-target"),
    (r(b"GET /a\x01b HTTP/1.1", HOST), 400, "RFC 9112 §3.2 / RFC 3986 §2: CTL in the request-target"),
    (r(b"GET /a\x7fb HTTP/1.1", HOST), 400, "RFC 9112 §3.2 / RFC 3986 §2: DEL in the request-target"),
    (
        r(b"GET /\xc3\xa9 HTTP/1.1", HOST),
        400,
        "RFC 9112 §3.2 / RFC 3986 §2: non-ASCII octet in the request-target",
    ),
    (r(b"GET /\x00 HTTP/1.1", HOST), 400, "RFC 9112 §3.2 / RFC 3986 §2: NUL in the request-target"),
    (r(b"GET #frag HTTP/1.1", HOST), 400, "RFC 9112 §3.2: a request-target that is only a fragment"),
    (
        r(b"G(T / HTTP/1.1", HOST),
        400,
        "RFC 9112 §3.1 / RFC 9110 §5.6.2: method is a token, '(' is a delimiter",
    ),
    (r(b"GE\x00T / HTTP/1.1", HOST), 400, "RFC 9112 §3.1 / RFC 9110 §5.6.2: NUL in the method token"),
    (
        r(b"G\xc3\xa9T / HTTP/1.1", HOST),
        400,
        "RFC 9112 §3.1 / RFC 9110 §5.6.2: non-ASCII octet in the method",
    ),
    (r(b"GET\x7f / HTTP/1.1", HOST), 400, "RFC 9112 §3.1 / RFC 9110 §5.6.2: DEL in the method token"),
    (r(b"/ HTTP/1.1", HOST), 400, "RFC 9112 §3: request-line without a method"),
    (r(b"GET HTTP/1.1", HOST), 400, "RFC 9112 §3: request-line without a request-target"),
    (r(b"GET /", HOST), 400, "RFC 9112 §3: request-line without HTTP-version (HTTP/0.9 simple request)"),
    (r(b"GET / HTTP/2.0", HOST), 505, "RFC 9110 §15.6.6 / RFC 9112 §2.3: major version 2 not supported"),
    (r(b"GET / HTTP/3.0", HOST), 505, "RFC 9110 §15.6.6 / RFC 9112 §2.3: major version 3 not supported"),
    (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        505,
        "RFC 9113 §3.4 preface to an HTTP/1.1 server: RFC 9110 §15.6.6",
    ),
    (r(b"GET / HTTP/0.9", HOST), 505, "RFC 9110 §15.6.6: HTTP/0.9 not supported"),
    (r(b"GET / HTTP/1", HOST), 400, "RFC 9112 §2.3: HTTP-version = HTTP-name '/' DIGIT '.' DIGIT"),
    (r(b"GET / http/1.1", HOST), 400, 'RFC 9112 §2.3: HTTP-name is case-sensitive %s"HTTP"'),
    (r(b"GET / HTTP/1.1x", HOST), 400, "RFC 9112 §2.3: trailing octets after HTTP-version"),
    (r(b"GET / HTTP/1.10", HOST), 400, "RFC 9112 §2.3: minor version is a single DIGIT"),
    (r(b"GET / HTTP/11", HOST), 400, "RFC 9112 §2.3: HTTP-version needs '.'"),
    (r(b"GET / HTTPS/1.1", HOST), 400, "RFC 9112 §2.3: HTTP-name must be HTTP"),
    (r(b"GET / HTTP/ 1.1", HOST), 400, "RFC 9112 §3: extra SP inside HTTP-version"),
    (r(b"GET * HTTP/1.1", HOST), 400, "RFC 9112 §3.2.4: asterisk-form only for OPTIONS"),
    (r(b"CONNECT / HTTP/1.1", HOST), 400, "RFC 9112 §3.2.3: CONNECT takes authority-form"),
    (r(b"CONNECT example.com HTTP/1.1", HOST), 400, "RFC 9112 §3.2.3: authority-form = uri-host ':' port"),
    (r(b"CONNECT u@example.com:443 HTTP/1.1", HOST), 400, "RFC 9112 §3.2.3: no userinfo in authority-form"),
    (r(b"GET example.com:80 HTTP/1.1", HOST), 400, "RFC 9112 §3.2.3: authority-form only for CONNECT"),
    (r(b"GET a/b HTTP/1.1", HOST), 400, "RFC 9112 §3.2.1: origin-form = absolute-path [ '?' query ]"),
    (
        r(b"GET http:///x HTTP/1.1", HOST),
        400,
        "RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected",
    ),
    (
        r(b"GET http://:80/x HTTP/1.1", HOST),
        400,
        "RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected",
    ),
    (
        r(b"GET /" + b"a" * 200 + b" HTTP/1.1", HOST),
        414,
        "RFC 9112 §3 / RFC 9110 §15.5.15: request-target too long",
    ),
    (
        b"GET /" + b"a" * 200,
        414,
        "RFC 9112 §3 / RFC 9110 §15.5.15: request-target too long, line not even ended",
    ),
    (
        b"\r\n" * 17 + r(_GET, HOST),
        400,
        "RFC 9112 §2.2: empty lines before the request-line, over our limit of 16",
    ),
    (b"   \r\n" + r(_GET, HOST), 400, "RFC 9112 §2.2/§3: whitespace-only line is not a request-line"),
    # --- line endings (RFC 9112 §2.2) ---
    (
        b"GET / HTTP/1.1\nHost: a\n\n",
        400,
        "RFC 9112 §2.2: bare LF line terminators (we do not recognize them)",
    ),
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "RFC 9112 §2.2: bare LF after the request-line"),
    (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "RFC 9112 §2.2: bare LF after a field line"),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "RFC 9112 §2.2: bare LF ending the header section"),
    (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "RFC 9112 §2.2: bare LF before the request-line"),
    (b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "RFC 9112 §2.2: bare CR in the request-line"),
    (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "RFC 9112 §2.2 / RFC 9110 §5.5: bare CR in a field value"),
    (b"GET / HTTP/1.1\rHost: a\r\r\n\r\n", 400, "RFC 9112 §2.2: bare CR as a line terminator"),
    (b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400, "RFC 9112 §2.2: CR CR LF"),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n",
        400,
        "RFC 9112 §2.2: bare CR in the empty line ending the head",
    ),
    # --- field lines (RFC 9112 §5, RFC 9110 §5) ---
    (r(_GET, HOST, b"X: b", b" c"), 400, "RFC 9112 §5.2: obs-fold (SP) rejected"),
    (r(_GET, HOST, b"X: b", b"\tc"), 400, "RFC 9112 §5.2: obs-fold (HTAB) rejected"),
    (r(_GET, b" Host: a"), 400, "RFC 9112 §2.2: whitespace between the start-line and the first field"),
    (r(_GET, b"Host : a"), 400, "RFC 9112 §5.1: no whitespace between field name and colon"),
    (r(_GET, HOST, b"X\t: a"), 400, "RFC 9112 §5.1: no whitespace (HTAB) between field name and colon"),
    (r(_GET, HOST, b"X a"), 400, "RFC 9112 §5: field-line = field-name ':' OWS field-value OWS"),
    (r(_GET, HOST, b": a"), 400, "RFC 9110 §5.1: field-name is a token, not empty"),
    (r(_GET, HOST, b"X(Y: a"), 400, "RFC 9110 §5.1/§5.6.2: '(' is not a tchar"),
    (r(_GET, HOST, b"X Y: a"), 400, "RFC 9110 §5.1/§5.6.2: SP in a field-name"),
    (r(_GET, HOST, b"X@Y: a"), 400, "RFC 9110 §5.1/§5.6.2: '@' is not a tchar"),
    (r(_GET, HOST, b"X\x00Y: a"), 400, "RFC 9110 §5.1/§5.6.2: NUL in a field-name"),
    (r(_GET, HOST, b"\xc3\xa9: a"), 400, "RFC 9110 §5.1/§5.6.2: non-ASCII field-name"),
    (r(_GET, HOST, b"X: a\x00b"), 400, "RFC 9110 §5.5: NUL in a field value MUST be rejected or replaced"),
    (r(_GET, HOST, b"X: a\x01b"), 400, "RFC 9110 §5.5: CTL (0x01) in a field value"),
    (r(_GET, HOST, b"X: a\x1fb"), 400, "RFC 9110 §5.5: CTL (0x1f) in a field value"),
    (r(_GET, HOST, b"X: a\x7fb"), 400, "RFC 9110 §5.5: DEL in a field value"),
    (r(_GET, HOST, b"X: a\x0bb"), 400, "RFC 9110 §5.5: VT in a field value"),
    (r(_GET, HOST, b"X: \x0c"), 400, "RFC 9110 §5.5: FF is not OWS"),
    (
        r(_GET, HOST, *[b"X-%d: v" % i for i in range(10)]),
        431,
        "RFC 6585 §5: too many header fields (limit 10)",
    ),
    (r(_GET, HOST, b"X: " + b"v" * 600), 431, "RFC 6585 §5: header section too large (limit 512 bytes)"),
    (
        _GET + b"\r\n" + HOST + b"\r\nX: " + b"v" * 600,
        431,
        "RFC 6585 §5: header section too large, never ended",
    ),
    # --- Host (RFC 9112 §3.2, RFC 9110 §7.2) ---
    (r(_GET), 400, "RFC 9112 §3.2: HTTP/1.1 request without Host"),
    (r(_GET, HOST, HOST), 400, "RFC 9112 §3.2: more than one Host field line"),
    (r(b"GET / HTTP/1.0", HOST, b"Host: other"), 400, "RFC 9112 §3.2: more than one Host, any version"),
    (r(_GET, b"Host: a b"), 400, "RFC 9112 §3.2 / RFC 9110 §7.2: invalid Host value (SP)"),
    (r(_GET, b"Host: user@example.com"), 400, "RFC 9112 §3.2 / RFC 9110 §7.2: Host = uri-host [':' port]"),
    (r(_GET, b"Host: example.com/x"), 400, "RFC 9112 §3.2 / RFC 9110 §7.2: '/' in Host"),
    (r(_GET, b"Host: example.com:8o"), 400, "RFC 9112 §3.2 / RFC 3986 §3.2.3: port = *DIGIT"),
    # --- Content-Length (RFC 9112 §6.3, RFC 9110 §8.6) ---
    (r(_POST, HOST, b"Content-Length: 5", _TE, body=b"0\r\n\r\n"), 400, "RFC 9112 §6.3 item 3: CL with TE"),
    (r(_POST, HOST, _TE, b"Content-Length: 5", body=b"0\r\n\r\n"), 400, "RFC 9112 §6.3 item 3: TE with CL"),
    (
        r(_POST, HOST, b"Content-Length: 5", b"Content-Length: 6", body=b"hello"),
        400,
        "RFC 9112 §6.3 item 5: CLs differ",
    ),
    (
        r(_POST, HOST, b"Content-Length: 5, 6", body=b"hello"),
        400,
        "RFC 9112 §6.3 item 5: CL list values differ",
    ),
    (
        r(_POST, HOST, b"Content-Length: +5", body=b"hello"),
        400,
        "RFC 9110 §8.6: Content-Length = 1*DIGIT (+5)",
    ),
    (r(_POST, HOST, b"Content-Length: -1"), 400, "RFC 9110 §8.6: Content-Length = 1*DIGIT (-1)"),
    (
        r(_POST, HOST, b"Content-Length: 0x5", body=b"hello"),
        400,
        "RFC 9110 §8.6: Content-Length = 1*DIGIT (0x5)",
    ),
    (
        r(_POST, HOST, b"Content-Length: 5 5", body=b"hello"),
        400,
        "RFC 9110 §8.6: Content-Length = 1*DIGIT (5 5)",
    ),
    (r(_POST, HOST, b"Content-Length:"), 400, "RFC 9110 §8.6: empty Content-Length"),
    (
        r(_POST, HOST, b"Content-Length: 5.0", body=b"hello"),
        400,
        "RFC 9110 §8.6: Content-Length = 1*DIGIT (5.0)",
    ),
    (r(_POST, HOST, b"Content-Length: 5\xa0", body=b"hello"), 400, "RFC 9110 §8.6: NBSP is not OWS"),
    (
        r(_POST, HOST, b"Content-Length: \xb2"),
        400,
        "RFC 9110 §8.6: DIGIT is ASCII 0-9 only (superscript two)",
    ),
    (
        r(_POST, HOST, b"Content-Length: 99999999999999999999"),
        400,
        "RFC 9110 §8.6: overflow guard, >18 digits",
    ),
    (r(_POST, HOST, b"Content-Length: 1001"), 413, "RFC 9110 §15.5.14: body over the limit (1000)"),
    (r(_POST, HOST, b"Content-Length: 1000000000000"), 413, "RFC 9110 §15.5.14: body over the limit"),
    # --- Transfer-Encoding (RFC 9112 §6.1, §6.3, §7) ---
    (r(_POST, HOST, b"Transfer-Encoding: chunked, gzip"), 400, "RFC 9112 §6.3 item 4: chunked not final"),
    (r(_POST, HOST, b"Transfer-Encoding: gzip"), 400, "RFC 9112 §6.3 item 4: TE without chunked"),
    (
        r(_POST, HOST, b"Transfer-Encoding: identity"),
        400,
        "RFC 9112 §6.3 item 4: chunked not final (identity)",
    ),
    (r(_POST, HOST, b"Transfer-Encoding: xchunked"), 400, "RFC 9112 §6.3 item 4: 'xchunked' is not chunked"),
    (r(_POST, HOST, b"Transfer-Encoding: chunked\xa0"), 400, "RFC 9112 §6.3 item 4: NBSP is not OWS"),
    (
        r(_POST, HOST, b'Transfer-Encoding: "chunked"'),
        400,
        "RFC 9112 §6.3 item 4: quoted 'chunked' is not chunked",
    ),
    (r(_POST, HOST, b"Transfer-Encoding:"), 400, "RFC 9112 §6.3 item 4: empty Transfer-Encoding"),
    (r(_POST, HOST, b"Transfer-Encoding: chunked, chunked"), 400, "RFC 9112 §7.1: chunked applied twice"),
    (r(_POST, HOST, _TE, _TE), 400, "RFC 9112 §7.1: chunked applied twice (two field lines)"),
    (
        r(_POST, HOST, b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
        501,
        "RFC 9112 §6.1: transfer coding not understood SHOULD get 501",
    ),
    (
        r(b"POST / HTTP/1.0", _TE, body=b"0\r\n\r\n"),
        400,
        "RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing",
    ),
    (
        r(_POST, HOST, b"Transfer-Encoding : chunked"),
        400,
        "RFC 9112 §5.1: whitespace before colon (TE smuggling)",
    ),
    (
        r(_POST, HOST, b"Transfer-Encoding:\x0bchunked"),
        400,
        "RFC 9110 §5.5: VT before chunked (TE smuggling)",
    ),
    # --- Expect (RFC 9110 §10.1.1) ---
    (r(_GET, HOST, b"Expect: 100-continuex"), 417, "RFC 9110 §10.1.1: expectation other than 100-continue"),
    (r(_GET, HOST, b"Expect: foo"), 417, "RFC 9110 §10.1.1: expectation other than 100-continue"),
    (
        r(_GET, HOST, b"Expect: foo", b"Expect: 100-continue"),
        417,
        "RFC 9110 §10.1.1: one member not 100-continue",
    ),
    # --- chunked body (RFC 9112 §7.1) ---
    (_chunked(b"g\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: chunk-size = 1*HEXDIG"),
    (_chunked(b"1" + b"0" * 16 + b"\r\n"), 400, "RFC 9112 §7.1: chunk-size overflow guard (>16 hex digits)"),
    (_chunked(b"-1\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: negative chunk-size"),
    (_chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: chunk-size is bare HEXDIG, no 0x"),
    (_chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: whitespace before chunk-size"),
    (_chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: whitespace after chunk-size without ext"),
    (_chunked(b"\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: empty chunk-size"),
    (_chunked(b"5\r\nhello0\r\n\r\n"), 400, "RFC 9112 §7.1: CRLF missing after chunk-data"),
    (_chunked(b"3\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: chunk-data longer than chunk-size"),
    (_chunked(b"5\r\nhel\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1: chunk-data shorter than chunk-size"),
    (_chunked(b"5\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1 / §2.2: bare LF after chunk-size"),
    (_chunked(b"5\r\nhello\n0\r\n\r\n"), 400, "RFC 9112 §7.1 / §2.2: bare LF after chunk-data"),
    (_chunked(b"5\r\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1 / §2.2: bare CR in chunk line"),
    (_chunked(b"5;\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1.1: chunk-ext name is a token"),
    (_chunked(b'5;a="b\r\nhello\r\n0\r\n\r\n'), 400, "RFC 9112 §7.1.1: unterminated quoted-string"),
    (_chunked(b"5;a b\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1.1: chunk-ext = *( BWS ';' BWS name ... )"),
    (_chunked(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1.1: CTL in chunk-ext value"),
    (
        _chunked(b"5;" + b"e" * 70 + b"\r\nhello\r\n0\r\n\r\n"),
        400,
        "RFC 9112 §7.1.1: chunk line over limit (64)",
    ),
    (_chunked(b"3e9\r\n"), 413, "RFC 9110 §15.5.14: chunk larger than the body limit (1000)"),
    (_chunked(b"1f4\r\n" + b"a" * 500 + b"\r\n1f5\r\n"), 413, "RFC 9110 §15.5.14: chunks sum over the limit"),
    (_chunked(b"ffffffffffffffff\r\n"), 413, "RFC 9110 §15.5.14: 2**64-1 byte chunk"),
    (
        _chunked(b"0\r\nX: " + b"t" * 200 + b"\r\n\r\n"),
        431,
        "RFC 9112 §7.1.2 / RFC 6585 §5: trailer over limit",
    ),
    (
        _chunked(b"0\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"t" * 30) for i in range(5)) + b"\r\n"),
        431,
        "RFC 9112 §7.1.2 / RFC 6585 §5: trailer lines sum over limit (128)",
    ),
    (_chunked(b"0\r\nX: a\r\n b\r\n\r\n"), 400, "RFC 9112 §5.2/§7.1.2: obs-fold in the trailer section"),
    (_chunked(b"0\r\nX : a\r\n\r\n"), 400, "RFC 9112 §5.1/§7.1.2: whitespace before colon in a trailer"),
    (_chunked(b"0\r\nX a\r\n\r\n"), 400, "RFC 9112 §7.1.2: trailer field line without colon"),
    (_chunked(b"0\r\nX: a\x00\r\n\r\n"), 400, "RFC 9110 §5.5/RFC 9112 §7.1.2: NUL in a trailer value"),
    (_chunked(b"0\r\n\n"), 400, "RFC 9112 §7.1 / §2.2: bare LF ending the trailer section"),
    # --- pipelined: the second request is the faulty one ---
    (r(_GET, HOST) + r(b"GET / HTTP/2.0", HOST), 505, "RFC 9110 §15.6.6: second pipelined request HTTP/2.0"),
    (
        r(_POST, HOST, b"Content-Length: 5", body=b"helloGET / HTTP/1.1\r\n\r\n"),
        400,
        "RFC 9112 §3.2: request after the body lacks Host (CL framing honoured)",
    ),
    (
        _chunked(b"0\r\n\r\n") + r(_GET, HOST, b"X : y"),
        400,
        "RFC 9112 §5.1: bad field in request after chunked",
    ),
]
