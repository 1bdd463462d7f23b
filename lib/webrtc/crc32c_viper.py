"""The viper half of webrtc.crc32c (MicroPython only): CRC-32c over a packet
with its checksum field (bytes 8-11) read as zeros, never as an int object."""

import micropython


@micropython.viper
def _crc(packet, size: int, table) -> uint:
    src = ptr8(packet)
    words = ptr32(table)
    crc = uint(words[256])
    i = 0
    while i < size:
        byte = uint(src[i])
        if 8 <= i < 12:
            byte = uint(0)
        crc = (crc >> 8) ^ uint(words[(crc ^ byte) & 0xFF])
        i += 1
    return crc ^ uint(words[256])


@micropython.viper
def stamp(packet, size: int, table):
    """packet[8:12] = CRC-32c of packet[:size], least significant byte first."""
    crc = uint(_crc(packet, size, table))
    dst = ptr8(packet)
    dst[8] = crc & 0xFF
    dst[9] = (crc >> 8) & 0xFF
    dst[10] = (crc >> 16) & 0xFF
    dst[11] = (crc >> 24) & 0xFF


@micropython.viper
def check(packet, size: int, table) -> int:
    """1 when packet[8:12] holds the CRC-32c of packet[:size], else 0."""
    crc = uint(_crc(packet, size, table))
    src = ptr8(packet)
    got = uint(src[8]) | (uint(src[9]) << 8) | (uint(src[10]) << 16) | (uint(src[11]) << 24)
    return 1 if got == crc else 0
