"""`Connection`: the ICE agent on asyncio, the same class on CPython and
MicroPython. On CPython it takes aioice's constructor arguments and members,
so code written for aioice.Connection runs unchanged.

The connection binds the sockets, feeds the sans-IO agent (ice.agent) every
datagram and timeout, and sends what it asks for. Beyond aioice it trickles
local candidates as they are found (`on_candidate`), reports `stats()`,
restarts, filters interfaces and addresses, uses a port range, and takes
explicit capacities (`config=ice.agent.Config(...)`).
"""

import gc

import asyncio

from ice import agent as _agent
from ice import netio, sdp
from ice.resolver import resolve, resolve_mdns
from ice.compat import (IS_MICROPYTHON, ConnectionError, addr_as_received, addr_from_socket, addr_to_socket,
                        ticks_add, ticks_diff, ticks_ms)


class TransportPolicy:
    """Which local candidates are used; aioice's enum members work too."""

    ALL = "all"
    RELAY = "relay"


def _policy_name(policy):
    name = getattr(policy, "name", policy)
    name = str(name).lower()
    if name not in ("all", "relay"):
        raise ValueError("transport_policy must be 'all' or 'relay'")
    return name


class Candidate(sdp.Candidate):
    """aioice's Candidate: positional fields in aioice's order, and
    `to_sdp()` without the "candidate:" prefix, as aioice writes it."""

    def __init__(self, foundation, component, transport, priority, host, port, type,
                 related_address=None, related_port=None, tcptype=None, generation=None, extensions=None):
        sdp.Candidate.__init__(
            self, foundation=foundation, component=component, transport=transport, priority=priority,
            host=host, port=port, type=type, related_address=related_address,
            related_port=related_port, tcptype=tcptype, generation=generation, extensions=extensions)

    @classmethod
    def from_sdp(cls, line):
        c = sdp.Candidate.from_sdp(line)
        return cls(c.foundation, c.component, c.transport, c.priority, c.host, c.port, c.type,
                   c.related_address, c.related_port, c.tcptype, c.generation, c.extensions)

    @classmethod
    def copy_of(cls, c):
        return cls(c.foundation, c.component, c.transport, c.priority, c.host, c.port, c.type,
                   c.related_address, c.related_port, c.tcptype, c.generation, c.extensions)

    def to_sdp(self):
        return sdp.Candidate.to_sdp(self)[10:]


def _check_credential(value, minimum, what):
    if len(value) < minimum or len(value) > 256 or not sdp.is_ice_chars(value):
        raise ValueError("%s must be %d-256 ice-chars (RFC 8839 §5.4)" % (what, minimum))


_STREAM_CONNECT_S = 10  # TCP connect and TLS handshake to a TURN server


def _why(exc):
    """An exception as a short reason for people."""
    if isinstance(exc, EOFError):
        return "the connection closed"
    return str(exc).strip() or type(exc).__name__


class Connection:
    """One ICE session with one component (RTP/RTCP multiplexed)."""

    def __init__(
        self, ice_controlling, components=1, stun_server=None, turn_server=None,
        turn_username=None, turn_password=None, turn_ssl=False, turn_transport="udp",
        use_ipv4=True, use_ipv6=True, transport_policy=TransportPolicy.ALL,
        local_username=None, local_password=None,
        # Beyond aioice:
        config=None, stun_servers=(), include_loopback=False, interfaces=None,
        include_interfaces=None, exclude_interfaces=None, include_addresses=None,
        exclude_addresses=None, port_range=None, on_candidate=None, turn_options=None,
        mdns_timeout_ms=1000, mdns_interface=None, recv_queue_size=64, recv_buffer_size=None,
        ice_servers=(), dns_servers=None,
    ):
        if components != 1:
            raise ValueError("one component only: multiplex RTP and RTCP (RFC 5761)")
        if turn_transport not in ("udp", "tcp"):
            raise ValueError("turn_transport must be 'udp' or 'tcp'")
        if turn_ssl and turn_server is not None and turn_transport != "tcp":
            raise ValueError("turn_ssl needs turn_transport='tcp' (TURN over DTLS is not supported)")
        if turn_server is not None and (turn_username is None or turn_password is None):
            raise ValueError("a TURN server needs turn_username and turn_password")
        if local_username is not None:
            _check_credential(local_username, 4, "local_username")
        if local_password is not None:
            _check_credential(local_password, 22, "local_password")
        self.ice_controlling = ice_controlling
        self.stun_server = stun_server
        self.turn_server = turn_server
        self.turn_username = turn_username
        self.turn_password = turn_password
        self.turn_transport = turn_transport
        self.remote_is_lite = False
        self._policy = _policy_name(transport_policy)
        self._stun_servers = ([stun_server] if stun_server else []) + list(stun_servers)
        self._turn_servers = []  # (host, port, transport, tls, username, password)
        if turn_server is not None:
            self._turn_servers.append((turn_server[0], turn_server[1], turn_transport, bool(turn_ssl),
                                       turn_username, turn_password))
        if ice_servers:
            from ice import servers

            for server in servers.parse_all(ice_servers):
                if server.kind == "stun":
                    self._stun_servers.append((server.host, server.port))
                else:
                    self._turn_servers.append((server.host, server.port, server.transport, server.tls,
                                               server.username, server.password))
        # TURN over TLS (RFC 8656 §3.1): the caller's context, or one that
        # checks the server's certificate and name against the system's CAs.
        self._tls_context = turn_ssl if turn_ssl and turn_ssl is not True else None
        if self._tls_context is None and any(t[3] for t in self._turn_servers):
            self._tls_context = netio.tls_context()
        self._use_ipv4 = use_ipv4
        self._use_ipv6 = use_ipv6
        self._address_options = {
            "include_loopback": include_loopback, "interfaces": interfaces,
            "include_interfaces": include_interfaces, "exclude_interfaces": exclude_interfaces,
            "include_addresses": include_addresses, "exclude_addresses": exclude_addresses,
        }
        self._port_range = port_range
        self._recv_buffer_size = recv_buffer_size  # SO_RCVBUF of each UDP socket, or the OS default
        self._turn_options = turn_options or {}
        self._mdns_timeout_ms = mdns_timeout_ms
        self._mdns_interface = mdns_interface  # IPv4 address whose link queries go out on
        self._dns_servers = dns_servers  # None: the platform's (ice.resolver)
        self._resolving = 0  # server names being looked up while gathering
        self.on_candidate = on_candidate
        self._agent = _agent.Agent(ice_controlling, config, local_username, local_password)
        self._max_data_size = self._agent.config.max_data_size
        self._remote_username = None
        self._remote_password = None
        self._local_candidates = []
        self._remote_candidates = []
        self._sockets = {}  # (ip, port) -> UDP socket
        self._last_base = None  # (ip, port) the last datagram left from
        self._streams = {}  # TCP key -> (reader, writer), while connected
        self._stream_count = 0
        self._draining = []  # writers with a drain() in flight
        self._write_failures = {}  # writer -> why its first failed write failed
        self._tasks = []
        self._unwatch = []  # stop() of each socket's reader
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # state or gathering moved on
        self._gathering = False
        self._closed = False
        self._started_at = None  # ticks when gathering began
        self._reached = {}  # connection state -> ms after that, first time only
        # Received datagrams in a ring of fixed slots: no allocation per datagram.
        if recv_queue_size < 1:
            raise ValueError("recv_queue_size must be at least 1")
        self._received = [None] * recv_queue_size  # type: list
        self._received_head = 0
        self._received_count = 0
        self._received_event = asyncio.Event()
        # The selected pair's data path (see _update_route), or None: the
        # agent routes each datagram. (pair, socket, socket address, TURN
        # client or None, the source address a datagram from the remote
        # arrives with or None).
        self._route = None
        self._route_pair = None
        self._route_state = None
        self._blocked = None  # (socket, errno) of the last send refused for want of room
        # MicroPython's recvfrom allocates a whole receive buffer per datagram
        # (there is no recvfrom_into): a block that size, kept from the start,
        # is given up when a fragmented heap has no such hole, so the datagram
        # still gets in; it is taken again when the heap allows.
        self._reserve = None
        if IS_MICROPYTHON:
            try:
                self._reserve = bytearray(self._agent.receive_size)
            except MemoryError:
                pass  # no such hole now: the timer takes it once the heap has one
        # send_full: sends a full socket buffer refused (send() waits and sends again);
        # recv_no_memory: reads put off for want of heap (the datagram waits in the socket)
        self.counters = {"send_failed": 0, "send_full": 0, "recv_dropped": 0, "recv_oversize": 0,
                         "recv_no_memory": 0, "mdns_unresolved": 0, "dns_failed": 0}

    # ---- aioice's members ----------------------------------------------------

    @property
    def local_candidates(self):
        return self._local_candidates[:]

    @property
    def remote_candidates(self):
        return self._remote_candidates[:]

    @property
    def local_username(self):
        return self._agent.local_ufrag

    @property
    def local_password(self):
        return self._agent.local_pwd

    @property
    def remote_username(self):
        return self._remote_username

    @remote_username.setter
    def remote_username(self, value):
        self._remote_username = value
        self._credentials_changed()

    @property
    def remote_password(self):
        return self._remote_password

    @remote_password.setter
    def remote_password(self, value):
        self._remote_password = value
        self._credentials_changed()

    @property
    def state(self):
        """new, checking, connected, completed, disconnected, failed or closed."""
        return self._agent.state

    @property
    def selected_pair(self):
        return self._agent.selected_pair

    @property
    def max_data_size(self):
        """The largest datagram send() takes (Config.max_data_size)."""
        return self._max_data_size

    def _credentials_changed(self):
        agent = self._agent
        if self._remote_username and self._remote_password and (
            agent.remote_ufrag != self._remote_username or agent.remote_pwd != self._remote_password
        ):
            agent.set_remote_credentials(self._remote_username, self._remote_password, self.remote_is_lite)
            self._pump()

    async def gather_candidates(self):
        """Bind sockets and gather host, server-reflexive and relayed
        candidates; returns when gathering is over. Candidates trickle out
        through `on_candidate` (None at the end) as they are found."""
        if self._gathering:
            raise ConnectionError("gather_candidates() was already called")
        self._gathering = True
        agent = self._agent
        now = self._started_at = ticks_ms()
        agent.handle_timeout(now)
        self._start_task(self._timer())
        if self._policy == "all":
            addresses = netio.host_addresses(self._use_ipv4, self._use_ipv6, **self._address_options)
            for ip in addresses:
                try:
                    sock, port = netio.bind_udp(ip, self._port_range)
                except OSError:
                    continue  # an address that cannot be bound is skipped
                self._add_socket(ip, port, sock)
                agent.add_host_candidate(ip, port)
            for host, port in self._stun_servers:
                for v6 in (False, True):
                    if (v6 and self._use_ipv6) or (not v6 and self._use_ipv4):
                        self._start_gathering(self._add_stun(host, port, v6))
        for server in self._turn_servers:
            self._start_gathering(self._start_turn(*server))
        self._pump()
        while (self._resolving or not agent.gathering_complete) and not self._closed:
            self._changed.clear()
            await self._changed.wait()
        if self.on_candidate is not None:
            self.on_candidate(None)

    def _start_gathering(self, coro):
        """A server's gathering in its own task, so that a name slow to
        resolve holds back only that server's candidates."""
        self._resolving += 1

        async def run():
            try:
                await coro
            finally:
                self._resolving -= 1
                self._pump()
                self._changed.set()

        self._start_task(run())

    def _resolve(self, host, port, want_ipv6=False):
        return resolve(host, port, want_ipv6, self._dns_servers, self._port_range)

    async def _add_stun(self, host, port, v6):
        try:
            ip = await self._resolve(host, port, v6)
        except OSError:
            self.counters["dns_failed"] += 1
            return
        if (":" in ip) == v6 and not self._closed:
            self._agent.add_stun_server(ip, port)

    async def _start_turn(self, host, port, transport, tls, username, password):
        agent = self._agent
        if transport == "udp":
            # Registered before the name resolves (names resolve to IPv4):
            # stats() shows it, and a name that does not resolve ends its
            # gathering with the reason.
            base_ip = "::" if ":" in host else "0.0.0.0"
            sock, base_port = netio.bind_udp(base_ip, self._port_range)
            self._add_socket(base_ip, base_port, sock)
            client = agent.add_turn_server(host, port, username, password, base_ip, base_port, now_ms=ticks_ms(),
                                           start=False, **self._turn_options)
            try:
                ip = await self._resolve(host, port)
            except OSError as e:
                if not self._closed:
                    agent.relay_lost(client, "TURN server %s:%d: %s" % (host, port, _why(e)))
                return
            if not self._closed:
                agent.start_relay(client, ticks_ms(), server_ip=ip)
            return
        # A stream is keyed by a name the agent uses as the allocation's
        # base; the server is named as given, so errors name it too. The
        # allocation starts once the connection is up, in its own task, so
        # a slow server holds back only its own candidate.
        self._stream_count += 1
        key = ("tcp", self._stream_count)
        client = agent.add_turn_server(host, port, username, password, key[0], key[1], transport="tcp",
                                       now_ms=ticks_ms(), start=False, **self._turn_options)
        self._start_task(self._turn_stream(client, key, self._tls_context if tls else None))

    async def add_remote_candidate(self, remote_candidate):
        """A remote candidate, or None for end-of-candidates. `.local` (mDNS)
        host names are resolved in the background (RFC 6762 one-shot query);
        one that does not resolve is still reached as peer-reflexive."""
        if self._closed:
            return
        if remote_candidate is None:
            self._agent.add_remote_candidate(None)
            self._pump()
            return
        cand = Candidate.copy_of(remote_candidate)
        if cand.host.endswith(".local"):
            if self._policy == "all":
                self._start_task(self._resolve_mdns(cand))
            return
        self._add_remote(cand)

    def _add_remote(self, cand):
        if self._agent.add_remote_candidate(cand):
            self._remote_candidates.append(cand)
        self._pump()

    async def connect(self):
        """Wait until data can flow: a pair is valid (RFC 8445 §12.1), state
        "connected"; nomination goes on ("completed" when a pair is nominated).
        ConnectionError when ICE fails. With trickle it may run while
        gathering goes on."""
        if not self._gathering:
            raise ConnectionError("Local candidates gathering was not performed")
        if self._remote_username is None or self._remote_password is None:
            raise ConnectionError("Remote username or password is missing")
        while True:
            state = self._agent.state
            if state in (_agent.CONNECTED, _agent.COMPLETED):
                return
            if state in (_agent.FAILED_STATE, _agent.CLOSED):
                raise ConnectionError("ICE negotiation failed")
            self._changed.clear()
            await self._changed.wait()

    async def send(self, data):
        """Send one datagram to the peer; waits while the socket's buffer is
        full instead of dropping the datagram."""
        while not self.send_nowait(data):
            await self.writable()

    async def sendto(self, data, component):
        if component != 1:
            raise ValueError("only component 1 exists")
        await self.send(data)

    def send_nowait(self, data):
        """Send one datagram now: True when it went (or the network refused
        it: counted in counters["send_failed"], as UDP loses datagrams);
        False when the socket's buffer is full and nothing was sent: `await
        writable()`, then send it again. ConnectionError without a usable
        pair, ValueError over Config.max_data_size. The fast path of the
        selected pair allocates nothing."""
        route = self._route
        if route is None or route[0] is not self._agent.selected_pair:
            return self._send_by_agent(data)
        pair, sock, addr, relay, _ = route
        size = len(data)
        if size > self._max_data_size:
            return self._send_by_agent(data)  # the agent's ValueError says which limit
        if relay is not None:
            data = relay.wrap(pair.remote.host, pair.remote.port, data)
            if data is None:  # no permission could be asked for (counted)
                self.counters["send_failed"] += 1
                return True
        pair.count_sent(size)
        pair.last_sent_ms = self._agent._now
        try:
            sock.sendto(data, addr)
        except OSError as exc:
            return self._send_error(sock, netio.error_code(exc))
        return True

    def _send_by_agent(self, data):
        if self._closed:
            raise ConnectionError("Cannot send data, connection is closed")
        try:
            out = self._agent.send(data)
        except _agent.NotConnectedError as exc:
            raise ConnectionError("Cannot send data: %s" % exc)
        return self._transmit(out)

    def _send_error(self, sock, code):
        if netio.is_full(code):
            self._blocked = (sock, code)
            self.counters["send_full"] += 1
            return False
        self.counters["send_failed"] += 1
        return True

    async def writable(self):
        """Until a datagram refused by a full socket buffer (send_nowait()
        returned False) may be sent again."""
        blocked = self._blocked
        if blocked is not None:
            self._blocked = None
            await netio.writable(blocked[0], blocked[1])

    async def recv(self):
        """The next datagram from the peer."""
        while not self._received_count:
            if self._closed:
                raise ConnectionError("Connection lost while receiving data")
            self._received_event.clear()
            await self._received_event.wait()
        return self._take()

    def recv_nowait(self):
        """The next datagram from the peer if one is queued, else None."""
        if not self._received_count:
            if self._closed:
                raise ConnectionError("Connection lost while receiving data")
            return None
        return self._take()

    async def recvfrom(self):
        """(data, component) of the next datagram from the peer."""
        return await self.recv(), 1

    def _take(self):
        slots = self._received
        head = self._received_head
        data = slots[head]
        slots[head] = None
        self._received_head = (head + 1) % len(slots)
        self._received_count -= 1
        return data

    async def close(self):
        """Release TURN allocations, close sockets and stop every task."""
        if self._closed:
            return
        self._closed = True
        self._agent.close()
        self._pump()
        for _, writer in self._streams.values():
            try:
                await writer.drain()
            except OSError:
                pass
        for stop in self._unwatch:
            stop()
        self._unwatch = []
        for task in self._tasks:
            task.cancel()
        # gather, not a loop of awaits that swallows CancelledError: a caller
        # cancelled while closing must still see its cancellation.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for sock in self._sockets.values():
            sock.close()
        self._sockets = {}
        for _, writer in self._streams.values():
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, AttributeError):
                pass
        self._streams = {}
        self._changed.set()
        self._received_event.set()

    # ---- beyond aioice -------------------------------------------------------

    def stats(self):
        """The agent's snapshot plus this driver's counters, and `times`: ms
        from gather_candidates() to the first time each state was reached
        ("connected": data could flow; "completed": the pair is nominated)."""
        out = self._agent.stats()
        out["driver"] = dict(self.counters)
        out["times"] = dict(self._reached)
        return out

    def restart(self, local_username=None, local_password=None):
        """ICE restart (RFC 8445 §9): new local credentials; signal them and
        the candidates again, then set the peer's new credentials."""
        self._agent.restart(local_username, local_password)
        self._remote_username = self._remote_password = None
        self._remote_candidates = []
        self._pump()

    # ---- the loop ------------------------------------------------------------

    def _start_task(self, coro):
        if len(self._tasks) > 16:  # finished drains and lookups
            self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(coro))

    def _add_socket(self, ip, port, sock):
        if self._recv_buffer_size:
            netio.set_receive_buffer(sock, self._recv_buffer_size)
        self._sockets[(ip, port)] = sock
        pending = netio.pending_check(sock)
        self._unwatch.append(netio.watch_readable(sock, lambda: self._read_socket(ip, port, sock, pending)))

    def _read_socket(self, ip, port, sock, pending):
        """Read what the socket holds (up to 32 datagrams: a flood still lets
        other tasks run). Data from the selected pair's remote is queued
        directly (one check that it is not STUN, RFC 7983 §7); the rest goes
        to the agent. True when the reader should pause: a heap too full or
        too fragmented for a datagram now (it stays in the socket)."""
        agent = self._agent
        size = agent.receive_size
        for _ in range(32):
            if self._closed or not pending():
                return False
            try:
                data, addr = sock.recvfrom(size)
            except OSError:  # drained (EAGAIN), or an ICMP error reported late
                return False
            except MemoryError:
                self.counters["recv_no_memory"] += 1
                held = self._reserve is not None
                self._reserve = None
                gc.collect()
                if held:
                    continue  # the reserve's hole takes it
                return True
            route = self._route
            if route is not None and route[4] == addr and route[1] is sock and len(data) < size and \
                    (data[0] > 3 or len(data) < 20 or data[4] != 0x21):
                route[0].count_received(len(data))
                self._deliver(data)
                continue
            try:
                src_ip, src_port = addr_from_socket(addr)
            except (ValueError, TypeError):
                continue
            payload = agent.handle_packet(ticks_ms(), ip, port, src_ip, src_port, data)
            if payload is None:
                self._pump()
            else:
                self._deliver(payload)
        return False

    def _deliver(self, payload):
        """Queue application data for recv(); a full queue drops its oldest."""
        slots = self._received
        if self._received_count == len(slots):
            self._take()
            self.counters["recv_dropped"] += 1
        slots[(self._received_head + self._received_count) % len(slots)] = \
            payload if isinstance(payload, bytes) else bytes(payload)
        self._received_count += 1
        self._received_event.set()

    async def _turn_stream(self, client, key, tls_context):
        """TURN over TCP or TLS (RFC 8656 §3.1): connect, allocate, and hand
        each STUN or ChannelData frame of the stream to the agent. A server
        that cannot be reached, or fails the certificate check, ends its own
        gathering with the reason in stats()["turn"]; a connection that
        drops withdraws the relayed candidate, and the next connection
        allocates again."""
        agent = self._agent
        host, port = client.server
        retry_ms = 1000
        while not self._closed:
            try:
                ip = await self._resolve(host, port)
                reader, writer = await asyncio.wait_for(
                    netio.open_stream(ip, port, tls_context, host), _STREAM_CONNECT_S)
            except (OSError, ValueError, asyncio.TimeoutError) as e:  # ValueError: a failed TLS check
                if not client.was_ready:  # never worked: not worth another try
                    agent.relay_lost(client, "TURN server %s:%d: %s" % (host, port, _why(e)))
                    self._pump()
                    return
                await netio.sleep_ms(retry_ms)
                retry_ms = min(2 * retry_ms, 30000)
                continue
            netio.tcp_nodelay(writer)
            self._streams[key] = (reader, writer)
            agent.start_relay(client, ticks_ms())
            self._pump()
            why = await self._read_stream(client, reader)
            why = self._write_failures.pop(writer, why)
            del self._streams[key]
            writer.close()
            if self._closed:
                return
            was_ready = client.was_ready
            agent.relay_lost(client, "TURN server %s:%d: %s" % (host, port, why))
            self._pump()
            if not was_ready:
                return
            client = agent.relay_on(key[0], key[1])  # the allocation to make over the next connection
            retry_ms = 1000

    async def _read_stream(self, client, reader):
        """Frames of one TURN stream (RFC 8656 §12.5) to the agent, until the
        stream ends; returns why it ended."""
        from ice import turn  # loaded already: the client is one

        agent = self._agent
        base_ip, base_port = client.base
        server_ip, server_port = client.server
        while not self._closed:
            try:
                head = await reader.readexactly(4)
                size = turn.frame_length(head) - 4
                if size + 4 >= agent.receive_size:  # skipped, never held whole
                    while size > 0:
                        size -= len(await reader.readexactly(min(size, 512)))
                    self.counters["recv_oversize"] += 1
                    continue
                body = await reader.readexactly(size)
            except (OSError, EOFError, ValueError) as e:  # closed, broken, or a failed TLS check
                return _why(e)
            payload = agent.handle_packet(ticks_ms(), base_ip, base_port, server_ip, server_port, head + body)
            if payload is None:
                self._pump()
            else:
                self._deliver(payload)
        return "closed"

    async def _timer(self):
        agent = self._agent
        while not self._closed:
            deadline = agent.poll_timeout()
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
            else:
                delay = ticks_diff(deadline, ticks_ms())
                if delay > 0:
                    await netio.wait_event(self._wake, delay)
                else:
                    # Due: still let the sockets be read first. A deadline
                    # handle_timeout cannot move (a check waiting for a TURN
                    # permission's answer) would otherwise spin this loop
                    # and starve every reader, that answer's too.
                    await netio.sleep_ms(0)
            if self._closed:
                return
            agent.handle_timeout(ticks_ms())
            self._pump()
            if self._reserve is None and IS_MICROPYTHON:
                try:
                    self._reserve = bytearray(agent.receive_size)
                except MemoryError:
                    pass  # the next tick tries again

    def _transmit(self, out):
        """Send a transmit tuple; False when a full socket buffer refused it."""
        local_ip, local_port, dst_ip, dst_port, data = out
        base = self._last_base  # the socket of the last send: a stream uses one
        if base is None or base[1] != local_port or base[0] != local_ip:
            base = self._last_base = (local_ip, local_port)
        sock = self._sockets.get(base)
        if sock is not None:
            code = netio.sendto(sock, data, dst_ip, dst_port)
            return not code or self._send_error(sock, code)
        stream = self._streams.get((local_ip, local_port))
        if stream is None:
            self.counters["send_failed"] += 1
            return True
        writer = stream[1]
        try:
            writer.write(bytes(data))  # copied: the agent reuses its buffers
        except (OSError, ValueError) as e:
            self._write_failed(writer, e)
            return True
        if writer not in self._draining:  # one flush in flight per stream
            self._draining.append(writer)
            self._start_task(self._drain(writer))
        return True

    def _write_failed(self, writer, exc):
        """A stream write failed: MicroPython's TLS handshake runs in the
        first writes, so a failed certificate check shows here
        (ValueError). The reader ends when the server closes; it gives this
        reason then."""
        self.counters["send_failed"] += 1
        if writer not in self._write_failures:
            self._write_failures[writer] = _why(exc)

    async def _drain(self, writer):
        try:
            await writer.drain()
        except (OSError, ValueError) as e:
            self._write_failed(writer, e)
        finally:
            self._draining.remove(writer)

    def _pump(self):
        """Send what the agent has queued and act on its events."""
        agent = self._agent
        while True:
            out = agent.poll_transmit()
            if out is None:
                break
            self._transmit(out)
        changed = False
        while True:
            event = agent.poll_event()
            if event is None:
                break
            kind = event.kind
            if kind == _agent.CANDIDATE:
                cand = Candidate.copy_of(event.candidate)
                self._local_candidates.append(cand)
                if self.on_candidate is not None:
                    self.on_candidate(cand)
            elif kind == _agent.CANDIDATE_REMOVED:  # a lost TURN allocation
                gone = event.candidate
                self._local_candidates = [
                    c for c in self._local_candidates if c.port != gone.port or c.host != gone.host]
            else:
                if kind == _agent.STATE and event.state not in self._reached and self._started_at is not None:
                    self._reached[event.state] = ticks_diff(ticks_ms(), self._started_at)
                changed = True
        if changed or agent.gathering_complete:
            self._changed.set()
        if agent.selected_pair is not self._route_pair or agent.state != self._route_state:
            self._update_route()
        self._wake.set()

    def _update_route(self):
        """The selected pair's data path for send_nowait() and the reader:
        a UDP socket and addresses looked up once per selection, not per
        datagram. TURN over TCP keeps the agent's path."""
        agent = self._agent
        self._route_pair = agent.selected_pair
        self._route_state = agent.state
        self._route = None
        route = None if self._closed else agent.data_route()
        if route is None:
            return
        pair, local_ip, local_port, dst_ip, dst_port, relay = route
        sock = self._sockets.get((local_ip, local_port))
        if sock is None:
            return
        source = None if relay is not None else addr_as_received(dst_ip, dst_port)
        self._route = (pair, sock, addr_to_socket(dst_ip, dst_port), relay, source)

    async def _resolve_mdns(self, cand):
        ip = await resolve_mdns(cand.host, self._mdns_timeout_ms, self._port_range, self._use_ipv4, self._mdns_interface)
        if ip is None or self._closed:
            self.counters["mdns_unresolved"] += 1
            return
        cand.host = ip
        self._add_remote(cand)
