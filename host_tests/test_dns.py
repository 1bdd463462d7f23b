"""The stub resolver's DNS codec (ice.dns): queries, answers from a
recursive server, and datagrams that must not be taken for the answer.

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

import struct

from ice import dns
from ice.dns import DnsError
from helpers import raises

NAME = "turn.example.org"
WIRE = b"\x04turn\x07example\x03org\x00"
QID = 0x5A17
RESPONSE = 0x8180  # QR, RD, RA: a recursive server's answer, rcode 0


def question(wire=WIRE, qtype=1, qclass=1):
    return wire + struct.pack(">HH", qtype, qclass)


def header(an, flags=RESPONSE, query_id=QID, qd=1, ns=0, ar=0):
    return struct.pack(">6H", query_id, flags, qd, an, ns, ar)


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def answer_a(ip="192.0.2.7", **kw):
    return header(1, **kw) + question() + rr(b"\xc0\x0c", 1, bytes(int(p) for p in ip.split(".")))


def test_query_is_recursive_with_one_question_rfc1035_4_1():
    buf = bytearray(300)
    n = dns.build_query(buf, NAME, dns.TYPE_A, QID)
    assert bytes(buf[:n]) == header(0, flags=0x0100) + question()  # flags: RD only


def test_query_aaaa_and_bad_input():
    buf = bytearray(300)
    n = dns.build_query(buf, NAME + ".", dns.TYPE_AAAA, 1)
    assert bytes(buf[12:n]) == question(qtype=28)
    assert raises(DnsError, dns.build_query, buf, "a..b", 1, 1)
    assert raises(DnsError, dns.build_query, buf, "x" * 64 + ".org", 1, 1)
    assert raises(DnsError, dns.build_query, buf, NAME, 15, 1)  # MX: not asked
    assert raises(DnsError, dns.build_query, buf, NAME, 1, 0x10000)
    assert raises(DnsError, dns.build_query, bytearray(20), NAME, 1, 1)


def test_answer_a_record():
    assert dns.parse_response(answer_a(), NAME, dns.TYPE_A, QID) == (0, "192.0.2.7")


def test_question_compares_case_insensitively_rfc4343():
    assert dns.parse_response(answer_a(), "TURN.Example.ORG", dns.TYPE_A, QID) == (0, "192.0.2.7")


def test_cname_chain_then_address():
    """A name that is an alias: the CNAME, then the A of its target."""
    target = b"\x05relay\x03cdn\x03net\x00"
    msg = (header(2) + question() + rr(b"\xc0\x0c", 5, target)
           + rr(b"\xc0\x2e", 1, b"\xcb\x00\x71\x02"))  # the target is at offset 46
    assert dns.parse_response(msg, NAME, dns.TYPE_A, QID) == (0, "203.0.113.2")


def test_aaaa_answer():
    msg = header(1) + question(qtype=28) + rr(b"\xc0\x0c", 28, b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x09")
    assert dns.parse_response(msg, NAME, dns.TYPE_AAAA, QID) == (0, "2001:db8::9")


def test_no_such_name_and_no_data():
    nx = header(0, flags=RESPONSE | 3) + question()
    assert dns.parse_response(nx, NAME, dns.TYPE_A, QID) == (dns.RCODE_NXDOMAIN, None)
    nodata = header(0) + question()
    assert dns.parse_response(nodata, NAME, dns.TYPE_A, QID) == (0, None)
    servfail = header(0, flags=RESPONSE | 2) + question()
    assert dns.parse_response(servfail, NAME, dns.TYPE_A, QID) == (2, None)


def test_not_our_answer_is_ignored_rfc5452_9_1():
    """Another ID, a query, another name, type or class: not the answer."""
    assert dns.parse_response(answer_a(query_id=QID + 1), NAME, dns.TYPE_A, QID) is None
    assert dns.parse_response(answer_a(flags=0x0100), NAME, dns.TYPE_A, QID) is None
    assert dns.parse_response(answer_a(), "stun.example.org", dns.TYPE_A, QID) is None
    assert dns.parse_response(answer_a(), NAME, dns.TYPE_AAAA, QID) is None
    other_class = header(1) + question(qclass=3) + rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04")
    assert dns.parse_response(other_class, NAME, dns.TYPE_A, QID) is None
    assert dns.parse_response(answer_a(qd=0), NAME, dns.TYPE_A, QID) is None


def test_malformed_answers_raise():
    good = answer_a()
    for cut in range(len(good)):
        if cut < 12 or cut > 12 + len(WIRE) + 4:  # the question cut short: not ours, or an error
            try:
                got = dns.parse_response(good[:cut], NAME, dns.TYPE_A, QID)
            except DnsError:
                continue
            assert got is None, cut
    bad_length = header(1) + question() + rr(b"\xc0\x0c", 1, b"\x01\x02\x03")
    assert raises(DnsError, dns.parse_response, bad_length, NAME, dns.TYPE_A, QID)
    loop = header(1) + question() + rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04")
    loop = loop[:12] + b"\xc0\x0c" + loop[12 + len(WIRE):]  # the question's name points at itself
    assert raises(DnsError, dns.parse_response, loop, NAME, dns.TYPE_A, QID)


def test_seeded_mutations_raise_only_dns_error():
    from netsim import Rng

    rng = Rng(1035)
    seed = answer_a()
    outcomes = [0, 0, 0]  # address, None/no address, DnsError
    for i in range(2000):
        data = bytearray(seed)
        if i % 2:
            data = data[: rng.below(len(data) + 1)]
        else:
            for _ in range(1 + rng.below(4)):
                data[rng.below(len(data))] ^= 1 << rng.below(8)
        try:
            got = dns.parse_response(data, NAME, dns.TYPE_A, QID)
        except DnsError:
            outcomes[2] += 1
            continue
        outcomes[0 if got is not None and got[1] is not None else 1] += 1
    assert min(outcomes) > 0, outcomes
