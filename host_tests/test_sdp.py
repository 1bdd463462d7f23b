"""The ICE SDP codec (RFC 8839 §5, RFC 8840 §8, RFC 6544 §4.5). Runs on both runtimes."""

from helpers import raises
from ice.sdp import Candidate, SdpError, format_attribute, parse_attribute

parse = Candidate.from_sdp


def rejected(line):
    """True if the candidate line raises SdpError (any other exception propagates)."""
    return raises(SdpError, parse, line)


def roundtrip(line):
    """Parse a line, check that formatting gives it back, return the candidate."""
    cand = parse(line)
    assert cand.to_sdp() == line, (cand.to_sdp(), line)
    assert parse(cand.to_sdp()) == cand
    return cand


def host_line(host="192.0.2.1", comp="1", prio="100", port="5000", transport="udp", tail=""):
    return "candidate:1 %s %s %s %s %s typ host%s" % (comp, transport, prio, host, port, tail)


SRFLX = "candidate:1 1 udp 100 192.0.2.1 5000 typ srflx"
CHROME_TAIL = " generation 0 ufrag EsAw network-id 1 network-cost 10"

# Lines as real stacks emit them (addresses moved to documentation ranges).
CHROME_HOST = "candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host" + CHROME_TAIL
CHROME_HOST6 = (
    "candidate:2999745851 1 udp 2122262783 2001:db8::1 58481 typ host"
    " generation 0 ufrag EsAw network-id 2"
)
CHROME_MDNS = (
    "candidate:1467250027 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54400"
    " typ host" + CHROME_TAIL
)
CHROME_SRFLX = (
    "candidate:842163049 1 udp 1677729535 203.0.113.5 54400 typ srflx raddr 0.0.0.0 rport 0"
    + CHROME_TAIL
)
CHROME_RELAY = (
    "candidate:3745345127 1 udp 41885439 198.51.100.7 50123 typ relay"
    " raddr 203.0.113.5 rport 61234" + CHROME_TAIL
)
CHROME_TCP_ACTIVE = (
    "candidate:1853887674 1 tcp 1518280447 192.168.0.196 9 typ host tcptype active" + CHROME_TAIL
)
FIREFOX_HOST = "candidate:0 1 UDP 2122252543 192.168.1.10 55139 typ host"
FIREFOX_SRFLX = (
    "candidate:1 1 UDP 1686052863 203.0.113.5 55139 typ srflx raddr 192.168.1.10 rport 55139"
)
FIREFOX_RELAY = (
    "candidate:4 1 UDP 8265727 198.51.100.7 61234 typ relay raddr 203.0.113.5 rport 54321"
)
FIREFOX_TCP = "candidate:3 1 TCP 2105458943 192.168.1.10 50000 typ host tcptype passive"
AIOICE_HOST = (
    "candidate:8d4e2b1a0c9f7e6d5c4b3a2918070605 1 udp 2130706431 192.168.1.5 38372 typ host"
)
PION_HOST = "candidate:1966762133 1 udp 2130706431 10.0.0.3 61211 typ host"
PION_SRFLX = (
    "candidate:3498224542 1 udp 1694498815 203.0.113.9 61211 typ srflx raddr 0.0.0.0 rport 61211"
)
PION_TCP = "candidate:2215466424 1 tcp 1671430143 10.0.0.3 8443 typ host tcptype passive"


def test_chrome_host_ipv4_with_extensions_rfc8839_s5_1():
    c = roundtrip(CHROME_HOST)
    assert c.foundation == "1467250027" and c.component == 1 and c.transport == "udp"
    assert c.priority == 2122260223 and c.host == "192.168.0.196" and c.port == 46243
    assert c.type == "host" and c.related_address is None and c.related_port is None
    assert c.tcptype is None and c.generation == 0
    assert c.extensions == [("ufrag", "EsAw"), ("network-id", "1"), ("network-cost", "10")]


def test_chrome_host_ipv6():
    c = roundtrip(CHROME_HOST6)
    assert c.host == "2001:db8::1" and c.port == 58481
    assert c.extensions == [("ufrag", "EsAw"), ("network-id", "2")]


def test_chrome_mdns_local_host():
    """An FQDN connection-address (RFC 8839 §5.1), as browsers send for mDNS."""
    c = roundtrip(CHROME_MDNS)
    assert c.host == "1f4712db-ea17-4bcf-a596-105139dfd8bf.local" and c.type == "host"


def test_srflx_and_relay_carry_raddr_rport_rfc8839_s5_1():
    c = roundtrip(CHROME_SRFLX)
    assert c.type == "srflx" and c.related_address == "0.0.0.0" and c.related_port == 0
    c = roundtrip(CHROME_RELAY)
    assert c.type == "relay" and c.priority == 41885439
    assert c.related_address == "203.0.113.5" and c.related_port == 61234
    c = roundtrip(FIREFOX_RELAY.replace("UDP", "udp"))
    assert c.related_port == 54321


def test_tcp_candidates_rfc6544_s4_5():
    c = roundtrip(CHROME_TCP_ACTIVE)
    assert c.transport == "tcp" and c.tcptype == "active" and c.port == 9 and c.generation == 0
    c = roundtrip(PION_TCP)
    assert c.tcptype == "passive" and c.port == 8443
    c = parse(FIREFOX_TCP)
    assert c.transport == "tcp" and c.tcptype == "passive"
    assert parse(host_line(transport="tcp", tail=" tcptype so")).tcptype == "so"


def test_firefox_uppercase_udp_is_lowercased():
    """Firefox writes "UDP" (RFC 8839 §5.1 grammar); we keep transports lowercase."""
    c = parse(FIREFOX_HOST)
    assert c.transport == "udp" and c.foundation == "0"
    assert c.generation is None and c.extensions == []
    assert c.to_sdp() == FIREFOX_HOST.replace("UDP", "udp")
    c = parse(FIREFOX_SRFLX)
    assert (c.related_address, c.related_port) == ("192.168.1.10", 55139)
    assert c.to_sdp() == FIREFOX_SRFLX.replace("UDP", "udp")


def test_aioice_and_pion_lines():
    c = roundtrip(AIOICE_HOST)
    assert len(c.foundation) == 32 and c.priority == 2130706431
    roundtrip(PION_HOST)
    c = roundtrip(PION_SRFLX)
    assert c.related_address == "0.0.0.0" and c.related_port == 61211


def test_prefixes_line_endings_and_bytes():
    want = parse(CHROME_HOST)
    bare = CHROME_HOST[len("candidate:") :]
    for line in ("a=" + CHROME_HOST + "\r\n", CHROME_HOST + "\n", bare, "  " + CHROME_HOST + " "):
        assert parse(line) == want, line
    assert parse(("a=" + CHROME_HOST + "\r\n").encode()) == want
    assert parse(bytearray(CHROME_HOST.encode())) == want
    assert parse(memoryview(CHROME_HOST.encode())) == want
    assert parse(CHROME_HOST.replace(" ", "  ")) == want


def test_keywords_and_values_are_case_insensitive():
    """ABNF literals ("typ", "host", "UDP", "raddr", ...) match any case (RFC 5234 §2.3)."""
    upper = "CANDIDATE:1 1 UdP 100 192.0.2.1 5000 TYP SrFlx RADDR 10.0.0.1 RPORT 5001 GENERATION 3"
    c = parse(upper)
    assert c.transport == "udp" and c.type == "srflx" and c.generation == 3
    assert (c.related_address, c.related_port) == ("10.0.0.1", 5001)
    assert c.to_sdp() == (
        "candidate:1 1 udp 100 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 5001 generation 3"
    )
    c = parse("candidate:1 1 TCP 100 192.0.2.1 9 typ HOST TCPTYPE ACTIVE")
    assert c.transport == "tcp" and c.type == "host" and c.tcptype == "active"
    c = Candidate(foundation="1", priority=1, host="::1", port=1, transport="TCP", type="Relay")
    assert c.transport == "tcp" and c.type == "relay"


def test_pairs_after_typ_in_any_order_are_canonicalised():
    c = parse(SRFLX + " network-id 3 generation 1 rport 7 raddr 10.0.0.1 x y")
    assert c.related_port == 7 and c.generation == 1
    assert c.extensions == [("network-id", "3"), ("x", "y")]
    assert c.to_sdp() == SRFLX + " raddr 10.0.0.1 rport 7 generation 1 network-id 3 x y"


def test_format_then_parse_roundtrips_exactly():
    cands = (
        Candidate(foundation="a+/Z", priority=1, host="192.0.2.1", port=0),
        Candidate(
            foundation="x" * 32,
            component=256,
            transport="tcp",
            priority=0xFFFFFFFF,
            host="fe80::1",
            port=65535,
            type="prflx",
            related_address="::",
            related_port=9,
            tcptype="so",
            generation=4294967295,
            extensions=[("ufrag", "abcd"), ("network-cost", "999"), ("ufrag", "again")],
        ),
        Candidate(
            foundation="9",
            component=2,
            priority=7,
            host="host-1.example.local",
            port=3478,
            type="relay",
            related_address="a.local",
            related_port=1,
        ),
    )
    for c in cands:
        line = c.to_sdp()
        assert line.startswith("candidate:")
        back = parse(line)
        assert back == c and back.to_sdp() == line
        assert parse(format_attribute("candidate", c)) == c


def test_constructor_defaults_equality_hash_repr():
    c = Candidate(foundation="1", priority=100, host="192.0.2.1", port=5000)
    assert (c.component, c.transport, c.type) == (1, "udp", "host")
    assert c.related_address is None and c.related_port is None and c.tcptype is None
    assert c.generation is None and c.extensions == []
    same = parse("candidate:1 1 udp 100 192.0.2.1 5000 typ host")
    assert c == same and not (c != same) and hash(c) == hash(same)
    other = Candidate(foundation="1", priority=100, host="192.0.2.1", port=5001)
    assert c != other and not (c == other)
    assert c != "candidate:1 1 udp 100 192.0.2.1 5000 typ host"
    assert len({c, same, other}) == 2
    assert "192.0.2.1 5000 typ host" in repr(c)
    assert "Candidate" in repr(Candidate(foundation="1", priority="oops", host="h", port=None))
    pairs = [("a", "b")]
    d = Candidate(foundation="1", priority=1, host="::1", port=1, extensions=pairs)
    pairs.append(("c", "d"))
    assert d.extensions == [("a", "b")]


def test_rejects_missing_fields_and_empty_lines():
    words = host_line().split(" ")
    for n in range(len(words)):
        assert rejected(" ".join(words[:n])), n
    for bad in ("", "   ", "\r\n", "a=", "a=candidate:", "candidate:", b"", host_line()[:-5]):
        assert rejected(bad), bad
    # The "typ" keyword missing or misplaced.
    assert rejected("candidate:1 1 udp 100 192.0.2.1 5000 type host")
    assert rejected("candidate:1 1 udp 100 192.0.2.1 5000 host typ")
    assert rejected("candidate:1 1 udp 100 192.0.2.1 typ host 5000")


def test_rejects_non_numeric_and_out_of_range_numbers():
    """component 1..256, priority 1..2**32-1, port 0..65535: ASCII digits only."""
    for v in ("0", "257", "x", "-1", "+1", "1.0", "", "1e2", "0x1", "\u0661", "\u00b2"):
        assert rejected(host_line(comp=v)), v
    for v in ("0", "4294967296", "99999999999", "-5", "abc", "1_000", "12a", "\u0661"):
        assert rejected(host_line(prio=v)), v
    for v in ("65536", "-1", "99999", "port", "1_0", "\uff11"):
        assert rejected(host_line(port=v)), v
    # Edges that are fine, including leading zeros.
    for comp, prio, port in (("1", "1", "0"), ("256", "4294967295", "65535"), ("007", "01", "09")):
        c = parse(host_line(comp=comp, prio=prio, port=port))
        assert (c.component, c.priority, c.port) == (int(comp), int(prio), int(port))
    for v in ("65536", "x", "-1"):
        assert rejected(SRFLX + " raddr 10.0.0.1 rport " + v), v
    for v in ("x", "-1", "1.5", "4294967296"):
        assert rejected(host_line(tail=" generation " + v)), v


def test_rejects_bad_foundation_rfc8839_s5_1():
    """foundation = 1*32ice-char, ice-char = ALPHA / DIGIT / "+" / "/"."""
    for bad in ("x" * 33, "a-b", "a_b", "a.b", "a=b", "a:b", "\u00e9t\u00e9", "a\tb", "foo:1"):
        assert rejected("candidate:%s 1 udp 100 192.0.2.1 5000 typ host" % bad), bad
    assert parse("candidate:+/aZ09 1 udp 100 192.0.2.1 5000 typ host").foundation == "+/aZ09"


def test_rejects_bad_transport_and_unknown_type():
    for bad in ("u(d)p", "ud/p", "\u00fcdp"):
        assert rejected(host_line(transport=bad)), bad
    assert parse(host_line(transport="dtls-sctp")).transport == "dtls-sctp"
    for bad in ("hosts", "stun", "local", "relayed", "", "srflx!"):
        line = "candidate:1 1 udp 100 192.0.2.1 5000 typ %s raddr 10.0.0.1 rport 1" % bad
        assert rejected(line), bad
    for bad in ("activ", "both", "", "none"):
        assert rejected(host_line(transport="tcp", tail=" tcptype " + bad)), bad


def test_raddr_and_rport_come_as_a_pair():
    assert rejected(SRFLX + " rport 5000")
    assert rejected(SRFLX + " raddr 10.0.0.1")
    assert rejected(SRFLX + " raddr 10.0.0.1 generation 0")
    assert rejected(SRFLX + " raddr 300.0.0.1 rport 1")
    # Repeated keywords, including a second "typ".
    assert rejected(SRFLX + " raddr 10.0.0.1 rport 1 raddr 10.0.0.2 rport 2")
    assert rejected(SRFLX + " raddr 10.0.0.1 rport 1 typ relay")
    assert rejected(SRFLX + " raddr 10.0.0.1 rport 1 generation 1 generation 2")
    assert rejected(host_line(transport="tcp", tail=" tcptype active tcptype so"))
    c = parse(SRFLX + " raddr 0.0.0.0 rport 9")  # RFC 8839 §5.1 privacy form
    assert (c.related_address, c.related_port) == ("0.0.0.0", 9)


def test_rejects_odd_or_bad_extension_tokens():
    odd = (" ufrag", " generation 0 ufrag", " ufrag abcd network-id", " raddr", " generation")
    for tail in odd:
        assert rejected(host_line(tail=tail)), tail
    bad = (" ufrag a\tb", " na(me) 1", " name= 1", " name \x00", " n\u00e4me 1", " x v\u00e4l")
    for tail in bad:
        assert rejected(host_line(tail=tail)), tail
    # extension-att-name is a token, extension-att-value any VCHARs (RFC 8839 §5.1).
    assert parse(host_line(tail=" odd-name! v=1,2;(x)")).extensions == [("odd-name!", "v=1,2;(x)")]


def test_rejects_bad_ip_addresses():
    good = ("0.0.0.0", "255.255.255.255", "::", "::1", "2001:db8::1", "::ffff:192.0.2.1")
    for host in good + ("FE80::1:2", "1:2:3:4:5:6:7:8"):
        assert parse(host_line(host)).host == host
    bad = (
        "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "1.2.3.4.", "999", "1.2.3.-4",
        "1::2::3", ":::", "1:2:3:4:5:6:7:8:9", "2001:db8::g", "12345::1", "::1.2.3",
        "fe80::1%eth0", "[::1]", "1:2", ":1", "1:",
    )  # fmt: skip
    for host in bad:
        assert rejected(host_line(host)), host
        assert rejected(SRFLX + " raddr %s rport 5" % host), host


def test_host_names_rfc1123():
    good = ("localhost", "a.local", "x-1.y-2.local", "A1B2.LOCAL", "1a.local", "a" * 63 + ".b")
    for host in good:
        assert parse(host_line(host)).host == host
    long_name = ".".join(["a" * 50] * 6)  # 305 chars
    bad = (
        "-a.local", "a-.local", "a..local", ".local", "local.", "under_score.local",
        "a" * 64 + ".local", "caf\u00e9.local", "a*b.local", "a/b", long_name,
    )  # fmt: skip
    for host in bad:
        assert rejected(host_line(host)), host


def test_rejects_non_ascii_and_non_text_input():
    line = CHROME_HOST.encode()
    assert rejected(line.replace(b"EsAw", b"Es\xffw"))
    assert rejected(line.replace(b"EsAw", b"Es\xc3\xa9w"))  # valid UTF-8, still not ASCII
    assert rejected(b"\x80")
    assert rejected(CHROME_HOST.replace("EsAw", "Es\u00e9w"))
    assert rejected(CHROME_HOST.replace("typ", "t\u00ffp"))
    for junk in (None, 5, 1.5, ["candidate:1"], ("a",)):
        assert rejected(junk), junk
        assert raises(SdpError, parse_attribute, junk), junk
    assert raises(SdpError, parse_attribute, b"a=tool:\xe2\x82\xac")


def test_every_mangled_line_raises_only_sdp_error():
    """Truncations and single-character substitutions never leak another exception."""
    lines = (CHROME_SRFLX, CHROME_HOST6, CHROME_TCP_ACTIVE, FIREFOX_RELAY)
    subs = (" ", ":", ".", "0", "9", "a", "-", "%", "\x00", "\u00e9")
    accepted = 0
    for line in lines:
        for i in range(len(line)):
            for text in [line[:i]] + [line[:i] + s + line[i + 1 :] for s in subs]:
                try:
                    c = parse(text)
                except SdpError:
                    continue
                assert parse(c.to_sdp()) == c, text
                accepted += 1
    assert accepted > 100


# ---- session/media-level attributes -----------------------------------------


def test_ufrag_and_pwd_rfc8839_s5_4():
    assert parse_attribute("a=ice-ufrag:8hhY") == ("ice-ufrag", "8hhY")
    pwd = "asd88fgpdd777uzjYhagZg"
    assert parse_attribute("a=ice-pwd:" + pwd + "\r\n") == ("ice-pwd", pwd)
    assert parse_attribute(b"a=ice-ufrag:EsAw\r\n") == ("ice-ufrag", "EsAw")
    assert parse_attribute("a=ice-ufrag:" + "u" * 256) == ("ice-ufrag", "u" * 256)
    assert parse_attribute("a=ice-pwd:" + "p/+" * 80) == ("ice-pwd", "p/+" * 80)
    bad = (
        "a=ice-ufrag:abc", "a=ice-ufrag:" + "u" * 257, "a=ice-ufrag:ab-cd", "a=ice-ufrag:",
        "a=ice-ufrag", "a=ice-ufrag:ab cd", "a=ice-ufrag:abc\u00e9", "a=ice-pwd:" + "p" * 21,
        "a=ice-pwd:" + "p" * 257, "a=ice-pwd:" + pwd[:-1] + "=", "a=ice-pwd",
    )  # fmt: skip
    for line in bad:
        assert raises(SdpError, parse_attribute, line), line


def test_flags_lite_mismatch_end_of_candidates():
    """ice-lite / ice-mismatch (RFC 8839 §5.3), end-of-candidates (RFC 8840 §8)."""
    assert parse_attribute("a=ice-lite") == ("ice-lite", None)
    assert parse_attribute("a=ice-mismatch\r\n") == ("ice-mismatch", None)
    assert parse_attribute("a=end-of-candidates") == ("end-of-candidates", None)
    assert parse_attribute(b"a=end-of-candidates\r\n") == ("end-of-candidates", None)
    for line in ("a=ice-lite:yes", "a=end-of-candidates:", "a=ice-mismatch:1"):
        assert raises(SdpError, parse_attribute, line), line


def test_ice_options_and_pacing_rfc8839_s5_5_s5_6():
    assert parse_attribute("a=ice-options:trickle ice2") == ("ice-options", ["trickle", "ice2"])
    assert parse_attribute("a=ice-options:trickle") == ("ice-options", ["trickle"])
    assert parse_attribute("a=ice-options:ice2 rtp+ecn") == ("ice-options", ["ice2", "rtp+ecn"])
    assert parse_attribute("a=ice-pacing:50") == ("ice-pacing", 50)
    bad = (
        "a=ice-options:", "a=ice-options", "a=ice-options:trick-le", "a=ice-options:a,b",
        "a=ice-pacing:", "a=ice-pacing", "a=ice-pacing:fast", "a=ice-pacing:-5",
        "a=ice-pacing:12345678901",
    )  # fmt: skip
    for line in bad:
        assert raises(SdpError, parse_attribute, line), line


def test_candidate_and_other_attributes():
    name, cand = parse_attribute("a=" + CHROME_SRFLX + "\r\n")
    assert name == "candidate" and cand == parse(CHROME_SRFLX)
    assert raises(SdpError, parse_attribute, "a=candidate:1 1 udp 1 192.0.2.1 5 typ bogus")
    assert raises(SdpError, parse_attribute, "a=candidate")
    others = (
        "a=mid:0", "a=fingerprint:sha-256 AB:CD", "a=setup:actpass", "m=audio 9 RTP/AVP 0",
        "a=candidatex:1", "a=ice-ufragment:x", "a=tool:\u00e9", "", "a=group:BUNDLE 0",
    )  # fmt: skip
    for line in others:
        assert parse_attribute(line) == ("other", line), line
    assert parse_attribute("a=mid:0\r\n") == ("other", "a=mid:0")


def test_format_attribute_is_the_inverse():
    lines = (
        "a=ice-ufrag:EsAw",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg",
        "a=ice-lite",
        "a=ice-mismatch",
        "a=ice-options:trickle ice2",
        "a=ice-pacing:50",
        "a=end-of-candidates",
        "a=" + CHROME_RELAY,
        "a=mid:0",
    )
    for line in lines:
        name, value = parse_attribute(line)
        assert format_attribute(name, value) == line, line
    assert format_attribute("end-of-candidates") == "a=end-of-candidates"
    assert format_attribute("ice-options", "trickle") == "a=ice-options:trickle"
    assert format_attribute("ice-options", ("trickle", "ice2")) == "a=ice-options:trickle ice2"


def test_format_attribute_refuses_invalid_values():
    """RFC 8839 §5.4: a ufrag MUST NOT be longer than 32 chars when sending."""
    assert format_attribute("ice-ufrag", "u" * 32) == "a=ice-ufrag:" + "u" * 32
    bad = (
        ("ice-ufrag", "u" * 33), ("ice-ufrag", "abc"), ("ice-ufrag", None), ("ice-ufrag", "ab:cd"),
        ("ice-pwd", "short"), ("ice-pwd", "p" * 257), ("ice-options", []), ("ice-options", None),
        ("ice-options", ["a b"]), ("ice-options", [""]), ("ice-pacing", -1), ("ice-pacing", "50"),
        ("candidate", CHROME_HOST), ("candidate", None), ("other", None), ("bogus", "x"),
    )  # fmt: skip
    for name, value in bad:
        assert raises(SdpError, format_attribute, name, value), (name, value)
