"""Property tests (hypothesis) for every decoder on hostile input, and
encode -> decode round trips.

Decoders raise their own error type and nothing else: StunError (stun),
SdpError (sdp, cam.webrtc), MdnsError (mdns), FrameError (camlink.framing);
TurnClient.handle_packet, framing.Assembler.add and SignalingClient.recv
raise nothing at all. Encoders round-trip: stun.Writer -> Message.parse,
Candidate.to_sdp -> from_sdp, ChannelData, Chunker -> Assembler, JSON lines
-> SignalingClient.

CPython only (hypothesis). The time is bounded: every test uses FUZZ (or a
multiple of it) with a per-example deadline, so the file runs in well under
a minute; COUNTS records the inputs tried and test_zz_counts prints them
(`pytest -s` shows the numbers).
"""

import asyncio
import ipaddress
import json
import struct

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from camlink import framing
from cam import webrtc
from camlink.framing import FrameError
from camlink.signal import SignalingClient
from ice import digest, mdns, stun, turn
from ice.compat import ICE_CHARS, ip_from_bytes, ip_to_bytes, ticks_diff
from ice.mdns import MdnsError
from ice.sdp import TYPES, Candidate, SdpError, parse_attribute
from ice.stun import StunError

COUNTS = {}

FUZZ = 400  # examples per property; time-bounded tests below scale it


def fuzz(n=FUZZ):
    return settings(max_examples=n, deadline=1000, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def count(name, n=1):
    COUNTS[name] = COUNTS.get(name, 0) + n


# ---- STUN ---------------------------------------------------------------------

KEY = digest.short_term_key("fuzzfuzzfuzzfuzzfuzzfuzz")
SPECIAL = (stun.MESSAGE_INTEGRITY, stun.MESSAGE_INTEGRITY_SHA256, stun.FINGERPRINT)
ATTR_TYPES = (
    stun.MAPPED_ADDRESS, stun.USERNAME, stun.MESSAGE_INTEGRITY, stun.ERROR_CODE, stun.UNKNOWN_ATTRIBUTES,
    turn.CHANNEL_NUMBER, turn.LIFETIME, turn.XOR_PEER_ADDRESS, turn.DATA_ATTR, stun.REALM, stun.NONCE,
    turn.XOR_RELAYED_ADDRESS, stun.MESSAGE_INTEGRITY_SHA256, stun.XOR_MAPPED_ADDRESS, stun.PRIORITY,
    stun.USE_CANDIDATE, stun.SOFTWARE, stun.ALTERNATE_SERVER, stun.FINGERPRINT, stun.ICE_CONTROLLED,
    stun.ICE_CONTROLLING,
)
attr_type = st.one_of(st.sampled_from(ATTR_TYPES), st.integers(0, 0xFFFF))


@st.composite
def stunish(draw):
    """A header with the magic cookie and a walk of attribute-shaped records,
    with honest or lying lengths and paddings."""
    msg_type = draw(st.one_of(st.integers(0, 0x3FFF), st.sampled_from(
        (stun.BINDING_REQUEST, stun.BINDING_SUCCESS, stun.BINDING_ERROR, turn.ALLOCATE_SUCCESS,
         turn.ALLOCATE_ERROR, turn.DATA_INDICATION, turn.REFRESH_SUCCESS))))
    body = bytearray()
    for atype, value, lie, pad in draw(st.lists(st.tuples(attr_type, st.binary(max_size=40),
                                                          st.integers(-3, 3), st.booleans()), max_size=6)):
        alen = len(value) + (lie if draw(st.integers(0, 9)) == 0 else 0)
        body += struct.pack(">HH", atype, alen & 0xFFFF) + value
        if pad:
            body += bytes(-len(value) % 4)
    length = len(body) if draw(st.integers(0, 7)) else draw(st.integers(0, 0xFFFF))
    head = struct.pack(">HHI", msg_type, length & 0xFFFF, stun.MAGIC_COOKIE) + draw(st.binary(min_size=12, max_size=12))
    return head + bytes(body)


def _signed_seed():
    w = stun.Writer(bytearray(300)).start(stun.BINDING_REQUEST, b"\x01" * 12)
    w.add_bytes(stun.USERNAME, "abcd:efgh")
    w.add_u32(stun.PRIORITY, 1)
    w.add_u64(stun.ICE_CONTROLLING, 5)
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "2001:db8::1", 9)
    w.add_error_code(487, "Role Conflict")
    w.add_unknown_attributes([1, 2, 3])
    w.add_integrity(KEY)
    w.add_integrity_sha256(KEY)
    w.add_fingerprint()
    return bytes(w.view())


SEED = _signed_seed()


@st.composite
def mutated(draw, seed=SEED):
    data = bytearray(seed)
    for at, value in draw(st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=4)):
        data[at] = value
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


stun_input = st.one_of(st.binary(max_size=120), stunish(), mutated())


def exercise(msg):
    present = []
    off = 20
    while off + 4 <= len(msg.data):
        present.append(struct.unpack_from(">H", msg.data, off)[0])
        off += 4 + ((struct.unpack_from(">H", msg.data, off + 2)[0] + 3) & ~3)
    for atype in present + [stun.USERNAME, stun.XOR_MAPPED_ADDRESS, stun.PRIORITY]:
        for fn in (msg.get, msg.get_str, msg.get_u32, msg.get_u64, msg.address, msg.xor_address, msg.has):
            try:
                fn(atype)
            except StunError:
                pass
    for fn in (msg.error_code, msg.unknown_attributes, msg.unknown_required, msg.xor_mapped_address,
               msg.check_fingerprint, lambda: msg.check_integrity(KEY), lambda: msg.check_integrity_sha256(KEY)):
        try:
            fn()
        except StunError:
            pass


@fuzz(3 * FUZZ)
@given(stun_input)
def test_stun_parse_and_every_accessor_raise_only_stun_error(data):
    count("stun.Message.parse")
    msg = stun.Message()
    try:
        msg.parse(data)
    except StunError:
        return
    count("stun.parsed")
    exercise(msg)


@fuzz()
@given(st.binary(max_size=40))
def test_channel_data_and_frame_length_raise_only_stun_error(data):
    count("turn.parse_channel_data")
    try:
        channel, payload = turn.parse_channel_data(data)
        assert 0x4000 <= channel <= 0x4FFF and len(payload) <= len(data) - 4
    except StunError:
        pass
    try:
        assert turn.frame_length(data) >= 4
    except StunError:
        pass


@fuzz()
@given(st.integers(0x4000, 0x4FFF), st.binary(max_size=300), st.booleans())
def test_channel_data_round_trip(channel, payload, pad):
    count("stun.channel_data_round_trip")
    buf = bytearray(320)
    n = turn.write_channel_data(buf, channel, payload, pad)
    got_channel, got = turn.parse_channel_data(buf[:n])
    assert got_channel == channel and bytes(got) == payload
    assert turn.frame_length(buf[:4]) == (n if pad else (n + 3) & ~3)


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@st.composite
def attributes(draw):
    """Distinct-typed attributes as (kind, type, value...) for Writer."""
    used = set(SPECIAL)
    out = []
    for kind in draw(st.lists(st.sampled_from(("bytes", "u32", "u64", "addr", "xaddr", "flag")), max_size=6)):
        atype = draw(st.integers(0, 0xFFFF).filter(lambda t: t not in used))
        used.add(atype)
        if kind == "bytes":
            out.append((kind, atype, draw(st.binary(max_size=60))))
        elif kind == "u32":
            out.append((kind, atype, draw(st.integers(0, 0xFFFFFFFF))))
        elif kind == "u64":
            out.append((kind, atype, draw(st.integers(0, (1 << 64) - 1))))
        elif kind in ("addr", "xaddr"):
            out.append((kind, atype, draw(st.one_of(ipv4, ipv6)), draw(st.integers(0, 65535))))
        else:
            out.append((kind, atype, None))
    return out


@fuzz()
@given(st.integers(0, 0x3FFF), st.binary(min_size=12, max_size=12), attributes(),
       st.one_of(st.none(), st.tuples(st.integers(300, 699), st.text(max_size=20))), st.booleans())
def test_stun_writer_round_trip(msg_type, txid, attrs, error, sha256):
    """What Writer writes, parse gives back: type, txid, every attribute,
    addresses (plain and XOR'd, IPv4 and IPv6), error code, integrity."""
    count("stun.writer_round_trip")
    w = stun.Writer(bytearray(1024)).start(msg_type, txid)
    for a in attrs:
        kind, atype = a[0], a[1]
        if kind == "bytes":
            w.add_bytes(atype, a[2])
        elif kind == "u32":
            w.add_u32(atype, a[2])
        elif kind == "u64":
            w.add_u64(atype, a[2])
        elif kind == "addr":
            w.add_address(atype, a[2], a[3])
        elif kind == "xaddr":
            w.add_xor_address(atype, a[2], a[3])
        else:
            w.add_flag(atype)
    if error is not None and stun.ERROR_CODE not in [a[1] for a in attrs]:
        w.add_error_code(error[0], error[1])
    else:
        error = None
    (w.add_integrity_sha256 if sha256 else w.add_integrity)(KEY)
    w.add_fingerprint()
    msg = stun.decode(bytes(w.view()))
    assert msg.type == msg_type and msg.txid == txid
    for a in attrs:
        kind, atype = a[0], a[1]
        if kind == "bytes":
            assert bytes(msg.get(atype)) == a[2]
        elif kind == "u32":
            assert msg.get_u32(atype) == a[2]
        elif kind == "u64":
            assert msg.get_u64(atype) == a[2]
        elif kind in ("addr", "xaddr"):
            ip, port = msg.address(atype, kind == "xaddr")
            assert port == a[3] and ipaddress.ip_address(ip) == ipaddress.ip_address(a[2])
        else:
            assert msg.has(atype) and len(msg.get(atype)) == 0
    if error is not None:
        assert msg.error_code() == error
    assert (msg.check_integrity_sha256 if sha256 else msg.check_integrity)(KEY)
    assert not msg.check_integrity(b"other") and msg.check_fingerprint()


@fuzz()
@given(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)))
def test_ip_text_round_trip_is_rfc5952(packed):
    count("compat.ip_round_trip")
    text = ip_from_bytes(packed)
    assert ip_to_bytes(text) == packed
    std = ipaddress.ip_address(packed)
    if std.version == 4 or std.ipv4_mapped is None:  # Python writes mapped ones dotted
        assert text == str(std)


# ---- TURN client --------------------------------------------------------------

BASE, SERVER = ("10.0.0.2", 50000), ("192.0.2.10", 3478)
USER, PASSWORD, REALM = "cam", "turn-secret", "example.org"
LONG_KEY = digest.long_term_key(USER, REALM, PASSWORD)


def _drain(client):
    out = []
    while True:
        t = client.poll_transmit()
        if t is None:
            return out
        out.append(stun.decode(bytes(t[4])))  # whatever it sends is well formed


def _ready_client(transport):
    client = turn.TurnClient(BASE[0], BASE[1], SERVER[0], SERVER[1], USER, PASSWORD, transport=transport)
    client.start(0)
    req = _drain(client)[-1]
    w = stun.Writer(bytearray(200)).start(turn.ALLOCATE_ERROR, req.txid)
    w.add_error_code(401, "Unauthorized")
    w.add_bytes(stun.REALM, REALM)
    w.add_bytes(stun.NONCE, "n1")
    client.handle_packet(0, bytes(w.view()))
    req = _drain(client)[-1]
    w.start(turn.ALLOCATE_SUCCESS, req.txid)
    w.add_xor_address(turn.XOR_RELAYED_ADDRESS, "192.0.2.10", 49152)
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "198.51.100.7", 40000)
    w.add_u32(turn.LIFETIME, 600)
    w.add_integrity(LONG_KEY)
    client.handle_packet(0, bytes(w.view()))
    assert client.state == turn.READY
    client.permit("203.0.113.5")
    client.bind_channel("203.0.113.5", 6000)
    return client


@st.composite
def turn_answer(draw, outstanding):
    """A response (maybe to an outstanding request) with TURN-ish attributes."""
    if outstanding and draw(st.booleans()):
        req = draw(st.sampled_from(outstanding))
        method, txid = req.method, req.txid
    else:
        method = draw(st.sampled_from((turn.ALLOCATE, turn.REFRESH, turn.CREATE_PERMISSION, turn.CHANNEL_BIND,
                                       stun.BINDING, turn.DATA, turn.SEND)))
        txid = draw(st.binary(min_size=12, max_size=12))
    cls = draw(st.sampled_from((stun.SUCCESS, stun.ERROR, stun.INDICATION, stun.REQUEST)))
    w = stun.Writer(bytearray(400)).start(stun.message_type(method, cls), txid)
    for k in draw(st.lists(st.integers(0, 8), max_size=5)):
        if k == 0:
            w.add_error_code(draw(st.sampled_from((300, 401, 403, 437, 438, 486, 500, 699))), draw(st.text(max_size=8)))
        elif k == 1:
            w.add_bytes(stun.REALM, draw(st.sampled_from((REALM, "other", ""))))
        elif k == 2:
            w.add_bytes(stun.NONCE, draw(st.binary(max_size=10)))
        elif k == 3:
            w.add_xor_address(draw(st.sampled_from((turn.XOR_RELAYED_ADDRESS, stun.XOR_MAPPED_ADDRESS,
                                                    turn.XOR_PEER_ADDRESS))),
                              draw(st.one_of(ipv4, ipv6)), draw(st.integers(0, 65535)))
        elif k == 4:
            w.add_u32(turn.LIFETIME, draw(st.integers(0, 0xFFFFFFFF)))
        elif k == 5:
            w.add_address(stun.ALTERNATE_SERVER, draw(st.one_of(ipv4, ipv6)), draw(st.integers(0, 65535)))
        elif k == 6:
            w.add_bytes(turn.DATA_ATTR, draw(st.binary(max_size=30)))
        else:
            w.add_bytes(draw(attr_type.filter(lambda t: t not in SPECIAL)), draw(st.binary(max_size=12)))
    if draw(st.booleans()):
        w.add_integrity(draw(st.sampled_from((LONG_KEY, KEY))))
    if draw(st.booleans()):
        w.add_fingerprint()
    return bytes(w.view())


@fuzz(2 * FUZZ)
@given(st.data(), st.sampled_from(("udp", "tcp")), st.booleans())
def test_turn_client_handle_packet_never_raises(data, transport, ready):
    """Counted and dropped, or a peer's data: never an exception, and never a
    deadline in the past (a driver would spin)."""
    if ready:
        client = _ready_client(transport)
    else:
        client = turn.TurnClient(BASE[0], BASE[1], SERVER[0], SERVER[1], USER, PASSWORD, transport=transport)
        client.start(0)
    sent = _drain(client)
    now = 0
    for _ in range(data.draw(st.integers(1, 6))):
        packet = data.draw(st.one_of(turn_answer(sent), stun_input, st.binary(min_size=4, max_size=30).map(
            lambda b: bytes([0x40 | (b[0] & 0x0F)]) + b[1:])))
        count("turn.TurnClient.handle_packet")
        got = client.handle_packet(now, packet)
        assert got is None or (isinstance(got[0], str) and isinstance(got[1], int) and got[2] is not None)
        sent = (sent + _drain(client))[-6:]
        deadline = client.poll_timeout()
        assert deadline is None or ticks_diff(deadline, now) > 0, (now, deadline, client.lifetime_s)
        if deadline is not None and data.draw(st.booleans()):
            now = deadline
            client.handle_timeout(now)
            sent = (sent + _drain(client))[-6:]


# ---- SDP ------------------------------------------------------------------------

TOKEN_CHARS = ICE_CHARS[:-2] + "!#$%&'*+-.^_`{|}~"
VCHARS = "".join(chr(c) for c in range(0x21, 0x7F))
VOCAB = ("candidate:1", "a=candidate:x", "1", "2", "udp", "UDP", "tcp", "2130706431", "0", "65535", "65536",
         "4294967295", "4294967296", "192.0.2.1", "2001:db8::1", "fe80::1%eth0", "abc.local", "-bad.local",
         "typ", "TYP", "host", "srflx", "prflx", "relay", "raddr", "rport", "tcptype", "active", "so",
         "generation", "ufrag", "x", "", " ", "a=ice-ufrag:abcd", "a=ice-pwd:", "a=ice-options:", "ice-pacing:",
         "a=end-of-candidates", "a=ice-lite:1", "\u00e9", "\x00", "1.2.3", "01.2.3.4", "::ffff:1.2.3.4")
sdp_line = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=VCHARS + " ", max_size=120),
    st.lists(st.sampled_from(VOCAB), max_size=14).map(" ".join),
    st.binary(max_size=80),
)


@fuzz(2 * FUZZ)
@given(sdp_line)
def test_sdp_parsers_raise_only_sdp_error(line):
    count("sdp.Candidate.from_sdp")
    try:
        cand = Candidate.from_sdp(line)
    except SdpError:
        cand = None
    if cand is not None:
        assert Candidate.from_sdp(cand.to_sdp()) == cand
    count("sdp.parse_attribute")
    try:
        name, _ = parse_attribute(line)
        assert isinstance(name, str)
    except SdpError:
        pass


hostname = st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9](\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
addresses = st.one_of(ipv4, ipv6, hostname)
ext_name = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12).filter(
    lambda n: n.lower() not in ("typ", "raddr", "rport", "tcptype", "generation"))


@st.composite
def candidates(draw):
    related = draw(st.booleans())
    return Candidate(
        foundation=draw(st.text(alphabet=ICE_CHARS, min_size=1, max_size=32)),
        component=draw(st.integers(1, 256)),
        transport=draw(st.one_of(st.sampled_from(("udp", "tcp")), st.text(alphabet=TOKEN_CHARS, min_size=1,
                                                                          max_size=8))),
        priority=draw(st.integers(1, 0xFFFFFFFF)),
        host=draw(addresses),
        port=draw(st.integers(0, 65535)),
        type=draw(st.sampled_from(TYPES)),
        related_address=draw(addresses) if related else None,
        related_port=draw(st.integers(0, 65535)) if related else None,
        tcptype=draw(st.one_of(st.none(), st.sampled_from(("active", "passive", "so")))),
        generation=draw(st.one_of(st.none(), st.integers(0, 0xFFFFFFFF))),
        extensions=draw(st.lists(st.tuples(ext_name, st.text(alphabet=VCHARS, min_size=1, max_size=12)), max_size=3)),
    )


@fuzz()
@given(candidates())
def test_candidate_to_sdp_from_sdp_round_trip(cand):
    """RFC 8839 §5.1: format -> parse is exact, with or without `a=`."""
    count("sdp.candidate_round_trip")
    line = cand.to_sdp()
    assert Candidate.from_sdp(line) == cand
    assert Candidate.from_sdp("a=" + line + "\r\n") == cand
    assert parse_attribute("a=" + line) == ("candidate", cand)


# ---- mDNS ---------------------------------------------------------------------

label = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
local_name = st.lists(label, min_size=1, max_size=3).map(lambda ls: ".".join(ls) + ".local")


def wire(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


@st.composite
def dns_message(draw, name):
    """A response with random records, names (some pointers) and counts."""
    records = bytearray()
    n = draw(st.integers(0, 4))
    for _ in range(n):
        owner = draw(st.one_of(st.just(wire(name)), local_name.map(wire),
                               st.integers(0, 0x3FFF).map(lambda p: struct.pack(">H", 0xC000 | p)),
                               st.binary(max_size=10)))
        rtype = draw(st.sampled_from((1, 28, 5, 12, 33, draw(st.integers(0, 0xFFFF)))))
        rdata = draw(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16),
                               st.binary(max_size=20)))
        records += owner + struct.pack(">HHIH", rtype, draw(st.sampled_from((1, 0x8001, 3))),
                                       draw(st.sampled_from((0, 120))), len(rdata)) + rdata
    counts = draw(st.tuples(*[st.integers(0, 3)] * 4)) if draw(st.integers(0, 3)) == 0 else (0, n, 0, 0)
    flags = draw(st.sampled_from((0x8400, 0x8000, 0x0000, 0x8401, 0xFFFF)))
    return struct.pack(">6H", 0, flags, *counts) + bytes(records)


@fuzz(2 * FUZZ)
@given(st.data(), local_name)
def test_mdns_parse_answer_raises_only_mdns_error(data, name):
    packet = data.draw(st.one_of(st.binary(max_size=80), dns_message(name)))
    count("mdns.parse_answer")
    try:
        got = mdns.parse_answer(packet, data.draw(st.one_of(st.just(name), st.text(max_size=20))))
    except MdnsError:
        return
    assert got is None or isinstance(got, str)


@fuzz()
@given(local_name, st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)),
       st.booleans())
def test_mdns_answer_round_trip(name, packed, upper):
    """A response that answers `name` (any letter case) gives its address."""
    count("mdns.round_trip")
    owner = wire(name.upper() if upper else name)
    rtype = 1 if len(packed) == 4 else 28
    reply = struct.pack(">6H", 0, 0x8400, 0, 1, 0, 0) + owner + struct.pack(">HHIH", rtype, 0x8001, 120, len(packed)) + packed
    assert mdns.parse_answer(reply, name) == ip_from_bytes(packed)


# ---- camera: framing, offers, signaling ------------------------------------------------


@fuzz(2 * FUZZ)
@given(st.lists(st.one_of(st.binary(max_size=24), st.binary(min_size=8, max_size=24).map(
    lambda b: b"\x81" + b[1:])), max_size=12))
def test_framing_parsers_raise_only_frame_error(datagrams):
    asm = framing.Assembler(max_frame=1000)
    for data in datagrams:
        count("framing.parse_chunk/parse_report/Assembler.add")
        for fn in (framing.parse_chunk, framing.parse_report):
            try:
                fn(data)
            except FrameError:
                pass
        got = asm.add(data)
        assert got is None or isinstance(got, bytes)


@fuzz()
@given(st.data(), st.integers(1, 64), st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_chunker_to_assembler_round_trip_any_order(data, max_chunk, frames):
    count("framing.round_trip_frames", len(frames))
    chunker = framing.Chunker(max_chunk)
    asm = framing.Assembler()
    for frame in frames:
        chunks = [bytes(c) for c in chunker.chunks(frame)]
        order = data.draw(st.permutations(range(len(chunks))))
        dups = data.draw(st.lists(st.integers(0, len(chunks) - 1), max_size=3))
        out = [asm.add(chunks[i]) for i in list(order) + dups]
        assert [f for f in out if f is not None] == [frame]
    assert asm.completed == len(frames) and asm.dropped == 0


OFFER_LINES = (
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=",
    "c=IN IP4 0.0.0.0", "a=ice-ufrag:LY+a", "a=ice-pwd:g9HL9hOGh1A6J0C98bjFjBKY", "a=ice-ufrag:",
    "a=ice-pwd:short", "a=ice-options:trickle", "a=ice-options:", "a=ice-lite", "a=end-of-candidates",
    "a=candidate:1 1 udp 2113937151 x.local 5000 typ host", "a=candidate:bad", "a=mid:0", "a=mid:",
    "a=setup:actpass", "a=ICE-UFRAG:abcd", "a=ice-pacing:x",
)


@fuzz(2 * FUZZ)
@given(st.one_of(st.text(max_size=200), st.lists(st.one_of(st.sampled_from(OFFER_LINES), st.text(max_size=30)),
                                                 max_size=20).map("\r\n".join)))
def test_parse_offer_raises_only_sdp_error(text):
    count("webrtc.parse_offer")
    try:
        info = webrtc.parse_offer(text)
    except SdpError:
        return
    assert info["ufrag"] and info["pwd"] and info["sections"] >= 1
    for line in info["candidates"]:
        Candidate.from_sdp(line)
    try:
        answer = webrtc.build_answer(info, "Cam1", "abcdefghijklmnopqrstuvwx")
    except SdpError:
        return
    assert webrtc.parse_offer(answer)["pwd"] == "abcdefghijklmnopqrstuvwx"


def _established_pair():
    """Two webrtc.sctp associations joined in memory, established."""
    from webrtc import sctp

    queue = []
    a = sctp.Association(lambda p: queue.append(("b", bytes(p))), lambda *m: None)
    b = sctp.Association(lambda p: queue.append(("a", bytes(p))), lambda *m: None)
    b.connect(0)
    while queue:
        to, packet = queue.pop(0)
        (a if to == "a" else b).receive(packet, 0)
    assert a.state == b.state == "established"
    return a, b


CHUNK_TYPES = (0, 1, 2, 3, 4, 5, 9, 10, 11, 14, 130, 192, 0x40, 0x80)


@fuzz()
@given(st.lists(st.tuples(st.sampled_from(CHUNK_TYPES), st.integers(0, 255), st.binary(max_size=60)),
                min_size=1, max_size=4), st.booleans())
def test_sctp_receive_raises_nothing(chunks, lie_length):
    """webrtc.sctp: any chunks behind a valid header and checksum (what gets
    past DTLS) are handled or counted, never raised; ABORT/SHUTDOWN/INIT may
    end or restart it, anything else leaves it established."""
    from webrtc import crc32c

    count("sctp.Association.receive")
    a, _ = _established_pair()
    a.transmit = lambda p: None
    packet = bytearray(struct.pack(">HHII", 5000, 5000, a._tag, 0))
    for kind, flags, body in chunks:
        length = 4 + len(body) + (7 if lie_length else 0)
        packet += struct.pack(">BBH", kind, flags, length) + body + b"\0" * (-len(body) % 4)
    crc32c.stamp(packet, len(packet))
    a.receive(packet, 10)
    if not any(kind in (1, 6, 7, 8, 14) for kind, _, _ in chunks):
        assert a.state == "established"


class FakeReader:
    """asyncio.StreamReader's read(n), served from a list of chunks."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    async def read(self, n):
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            self.chunks.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk


def read_all(stream, cuts, max_line):
    """Every message SignalingClient.recv() returns for `stream` delivered in
    pieces cut at `cuts`, then None; returns (messages, client)."""
    client = SignalingClient(max_line=max_line)
    pieces, last = [], 0
    for cut in sorted(set(c % (len(stream) + 1) for c in cuts)) + [len(stream)]:
        if cut > last:
            pieces.append(stream[last:cut])
            last = cut
    client._reader = FakeReader(pieces)

    async def run():
        out = []
        while True:
            msg = await client.recv()
            if msg is None:
                return out
            out.append(msg)

    return asyncio.run(run()), client


@fuzz()
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8), st.sampled_from((16, 64, 65536)))
def test_signaling_client_lines_never_raise(stream, cuts, max_line):
    count("signal.SignalingClient.recv")
    msgs, client = read_all(stream, cuts, max_line)
    assert all(isinstance(m, dict) for m in msgs)
    assert len(msgs) + client.malformed + client.dropped <= stream.count(b"\n") + 1


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=8)
GARBAGE = (b"not json", b"[1, 2]", b"42", b'"text"', b"{", b"\xff\xfe{}", b"[" * 3000, b"{\"a\":" * 700,
           b"null", b"{\"a\": NaN", b"\x00")


@fuzz()
@given(st.lists(st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(lambda d: ("msg", d)),
                          st.sampled_from(GARBAGE).map(lambda g: ("bad", g)),
                          st.integers(0, 3).map(lambda k: ("long", k))), max_size=10),
       st.lists(st.integers(0, 10000), max_size=10), st.booleans())
def test_signaling_client_json_lines_round_trip(items, cuts, crlf):
    """Objects come out in order; junk lines are counted as malformed and
    over-long ones as dropped, never returned and never raised."""
    max_line = 4096
    lines, want, bad, long = [], [], 0, 0
    for kind, value in items:
        if kind == "msg":
            lines.append(json.dumps(value).encode())
            want.append(value)
        elif kind == "bad":
            lines.append(value)
            bad += 1
        else:
            lines.append(b"{" + b" " * (max_line + value * 1000) + b"}")
            long += 1
    stream = (b"\r\n" if crlf else b"\n").join(lines) + b"\n"
    count("signal.json_lines", len(items))
    msgs, client = read_all(stream, cuts, max_line)
    assert msgs == want
    assert client.malformed == bad and client.dropped == long


def test_signaling_client_deep_nesting_is_malformed_not_raised():
    """json.loads raises RecursionError (not ValueError) on deep nesting on
    CPython: one hostile line must not kill the camera's signaling loop."""
    count("signal.json_lines")
    msgs, client = read_all(b"[" * 50000 + b"\n" + b'{"type": "ok"}\n', [], 65536)
    assert msgs == [{"type": "ok"}] and client.malformed == 1


def test_zz_counts():
    """How many inputs each property tried (pytest -s shows them)."""
    for name in sorted(COUNTS):
        print("hypothesis count %-45s %d" % (name, COUNTS[name]))
    print("hypothesis count total %d" % sum(COUNTS.values()))
    for name in ("stun.Message.parse", "turn.TurnClient.handle_packet", "sdp.Candidate.from_sdp",
                 "mdns.parse_answer", "webrtc.parse_offer", "signal.SignalingClient.recv",
                 "sctp.Association.receive"):
        assert COUNTS.get(name, 0) > 0, name
