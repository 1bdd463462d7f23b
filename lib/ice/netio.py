"""Sockets, addresses and asyncio waits as each runtime offers them.

The asyncio driver (ice.aio) uses only what is here for I/O, so that it
reads the same on CPython and MicroPython:
- `recvfrom` awaits a datagram: `loop.sock_recvfrom` on CPython, the
  asyncio poller on MicroPython (which has no UDP endpoints);
- `bind_udp` binds a non-blocking socket, from a port range when asked
  (boards have no `getsockname` to learn an ephemeral port);
- `host_addresses` lists the machine's addresses: interfaces via `ifaddr`
  on CPython, the `network` module's interfaces on boards; the unix port
  has neither, so it only knows loopback and what the caller configures.
"""

import socket

from ice.compat import IS_MICROPYTHON, addr_from_socket, addr_to_socket, ip_to_bytes, is_ip, is_link_local, random_below

try:
    import asyncio
except ImportError:  # a board built without asyncio can still use the sans-IO agent
    asyncio = None

if IS_MICROPYTHON:
    from asyncio import core as _core

    def _wait_readable(sock):
        yield _core._io_queue.queue_read(sock)

    async def recvfrom(sock, size):
        """One datagram and the (ip, port) it came from."""
        while True:
            await _wait_readable(sock)
            try:
                data, addr = sock.recvfrom(size)
            except OSError as exc:
                if exc.args and exc.args[0] == 11:  # EAGAIN: woken, but nothing there
                    continue
                raise
            return data, addr_from_socket(addr)

    def wait_ms(awaitable, timeout_ms):
        return asyncio.wait_for_ms(awaitable, timeout_ms)

    async def wait_event(event, timeout_ms):
        """Until `event` is set or `timeout_ms` passes."""
        try:
            await asyncio.wait_for_ms(event.wait(), timeout_ms)
        except asyncio.TimeoutError:
            pass

else:

    async def recvfrom(sock, size):
        """One datagram and the (ip, port) it came from."""
        data, addr = await asyncio.get_running_loop().sock_recvfrom(sock, size)
        return data, addr_from_socket(addr)

    def wait_ms(awaitable, timeout_ms):
        return asyncio.wait_for(awaitable, timeout_ms / 1000)

    async def wait_event(event, timeout_ms):
        """Until `event` is set or `timeout_ms` passes. Not wait_for: before
        Python 3.12 it can swallow a cancellation and keep a task alive."""
        timer = asyncio.get_running_loop().call_later(timeout_ms / 1000, event.set)
        try:
            await event.wait()
        finally:
            timer.cancel()


def sleep_ms(ms):
    if IS_MICROPYTHON:
        return asyncio.sleep_ms(ms)
    return asyncio.sleep(ms / 1000)


def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def bind_udp(ip, port_range=None, attempts=64):
    """A non-blocking UDP socket bound to `ip`; returns (socket, port).
    Without a range the OS picks the port (CPython only: MicroPython has no
    getsockname); with (low, high) ports are tried from a random start."""
    if port_range is None:
        if IS_MICROPYTHON:
            port_range = (49152, 65535)
        else:
            sock = _udp_socket(ip, 0)
            return sock, sock.getsockname()[1]
    low, high = port_range
    span = high - low + 1
    if span <= 0:
        raise ValueError("port range %r is empty" % (port_range,))
    start = random_below(span)
    error = None
    for i in range(min(span, attempts)):
        port = low + (start + i) % span
        try:
            return _udp_socket(ip, port), port
        except OSError as exc:
            error = exc
    raise OSError("no free UDP port on %s in %d-%d (%s)" % (ip, low, high, error))


def _udp_socket(ip, port):
    sock = socket.socket(family_of(ip), socket.SOCK_DGRAM)
    try:
        sock.bind(addr_to_socket(ip, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def tcp_nodelay(writer):
    """Send small messages at once on the TCP stream of an asyncio writer
    (no Nagle delay behind an unacknowledged segment: signaling messages
    are small and trickled one after another). CPython's asyncio already
    does it; MicroPython's does not. 6 and 1 are IPPROTO_TCP and TCP_NODELAY
    on Linux and lwIP, for ports whose socket module does not name them."""
    sock = getattr(writer, "s", None)  # MicroPython's asyncio Stream
    if sock is None:
        return
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError, TypeError):
        pass  # a port without the option: messages still go, a little later


def multicast_from(sock, ip):
    """Send this socket's IPv4 multicast out of the interface holding `ip`."""
    level = getattr(socket, "IPPROTO_IP", 0)
    option = getattr(socket, "IP_MULTICAST_IF", 32)  # 32: Linux and lwIP
    sock.setsockopt(level, option, ip_to_bytes(ip))


def sendto(sock, data, ip, port):
    """Send one datagram without blocking; False when it could not go."""
    try:
        sock.sendto(data, addr_to_socket(ip, port))
        return True
    except OSError:  # full buffer, unreachable network: UDP may drop it
        return False


async def resolve(host, port, want_ipv6=False):
    """The first address of `host` (a name or an IP literal) as text."""
    if is_ip(host):
        return host
    family = socket.AF_INET6 if want_ipv6 else socket.AF_INET
    if IS_MICROPYTHON:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
    for info in infos:
        return addr_from_socket(info[-1])[0]
    raise OSError("cannot resolve %r" % host)


# ---- host addresses -------------------------------------------------------


def _interfaces():
    """(interface name, ip) for every address this runtime can see."""
    found = []
    try:
        import ifaddr  # CPython: the one dependency for interface listing
    except ImportError:
        ifaddr = None
    if ifaddr is not None:
        for adapter in ifaddr.get_adapters():
            for entry in adapter.ips:
                ip = entry.ip if isinstance(entry.ip, str) else entry.ip[0]
                found.append((adapter.nice_name, ip))
        return found
    try:
        import network  # boards: the WLAN and LAN interfaces that are up
    except ImportError:
        return [("lo", "127.0.0.1")]
    for name, factory in (("sta", "WLAN"), ("ap", "WLAN"), ("lan", "LAN")):
        try:
            if factory == "WLAN":
                iface = network.WLAN(network.STA_IF if name == "sta" else network.AP_IF)
            else:
                iface = network.LAN()
            if not iface.active() or not iface.isconnected():
                continue
            found.append((name, iface.ifconfig()[0]))
            try:
                for ip in iface.ipconfig("addr6"):
                    found.append((name, ip[0] if isinstance(ip, tuple) else ip))
            except (AttributeError, ValueError, OSError, TypeError):
                pass  # no IPv6 on this build
        except (AttributeError, ValueError, OSError, TypeError):
            continue
    return found


def address_matches(ip, pattern):
    """True when `ip` is `pattern` or inside it, written as "net/prefix"."""
    if "/" not in pattern:
        return ip == pattern
    net, bits = pattern.split("/", 1)
    bits = int(bits)
    a = ip_to_bytes(ip)
    b = ip_to_bytes(net)
    if not 0 <= bits <= 8 * len(b):
        raise ValueError("prefix length /%d does not fit %s" % (bits, net))
    if len(a) != len(b):
        return False
    whole, rest = divmod(bits, 8)
    if a[:whole] != b[:whole]:
        return False
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        return a[whole] & mask == b[whole] & mask
    return True


def host_addresses(use_ipv4=True, use_ipv6=True, include_loopback=False, include_interfaces=None,
                   exclude_interfaces=None, include_addresses=None, exclude_addresses=None,
                   interfaces=None):
    """Addresses for host candidates, filtered. IPv6 link-local addresses are
    left out (they need a scope no candidate can carry), loopback unless asked.
    `interfaces` replaces discovery with a list of (name, ip)."""
    out = []
    for name, ip in interfaces if interfaces is not None else _interfaces():
        v6 = ":" in ip
        if (v6 and not use_ipv6) or (not v6 and not use_ipv4):
            continue
        if v6 and is_link_local(ip):
            continue
        if not include_loopback and (ip == "::1" or ip.startswith("127.")):
            continue
        if include_interfaces is not None and name not in include_interfaces:
            continue
        if exclude_interfaces is not None and name in exclude_interfaces:
            continue
        if include_addresses is not None and not any(address_matches(ip, p) for p in include_addresses):
            continue
        if exclude_addresses is not None and any(address_matches(ip, p) for p in exclude_addresses):
            continue
        if ip not in out:
            out.append(ip)
    return out
