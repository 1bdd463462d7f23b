"""CRC-32 for STUN FINGERPRINT (RFC 8489 §14.7) in MicroPython viper code.

binascii.crc32 returns the CRC as an int, and on a 32-bit board three CRCs
in four are 2**30 or more: heap objects, made again by every operation on
them. Here the value is written as bytes straight into the message, so a
FINGERPRINT costs no heap. Four bits a step through a 16-entry table (64
bytes). MicroPython only: `ice.digest` loads it after a known-answer check
and uses binascii elsewhere.
"""

import struct

import micropython

# CRC-32 (reflected polynomial 0xEDB88320) of each 4-bit value, then an
# all-ones word: read from a buffer, a constant of 2**30 or more never meets
# viper (it would be boxed on a 32-bit board), and the word is 32 bits on
# 64-bit ports too.
_TABLE = bytearray(68)
for _n in range(16):
    _c = _n
    for _ in range(4):
        _c = (_c >> 1) ^ (0xEDB88320 if _c & 1 else 0)
    struct.pack_into("<I", _TABLE, 4 * _n, _c)
struct.pack_into("<I", _TABLE, 64, 0xFFFFFFFF)


@micropython.viper
def fingerprint_into(data, end: int, out, off: int):
    """out[off:off+4] = CRC-32(data[0:end]) XOR 0x5354554E, big-endian."""
    src = ptr8(data)
    table = ptr32(_TABLE)
    ones = uint(table[16])
    crc = ones
    i = 0
    while i < end:
        crc ^= uint(src[i])
        crc = (crc >> 4) ^ uint(table[crc & 15])
        crc = (crc >> 4) ^ uint(table[crc & 15])
        i += 1
    crc ^= ones
    dst = ptr8(out)
    dst[off] = ((crc >> 24) & 0xFF) ^ 0x53
    dst[off + 1] = ((crc >> 16) & 0xFF) ^ 0x54
    dst[off + 2] = ((crc >> 8) & 0xFF) ^ 0x55
    dst[off + 3] = (crc & 0xFF) ^ 0x4E
