"""The few places where MicroPython and CPython differ, kept in one module.

Clocks: `ticks_ms`, `ticks_us`, `ticks_diff`, `ticks_add` behave like
MicroPython's on both runtimes (wrapping counters), so deadlines never turn
into big ints on a board that runs for months.
Randomness: `urandom`, `random_below`, `random_token`.
Addresses: IPv4/IPv6 text <-> packed bytes without `ipaddress`, and socket
addresses in the shape each runtime's socket module wants.
"""

import os
import struct
import sys

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    ConnectionError = ConnectionError  # the builtin, re-exported
except NameError:  # MicroPython has no ConnectionError builtin

    class ConnectionError(OSError):
        """What CPython raises for a lost or refused connection."""

# CPython gets the ESP32's tick period, so wrap-around is exercised on hosts.
_TICKS_MASK = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)

try:
    from time import ticks_add, ticks_diff, ticks_ms, ticks_us
except ImportError:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000) & _TICKS_MASK

    def ticks_us():
        return int(_time.monotonic() * 1000000) & _TICKS_MASK

    def ticks_add(ticks, delta):
        return (ticks + delta) & _TICKS_MASK

    def ticks_diff(end, start):
        """Signed distance end - start, correct across one wrap."""
        return ((end - start + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


# Where the tick counter wraps: 2**30 on ESP32, larger on the 64-bit unix port.
TICKS_PERIOD = ticks_add(0, -1) + 1


urandom = os.urandom


def random_below(limit):
    """A uniform random int in [0, limit) for 0 < limit <= 2**32."""
    if limit <= 0:
        raise ValueError("random_below needs a positive limit")
    while True:
        value = struct.unpack(">I", urandom(4))[0]
        # Reject the tail so that every result is equally likely.
        if value < (1 << 32) - (1 << 32) % limit:
            return value % limit


def default_dns_servers():
    """The recursive DNS servers this device was given: DHCP's on a board
    (the `network` module), /etc/resolv.conf's elsewhere; [] when none."""
    try:
        import network  # type: ignore[import-not-found]  # MicroPython on a board
    except ImportError:
        servers = []
        try:
            with open("/etc/resolv.conf") as f:
                for line in f:
                    words = line.split()
                    if len(words) > 1 and words[0] == "nameserver" and is_ip(words[1]):
                        servers.append(words[1])
        except OSError:
            pass
        return servers
    try:
        server = network.ipconfig("dns")  # MicroPython 1.24 and newer
    except (AttributeError, ValueError, TypeError, OSError):
        server = network.WLAN(network.STA_IF).ifconfig()[3]
    return [] if server in ("0.0.0.0", "", None) else [server]


def unix_time():
    """Seconds since 1970-01-01 UTC on every runtime (MicroPython's embedded
    ports count from 2000-01-01). Right only once the clock is set (NTP)."""
    import time

    now = int(time.time())
    return now + 946684800 if time.gmtime(0)[0] == 2000 else now


# RFC 8445 §5.3 / RFC 8839 §5.1: ice-char is ALPHA / DIGIT / "+" / "/".
ICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def random_token(length):
    """`length` ice-chars, 6 bits of os.urandom entropy each."""
    raw = urandom(length)
    chars = ICE_CHARS.encode()
    out = bytearray(length)
    for i in range(length):
        out[i] = chars[raw[i] & 63]
    return out.decode()


# ---- IP addresses -----------------------------------------------------------


def _parse_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address: %r" % text)
    out = bytearray(4)
    for i in range(4):
        part = parts[i]
        if not part or len(part) > 3 or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            raise ValueError("bad IPv4 address: %r" % text)
        value = int(part)
        if value > 255:
            raise ValueError("bad IPv4 address: %r" % text)
        out[i] = value
    return bytes(out)


def _parse_groups(text, whole):
    if not text:
        return []
    groups = text.split(":")
    for group in groups:
        if not group or len(group) > 4:
            raise ValueError("bad IPv6 address: %r" % whole)
        for ch in group:
            if ch not in "0123456789abcdefABCDEF":
                raise ValueError("bad IPv6 address: %r" % whole)
    return [int(g, 16) for g in groups]


def _parse_ipv6(text):
    whole = text
    zone = text.find("%")
    if zone >= 0:
        text = text[:zone]
    tail4 = b""
    if "." in text:
        cut = text.rfind(":")
        tail4 = _parse_ipv4(text[cut + 1 :])
        text = text[: cut + 1] + "0:0"
    halves = text.split("::")
    if len(halves) > 2:
        raise ValueError("bad IPv6 address: %r" % whole)
    if len(halves) == 2:
        head = _parse_groups(halves[0], whole)
        tail = _parse_groups(halves[1], whole)
        missing = 8 - len(head) - len(tail)
        if missing < 1:
            raise ValueError("bad IPv6 address: %r" % whole)
        groups = head + [0] * missing + tail
    else:
        groups = _parse_groups(text, whole)
        if len(groups) != 8:
            raise ValueError("bad IPv6 address: %r" % whole)
    out = bytearray(16)
    for i in range(8):
        struct.pack_into(">H", out, 2 * i, groups[i])
    if tail4:
        out[12:16] = tail4
    return bytes(out)


def ip_to_bytes(text):
    """Packed form (4 or 16 bytes) of an IPv4 or IPv6 address in text."""
    if not isinstance(text, str):
        raise ValueError("IP address must be text, got %r" % (text,))
    if ":" in text:
        return _parse_ipv6(text)
    return _parse_ipv4(text)


def ip_from_bytes(packed):
    """Text form of a packed address; IPv6 in RFC 5952 canonical form."""
    if len(packed) == 4:
        return "%d.%d.%d.%d" % (packed[0], packed[1], packed[2], packed[3])
    if len(packed) != 16:
        raise ValueError("packed IP address must be 4 or 16 bytes")
    groups = struct.unpack(">8H", packed)
    # RFC 5952 §4.2: compress the longest run (first if tied) of 2+ zero groups.
    best_at, best_len, run_at, run_len = -1, 1, 0, 0
    for i in range(8):
        if groups[i] == 0:
            if run_len == 0:
                run_at = i
            run_len += 1
            if run_len > best_len:
                best_at, best_len = run_at, run_len
        else:
            run_len = 0
    if best_at < 0:
        return ":".join("%x" % g for g in groups)
    head = ":".join("%x" % g for g in groups[:best_at])
    tail = ":".join("%x" % g for g in groups[best_at + best_len :])
    return head + "::" + tail


def is_ip(text):
    """True when `text` is an IPv4 or IPv6 address literal (not a name)."""
    try:
        ip_to_bytes(text)
        return True
    except ValueError:
        return False


def ticks_earliest(deadline, candidate):
    """The earlier of two tick deadlines; `deadline` may be None."""
    if deadline is None or ticks_diff(candidate, deadline) < 0:
        return candidate
    return deadline


def ip_family(text):
    """6 for IPv6 text, 4 otherwise (no validation)."""
    return 6 if ":" in text else 4


def is_link_local(text):
    packed = ip_to_bytes(text)
    if len(packed) == 4:
        return packed[0] == 169 and packed[1] == 254
    return packed[0] == 0xFE and (packed[1] & 0xC0) == 0x80


# ---- socket addresses -------------------------------------------------------

_AF_INET = const(2)
_AF_INET6 = const(10)  # Linux value; raw sockaddrs only appear on the unix port.


class Recent:
    """The last few results of `make(a, b)` in fixed slots: a hot path that
    meets the same few peers skips the allocation of making them again."""

    def __init__(self, make, size=4):
        self._make = make
        self._a = [None] * size
        self._b = [None] * size
        self._value = [None] * size  # type: list
        self._next = 0

    def get(self, a, b=None):
        for i in range(len(self._a)):
            if self._b[i] == b and self._a[i] == a:
                return self._value[i]
        value = self._make(a, b)
        i = self._next
        self._a[i] = a
        self._b[i] = b
        self._value[i] = value
        self._next = (i + 1) % len(self._a)
        return value


def _parse_sockaddr(raw, _unused):
    family = raw[0] | (raw[1] << 8) if sys.byteorder == "little" else (raw[0] << 8) | raw[1]
    port = (raw[2] << 8) | raw[3]
    if family == _AF_INET:
        return ip_from_bytes(bytes(raw[4:8])), port
    if family == _AF_INET6:
        return ip_from_bytes(bytes(raw[8:24])), port
    raise ValueError("unsupported socket address family %d" % family)


def _make_sockaddr(ip, port):
    if sys.platform != "linux":
        return (ip, port)
    packed = ip_to_bytes(ip)
    if len(packed) == 4:
        raw = bytearray(16)
        family = _AF_INET
        raw[4:8] = packed
    else:
        raw = bytearray(28)
        family = _AF_INET6
        raw[8:24] = packed
    struct.pack_into("<H" if sys.byteorder == "little" else ">H", raw, 0, family)
    struct.pack_into(">H", raw, 2, port)
    return bytes(raw)


_sockaddrs_in = Recent(_parse_sockaddr)
_sockaddrs_out = Recent(_make_sockaddr)


def addr_from_socket(addr):
    """(ip, port) from whatever `recvfrom` returned on this runtime.

    CPython and ESP32 give a tuple (IPv6 tuples carry flow info and scope);
    the MicroPython unix port gives the raw `struct sockaddr` bytes.
    """
    if isinstance(addr, tuple):
        return addr[0], addr[1]
    return _sockaddrs_in.get(addr)


def addr_as_received(ip, port):
    """What `recvfrom` on this runtime reports for a datagram from ip:port,
    to compare with as it comes (CPython's IPv6 tuples carry flow info and
    scope, both 0 for the global addresses candidates hold)."""
    if not IS_MICROPYTHON and ":" in ip:
        return (ip, port, 0, 0)
    return addr_to_socket(ip, port)


def addr_to_socket(ip, port):
    """The address object this runtime's `sendto`/`bind` accepts for ip:port:
    (ip, port), or a raw `struct sockaddr` on the unix port (MicroPython)."""
    if not IS_MICROPYTHON:
        return (ip, port)
    return _sockaddrs_out.get(ip, port)
