"""ice.mdns against an independent responder: python-zeroconf on this machine.

CPython only; skipped when the `zeroconf` package is missing. A host name
`<uuid>.local` is registered with zeroconf, and our one-shot query (RFC 6762
§5.1) goes out from an ordinary UDP socket; zeroconf answers it as a legacy
unicast query (§6.7): same ID, question echoed, reply to our port.

IPv4 runs in the current network namespace with no set-up: both sides pin
their multicast to 127.0.0.1, so nothing leaves the machine. Linux does not
deliver IPv6 multicast looped over `lo`, so the IPv6 test re-runs this file
in a private network namespace (`unshare --net`) with a veth pair.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import uuid

import pytest

zeroconf = pytest.importorskip("zeroconf")

if __name__ == "__main__":  # the IPv6 child runs without conftest.py's path set-up
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

from ice import mdns  # noqa: E402

V4 = "192.0.2.77"
V6 = "2001:db8::77"
QUERY_TIMEOUT_S = 3

# Run inside the namespace before the child: loopback up, a veth pair (v0 is
# used, v1 only gives it carrier) and a link-local address with no DAD wait.
NETNS_SETUP = (
    "ip link set lo up"
    " && ip link add v0 type veth peer name v1"
    " && ip link set v1 up && ip link set v0 up"
    " && ip addr add fe80::1/64 dev v0 nodad"
)


def _register(interfaces, ip_version):
    """A zeroconf instance owning A and AAAA records for a fresh <uuid>.local."""
    name = "%s.local" % uuid.uuid4()
    zc = zeroconf.Zeroconf(interfaces=interfaces, ip_version=ip_version)
    info = zeroconf.ServiceInfo(
        "_ice-test._udp.local.",
        "mdns-live._ice-test._udp.local.",
        addresses=[socket.inet_pton(socket.AF_INET, V4), socket.inet_pton(socket.AF_INET6, V6)],
        port=9,
        server=name + ".",
    )
    zc.register_service(info)  # probes first (RFC 6762 §8.1): about 1.6 s
    return zc, info, name


def _ask(name, qtype, query_id, ifindex=None):
    """One query from an ephemeral port; (reply, sender) of the reply that
    echoes `query_id`. IPv4 when `ifindex` is None, else IPv6 on that link."""
    if ifindex is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        dest = (mdns.MDNS_GROUP_V4, mdns.MDNS_PORT)
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::", 0))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        dest = (mdns.MDNS_GROUP_V6, mdns.MDNS_PORT, 0, ifindex)
    with sock:
        assert sock.getsockname()[1] != mdns.MDNS_PORT  # one-shot, not a full responder
        sock.settimeout(QUERY_TIMEOUT_S)
        buf = bytearray(300)
        n = mdns.build_query(buf, name, qtype, query_id)
        sock.sendto(memoryview(buf)[:n], dest)
        while True:
            data, sender = sock.recvfrom(1500)
            if struct.unpack_from(">H", data)[0] == query_id:
                return data, sender


@pytest.fixture(scope="module")
def responder():
    zc, info, name = _register(["127.0.0.1"], zeroconf.IPVersion.V4Only)
    try:
        yield name
    finally:
        zc.unregister_service(info)
        zc.close()


def test_live_a_record_rfc6762_6_7(responder):
    data, sender = _ask(responder, mdns.TYPE_A, 0x4242)
    assert sender == ("127.0.0.1", mdns.MDNS_PORT)
    qid, flags, qdcount = struct.unpack_from(">3H", data)
    assert qid == 0x4242 and flags & 0x8000 and qdcount == 1  # ID and question echoed
    assert mdns.parse_answer(data, responder) == V4
    assert mdns.parse_answer(data, "%s.local" % uuid.uuid4()) is None


def test_live_aaaa_record_over_ipv4(responder):
    data, _ = _ask(responder, mdns.TYPE_AAAA, 0x0666)
    assert mdns.parse_answer(data, responder) == V6


def test_live_upper_case_query_rfc6762_16(responder):
    data, _ = _ask(responder.upper(), mdns.TYPE_A, 7)
    assert mdns.parse_answer(data, responder.upper()) == V4
    assert mdns.parse_answer(data, responder) == V4


def _netns_command():
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux only")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.skip("`%s` is not installed (util-linux / iproute2)" % tool)
    unshare = ["unshare", "--net"]
    if os.geteuid() != 0:  # an unprivileged user namespace, where the kernel allows one
        unshare[1:1] = ["--user", "--map-root-user"]
    child = "%s && exec %s %s --ipv6-child" % (
        NETNS_SETUP, sys.executable, os.path.abspath(__file__))
    return unshare + ["sh", "-c", child]


def test_live_ipv6_transport_in_private_netns():
    proc = subprocess.run(_netns_command(), capture_output=True, text=True, timeout=60)
    if proc.returncode and "unshare" in proc.stderr and "Operation not permitted" in proc.stderr:
        pytest.skip("cannot create a network namespace here: " + proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["A", V4, "AAAA", V6]


def _ipv6_child():
    """Inside the namespace: a zeroconf on v0 only, asked over ff02::fb%v0."""
    ifindex = socket.if_nametoindex("v0")
    zc, info, name = _register([ifindex], zeroconf.IPVersion.V6Only)
    try:
        for label, qtype in (("A", mdns.TYPE_A), ("AAAA", mdns.TYPE_AAAA)):
            data, _ = _ask(name, qtype, qtype, ifindex)
            print(label, mdns.parse_answer(data, name))
    finally:
        zc.unregister_service(info)
        zc.close()


if __name__ == "__main__" and sys.argv[1:] == ["--ipv6-child"]:
    _ipv6_child()
