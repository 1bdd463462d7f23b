"""The sans-IO ICE agent (RFC 8445), with consent freshness (RFC 7675) and
trickle (RFC 8838).

The agent owns no socket and reads no clock. The driver feeds it
    handle_packet(now_ms, local_ip, local_port, src_ip, src_port, data) -> payload | None
    handle_timeout(now_ms)
and drains, after every call,
    poll_transmit() -> (local_ip, local_port, dst_ip, dst_port, data) | None
    poll_event()    -> Event | None
    poll_timeout()  -> deadline in ms ticks | None
Application data has a path of its own: `handle_packet` returns the payload
a datagram carries, and `send(data)` returns the datagram to send for it.
Events carry only control changes, so a burst of data never pushes one out.

Times are MicroPython-style wrapping ticks (ice.compat.ticks_ms). One data
stream with one component (RTP/RTCP multiplexed), UDP only. Relayed
candidates come from TURN allocations the agent drives itself: their
traffic leaves and arrives on the allocation's base, wrapped.

Where things live:
- ice.checklist: the pairs with their check and nomination states, the
  triggered queue, freezing, and when the controlling agent nominates;
- ice.transaction: STUN transactions and their retransmission, shared with
  TURN, and the pacing of new requests;
- ice.consent: consent freshness and keepalives of the selected pair;
- ice.relays (loaded with the first TURN server): the allocations;
- here: candidates, the STUN handlers, and `_evaluate`, the one place the
  connection state changes.
"""

from ice import digest, stun
from ice.checklist import (
    CONFIRM, DROP, IN_PROGRESS, NOMINATING, SUCCEEDED, TRIGGER, WANT, CheckList, pair_priority)
from ice.compat import const, is_ip, random_token, ticks_add, ticks_diff, urandom
from ice.compat import ticks_earliest as _earliest
from ice.consent import Consent
from ice.candidate import Candidate
from ice.transaction import Pacer, Transactions

# Connection states, as users know them from WebRTC.
NEW = "new"
CHECKING = "checking"
CONNECTED = "connected"
COMPLETED = "completed"
DISCONNECTED = "disconnected"
FAILED_STATE = "failed"
CLOSED = "closed"
# State groups as module constants: a tuple written in an expression would be
# built anew on every call on MicroPython (the names are not const()).
_UP = (CONNECTED, COMPLETED)
_LIVE = (CONNECTED, COMPLETED, DISCONNECTED)
_ENDED = (FAILED_STATE, CLOSED)

# Event kinds.
CANDIDATE = "candidate"  # .candidate: a local candidate to signal
CANDIDATE_REMOVED = "candidate-removed"  # .candidate: withdrawn with its lost TURN allocation
END_OF_CANDIDATES = "end-of-candidates"  # gathering is over
STATE = "state"  # .state, and .reason it changed
SELECTED = "selected"  # .pair: data goes over it from now

# Type preferences (RFC 8445 §5.1.2.2).
_TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}

# Transaction kinds.
_CHECK = const(1)
_CONSENT = const(2)
_GATHER = const(3)

# What a TURN Data indication adds around a payload (ice.turn.RECEIVE_OVERHEAD,
# not imported: a board without TURN never loads it), and one byte to tell a
# datagram cut short by a full receive buffer.
_RECEIVE_OVERHEAD = const(61)


class NotConnectedError(ValueError):
    """send() with no usable pair."""


def candidate_priority(type_pref, local_pref, component=1):
    """RFC 8445 §5.1.2.1."""
    return (type_pref << 24) + (local_pref << 8) + (256 - component)


class Config:
    """Capacities and timers. Every table is capped here; a full table is
    a counted drop or an error, never growth."""

    def __init__(
        self,
        max_local=8,
        max_remote=16,
        max_pairs=32,
        max_transactions=16,
        max_events=32,
        transmit_slots=8,
        buffer_size=576,
        max_data_size=1472,
        ta_ms=50,
        pacing_burst=4,
        rto_ms=500,
        rto_max_ms=1600,
        max_sends=7,
        aggressive=False,
        consent_interval_ms=5000,
        consent_timeout_ms=30000,
        disconnected_after_ms=8000,
        keepalive_ms=15000,
        candidate_wait_ms=10000,
        error_responses_per_s=10,
        software=None,
    ):
        if not 1 <= max_data_size <= 65000:
            raise ValueError("max_data_size must be 1-65000 bytes")
        self.max_local = max_local
        self.max_remote = max_remote
        self.max_pairs = max_pairs
        self.max_transactions = max_transactions
        self.max_events = max_events
        self.transmit_slots = transmit_slots
        # Each transmit slot holds one STUN message of the agent's own.
        self.buffer_size = buffer_size
        # The largest application datagram, on every path: 1472 bytes is what
        # a 1500-byte Ethernet MTU carries in one IPv4 UDP datagram. TURN
        # buffers and the driver's receive size follow it.
        self.max_data_size = max_data_size
        # Pacing (§14.2) as a rate: one new check or gathering request per
        # ta_ms on average, up to pacing_burst at once after a quiet spell.
        self.ta_ms = ta_ms
        self.pacing_burst = pacing_burst
        # Retransmission: RTO doubles up to rto_max_ms, max_sends sends (§14.3).
        self.rto_ms = rto_ms
        self.rto_max_ms = rto_max_ms
        self.max_sends = max_sends
        # Aggressive nomination (RFC 5245 peers): USE-CANDIDATE on every check.
        # Regular nomination (§8.1.1) waits for better pairs as long as their
        # round trips say they could still answer (ice.checklist); data flows
        # on the best valid pair meanwhile (§12.1).
        self.aggressive = aggressive
        self.consent_interval_ms = consent_interval_ms  # RFC 7675 §5.1: 4-6 s
        self.consent_timeout_ms = consent_timeout_ms  # RFC 7675 §5.1: 30 s
        self.disconnected_after_ms = disconnected_after_ms
        self.keepalive_ms = keepalive_ms  # RFC 8445 §11: Tr >= 15 s
        # Without the peer's end-of-candidates, how long after the last
        # remote candidate a list of only failed pairs counts as failed.
        self.candidate_wait_ms = candidate_wait_ms
        self.error_responses_per_s = error_responses_per_s
        self.software = software


class LocalCandidate(Candidate):
    """A candidate of ours: the SDP fields plus the base it was found from."""

    def __init__(self, base_ip, base_port, local_pref, **fields):
        Candidate.__init__(self, **fields)
        self.base_ip = base_ip
        self.base_port = base_port
        self.local_pref = local_pref
        # §7.1.1: the PRIORITY its checks carry, as a peer-reflexive
        # candidate from this base would have; made once (on a 32-bit
        # board it is a heap integer).
        self.prflx_priority = candidate_priority(_TYPE_PREFERENCE["prflx"], local_pref)


class Event:
    """A control event: `kind` (CANDIDATE, CANDIDATE_REMOVED,
    END_OF_CANDIDATES, STATE, SELECTED) and the field it names."""

    def __init__(self, kind, candidate=None, state=None, reason=None, pair=None):
        self.kind = kind
        self.candidate = candidate
        self.state = state
        self.reason = reason
        self.pair = pair


class Agent:
    """A full (or lite) ICE agent for one component of one data stream."""

    def __init__(self, controlling, config=None, ufrag=None, pwd=None, lite=False):
        self.config = config = config or Config()
        self.lite = lite
        self.controlling = controlling and not lite  # lite is controlled (§6.1.1)
        self._tiebreaker = urandom(8)  # compared as bytes (§7.3.1.1)
        self.local_candidates = []
        self.remote_candidates = []
        self.checklist = CheckList(config.max_pairs)
        self.selected_pair = None
        self.state = NEW
        # Drivers read datagrams this large; one that fills it may have been cut.
        self.receive_size = config.max_data_size + _RECEIVE_OVERHEAD
        self.counters = {
            "malformed": 0,  # undecodable STUN
            "unauthenticated": 0,  # bad USERNAME / MESSAGE-INTEGRITY
            "unmatched": 0,  # responses with no outstanding transaction
            "unknown_source": 0,  # data from no valid pair
            "oversize": 0,  # datagrams that filled the receive size
            "table_full": 0,  # candidate, pair or transaction table full
            "transmit_full": 0,  # no free transmit slot
            "events_dropped": 0,
            "rate_limited": 0,  # error responses not sent
            "internal_errors": 0,
            "relays_lost": 0,  # allocations that failed after they were ready
            "relay_unavailable": 0,  # data for a relayed pair whose allocation is not ready
        }
        self._transactions = Transactions(
            config.max_transactions, config.rto_ms, config.rto_max_ms, config.max_sends, config.rto_max_ms)
        # Bound once: a bound method made per tick would be an allocation per tick.
        self._resend = self._send_request
        self._expire = self._expired
        self._pacer = Pacer(config.ta_ms, config.pacing_burst)
        self._consent = Consent(config.consent_interval_ms, config.consent_timeout_ms,
                                config.disconnected_after_ms, config.keepalive_ms)
        self._relays = None  # ice.relays.Relays, with the first TURN server
        self._tx_writers = [stun.Writer(bytearray(config.buffer_size)) for _ in range(config.transmit_slots)]
        # Per slot: base ip, base port, destination ip, destination port.
        self._tx_routes = [None] * (4 * config.transmit_slots)  # type: list
        self._tx_head = 0
        self._tx_count = 0
        self._events = []
        self._msg = stun.Message()
        self._foundations = []  # keys; a foundation is its index + 1, as text
        self._stun_servers = []
        self._gather_queue = []  # (base_ip, base_port, server_ip, server_port)
        self._gathering_done = True
        self._now = 0
        self._first_valid_at = None
        self._remote_end = False
        self._complete = False  # a pair is nominated: the check list is done (§8.1.2)
        self._failure = None  # why the session failed, until a restart
        self._restarts = 0
        self._last_remote_at = 0
        self._error_budget = config.error_responses_per_s
        self._error_budget_at = 0
        self.remote_ufrag = None
        self.remote_pwd = None
        self.remote_lite = False
        self._remote_key = None
        self._check_username = None
        self._set_local_credentials(ufrag, pwd)

    @property
    def pairs(self):
        """The check list, best first."""
        return self.checklist.pairs

    # ---- credentials and candidates ----------------------------------------

    def _set_local_credentials(self, ufrag, pwd):
        # RFC 8445 §5.3: ufrag >= 24 bits, password >= 128 bits of randomness.
        self.local_ufrag = ufrag or random_token(8)
        self.local_pwd = pwd or random_token(24)
        self._local_key = digest.short_term_key(self.local_pwd)
        # Requests to us carry USERNAME "ours:theirs" (§7.3); until their ufrag
        # is known only our part can be checked.
        self._request_username = (self.local_ufrag + ":").encode()

    def set_remote_credentials(self, ufrag, pwd, lite=False):
        """The peer's ice-ufrag / ice-pwd, and whether it is ICE-lite."""
        if not ufrag or not pwd:
            raise ValueError("remote ufrag and pwd are both required")
        if lite and self.lite:
            raise ValueError("two ICE-lite agents cannot connect (RFC 8445 §2.5)")
        self.remote_ufrag = ufrag
        self.remote_pwd = pwd
        self.remote_lite = lite
        self._remote_key = digest.short_term_key(pwd)
        self._check_username = (ufrag + ":" + self.local_ufrag).encode()
        self._request_username = (self.local_ufrag + ":" + ufrag).encode()
        if lite and not self.controlling:
            self._set_role(True)  # a full agent facing a lite one controls (§6.1.1)
        self._evaluate(self._now)

    def _foundation(self, kind, base_ip, server_ip=""):
        """Same type, base IP and server share a foundation (§5.1.1.3)."""
        key = kind + "|" + base_ip + "|" + server_ip
        if key not in self._foundations:
            self._foundations.append(key)
        return str(self._foundations.index(key) + 1)

    def _add_local(self, kind, ip, port, base_ip, base_port, local_pref, related=None, server_ip="", priority=None):
        if len(self.local_candidates) >= self.config.max_local:
            self.counters["table_full"] += 1
            return None
        cand = LocalCandidate(
            base_ip, base_port, local_pref,
            foundation=self._foundation(kind, base_ip, server_ip),
            priority=priority or candidate_priority(_TYPE_PREFERENCE[kind], local_pref),
            host=ip, port=port, type=kind,
            related_address=related[0] if related else None,
            related_port=related[1] if related else None,
        )
        self.local_candidates.append(cand)
        return cand

    def add_host_candidate(self, ip, port):
        """Declare a bound socket's address; returns the host candidate.
        Raises when the local table is full: size `Config.max_local`."""
        if self.state == CLOSED:
            raise ValueError("agent is closed")
        hosts = sum(1 for c in self.local_candidates if c.type == "host")
        # Earlier addresses are preferred; 65535 is the maximum (§5.1.2.1).
        cand = self._add_local("host", ip, port, ip, port, 65535 - hosts)
        if cand is None:
            raise ValueError("local candidate table full: raise Config.max_local")
        self._emit(Event(CANDIDATE, candidate=cand))
        for server in self._stun_servers:
            self._queue_gather(cand, server)
        if not self.lite:
            for remote in self.remote_candidates:
                self._pair(cand, remote)
        return cand

    def add_stun_server(self, ip, port=3478):
        """Gather a server-reflexive candidate for every host base (§5.1.1.2)."""
        if self.lite:
            raise ValueError("an ICE-lite agent has host candidates only (§2.5)")
        server = (ip, port)
        self._stun_servers.append(server)
        for cand in self.local_candidates:
            if cand.type == "host":
                self._queue_gather(cand, server)

    def add_turn_server(self, ip, port, username, password, base_ip, base_port, transport="udp", now_ms=None,
                        start=True, **options):
        """Allocate a relayed candidate (RFC 8656) from the socket at `base`
        (for TCP, the key the driver uses for that stream). `options` go to
        ice.turn.TurnClient (lifetimes, refresh intervals). Returns it; with
        start=False it waits for start_relay() (its connection is not up)."""
        if self.lite:
            raise ValueError("an ICE-lite agent has host candidates only (§2.5)")
        if self._relays is not None and len(self._relays.clients) >= self.config.max_local:
            raise ValueError("too many TURN servers: at most Config.max_local")
        if now_ms is not None:
            self._now = now_ms
        from ice import relays, turn  # loaded only when a TURN server is used

        if self._relays is None:
            self._relays = relays.Relays()
        client = turn.TurnClient(
            base_ip, base_port, ip, port, username, password, transport=transport,
            data_size=self.config.max_data_size, software=self.config.software, **options)
        self._gathering_done = False
        return self._relays.add(client, self._now, start)

    def start_relay(self, client, now_ms, server_ip=None):
        """Send the first Allocate of a client added with start=False;
        `server_ip`: the address its server's name resolved to."""
        self._now = now_ms
        if server_ip is not None:
            client.resolved(server_ip)
        client.start(now_ms)

    def relay_lost(self, client, reason):
        """A TURN stream (TCP, TLS) closed or never opened; see
        ice.relays.Relays.lost."""
        self._relays.lost(self, client, reason)

    def relay_on(self, base_ip, base_port):
        """The TURN client allocating from `base`, or None."""
        return self._relays.on_base(base_ip, base_port) if self._relays is not None else None

    @property
    def gathering_complete(self):
        """True once every STUN and TURN server answered or timed out."""
        return self._gathering_done

    def _queue_gather(self, host, server):
        if (":" in host.host) != (":" in server[0]):
            return
        self._gather_queue.append((host.host, host.port, server[0], server[1]))
        self._gathering_done = False

    def add_remote_candidate(self, cand):
        """A trickled remote candidate, or None for end-of-candidates (RFC 8838).
        Returns False (and counts) when it is not used."""
        if cand is None:
            self._remote_end = True
            return True
        if cand.component != 1 or cand.transport != "udp":
            return False
        if cand.host.endswith(".local") or not is_ip(cand.host):
            return False  # mDNS names are resolved by the driver
        self._last_remote_at = self._now
        known = self._find_remote(cand.host, cand.port)
        if known is not None:
            if known.type == "prflx":  # now signalled: take its real identity (§7.3.1.3)
                known.type, known.priority, known.foundation = cand.type, cand.priority, cand.foundation
                for pair in self.checklist.pairs:
                    if pair.remote is known:
                        pair.foundation = pair.local.foundation + ":" + known.foundation
                # A relayed candidate first seen as prflx must not keep the
                # prflx priority: it would outrank direct pairs.
                self.checklist.reprioritize(self._priority_of)
            return True
        if len(self.remote_candidates) >= self.config.max_remote:
            self.counters["table_full"] += 1
            return False
        self.remote_candidates.append(cand)
        if not self.lite and not self._complete:
            for local in self.local_candidates:
                if local.type in ("host", "relay"):  # srflx pairs via its base (§6.1.2.4)
                    self._pair(local, cand)
        self._evaluate(self._now)
        return True

    def _find_remote(self, ip, port):
        for cand in self.remote_candidates:
            if cand.port == port and cand.host == ip:
                return cand
        return None

    def _find_local(self, ip, port):
        for cand in self.local_candidates:
            if cand.port == port and cand.host == ip:
                return cand
        return None

    def _host_for_base(self, ip, port):
        """The host or relayed candidate whose base is (ip, port)."""
        for cand in self.local_candidates:
            if cand.port == port and cand.host == ip and cand.type in ("host", "relay"):
                return cand
        return None

    # ---- pairs ---------------------------------------------------------------

    def _priority_of(self, local, remote):
        if self.controlling:
            return pair_priority(local.priority, remote.priority)
        return pair_priority(remote.priority, local.priority)

    def _pair(self, local, remote):
        """The pair of local and remote, formed if new (§6.1.2.2); None for
        mixed address families or a full check list (counted)."""
        if (":" in local.host) != (":" in remote.host):
            return None
        pair = self.checklist.find(local, remote)
        if pair is not None:
            return pair
        pair = self.checklist.add(local, remote, self._priority_of(local, remote))
        if pair is None:
            self.counters["table_full"] += 1
        elif local.type == "relay":  # the server relays only to permitted peers (RFC 8656 §9)
            self._relays.client_for(local).permit(remote.host)
        return pair

    def _set_role(self, controlling):
        """Switch role and re-sort the check list (§7.3.1.1)."""
        self.controlling = controlling
        self.checklist.reprioritize(self._priority_of)

    # ---- transmit ring and events -----------------------------------------

    def _writer(self, base_ip, base_port, dest_ip, dest_port):
        """A Writer on the next free transmit slot, or None (counted)."""
        slots = len(self._tx_writers)
        if self._tx_count >= slots:
            self.counters["transmit_full"] += 1
            return None
        slot = (self._tx_head + self._tx_count) % slots
        routes = self._tx_routes
        routes[4 * slot] = base_ip
        routes[4 * slot + 1] = base_port
        routes[4 * slot + 2] = dest_ip
        routes[4 * slot + 3] = dest_port
        self._tx_count += 1
        return self._tx_writers[slot]

    def poll_transmit(self):
        """Next datagram: (local_ip, local_port, dst_ip, dst_port, data).
        `data` is a view into a reused buffer: send it before calling again."""
        if self._relays is not None:
            out = self._relays.poll_transmit()
            if out is not None:
                return out
        while self._tx_count:
            slot = self._tx_head
            self._tx_head = (slot + 1) % len(self._tx_writers)
            self._tx_count -= 1
            r = self._tx_routes
            i = 4 * slot
            out = self._route(r[i], r[i + 1], r[i + 2], r[i + 3], self._tx_writers[slot].view())
            if out is not None:
                return out
        return None

    def _route(self, local_ip, local_port, dst_ip, dst_port, data):
        """The transmit tuple; what leaves a relayed candidate is wrapped for
        its TURN server and sent from the allocation's base. None when the
        allocation cannot carry it (counted)."""
        relays = self._relays
        if relays is not None:
            client = relays.relayed_at(local_ip, local_port)
            if client is not None:
                out = relays.wrap(client, dst_ip, dst_port, data)
                if out is None:
                    self.counters["relay_unavailable"] += 1
                return out
        return local_ip, local_port, dst_ip, dst_port, data

    def _emit(self, event):
        if len(self._events) >= self.config.max_events:
            self.counters["events_dropped"] += 1
            return
        self._events.append(event)

    def poll_event(self):
        """The next Event, or None."""
        if self._events:
            return self._events.pop(0)
        return None

    # ---- the driver's entry points -----------------------------------------

    def handle_packet(self, now_ms, local_ip, local_port, src_ip, src_port, data):
        """Feed one datagram received on the socket at local. Returns the
        application payload it carries (the datagram itself, or a view of
        what a TURN server relayed) when it comes from a valid pair's remote,
        else None: it was for the agent, or dropped and counted. A datagram
        is STUN only when it carries the magic cookie and parses as STUN
        (RFC 7983 §7); anything else from a valid pair is data. Never raises
        on bad input."""
        self._now = now_ms
        if self.state == CLOSED or not data:
            return None
        if len(data) >= self.receive_size:
            self.counters["oversize"] += 1
            return None
        try:
            relays = self._relays
            if relays is not None:
                client = relays.from_server(local_ip, local_port, src_ip, src_port)
                if client is not None:
                    inner = client.handle_packet(now_ms, data)
                    self._relays.service(self)
                    relayed = relays.candidate_of(client)
                    if inner is None or relayed is None:
                        self._tick(now_ms)
                        return None
                    local_ip, local_port = relayed.host, relayed.port
                    src_ip, src_port, data = inner
            malformed = False
            if data[0] < 4 and len(data) >= stun.HEADER_SIZE and data[4] == 0x21:
                try:
                    msg = self._msg.parse(data)
                except stun.StunError:
                    malformed = True
                else:
                    self._handle_stun(now_ms, local_ip, local_port, src_ip, src_port, msg)
                    self._tick(now_ms)
                    return None
            pair = self.selected_pair
            if pair is None or pair.remote.port != src_port or pair.remote.host != src_ip or \
                    pair.local.base_port != local_port or pair.local.base_ip != local_ip:
                pair = self.checklist.receiving_from(local_ip, local_port, src_ip, src_port)
            if pair is None:
                self.counters["malformed" if malformed else "unknown_source"] += 1
                return None
            pair.count_received(len(data))
            return data
        except stun.StunError:
            self.counters["malformed"] += 1
        except Exception:  # a bug; counted so tests see it, never raised at the driver
            self.counters["internal_errors"] += 1
        return None

    def handle_timeout(self, now_ms):
        self._now = now_ms
        if self.state == CLOSED:
            return
        try:
            if self._relays is not None:
                self._relays.handle_timeout(now_ms)
                self._relays.service(self)
            self._tick(now_ms)
        except Exception:  # a bug; counted so tests see it, never raised at the driver
            self.counters["internal_errors"] += 1

    def poll_timeout(self):
        """The next deadline (ms ticks) at which handle_timeout is due, or
        None: the earliest of what each timer's owner asks for."""
        if self.state == CLOSED:
            return None
        now = self._now
        deadline = self._transactions.next_deadline()
        if self._relays is not None:
            deadline = self._relays.next_deadline(deadline)
        if self._gather_queue or (self._checks_enabled() and self.checklist.has_work()):
            deadline = _earliest(deadline, self._pacer.next_at)
        at = self._nomination(now)[1]
        if at is not None:
            deadline = _earliest(deadline, at)
        pair = self.selected_pair
        if pair is not None and self.state in _LIVE:
            deadline = _earliest(deadline, self._consent.next_deadline(pair.last_sent_ms, self.state == DISCONNECTED))
        at = self._checks_failed(now)[1]
        if at is not None:
            deadline = _earliest(deadline, at)
        return deadline

    def send(self, data):
        """Route application data over the selected pair: returns the same
        (local_ip, local_port, dst_ip, dst_port, data) tuple as
        poll_transmit. Raises NotConnectedError without a usable pair, and
        ValueError for a datagram over Config.max_data_size."""
        pair = self.selected_pair
        if pair is None or self.state in _ENDED:
            raise NotConnectedError("no usable pair: wait for the 'connected' state before sending")
        if len(data) > self.config.max_data_size:
            raise ValueError("a %d-byte datagram is over the %d-byte limit of this path (Config.max_data_size)"
                             % (len(data), self.config.max_data_size))
        pair.count_sent(len(data))
        pair.last_sent_ms = self._now
        out = self._route(pair.local.base_ip, pair.local.base_port, pair.remote.host, pair.remote.port, data)
        if out is None:
            raise NotConnectedError("the TURN allocation behind the selected pair is not ready")
        return out

    def data_route(self):
        """Where the selected pair's data goes, for a driver that sends it
        without calling send() per datagram: (pair, local_ip, local_port,
        dst_ip, dst_port, relay). A datagram leaves the socket at local for
        dst; on a relayed pair `relay` is the TurnClient whose
        wrap(pair.remote.host, pair.remote.port, data) frames it and dst is
        its server, else relay is None. None while no pair carries data. The
        route holds until the next event or state change; count what goes
        with pair.count_sent()."""
        pair = self.selected_pair
        if pair is None or self.state in _ENDED:
            return None
        local = pair.local
        if self._relays is not None:
            client = self._relays.relayed_at(local.base_ip, local.base_port)
            if client is not None:
                if not client.ready:
                    return None
                base, server = client.base, client.server
                return pair, base[0], base[1], server[0], server[1], client
        return pair, local.base_ip, local.base_port, pair.remote.host, pair.remote.port, None

    def restart(self, ufrag=None, pwd=None):
        """ICE restart (§9): new credentials and a fresh check list. The
        selected pair keeps carrying data until a new one is nominated."""
        self._set_local_credentials(ufrag, pwd)
        self.remote_ufrag = self.remote_pwd = self._remote_key = self._check_username = None
        self.remote_candidates = []
        self.checklist.clear()
        self._remote_end = False
        self._complete = False
        self._first_valid_at = None
        self._failure = None
        self._restarts += 1
        self.local_candidates = [c for c in self.local_candidates if c.type != "prflx"]
        self._transactions.close_all(_CHECK)
        self._transactions.close_all(_CONSENT)
        self._consent.stop()
        self._evaluate(self._now)

    def close(self):
        """Stop; TURN allocations are released, so drain poll_transmit once more."""
        self._transactions.close_all()
        self._tx_count = 0
        if self._relays is not None:
            self._relays.close(self._now)
        self._consent.stop()
        self._set_state(CLOSED, "closed")

    def stats(self):
        """A snapshot for status pages: state, selected pair, pairs, counters."""
        sel = self.selected_pair
        return {
            "state": self.state,
            "role": "controlling" if self.controlling else "controlled",
            "selected": None if sel is None else sel.stats(),
            "pairs": [p.stats() for p in self.checklist.pairs],
            "counters": dict(self.counters),
            "turn": [] if self._relays is None else self._relays.stats(),
        }

    # ---- STUN in --------------------------------------------------------------

    def _handle_stun(self, now, local_ip, local_port, src_ip, src_port, msg):
        if msg.method != stun.BINDING:
            self.counters["malformed"] += 1
            return
        if msg.has(stun.FINGERPRINT) and not msg.check_fingerprint():
            self.counters["malformed"] += 1
            return
        cls = msg.cls
        if cls == stun.REQUEST:
            self._on_request(now, local_ip, local_port, src_ip, src_port, msg)
        elif cls != stun.INDICATION:  # keepalives (§11) need no answer
            self._on_response(now, local_ip, local_port, src_ip, src_port, msg)

    def _error_allowed(self, now):
        """A token bucket on unauthenticated error responses, so forged
        requests cannot turn us into an amplifier."""
        rate = self.config.error_responses_per_s
        elapsed = ticks_diff(now, self._error_budget_at)
        if elapsed >= 1000 or elapsed < 0:
            self._error_budget = rate
            self._error_budget_at = now
        if self._error_budget <= 0:
            self.counters["rate_limited"] += 1
            return False
        self._error_budget -= 1
        return True

    def _respond_error(self, now, local_ip, local_port, src_ip, src_port, msg, code, reason, signed=False,
                       unknown=None):
        if not signed:
            # Unauthenticated: never more bytes out than came in (header,
            # ERROR-CODE, FINGERPRINT), so a forger gains nothing by us.
            if 36 + ((len(reason) + 3) & ~3) > len(msg.data):
                self.counters["rate_limited"] += 1
                return
            if not self._error_allowed(now):
                return
        w = self._writer(local_ip, local_port, src_ip, src_port)
        if w is None:
            return
        w.start_reply(stun.BINDING_ERROR, msg)
        w.add_error_code(code, reason)
        if unknown:
            w.add_unknown_attributes(unknown)
        if signed:
            w.add_integrity(self._local_key)
        w.add_fingerprint()

    def _on_request(self, now, local_ip, local_port, src_ip, src_port, msg):
        username = msg.get(stun.USERNAME)
        # RFC 8489 §9.1.3: no USERNAME or MESSAGE-INTEGRITY -> 400; bad -> 401.
        if username is None or not msg.has(stun.MESSAGE_INTEGRITY):
            self.counters["unauthenticated"] += 1
            self._respond_error(now, local_ip, local_port, src_ip, src_port, msg, 400, "Bad Request")
            return
        expected = self._request_username
        if self.remote_ufrag is None:
            username = username[: len(expected)]
        if username != expected or not msg.check_integrity(self._local_key):
            self.counters["unauthenticated"] += 1
            self._respond_error(now, local_ip, local_port, src_ip, src_port, msg, 401, "Unauthorized")
            return
        unknown = msg.unknown_required()
        if unknown:
            self._respond_error(now, local_ip, local_port, src_ip, src_port, msg, 420, "Unknown Attribute", True,
                                unknown)
            return
        if not msg.has(stun.PRIORITY):  # §7.2.2: every check carries PRIORITY
            self._respond_error(now, local_ip, local_port, src_ip, src_port, msg, 400, "Bad Request", True)
            return
        # Role conflict (§7.3.1.1): the larger tie-breaker controls.
        theirs = msg.get(stun.ICE_CONTROLLING if self.controlling else stun.ICE_CONTROLLED)
        if theirs is not None:
            mine_wins = self._tiebreaker >= bytes(theirs)
            if mine_wins == self.controlling:
                self._respond_error(now, local_ip, local_port, src_ip, src_port, msg, 487, "Role Conflict", True)
                return
            self._set_role(not self.controlling)
        local = self._host_for_base(local_ip, local_port)
        if local is None:
            self.counters["unknown_source"] += 1
            return
        w = self._writer(local_ip, local_port, src_ip, src_port)
        if w is not None:
            w.start_reply(stun.BINDING_SUCCESS, msg)
            w.add_xor_address(stun.XOR_MAPPED_ADDRESS, src_ip, src_port)
            if self.config.software:
                w.add_bytes(stun.SOFTWARE, self.config.software)
            w.add_integrity(self._local_key)
            w.add_fingerprint()
        remote = self._find_remote(src_ip, src_port)
        if remote is None:
            remote = self._learn_remote(src_ip, src_port, msg.get_u32(stun.PRIORITY))
            if remote is None:
                return
        if self._complete and self.selected_pair is not None and self.selected_pair.remote is not remote \
                and not self.lite:
            return  # the check list is complete (§8.1.2); nothing new is checked
        pair = self._pair(local, remote)
        if pair is None:
            return
        pair.requests_received += 1
        pair.responses_sent += 1
        use_candidate = msg.has(stun.USE_CANDIDATE) and not self.controlling
        if self.lite:
            # A lite agent runs no checks: an authenticated check validates the pair.
            pair.succeed(pair, None)
            if use_candidate:
                pair.nominate(CONFIRM)
            self._choose(pair, use_candidate)
            return
        if pair.state != SUCCEEDED:  # a triggered check (§7.3.1.4)
            if pair.state == IN_PROGRESS:
                for t in self._transactions.slots:
                    if t.kind == _CHECK and t.subject is pair:
                        t.retransmit = False  # cancelled: no retransmits, no failure
            pair.apply(TRIGGER)
            if self._checks_enabled():
                # Sent at once, one for one with the check that came in (so it
                # adds no load of its own), and charged to the pacing budget of
                # the ordinary checks (§14.2): the path just shown to work in one
                # direction is the one to prove first.
                self._start_check(now, pair, _CHECK)
                self._pacer.charge(now)
            else:
                self.checklist.trigger(pair)
        if use_candidate:  # §7.3.1.5
            if pair.state == SUCCEEDED:
                valid = pair.valid_pair or pair
                valid.nominate(CONFIRM)
                self._choose(valid, True)
            else:
                pair.nominate(WANT)

    def _learn_remote(self, ip, port, priority):
        """A peer-reflexive remote candidate (§7.3.1.3)."""
        if len(self.remote_candidates) >= self.config.max_remote:
            self.counters["table_full"] += 1
            return None
        cand = Candidate(
            foundation="p" + str(len(self.remote_candidates) + 1),
            priority=priority, host=ip, port=port, type="prflx",
        )
        self.remote_candidates.append(cand)
        return cand

    def _on_response(self, now, local_ip, local_port, src_ip, src_port, msg):
        t = self._transactions.find(msg.txid)
        # Only the address we asked answers (§7.2.5.2.1, RFC 8489 §6.3).
        if t is None or t.dest_port != src_port or t.dest_ip != src_ip or \
                t.base_port != local_port or t.base_ip != local_ip:
            self.counters["unmatched"] += 1
            return
        if t.kind == _GATHER:
            self._transactions.close(t)
            if msg.cls == stun.SUCCESS:
                mapped = msg.xor_mapped_address() or msg.address(stun.MAPPED_ADDRESS)
                if mapped:
                    self._add_srflx((t.base_ip, t.base_port), mapped, t.dest_ip)
            self._gather_finished()
            return
        if not msg.check_integrity(self._remote_key):
            self.counters["unauthenticated"] += 1
            return
        kind = t.kind
        pair = t.subject
        rtt = ticks_diff(now, t.sent_ms) if t.sends == 1 else None  # Karn: none from retransmits
        nominating = t.nominating
        role_at_send = t.controlling
        prflx_priority = t.value
        self._transactions.close(t)
        pair.responses_received += 1
        if msg.cls == stun.ERROR:
            code = msg.error_code()
            if code is not None and code[0] == 487 and role_at_send == self.controlling:
                self._set_role(not self.controlling)  # §7.2.5.1
                pair.apply(TRIGGER)
                self.checklist.trigger(pair, front=True)
            elif kind != _CONSENT:
                pair.fail()
            return
        if not msg.has(stun.XOR_MAPPED_ADDRESS):
            self.counters["malformed"] += 1
            return
        if rtt is not None:
            pair.rtt_ms = rtt
        if pair is self.selected_pair:
            self._consent.confirmed(now)
        if kind == _CONSENT:
            return  # consent needs only the authenticated answer (RFC 7675 §5.1)
        self._check_succeeded(now, pair, msg.xor_mapped_address(), nominating, prflx_priority)

    def _check_succeeded(self, now, pair, mapped, nominating, prflx_priority):
        local = self._find_local(mapped[0], mapped[1])
        if local is None:
            # Peer-reflexive local candidate (§7.2.5.3.1).
            base = pair.local
            local = self._add_local(
                "prflx", mapped[0], mapped[1], base.base_ip, base.base_port,
                base.local_pref, priority=prflx_priority,
            ) or base
        # The valid pair (§7.2.5.3.2) may differ from the pair checked.
        valid = pair if local is pair.local else (self._pair(local, pair.remote) or pair)
        pair.succeed(valid, None)
        if self._first_valid_at is None:
            self._first_valid_at = now
        self.checklist.unfreeze(pair.foundation)  # §7.2.5.3.3
        if self.controlling and nominating or not self.controlling and (
                pair.nomination == NOMINATING or valid.nomination == NOMINATING):
            valid.nominate(CONFIRM)  # §8.1.1, §7.3.1.5
            self._choose(valid, True)
        else:
            self._choose(valid, False)

    def _add_srflx(self, base, mapped, server_ip):
        host = self._host_for_base(base[0], base[1])
        # §5.1.3: drop a srflx candidate equal to its base or a known one.
        if host is None or host.type != "host" or self._find_local(mapped[0], mapped[1]) is not None:
            return
        cand = self._add_local(
            "srflx", mapped[0], mapped[1], host.host, host.port, host.local_pref,
            related=(host.host, host.port), server_ip=server_ip,
        )
        if cand is not None:
            self._emit(Event(CANDIDATE, candidate=cand))

    def _gather_finished(self):
        if self._gathering_done or self._gather_queue or self._transactions.count(_GATHER):
            return
        if self._relays is not None and self._relays.allocating():
            return
        self._gathering_done = True
        self._emit(Event(END_OF_CANDIDATES))

    # ---- nomination and selection --------------------------------------------

    def _choose(self, pair, nominated):
        """A pair became valid, or was nominated: choose the pair data goes
        over. Before nomination that is the best valid pair (§12.1 lets data
        flow on any valid pair); once a pair is nominated, the nominated one
        (§8.1.1, §7.3.1.5), unless a better one is nominated already."""
        current = self.selected_pair
        if current is not None and current not in self.checklist.pairs:
            current = None  # carried over an ICE restart: any pair of the new list replaces it
        if nominated:
            if not self._complete:  # a USE-CANDIDATE again (consent checks carry it) changes nothing
                self._complete = True
                self.checklist.complete()
            keep = current is not None and current is not pair and current.nominated and \
                current.priority >= pair.priority
        else:
            keep = current is not None and (self._complete or current.priority >= pair.priority)
        if not keep and pair is not self.selected_pair:
            self.selected_pair = pair
            if pair.local.type == "relay":  # data goes by ChannelData from now (RFC 8656 §12)
                client = self._relays.client_for(pair.local)
                if client is not None:
                    client.bind_channel(pair.remote.host, pair.remote.port)
            self._consent.start(self._now, checks=not self.lite)
            self._emit(Event(SELECTED, pair=pair))
        self._evaluate(self._now)

    def _nomination(self, now):
        """(pair to nominate now, or None; when to look again, or None)."""
        if not self.controlling or self.config.aggressive or self.lite or self._complete \
                or self._first_valid_at is None:
            return None, None
        for pair in self.checklist.pairs:
            if pair.nomination == NOMINATING:
                return None, None  # a nomination is in flight
        return self.checklist.nomination(now, self._first_valid_at, self.config.ta_ms, self.config.rto_ms)

    # ---- checks out ---------------------------------------------------------------

    def _checks_enabled(self):
        return not self.lite and self._remote_key is not None and self.state not in _ENDED

    def _tick(self, now):
        self._transactions.run_due(now, self._resend, self._expire)
        if self._pacer.ready(now):
            self._send_next(now)
        best = self._nomination(now)[0]
        if best is not None:
            best.nominate(WANT)
            self.checklist.trigger(best, front=True)
            self._send_next(now)  # one nomination is not a burst: it skips pacing
        self._liveness(now)
        self._evaluate(now)

    def _send_next(self, now):
        """One new request (gathering first, then a check), paced (§14.2)."""
        if self._gather_queue:
            base_ip, base_port, server_ip, server_port = self._gather_queue.pop(0)
            t = self._transactions.open(_GATHER, base_ip, base_port, server_ip, server_port)
            if t is not None:
                self._send_request(t)
            else:
                self.counters["table_full"] += 1
                self._gather_finished()
            self._pacer.charge(now)
            return
        if not self._checks_enabled():
            return
        pair = self.checklist.next_to_check()
        if pair is not None:
            self._start_check(now, pair, _CHECK)
            self._pacer.charge(now)

    def _start_check(self, now, pair, kind):
        local = pair.local
        t = self._transactions.open(kind, local.base_ip, local.base_port, pair.remote.host, pair.remote.port, pair)
        if t is None:
            self.counters["table_full"] += 1
            if kind == _CHECK:
                self.checklist.trigger(pair)  # try again at the next pacing slot
            return
        t.controlling = self.controlling
        t.nominating = self.controlling and (
            self.config.aggressive or pair.nomination == NOMINATING or kind == _CONSENT and pair.nominated)
        t.value = local.prflx_priority
        if kind == _CHECK:
            pair.check_started(now)
        self._send_request(t)

    def _send_request(self, t):
        """(Re)build a request: retransmissions are identical (RFC 8489 §6.2.1)."""
        now = self._now
        self._transactions.sent(t, now)
        w = self._writer(t.base_ip, t.base_port, t.dest_ip, t.dest_port)
        if w is None:
            return
        w.start(stun.BINDING_REQUEST, t.txid)
        if t.kind == _GATHER:
            w.add_fingerprint()
            return
        w.add_bytes(stun.USERNAME, self._check_username)
        w.add_u32(stun.PRIORITY, t.value)
        w.add_bytes(stun.ICE_CONTROLLING if t.controlling else stun.ICE_CONTROLLED, self._tiebreaker)
        if t.nominating:
            w.add_flag(stun.USE_CANDIDATE)
        if self.config.software:
            w.add_bytes(stun.SOFTWARE, self.config.software)
        w.add_integrity(self._remote_key)
        w.add_fingerprint()
        pair = t.subject
        pair.requests_sent += 1
        pair.last_sent_ms = now

    def _expired(self, t):
        """A request that got no answer in time (RFC 8489 §6.2.1)."""
        kind, failed = t.kind, t.retransmit
        pair = t.subject
        self._transactions.close(t)
        if kind == _GATHER:
            self._gather_finished()
        elif kind == _CHECK and failed:
            if pair is self.selected_pair and pair.valid:
                # The pair data goes over: consent (RFC 7675) judges its
                # path; the nomination is tried again.
                pair.nominate(DROP)
            else:
                pair.fail()  # timed out (§7.2.5.2); a nomination on it is dropped

    def _liveness(self, now):
        """Consent checks on the selected pair, or keepalives without them."""
        pair = self.selected_pair
        if pair is None or self.state not in _LIVE:
            return
        consent = self._consent
        if consent.check_due(now):
            self._start_check(now, pair, _CONSENT)
        elif self.state in _UP and consent.keepalive_due(now, pair.last_sent_ms):
            w = self._writer(pair.local.base_ip, pair.local.base_port, pair.remote.host, pair.remote.port)
            if w is not None:  # §11: a Binding indication keeps NAT bindings open
                w.start(stun.BINDING_INDICATION, stun.new_txid())
                w.add_fingerprint()
                pair.last_sent_ms = now

    # ---- the connection state -------------------------------------------------

    def _checks_failed(self, now):
        """(True, None) when every pair of the check list has failed and no
        more candidates are coming (§8.1.2); else (False, when to look again
        or None)."""
        if self._complete or self._remote_key is None or not self.checklist.pairs or self.lite:
            return False, None
        if self.checklist.has_work() or self._transactions.count(_CHECK) or self.checklist.any_succeeded():
            return False, None
        if self._remote_end:
            return True, None
        give_up_at = ticks_add(self._last_remote_at, self.config.candidate_wait_ms + 1)
        if ticks_diff(now, give_up_at) >= 0:
            return True, None
        return False, give_up_at

    def _evaluate(self, now):
        """The one place the connection state changes (closing aside): what
        nomination, the check list and consent say now, with the reason."""
        if self.state == CLOSED:
            return
        if self._failure is None:
            if self.selected_pair is not None and self._consent.running and \
                    self._consent.silent_ms(now) > self.config.consent_timeout_ms:
                self._failure = "consent expired (RFC 7675 §5.1)"  # stop sending
            elif self._checks_failed(now)[0]:
                self._failure = "every candidate pair failed"
        selected = self.selected_pair
        usable = selected is not None and selected in self.checklist.pairs  # not one kept over a restart
        if self._failure is not None:
            self._set_state(FAILED_STATE, self._failure)
        elif usable and self._consent.running and self._consent.silent_ms(now) > self.config.disconnected_after_ms:
            self._set_state(DISCONNECTED, "consent checks unanswered")
        elif usable and self._complete:
            self._set_state(COMPLETED, "a nominated pair carries the data")
        elif usable:
            self._set_state(CONNECTED, "a valid pair carries the data; nomination goes on")
        elif self._restarts or (self._remote_key is not None and self.checklist.pairs):
            self._set_state(CHECKING, "checking pairs")

    def _set_state(self, state, reason):
        if state != self.state:
            self.state = state
            self._emit(Event(STATE, state=state, reason=reason))
