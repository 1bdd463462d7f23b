"""HMAC (RFC 2104) on the platform's hashlib, STUN key derivation,
constant-time compares, and the CRC-32 of FINGERPRINT.

An agent signs and checks with the same few keys all day, so each key is
prepared once into its keyed inner and outer states:
- CPython: hashlib objects that have absorbed the padded key, copied per MAC;
- MicroPython with the native emitter: `ice.sha1_viper` for SHA-1, which
  allocates nothing per MAC (hashlib there cannot copy a state);
- otherwise the padded keys, hashed afresh each time.
"""

import binascii
import hashlib
import struct

try:
    import hmac as _hmac
except ImportError:
    _hmac = None

_BLOCK = 64  # SHA-1 and SHA-256 block size in bytes.
_CACHED_KEYS = 2  # an agent alternates between its own key and its peer's


def _load_native():
    """ice.sha1_viper when it imports and passes RFC 2202 §3 test case 2."""
    if _hmac is not None:
        return None
    try:
        from ice import sha1_viper
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return None
    mac = sha1_viper.KeyedSha1(b"Jefe").mac(b"what do ya want for nothing?", 28, -1)
    if bytes(mac) != b"\xef\xfc\xdf\x6a\xe5\xeb\x2f\xa2\xd2\x74\x16\xd5\xf1\x84\xdf\x9c\x25\x9a\x7c\x79":
        return None
    return sha1_viper


_native = _load_native()
_FINGERPRINT_XOR = 0x5354554E  # RFC 8489 §14.7


def _fingerprint_binascii(data, end, out, off):
    crc = binascii.crc32(memoryview(data)[0:end])
    struct.pack_into(">I", out, off, (crc ^ _FINGERPRINT_XOR) & 0xFFFFFFFF)


def _load_crc():
    """ice.crc_viper's writer when it imports and agrees with binascii."""
    if _hmac is not None:
        return _fingerprint_binascii
    try:
        from ice import crc_viper
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return _fingerprint_binascii
    mine, theirs = bytearray(4), bytearray(4)
    crc_viper.fingerprint_into(b"123456789", 9, mine, 0)
    _fingerprint_binascii(b"123456789", 9, theirs, 0)
    return crc_viper.fingerprint_into if mine == theirs else _fingerprint_binascii


# fingerprint_into(data, end, out, off): out[off:off+4] = the FINGERPRINT
# value of data[0:end], CRC-32 XOR 0x5354554E, big-endian.
fingerprint_into = _load_crc()
_fingerprint = bytearray(4)


def fingerprint_matches(data, at):
    """True when the FINGERPRINT attribute at offset `at` is right."""
    fingerprint_into(data, at, _fingerprint, 0)
    fp = _fingerprint
    return fp[0] == data[at + 4] and fp[1] == data[at + 5] and fp[2] == data[at + 6] and fp[3] == data[at + 7]
_prepared = {"sha1": [], "sha256": []}  # algorithm -> [(key, keyed MAC)], newest first
_length = bytearray(2)


def _padded(key, pad):
    if len(key) > _BLOCK:
        raise ValueError("HMAC keys longer than 64 bytes are not used by STUN")
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ pad
    return out


class _KeyedHash:
    """HMAC for one key on hashlib: keyed states copied where hashlib can
    copy them (CPython), the padded keys hashed afresh where it cannot."""

    def __init__(self, algorithm, key):
        self._new = getattr(hashlib, algorithm)
        self._pads = (_padded(key, 0x36), _padded(key, 0x5C))
        self._states = None
        if _hmac is not None:
            self._states = (self._new(self._pads[0]), self._new(self._pads[1]))

    def mac(self, msg, end, length):
        if self._states is not None:
            inner = self._states[0].copy()
            outer = self._states[1].copy()
        else:
            inner = self._new(self._pads[0])
            outer = self._new(self._pads[1])
        if length < 0:
            inner.update(msg[0:end])
        else:
            _length[0] = length >> 8
            _length[1] = length & 0xFF
            inner.update(msg[0:2])
            inner.update(_length)
            inner.update(msg[4:end])
        outer.update(inner.digest())
        return outer.digest()


def _prepare(algorithm, key):
    cache = _prepared[algorithm]
    for cached_key, keyed in cache:
        if key == cached_key:
            return keyed
    if _native is not None and algorithm == "sha1":
        keyed = _native.KeyedSha1(key)
    else:
        keyed = _KeyedHash(algorithm, key)
    cache.insert(0, (bytes(key), keyed))
    del cache[_CACHED_KEYS:]
    return keyed


def stun_mac(algorithm, key, msg, end, length=-1):
    """HMAC of msg[0:end]; with `length` >= 0, header bytes 2-3 count as
    that length, as the signer of MESSAGE-INTEGRITY saw them (RFC 8489
    §14.5). The result may be a buffer the next call reuses."""
    return _prepare(algorithm, key).mac(msg, end, length)


def hmac_sha1(key, data):
    return bytes(stun_mac("sha1", key, data, len(data)))


def hmac_sha256(key, data):
    return stun_mac("sha256", key, data, len(data))


def short_term_key(password):
    """RFC 8489 §9.1.1: the key is the password itself (OpaqueString-prepared;
    ICE passwords are plain ASCII so preparation changes nothing)."""
    return password.encode() if isinstance(password, str) else bytes(password)


def long_term_key(username, realm, password):
    """RFC 8489 §9.2.2: MD5(username ":" realm ":" password)."""
    text = "%s:%s:%s" % (username, realm, password)
    return hashlib.md5(text.encode()).digest()


def _equal_loop(a, b):
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


# Compare two byte strings in time that depends only on their length.
equal = _equal_loop if _hmac is None else _hmac.compare_digest


def equal_at(mac, size, data, off):
    """mac[:size] == data[off:off + size], in constant time and, with the
    native module, without slicing."""
    if _native is not None:
        return _native.equal_at(mac, data, off, size)
    if len(mac) != size:
        mac = memoryview(mac)[:size]
    return equal(mac, data[off : off + size])
