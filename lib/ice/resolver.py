"""Host names to addresses without holding up the event loop, on both
runtimes: STUN/TURN server names through a stub resolver of our own (RFC
1035 §7) and browsers' `.local` names through one-shot mDNS (RFC 6762).

MicroPython's `socket.getaddrinfo` blocks the whole board until the answer
or the timeout (seconds, for a server that is down), so it is the last
resort there; CPython's runs in a thread and is used unless DNS servers are
given.
"""

import socket

import asyncio

from ice import netio
from ice.compat import IS_MICROPYTHON, default_dns_servers, is_ip, random_below, ticks_add, ticks_diff, ticks_ms

_RECV_SIZE = 1500
# Wait per try, each round asking every server once: 1 + 2 + 2 s in all, as
# a stub resolver's default (glibc: 5 s) before a name is given up.
_WAITS_MS = (1000, 2000, 2000)


def _localhost(host, want_ipv6):
    """RFC 6761 §6.3: localhost names are the loopback address, never asked."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "::1" if want_ipv6 else "127.0.0.1"
    return None


async def resolve(host, port, want_ipv6=False, dns_servers=None, port_range=None):
    """The first address of `host` (a name or an IP literal) as text, A or
    AAAA by `want_ipv6`. `dns_servers`: recursive servers to ask, each an
    address (port 53) or (address, port); None takes the platform's on
    MicroPython (DHCP's on a board, /etc/resolv.conf on unix) and the
    system resolver on CPython. Raises OSError naming the host when it
    does not resolve."""
    if is_ip(host):
        return host
    ip = _localhost(host, want_ipv6)
    if ip is not None:
        return ip
    if dns_servers is None and IS_MICROPYTHON:
        dns_servers = default_dns_servers()
    if dns_servers:
        return await _query_servers(host, want_ipv6, dns_servers, port_range)
    infos = await netio.getaddrinfo(host, port, socket.AF_INET6 if want_ipv6 else socket.AF_INET)
    for info in infos:
        return netio.addr_from_socket(info[-1])[0]
    raise OSError("cannot resolve %r" % host)


async def _query_servers(host, want_ipv6, servers, port_range):
    from ice import dns  # loaded with the first host name

    qtype = dns.TYPE_AAAA if want_ipv6 else dns.TYPE_A
    buf = bytearray(dns.HEADER_SIZE + 260)
    # A server is an address (port 53) or an (address, port) pair.
    servers = [(s, dns.DNS_PORT) if isinstance(s, str) else (s[0], int(s[1])) for s in servers]
    why = "no answer from %s" % ", ".join("%s:%d" % s for s in servers)
    for wait_ms in _WAITS_MS:
        for server in servers:
            query_id = random_below(0x10000)  # RFC 5452 §9.2: unpredictable ID and port
            size = dns.build_query(buf, host, qtype, query_id)
            try:
                sock, _ = netio.bind_udp("::" if ":" in server[0] else "0.0.0.0", port_range)
            except OSError as e:
                raise OSError("cannot resolve %r: no socket (%s)" % (host, e))
            try:
                netio.sendto(sock, memoryview(buf)[:size], server[0], server[1])
                answer = await _answer(sock, server, host, qtype, query_id, wait_ms, dns)
            finally:
                sock.close()
            if answer is None:
                continue
            rcode, ip = answer
            if ip is not None:
                return ip
            if rcode == dns.RCODE_NXDOMAIN or rcode == 0:  # no such name, or no address of this family
                raise OSError("cannot resolve %r: %s" % (host, "no such name" if rcode else "no address"))
            why = "%s:%d answered with error %d" % (server[0], server[1], rcode)
    raise OSError("cannot resolve %r: %s" % (host, why))


async def _answer(sock, server, host, qtype, query_id, wait_ms, dns):
    """The server's (rcode, address) for this query, or None after wait_ms.
    Datagrams from elsewhere, for other queries or malformed are skipped."""
    deadline = ticks_add(ticks_ms(), wait_ms)
    while True:
        left = ticks_diff(deadline, ticks_ms())
        if left <= 0:
            return None
        try:
            data, source = await netio.wait_ms(netio.recvfrom(sock, _RECV_SIZE), left)
        except asyncio.TimeoutError:
            return None
        if source[0] != server[0] or source[1] != server[1]:
            continue
        try:
            answer = dns.parse_response(data, host, qtype, query_id)
        except dns.DnsError:
            continue
        if answer is not None:
            return answer


async def resolve_mdns(name, timeout_ms=1000, port_range=None, ipv4=True, interface=None):
    """Resolve a `.local` name with one one-shot mDNS query (RFC 6762 §5.1),
    sent to the IPv4 group (out of `interface`, an address, when given);
    None when nobody answers in time."""
    from ice import mdns  # loaded with the first .local name (browsers send them)

    try:
        sock, _ = netio.bind_udp("0.0.0.0", port_range)
        if interface is not None:
            netio.multicast_from(sock, interface)
    except OSError:
        return None
    buf = bytearray(300)
    try:
        size = mdns.build_query(buf, name, mdns.TYPE_A if ipv4 else mdns.TYPE_AAAA)
        netio.sendto(sock, memoryview(buf)[:size], mdns.MDNS_GROUP_V4, mdns.MDNS_PORT)
        deadline = ticks_add(ticks_ms(), timeout_ms)
        while True:
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                return None
            try:
                data, _ = await netio.wait_ms(netio.recvfrom(sock, _RECV_SIZE), left)
            except asyncio.TimeoutError:
                return None
            try:
                ip = mdns.parse_answer(data, name)
            except mdns.MdnsError:
                continue
            if ip is not None:
                return ip
    finally:
        sock.close()
