"""Trusted proxies: which peers may say who the client is, and what X-Forwarded-* / Forwarded say.

Pure functions over a peer address, a `Trust` set and the request's header fields; the protocol loops apply
the result to `Request.peer` / `Request.scheme` and to the WSGI environ, and only on connections whose peer
is trusted (decided once per connection), so other connections pay nothing.

The client address is the rightmost untrusted hop: X-Forwarded-For (and the `for=` of RFC 7239 Forwarded)
lists one address per proxy, each appended by the next one; reading from the right, every address in the
trusted set is a proxy of ours and the first one that is not is the client (if all are trusted, the
leftmost). An entry that is not an address ("unknown", an obfuscated name, garbage) ends the walk: what
lies left of it cannot be vouched for. The scheme and host are those of the Forwarded element naming the
client, or the rightmost X-Forwarded-Proto / X-Forwarded-Host value, and must be http/https and a valid
host. When a request carries both forms and they disagree on a value, neither is believed for it: a proxy
that sets one form passes the other through from the client untouched, and the client must not choose.
A trusted proxy must set or remove each of these headers it passes on.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

NAMES = frozenset(("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"))
SCHEMES = ("http", "https")
_CACHE_MAX = 4096  # addresses remembered per trusted set, and parsed nodes
_NODE_MAX = 80  # longer than any address with a port (and a scope id): not one, and not cached

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_PAIR_RE = re.compile(f"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_SPACE_RE = re.compile("[ \t]*")
_PORT_RE = re.compile("[0-9]{1,5}")
_OBFUSCATED_RE = re.compile("_[A-Za-z0-9._-]+")
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?")

Client = tuple[str, int]


class View(NamedTuple):
    """What the trusted proxies say; None where they say nothing usable (keep the connection's own)."""

    client: Client | None
    scheme: str | None
    host: str | None


# -- the trusted set ------------------------------------------------------------------------------------
def allow_list(raw: str | list[str]) -> str:
    """Validate a setting such as "127.0.0.1,::1", "10.0.0.0/8" or "*" (a TOML list too); "" trusts none."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(raw)
    items = [item.strip() for item in items if item.strip()]
    for item in items:
        if item != "*":
            ipaddress.ip_network(item, strict=False)  # ValueError for anything else
    return ",".join(items)


class Trust:
    """A set of addresses and networks ("*" is every address), with a bounded cache of verdicts."""

    __slots__ = ("_cache", "everyone", "networks")

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self.networks = tuple(ipaddress.ip_network(item, strict=False) for item in items if item != "*")
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def __contains__(self, host: object) -> bool:
        verdict = self._cache.get(host)  # type: ignore[call-overload]
        if verdict is None:
            verdict = self._check(host)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[host] = verdict  # type: ignore[index]
        return verdict

    def _check(self, host: object) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(host)  # type: ignore[arg-type]
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        return any(address in network for network in self.networks)

    def peer(self, peer: Any) -> bool:
        """Whether a connection's peer is trusted. A UNIX-socket peer (a str) is whenever anything is, as in
        gunicorn: only local processes allowed to open the socket file can connect."""
        if type(peer) is tuple:
            verdict = self._cache.get(peer[0])  # once per connection: skip a call when known
            return verdict if verdict is not None else peer[0] in self
        return bool(self)


@functools.lru_cache(maxsize=16)
def trust_for(spec: str) -> Trust:
    """One shared `Trust` per setting value."""
    return Trust(spec)


# -- applying what trusted proxies say --------------------------------------------------------------------
def forwarded_view(trust: Trust, headers: Iterable[tuple[str, str]]) -> View | None:
    """What the forwarding headers among `headers` (lower-case names) say; None if there are none."""
    for name, _ in headers:
        if name in NAMES:
            break
    else:
        return None  # the common case, kept to one loop
    found: dict[str, list[str]] = {}
    for name, value in headers:
        if name in NAMES:
            found.setdefault(name, []).append(value)
    rfc = from_forwarded(trust, found["forwarded"]) if "forwarded" in found else _SILENT
    xff = found.get("x-forwarded-for")
    proto = found.get("x-forwarded-proto")
    xhost = found.get("x-forwarded-host")
    return View(
        _agree(rfc[0], walk(trust, _list(xff)) if xff else _ABSENT, same_host=True),
        _agree(rfc[1], _scheme(_last(proto)) if proto else _ABSENT),
        _agree(rfc[2], _host(_last(xhost)) if xhost else _ABSENT),
    )


def native_view(
    trust: Trust, headers: Iterable[tuple[str, str]], peer: Any, scheme: str
) -> tuple[Any, str, str | None]:
    """The (peer, scheme, forwarded host or None) a native Request gets on a trusted connection."""
    for name, _ in headers:  # run for every request of a trusted peer: usually finds nothing
        if name in NAMES:
            break
    else:
        return peer, scheme, None
    view = forwarded_view(trust, headers)
    if view is None:
        return peer, scheme, None
    return view.client or peer, view.scheme or scheme, view.host


def apply_environ(trust: Trust, headers: Iterable[tuple[str, str]], environ: dict) -> None:
    """Set REMOTE_ADDR / REMOTE_PORT, wsgi.url_scheme and HTTP_HOST / SERVER_NAME / SERVER_PORT."""
    view = forwarded_view(trust, headers)
    if view is None:
        return
    if view.client is not None:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = view.client[0], str(view.client[1])
    if view.scheme is not None:
        environ["wsgi.url_scheme"] = view.scheme
    if view.host is not None:
        environ["HTTP_HOST"] = view.host
        name, port = split_host(view.host)
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port or ("443" if environ["wsgi.url_scheme"] == "https" else "80")


# -- the two forms ----------------------------------------------------------------------------------------
_ABSENT: Any = object()  # the header form says nothing about this value
_SILENT = (_ABSENT, _ABSENT, _ABSENT)
_nodes: dict[tuple[str, bool], Client | None] = {}  # parse_node's results: clients repeat


def _agree(a: Any, b: Any, same_host: bool = False) -> Any:
    """One value from both forms: either alone, or both when they agree; None when they disagree."""
    if a is _ABSENT:
        return None if b is _ABSENT else b
    if b is _ABSENT or a == b:
        return a
    if same_host and a is not None and b is not None and a[0] == b[0]:
        return a if a[1] else b  # the same address; one of them knows the port
    return None


def walk(trust: Trust, hops: list[str]) -> Client | None:
    """The client among X-Forwarded-For entries (oldest first): the rightmost untrusted hop."""
    client = None
    for hop in reversed(hops):
        address = parse_node(hop, bare_ipv6=True)
        if address is None:
            break
        client = address
        if address[0] not in trust:
            break
    return client


def from_forwarded(trust: Trust, lines: list[str]) -> tuple[Any, Any, Any]:
    """(client, scheme, host) from RFC 7239 Forwarded field lines; _ABSENT where no element speaks of it."""
    elements = [element for line in lines for element in parse_forwarded(line)]
    chosen: dict[str, str] | None = None
    client = None
    for element in reversed(elements):
        if element is None:
            break
        chosen = element
        node = element.get("for")
        address = parse_node(node) if node is not None else None
        if address is None:
            break
        client = address
        if address[0] not in trust:
            break
    spoken = [name for name in ("for", "proto", "host") if any(e is None or name in e for e in elements)]
    if chosen is None:
        return tuple(None if name in spoken else _ABSENT for name in ("for", "proto", "host"))  # type: ignore[return-value]
    return (
        client if "for" in spoken else _ABSENT,
        _scheme(chosen.get("proto")) if "proto" in spoken else _ABSENT,
        _host(chosen.get("host")) if "host" in spoken else _ABSENT,
    )


def parse_forwarded(value: str) -> list[dict[str, str] | None]:
    """The elements of one Forwarded field line, each a dict of lower-case parameter → unquoted value.

    A malformed element is None; parsing picks up again after the next comma outside a quoted string.
    """
    elements: list[dict[str, str] | None] = []
    pos, end = 0, len(value)
    while True:
        element: dict[str, str] | None = {}
        while True:
            match = _PAIR_RE.match(value, pos)
            if match is not None:
                name = match.group(1).lower()
                if element is not None and name in element:
                    element = None  # a parameter may occur once per element (RFC 7239 §4)
                if element is not None:
                    element[name] = _unquote(match.group(2))
                pos = match.end()
            else:
                pos = _SPACE_RE.match(value, pos).end()  # type: ignore[union-attr]
            if pos < end and value[pos] == ";":
                pos += 1
                continue
            if pos < end and value[pos] != ",":
                element, pos = None, _next_comma(value, pos)
            break
        if element != {}:
            elements.append(element)
        if pos >= end:
            return elements
        pos += 1  # past the comma


def _next_comma(value: str, pos: int) -> int:
    quoted = False
    while pos < len(value):
        char = value[pos]
        if char == '"':
            quoted = not quoted
        elif char == "\\" and quoted:
            pos += 1
        elif char == "," and not quoted:
            return pos
        pos += 1
    return pos


def _unquote(value: str) -> str:
    if value[:1] != '"':
        return value
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def parse_node(node: str, bare_ipv6: bool = False) -> Client | None:
    """An address with an optional port ("192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:80", and with
    `bare_ipv6` "2001:db8::1" as X-Forwarded-For writes it); None for "unknown", obfuscated or invalid."""
    key = (node, bare_ipv6)
    parsed = _nodes.get(key, _ABSENT)
    if parsed is _ABSENT:
        parsed = _parse_node(node.strip(" \t"), bare_ipv6) if len(node) <= _NODE_MAX else None
        if len(_nodes) >= _CACHE_MAX:
            _nodes.clear()
        _nodes[key] = parsed
    return parsed


def _parse_node(node: str, bare_ipv6: bool) -> Client | None:
    port = ""
    if node[:1] == "[":
        host, bracket, rest = node[1:].partition("]")
        if not bracket or (rest and rest[:1] != ":"):
            return None
        port, version = rest[1:], 6
    elif bare_ipv6 and node.count(":") > 1:
        host, version = node, 6
    else:
        host, colon, port = node.partition(":")
        if colon and not port:
            return None
        version = 4
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version != version:
        return None
    if not port or _OBFUSCATED_RE.fullmatch(port):
        return str(address), 0
    if not _PORT_RE.fullmatch(port) or int(port) > 65535:
        return None
    return str(address), int(port)


def _list(values: list[str]) -> list[str]:
    return [item.strip(" \t") for value in values for item in value.split(",") if item.strip(" \t")]


def _last(values: list[str]) -> str | None:
    items = _list(values)
    return items[-1] if items else None


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.lower()
    return value if value in SCHEMES else None


def _host(value: str | None) -> str | None:
    if value is None or not _HOST_RE.fullmatch(value):
        return None
    port = split_host(value)[1]
    return value if not port or int(port) <= 65535 else None


def split_host(host: str) -> tuple[str, str]:
    """("name", "port") of a validated host value; the port is "" when it has none."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:]
    name, _, port = host.partition(":")
    return name, port
