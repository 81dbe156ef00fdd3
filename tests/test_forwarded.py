"""X-Forwarded-* and RFC 7239 Forwarded: the pure functions, then real servers (native and WSGI) that
apply them only when the peer is in --forwarded-allow-ips."""

from __future__ import annotations

import http.client
import json

import pytest

from ehttpd.config import ConfigError, resolve
from ehttpd.forwarded import Trust, View, allow_list, forwarded_view, parse_forwarded, parse_node, walk

from .extproxy import CLIENT_HOST, nginx
from .helpers import ServerProcess

LOCAL = Trust("127.0.0.1,::1")
PROXIES = Trust("127.0.0.1,10.0.0.0/8,2001:db8:1::/48")


def view(*headers: tuple[str, str], trust: Trust = PROXIES) -> View | None:
    return forwarded_view(trust, list(headers))


# -- the trusted set --------------------------------------------------------------------------------------
def test_trust_by_address_network_and_star():
    assert "127.0.0.1" in PROXIES and "10.200.3.4" in PROXIES and "2001:db8:1:ff::9" in PROXIES
    assert "127.0.0.2" not in PROXIES and "11.0.0.1" not in PROXIES and "2001:db8:2::1" not in PROXIES
    assert "::ffff:10.1.2.3" in PROXIES  # IPv4-mapped
    assert "not-an-ip" not in PROXIES and "" not in PROXIES
    assert "203.0.113.1" in Trust("*") and Trust("*")
    assert not Trust("") and "127.0.0.1" not in Trust("")
    assert LOCAL.peer(("127.0.0.1", 5000)) and LOCAL.peer(("::1", 5000, 0, 0))
    assert not LOCAL.peer(("192.0.2.1", 5000))
    assert LOCAL.peer("") and not Trust("").peer("")  # a UNIX socket peer: trusted when anything is


def test_allow_list_setting():
    assert allow_list(" 127.0.0.1 , ::1,10.0.0.0/8 ") == "127.0.0.1,::1,10.0.0.0/8"
    assert allow_list(["*"]) == "*" and allow_list("") == ""
    for bad in ("127.0.0.1,localhost", "10.0.0.0/33", "1.2.3", [1]):
        with pytest.raises(ValueError):
            allow_list(bad)  # type: ignore[arg-type]


def test_allow_list_through_the_settings(tmp_path):
    assert (
        resolve({"forwarded_allow_ips": "10.0.0.0/8, *"}, {}, str(tmp_path)).forwarded_allow_ips
        == "10.0.0.0/8,*"
    )
    env = {"EHTTPD_PROXY_ALLOW_IPS": ""}
    assert resolve({}, env, str(tmp_path)).proxy_allow_ips == ""
    (tmp_path / "c.toml").write_text('forwarded_allow_ips = ["10.1.0.0/16", "::1"]\n')
    assert resolve({"config": "c.toml"}, {}, str(tmp_path)).forwarded_allow_ips == "10.1.0.0/16,::1"
    with pytest.raises(
        ConfigError, match=r"^--forwarded-allow-ips must be addresses or networks .*got 'nope'$"
    ):
        resolve({"forwarded_allow_ips": "nope"}, {}, str(tmp_path))


# -- X-Forwarded-* ----------------------------------------------------------------------------------------
def test_nothing_to_say_without_the_headers():
    assert view(("host", "x"), ("accept", "*/*")) is None


def test_x_forwarded_for_rightmost_untrusted_hop():
    assert walk(PROXIES, ["203.0.113.9"]) == ("203.0.113.9", 0)
    # the client forged the first entry; our proxies appended the rest
    assert walk(PROXIES, ["1.1.1.1", "203.0.113.9", "10.0.0.2"]) == ("203.0.113.9", 0)
    assert walk(PROXIES, ["10.0.0.3", "10.0.0.2"]) == ("10.0.0.3", 0)  # all trusted: the leftmost
    assert walk(PROXIES, ["203.0.113.9", "garbage"]) is None  # nothing vouched for
    assert walk(PROXIES, ["203.0.113.9", "unknown", "10.0.0.2"]) == ("10.0.0.2", 0)
    assert walk(PROXIES, ["2001:db8::5", "[2001:db8:1::2]:80"]) == ("2001:db8::5", 0)
    assert walk(PROXIES, ["203.0.113.9:4711"]) == ("203.0.113.9", 4711)


def test_x_forwarded_headers_together_and_repeated():
    got = view(
        ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
        ("x-forwarded-for", "10.1.1.1"),  # a second line continues the list
        ("x-forwarded-proto", "HTTPS"),
        ("x-forwarded-host", "example.com:8443"),
    )
    assert got == View(("203.0.113.9", 0), "https", "example.com:8443")
    assert view(("x-forwarded-proto", "http, https")) == View(None, "https", None)  # rightmost
    assert view(("x-forwarded-proto", "gopher")) == View(None, None, None)
    assert view(("x-forwarded-host", "bad host")) == View(None, None, None)
    assert view(("x-forwarded-host", "[2001:db8::1]:99999")) == View(None, None, None)
    assert view(("x-forwarded-host", "a.example, [2001:db8::1]:8080")) == View(
        None, None, "[2001:db8::1]:8080"
    )


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ("192.0.2.43", ("192.0.2.43", 0)),
        ("192.0.2.43:47011", ("192.0.2.43", 47011)),
        ("[2001:db8:cafe::17]", ("2001:db8:cafe::17", 0)),
        ("[2001:db8:cafe::17]:4711", ("2001:db8:cafe::17", 4711)),
        ("[2001:DB8:CAFE:0::17]:_port", ("2001:db8:cafe::17", 0)),
        ("unknown", None),
        ("_hidden", None),
        ("2001:db8::1", None),  # IPv6 must be bracketed in Forwarded
        ("[192.0.2.1]", None),
        ("192.0.2.43:", None),
        ("192.0.2.43:65536", None),
        ("[2001:db8::1]x", None),
    ],
)
def test_forwarded_nodes(node, expected):
    assert parse_node(node) == expected


# -- RFC 7239 Forwarded ------------------------------------------------------------------------------------
def test_forwarded_syntax():
    assert parse_forwarded('for="_gazonk"') == [{"for": "_gazonk"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [{"for": "[2001:db8:cafe::17]:4711"}]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17") == [
        {"for": "192.0.2.43"},
        {"for": "198.51.100.17"},
    ]
    assert parse_forwarded(r'for="a\"b,c", for=1.2.3.4') == [{"for": 'a"b,c'}, {"for": "1.2.3.4"}]
    # malformed elements are None; the parser picks up after the next comma outside quotes
    assert parse_forwarded('for=1.2.3.4 x, for="a,b" y, for=5.6.7.8') == [None, None, {"for": "5.6.7.8"}]
    assert parse_forwarded("for=1.1.1.1;for=2.2.2.2, for=3.3.3.3") == [None, {"for": "3.3.3.3"}]  # repeated
    assert parse_forwarded("for=[::1]") == [None]  # brackets need quotes
    assert parse_forwarded(" , ;, for=1.2.3.4") == [{"for": "1.2.3.4"}]


def test_forwarded_picks_the_element_of_the_client():
    header = (
        "forwarded",
        'for=1.1.1.1;proto=http, for="[2001:db8::9]:4711";proto=https;host=shop.example, for=10.0.0.2',
    )
    assert view(header) == View(("2001:db8::9", 4711), "https", "shop.example")
    # all trusted: the leftmost element
    assert view(("forwarded", "for=10.0.0.3;proto=https, for=10.0.0.2;proto=http")) == View(
        ("10.0.0.3", 0), "https", None
    )
    # a proxy that only tells the scheme
    assert view(("forwarded", "proto=https")) == View(None, "https", None)
    # unknown client: the element still tells what the client asked for
    assert view(("forwarded", "for=unknown;host=a.example")) == View(None, None, "a.example")
    # a malformed rightmost element: nothing can be believed
    assert view(("forwarded", "for=203.0.113.1;proto=https, for=9.9.9.9 junk")) == View(None, None, None)


def test_the_two_forms_must_agree_or_neither_is_believed():
    xff = ("x-forwarded-for", "203.0.113.9")
    assert view(xff, ("forwarded", 'for="203.0.113.9:4711"')) == View(("203.0.113.9", 4711), None, None)
    assert view(xff, ("forwarded", "for=203.0.113.9:4711")).client is None  # a port needs quotes
    # a client forging Forwarded through a proxy that only appends X-Forwarded-For (or the reverse)
    assert view(xff, ("forwarded", "for=6.6.6.6")) == View(None, None, None)
    assert view(("x-forwarded-proto", "https"), ("forwarded", "proto=http")) == View(None, None, None)
    assert view(("x-forwarded-proto", "https"), ("forwarded", "for=203.0.113.9")) == View(
        ("203.0.113.9", 0), "https", None
    )
    # a Forwarded field that says nothing usable about the client still disagrees with X-Forwarded-For
    assert view(xff, ("forwarded", 'for="1.2.3.4')).client is None


# -- real servers -------------------------------------------------------------------------------------------
HEADERS = {
    "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example",
}


def get(
    port: int, headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None
) -> dict:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers=headers or {})
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        if own:
            conn.close()


@pytest.fixture(scope="module", params=["peer_echo:app", "peer_echo_wsgi:app"])
def default_trust(request):
    server = ServerProcess(request.param, "--workers", "1").start()
    yield request.param, server
    server.stop()


def test_trusted_peer_forwarded_headers_apply(default_trust):
    app, server = default_trust
    direct, forwarded = get(server.port), get(server.port, HEADERS)
    rfc = get(server.port, {"Forwarded": 'for="[2001:db8::7]:4711";proto=https;host="shop.example:8443"'})
    if app == "peer_echo:app":
        assert direct["peer"][0] == "127.0.0.1" and direct["scheme"] == "http"
        assert (forwarded["peer"], forwarded["scheme"]) == (["203.0.113.9", 0], "https")
        assert forwarded["host"] == f"127.0.0.1:{server.port}"  # the Host field stays as sent
        assert direct["request_host"] == f"127.0.0.1:{server.port}"
        assert forwarded["request_host"] == "shop.example"  # Request.host: what the proxy forwarded
        assert (rfc["peer"], rfc["scheme"], rfc["request_host"]) == (
            ["2001:db8::7", 4711],
            "https",
            "shop.example:8443",
        )
    else:
        assert direct["REMOTE_ADDR"] == "127.0.0.1" and direct["wsgi.url_scheme"] == "http"
        assert forwarded == {
            "REMOTE_ADDR": "203.0.113.9",
            "REMOTE_PORT": "0",
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "shop.example",
            "SERVER_NAME": "shop.example",
            "SERVER_PORT": "443",
        }
        assert (rfc["REMOTE_ADDR"], rfc["REMOTE_PORT"], rfc["wsgi.url_scheme"]) == (
            "2001:db8::7",
            "4711",
            "https",
        )
        assert (rfc["HTTP_HOST"], rfc["SERVER_NAME"], rfc["SERVER_PORT"]) == (
            "shop.example:8443",
            "shop.example",
            "8443",
        )


def test_each_request_on_a_connection_stands_alone(default_trust):
    app, server = default_trust
    key = "peer" if app == "peer_echo:app" else "REMOTE_ADDR"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        first, second = get(server.port, HEADERS, conn), get(server.port, None, conn)
    finally:
        conn.close()
    assert first[key][0 if key == "peer" else slice(None)] == "203.0.113.9"
    assert second[key][0 if key == "peer" else slice(None)] == "127.0.0.1"


def test_forged_forwarded_beside_x_forwarded_for_is_not_believed(default_trust):
    app, server = default_trust
    got = get(server.port, {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=6.6.6.6"})
    assert (got["peer"][0] if app == "peer_echo:app" else got["REMOTE_ADDR"]) == "127.0.0.1"


def test_behind_nginx(default_trust, tmp_path):
    """nginx appends the client (127.0.0.2) to the X-Forwarded-For it got; the forged entry is ignored."""
    app, server = default_trust
    proxy = nginx(server.port, tmp_path).start()
    try:
        conn = http.client.HTTPConnection(
            "127.0.0.1", proxy.ports[0], timeout=5, source_address=(CLIENT_HOST, 0)
        )
        got = get(proxy.ports[0], {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example"}, conn)
        conn.close()
    finally:
        proxy.stop()
    if app == "peer_echo:app":
        assert (got["peer"], got["scheme"]) == ([CLIENT_HOST, 0], "https")
    else:
        assert (got["REMOTE_ADDR"], got["wsgi.url_scheme"]) == (CLIENT_HOST, "https")
        assert (got["HTTP_HOST"], got["SERVER_NAME"], got["SERVER_PORT"]) == (
            "shop.example",
            "shop.example",
            "443",
        )


@pytest.mark.parametrize("app", ["peer_echo:app", "peer_echo_wsgi:app"])
@pytest.mark.parametrize("allow", ["10.0.0.0/8,192.0.2.1", ""])
def test_untrusted_peer_forwarded_headers_are_ignored(app, allow):
    server = ServerProcess(app, "--workers", "1", "--forwarded-allow-ips", allow).start()
    try:
        got = get(server.port, {**HEADERS, "Forwarded": "for=203.0.113.9;proto=https"})
    finally:
        server.stop()
    if app == "peer_echo:app":
        assert got["peer"][0] == "127.0.0.1" and got["scheme"] == "http"
        assert got["request_host"] == f"127.0.0.1:{server.port}"
    else:
        assert (got["REMOTE_ADDR"], got["wsgi.url_scheme"]) == ("127.0.0.1", "http")
        assert got["HTTP_HOST"] == got["SERVER_NAME"] + ":" + got["SERVER_PORT"] == f"127.0.0.1:{server.port}"
