"""Host address filters and UDP binding (ice.netio).

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
The filters get a fixed interface list, so nothing depends on this machine's
interfaces; binding uses 127.0.0.1 only.
"""

from ice import netio
from helpers import raises

INTERFACES = [
    ("lo", "127.0.0.1"),
    ("lo", "127.0.1.1"),
    ("lo", "::1"),
    ("eth0", "192.168.1.20"),
    ("eth0", "fe80::1"),
    ("eth0", "fe80::2%eth0"),  # with a zone
    ("eth0", "febf::3"),  # the top of fe80::/10
    ("eth0", "2001:db8:1:2::20"),
    ("wlan0", "10.0.5.7"),
    ("wlan0", "2001:db8:1:f0::7"),
    ("docker0", "172.17.0.1"),
    ("eth0:1", "192.168.1.20"),  # one address reported by two interfaces
]

V4 = ["192.168.1.20", "10.0.5.7", "172.17.0.1"]
V6 = ["2001:db8:1:2::20", "2001:db8:1:f0::7"]

# A range well away from the ephemeral ports other tests get from the OS.
PORT_LOW = 47100
PORT_HIGH = 47199


def hosts(**filters):
    return netio.host_addresses(interfaces=INTERFACES, **filters)


def test_default_keeps_global_addresses_in_order_once_rfc8445_s5_1_1_1():
    """RFC 8445 §5.1.1.1: no loopback, no IPv6 link-local; each address once."""
    assert hosts() == ["192.168.1.20", "2001:db8:1:2::20", "10.0.5.7", "2001:db8:1:f0::7", "172.17.0.1"]


def test_address_family_switches():
    assert hosts(use_ipv6=False) == V4
    assert hosts(use_ipv4=False) == V6
    assert hosts(use_ipv4=False, use_ipv6=False) == []


def test_loopback_only_when_asked_and_link_local_never():
    found = hosts(include_loopback=True)
    assert found[:3] == ["127.0.0.1", "127.0.1.1", "::1"]
    assert found[3:] == hosts()
    for ip in ("fe80::1", "fe80::2%eth0", "febf::3"):
        assert ip not in found
    assert hosts(include_loopback=True, use_ipv6=False)[:2] == ["127.0.0.1", "127.0.1.1"]
    assert hosts(include_interfaces=["lo"]) == []
    assert hosts(include_interfaces=["lo"], include_loopback=True) == ["127.0.0.1", "127.0.1.1", "::1"]


def test_interface_name_filters():
    assert hosts(include_interfaces=["eth0"]) == ["192.168.1.20", "2001:db8:1:2::20"]
    assert hosts(include_interfaces=["wlan0", "docker0"]) == ["10.0.5.7", "2001:db8:1:f0::7", "172.17.0.1"]
    assert hosts(exclude_interfaces=["docker0", "wlan0"]) == ["192.168.1.20", "2001:db8:1:2::20"]
    assert hosts(include_interfaces=["eth0"], exclude_interfaces=["eth0"]) == []
    # The address listed by eth0 and eth0:1 still comes from the other name.
    assert hosts(exclude_interfaces=["eth0"], use_ipv6=False) == ["10.0.5.7", "172.17.0.1", "192.168.1.20"]
    assert hosts(include_interfaces=["nope"]) == []


def test_address_filters_exact_and_cidr():
    assert hosts(include_addresses=["10.0.5.7"]) == ["10.0.5.7"]
    assert hosts(exclude_addresses=["192.168.1.20", "2001:db8:1:f0::7"]) == [
        "2001:db8:1:2::20", "10.0.5.7", "172.17.0.1"]
    assert hosts(include_addresses=["192.168.0.0/16", "172.16.0.0/12"]) == ["192.168.1.20", "172.17.0.1"]
    assert hosts(exclude_addresses=["172.16.0.0/12"], use_ipv6=False) == ["192.168.1.20", "10.0.5.7"]
    # Not on a byte boundary: 10.0.0.0/20 is 10.0.0.0-10.0.15.255.
    assert hosts(include_addresses=["10.0.0.0/20"]) == ["10.0.5.7"]
    assert hosts(include_addresses=["10.0.16.0/20"]) == []
    # IPv6 /60: the eighth byte's top nibble decides (0x02 vs 0xf0).
    assert hosts(include_addresses=["2001:db8:1::/60"]) == ["2001:db8:1:2::20"]
    assert hosts(include_addresses=["2001:db8:1:f0::/60"]) == ["2001:db8:1:f0::7"]
    assert hosts(exclude_addresses=["2001:db8::/32"]) == V4
    # An IPv4 prefix says nothing about IPv6 addresses and back.
    assert hosts(include_addresses=["0.0.0.0/0"]) == V4
    assert hosts(include_addresses=["::/0"]) == V6
    # Filters combine: every one must let the address through.
    assert hosts(include_interfaces=["eth0", "wlan0"], include_addresses=["10.0.0.0/8", "2001:db8::/32"],
                 exclude_addresses=["2001:db8:1:f0::/60"]) == ["2001:db8:1:2::20", "10.0.5.7"]


def test_address_matches():
    m = netio.address_matches
    assert m("10.0.5.7", "10.0.5.7") and not m("10.0.5.7", "10.0.5.8")
    assert m("10.0.5.7", "10.0.5.7/32") and not m("10.0.5.8", "10.0.5.7/32")
    assert m("10.0.15.255", "10.0.0.0/20") and m("10.0.0.0", "10.0.0.0/20")
    assert not m("10.0.16.0", "10.0.0.0/20") and not m("10.1.0.0", "10.0.0.0/20")
    assert m("203.0.113.129", "203.0.113.128/25") and not m("203.0.113.127", "203.0.113.128/25")
    assert m("127.255.0.1", "127.0.0.0/8") and m("1.2.3.4", "0.0.0.0/0")
    assert m("128.0.0.1", "128.0.0.0/1") and not m("127.0.0.1", "128.0.0.0/1")
    assert m("2001:db8:1:f::1", "2001:db8:1::/60") and not m("2001:db8:1:10::1", "2001:db8:1::/60")
    assert m("2001:db8::1", "2001:db8::1/128") and not m("2001:db8::2", "2001:db8::1/128")
    assert m("fe80::1", "fe80::/10") and m("febf::1", "fe80::/10") and not m("fec0::1", "fe80::/10")
    assert m("::1", "::/0")
    assert not m("10.0.5.7", "::/0") and not m("2001:db8::1", "0.0.0.0/0")
    assert not m("10.0.5.7", "2001:db8::1")  # exact match is text equality


def test_is_ip_and_family():
    assert netio.is_ip("192.0.2.1") and netio.is_ip("2001:db8::1")
    assert not netio.is_ip("turn.example.org") and not netio.is_ip("")
    assert netio.family_of("2001:db8::1") != netio.family_of("192.0.2.1")


def test_netio_imports_asyncio_on_both_runtimes():
    """The MicroPython unix port ships asyncio, so the driver's waits exist."""
    assert netio.asyncio is not None
    assert callable(netio.recvfrom) and callable(netio.wait_event)


def test_bind_udp_in_a_port_range():
    sock, port = netio.bind_udp("127.0.0.1", (PORT_LOW, PORT_HIGH))
    try:
        assert PORT_LOW <= port <= PORT_HIGH
        # Its only port taken, a range has nothing left: a clear OSError.
        try:
            netio.bind_udp("127.0.0.1", (port, port))
            assert False, "bound a port that is in use"
        except OSError as exc:
            text = str(exc)
            assert "no free UDP port" in text and "127.0.0.1" in text, text
            assert "%d-%d" % (port, port) in text, text
    finally:
        sock.close()
    # Closed, the port is free again.
    again, same = netio.bind_udp("127.0.0.1", (port, port))
    again.close()
    assert same == port
    assert raises(ValueError, netio.bind_udp, "127.0.0.1", (PORT_HIGH, PORT_LOW))


def test_bind_udp_any_port():
    sock, port = netio.bind_udp("127.0.0.1")
    sock.close()
    assert 0 < port < 65536
