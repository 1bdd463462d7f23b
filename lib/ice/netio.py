"""Sockets, addresses and asyncio waits as each runtime offers them.

The asyncio driver (ice.aio) uses only what is here for I/O, so that it
reads the same on CPython and MicroPython:
- `watch_readable` calls a reader whenever a socket has data: a reader of
  the event loop on CPython, a task on the asyncio poller on MicroPython
  (which has no UDP endpoints); `pending_check` asks a socket for data
  without reading (MicroPython's recvfrom leaves a dead buffer per EAGAIN);
- `writable` waits for room after a send refused by a full buffer
  (`is_full`); `recvfrom` awaits one datagram (DNS, mDNS);
- `bind_udp` binds a non-blocking socket, from a port range when asked
  (boards have no `getsockname` to learn an ephemeral port);
- `host_addresses` lists the machine's addresses: interfaces via `ifaddr`
  on CPython, the `network` module's interfaces on boards; the unix port
  has neither, so it only knows loopback and what the caller configures.
"""

import socket
import sys

from ice.compat import (IS_MICROPYTHON, addr_from_socket, addr_to_socket, const, ip_to_bytes, is_ip, is_link_local,
                        random_below)

try:
    import asyncio
except ImportError:  # a board built without asyncio can still use the sans-IO agent
    asyncio = None

# A send refused for want of buffer space, not by the network: EAGAIN (the
# socket's buffer is full), ENOMEM and ENOBUFS (lwIP out of packet buffers).
EAGAIN = const(11)
ENOMEM = const(12)
ENOBUFS = const(105)


def error_code(exc):
    return exc.args[0] if exc.args else 0


def is_full(code):
    """True for an errno that means "try again when there is room"."""
    return code == EAGAIN or code == ENOMEM or code == ENOBUFS


if IS_MICROPYTHON:
    import select

    from asyncio import core as _core

    def pending_check(sock):
        """A function that says, without reading, whether `sock` holds a
        datagram: MicroPython's recvfrom allocates its whole buffer before
        it asks the socket, so reading until EAGAIN would leave one dead
        buffer behind per wake."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)

        def pending():  # type: () -> bool
            for _ in poller.ipoll(0):
                return True
            return False

        return pending

    def _read_ready(sock):
        yield _core._io_queue.queue_read(sock)

    def _write_ready(sock):
        yield _core._io_queue.queue_write(sock)

    async def _wait_writable(sock):
        await _write_ready(sock)

    async def _watch(sock, on_readable):
        while True:
            await _read_ready(sock)
            if on_readable():
                await asyncio.sleep_ms(10)

    def watch_readable(sock, on_readable):
        """Call on_readable() whenever `sock` has something to read, until
        the returned stop() is called; a true result asks for a pause before
        the next call. A task waiting on the poller here."""
        task = asyncio.create_task(_watch(sock, on_readable))

        def stop():
            task.cancel()

        return stop

    async def recvfrom(sock, size):
        """One datagram and the (ip, port) it came from."""
        while True:
            await _read_ready(sock)
            try:
                data, addr = sock.recvfrom(size)
            except OSError as exc:
                if error_code(exc) == EAGAIN:  # woken, but nothing there
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

    async def getaddrinfo(host, port, family):  # type: (str, int, int) -> list
        """The runtime's own lookup: it blocks the board until it is done
        (ice.resolver avoids it when a DNS server is known)."""
        return socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)

else:

    def _maybe():  # type: () -> bool
        return True

    def pending_check(sock):
        """Always "try": CPython's recvfrom allocates nothing that outlives
        an EAGAIN, so the reader reads until one."""
        return _maybe

    async def _wait_writable(sock):
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake():
            if not done.done():
                done.set_result(None)

        loop.add_writer(sock, wake)
        try:
            await done
        finally:
            loop.remove_writer(sock)

    def watch_readable(sock, on_readable):
        """Call on_readable() whenever `sock` has something to read, until
        the returned stop() is called (its result asks for a pause; CPython's
        heap has none to give). A reader of the event loop here, so no task
        wakes and no registration per datagram."""
        loop = asyncio.get_running_loop()
        loop.add_reader(sock, on_readable)

        def stop():
            loop.remove_reader(sock)

        return stop

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

    async def getaddrinfo(host, port, family):  # type: (str, int, int) -> list
        """The system's resolver, in a thread."""
        return await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)


async def writable(sock, code):
    """Until `sock` can take a datagram again after a send failed with
    errno `code`. lwIP reports a UDP socket writable even when it is out of
    packet buffers (ENOMEM, ENOBUFS), so those wait a moment instead."""
    if code == EAGAIN:
        await _wait_writable(sock)
    else:
        await sleep_ms(2)


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


def set_receive_buffer(sock, size):
    """Ask the OS for a `size`-byte receive buffer on `sock` (SO_RCVBUF; 8
    on Linux for ports whose socket module does not name it). Video at tens
    of datagrams a frame needs more than the default to ride out a busy
    moment. The OS may grant less (Linux caps it at net.core.rmem_max)."""
    option = getattr(socket, "SO_RCVBUF", None)
    if option is None:
        if sys.platform != "linux":
            raise ValueError("this port cannot size socket buffers: leave recv_buffer_size unset")
        option = 8
    sock.setsockopt(getattr(socket, "SOL_SOCKET", 1), option, size)


def multicast_from(sock, ip):
    """Send this socket's IPv4 multicast out of the interface holding `ip`."""
    level = getattr(socket, "IPPROTO_IP", 0)
    option = getattr(socket, "IP_MULTICAST_IF", 32)  # 32: Linux and lwIP
    sock.setsockopt(level, option, ip_to_bytes(ip))


def sendto(sock, data, ip, port):
    """Send one datagram without blocking: 0 when it went, else the errno
    (see is_full) of a full buffer or a network that refused it."""
    try:
        sock.sendto(data, addr_to_socket(ip, port))
        return 0
    except OSError as exc:
        return error_code(exc) or -1


async def open_stream(ip, port, tls_context=None, server_name=None):
    """(reader, writer) of a TCP connection, inside TLS with `tls_context`
    (the certificate checked against `server_name`). CPython's handshake is
    over when this returns; MicroPython's runs in the first reads and
    writes, and a failed check raises there (ValueError)."""
    if tls_context is None:
        return await asyncio.open_connection(ip, port)
    return await asyncio.open_connection(ip, port, ssl=tls_context, server_hostname=server_name)


def tls_context(cadata=None, verify=True):
    """A client context for TLS to a TURN server. `cadata`: the CA
    certificate that signed the server's (PEM text or DER bytes; on
    MicroPython one certificate); None trusts the system's CAs on CPython,
    and MicroPython has none, so there it must be given. verify=False skips
    the certificate and name checks: an explicit choice for tests and closed
    networks, never a fallback."""
    if IS_MICROPYTHON:
        import tls

        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        if not verify:
            ctx.verify_mode = tls.CERT_NONE
            return ctx
        if cadata is None:
            raise ValueError("TLS to a TURN server on MicroPython needs its CA: "
                             "turn_ssl=ice.netio.tls_context(cadata=...) (PEM or DER), or verify=False")
        ctx.verify_mode = tls.CERT_REQUIRED
        ctx.load_verify_locations(_der(cadata))  # this build's mbedTLS parses DER only
        return ctx
    import ssl

    if isinstance(cadata, (bytes, bytearray)) and cadata.startswith(b"-----"):
        cadata = cadata.decode()  # CPython takes PEM as text, DER as bytes
    ctx = ssl.create_default_context(cadata=cadata)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _der(cert):
    """The first certificate of PEM text (or bytes) as DER; DER unchanged."""
    if isinstance(cert, str):
        cert = cert.encode()
    begin = cert.find(b"-----BEGIN CERTIFICATE-----")
    if begin < 0:
        return cert
    body = cert[begin + 27:cert.index(b"-----END", begin)]
    import binascii

    return binascii.a2b_base64(body.replace(b"\n", b"").replace(b"\r", b""))


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
