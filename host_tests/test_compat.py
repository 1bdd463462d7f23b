"""The compat layer: clocks, randomness, addresses. Runs on both runtimes."""

from ice import compat
from helpers import raises


def test_ticks_wrap_like_micropython():
    period = compat.TICKS_PERIOD
    near_end = period - 5
    later = compat.ticks_add(near_end, 10)
    assert later == 5
    assert compat.ticks_diff(later, near_end) == 10
    assert compat.ticks_diff(near_end, later) == -10
    assert compat.ticks_diff(compat.ticks_add(0, -1), 0) == -1
    now = compat.ticks_ms()
    assert 0 <= now < period
    assert compat.ticks_diff(compat.ticks_ms(), now) >= 0


def test_random_helpers():
    values = [compat.random_below(6) for _ in range(300)]
    assert min(values) == 0 and max(values) == 5
    assert raises(ValueError, compat.random_below, 0)
    token = compat.random_token(22)
    assert len(token) == 22
    for ch in token:
        assert ch.isalpha() or ch.isdigit() or ch in "+/"
    assert compat.random_token(22) != token
    assert len(compat.urandom(16)) == 16


def test_ipv4_text_and_bytes():
    assert compat.ip_to_bytes("192.0.2.1") == b"\xc0\x00\x02\x01"
    assert compat.ip_from_bytes(b"\xc0\x00\x02\x01") == "192.0.2.1"
    assert compat.ip_to_bytes("0.0.0.0") == bytes(4)
    for bad in ("256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "a.b.c.d", "", "1..2.3", " 1.2.3.4"):
        assert raises(ValueError, compat.ip_to_bytes, bad), bad
    assert raises(ValueError, compat.ip_to_bytes, b"1.2.3.4")


def test_ipv6_text_and_bytes_rfc5952():
    """RFC 5952 §4: lowercase, no leading zeros, longest zero run as '::'."""
    cases = (
        ("2001:0DB8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::1%eth0", "fe80::1"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"),
        ("2001:db8::0:1", "2001:db8::1"),
        ("::ffff:192.0.2.9", "::ffff:c000:209"),
        ("2001:db8:1234:5678:11:2233:4455:6677", "2001:db8:1234:5678:11:2233:4455:6677"),
    )
    for text, canonical in cases:
        packed = compat.ip_to_bytes(text)
        assert len(packed) == 16
        assert compat.ip_from_bytes(packed) == canonical, (text, compat.ip_from_bytes(packed))
        assert compat.ip_to_bytes(canonical) == packed
    assert compat.ip_to_bytes("::ffff:1.2.3.4")[12:] == b"\x01\x02\x03\x04"
    for bad in ("1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1", ":1", "1:", "::1.2.3"):
        assert raises(ValueError, compat.ip_to_bytes, bad), bad
    assert raises(ValueError, compat.ip_from_bytes, b"\x00\x01\x02")


def test_link_local_and_family():
    assert compat.is_link_local("169.254.3.4")
    assert compat.is_link_local("fe80::1")
    assert not compat.is_link_local("192.168.1.1")
    assert compat.ip_family("::1") == 6 and compat.ip_family("1.2.3.4") == 4


def test_socket_addresses_in_both_shapes():
    """The unix port hands out raw sockaddrs; CPython and ESP32 hand out tuples."""
    assert compat.addr_from_socket(("1.2.3.4", 5)) == ("1.2.3.4", 5)
    assert compat.addr_from_socket(("::1", 5, 0, 0)) == ("::1", 5)
    for ip, port in (("127.0.0.1", 5000), ("2001:db8::1", 65535)):
        raw = compat.addr_to_socket(ip, port)
        assert compat.addr_from_socket(raw) == (ip, port)
    import sys

    little = sys.byteorder == "little"
    raw4 = (b"\x02\x00" if little else b"\x00\x02") + b"\x13\x88\x7f\x00\x00\x01" + bytes(8)
    assert compat.addr_from_socket(raw4) == ("127.0.0.1", 5000)
    raw6 = (b"\x0a\x00" if little else b"\x00\x0a") + b"\x13\x88" + bytes(4) + bytes(15) + b"\x01" + bytes(4)
    assert compat.addr_from_socket(raw6) == ("::1", 5000)
    assert raises(ValueError, compat.addr_from_socket, b"\x01\x00" + bytes(14))


def test_is_ip_and_earliest_deadline():
    assert compat.is_ip("192.0.2.1") and compat.is_ip("2001:db8::1")
    assert not compat.is_ip("camera.local") and not compat.is_ip("1.2.3.999") and not compat.is_ip("")
    late = compat.ticks_add(0, -5)  # just before a wrap
    assert compat.ticks_earliest(None, 7) == 7
    assert compat.ticks_earliest(compat.ticks_add(late, 10), late) == late
