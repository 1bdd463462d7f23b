"""STUN and TURN server URIs (RFC 7064, RFC 7065) and iceServers lists, and
what a Connection makes of them. Runs on both runtimes."""

from helpers import raises
from ice import aio
from ice.compat import IS_MICROPYTHON
from ice.servers import parse, parse_all


def fields(server):
    return server.kind, server.host, server.port, server.transport, server.tls


def test_default_ports_and_transports_rfc7064_rfc7065():
    assert fields(parse("stun:stun.example.org")) == ("stun", "stun.example.org", 3478, "udp", False)
    assert fields(parse("turn:turn.example.org", "u", "p")) == ("turn", "turn.example.org", 3478, "udp", False)
    assert fields(parse("turns:turn.example.org", "u", "p")) == ("turn", "turn.example.org", 5349, "tcp", True)
    assert fields(parse("turn:192.0.2.1:443?transport=tcp", "u", "p")) == ("turn", "192.0.2.1", 443, "tcp", False)
    assert fields(parse("turns:turn.example.org:443?transport=tcp", "u", "p"))[2:] == (443, "tcp", True)
    assert fields(parse("STUN:[2001:db8::1]:19302")) == ("stun", "2001:db8::1", 19302, "udp", False)
    assert fields(parse("turn:[2001:db8::1]", "u", ""))[1:3] == ("2001:db8::1", 3478)


def test_bad_uris_say_what_is_wrong():
    for uri, words in (
        ("http://example.org", "stun:, turn: or turns:"),
        ("stun.example.org", "stun:, turn: or turns:"),
        ("stuns:example.org", "not supported"),
        ("turns:example.org?transport=udp", "DTLS"),
        ("turn:example.org?transport=sctp", "?transport=udp or ?transport=tcp"),
        ("stun:example.org?transport=tcp", "no ?transport"),
        ("stun://example.org", "no //"),
        ("stun:example.org:0", "1-65535"),
        ("stun:example.org:http", "1-65535"),
        ("stun::3478", "no host"),
        ("stun:2001:db8::1", "brackets"),
        ("stun:[2001:db8::1]3478", ":port"),
    ):
        try:
            parse(uri, "u", "p")
        except ValueError as e:
            assert words in str(e), (uri, str(e))
        else:
            raise AssertionError("%s was accepted" % uri)


def test_turn_needs_credentials_and_they_never_reach_an_error():
    assert raises(ValueError, parse, "turn:example.org")
    try:
        parse_all([{"url": "turn:example.org", "username": "u", "credential": "secret-pw"}])
    except ValueError as e:
        assert "urls" in str(e) and "secret-pw" not in str(e), str(e)
    else:
        raise AssertionError("an entry without urls was accepted")


def test_ice_servers_lists_like_a_browsers():
    found = parse_all([
        "stun:stun.example.org",
        {"urls": ["turn:turn.example.org?transport=tcp", "turns:turn.example.org:443"],
         "username": "cam", "credential": "pw"},
        {"urls": "stun:192.0.2.7:3479"},
    ])
    assert [fields(s) for s in found] == [
        ("stun", "stun.example.org", 3478, "udp", False),
        ("turn", "turn.example.org", 3478, "tcp", False),
        ("turn", "turn.example.org", 443, "tcp", True),
        ("stun", "192.0.2.7", 3479, "udp", False),
    ]
    assert found[2].username == "cam" and found[2].password == "pw"


def test_a_connection_takes_them():
    conn = aio.Connection(True, ice_servers=["stun:192.0.2.7", {"urls": "turn:192.0.2.8?transport=tcp",
                                                                 "username": "u", "credential": "p"}])
    assert conn._stun_servers == [("192.0.2.7", 3478)]
    assert conn._turn_servers == [("192.0.2.8", 3478, "tcp", False, "u", "p")]
    assert raises(ValueError, lambda: aio.Connection(True, ice_servers=["turn:192.0.2.8"]))


def test_tls_on_micropython_needs_the_servers_ca_or_an_explicit_opt_out():
    servers = [{"urls": "turns:192.0.2.8", "username": "u", "credential": "p"}]
    if IS_MICROPYTHON:  # no system CA store on a board
        try:
            aio.Connection(True, ice_servers=servers)
        except ValueError as e:
            assert "CA" in str(e) and "verify=False" in str(e), str(e)
        else:
            raise AssertionError("turns: without a CA was accepted")
    else:  # CPython trusts the system's CAs
        assert aio.Connection(True, ice_servers=servers)._tls_context is not None
