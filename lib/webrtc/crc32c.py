"""CRC-32c for SCTP packets (RFC 9260 §6.8, Appendix A).

Two calls, both on a whole packet whose checksum field is bytes 8-11:

    stamp(packet, size)   writes the checksum of packet[:size] into it
    check(packet, size)   True when packet[:size] carries its own checksum

The checksum is CRC-32c (Castagnoli, reflected polynomial 0x82F63B78) over
the packet with the checksum field read as zeros, stored least significant
byte first. On MicroPython a viper loop (a byte a step through a 1 KB
table) does the work and never makes an int (a CRC of 2**30 or more is a
heap object on a 32-bit board); it is used after a known-answer check.
CPython uses google-crc32c when installed, else the same table in Python.
"""

import struct

from ice.compat import IS_MICROPYTHON

_TABLE = bytearray(1028)  # 256 little-endian words, then an all-ones word
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    struct.pack_into("<I", _TABLE, 4 * _n, _c)
struct.pack_into("<I", _TABLE, 1024, 0xFFFFFFFF)
_WORDS = struct.unpack("<256I", _TABLE[:1024])


def _crc_python(packet, size):
    """CRC-32c of packet[:size] with bytes 8-11 read as zeros."""
    crc = 0xFFFFFFFF
    table = _WORDS
    for i in range(size):
        byte = 0 if 8 <= i < 12 else packet[i]
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def _stamp_python(packet, size):
    struct.pack_into("<I", packet, 8, _crc_python(packet, size))


def _check_python(packet, size):
    return struct.unpack_from("<I", packet, 8)[0] == _crc_python(packet, size)


def _choose():
    """(stamp, check): the fastest that gives the right answers here."""
    if not IS_MICROPYTHON:
        try:
            import google_crc32c  # pyright: ignore[reportMissingImports]
        except ImportError:
            return _stamp_python, _check_python

        def crc(packet, size):
            head = bytes(packet[:8]) + b"\0\0\0\0"
            return google_crc32c.extend(google_crc32c.value(head), bytes(packet[12:size]))

        def stamp_fast(packet, size):
            struct.pack_into("<I", packet, 8, crc(packet, size))

        def check_fast(packet, size):
            return size >= 12 and struct.unpack_from("<I", packet, 8)[0] == crc(packet, size)

        return stamp_fast, check_fast
    try:
        from webrtc import crc32c_viper
    except (ImportError, SyntaxError):  # a port without the native emitter
        return _stamp_python, _check_python
    probe = bytearray(b"\x13\x88\x13\x88\0\0\0\0\0\0\0\0123456789")
    crc32c_viper.stamp(probe, len(probe), _TABLE)
    if bytes(probe[8:12]) != struct.pack("<I", _crc_python(probe, len(probe))) or \
            not crc32c_viper.check(probe, len(probe), _TABLE):
        return _stamp_python, _check_python

    def stamp_viper(packet, size):
        crc32c_viper.stamp(packet, size, _TABLE)

    def check_viper(packet, size):
        return size >= 12 and crc32c_viper.check(packet, size, _TABLE) == 1

    return stamp_viper, check_viper


stamp, check = _choose()
