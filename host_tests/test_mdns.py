"""mDNS one-shot resolver codec: query bytes, hand-built responses, mutations.

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

import binascii
import struct

from ice import mdns
from ice.mdns import MdnsError
from helpers import raises


def unhex(text):
    return binascii.unhexlify("".join(text.split()))


UUID = "3b7a2c4e-1f0d-4c9e-9f1b-8c2d6e5a7b10"
NAME = UUID + ".local"
NAME_WIRE = b"\x24" + UUID.encode() + b"\x05local\x00"

QR_AA = 0x8400  # response, authoritative: what responders send (RFC 6762 §18.2, §18.4)


def header(qd, an, ns, ar, flags=QR_AA, query_id=0):
    return struct.pack(">6H", query_id, flags, qd, an, ns, ar)


def rr(owner, rtype, rdata, rclass=0x8001, ttl=120):
    """One resource record (RFC 1035 §4.1.3); `owner` is already wire form."""
    return owner + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def a_rdata(text):
    return bytes(int(p) for p in text.split("."))


# A one-shot reply (RFC 6762 §6.7) to a query for "cam-1.local": ID and
# question echoed, answer owner compressed to the question name at offset 12,
# cache-flush bit set, TTL 10.
LEGACY_REPLY = unhex("""
    12 34 84 00 00 01 00 01 00 00 00 00
    05 43 61 4d 2d 31 05 6c 6f 63 61 6c 00 00 01 80 01
    c0 0c 00 01 80 01 00 00 00 0a 00 04 c0 00 02 07""")


def multicast_reply():
    """Answer: AAAA for other.local; additional: A for NAME, whose "local"
    label is a pointer into the answer's owner name (offset 18)."""
    other = b"\x05other\x05local\x00"  # at 12; "local" at 18
    return (
        header(0, 1, 0, 1)
        + rr(other, 28, unhex("20010db8000000000000000000000099"))
        + rr(b"\x24" + UUID.encode() + b"\xc0\x12", 1, a_rdata("10.1.2.3"))
    )


def aaaa_reply():
    """Answer: AAAA for NAME; additional: A for NAME, same owner by pointer."""
    return (
        header(0, 1, 0, 1)
        + rr(NAME_WIRE, 28, unhex("fe800000000000000a0b0c0dfffe0e0f"))
        + rr(b"\xc0\x0c", 1, a_rdata("169.254.3.4"))
    )


# ---- build_query ------------------------------------------------------------


def test_query_a_fields_rfc1035_4_1():
    buf = bytearray(512)
    n = mdns.build_query(buf, NAME, mdns.TYPE_A)
    assert n == 12 + len(NAME_WIRE) + 4
    qid, flags, qd, an, ns, ar = struct.unpack(">6H", bytes(buf[:12]))
    assert qid == 0  # RFC 6762 §18.1: zero in multicast queries
    assert flags == 0  # QR=0, opcode 0, no AA/TC/RD (§18.2-§18.6)
    assert (qd, an, ns, ar) == (1, 0, 0, 0)
    assert bytes(buf[12 : 12 + len(NAME_WIRE)]) == NAME_WIRE
    qtype, qclass = struct.unpack(">HH", bytes(buf[n - 4 : n]))
    assert qtype == 1
    assert qclass & 0x7FFF == 1  # IN
    assert qclass & 0x8000  # QU, RFC 6762 §5.4


def test_query_aaaa_with_id_keeps_case():
    buf = bytearray(64)
    n = mdns.build_query(buf, "Cam-1.LOCAL.", mdns.TYPE_AAAA, query_id=0xBEEF)
    assert bytes(buf[:n]) == unhex("""
        be ef 00 00 00 01 00 00 00 00 00 00
        05 43 61 6d 2d 31 05 4c 4f 43 41 4c 00 00 1c 80 01""")


def test_query_into_memoryview_region():
    buf = bytearray(100)
    n = mdns.build_query(memoryview(buf)[10:], "a.local", mdns.TYPE_A, 1)
    assert n == 12 + 9 + 4
    assert bytes(buf[:10]) == bytes(10) and buf[10:12] == b"\x00\x01"
    assert bytes(buf[22:31]) == b"\x01a\x05local\x00"


def test_query_length_limits_rfc1035_3_1():
    buf = bytearray(300)
    assert mdns.build_query(buf, "x" * 63 + ".local", 1) == 12 + 1 + 63 + 7 + 4
    # 3 x (1 + 63) + (1 + 55) + (1 + 5) + 1 = 255 bytes on the wire: the maximum.
    longest = ".".join(["y" * 63] * 3 + ["z" * 55, "local"])
    assert mdns.build_query(buf, longest, 1) == 12 + 255 + 4
    assert raises(MdnsError, mdns.build_query, buf, "z." + longest, 1)
    assert raises(MdnsError, mdns.build_query, buf, "x" * 64 + ".local", 1)


def test_query_rejects_bad_names():
    buf = bytearray(300)
    for bad in ("", ".", "local", ".local", "local.", "a..local", "a.local..",
                "host.example.com", "host.locale", "host", b"host.local", None):
        assert raises(MdnsError, mdns.build_query, buf, bad, 1), bad


def test_query_rejects_bad_type_id_and_small_buffer():
    assert raises(MdnsError, mdns.build_query, bytearray(64), NAME, 5)
    assert raises(MdnsError, mdns.build_query, bytearray(64), NAME, 255)
    assert raises(MdnsError, mdns.build_query, bytearray(64), NAME, 1, -1)
    assert raises(MdnsError, mdns.build_query, bytearray(64), NAME, 1, 0x10000)
    need = 12 + len(NAME_WIRE) + 4
    assert raises(MdnsError, mdns.build_query, bytearray(need - 1), NAME, 1)
    assert mdns.build_query(bytearray(need), NAME, 1) == need
    assert issubclass(MdnsError, ValueError)


def test_constants():
    assert mdns.MDNS_GROUP_V4 == "224.0.0.251"
    assert mdns.MDNS_GROUP_V6 == "ff02::fb"
    assert mdns.MDNS_PORT == 5353


# ---- parse_answer -----------------------------------------------------------


def test_legacy_reply_with_question_and_pointer_rfc6762_6_7():
    assert mdns.parse_answer(LEGACY_REPLY, "cam-1.local") == "192.0.2.7"
    assert mdns.parse_answer(memoryview(LEGACY_REPLY), "cam-1.local") == "192.0.2.7"
    assert mdns.parse_answer(bytearray(LEGACY_REPLY), "cam-1.local.") == "192.0.2.7"


def test_names_compare_case_insensitively_rfc6762_16():
    # The record says "CaM-1.local"; any ASCII case of the name matches.
    assert mdns.parse_answer(LEGACY_REPLY, "CAM-1.LOCAL") == "192.0.2.7"
    upper = header(0, 1, 0, 0) + rr(b"\x24" + UUID.upper().encode() + b"\x05LOCAL\x00", 1,
                                    a_rdata("192.0.2.9"))
    assert mdns.parse_answer(upper, NAME) == "192.0.2.9"


def test_non_ascii_bytes_compare_exactly_rfc6762_16():
    name = b"caf\xc3\xa9.local".decode()
    reply = header(0, 1, 0, 0) + rr(b"\x05caf\xc3\xa9\x05local\x00", 1, a_rdata("192.0.2.5"))
    assert mdns.parse_answer(reply, name) == "192.0.2.5"
    # 0xC3 | 0x20 is 0xE3: folding must not reach non-ASCII bytes.
    other = header(0, 1, 0, 0) + rr(b"\x05caf\xe3\xa9\x05local\x00", 1, a_rdata("192.0.2.5"))
    assert mdns.parse_answer(other, name) is None


def test_a_in_additional_section_behind_pointer():
    reply = multicast_reply()
    assert mdns.parse_answer(reply, NAME) == "10.1.2.3"
    assert mdns.parse_answer(reply, "other.local") == "2001:db8::99"


def test_aaaa_text_is_rfc5952_and_first_match_wins():
    assert mdns.parse_answer(aaaa_reply(), NAME) == "fe80::a0b:c0d:fffe:e0f"
    two_a = (header(0, 2, 0, 0) + rr(NAME_WIRE, 1, a_rdata("192.0.2.1"))
             + rr(b"\xc0\x0c", 1, a_rdata("192.0.2.2")))
    assert mdns.parse_answer(two_a, NAME) == "192.0.2.1"


def test_other_names_types_classes_are_skipped():
    reply = multicast_reply()
    assert mdns.parse_answer(reply, "3b7a2c4e.local") is None
    assert mdns.parse_answer(reply, "x." + NAME) is None
    assert mdns.parse_answer(reply, UUID + "0.local") is None
    # A suffix of the wanted name (the answer's "local") is not the name.
    assert mdns.parse_answer(header(0, 1, 0, 0) + rr(b"\x05local\x00", 1, a_rdata("1.2.3.4")),
                             NAME) is None
    srv = struct.pack(">HHH", 0, 0, 9) + b"\xc0\x0c"
    reply = (header(0, 4, 0, 0)
             + rr(NAME_WIRE, 33, srv)  # SRV owned by NAME: not an address
             + rr(b"\xc0\x0c", 16, b"\x03a=b")  # TXT
             + rr(b"\xc0\x0c", 1, a_rdata("192.0.2.3"), rclass=3)  # CHAOS class
             + rr(b"\xc0\x0c", 1, a_rdata("192.0.2.4"), rclass=1))  # IN, no flush bit
    assert mdns.parse_answer(reply, NAME) == "192.0.2.4"


def test_queries_are_ignored_rfc6762_18_2():
    buf = bytearray(128)
    n = mdns.build_query(buf, NAME, 1)
    assert mdns.parse_answer(buf[:n], NAME) is None
    # A query carrying a known answer (§7.1) is still not an answer.
    known = header(0, 1, 0, 0, flags=0) + rr(NAME_WIRE, 1, a_rdata("192.0.2.1"))
    assert mdns.parse_answer(known, NAME) is None


def test_nonzero_opcode_or_rcode_ignored_rfc6762_18_3_18_11():
    body = rr(NAME_WIRE, 1, a_rdata("192.0.2.1"))
    assert mdns.parse_answer(header(0, 1, 0, 0) + body, NAME) == "192.0.2.1"
    assert mdns.parse_answer(header(0, 1, 0, 0, flags=QR_AA | 0x2800) + body, NAME) is None
    assert mdns.parse_answer(header(0, 1, 0, 0, flags=QR_AA | 0x0003) + body, NAME) is None
    # TC is meaningless in responses (§18.5) and does not hide the answer.
    assert mdns.parse_answer(header(0, 1, 0, 0, flags=QR_AA | 0x0200) + body, NAME) == "192.0.2.1"


def test_goodbye_and_authority_records_ignored_rfc6762_10_1_8_2():
    goodbye = rr(NAME_WIRE, 1, a_rdata("192.0.2.1"), ttl=0)
    assert mdns.parse_answer(header(0, 1, 0, 0) + goodbye, NAME) is None
    claim = rr(NAME_WIRE, 1, a_rdata("192.0.2.1"))
    assert mdns.parse_answer(header(0, 0, 1, 0) + claim, NAME) is None
    later = rr(b"\xc0\x0c", 1, a_rdata("192.0.2.2"))
    assert mdns.parse_answer(header(0, 0, 1, 1) + claim + later, NAME) == "192.0.2.2"


def test_pointer_loops_and_forward_pointers_raise():
    a = a_rdata("192.0.2.1")
    # Owner name at 12 is a pointer to itself.
    assert raises(MdnsError, mdns.parse_answer, header(0, 1, 0, 0) + rr(b"\xc0\x0c", 1, a), NAME)
    # Two names pointing at each other: "x" + ptr(27) at 12, "y" + ptr(12) at 27.
    first = rr(b"\x01x\xc0\x1b", 16, b"\x00")  # 12..26
    second = rr(b"\x01y\xc0\x0c", 1, a)  # from 27
    assert len(header(0, 0, 0, 0) + first) == 27
    assert raises(MdnsError, mdns.parse_answer, header(0, 2, 0, 0) + first + second, "y.local")
    # A label followed by a pointer back to that same label.
    assert raises(MdnsError, mdns.parse_answer,
                  header(0, 1, 0, 0) + rr(b"\x01x\xc0\x0c", 1, a), NAME)
    # Forward pointer into the record's own data.
    assert raises(MdnsError, mdns.parse_answer,
                  header(0, 1, 0, 0) + rr(b"\xc0\x1a", 1, a), NAME)
    # Pointer past the end of the datagram.
    assert raises(MdnsError, mdns.parse_answer,
                  header(0, 2, 0, 0) + rr(NAME_WIRE, 16, b"\x00") + rr(b"\xff\xff", 1, a), NAME)


def test_name_over_255_bytes_through_pointers_raises():
    # Each owner adds a 63-byte label in front of the one before it.
    label = b"\x3f" + b"q" * 63
    body = rr(label + b"\x05local\x00", 16, b"\x00")
    offsets = [12]
    for _ in range(4):
        offsets.append(12 + len(body))
        body += rr(label + struct.pack(">H", 0xC000 | offsets[-2]), 16, b"\x00")
    reply = header(0, 6, 0, 0) + body + rr(struct.pack(">H", 0xC000 | offsets[-1]), 1,
                                           a_rdata("192.0.2.1"))
    assert raises(MdnsError, mdns.parse_answer, reply, NAME)


def test_truncated_replies_raise():
    # The first two hold their match in the last record; the third has none.
    for reply, name in ((LEGACY_REPLY, "cam-1.local"), (multicast_reply(), NAME),
                        (aaaa_reply(), "nobody.local")):
        for cut in range(len(reply)):
            assert raises(MdnsError, mdns.parse_answer, reply[:cut], name), cut
    # Counts that promise more than the datagram holds.
    reply = bytearray(LEGACY_REPLY)
    reply[11] = 1  # one additional record that is not there
    assert mdns.parse_answer(bytes(reply), "cam-1.local") == "192.0.2.7"  # found first
    assert raises(MdnsError, mdns.parse_answer, bytes(reply), NAME)
    reply[5] = 9  # nine questions
    assert raises(MdnsError, mdns.parse_answer, bytes(reply), NAME)


def test_followed_pointer_cut_short_raises():
    # The A record's owner points back at 23, a 15-byte label that spans that
    # owner and record header and ends on the datagram's last byte, 0xC0: the
    # first half of a pointer.
    txt = rr(b"\x00", 16, b"\x0f")  # 12..23, rdata at 23
    reply = header(0, 2, 0, 0) + txt + rr(b"\xc0\x17", 1, a_rdata("1.2.3.192"))
    assert len(reply) == 40 and reply[23] == 15 and reply[39] == 0xC0
    assert raises(MdnsError, mdns.parse_answer, reply, NAME)


def test_question_cut_short_raises():
    question = b"\x01a\x05local\x00\x00\x01"  # QCLASS missing
    assert raises(MdnsError, mdns.parse_answer, header(1, 0, 0, 0) + question, "a.local")
    assert mdns.parse_answer(header(1, 0, 0, 0) + question + b"\x80\x01", "a.local") is None


def test_malformed_records_raise():
    # An A record with 5 bytes of data, and an AAAA with 4.
    bad_a = header(0, 1, 0, 0) + rr(NAME_WIRE, 1, b"\x01\x02\x03\x04\x05")
    assert raises(MdnsError, mdns.parse_answer, bad_a, NAME)
    bad_aaaa = header(0, 1, 0, 0) + rr(NAME_WIRE, 28, a_rdata("1.2.3.4"))
    assert raises(MdnsError, mdns.parse_answer, bad_aaaa, NAME)
    # Label types 01 and 10 are reserved (RFC 1035 §4.1.4, RFC 6891 §5).
    for lead in (b"\x41", b"\x80"):
        msg = header(0, 1, 0, 0) + rr(lead + b"x\x00", 1, a_rdata("1.2.3.4"))
        assert raises(MdnsError, mdns.parse_answer, msg, NAME)
    assert raises(MdnsError, mdns.parse_answer, b"", NAME)
    assert raises(MdnsError, mdns.parse_answer, LEGACY_REPLY, "cam-1.example")


# ---- mutations --------------------------------------------------------------


def test_seeded_mutations_raise_only_mdns_error():
    """Truncations, bit flips, planted pointers and random records: the parser
    returns an address or None, or raises MdnsError, never anything else."""
    from netsim import Rng

    rng = Rng(6762)
    seeds = (LEGACY_REPLY, multicast_reply(), aaaa_reply())
    names = ("cam-1.local", NAME, "other.local")
    outcomes = [0, 0, 0]  # address, None, MdnsError
    for i in range(3000):
        seed = seeds[i % len(seeds)]
        mode = i % 4
        if mode == 0:
            data = bytearray(seed[: rng.below(len(seed) + 1)])
        elif mode == 1:
            data = bytearray(seed)
            for _ in range(1 + rng.below(4)):
                data[rng.below(len(data))] ^= 1 << rng.below(8)
        elif mode == 2:
            data = bytearray(seed)
            at = rng.below(len(data) - 1)
            data[at] = 0xC0 | rng.below(4)
            data[at + 1] = rng.below(256)
        else:
            data = bytearray(seed[:12])
            data.extend(bytes(rng.below(256) for _ in range(rng.below(60))))
            for j in range(4, 12, 2):
                data[j], data[j + 1] = 0, rng.below(4)
        try:
            got = mdns.parse_answer(data, names[rng.below(3)])
        except MdnsError:
            outcomes[2] += 1
            continue
        outcomes[0 if got else 1] += 1
        assert got is None or isinstance(got, str)
    assert sum(outcomes) == 3000
    assert min(outcomes) > 100, outcomes
