"""Seeded mutation fuzzing of every parser and of Agent.handle_packet.

Valid inputs (STUN/TURN messages, ChannelData, SDP lines and offers, mDNS
replies, frame chunks) are mutated with a seeded xorshift (netsim.Rng: the
same inputs on every runtime) and fed to the decoders: each one returns or
raises its own error type (StunError, SdpError, MdnsError, FrameError) and
nothing else; what parses survives every accessor and formats back to the
same thing. The agent gets random bytes and mutated checks from random
source addresses at every local candidate, during checks and after connect:
it never raises, never counts an internal error, and still connects and
delivers data.

Portable: runs under pytest and under the MicroPython unix port
(host_tests/mp_run.py). COUNTS holds the inputs tried per target; each test
prints its share and test_zz_counts prints the lot.
"""

import gc
import binascii
import struct

from ice import digest, mdns, stun, turn
from ice.compat import ip_to_bytes, ticks_diff, ticks_ms
from ice.mdns import MdnsError
from ice.sdp import Candidate, SdpError, parse_attribute
from ice.stun import StunError
from camlink import framing
from cam import webrtc
from camlink.framing import FrameError
from netsim import Rng
from scenarios import STUN_IP, Session

COUNTS = {}


def _count(name, n=1):
    COUNTS[name] = COUNTS.get(name, 0) + n


def _report(name, started):
    print("fuzz %s: %d inputs, %d ms" % (name, COUNTS.get(name, 0), ticks_diff(ticks_ms(), started)))


def _random_bytes(rng, n):
    return bytes(rng.below(256) for _ in range(n))


_INTERESTING = (0, 1, 3, 4, 0x7F, 0x80, 0xC0, 0xFE, 0xFF)
_INTERESTING16 = (0, 1, 3, 4, 20, 0x8000, 0x7FFF, 0xFFFF, 0x4000, 0x4FFF)


def mutate(rng, seed):
    """One to three byte-level mutations of `seed` (bytes): bit flips,
    interesting bytes and 16-bit fields, truncation, extension, deleted,
    duplicated or spliced regions."""
    data = bytearray(seed)
    for _ in range(1 + rng.below(3)):
        size = len(data)
        op = rng.below(9)
        if op == 0 and size:
            data[rng.below(size)] ^= 1 << rng.below(8)
        elif op == 1 and size:
            data[rng.below(size)] = _INTERESTING[rng.below(len(_INTERESTING))]
        elif op == 2 and size > 1:
            at = rng.below(size - 1)
            value = _INTERESTING16[rng.below(len(_INTERESTING16))]
            data[at] = value >> 8
            data[at + 1] = value & 0xFF
        elif op == 3:
            data = data[: rng.below(size + 1)]
        elif op == 4:
            data.extend(_random_bytes(rng, 1 + rng.below(12)))
        elif op == 5 and size:  # (MicroPython's bytearray has no del or resizing slices)
            at = rng.below(size)
            data = data[:at] + data[at + 1 + rng.below(8) :]
        elif op == 6 and size:
            at = rng.below(size)
            piece = data[at : at + 1 + rng.below(12)]
            where = rng.below(size + 1)
            data = data[:where] + piece + data[where:]
        elif op == 7 and size:
            data[rng.below(size)] = rng.below(256)
        else:
            data = bytearray(_random_bytes(rng, rng.below(size + 8)))
    return bytes(data)


def fix_stun_length(data):
    """Pad to 4 bytes and set the header length, so that mutations reach the
    attribute walk instead of failing the header check."""
    data = bytearray(data)
    if len(data) < 20:
        return bytes(data)
    while len(data) & 3:
        data.append(0)
    struct.pack_into(">H", data, 2, (len(data) - 20) & 0xFFFF)
    return bytes(data)


# ---- STUN -------------------------------------------------------------------

TXID = b"\x5a" * 12
PWD = "fuzzfuzzfuzzfuzzfuzzfuzz"
KEY = digest.short_term_key(PWD)
LONG_KEY = digest.long_term_key("user", "realm", "pass")


def stun_seeds():
    """A message of each shape the agent and the TURN client read."""
    w = stun.Writer(bytearray(320))
    out = []
    w.start(stun.BINDING_REQUEST, TXID)
    w.add_bytes(stun.USERNAME, "abcd:efgh")
    w.add_u32(stun.PRIORITY, 0x6E0001FF)
    w.add_u64(stun.ICE_CONTROLLING, 0x932FF9B151263B36)
    w.add_flag(stun.USE_CANDIDATE)
    w.add_integrity(KEY)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(stun.BINDING_SUCCESS, TXID)
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "192.0.2.1", 32853)
    w.add_integrity(KEY)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(stun.BINDING_SUCCESS, TXID)
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "2001:db8:1234:5678:11:2233:4455:6677", 1)
    w.add_address(stun.MAPPED_ADDRESS, "10.0.0.1", 65535)
    w.add_bytes(stun.SOFTWARE, "fuzz")
    w.add_integrity_sha256(KEY)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(stun.BINDING_ERROR, TXID)
    w.add_error_code(420, "Unknown Attribute")
    w.add_unknown_attributes([0x7777, 0x0033, 0x8000])
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(turn.ALLOCATE_SUCCESS, TXID)
    w.add_xor_address(turn.XOR_RELAYED_ADDRESS, "192.0.2.10", 49152)
    w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "198.51.100.7", 40000)
    w.add_u32(turn.LIFETIME, 600)
    w.add_integrity(LONG_KEY)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(turn.ALLOCATE_ERROR, TXID)
    w.add_error_code(401, "Unauthorized")
    w.add_bytes(stun.REALM, "realm")
    w.add_bytes(stun.NONCE, "nonce-123")
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(turn.DATA_INDICATION, TXID)
    w.add_xor_address(turn.XOR_PEER_ADDRESS, "203.0.113.5", 6000)
    w.add_bytes(turn.DATA_ATTR, b"\x00\x01payload")
    out.append(bytes(w.view()))
    w.start(turn.CHANNEL_BIND_REQUEST, TXID)
    w.add_u32(turn.CHANNEL_NUMBER, 0x4001 << 16)  # RFC 8656 §18.1: then two reserved bytes
    w.add_xor_address(turn.XOR_PEER_ADDRESS, "203.0.113.5", 6000)
    w.add_address(stun.ALTERNATE_SERVER, "192.0.2.99", 3479)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    w.start(stun.BINDING_INDICATION, TXID)
    w.add_fingerprint()
    out.append(bytes(w.view()))
    return out


def _attr_types(msg):
    """Types of the attributes present (parse() validated the walk)."""
    data = msg.data
    out = []
    off = 20
    while off + 4 <= len(data):
        out.append((data[off] << 8) | data[off + 1])
        off += 4 + ((((data[off + 2] << 8) | data[off + 3]) + 3) & ~3)
    return out


_ABSENT = (stun.USERNAME, stun.XOR_MAPPED_ADDRESS, stun.ERROR_CODE, stun.PRIORITY)


def exercise_message(msg, key=KEY):
    """Every accessor on every attribute present (and a few absent): values
    or StunError. Returns how many accessor calls were made."""
    calls = 0
    for attr in _attr_types(msg) + list(_ABSENT):
        for fn in (msg.get, msg.get_str, msg.get_u32, msg.get_u64, msg.address, msg.xor_address, msg.has):
            calls += 1
            try:
                fn(attr)
            except StunError:
                pass
    for fn in (msg.error_code, msg.unknown_attributes, msg.unknown_required, msg.xor_mapped_address,
               msg.check_fingerprint, lambda: msg.check_integrity(key),
               lambda: msg.check_integrity_sha256(key)):
        calls += 1
        try:
            fn()
        except StunError:
            pass
    return calls


def _stun_input(rng, seeds):
    mode = rng.below(4)
    if mode == 0:
        return mutate(rng, seeds[rng.below(len(seeds))])
    if mode == 1:
        return fix_stun_length(mutate(rng, seeds[rng.below(len(seeds))]))
    if mode == 2:  # a header, then random attribute-shaped bytes
        body = bytearray()
        for _ in range(rng.below(6)):
            alen = rng.below(24) if rng.below(4) else _INTERESTING16[rng.below(len(_INTERESTING16))]
            atype = (0x0001, 0x0006, 0x0008, 0x0009, 0x000A, 0x0014, 0x0016, 0x001C, 0x0020,
                     0x0024, 0x8028, 0x8029, 0x802A, rng.below(65536))[rng.below(14)]
            body.extend(struct.pack(">HH", atype, alen & 0xFFFF))
            body.extend(_random_bytes(rng, min(alen, 24) + rng.below(2) * 3))
        return fix_stun_length(seeds[rng.below(len(seeds))][:20] + bytes(body))
    return _random_bytes(rng, rng.below(64))


def test_stun_decode_and_accessors_raise_only_stun_error():
    started = ticks_ms()
    rng = Rng(8489)
    seeds = stun_seeds()
    msg = stun.Message()
    parsed = calls = 0
    for _ in range(6000):
        data = _stun_input(rng, seeds)
        _count("stun.parse")
        try:
            msg.parse(data)
        except StunError:
            continue
        parsed += 1
        calls += exercise_message(msg, KEY if rng.below(2) else LONG_KEY)
    _count("stun.accessor_calls", calls)
    assert parsed > 200, parsed
    _report("stun.parse", started)


def test_stun_writer_round_trips_random_messages():
    """Writer -> parse gives back every attribute, address and txid."""
    started = ticks_ms()
    rng = Rng(5389)
    w = stun.Writer(bytearray(600))
    msg = stun.Message()
    for _ in range(1000):
        txid = _random_bytes(rng, 12)
        msg_type = stun.message_type(rng.below(0x1000), (stun.REQUEST, stun.INDICATION, stun.SUCCESS,
                                                          stun.ERROR)[rng.below(4)])
        w.start(msg_type, txid)
        v4 = "%d.%d.%d.%d" % (rng.below(256), rng.below(256), rng.below(256), rng.below(256))
        v6 = ":".join("%x" % rng.below(65536) for _ in range(8))
        port = rng.below(65536)
        prio = rng.next32()
        tie = (rng.next32() << 32) | rng.next32()
        user = _random_bytes(rng, rng.below(40))
        code = 300 + rng.below(400)
        w.add_xor_address(stun.XOR_MAPPED_ADDRESS, v4, port)
        w.add_xor_address(turn.XOR_PEER_ADDRESS, v6, port ^ 0x5555)
        w.add_address(stun.MAPPED_ADDRESS, v6, port)
        w.add_bytes(stun.USERNAME, user)
        w.add_u32(stun.PRIORITY, prio)
        w.add_u64(stun.ICE_CONTROLLING, tie)
        w.add_error_code(code, "why")
        w.add_unknown_attributes([0x7000 + rng.below(0x1000)])
        w.add_integrity(KEY)
        w.add_fingerprint()
        _count("stun.round_trip")
        msg.parse(bytes(w.view()))
        assert msg.type == msg_type and msg.txid == txid
        assert msg.xor_mapped_address() == (v4, port)
        got = msg.xor_address(turn.XOR_PEER_ADDRESS)
        assert got[1] == port ^ 0x5555
        assert _packed(got[0]) == _packed(v6)
        assert _packed(msg.address(stun.MAPPED_ADDRESS)[0]) == _packed(v6)
        assert bytes(msg.get(stun.USERNAME)) == user
        assert msg.get_u32(stun.PRIORITY) == prio and msg.get_u64(stun.ICE_CONTROLLING) == tie
        assert msg.error_code() == (code, "why")
        assert msg.check_integrity(KEY) and msg.check_fingerprint()
        assert not msg.check_integrity(LONG_KEY)
    _report("stun.round_trip", started)


def _packed(ip):
    return ip_to_bytes(ip)


def test_channel_data_and_frame_length_raise_only_stun_error():
    started = ticks_ms()
    rng = Rng(8656)
    buf = bytearray(80)
    seeds = []
    for n in (0, 1, 3, 4, 17):
        seeds.append(bytes(buf[: turn.write_channel_data(buf, 0x4000 + n, b"x" * n)]))
        seeds.append(bytes(buf[: turn.write_channel_data(buf, 0x4FFF - n, b"y" * n, pad=True)]))
    seeds.extend(stun_seeds()[:2])
    ok = 0
    for _ in range(5000):
        data = mutate(rng, seeds[rng.below(len(seeds))]) if rng.below(4) else _random_bytes(rng, rng.below(12))
        _count("stun.channel_data")
        try:
            channel, payload = turn.parse_channel_data(data)
            assert 0x4000 <= channel <= 0x4FFF and len(payload) <= len(data) - 4
            ok += 1
        except StunError:
            pass
        try:
            size = turn.frame_length(data)
            assert size >= 4
        except StunError:
            pass
    assert ok > 50, ok
    _report("stun.channel_data", started)


# ---- TURN client ------------------------------------------------------------

T_BASE = ("10.0.0.2", 50000)
T_SERVER = ("192.0.2.10", 3478)
T_USER, T_PASS, T_REALM = "cam", "turn-secret", "example.org"
T_KEY = digest.long_term_key(T_USER, T_REALM, T_PASS)


def _turn_outstanding(client):
    """Transaction IDs of what the client sent, newest last."""
    out = []
    while True:
        t = client.poll_transmit()
        if t is None:
            return out
        try:
            out.append(stun.decode(bytes(t[4])))
        except StunError:
            raise AssertionError("the TURN client sent a malformed message")


def _turn_response(rng, req, w):
    """A structurally random answer to `req`: success or error, attributes
    drawn from what TURN servers send (some malformed), maybe signed."""
    cls = (stun.SUCCESS, stun.ERROR)[rng.below(2)]
    w.start(stun.message_type(req.method, cls), req.txid)
    for _ in range(rng.below(5)):
        k = rng.below(9)
        if k == 0:
            w.add_error_code((401, 438, 300, 403, 437, 486, 500)[rng.below(7)], "x")
        elif k == 1:
            w.add_bytes(stun.REALM, (T_REALM, "other", "\xff")[rng.below(3)])
        elif k == 2:
            w.add_bytes(stun.NONCE, "n%d" % rng.below(5))
        elif k == 3:
            w.add_xor_address(turn.XOR_RELAYED_ADDRESS, "192.0.2.10", rng.below(65536))
        elif k == 4:
            w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "2001:db8::7", rng.below(65536))
        elif k == 5:
            w.add_u32(turn.LIFETIME, (0, 1, 60, 600, 3600, 0xFFFFFFFF, rng.next32())[rng.below(7)])
        elif k == 6:
            w.add_address(stun.ALTERNATE_SERVER, "192.0.2.%d" % rng.below(256), rng.below(65536))
        elif k == 7:
            w.add_bytes(rng.below(0x30), _random_bytes(rng, rng.below(10)))
        else:
            w.add_bytes(stun.ERROR_CODE, _random_bytes(rng, rng.below(8)))
    if rng.below(3):
        w.add_integrity(T_KEY if rng.below(4) else LONG_KEY)
    if rng.below(2):
        w.add_fingerprint()
    return bytes(w.view())


def _turn_good_answer(rng, client, req, w):
    """What a real server answers: 401 with REALM and NONCE to an
    unauthenticated request, else a signed success (random LIFETIME)."""
    if not req.has(stun.MESSAGE_INTEGRITY):
        w.start(stun.message_type(req.method, stun.ERROR), req.txid)
        w.add_error_code(401, "Unauthorized")
        w.add_bytes(stun.REALM, T_REALM)
        w.add_bytes(stun.NONCE, "nonce")
    else:
        w.start(stun.message_type(req.method, stun.SUCCESS), req.txid)
        if req.method == turn.ALLOCATE:
            w.add_xor_address(turn.XOR_RELAYED_ADDRESS, "192.0.2.10", 49152)
            w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "198.51.100.7", 40000)
        if req.method in (turn.ALLOCATE, turn.REFRESH):
            w.add_u32(turn.LIFETIME, (600, 3600, 60, 0, 600000, 0xFFFFFFFF)[rng.below(6)])
        w.add_integrity(T_KEY)
    w.add_fingerprint()
    return bytes(w.view())


def test_turn_client_handle_packet_never_raises():
    """Whatever the server (or a forger) sends, handle_packet returns None
    or a peer's data; it never raises, what it sends decodes, and its next
    deadline never lies in the past (a driver would spin)."""
    started = ticks_ms()
    rng = Rng(5766)
    seeds = stun_seeds()
    w = stun.Writer(bytearray(320))
    buf = bytearray(64)
    seeds.append(bytes(buf[: turn.write_channel_data(buf, 0x4000, b"\x80data")]))
    clients = 0
    now = 0
    client = None
    sent = []
    states = {}
    for i in range(6000):
        if client is None or client.state in (turn.FAILED, turn.CLOSED) or i % 300 == 0:
            client = turn.TurnClient(T_BASE[0], T_BASE[1], T_SERVER[0], T_SERVER[1], T_USER, T_PASS,
                                     transport=("udp", "tcp")[rng.below(2)])
            clients += 1
            client.start(now)
            sent = _turn_outstanding(client)
        k = rng.below(5)
        if k == 4 and sent:
            data = _turn_good_answer(rng, client, sent[-1], w)
        elif k == 0 and sent:  # an answer to something it asked
            data = _turn_response(rng, sent[rng.below(len(sent))], w)
        elif k == 1 and sent:
            data = mutate(rng, _turn_response(rng, sent[rng.below(len(sent))], w))
        elif k == 2:
            data = _stun_input(rng, seeds)
        else:
            data = mutate(rng, seeds[-1]) if rng.below(2) else _random_bytes(rng, rng.below(40))
        _count("turn.handle_packet")
        got = client.handle_packet(now, data)
        assert got is None or (isinstance(got[0], str) and isinstance(got[1], int)), got
        sent.extend(_turn_outstanding(client))
        sent = sent[-6:]
        if client.state == turn.READY and rng.below(8) == 0:
            client.permit("203.0.113.%d" % rng.below(20))
            if rng.below(2):
                client.bind_channel("203.0.113.%d" % rng.below(20), rng.below(65536))
            sent.extend(_turn_outstanding(client))
        deadline = client.poll_timeout()
        assert deadline is None or ticks_diff(deadline, now) > 0, (now, deadline, client.lifetime_s)
        if deadline is not None and rng.below(5) == 0:
            now = deadline
            client.handle_timeout(now)
            sent.extend(_turn_outstanding(client))
            deadline = client.poll_timeout()
            assert deadline is None or ticks_diff(deadline, now) > 0, (now, deadline)
        states[client.state] = states.get(client.state, 0) + 1
    print("turn client states seen:", states, "clients:", clients)
    assert states.get(turn.READY, 0) > 0  # the fuzz reached a granted allocation
    _report("turn.handle_packet", started)


# ---- SDP ---------------------------------------------------------------------

SDP_SEEDS = (
    "candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 ufrag EsAw"
    " network-id 1 network-cost 10",
    "candidate:2999745851 1 udp 2122262783 2001:db8::1 58481 typ host generation 0",
    "a=candidate:1 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54400 typ host",
    "candidate:842163049 1 udp 1677729535 203.0.113.5 54400 typ srflx raddr 0.0.0.0 rport 0",
    "candidate:3745345127 1 UDP 41885439 198.51.100.7 50123 typ relay raddr 203.0.113.5 rport 61234",
    "candidate:1853887674 1 tcp 1518280447 192.168.0.196 9 typ host tcptype active",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:g9HL9hOGh1A6J0C98bjFjBKY",
    "a=ice-options:trickle ice2",
    "a=ice-pacing:50",
    "a=ice-lite",
    "a=end-of-candidates",
)
_SDP_CHARS = "abz AZ09:.-/+=%\t\r\n\x00\x7f~" + "\u00e9\u0661\uff10"


def mutate_text(rng, text):
    """Character and token mutations of an SDP line."""
    for _ in range(1 + rng.below(3)):
        op = rng.below(6)
        size = len(text)
        if op == 0 and size:
            at = rng.below(size)
            text = text[:at] + _SDP_CHARS[rng.below(len(_SDP_CHARS))] + text[at + 1 :]
        elif op == 1:
            text = text[: rng.below(size + 1)]
        else:
            tokens = text.split(" ")
            at = rng.below(len(tokens))
            if op == 2:
                del tokens[at]
            elif op == 3:
                tokens.insert(rng.below(len(tokens) + 1), tokens[at])
            elif op == 4:
                other = rng.below(len(tokens))
                tokens[at], tokens[other] = tokens[other], tokens[at]
            else:
                tokens[at] = ("typ", "raddr", "rport", "generation", "tcptype", "0", "65536", "-1",
                              "4294967296", "::", "1.2.3", "x.local", "", "host", "prflx")[rng.below(15)]
            text = " ".join(tokens)
    return text


def test_sdp_lines_raise_only_sdp_error_and_round_trip():
    started = ticks_ms()
    rng = Rng(8839)
    parsed = 0
    for i in range(4000):
        line = mutate_text(rng, SDP_SEEDS[rng.below(len(SDP_SEEDS))])
        data = line
        if rng.below(4) == 0:
            data = line.encode()
            if rng.below(2):
                data = mutate(rng, data)
        _count("sdp.from_sdp")
        try:
            cand = Candidate.from_sdp(data)
        except SdpError:
            cand = None
        if cand is not None:
            parsed += 1
            assert Candidate.from_sdp(cand.to_sdp()) == cand  # format -> parse is exact
            assert Candidate.from_sdp(cand.to_sdp()).to_sdp() == cand.to_sdp()
        _count("sdp.parse_attribute")
        try:
            name, value = parse_attribute(data)
            assert isinstance(name, str)
        except SdpError:
            pass
    assert parsed > 30, parsed
    _report("sdp.from_sdp", started)


# ---- mDNS --------------------------------------------------------------------

_MDNS_NAME = "cam-1.local"


def mdns_seeds():
    legacy = binascii.unhexlify(
        "123484000001000100000000" "0543614d2d31056c6f63616c0000018001" "c00c0001800100" "00000a0004c0000207")
    owner = b"\x05cam-1\x05local\x00"
    rr_a = owner + struct.pack(">HHIH", 1, 0x8001, 120, 4) + b"\x0a\x01\x02\x03"
    rr_aaaa = b"\xc0\x0c" + struct.pack(">HHIH", 28, 0x8001, 120, 16) + b"\x20\x01\x0d\xb8" + bytes(12)
    reply = struct.pack(">6H", 0, 0x8400, 0, 2, 0, 0) + rr_a + rr_aaaa
    return [reply, legacy]


def test_mdns_parse_answer_raises_only_mdns_error():
    started = ticks_ms()
    rng = Rng(6762)
    seeds = mdns_seeds()
    names = (_MDNS_NAME, "CAM-1.local", "other.local")
    found = 0
    for _ in range(5000):
        data = mutate(rng, seeds[rng.below(len(seeds))])
        _count("mdns.parse_answer")
        try:
            got = mdns.parse_answer(data, names[rng.below(len(names))])
        except MdnsError:
            continue
        assert got is None or isinstance(got, str)
        found += got is not None
    for bad in ("", "local", "x.com", "a..local", "\ud800.local" if len("\ud800") == 1 else "a.b"):
        _count("mdns.parse_answer")
        try:
            mdns.parse_answer(seeds[0], bad)
        except MdnsError:
            pass
    assert found > 50, found
    _report("mdns.parse_answer", started)


# ---- camera framing and offers -------------------------------------------------


def test_framing_parsers_and_assembler_never_raise_beyond_frame_error():
    started = ticks_ms()
    rng = Rng(1280)
    chunker = framing.Chunker(max_chunk=16)
    seeds = [bytes(c) for c in chunker.chunks(b"0123456789abcdefghijklmnopqrstuvwxyz")]
    rep = bytearray(8)
    framing.write_report(rep, 5, 2, 1000)
    seeds.append(bytes(rep))
    asm = framing.Assembler(max_frame=64)
    for _ in range(5000):
        data = mutate(rng, seeds[rng.below(len(seeds))])
        _count("framing.parse")
        for fn in (framing.parse_chunk, framing.parse_report):
            try:
                fn(data)
            except FrameError:
                pass
        got = asm.add(data)
        assert got is None or (isinstance(got, bytes) and len(got) <= 64)
    _report("framing.parse", started)


def test_framing_chunker_to_assembler_any_order():
    """Random frames cut by Chunker, chunks shuffled and duplicated: each
    frame comes out of Assembler once, byte for byte."""
    started = ticks_ms()
    rng = Rng(1100)
    chunker = framing.Chunker(max_chunk=1 + rng.below(64))
    asm = framing.Assembler()
    for n in range(400):
        frame = _random_bytes(rng, rng.below(400))
        chunks = [bytes(c) for c in chunker.chunks(frame)]
        for i in range(len(chunks) - 1, 0, -1):  # Fisher-Yates
            j = rng.below(i + 1)
            chunks[i], chunks[j] = chunks[j], chunks[i]
        for _ in range(rng.below(3)):
            chunks.insert(rng.below(len(chunks) + 1), chunks[rng.below(len(chunks))])
        out = [f for f in (asm.add(c) for c in chunks) if f is not None]
        _count("framing.round_trip")
        assert out == [frame], (n, len(frame))
    assert asm.completed == 400 and asm.dropped == 0 and asm.malformed == 0
    _report("framing.round_trip", started)


OFFER = (
    "v=0\r\no=- 4849123886325873725 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "a=ice-ufrag:SeSs\r\na=ice-pwd:sessionpasswordsession0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
    "a=candidate:2236377726 1 udp 2113937151 bead3186-0166-4205-99a8-4d93da996f4d.local 55891 typ host"
    " generation 0 network-cost 999\r\n"
    "a=candidate:1 1 udp 1677729535 203.0.113.5 54400 typ srflx raddr 0.0.0.0 rport 0\r\n"
    "a=ice-ufrag:LY+a\r\na=ice-pwd:g9HL9hOGh1A6J0C98bjFjBKY\r\na=ice-options:trickle\r\n"
    "a=ice-lite\r\na=end-of-candidates\r\n"
    "a=fingerprint:sha-256 5A:6D:5C:50:8B:BD:63:E7:B9:F2:94:69:FF:A0:26:BB:76:A9:A2:43:6B:EF:26:99:C7:0D\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"
)


def test_webrtc_parse_offer_raises_only_sdp_error():
    started = ticks_ms()
    rng = Rng(8829)
    seed_lines = OFFER.split("\r\n")
    answered = 0
    for _ in range(1500):
        lines = list(seed_lines)
        for _ in range(1 + rng.below(4)):
            op = rng.below(5)
            at = rng.below(len(lines))
            if op == 0:
                del lines[at]
            elif op == 1:
                lines.insert(rng.below(len(lines) + 1), lines[at])
            elif op == 2:
                other = rng.below(len(lines))
                lines[at], lines[other] = lines[other], lines[at]
            else:
                lines[at] = mutate_text(rng, lines[at])
            if not lines:
                lines = [""]
        text = ("\r\n", "\n", "\r")[rng.below(3)].join(lines)
        _count("webrtc.parse_offer")
        try:
            info = webrtc.parse_offer(text)
        except SdpError:
            continue
        assert isinstance(info["ufrag"], str) and isinstance(info["pwd"], str)
        for line in info["candidates"]:
            Candidate.from_sdp(line)
        try:
            answer = webrtc.build_answer(info, "Cam1", "abcdefghijklmnopqrstuvwx")
        except SdpError:
            continue
        answered += 1
        assert webrtc.parse_offer(answer)["ufrag"] == "Cam1"
    _count("webrtc.parse_offer", 2)
    for bad in (b"bytes", None):
        try:
            webrtc.parse_offer(bad)
        except SdpError:
            pass
    assert answered > 10, answered
    _report("webrtc.parse_offer", started)


# ---- the agent ----------------------------------------------------------------


def _check_request(s, agent, peer, key, rng):
    """A check as `peer` would send it to `agent`, signed with `key`."""
    w = stun.Writer(bytearray(200)).start(stun.BINDING_REQUEST, _random_bytes(rng, 12))
    w.add_bytes(stun.USERNAME, agent.local_ufrag + ":" + peer.local_ufrag)
    w.add_u32(stun.PRIORITY, rng.next32())
    w.add_u64(stun.ICE_CONTROLLED if agent.controlling else stun.ICE_CONTROLLING,
              (rng.next32() << 32) | rng.next32())
    if rng.below(2):
        w.add_flag(stun.USE_CANDIDATE)
    w.add_integrity(key)
    w.add_fingerprint()
    return bytes(w.view())


def _source(rng, s, agent):
    k = rng.below(8)
    if k == 0 and agent.remote_candidates:  # spoof a real remote candidate exactly
        c = agent.remote_candidates[rng.below(len(agent.remote_candidates))]
        return c.host, c.port
    if k == 1 and agent.remote_candidates:  # the peer's address, another port
        return agent.remote_candidates[rng.below(len(agent.remote_candidates))].host, rng.below(65536)
    if k == 2:
        return STUN_IP, 3478  # a forged STUN server answer
    if k == 3:
        return "2001:db8::%x" % rng.below(65536), rng.below(65536)
    return "%d.%d.%d.%d" % (1 + rng.below(223), rng.below(256), rng.below(256), rng.below(256)), rng.below(65536)


def _agent_input(rng, s, agent, peer, seeds):
    k = rng.below(6)
    if k == 0:
        return _random_bytes(rng, rng.below(100))
    if k == 1:
        return _stun_input(rng, seeds)
    if k == 2:  # right usernames, wrong password
        return _check_request(s, agent, peer, b"not-the-password", rng)
    while True:  # mutations of a genuine check: must not stay authentic
        data = mutate(rng, _check_request(s, agent, peer, agent._local_key, rng))
        if k == 3:
            data = fix_stun_length(data)
        try:
            msg = stun.decode(data)
            if msg.type == stun.BINDING_REQUEST and msg.check_integrity(agent._local_key):
                _count("agent.still_authentic_skipped")
                continue
        except StunError:
            pass
        return data


def _spray(s, rng, seeds, n):
    sim = s.sim
    for agent, peer in ((s.a, s.b), (s.b, s.a)):
        cands = agent.local_candidates
        for _ in range(n):
            cand = cands[rng.below(len(cands))]
            src_ip, src_port = _source(rng, s, agent)
            data = _agent_input(rng, s, agent, peer, seeds)
            _count("agent.sprayed")
            if rng.below(2):  # straight at the agent, as if it got through the NAT
                agent.handle_packet(sim.now, cand.base_ip, cand.base_port, src_ip, src_port, data)
                sim.kick(agent)
            else:  # into the network at the candidate's address (NAT filtering applies)
                sim.inject(src_ip, src_port, cand.host, cand.port, data)


def ours(data):
    """The data payloads this test sent (first byte 0x7f), not sprayed ones."""
    return [p for p in data if p[:1] == b"\x7f"]


def _fuzz_session(nat_a, nat_b, seed, rng, seeds):
    s = Session(nat_a, nat_b, seed=seed)
    sim = s.sim
    role_a = s.a.controlling
    checking_sprays = 0
    for _ in range(60):  # during gathering and checks
        if s.both_connected():
            break
        _spray(s, rng, seeds, 6)
        checking_sprays += 12
        sim.advance(10)
    assert checking_sprays > 0
    assert s.connect(), (nat_a, nat_b, s.a.state, s.b.state, s.a.counters, s.b.counters)
    del s.events_a[:], s.events_b[:], s.data_a[:], s.data_b[:]  # only what follows matters: keep the heap small
    sent_a, sent_b = [], []
    for i in range(60):  # after connect: forged traffic and real data interleaved
        _spray(s, rng, seeds, 10)
        payload = ("\x7fa-to-b %d" % i).encode()
        s.send(s.a, payload)
        sent_a.append(payload)
        payload = ("\x7fb-to-a %d" % i).encode()
        s.send(s.b, payload)
        sent_b.append(payload)
        sim.advance(50)
    sim.advance(2000)
    got_b, got_a = ours(s.data_b), ours(s.data_a)
    assert [p for p in got_b if p in sent_a] == sent_a, (nat_a, nat_b)
    assert [p for p in got_a if p in sent_b] == sent_b, (nat_a, nat_b)
    for agent in (s.a, s.b):
        assert agent.counters["internal_errors"] == 0, agent.counters
        assert agent.state in ("connected", "completed"), agent.state
        assert len(agent.remote_candidates) <= agent.config.max_remote
        assert len(agent.pairs) <= agent.config.max_pairs
        assert len(agent.local_candidates) <= agent.config.max_local
    assert s.a.controlling == role_a
    print("session %s/%s: %d sprayed during checks; a %r; b %r" % (
        nat_a, nat_b, checking_sprays, s.a.counters, s.b.counters))


def test_agent_survives_random_input_at_every_candidate_during_checks_and_after():
    """Random bytes, STUN-shaped garbage, checks with the wrong password and
    mutated genuine checks, from random IPv4/IPv6 sources, the STUN server's
    address and the peer's own addresses, at every local candidate (straight
    to the agent at its base, or through the simulated NAT at the candidate's
    address): no exception, no internal error, and the session still connects
    and delivers every message sent."""
    started = ticks_ms()
    rng = Rng(8445)
    seeds = stun_seeds()
    for nat_a, nat_b, seed in ((None, None, 1), ("full-cone", "restricted", 7),
                               ("port-restricted", "full-cone", 11), ("symmetric", "full-cone", 13)):
        _fuzz_session(nat_a, nat_b, seed, rng, seeds)
        gc.collect()  # each session's simulator and logs go before the next: small heaps fragment
    _report("agent.sprayed", started)


def test_zz_counts():
    """The inputs tried per target (this module's tests ran before this one)."""
    total = 0
    for name in sorted(COUNTS):
        print("fuzz count %-32s %d" % (name, COUNTS[name]))
        if not name.endswith("_calls") and not name.endswith("_skipped"):
            total += COUNTS[name]
    print("fuzz count total inputs %d" % total)
