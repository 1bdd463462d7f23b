"""A deterministic network simulator for sans-IO endpoints (the ICE agent).

Virtual clock in integer milliseconds, one seeded PRNG (xorshift32, the same
sequence on CPython and MicroPython), hosts with lossy access links, NATs with
the RFC 4787 mapping and filtering behaviours, and a STUN Binding server.

An endpoint is any object with poll_transmit(), poll_timeout(),
handle_timeout(now_ms), handle_packet(now_ms, local_ip, local_port, src_ip,
src_port, data) and poll_event(). A packet's path: sender's link (up) ->
sender's NAT -> internet -> receiver's NAT -> receiver's link (down).
"""

import heapq

from ice import stun
from ice.compat import ticks_diff

_NET = 0  # packet leaves a sender's link and reaches its NAT / the internet
_HOST = 1  # packet reaches the receiving host's endpoint
_WAKE = 2  # an endpoint's poll_timeout() deadline
_CALL = 3  # sim.call_at() callback
_INJECT = 4  # forged packet: appears at the destination, no source NAT

_MAX_SAME_NOW = 1000
_MAX_BURST = 100000  # poll_transmit() results drained in one go

MAPPINGS = ("eim", "adm", "apdm")  # RFC 4787 §4.1
FILTERINGS = ("eif", "adf", "apdf")  # RFC 4787 §5
NAT_TYPES = {
    "full-cone": ("eim", "eif"),
    "restricted": ("eim", "adf"),
    "port-restricted": ("eim", "apdf"),
    "symmetric": ("apdm", "apdf"),
}


class Rng:
    """xorshift32: tiny, seeded, identical on every runtime."""

    def __init__(self, seed=1):
        self.state = ((seed & 0xFFFFFFFF) ^ 0x9E3779B9) or 1
        for _ in range(4):
            self.next32()

    def next32(self):
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def below(self, n):
        """An int in [0, n); n <= 2**32 (modulo bias is irrelevant here)."""
        return self.next32() % n

    def chance(self, p):
        """True with probability p; draws nothing when p is 0 or 1."""
        if p <= 0:
            return False
        if p >= 1:
            return True
        return self.next32() < int(p * 4294967296.0)


class _Mapping:
    def __init__(self, key, ip, port, public_port):
        self.key = key
        self.ip = ip
        self.port = port
        self.public_port = public_port
        self.last_ms = 0
        self.peers = set()  # (ip, port) sent to: apdf
        self.peer_ips = set()  # ip sent to: adf


class Nat:
    """A NAT box with one public IPv4 address (RFC 4787)."""

    def __init__(self, sim, public_ip, mapping, filtering, hairpin=False,
                 port_start=40000, timeout_ms=120000, random_ports=None):
        if mapping not in MAPPINGS:
            raise ValueError("mapping must be one of %r" % (MAPPINGS,))
        if filtering not in FILTERINGS:
            raise ValueError("filtering must be one of %r" % (FILTERINGS,))
        self.sim = sim
        self.public_ip = public_ip
        self.mapping = mapping
        self.filtering = filtering
        self.hairpin = hairpin
        self.port_start = port_start
        self.timeout_ms = timeout_ms  # RFC 4787 §4.3 REQ-5: 2 min by default
        # Non-EIM NATs pick unpredictable ports (RFC 4787 §4.2.1).
        self.random_ports = mapping != "eim" if random_ports is None else random_ports
        self.hosts = {}  # private ip -> Host
        self.dropped = 0  # unsolicited / filtered inbound, refused hairpin
        self._by_key = {}
        self._by_port = {}
        self._used = set()  # ports ever handed out: a rebind never reuses one
        self._next = port_start

    def __repr__(self):
        return "<Nat %s %s/%s>" % (self.public_ip, self.mapping, self.filtering)

    def _key(self, ip, port, dst_ip, dst_port):
        # RFC 4787 §4.1: which destinations share one mapping.
        if self.mapping == "eim":
            return (ip, port)
        if self.mapping == "adm":
            return (ip, port, dst_ip)
        return (ip, port, dst_ip, dst_port)

    def _alive(self, m):
        if m is None:
            return None
        if ticks_diff(self.sim.now, m.last_ms) < self.timeout_ms:
            return m
        self._by_key.pop(m.key, None)  # RFC 4787 §4.3: idle mapping expires
        self._by_port.pop(m.public_port, None)
        return None

    def _alloc(self):
        span = 65536 - self.port_start
        for _ in range(4 * span):
            if self.random_ports:
                port = self.port_start + self.sim.rng.below(span)
            else:
                port = self._next
                self._next = self.port_start + (port + 1 - self.port_start) % span
            if port not in self._used:
                self._used.add(port)
                return port
        raise RuntimeError("%r ran out of ports" % self)

    def outbound(self, ip, port, dst_ip, dst_port):
        """Public port for a private source; creates/refreshes the mapping."""
        key = self._key(ip, port, dst_ip, dst_port)
        m = self._alive(self._by_key.get(key))
        if m is None:
            m = _Mapping(key, ip, port, self._alloc())
            self._by_key[key] = m
            self._by_port[m.public_port] = m
        m.last_ms = self.sim.now  # RFC 4787 §4.3 REQ-6: outbound refreshes
        m.peers.add((dst_ip, dst_port))
        m.peer_ips.add(dst_ip)
        return m.public_port

    def inbound(self, src_ip, src_port, public_port):
        """Private (ip, port) for a packet to public_port, or None (dropped)."""
        m = self._alive(self._by_port.get(public_port))
        if m is not None and (
            self.filtering == "eif"  # RFC 4787 §5: endpoint-independent
            or (self.filtering == "adf" and src_ip in m.peer_ips)
            or (self.filtering == "apdf" and (src_ip, src_port) in m.peers)
        ):
            return m.ip, m.port
        self.dropped += 1
        return None

    def rebind(self):
        """Forget every mapping; new traffic gets new public ports."""
        self._by_key = {}
        self._by_port = {}

    def mappings(self):
        """Live mappings as sorted (private ip, private port, public port)."""
        out = []
        for m in list(self._by_port.values()):
            if self._alive(m) is not None:
                out.append((m.ip, m.port, m.public_port))
        return sorted(out)


class Host:
    """A machine with one IP and an access link; see Simulator.add_host."""

    def __init__(self, sim, ip, nat, delay_ms, jitter_ms, loss, duplicate, reorder):
        self.sim = sim
        self.ip = ip
        self.nat = nat
        # Link properties; tests may change them while the sim runs.
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.partitioned = False
        self.ports = {}  # port -> endpoint that owns it
        self.events = []  # events of endpoints attached without on_event
        self.data = []  # application payloads handle_packet returned, without on_data
        self.sent = 0
        self.received = 0
        self.dropped = 0

    def __repr__(self):
        return "<Host %s%s>" % (self.ip, " behind %s" % self.nat.public_ip if self.nat else "")

    def listen(self, endpoint, port=None):
        """Deliver packets for this host's `port` to `endpoint`, and let it send
        from that port. listen(port) works when one endpoint is attached."""
        if port is None:
            port = endpoint
            mine = [r.ep for r in self.sim._recs.values() if r.host is self]
            if len(mine) != 1:
                raise ValueError("listen(port) needs exactly one attached endpoint")
            endpoint = mine[0]
        owner = self.ports.get(port)
        if owner is not None and owner is not endpoint:
            raise ValueError("%s:%d is already bound" % (self.ip, port))
        self.ports[port] = endpoint

    bind = listen

    def attach(self, endpoint, on_event=None, ports=(), on_data=None):
        """Drive `endpoint` on this host; on_event(event) gets its events
        (else they go to self.events), on_data(payload) what handle_packet
        returns (else it goes to self.data). Binds `ports` first. Returns endpoint."""
        for port in ports:
            self.listen(endpoint, port)
        self.sim._attach(self, endpoint, on_event, on_data)
        return endpoint


class _Attached:
    def __init__(self, ep, host, on_event, on_data):
        self.ep = ep
        self.host = host
        self.on_event = on_event
        self.on_data = on_data
        self.poll_event = getattr(ep, "poll_event", None)
        self.wake = None  # scheduled handle_timeout time, or None
        self.gen = 0  # heap entries with an older gen are stale
        self.spin_now = -1
        self.spins = 0


class StunServer:
    """Endpoint answering Binding requests (RFC 8489 §6.3) with
    XOR-MAPPED-ADDRESS of the source as seen, plus FINGERPRINT."""

    def __init__(self, host, port=3478):
        self.host = host
        self.ip = host.ip
        self.port = port
        self.served = 0
        self._out = []

    def handle_packet(self, now, local_ip, local_port, src_ip, src_port, data):
        try:
            msg = stun.decode(data)
        except stun.StunError:
            return
        if msg.type != stun.BINDING_REQUEST:
            return
        w = stun.Writer(bytearray(64)).start(stun.BINDING_SUCCESS, msg.txid)
        w.add_xor_address(stun.XOR_MAPPED_ADDRESS, src_ip, src_port)
        w.add_fingerprint()
        self._out.append((local_ip, local_port, src_ip, src_port, bytes(w.view())))
        self.served += 1

    def handle_timeout(self, now):
        pass

    def poll_transmit(self):
        return self._out.pop(0) if self._out else None

    def poll_timeout(self):
        return None

    def poll_event(self):
        return None


class Simulator:
    def __init__(self, seed=1):
        self.now = 0
        self.rng = Rng(seed)
        self.stats = {
            "sent": 0, "delivered": 0, "lost": 0, "duplicated": 0, "reordered": 0,
            "bad_source": 0, "no_route": 0, "no_listener": 0, "nat_dropped": 0,
            "partitioned": 0, "injected": 0,
        }
        self.trace = None  # set to a list to record (now, what, src, dst, size)
        self.hosts = []
        self.nats = []
        self._internet = {}  # ip -> Host on the internet
        self._nat_by_ip = {}
        self._recs = {}  # id(endpoint) -> _Attached
        self._heap = []
        self._seq = 0

    # ---- topology --------------------------------------------------------

    def add_nat(self, public_ip, mapping, filtering, hairpin=False, port_start=40000,
                timeout_ms=120000, random_ports=None):
        if public_ip in self._internet or public_ip in self._nat_by_ip:
            raise ValueError("%s is already on the internet" % public_ip)
        nat = Nat(self, public_ip, mapping, filtering, hairpin, port_start, timeout_ms,
                  random_ports)
        self._nat_by_ip[public_ip] = nat
        self.nats.append(nat)
        return nat

    def add_nat_type(self, public_ip, name, **kw):
        mapping, filtering = NAT_TYPES[name]
        return self.add_nat(public_ip, mapping, filtering, **kw)

    def add_host(self, ip, nat=None, delay_ms=5, jitter_ms=0, loss=0.0, duplicate=0.0,
                 reorder=0.0):
        space = nat.hosts if nat is not None else self._internet
        if ip in space or (nat is None and ip in self._nat_by_ip):
            raise ValueError("%s is already in use" % ip)
        host = Host(self, ip, nat, delay_ms, jitter_ms, loss, duplicate, reorder)
        space[ip] = host
        self.hosts.append(host)
        return host

    def add_stun_server(self, ip, port=3478, **link):
        """A STUN server on internet host `ip` (created unless it exists)."""
        host = self._internet.get(ip) or self.add_host(ip, **link)
        return host.attach(StunServer(host, port), ports=(port,))

    def partition(self, host, on=True):
        """Cut `host` off (every packet to or from it dropped), or heal it."""
        host.partitioned = on

    # ---- scheduling ------------------------------------------------------

    def _push(self, at, kind, a, b=None):
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, a, b))

    def call_at(self, at_ms, fn):
        """Call fn() at virtual time at_ms (e.g. to partition mid-run)."""
        self._push(max(at_ms, self.now), _CALL, fn)

    def _attach(self, host, ep, on_event, on_data=None):
        if id(ep) in self._recs:
            raise ValueError("endpoint is already attached")
        rec = _Attached(ep, host, on_event, on_data)
        self._recs[id(ep)] = rec
        self._service(rec)

    def kick(self, endpoint):
        """Drain and reschedule an endpoint the test poked directly; one not
        attached yet is left alone (attach() will drain it)."""
        rec = self._recs.get(id(endpoint))
        if rec is not None:
            self._service(rec)

    def _service(self, rec):
        """After any call into an endpoint: send, hand out events, re-arm."""
        ep = rec.ep
        while True:
            for _ in range(_MAX_BURST):
                t = ep.poll_transmit()
                if t is None:
                    break
                self._transmit(rec, t[0], t[1], t[2], t[3], bytes(t[4]))
            else:
                raise RuntimeError("%r: poll_transmit() never returns None" % ep)
            got = 0
            while rec.poll_event is not None:
                ev = rec.poll_event()
                if ev is None:
                    break
                got += 1
                if rec.on_event is not None:
                    rec.on_event(ev)
                else:
                    rec.host.events.append(ev)
            if not got:  # a callback may have poked the endpoint: drain again
                break
        deadline = ep.poll_timeout()
        if deadline is None:
            rec.wake = None
            rec.gen += 1
            return
        at = self.now + max(0, ticks_diff(deadline, self.now))
        if at != rec.wake:
            rec.wake = at
            rec.gen += 1
            self._push(at, _WAKE, rec, rec.gen)

    def _wake(self, rec, gen):
        if gen != rec.gen:
            return  # superseded by a later poll_timeout()
        rec.wake = None
        if rec.spin_now == self.now:
            rec.spins += 1
            if rec.spins > _MAX_SAME_NOW:
                raise RuntimeError(
                    "%r asked for handle_timeout() at t=%d ms more than %d times in a row "
                    "(poll_timeout() keeps returning a deadline <= now)"
                    % (rec.ep, self.now, _MAX_SAME_NOW))
        else:
            rec.spin_now = self.now
            rec.spins = 1
        rec.ep.handle_timeout(self.now)
        self._service(rec)

    # ---- packets ---------------------------------------------------------

    def _log(self, what, pkt):
        if self.trace is not None:
            self.trace.append((self.now, what, (pkt[0], pkt[1]), (pkt[2], pkt[3]), len(pkt[4])))

    def _drop(self, reason, pkt, host=None):
        self.stats[reason] += 1
        if host is not None:
            host.dropped += 1
        self._log("drop:" + reason, pkt)

    def send(self, endpoint, transmit):
        """Send a (local_ip, local_port, dst_ip, dst_port, data) tuple that an
        attached endpoint produced outside poll_transmit (application data)."""
        t = transmit
        self._transmit(self._recs[id(endpoint)], t[0], t[1], t[2], t[3], bytes(t[4]))

    def _transmit(self, rec, local_ip, local_port, dst_ip, dst_port, data):
        host = rec.host
        pkt = (local_ip, local_port, dst_ip, dst_port, data)
        host.sent += 1
        self.stats["sent"] += 1
        self._log("send", pkt)
        if local_ip != host.ip or host.ports.get(local_port) is not rec.ep:
            self._drop("bad_source", pkt, host)
        else:
            self._over_link(host, _NET, pkt)

    def _over_link(self, host, kind, pkt):
        """One direction of host's access link: loss, duplicates, delay,
        jitter and reordering, all drawn from the sim's PRNG."""
        rng = self.rng
        if rng.chance(host.loss):
            self._drop("lost", pkt, host)
            return
        copies = 1
        if rng.chance(host.duplicate):
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            delay = host.delay_ms
            if host.jitter_ms:
                delay += rng.below(host.jitter_ms + 1)
            if rng.chance(host.reorder):
                delay += 1 + rng.below(3 * max(host.delay_ms, 1))
                self.stats["reordered"] += 1
            self._push(self.now + delay, kind, host, pkt)

    def _from_host(self, host, pkt):
        """A packet leaves host's link: LAN, source NAT, or the internet."""
        if host.partitioned:
            self._drop("partitioned", pkt, host)
            return
        src_ip, src_port, dst_ip, dst_port, data = pkt
        nat = host.nat
        if nat is not None:
            peer = nat.hosts.get(dst_ip)
            if peer is not None:  # same private network: no translation
                self._over_link(peer, _HOST, pkt)
                return
            if dst_ip == nat.public_ip and not nat.hairpin:
                nat.dropped += 1  # RFC 4787 §6: this NAT does not hairpin
                self._drop("nat_dropped", pkt)
                return
            # RFC 4787 §6 REQ-9: a hairpinned packet carries the public source.
            pkt = (nat.public_ip, nat.outbound(src_ip, src_port, dst_ip, dst_port),
                   dst_ip, dst_port, data)
        self._route(pkt, False)

    def _route(self, pkt, injected):
        dst_ip = pkt[2]
        host = self._internet.get(dst_ip)
        if host is not None:
            self._over_link(host, _HOST, pkt)
            return
        nat = self._nat_by_ip.get(dst_ip)
        if nat is not None:
            inner = nat.inbound(pkt[0], pkt[1], pkt[3])
            if inner is None:
                self._drop("nat_dropped", pkt)
            else:
                pkt = (pkt[0], pkt[1], inner[0], inner[1], pkt[4])
                self._over_link(nat.hosts[inner[0]], _HOST, pkt)
            return
        if injected:  # a forged packet may also appear on a private network
            for nat in self.nats:
                host = nat.hosts.get(dst_ip)
                if host is not None:
                    self._over_link(host, _HOST, pkt)
                    return
        self._drop("no_route", pkt)

    def _deliver(self, host, pkt):
        if host.partitioned:
            self._drop("partitioned", pkt, host)
            return
        ep = host.ports.get(pkt[3])
        rec = self._recs.get(id(ep)) if ep is not None else None
        if rec is None or rec.host is not host:
            self._drop("no_listener", pkt, host)
            return
        host.received += 1
        self.stats["delivered"] += 1
        self._log("recv", pkt)
        payload = ep.handle_packet(self.now, host.ip, pkt[3], pkt[0], pkt[1], pkt[4])
        if payload is not None:
            if rec.on_data is not None:
                rec.on_data(bytes(payload))
            else:
                host.data.append(bytes(payload))
        self._service(rec)

    def inject(self, src_ip, src_port, dst_ip, dst_port, data, at_ms=None):
        """Forge a packet: no source NAT, it appears at the destination side
        (through the destination's NAT filtering and link) at at_ms."""
        pkt = (src_ip, src_port, dst_ip, dst_port, bytes(data))
        self._push(self.now if at_ms is None else max(at_ms, self.now), _INJECT, None, pkt)

    # ---- running ---------------------------------------------------------

    def _step(self):
        at, _, kind, a, b = heapq.heappop(self._heap)
        self.now = at
        if kind == _HOST:
            self._deliver(a, b)
        elif kind == _NET:
            self._from_host(a, b)
        elif kind == _WAKE:
            self._wake(a, b)
        elif kind == _CALL:
            a()
        else:
            self.stats["injected"] += 1
            self._route(b, True)

    def run(self, until_ms):
        """Process every event up to and including virtual time until_ms."""
        heap = self._heap
        while heap and heap[0][0] <= until_ms:
            self._step()
        if until_ms > self.now:
            self.now = until_ms

    def advance(self, ms):
        self.run(self.now + ms)

    def run_until(self, predicate, timeout_ms):
        """Run until predicate() holds (checked after each event) or timeout_ms
        of virtual time pass. Returns whether predicate() held."""
        if predicate():
            return True
        end = self.now + timeout_ms
        heap = self._heap
        while heap and heap[0][0] <= end:
            self._step()
            if predicate():
                return True
        self.now = end
        return False
