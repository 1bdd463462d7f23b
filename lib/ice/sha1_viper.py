"""HMAC-SHA1 for STUN in MicroPython viper code: no allocation per MAC.

MicroPython's hashlib cannot copy a hash state, so HMAC through it builds
two hash objects and two digests per MAC (about 384 bytes on the unix
port). Here the keyed inner and outer states are kept per key, so one MAC
costs three or four SHA-1 blocks (FIPS 180-4 §6.1) and no heap. MicroPython
only: CPython cannot compile viper. `ice.digest` loads it after a
known-answer check and falls back to hashlib without the native emitter.
"""

import struct

import micropython
from micropython import const

# FIPS 180-4 §4.2.1 round constants and §5.3.1 initial state, then an
# all-ones word: kept in a buffer so viper never meets a constant that does
# not fit a small int on 32-bit boards.
_CONST = bytearray(40)
struct.pack_into("<10I", _CONST, 0, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6,
                 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0, 0xFFFFFFFF)
_INITIAL = const(4)  # word index of the initial state in _CONST
_MASK = const(9)

_w = bytearray(320)  # message schedule, 80 words
_block = bytearray(64)  # a block assembled from parts (first, last, outer)


@micropython.viper
def _compress(h: ptr32, w: ptr32, src: ptr8, off: int, c: ptr32):
    mask = uint(c[_MASK])
    i = 0
    while i < 16:
        j = off + 4 * i
        w[i] = (uint(src[j]) << 24) | (uint(src[j + 1]) << 16) | (uint(src[j + 2]) << 8) | uint(src[j + 3])
        i += 1
    while i < 80:
        x = uint(w[i - 3]) ^ uint(w[i - 8]) ^ uint(w[i - 14]) ^ uint(w[i - 16])
        w[i] = ((x << 1) | (x >> 31)) & mask
        i += 1
    a = uint(h[0])
    b = uint(h[1])
    d2 = uint(h[2])
    d3 = uint(h[3])
    e = uint(h[4])
    i = 0
    while i < 80:
        if i < 20:
            f = (b & d2) | ((b ^ mask) & d3)
            k = uint(c[0])
        elif i < 40:
            f = b ^ d2 ^ d3
            k = uint(c[1])
        elif i < 60:
            f = (b & d2) | (b & d3) | (d2 & d3)
            k = uint(c[2])
        else:
            f = b ^ d2 ^ d3
            k = uint(c[3])
        t = ((((a << 5) | (a >> 27)) & mask) + f + e + k + uint(w[i])) & mask
        e = d3
        d3 = d2
        d2 = ((b << 30) | (b >> 2)) & mask
        b = a
        a = t
        i += 1
    h[0] = (uint(h[0]) + a) & mask
    h[1] = (uint(h[1]) + b) & mask
    h[2] = (uint(h[2]) + d2) & mask
    h[3] = (uint(h[3]) + d3) & mask
    h[4] = (uint(h[4]) + e) & mask


@micropython.viper
def _hash_tail(h, w, block, message, end: int, length: int, prefix: int, c):
    """Hash message[0:end] after `prefix` bytes already in `h`, with bytes
    2-3 read as `length` when it is not negative (a STUN header as a signer
    saw it), then pad and finish (FIPS 180-4 §5.1.1). The buffers come in as
    objects and go to _compress as objects: a pointer passed from viper to
    viper is boxed as an int, a heap object on a 32-bit board."""
    blk = ptr8(block)
    msg = ptr8(message)
    pos = 0
    while True:
        n = end - pos
        if n > 64:
            n = 64
        if n == 64 and pos > 0:
            _compress(h, w, message, pos, c)
        else:
            i = 0
            while i < n:
                blk[i] = msg[pos + i]
                i += 1
            if pos == 0 and length >= 0:
                blk[2] = length >> 8
                blk[3] = length & 0xFF
            if n == 64:
                _compress(h, w, block, 0, c)
            else:
                blk[n] = 0x80
                i = n + 1
                while i < 64:
                    blk[i] = 0
                    i += 1
                if n >= 56:
                    _compress(h, w, block, 0, c)
                    i = 0
                    while i < 60:
                        blk[i] = 0
                        i += 1
                bits = (prefix + end) * 8
                blk[60] = (bits >> 24) & 0xFF
                blk[61] = (bits >> 16) & 0xFF
                blk[62] = (bits >> 8) & 0xFF
                blk[63] = bits & 0xFF
                _compress(h, w, block, 0, c)
                return
        pos += 64


@micropython.viper
def _words_out(h: ptr32, out: ptr8):
    i = 0
    while i < 5:
        x = uint(h[i])
        out[4 * i] = (x >> 24) & 0xFF
        out[4 * i + 1] = (x >> 16) & 0xFF
        out[4 * i + 2] = (x >> 8) & 0xFF
        out[4 * i + 3] = x & 0xFF
        i += 1


@micropython.viper
def equal_at(a: ptr8, b: ptr8, off: int, n: int) -> bool:
    """a[0:n] == b[off:off+n], in time that depends only on n."""
    diff = 0
    i = 0
    while i < n:
        diff |= int(a[i]) ^ int(b[off + i])
        i += 1
    return diff == 0


class KeyedSha1:
    """The inner and outer states of HMAC-SHA1 (RFC 2104) for one key."""

    def __init__(self, key):
        if len(key) > 64:
            raise ValueError("HMAC keys longer than 64 bytes are not used by STUN")
        self.inner = bytearray(20)
        self.outer = bytearray(20)
        for state, pad in ((self.inner, 0x36), (self.outer, 0x5C)):
            state[:] = memoryview(_CONST)[4 * _INITIAL : 4 * _INITIAL + 20]
            for i in range(64):
                _block[i] = (key[i] if i < len(key) else 0) ^ pad
            _compress(state, _w, _block, 0, _CONST)
        self.state = bytearray(20)
        self.out = bytearray(20)

    def mac(self, msg, end, length):
        """HMAC of msg[0:end], bytes 2-3 read as `length` unless it is
        negative; the result is a buffer the next call overwrites."""
        state = self.state
        state[:] = self.inner
        _hash_tail(state, _w, _block, msg, end, length, 64, _CONST)
        _words_out(state, self.out)
        state[:] = self.outer
        _hash_tail(state, _w, _block, self.out, 20, -1, 64, _CONST)
        _words_out(state, self.out)
        return self.out
