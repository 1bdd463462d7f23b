"""STUN/TURN codec: RFC 5769 vectors, round trips and malformed input.

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

import binascii
import struct

from ice import digest, stun, turn
from ice.stun import StunError
from helpers import raises


def unhex(text):
    return binascii.unhexlify("".join(text.split()))




SHORT_TERM_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
TXID = unhex("b7e7a701bc34d686fa87dfae")

# RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED,
# USERNAME, MESSAGE-INTEGRITY and FINGERPRINT.
SAMPLE_REQUEST = unhex("""
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf""")

# RFC 5769 §2.2: success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
SAMPLE_IPV4_RESPONSE = unhex("""
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96""")

# RFC 5769 §2.3: the same over IPv6, [2001:db8:1234:5678:11:2233:4455:6677]:32853.
SAMPLE_IPV6_RESPONSE = unhex("""
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c""")

# RFC 5769 §2.4: request with long-term credentials (no FINGERPRINT).
SAMPLE_LONG_TERM = unhex("""
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46
    53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66""")
LONG_TERM_USER = b"\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9".decode()

SIGNED_VECTORS = (SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE)


def short_key():
    return digest.short_term_key(SHORT_TERM_PASSWORD)


def test_rfc5769_sample_request():
    """RFC 5769 §2.1 decodes and authenticates with the short-term password."""
    msg = stun.decode(SAMPLE_REQUEST)
    assert msg.type == stun.BINDING_REQUEST
    assert msg.method == stun.BINDING and msg.cls == stun.REQUEST
    assert msg.txid == TXID
    assert msg.get_str(stun.SOFTWARE) == "STUN test client"
    assert msg.get_str(stun.USERNAME) == "evtj:h6vY"
    assert msg.get_u32(stun.PRIORITY) == 0x6E0001FF
    assert msg.get_u64(stun.ICE_CONTROLLED) == 0x932FF9B151263B36
    assert msg.check_integrity(short_key())
    assert not msg.check_integrity(b"wrong password")
    assert msg.check_fingerprint()


def test_rfc5769_ipv4_response():
    """RFC 5769 §2.2."""
    msg = stun.decode(SAMPLE_IPV4_RESPONSE)
    assert msg.type == stun.BINDING_SUCCESS
    assert msg.get_str(stun.SOFTWARE) == "test vector"
    assert msg.xor_mapped_address() == ("192.0.2.1", 32853)
    assert msg.check_integrity(short_key())
    assert msg.check_fingerprint()


def test_rfc5769_ipv6_response():
    """RFC 5769 §2.3."""
    msg = stun.decode(SAMPLE_IPV6_RESPONSE)
    assert msg.xor_mapped_address() == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert msg.check_integrity(short_key())
    assert msg.check_fingerprint()


def test_rfc5769_long_term_credentials():
    """RFC 5769 §2.4: key = MD5(user:realm:pass), RFC 8489 §9.2.2."""
    msg = stun.decode(SAMPLE_LONG_TERM)
    assert msg.get_str(stun.USERNAME) == LONG_TERM_USER
    assert msg.get_str(stun.NONCE) == "f//499k954d6OL34oL9FSTvy64sA"
    assert msg.get_str(stun.REALM) == "example.org"
    assert not msg.check_fingerprint()
    key = digest.long_term_key(LONG_TERM_USER, "example.org", "TheMatrIX")
    assert msg.check_integrity(key)
    assert not msg.check_integrity(digest.long_term_key(LONG_TERM_USER, "example.org", "thematrix"))


def test_rfc5769_reencode_byte_exact():
    """Rebuilding the §2.1 and §2.4 vectors with Writer gives the same bytes
    (the RFC pads with spaces in §2.1, so that vector's padding is patched)."""
    buf = bytearray(256)
    w = stun.Writer(buf).start(stun.BINDING_REQUEST, unhex("78ad3433c6ad72c029da412e"))
    w.add_bytes(stun.USERNAME, LONG_TERM_USER)
    w.add_bytes(stun.NONCE, "f//499k954d6OL34oL9FSTvy64sA")
    w.add_bytes(stun.REALM, "example.org")
    w.add_integrity(digest.long_term_key(LONG_TERM_USER, "example.org", "TheMatrIX"))
    assert bytes(w.view()) == SAMPLE_LONG_TERM

    w.start(stun.BINDING_REQUEST, TXID)
    w.add_bytes(stun.SOFTWARE, "STUN test client")
    w.add_u32(stun.PRIORITY, 0x6E0001FF)
    w.add_u64(stun.ICE_CONTROLLED, 0x932FF9B151263B36)
    w.add_bytes(stun.USERNAME, "evtj:h6vY")
    # The RFC's USERNAME padding is three spaces; MESSAGE-INTEGRITY covers it.
    w.buf[w.length - 3 : w.length] = b"   "
    w.add_integrity(short_key())
    w.add_fingerprint()
    assert bytes(w.view()) == SAMPLE_REQUEST


def test_every_single_byte_corruption_is_rejected():
    """Flipping any bit pattern of any byte of a signed vector either fails to
    decode or fails the integrity or fingerprint check."""
    key = short_key()
    for vector in SIGNED_VECTORS:
        for i in range(len(vector)):
            for flip in (0x01, 0x80, 0xFF):
                bad = bytearray(vector)
                bad[i] ^= flip
                try:
                    msg = stun.decode(bad)
                except StunError:
                    continue
                assert not (msg.check_integrity(key) and msg.check_fingerprint()), (i, flip)


def test_round_trip_every_attribute_kind():
    buf = bytearray(512)
    txid = stun.new_txid()
    w = stun.Writer(buf).start(turn.ALLOCATE_ERROR, txid)
    w.add_error_code(401, "Unauthorized")
    w.add_bytes(stun.REALM, "example.org")
    w.add_bytes(stun.NONCE, b"nonce-1")
    w.add_unknown_attributes([0x0031, 0x0032, 0x0033])
    w.add_address(stun.ALTERNATE_SERVER, "2001:db8::7", 3478)
    w.add_address(stun.MAPPED_ADDRESS, "10.1.2.3", 65535)
    w.add_xor_address(turn.XOR_RELAYED_ADDRESS, "203.0.113.9", 50000)
    w.add_xor_address(turn.XOR_PEER_ADDRESS, "fe80::1:2:3:4", 1)
    w.add_u32(turn.LIFETIME, 600)
    w.add_u32(turn.CHANNEL_NUMBER, 0x4001 << 16)  # RFC 8656 §18.1: then two reserved bytes
    w.add_u32(turn.REQUESTED_TRANSPORT, turn.TRANSPORT_UDP << 24)  # §18.10
    w.add_u32(turn.REQUESTED_ADDRESS_FAMILY, stun.FAMILY_IPV6 << 24)  # §18.6
    w.add_flag(turn.DONT_FRAGMENT)
    w.add_flag(stun.USE_CANDIDATE)
    w.add_bytes(turn.DATA_ATTR, b"\x00\x01\x02")
    w.add_u64(stun.ICE_CONTROLLING, (1 << 64) - 1)
    key = b"0123456789abcdef"
    w.add_integrity(key)
    w.add_integrity_sha256(key)
    w.add_fingerprint()
    msg = stun.decode(bytes(w.view()))
    assert msg.type == turn.ALLOCATE_ERROR and msg.method == turn.ALLOCATE and msg.cls == stun.ERROR
    assert msg.txid == txid
    assert msg.error_code() == (401, "Unauthorized")
    assert msg.get_str(stun.REALM) == "example.org"
    assert bytes(msg.get(stun.NONCE)) == b"nonce-1"
    assert msg.unknown_attributes() == [0x31, 0x32, 0x33]
    assert msg.address(stun.ALTERNATE_SERVER) == ("2001:db8::7", 3478)
    assert msg.address(stun.MAPPED_ADDRESS) == ("10.1.2.3", 65535)
    assert msg.xor_address(turn.XOR_RELAYED_ADDRESS) == ("203.0.113.9", 50000)
    assert msg.xor_address(turn.XOR_PEER_ADDRESS) == ("fe80::1:2:3:4", 1)
    assert msg.get_u32(turn.LIFETIME) == 600
    assert msg.get_u32(turn.CHANNEL_NUMBER) >> 16 == 0x4001
    assert msg.get_u32(turn.REQUESTED_TRANSPORT) >> 24 == 17
    assert msg.get_u32(turn.REQUESTED_ADDRESS_FAMILY) >> 24 == 2
    assert msg.has(turn.DONT_FRAGMENT) and msg.has(stun.USE_CANDIDATE)
    assert bytes(msg.get(turn.DATA_ATTR)) == b"\x00\x01\x02"
    assert msg.get_u64(stun.ICE_CONTROLLING) == (1 << 64) - 1
    assert msg.check_integrity(key) and msg.check_integrity_sha256(key)
    assert not msg.check_integrity_sha256(b"other key")
    assert msg.check_fingerprint()
    assert msg.get(stun.SOFTWARE) is None
    assert msg.xor_mapped_address() is None
    assert msg.unknown_required() == ()


def test_message_types_interleave_method_bits():
    """RFC 8489 §5: method bits M0-M11 interleave with class bits C0, C1."""
    assert stun.message_type(stun.BINDING, stun.SUCCESS) == 0x0101
    assert stun.message_type(turn.SEND, stun.INDICATION) == 0x0016
    assert stun.message_type(0xFFF, stun.ERROR) == 0x3FFF
    for method in (0x001, 0x009, 0x07F, 0x0A5, 0xFFF):
        for cls in (stun.REQUEST, stun.INDICATION, stun.SUCCESS, stun.ERROR):
            msg_type = stun.message_type(method, cls)
            assert stun.method_of(msg_type) == method and stun.class_of(msg_type) == cls


def test_attributes_after_integrity_are_ignored():
    """RFC 8489 §14.5: only MI-SHA256 and FINGERPRINT count after MI."""
    buf = bytearray(128)
    w = stun.Writer(buf).start(stun.BINDING_REQUEST, TXID)
    w.add_integrity(b"key")
    w.add_bytes(stun.USERNAME, "sneaky")
    w.add_fingerprint()
    msg = stun.decode(bytes(w.view()))
    assert msg.get(stun.USERNAME) is None
    assert msg.check_fingerprint()
    # The integrity was computed before USERNAME was appended and still holds.
    assert msg.check_integrity(b"key")


def test_unknown_comprehension_required_attributes_are_reported():
    """RFC 8489 §6.3.1.1: unknown types below 0x8000 call for a 420."""
    buf = bytearray(64)
    w = stun.Writer(buf).start(stun.BINDING_REQUEST, TXID)
    w.add_bytes(0x7777, b"x")
    w.add_bytes(0xC001, b"optional")
    w.add_bytes(0x7777, b"again")
    assert stun.decode(bytes(w.view())).unknown_required() == (0x7777,)


def _header(msg_type=0x0001, length=0, cookie=stun.MAGIC_COOKIE):
    return struct.pack(">HHI", msg_type, length, cookie) + TXID


def test_malformed_messages_raise_stun_error_only():
    good = bytearray(SAMPLE_IPV4_RESPONSE)
    cases = [
        b"",
        b"\x00\x01",
        good[:19],
        good[:-1],  # length field no longer matches
        good + b"\x00\x00\x00\x00",
        _header(0x8001),  # top bits set
        _header(cookie=0x2112A443),
        _header(length=2) + b"\x00\x00",  # length not a multiple of 4
        _header(length=8) + b"\x00\x06\x00\x09abcd",  # value runs past the end
        _header(length=8) + b"\x00\x06\x00\x05abcd",  # padding missing
        _header(length=16) + b"\x80\x28\x00\x04\x00\x00\x00\x00" + b"\x00\x06\x00\x00" + b"\x00\x06\x00\x00",
        _header(length=12) + b"\x80\x28\x00\x08" + bytes(8),  # FINGERPRINT size
        _header(length=20) + b"\x00\x08\x00\x10" + bytes(16),  # MI size
        _header(length=16) + b"\x00\x1c\x00\x0c" + bytes(12),  # MI-SHA256 too short
        _header(length=40) + b"\x00\x1c\x00\x24" + bytes(36),  # MI-SHA256 too long
    ]
    for case in cases:
        assert raises(StunError, stun.decode, case), case
    assert issubclass(StunError, ValueError)


def test_malformed_attribute_values_raise_stun_error():
    def message(attr_type, value):
        buf = bytearray(128)
        w = stun.Writer(buf).start(stun.BINDING_SUCCESS, TXID)
        w.add_bytes(attr_type, value)
        return stun.decode(bytes(w.view()))

    assert raises(StunError, message(stun.XOR_MAPPED_ADDRESS, b"\x00\x03\x00\x01abcd").xor_mapped_address)
    assert raises(StunError, message(stun.XOR_MAPPED_ADDRESS, b"\x00\x01\x00\x01abc").xor_mapped_address)
    assert raises(StunError, message(stun.XOR_MAPPED_ADDRESS, b"\x00\x02\x00\x01abcd").xor_mapped_address)
    assert raises(StunError, message(stun.XOR_MAPPED_ADDRESS, b"\x00").xor_mapped_address)
    assert raises(StunError, message(stun.ERROR_CODE, b"\x00\x00\x02\x00").error_code)  # class 2
    assert raises(StunError, message(stun.ERROR_CODE, b"\x00\x00\x04\x64").error_code)  # number 100
    assert raises(StunError, message(stun.ERROR_CODE, b"\x00\x00").error_code)
    assert raises(StunError, message(stun.ERROR_CODE, b"\x00\x00\x04\x01\xff\xfe").error_code)
    assert raises(StunError, message(stun.UNKNOWN_ATTRIBUTES, b"\x00\x01\x00").unknown_attributes)
    assert raises(StunError, message(stun.USERNAME, b"\xc3\x28").get_str, stun.USERNAME)
    assert raises(StunError, message(stun.PRIORITY, b"\x00\x01").get_u32, stun.PRIORITY)
    assert raises(StunError, message(stun.ICE_CONTROLLING, b"\x00\x01").get_u64, stun.ICE_CONTROLLING)


def test_writer_refuses_overflow_and_bad_values():
    w = stun.Writer(bytearray(24)).start(stun.BINDING_REQUEST, TXID)
    assert raises(StunError, w.add_bytes, stun.USERNAME, b"12345")
    assert w.length == 20  # nothing half-written
    assert raises(ValueError, w.add_error_code, 200, "OK")
    assert raises(ValueError, stun.Writer(bytearray(24)).start, stun.BINDING_REQUEST, b"short")
    assert raises(TypeError, stun.Writer, b"immutable")
    assert raises(StunError, stun.Writer(bytearray(10)).start, stun.BINDING_REQUEST, TXID)


def test_writer_reuses_its_buffer():
    buf = bytearray(128)
    w = stun.Writer(buf)
    for port in (1, 2, 65535):
        w.start(stun.BINDING_SUCCESS, TXID)
        w.add_xor_address(stun.XOR_MAPPED_ADDRESS, "198.51.100.4", port)
        w.add_fingerprint()
        msg = stun.decode(bytes(w.view()))
        assert msg.xor_mapped_address() == ("198.51.100.4", port)
        assert msg.check_fingerprint()


def test_message_object_is_reusable():
    msg = stun.Message()
    msg.parse(SAMPLE_REQUEST)
    assert msg.get_str(stun.USERNAME) == "evtj:h6vY"
    msg.parse(SAMPLE_IPV4_RESPONSE)
    assert msg.get(stun.USERNAME) is None
    assert msg.xor_mapped_address() == ("192.0.2.1", 32853)
    assert raises(StunError, msg.parse, b"junk")


def test_looks_like_stun_demultiplexing():
    """RFC 7983 §7: STUN starts with 0-3; ChannelData with 64-79."""
    assert stun.looks_like_stun(SAMPLE_REQUEST)
    assert not stun.looks_like_stun(b"\x80" + SAMPLE_REQUEST[1:])  # RTP
    assert not stun.looks_like_stun(SAMPLE_REQUEST[:19])
    assert not stun.looks_like_stun(b"\x16\xfe\xfd" + bytes(30))  # DTLS


def test_channel_data_framing():
    """RFC 8656 §12.4, §12.5."""
    buf = bytearray(64)
    n = turn.write_channel_data(buf, 0x4001, b"hello")
    assert n == 9 and turn.is_channel_data(buf[:n])
    channel, payload = turn.parse_channel_data(buf[:n])
    assert channel == 0x4001 and bytes(payload) == b"hello"
    n = turn.write_channel_data(buf, 0x4FFF, b"hello", pad=True)
    assert n == 12 and buf[9:12] == b"\x00\x00\x00"
    channel, payload = turn.parse_channel_data(buf[:n])
    assert channel == 0x4FFF and bytes(payload) == b"hello"
    assert turn.frame_length(buf[:4]) == 12
    assert turn.frame_length(SAMPLE_REQUEST[:4]) == len(SAMPLE_REQUEST)
    assert raises(StunError, turn.parse_channel_data, b"\x40\x01\x00\x05abc")  # truncated
    assert raises(StunError, turn.parse_channel_data, b"\x40\x01\x00\x01abcdefgh")  # too long
    assert raises(StunError, turn.parse_channel_data, b"\x50\x00\x00\x00")  # reserved range
    assert raises(StunError, turn.parse_channel_data, b"\x40")
    assert raises(StunError, turn.frame_length, b"\x80\x00\x00\x00")
    assert raises(StunError, turn.frame_length, b"\x00")
    assert raises(ValueError, turn.write_channel_data, buf, 0x3FFF, b"x")
    assert raises(ValueError, turn.write_channel_data, bytearray(6), 0x4000, b"xyz")
    assert not turn.is_channel_data(SAMPLE_REQUEST)


def test_hmac_matches_rfc2202_vectors():
    """HMAC built on hashlib (RFC 2202 §3 test case 2, RFC 4231 §4.3)."""
    mac = digest.hmac_sha1(b"Jefe", b"what do ya want for nothing?")
    assert binascii.hexlify(mac) == b"effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    mac = digest.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert binascii.hexlify(mac) == b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def _reference_hmac(new_hash, key, data):
    inner = bytes(b ^ 0x36 for b in key + bytes(64 - len(key)))
    outer = bytes(b ^ 0x5C for b in key + bytes(64 - len(key)))
    return new_hash(outer + new_hash(inner + data).digest()).digest()


def test_every_hmac_backend_matches_a_plain_hmac():
    """The hashlib backend and, where the native emitter exists (MicroPython),
    the viper SHA-1 agree with a plain RFC 2104 HMAC across SHA-1 block
    boundaries, with and without a STUN header length read in place."""
    import hashlib

    key = b"VOkJxbRl1RmTxUk/WvJxBt"
    backends = [("hashlib", digest._KeyedHash("sha1", key))]
    if digest._native is not None:
        backends.append(("viper", digest._native.KeyedSha1(key)))
    for size in (20, 52, 55, 56, 63, 64, 65, 100, 119, 120, 128, 200, 548):
        data = bytes((i * 7 + 3) & 0xFF for i in range(size))
        patched = bytearray(data)
        patched[2:4] = b"\x01\x2c"
        for name, keyed in backends:
            assert bytes(keyed.mac(data, size, -1)) == _reference_hmac(hashlib.sha1, key, data), (name, size)
            assert bytes(keyed.mac(data, size, 0x012C)) == _reference_hmac(hashlib.sha1, key, bytes(patched)), (name, size)
            assert bytes(keyed.mac(memoryview(data)[:size - 4], size - 4, -1)) == _reference_hmac(
                hashlib.sha1, key, data[: size - 4]), (name, size)
    keyed = digest._KeyedHash("sha256", key)
    assert keyed.mac(b"x" * 90, 90, -1) == _reference_hmac(hashlib.sha256, key, b"x" * 90)


def test_every_fingerprint_backend_matches_binascii_rfc8489_s14_7():
    """FINGERPRINT is CRC-32 XOR 0x5354554E (§14.7): the binascii writer and,
    where the native emitter exists (MicroPython), the viper one agree with
    binascii.crc32 at every length up to 300 bytes and with any byte values;
    the check accepts what they write and refuses a flipped bit."""
    backends = [("binascii", digest._fingerprint_binascii)]
    try:
        from ice import crc_viper
    except (ImportError, SyntaxError):
        crc_viper = None  # CPython: viper code does not compile
    if crc_viper is not None:
        backends.append(("viper", crc_viper.fingerprint_into))
        assert digest.fingerprint_into is crc_viper.fingerprint_into  # the one in use
    data = bytearray((i * 151 + 7) & 0xFF for i in range(300))
    out = bytearray(308)  # data[:end], a 4-byte attribute header, the value
    for end in range(0, 301, 7):
        want = struct.pack(">I", (binascii.crc32(data[:end]) ^ 0x5354554E) & 0xFFFFFFFF)
        out[:end] = data[:end]
        for name, write in backends:
            write(data, end, out, end + 4)
            assert bytes(out[end + 4:end + 8]) == want, (name, end)
            assert digest.fingerprint_matches(out, end), (name, end)
    out[0] ^= 1
    assert not digest.fingerprint_matches(out, 294)


def test_constant_time_equal():
    assert digest.equal(b"abc", b"abc")
    assert not digest.equal(b"abc", b"abd")
    assert not digest.equal(b"abc", b"ab")
    assert digest.equal(memoryview(b"xabc")[1:], b"abc")


def test_seeded_mutations_raise_only_stun_error():
    """Truncations, bit flips and random bytes: decode and every accessor
    either work or raise StunError, never anything else."""
    from netsim import Rng

    rng = Rng(5769)
    seeds = SIGNED_VECTORS + (SAMPLE_LONG_TERM,)
    msg = stun.Message()
    tried = 0
    for i in range(3000):
        seed = seeds[i % len(seeds)]
        mode = i % 3
        if mode == 0:
            data = bytearray(seed[: rng.below(len(seed) + 1)])
        elif mode == 1:
            data = bytearray(seed)
            for _ in range(1 + rng.below(4)):
                data[rng.below(len(data))] ^= 1 << rng.below(8)
        else:
            data = bytearray(seed[:20])
            data.extend(bytes(rng.below(256) for _ in range(4 * rng.below(12))))
            data[2:4] = struct.pack(">H", len(data) - 20)
        tried += 1
        try:
            msg.parse(data)
        except StunError:
            continue
        for call in (
            lambda: msg.get_str(stun.USERNAME),
            lambda: msg.get_u32(stun.PRIORITY),
            lambda: msg.get_u64(stun.ICE_CONTROLLED),
            msg.xor_mapped_address,
            lambda: msg.address(stun.MAPPED_ADDRESS),
            msg.error_code,
            msg.unknown_attributes,
            msg.unknown_required,
            lambda: msg.check_integrity(b"key"),
            lambda: msg.check_integrity_sha256(b"key"),
            msg.check_fingerprint,
        ):
            try:
                call()
            except StunError:
                pass
    assert tried == 3000
