"""The sans-IO ICE agent (RFC 8445), with consent freshness (RFC 7675) and
trickle (RFC 8838).

The agent owns no socket and reads no clock. The driver feeds it:
    handle_packet(now_ms, local_ip, local_port, src_ip, src_port, data)
    handle_timeout(now_ms)
and drains, after every call:
    poll_transmit() -> (local_ip, local_port, dst_ip, dst_port, data) | None
    poll_event()    -> event tuple | None
    poll_timeout()  -> deadline in ms ticks | None
Times are MicroPython-style wrapping ticks (ice.compat.ticks_ms). One data
stream with one component (RTP/RTCP multiplexed), UDP only. Relayed
candidates come from TURN allocations (ice.turn) the agent drives itself:
their traffic leaves and arrives on the allocation's base, wrapped.
"""

from ice import digest, stun
from ice.compat import const, is_ip, random_below, random_token, ticks_add, ticks_diff, urandom
from ice.compat import ticks_earliest as _earliest
from ice.sdp import Candidate

# Pair states (RFC 8445 §6.1.2.6).
FROZEN = const(0)
WAITING = const(1)
IN_PROGRESS = const(2)
SUCCEEDED = const(3)
FAILED = const(4)
PAIR_STATES = ("frozen", "waiting", "in-progress", "succeeded", "failed")

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

# TurnClient states (ice.turn), compared here without importing it: a board
# with no TURN server never loads the TURN client.
_TURN_READY = "ready"
_TURN_FAILED = "failed"
_TURN_ALLOCATING = "allocating"

# Type preferences (RFC 8445 §5.1.2.2).
_TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}

# Transaction kinds.
_CHECK = const(1)
_CONSENT = const(2)
_GATHER = const(3)


def candidate_priority(type_pref, local_pref, component=1):
    """RFC 8445 §5.1.2.1."""
    return (type_pref << 24) + (local_pref << 8) + (256 - component)


def _relayed(pair):
    return pair.local.type == "relay" or pair.remote.type == "relay"


def pair_priority(controlling_prio, controlled_prio):
    """RFC 8445 §6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)."""
    g, d = controlling_prio, controlled_prio
    return (min(g, d) << 32) + 2 * max(g, d) + (1 if g > d else 0)


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
        ta_ms=50,
        pacing_burst=2,
        rto_ms=500,
        rto_max_ms=1600,
        max_sends=7,
        aggressive=False,
        nomination_delay_ms=500,
        relay_nomination_delay_ms=1500,
        consent_interval_ms=5000,
        consent_timeout_ms=30000,
        disconnected_after_ms=8000,
        keepalive_ms=15000,
        candidate_wait_ms=10000,
        error_responses_per_s=10,
        software=None,
    ):
        self.max_local = max_local
        self.max_remote = max_remote
        self.max_pairs = max_pairs
        self.max_transactions = max_transactions
        self.max_events = max_events
        self.transmit_slots = transmit_slots
        self.buffer_size = buffer_size
        # Pacing (§14.2) as a rate: one new check or gathering request per
        # ta_ms on average, up to pacing_burst at once after a quiet spell.
        self.ta_ms = ta_ms
        self.pacing_burst = pacing_burst
        # Retransmission: RTO doubles up to rto_max_ms, max_sends sends (§14.3).
        self.rto_ms = rto_ms
        self.rto_max_ms = rto_max_ms
        self.max_sends = max_sends
        # Aggressive nomination (RFC 5245 peers): USE-CANDIDATE on every check.
        self.aggressive = aggressive
        # Regular nomination (§8.1.1) waits for a better pair than the first
        # valid one: 3 RTTs of that pair plus Ta, at most this long.
        self.nomination_delay_ms = nomination_delay_ms
        # A relayed best pair waits longer: a direct path through a symmetric
        # NAT shows up only as a peer-reflexive pair, a few RTTs later.
        self.relay_nomination_delay_ms = relay_nomination_delay_ms
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


class Pair:
    """A candidate pair and its statistics."""

    def __init__(self, local, remote, priority):
        self.local = local
        self.remote = remote
        self.priority = priority
        self.foundation = local.foundation + ":" + remote.foundation
        self.state = FROZEN
        self.valid = False
        self.nominated = False
        self.nominate_on_success = False
        self.valid_pair = None  # type: Pair | None  # what a successful check validated
        self.rtt_ms = None  # type: int | None
        self.requests_sent = 0
        self.requests_received = 0
        self.responses_sent = 0
        self.responses_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.last_sent_ms = 0
        self.first_check_ms = None  # type: int | None  # when its first check left

    @property
    def state_name(self):
        return PAIR_STATES[self.state]

    def __repr__(self):
        return "<Pair %s %s:%d -> %s %s:%d %s%s>" % (
            self.local.type, self.local.host, self.local.port,
            self.remote.type, self.remote.host, self.remote.port,
            PAIR_STATES[self.state], " nominated" if self.nominated else "",
        )


class _Transaction:
    """One outstanding STUN request; a fixed table of these is reused."""

    def __init__(self):
        self.kind = 0  # 0: free
        self.txid = b""
        self.pair = None  # type: Pair | None
        self.base = None  # (ip, port) we send from
        self.dest = None  # (ip, port) we send to
        self.use_candidate = False
        self.controlling = False
        self.priority = 0  # PRIORITY we sent, for a peer-reflexive candidate
        self.retransmit = True
        self.sends = 0
        self.rto = 0
        self.sent_ms = 0
        self.deadline = 0


class Agent:
    """A full (or lite) ICE agent for one component of one data stream."""

    def __init__(self, controlling, config=None, ufrag=None, pwd=None, lite=False):
        self.config = config = config or Config()
        self.lite = lite
        self.controlling = controlling and not lite  # lite is controlled (§6.1.1)
        self._tiebreaker = urandom(8)  # compared as bytes (§7.3.1.1)
        self.local_candidates = []
        self.remote_candidates = []
        self.pairs = []  # sorted, highest priority first
        self.selected_pair = None
        self.state = NEW
        self.counters = {
            "malformed": 0,  # undecodable STUN
            "unauthenticated": 0,  # bad USERNAME / MESSAGE-INTEGRITY
            "unmatched": 0,  # responses with no outstanding transaction
            "unknown_source": 0,  # data from no valid pair
            "table_full": 0,  # candidate, pair or transaction table full
            "transmit_full": 0,  # no free transmit slot
            "events_dropped": 0,
            "rate_limited": 0,  # error responses not sent
            "internal_errors": 0,
            "relays_lost": 0,  # allocations that failed after they were ready
        }
        self._transactions = [_Transaction() for _ in range(config.max_transactions)]
        self._tx_writers = [stun.Writer(bytearray(config.buffer_size)) for _ in range(config.transmit_slots)]
        # Per slot: base ip, base port, destination ip, destination port.
        self._tx_routes = [None] * (4 * config.transmit_slots)  # type: list
        self._tx_head = 0
        self._tx_count = 0
        self._events = []
        self._msg = stun.Message()
        self._foundations = []  # keys; a foundation is its index + 1, as text
        self._stun_servers = []
        self._turns = []  # TurnClient, each with .candidate once it is ready
        self._gather_queue = []  # (base_ip, base_port, server_ip, server_port)
        self._gathering_done = True
        self._triggered = []
        self._now = 0
        self._next_check_at = 0
        self._pace_tat = 0  # GCRA theoretical arrival time of the next request
        self._first_valid_at = None
        self._remote_end = False
        self._done = False  # a pair is nominated: the check list is complete (§8.1.2)
        self._last_remote_at = 0
        self._consent_ok_at = 0
        self._next_consent_at = 0
        self._error_budget = config.error_responses_per_s
        self._error_budget_at = 0
        self.remote_ufrag = None
        self.remote_pwd = None
        self.remote_lite = False
        self._remote_key = None
        self._check_username = None
        self._set_local_credentials(ufrag, pwd)

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
        self.remote_ufrag = ufrag
        self.remote_pwd = pwd
        self.remote_lite = lite
        self._remote_key = digest.short_term_key(pwd)
        self._check_username = (ufrag + ":" + self.local_ufrag).encode()
        self._request_username = (self.local_ufrag + ":" + ufrag).encode()
        if lite:
            if self.lite:
                raise ValueError("two ICE-lite agents cannot connect (RFC 8445 §2.5)")
            if not self.controlling:
                self._set_role(True)  # a full agent facing a lite one controls (§6.1.1)

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
        self._emit(("candidate", cand))
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

    def add_turn_server(self, ip, port, username, password, base_ip, base_port, transport="udp", now_ms=None, **options):
        """Allocate a relayed candidate (RFC 8656) from the socket at `base`
        (for TCP, the key the driver uses for that stream). `options` go to
        ice.turn.TurnClient (lifetimes, refresh intervals). Returns it."""
        if self.lite:
            raise ValueError("an ICE-lite agent has host candidates only (§2.5)")
        if len(self._turns) >= self.config.max_local:
            raise ValueError("too many TURN servers: at most Config.max_local")
        if now_ms is not None:
            self._now = now_ms
        from ice import turn  # loaded only when a TURN server is used

        client = turn.TurnClient(
            base_ip, base_port, ip, port, username, password, transport=transport,
            data_size=self.config.buffer_size, software=self.config.software, **options)
        client.candidate = None
        client.start(self._now)
        self._turns.append(client)
        self._gathering_done = False
        return client

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
            return False  # mDNS names are resolved by the driver (issue 4)
        self._last_remote_at = self._now
        known = self._find_remote(cand.host, cand.port)
        if known is not None:
            if known.type == "prflx":  # now signalled: take its real identity (§7.3.1.3)
                known.type, known.priority, known.foundation = cand.type, cand.priority, cand.foundation
                for pair in self.pairs:
                    if pair.remote is known:
                        pair.foundation = pair.local.foundation + ":" + known.foundation
                        # A relayed candidate first seen as prflx must not keep
                        # the prflx priority: it would outrank direct pairs.
                        pair.priority = self._priority_of(pair.local, known)
                self.pairs.sort(key=_pair_sort_key)
            return True
        if len(self.remote_candidates) >= self.config.max_remote:
            self.counters["table_full"] += 1
            return False
        self.remote_candidates.append(cand)
        if not self.lite and not self._done:
            for local in self.local_candidates:
                if local.type in ("host", "relay"):  # srflx pairs via its base (§6.1.2.4)
                    self._pair(local, cand)
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

    def _turn_for(self, relayed):
        for client in self._turns:
            if client.candidate is relayed:
                return client
        return None

    # ---- pairs and the check list ------------------------------------------

    def _priority_of(self, local, remote):
        if self.controlling:
            return pair_priority(local.priority, remote.priority)
        return pair_priority(remote.priority, local.priority)

    def _pair(self, local, remote, state=None):
        """Form a pair (§6.1.2.2), or return the existing one."""
        if (":" in local.host) != (":" in remote.host):
            return None
        for pair in self.pairs:
            if pair.local is local and pair.remote is remote:
                return pair
        pair = Pair(local, remote, self._priority_of(local, remote))
        if len(self.pairs) >= self.config.max_pairs:
            # §6.1.2.5: keep the highest-priority pairs; drop the lowest idle one.
            lowest = self.pairs[-1]
            if lowest.priority >= pair.priority or lowest.state in (IN_PROGRESS, SUCCEEDED):
                self.counters["table_full"] += 1
                return None
            self._remove_pair(lowest)
        if state is None:
            # RFC 8838 §10: Waiting unless its foundation is already being checked.
            state = WAITING
            for other in self.pairs:
                if other.foundation == pair.foundation and other.state in (WAITING, IN_PROGRESS):
                    state = FROZEN
                    break
        pair.state = state
        if local.type == "relay":  # the server relays only to permitted peers (RFC 8656 §9)
            self._turn_for(local).permit(remote.host)
        at = 0
        while at < len(self.pairs) and self.pairs[at].priority >= pair.priority:
            at += 1
        self.pairs.insert(at, pair)
        return pair

    def _remove_pair(self, pair):
        self.pairs.remove(pair)
        if pair in self._triggered:
            self._triggered.remove(pair)

    def _set_role(self, controlling):
        """Switch role and re-sort the check list (§7.3.1.1)."""
        self.controlling = controlling
        for pair in self.pairs:
            pair.priority = self._priority_of(pair.local, pair.remote)
        self.pairs.sort(key=_pair_sort_key)

    def _trigger(self, pair, front=False):
        if pair in self._triggered:
            self._triggered.remove(pair)
        if front:
            self._triggered.insert(0, pair)
        else:
            self._triggered.append(pair)

    def _next_pair(self):
        """Triggered queue first, then the best Waiting pair, unfreezing one
        pair per idle foundation when none waits (§6.1.4.2)."""
        while self._triggered:
            pair = self._triggered.pop(0)
            if pair.state != FAILED or pair.nominate_on_success:
                return pair
        for pair in self.pairs:
            if pair.state == WAITING:
                return pair
        chosen = None
        for pair in self.pairs:
            if pair.state == FROZEN and not self._foundation_busy(pair.foundation):
                pair.state = WAITING
                chosen = chosen or pair
        return chosen

    def _foundation_busy(self, foundation):
        """A pair of this foundation is in progress, or was just unfrozen."""
        for pair in self.pairs:
            if pair.foundation == foundation and (pair.state == IN_PROGRESS or pair.state == WAITING):
                return True
        return False

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
        for client in self._turns:
            out = client.poll_transmit()
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
        its TURN server and sent from the allocation's base."""
        for client in self._turns:
            relayed = client.candidate
            if relayed is not None and relayed.port == local_port and relayed.host == local_ip:
                if client.state != _TURN_READY:
                    self.counters["unknown_source"] += 1
                    return None
                wrapped = client.wrap(dst_ip, dst_port, data)
                if wrapped is None:
                    return None
                return client.base[0], client.base[1], client.server[0], client.server[1], wrapped
        return local_ip, local_port, dst_ip, dst_port, data

    def _emit(self, event):
        if len(self._events) >= self.config.max_events:
            self.counters["events_dropped"] += 1
            return
        self._events.append(event)

    def poll_event(self):
        """("candidate", LocalCandidate) | ("candidate-removed", LocalCandidate) |
        ("end-of-candidates",) |
        ("state", name) | ("selected", Pair) | ("data", Pair, bytes)."""
        if self._events:
            return self._events.pop(0)
        return None

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            self._emit(("state", state))

    # ---- the driver's entry points -----------------------------------------

    def handle_packet(self, now_ms, local_ip, local_port, src_ip, src_port, data):
        """Feed one received datagram. Never raises on bad input."""
        self._now = now_ms
        if self.state == CLOSED or not data:
            return
        try:
            for client in self._turns:
                server = client.server
                base = client.base
                if server[1] == src_port and base[1] == local_port and server[0] == src_ip and base[0] == local_ip:
                    inner = client.handle_packet(now_ms, data)
                    self._service_turns()
                    if inner is None or client.candidate is None:
                        self._tick(now_ms)
                        return
                    relayed = client.candidate
                    local_ip, local_port = relayed.host, relayed.port
                    src_ip, src_port, data = inner
                    break
            if data[0] < 4:  # RFC 7983: STUN
                self._handle_stun(now_ms, local_ip, local_port, src_ip, src_port, data)
                self._tick(now_ms)
            else:
                self._handle_data(local_ip, local_port, src_ip, src_port, data)
        except stun.StunError:
            self.counters["malformed"] += 1
        except Exception:  # a bug; counted so tests see it, never raised at the driver
            self.counters["internal_errors"] += 1

    def handle_timeout(self, now_ms):
        self._now = now_ms
        if self.state == CLOSED:
            return
        try:
            for client in self._turns:
                client.handle_timeout(now_ms)
            self._service_turns()
            self._tick(now_ms)
        except Exception:  # a bug; counted so tests see it, never raised at the driver
            self.counters["internal_errors"] += 1

    def _service_turns(self):
        """Turn finished allocations into candidates (RFC 8445 §5.1.1.2)."""
        for client in self._turns:
            if client.state == _TURN_READY and client.candidate is None:
                relays = sum(1 for c in self.local_candidates if c.type == "relay")
                ip, port = client.relayed
                local_pref = (65535 if client.transport == "udp" else 32767) - relays
                cand = self._add_local(
                    "relay", ip, port, ip, port, local_pref,
                    related=client.mapped, server_ip=client.server[0])
                if cand is None:
                    client.close(self._now)
                    continue
                client.candidate = cand
                self._emit(("candidate", cand))
                if client.transport == "udp" and client.mapped is not None:
                    self._add_srflx(client.base, client.mapped, client.server[0])
                if not self._done:
                    for remote in self.remote_candidates:
                        self._pair(cand, remote)
                self._gather_finished()
            elif client.state == _TURN_FAILED and client.candidate is not False:
                lost = client.candidate
                client.candidate = False  # handled once
                if lost is None:  # never allocated: gathering is over for it
                    self._gather_finished()
                else:
                    self._relay_lost(client, lost)

    def _relay_lost(self, client, lost):
        """The server forgot the allocation (it restarted, or stopped
        answering): drop the relayed candidate and its pairs, and allocate
        again. The new candidate is trickled; a session that used the old one
        loses consent and recovers by ICE restart (RFC 8445 §9)."""
        self.counters["relays_lost"] += 1
        self.local_candidates = [c for c in self.local_candidates if c is not lost]
        self.pairs = [p for p in self.pairs if p.local is not lost]
        self._triggered = [p for p in self._triggered if p.local is not lost]
        self._emit(("candidate-removed", lost))
        fresh = client.successor()
        fresh.candidate = None
        fresh.start(self._now)
        self._turns[self._turns.index(client)] = fresh

    def poll_timeout(self):
        """The next deadline (ms ticks) at which handle_timeout is due, or None."""
        if self.state == CLOSED:
            return None
        deadline = None
        for client in self._turns:
            at = client.poll_timeout()
            if at is not None:
                deadline = _earliest(deadline, at)
        for t in self._transactions:
            if t.kind:
                deadline = _earliest(deadline, t.deadline)
        if self._gather_queue or (self._checks_enabled() and self._has_check_work()):
            deadline = _earliest(deadline, self._next_check_at)
        if self.controlling and not self._done and self._first_valid_at is not None:
            at = self._nominate_at()
            if ticks_diff(at, self._now) > 0:  # once passed, checks drive it
                deadline = _earliest(deadline, at)
            at = self._patience_ends()
            if at is not None and ticks_diff(at, self._now) > 0:
                deadline = _earliest(deadline, at)
        if self._consent_running():
            deadline = _earliest(deadline, self._next_consent_at)
            cfg = self.config
            if self.state != DISCONNECTED:
                deadline = _earliest(deadline, ticks_add(self._consent_ok_at, cfg.disconnected_after_ms + 1))
            deadline = _earliest(deadline, ticks_add(self._consent_ok_at, cfg.consent_timeout_ms + 1))
        elif self.selected_pair is not None and self.state in _UP:
            deadline = _earliest(deadline, ticks_add(self.selected_pair.last_sent_ms, self.config.keepalive_ms))
        if self.state == CHECKING and not self._remote_end and not self._done:
            give_up_at = ticks_add(self._last_remote_at, self.config.candidate_wait_ms + 1)
            if ticks_diff(give_up_at, self._now) > 0:
                deadline = _earliest(deadline, give_up_at)
        return deadline

    def send(self, data):
        """Route application data over the selected pair: returns the same
        (local_ip, local_port, dst_ip, dst_port, data) tuple as poll_transmit."""
        pair = self.selected_pair
        if pair is None or self.state in _ENDED:
            raise ValueError("no usable pair: wait for the 'connected' state before sending")
        pair.bytes_sent += len(data)
        pair.last_sent_ms = self._now
        out = self._route(pair.local.base_ip, pair.local.base_port, pair.remote.host, pair.remote.port, data)
        if out is None:
            raise ValueError("the TURN allocation behind the selected pair is gone")
        return out

    def restart(self, ufrag=None, pwd=None):
        """ICE restart (§9): new credentials and a fresh check list. The
        selected pair keeps carrying data until a new one is nominated."""
        self._set_local_credentials(ufrag, pwd)
        self.remote_ufrag = self.remote_pwd = self._remote_key = self._check_username = None
        self.remote_candidates = []
        self.pairs = []
        self._triggered = []
        self._remote_end = False
        self._done = False
        self._first_valid_at = None
        self.local_candidates = [c for c in self.local_candidates if c.type != "prflx"]
        for t in self._transactions:
            if t.kind != _GATHER:
                t.kind = 0
        if self.selected_pair is not None:
            self.selected_pair.nominated = False
        self._set_state(CHECKING)

    def close(self):
        """Stop; TURN allocations are released, so drain poll_transmit once more."""
        for t in self._transactions:
            t.kind = 0
        self._tx_count = 0
        for client in self._turns:
            client.close(self._now)
        self._set_state(CLOSED)

    # ---- STUN in --------------------------------------------------------------

    def _handle_stun(self, now, local_ip, local_port, src_ip, src_port, data):
        msg = self._msg.parse(data)
        if msg.method != stun.BINDING:
            self.counters["malformed"] += 1
            return
        if msg.has(stun.FINGERPRINT) and not msg.check_fingerprint():
            self.counters["malformed"] += 1
            return
        cls = msg.cls
        if cls == stun.REQUEST:
            self._on_request(now, local_ip, local_port, src_ip, src_port, msg)
        elif cls == stun.INDICATION:
            pass  # keepalives (§11) need no answer
        else:
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
        priority = msg.get_u32(stun.PRIORITY)
        if priority is None:  # §7.2.2: every check carries PRIORITY
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
        if self.state == NEW:
            self._set_state(CHECKING)
        remote = self._find_remote(src_ip, src_port)
        if remote is None:
            remote = self._learn_remote(src_ip, src_port, priority)
            if remote is None:
                return
        if self._done and self.selected_pair.remote is not remote and not self.lite:
            return  # the check list is complete (§8.1.2); nothing new is checked
        pair = self._pair(local, remote)
        if pair is None:
            return
        pair.requests_received += 1
        pair.responses_sent += 1
        use_candidate = msg.has(stun.USE_CANDIDATE) and not self.controlling
        if self.lite:
            # A lite agent runs no checks: an authenticated check validates the pair.
            pair.state = SUCCEEDED
            pair.valid = True
            pair.valid_pair = pair
            if use_candidate:
                self._nominated(pair)
            return
        # Triggered check (§7.3.1.4).
        if pair.state == IN_PROGRESS:
            for t in self._transactions:
                if t.kind == _CHECK and t.pair is pair:
                    t.retransmit = False  # cancelled: no retransmits, no failure
            pair.state = WAITING
            self._trigger(pair)
        elif pair.state != SUCCEEDED:
            pair.state = WAITING
            self._trigger(pair)
        if use_candidate:  # §7.3.1.5
            if pair.state == SUCCEEDED:
                self._nominated(pair.valid_pair or pair)
            else:
                pair.nominate_on_success = True

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
        t = None
        txid = msg.txid
        for candidate in self._transactions:
            if candidate.kind and candidate.txid == txid:
                t = candidate
                break
        if t is None:
            self.counters["unmatched"] += 1
            return
        # Only the address we asked answers (§7.2.5.2.1, RFC 8489 §6.3).
        if t.dest[1] != src_port or t.dest[0] != src_ip or t.base[1] != local_port or t.base[0] != local_ip:
            self.counters["unmatched"] += 1
            return
        if t.kind == _GATHER:
            self._on_gather_response(t, msg)
            return
        if not msg.check_integrity(self._remote_key):
            self.counters["unauthenticated"] += 1
            return
        kind = t.kind
        t.kind = 0
        pair = t.pair
        pair.responses_received += 1
        if msg.cls == stun.ERROR:
            code = msg.error_code()
            if code is not None and code[0] == 487 and t.controlling == self.controlling:
                self._set_role(not self.controlling)  # §7.2.5.1
                pair.state = WAITING
                self._trigger(pair, front=True)
            elif kind != _CONSENT:
                self._fail_pair(pair)
            return
        if not msg.has(stun.XOR_MAPPED_ADDRESS):
            self.counters["malformed"] += 1
            return
        rtt = ticks_diff(now, t.sent_ms)
        if t.sends == 1:  # Karn: no RTT from retransmitted requests
            pair.rtt_ms = rtt
        if pair is self.selected_pair:
            self._consent_ok_at = now
            if self.state == DISCONNECTED:
                self._set_state(CONNECTED)
        if kind == _CONSENT:
            return  # consent needs only the authenticated answer (RFC 7675 §5.1)
        self._check_succeeded(now, pair, msg.xor_mapped_address(), t)

    def _check_succeeded(self, now, pair, mapped, t):
        local = self._find_local(mapped[0], mapped[1])
        if local is None:
            # Peer-reflexive local candidate (§7.2.5.3.1).
            base = pair.local
            local = self._add_local(
                "prflx", mapped[0], mapped[1], base.base_ip, base.base_port,
                base.local_pref, priority=t.priority,
            )
            if local is None:
                local = base
        # The valid pair (§7.2.5.3.2) may differ from the pair checked.
        valid = pair if local is pair.local else self._pair(local, pair.remote, SUCCEEDED)
        if valid is None:
            valid = pair
        pair.state = SUCCEEDED
        valid.state = SUCCEEDED
        valid.valid = True
        valid.rtt_ms = pair.rtt_ms
        pair.valid_pair = valid
        if self._first_valid_at is None:
            self._first_valid_at = now
        # §7.2.5.3.3: unfreeze the pairs that share this foundation.
        for other in self.pairs:
            if other.state == FROZEN and other.foundation == pair.foundation:
                other.state = WAITING
        if t.use_candidate and self.controlling:
            self._nominated(valid)  # §8.1.1
        elif not self.controlling and (pair.nominate_on_success or valid.nominate_on_success):
            self._nominated(valid)  # §7.3.1.5

    def _on_gather_response(self, t, msg):
        t.kind = 0
        if msg.cls != stun.SUCCESS:
            self._gather_finished()
            return
        mapped = msg.xor_mapped_address() or msg.address(stun.MAPPED_ADDRESS)
        if mapped:
            self._add_srflx(t.base, mapped, t.dest[0])
        self._gather_finished()

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
            self._emit(("candidate", cand))

    def _gather_finished(self):
        if self._gathering_done or self._gather_queue:
            return
        for t in self._transactions:
            if t.kind == _GATHER:
                return
        for client in self._turns:
            if client.state == _TURN_ALLOCATING:
                return
        self._gathering_done = True
        self._emit(("end-of-candidates",))

    def _handle_data(self, local_ip, local_port, src_ip, src_port, data):
        pair = self.selected_pair
        if pair is None or pair.remote.port != src_port or pair.remote.host != src_ip:
            pair = None
            for candidate in self.pairs:
                remote = candidate.remote
                if candidate.valid and remote.port == src_port and remote.host == src_ip:
                    pair = candidate
                    break
        if pair is None or pair.local.base_port != local_port or pair.local.base_ip != local_ip:
            self.counters["unknown_source"] += 1
            return
        pair.bytes_received += len(data)
        self._emit(("data", pair, bytes(data)))

    # ---- nomination, failure and liveness --------------------------------

    def _nominated(self, pair):
        pair.nominated = True
        self._done = True
        current = self.selected_pair
        if current is not None and current.nominated and current.priority >= pair.priority:
            return
        self.selected_pair = pair
        if pair.local.type == "relay":  # data goes by ChannelData from now (RFC 8656 §12)
            self._turn_for(pair.local).bind_channel(pair.remote.host, pair.remote.port)
        self._consent_ok_at = self._now
        self._next_consent_at = ticks_add(self._now, self._consent_interval())
        # §8.1.2: the check list is done; drop what has not started.
        self.pairs = [p for p in self.pairs if p.state not in (FROZEN, WAITING)]
        self._triggered = []
        self._emit(("selected", pair))
        self._set_state(CONNECTED)

    def _fail_pair(self, pair):
        pair.state = FAILED
        if pair.valid:
            pair.valid = False

    def _maybe_nominate(self, now):
        """Regular nomination (§8.1.1): the controlling agent picks the best
        valid pair once nothing better is pending, or after a short wait."""
        if not self.controlling or self.config.aggressive or self.lite:
            return
        if self._done:
            return
        for t in self._transactions:
            if t.kind == _CHECK and t.use_candidate:
                return  # a nomination is in flight
        best = self._best_valid()
        if best is None:
            return
        # Wait only while a better pair has not had a fair chance: not checked
        # yet, or checked too recently. A frozen pair behind a pair of its own
        # foundation is judged by that pair (§6.1.2.6).
        patience = self._patience_ms(best)
        better_pending = False
        for pair in self.pairs:
            if pair.priority <= best.priority:
                break
            state = pair.state
            if (
                state == WAITING
                or state == FROZEN and not self._foundation_busy(pair.foundation)
                or state == IN_PROGRESS and (
                    pair.first_check_ms is None or ticks_diff(now, pair.first_check_ms) < patience)
            ):
                better_pending = True
                break
        waited = ticks_diff(now, self._nominate_at()) >= 0
        if better_pending and not waited:
            return
        best.nominate_on_success = True
        self._trigger(best, front=True)
        return True

    def _best_valid(self):
        for pair in self.pairs:  # kept in priority order
            if pair.valid and pair.state == SUCCEEDED:
                return pair
        return None

    def _patience_ms(self, best):
        """How long a better pair may stay unanswered before `best` stops
        waiting for it: three of the RTTs `best` showed and a pacing step,
        or, for a relayed `best`, one retransmission and its answer."""
        rtt = best.rtt_ms or 0
        if _relayed(best):
            return self.config.rto_ms + 2 * rtt
        return 3 * rtt + self.config.ta_ms

    def _patience_ends(self):
        """When the last better pair in progress has had its fair chance, or None."""
        best = self._best_valid()
        if best is None:
            return None
        end = None
        for pair in self.pairs:
            if pair.priority <= best.priority:
                break
            if pair.state == IN_PROGRESS and pair.first_check_ms is not None:
                at = ticks_add(pair.first_check_ms, self._patience_ms(best))
                if end is None or ticks_diff(at, end) > 0:
                    end = at
        return end

    def _nominate_at(self):
        """The cap on waiting for better pairs, from the first valid pair: a
        pair that can succeed answers in about the RTT the first valid pair
        showed, so three of those plus one pacing step, at most
        `nomination_delay_ms`; `relay_nomination_delay_ms` for a relayed one."""
        wait = self.config.nomination_delay_ms
        for pair in self.pairs:
            if pair.valid and pair.rtt_ms is not None:
                if _relayed(pair):
                    wait = self.config.relay_nomination_delay_ms
                else:
                    wait = min(wait, 3 * pair.rtt_ms + self.config.ta_ms)
                break
        return ticks_add(self._first_valid_at, wait)

    def _consent_interval(self):
        # RFC 7675 §5.1: uniformly random in [0.8, 1.2] x the interval.
        base = self.config.consent_interval_ms
        return base * 4 // 5 + random_below(base * 2 // 5 + 1)

    def _consent_running(self):
        return (
            self.selected_pair is not None
            and not self.lite
            and self.config.consent_interval_ms > 0
            and self.state in _LIVE
            and self._done
        )

    def _liveness(self, now):
        pair = self.selected_pair
        if self._consent_running():
            silent = ticks_diff(now, self._consent_ok_at)
            if silent > self.config.consent_timeout_ms:
                self._set_state(FAILED_STATE)  # RFC 7675 §5.1: stop sending
                return
            if silent > self.config.disconnected_after_ms and self.state != DISCONNECTED:
                self._set_state(DISCONNECTED)
            if ticks_diff(now, self._next_consent_at) >= 0:
                self._next_consent_at = ticks_add(now, self._consent_interval())
                self._start_check(now, pair, _CONSENT)
        elif pair is not None and self.state in _UP:
            if ticks_diff(now, pair.last_sent_ms) >= self.config.keepalive_ms:
                w = self._writer(pair.local.base_ip, pair.local.base_port, pair.remote.host, pair.remote.port)
                if w is not None:  # §11: a Binding indication keeps NAT bindings open
                    w.start(stun.BINDING_INDICATION, stun.new_txid())
                    w.add_fingerprint()
                    pair.last_sent_ms = now

    def _update_state(self, now):
        state = self.state
        if state == CONNECTED and not self._has_check_work() and not self._checks_in_flight():
            self._set_state(COMPLETED)
        elif state == CHECKING and not self._done and self._remote_key is not None:
            if self._checks_in_flight() or self._has_check_work():
                return
            if any(p.state == SUCCEEDED for p in self.pairs):
                return
            if self._remote_end or ticks_diff(now, self._last_remote_at) > self.config.candidate_wait_ms:
                self._set_state(FAILED_STATE)  # §8.1.2: every pair failed

    # ---- sending checks ---------------------------------------------------

    def _checks_enabled(self):
        return not self.lite and self._remote_key is not None and self.state not in _ENDED

    def _has_check_work(self):
        if self._triggered:
            return True
        for pair in self.pairs:
            if pair.state in (FROZEN, WAITING):
                return True
        return False

    def _checks_in_flight(self):
        for t in self._transactions:
            if t.kind == _CHECK:
                return True
        return False

    def _tick(self, now):
        self._retransmit(now)
        if ticks_diff(now, self._next_check_at) >= 0:
            self._send_next(now)
        if self._maybe_nominate(now):
            self._send_next(now)  # one nomination is not a burst: it skips pacing
        self._liveness(now)
        self._update_state(now)

    def _send_next(self, now):
        """One new request (gathering first, then a check), paced (§14.2)."""
        if self._gather_queue:
            base_ip, base_port, server_ip, server_port = self._gather_queue.pop(0)
            t = self._new_transaction(_GATHER, now, (base_ip, base_port), (server_ip, server_port))
            if t is not None:
                self._write_request(t)
            else:
                self._gather_finished()
            self._paced(now)
            return
        if not self._checks_enabled():
            return
        pair = self._next_pair()
        if pair is None:
            return
        if self.state == NEW:
            self._set_state(CHECKING)
        self._start_check(now, pair, _CHECK)
        self._paced(now)

    def _paced(self, now):
        """Charge one request to the pacing budget: one per ta_ms on average,
        with a burst of `pacing_burst` so a lone check never waits (GCRA)."""
        ta = self.config.ta_ms
        if ticks_diff(now, self._pace_tat) > 0:
            self._pace_tat = now
        self._pace_tat = ticks_add(self._pace_tat, ta)
        self._next_check_at = ticks_add(self._pace_tat, -(self.config.pacing_burst - 1) * ta)

    def _start_check(self, now, pair, kind):
        local = pair.local
        t = self._new_transaction(kind, now, (local.base_ip, local.base_port), (pair.remote.host, pair.remote.port))
        if t is None:
            if kind == _CHECK:
                self._trigger(pair)  # try again at the next pacing slot
            return
        t.pair = pair
        t.controlling = self.controlling
        t.use_candidate = self.controlling and (
            self.config.aggressive or pair.nominate_on_success or kind == _CONSENT and pair.nominated
        )
        # §7.1.1: PRIORITY is what a peer-reflexive candidate would have.
        t.priority = candidate_priority(_TYPE_PREFERENCE["prflx"], local.local_pref)
        if kind == _CHECK:
            pair.state = IN_PROGRESS
            if pair.first_check_ms is None:
                pair.first_check_ms = now
        self._write_request(t)

    def _new_transaction(self, kind, now, base, dest):
        for t in self._transactions:
            if not t.kind:
                t.kind = kind
                t.txid = stun.new_txid()
                t.base = base
                t.dest = dest
                t.pair = None
                t.use_candidate = False
                t.retransmit = True
                t.sends = 0
                t.rto = self.config.rto_ms
                t.sent_ms = now
                t.deadline = now
                return t
        self.counters["table_full"] += 1
        return None

    def _write_request(self, t):
        """(Re)build a request: retransmissions are identical (RFC 8489 §6.2.1)."""
        now = self._now
        t.sends += 1
        t.sent_ms = now
        t.deadline = ticks_add(now, t.rto)
        t.rto = min(t.rto * 2, self.config.rto_max_ms)
        w = self._writer(t.base[0], t.base[1], t.dest[0], t.dest[1])
        if w is None:
            return
        w.start(stun.BINDING_REQUEST, t.txid)
        if t.kind == _GATHER:
            w.add_fingerprint()
            return
        pair = t.pair
        w.add_bytes(stun.USERNAME, self._check_username)
        w.add_u32(stun.PRIORITY, t.priority)
        w.add_bytes(stun.ICE_CONTROLLING if t.controlling else stun.ICE_CONTROLLED, self._tiebreaker)
        if t.use_candidate:
            w.add_flag(stun.USE_CANDIDATE)
        if self.config.software:
            w.add_bytes(stun.SOFTWARE, self.config.software)
        w.add_integrity(self._remote_key)
        w.add_fingerprint()
        pair.requests_sent += 1
        pair.last_sent_ms = now

    def _retransmit(self, now):
        for t in self._transactions:
            if not t.kind or ticks_diff(now, t.deadline) < 0:
                continue
            if t.retransmit and t.sends < self.config.max_sends:
                self._write_request(t)
                continue
            kind = t.kind
            t.kind = 0
            if kind == _GATHER:
                self._gather_finished()
            elif kind == _CHECK and t.retransmit:
                pair = t.pair
                self._fail_pair(pair)  # timed out (§7.2.5.2)
                if pair.nominate_on_success and self.controlling:
                    pair.nominate_on_success = False  # nominate another one

    # ---- statistics -------------------------------------------------------------

    def stats(self):
        """A snapshot for status pages: state, selected pair, pairs, counters."""
        sel = self.selected_pair
        return {
            "state": self.state,
            "role": "controlling" if self.controlling else "controlled",
            "selected": None if sel is None else (sel.local.type, sel.remote.type, sel.rtt_ms),
            "pairs": [
                (p.local.type, p.local.host, p.local.port, p.remote.type, p.remote.host, p.remote.port,
                 PAIR_STATES[p.state], p.nominated, p.rtt_ms, p.requests_sent, p.requests_received,
                 p.responses_sent, p.responses_received, p.bytes_sent, p.bytes_received)
                for p in self.pairs
            ],
            "counters": dict(self.counters),
            "turn": [
                {"server": t.server, "transport": t.transport, "state": t.state, "relayed": t.relayed,
                 "error": t.error, "counters": dict(t.counters)}
                for t in self._turns
            ],
        }


def _pair_sort_key(pair):
    return -pair.priority
