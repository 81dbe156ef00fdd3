#!/usr/bin/env python3
"""Microbenchmark of ehttpd's request parser against httptools (llhttp), and a strictness comparison.

Speed: µs per request for what a server does with each request it reads, from the received bytes to
method, target, header list, keep-alive flag and body:
  ours       bytearray(data) (the connection buffer), find_head, parse_head, drop the head from the buffer,
             then the body (a Content-Length slice, or ChunkedDecoder).
  httptools  HttpRequestParser.feed_data(data) on a parser reused across requests (as on a keep-alive
             connection); callbacks collect the URL, the (name, value) list and the body; then get_method()
             and should_keep_alive(). Everything stays bytes, names keep their case.
  +str       the same, converted to what RequestHead holds: str method, target and version, lower-case str
             names, latin-1 str values.
  +checks    +str, then the checks of ehttpd that llhttp does not make (HTTP version 1.0/1.1, and
             parser._frame: Host, Content-Length, Transfer-Encoding, Expect, request-target form, keep-alive):
             what a server on httptools would still have to run in Python.
Figures are the median (and min) of --repeat timeit runs of --number requests, timed with the thread's
CPU clock (time.thread_time) so that time spent descheduled by other processes does not count, the
implementations interleaved run by run so that what load remains hits them alike.

Strictness: every case of tests/corpus.py INVALID (all of which ehttpd rejects) is fed whole to a fresh
httptools parser with its default, strict settings; the cases it does not reject are listed, then those
that httptools + ehttpd's semantic checks still accept. VALID is fed too, to list what httptools refuses.

Usage: python scripts/parser_bench.py [--number N] [--repeat R] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httptools

from ehttpd.chunked import ChunkedDecoder
from ehttpd.errors import HTTPError, VersionNotSupported
from ehttpd.parser import DEFAULT_LIMITS, Limits, RequestHead, _frame, find_head, parse_head
from tests.corpus import BROWSER_GET, CHUNKED_PLAIN, INVALID, LIMITS, POST_CL, VALID, WRK_GET

CASES = [
    ("wrk GET (1 field)", WRK_GET),
    ("browser GET (6 fields)", BROWSER_GET),
    ("POST Content-Length: 27", POST_CL),
    ("POST chunked, 2 chunks + 2 trailers", CHUNKED_PLAIN),
]
LIMIT_STATUSES = {413, 414, 431}


def ours(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple:
    buf = bytearray(data)
    end = find_head(buf, limits)
    head = parse_head(buf, end, limits)
    del buf[:end]
    if head.chunked:
        decoder = ChunkedDecoder(limits)
        parts = []
        while part := decoder.decode(buf):
            parts.append(part)
        body = b"".join(parts)
    elif head.content_length:
        body = bytes(buf[: head.content_length])
        del buf[: head.content_length]
    else:
        body = b""
    return head.method, head.target, head.headers, head.keep_alive, body


class Collector:
    """httptools protocol object: collects what one request carries."""

    __slots__ = ("body", "complete", "headers", "messages", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False
        self.messages = 0

    def on_message_begin(self) -> None:
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.messages += 1


def to_str(
    parser: httptools.HttpRequestParser, proto: Collector
) -> tuple[str, str, str, list[tuple[str, str]]]:
    """What RequestHead holds, from what httptools gives."""
    return (
        parser.get_method().decode("ascii"),
        proto.url.decode("latin-1"),
        "HTTP/" + parser.get_http_version(),
        [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in proto.headers],
    )


def checks(method: str, target: str, version: str, headers: list, end: int, limits: Limits) -> RequestHead:
    """ehttpd's checks that llhttp does not make: the HTTP version, then parser._frame."""
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise VersionNotSupported("HTTP version not supported")
    return _frame(method, target, version, headers, end, limits)


def make_httptools() -> dict[str, Callable[[bytes], tuple]]:
    proto = Collector()
    parser = httptools.HttpRequestParser(proto)

    def feed(data: bytes) -> None:
        proto.url = b""
        proto.headers = []
        proto.body = []
        parser.feed_data(data)

    def raw(data: bytes) -> tuple:
        feed(data)
        return parser.get_method(), proto.url, proto.headers, parser.should_keep_alive(), b"".join(proto.body)

    def as_str(data: bytes) -> tuple:
        feed(data)
        method, target, version, headers = to_str(parser, proto)
        return method, target, version, headers, parser.should_keep_alive(), b"".join(proto.body)

    def checked(data: bytes) -> tuple:
        feed(data)
        head = checks(*to_str(parser, proto), len(data), DEFAULT_LIMITS)
        return head.method, head.target, head.headers, parser.should_keep_alive(), b"".join(proto.body)

    return {"httptools": raw, "+str": as_str, "+checks": checked}


def check_equivalent(data: bytes) -> None:
    """Every implementation must extract the same request before their speed is worth comparing."""
    method, target, headers, keep_alive, body = ours(data)
    impls = make_httptools()
    rm, rt, _, rk, rb = impls["httptools"](data)
    assert (rm.decode(), rt.decode(), rk, rb) == (method, target, keep_alive, body)
    m, t, _, h, k, b = impls["+str"](data)
    assert (m, t, k, b) == (method, target, keep_alive, body)
    assert h[: len(headers)] == headers  # llhttp reports trailer fields as more header fields
    m, t, h, k, b = impls["+checks"](data)
    assert (m, t, k, b) == (method, target, keep_alive, body)


def bench(number: int, repeat: int) -> None:
    python = sys.version.split()[0]
    print(f"Speed: µs per request, median (min) of {repeat} runs x {number} requests, CPython {python}")
    names = ["ours", "httptools", "+str", "+checks"]
    print(f"{'request':36s}" + "".join(f"{n:>15s}" for n in names) + f"{'ours/+str':>11s}")
    for case, data in CASES:
        check_equivalent(data)
        impls = {"ours": ours, **make_httptools()}
        calls = {name: (lambda f=f, d=data: f(d)) for name, f in impls.items()}
        for f in calls.values():  # warm up
            for _ in range(1000):
                f()
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeat):
            for name in names:
                timer = timeit.Timer(calls[name], timer=time.thread_time)
                samples[name].append(timer.timeit(number) / number * 1e6)
        med = {name: statistics.median(v) for name, v in samples.items()}
        cells = "".join(f"{med[n]:7.2f} ({min(samples[n]):5.2f})" for n in names)
        print(f"{case:36s}{cells}{med['ours'] / med['+str']:>10.1f}x")


class Recorder(Collector):
    """Collector that also keeps each request's head, for the semantic checks."""

    __slots__ = ("heads", "parser")

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[tuple[str, str, str, list[tuple[str, str]]]] = []
        self.parser: httptools.HttpRequestParser | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url = b""
        self.headers = []

    def on_headers_complete(self) -> None:
        self.heads.append(to_str(self.parser, self))


def httptools_verdict(data: bytes) -> tuple[bool, bool, str]:
    """(httptools rejects, httptools + ehttpd's semantic checks reject, what happened) for one byte stream."""
    proto = Recorder()
    parser = proto.parser = httptools.HttpRequestParser(proto)
    try:
        parser.feed_data(data)
        how = f"{proto.messages} message(s), the last {'complete' if proto.complete else 'waiting for bytes'}"
    except httptools.HttpParserUpgrade:
        how = "upgrade: CONNECT hands the connection over"
    except httptools.HttpParserError as exc:
        return True, True, f"{type(exc).__name__}: {exc}"
    for head in proto.heads:
        try:
            checks(*head, len(data), LIMITS)
        except HTTPError as exc:
            return False, True, f"accepted ({how}); checks: {exc.status} {exc.reason}"
    return False, False, f"accepted ({how})"


def strictness() -> None:
    results = [
        (i, status, rule, data, *httptools_verdict(data)) for i, (data, status, rule) in enumerate(INVALID)
    ]
    accepted = [r for r in results if not r[4]]
    is_limit = [r for r in accepted if r[1] in LIMIT_STATUSES or "limit" in r[2]]
    rules = [r for r in accepted if r not in is_limit]
    still = [r for r in rules if not r[5]]
    print()
    print(f"Strictness: httptools {httptools.__version__}, default settings; {len(INVALID)} INVALID requests")
    print(f"httptools accepts {len(accepted)} of {len(INVALID)} requests that ehttpd rejects.")
    print(
        f"{len(is_limit)} of them exceed a size limit (llhttp has none; a server on it counts bytes itself):"
    )
    for i, status, rule, _, _, _, how in is_limit:
        print(f"  #{i:03d} {status} {rule}\n       httptools: {how}")
    print(f"{len(rules)} break a protocol rule:")
    for i, status, rule, data, _, _, how in rules:
        shown = repr(data if len(data) <= 100 else data[:97] + b"...")
        print(f"  #{i:03d} {status} {rule}\n       {shown}\n       httptools: {how}")
    print(f"httptools + ehttpd's checks (version, _frame) still accept {len(still)} of those {len(rules)}:")
    for i, status, rule, _, _, _, _ in still:
        print(f"  #{i:03d} {status} {rule}")
    refused = [
        (name, how) for name, data, _ in VALID for rejected, _, how in [httptools_verdict(data)] if rejected
    ]
    print(f"httptools rejects {len(refused)} of the {len(VALID)} VALID requests that ehttpd accepts:")
    for name, how in refused:
        print(f"  {name}: {how}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--number", type=int, default=20000, help="requests per timeit run")
    ap.add_argument("--repeat", type=int, default=9, help="timeit runs per implementation")
    ap.add_argument("--quick", action="store_true", help="few short runs, for a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.number, args.repeat = 2000, 3
    bench(args.number, args.repeat)
    strictness()


if __name__ == "__main__":
    main()
