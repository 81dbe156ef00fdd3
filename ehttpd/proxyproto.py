"""Sans-I/O parser of the PROXY protocol header, versions 1 (text) and 2 (binary).

A load balancer (HAProxy, AWS NLB, nginx `proxy_protocol`) sends this header first on every connection to
say who the real client is. `parse(buf)` takes the bytes received so far and returns a `ProxyHeader`
(source, destination, bytes consumed), None while more bytes are needed, or raises `ProxyError`. It is
strict and bounded: a v1 line is at most 107 bytes and must follow the grammar exactly (addresses of the
named family, decimal ports without leading zeros); a v2 header is its 16-byte fixed part plus the length
that part declares. Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import ipaddress
import re
import struct
from typing import NamedTuple

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (spec §2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, length

_V1_RE = re.compile(rb"PROXY (TCP4|TCP6) ([0-9a-fA-F.:]+) ([0-9a-fA-F.:]+) ([0-9]+) ([0-9]+)\r\n")
_PORT_RE = re.compile(rb"0|[1-9][0-9]{0,4}")
# v2 address blocks by family nibble: (size, struct format of source, destination, ports) or UNIX paths
_INET, _INET6, _UNIX = 0x1, 0x2, 0x3
_V2_ADDRESSES = {_INET: (12, "!4s4sHH"), _INET6: (36, "!16s16sHH"), _UNIX: (216, "!108s108s")}

Address = tuple[str, int] | str  # (host, port) for TCP, a path for UNIX


class ProxyError(ValueError):
    """The bytes are not a valid PROXY protocol header; the message says why, in a few words."""


class ProxyHeader(NamedTuple):
    """A parsed header. source / destination are None when the header says to use the real connection's
    addresses (v1 UNKNOWN, v2 LOCAL or an unspecified family)."""

    source: Address | None
    destination: Address | None
    consumed: int  # bytes of the buffer the header took
    version: int


def parse(buf: bytes | bytearray) -> ProxyHeader | None:
    """The header at the start of `buf`, or None if `buf` is a proper prefix of one; ProxyError otherwise."""
    if buf[:1] == b"P":
        return _parse_v1(buf)
    if buf[:1] == b"\r":
        return _parse_v2(buf)
    if not buf:
        return None
    raise ProxyError("not a PROXY protocol header")


def starts_like_proxy(buf: bytes | bytearray) -> bool | None:
    """Whether `buf` begins a PROXY header (v1 or v2); None while too few bytes have come to tell."""
    for prefix in (V1_PREFIX, V2_SIGNATURE):
        n = min(len(buf), len(prefix))
        if buf[:n] == prefix[:n]:
            return True if n == len(prefix) else None
    return False


def wanted(buf: bytes | bytearray) -> int:
    """A read size that can complete the header begun in `buf` (peek this much, then consume `consumed`)."""
    if len(buf) >= V2_FIXED and buf[:1] == b"\r":
        return max(V2_FIXED + int.from_bytes(buf[14:16], "big") - len(buf), 1)
    return max(V1_MAX - len(buf), 1)


def _parse_v1(buf: bytes | bytearray) -> ProxyHeader | None:
    head = bytes(buf[:V1_MAX])
    end = head.find(b"\r\n")
    if end < 0:
        if not V1_PREFIX.startswith(head[:6]):
            raise ProxyError("not a PROXY protocol header")
        if len(head) >= V1_MAX or b"\n" in head:
            raise ProxyError("PROXY v1 line without CRLF in its first 107 bytes")
        return None
    line = head[: end + 2]
    if line.startswith(b"PROXY UNKNOWN"):  # the rest of the line is to be ignored (spec §2.1)
        if line[13:14] not in (b"\r", b" "):
            raise ProxyError("malformed PROXY v1 line")
        return ProxyHeader(None, None, len(line), 1)
    match = _V1_RE.fullmatch(line)
    if match is None:
        raise ProxyError("malformed PROXY v1 line")
    family, src, dst, sport, dport = match.groups()
    version = 4 if family == b"TCP4" else 6
    return ProxyHeader(
        (_v1_address(src, version), _v1_port(sport)),
        (_v1_address(dst, version), _v1_port(dport)),
        len(line),
        1,
    )


def _v1_address(text: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except ValueError:
        raise ProxyError(f"invalid address {text.decode('ascii')!r} in PROXY v1 line") from None
    if address.version != version:
        raise ProxyError("address of the wrong family in PROXY v1 line")
    return str(address)


def _v1_port(text: bytes) -> int:
    if not _PORT_RE.fullmatch(text) or int(text) > 65535:
        raise ProxyError(f"invalid port {text.decode('ascii')!r} in PROXY v1 line")
    return int(text)


def _parse_v2(buf: bytes | bytearray) -> ProxyHeader | None:
    n = min(len(buf), len(V2_SIGNATURE))
    if buf[:n] != V2_SIGNATURE[:n]:
        raise ProxyError("not a PROXY protocol header")
    if len(buf) < V2_FIXED:
        return None
    version_command, family_protocol, length = struct.unpack_from("!BBH", buf, 12)
    if version_command >> 4 != 2:
        raise ProxyError(f"unsupported PROXY protocol version {version_command >> 4}")
    command = version_command & 0xF
    if command > 1:
        raise ProxyError(f"unknown PROXY v2 command {command}")
    if len(buf) < V2_FIXED + length:
        return None
    consumed = V2_FIXED + length
    family, protocol = family_protocol >> 4, family_protocol & 0xF
    if family > _UNIX or protocol > 2:
        raise ProxyError(f"unknown PROXY v2 address family/protocol 0x{family_protocol:02x}")
    if command == 0 or family == 0:  # LOCAL (a health check by the proxy itself) or UNSPEC
        return ProxyHeader(None, None, consumed, 2)
    if protocol != 1:
        raise ProxyError("PROXY v2 header for a datagram or unspecified transport on a stream")
    size, layout = _V2_ADDRESSES[family]
    if length < size:
        raise ProxyError("PROXY v2 address block shorter than its family needs")
    fields = struct.unpack_from(layout, buf, V2_FIXED)
    if family == _UNIX:
        return ProxyHeader(_unix_path(fields[0]), _unix_path(fields[1]), consumed, 2)
    src, dst, sport, dport = fields
    return ProxyHeader(
        (str(ipaddress.ip_address(src)), sport), (str(ipaddress.ip_address(dst)), dport), consumed, 2
    )


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
