"""A sans-IO TURN client (RFC 8656) for one allocation on one base.

Like the agent it owns no socket and reads no clock. Datagrams (or, over
TCP, whole frames cut with `stun.frame_length`) from the server go into
`handle_packet`, which hands back what a peer sent; `wrap` frames data for a
peer; requests to the server come out of `poll_transmit`.

The client allocates with long-term credentials (RFC 8489 §9.2: 401 for
realm and nonce, 438 for a fresh nonce, 300 to move to an ALTERNATE-SERVER),
refreshes the allocation before its lifetime runs out (§8), keeps a
permission per peer address (§9) and a channel per peer once asked (§12),
and deallocates on close.
"""

import struct

from ice import digest, stun
from ice.compat import const, ticks_add, ticks_diff
from ice.compat import ticks_earliest as _earliest
from ice.transaction import Transactions

# Methods (RFC 8656 §17) and their message types (methods below 0x10 need
# no bit shuffling, RFC 8489 §5).
ALLOCATE = const(0x003)
REFRESH = const(0x004)
SEND = const(0x006)
DATA = const(0x007)
CREATE_PERMISSION = const(0x008)
CHANNEL_BIND = const(0x009)
ALLOCATE_REQUEST = const(0x0003)
ALLOCATE_SUCCESS = const(0x0103)
ALLOCATE_ERROR = const(0x0113)
REFRESH_REQUEST = const(0x0004)
REFRESH_SUCCESS = const(0x0104)
REFRESH_ERROR = const(0x0114)
SEND_INDICATION = const(0x0016)
DATA_INDICATION = const(0x0017)
CREATE_PERMISSION_REQUEST = const(0x0008)
CREATE_PERMISSION_SUCCESS = const(0x0108)
CREATE_PERMISSION_ERROR = const(0x0118)
CHANNEL_BIND_REQUEST = const(0x0009)
CHANNEL_BIND_SUCCESS = const(0x0109)
CHANNEL_BIND_ERROR = const(0x0119)

# Attributes (RFC 8656 §18) and their values.
CHANNEL_NUMBER = const(0x000C)
LIFETIME = const(0x000D)
XOR_PEER_ADDRESS = const(0x0012)
DATA_ATTR = const(0x0013)
XOR_RELAYED_ADDRESS = const(0x0016)
REQUESTED_ADDRESS_FAMILY = const(0x0017)
EVEN_PORT = const(0x0018)
REQUESTED_TRANSPORT = const(0x0019)
DONT_FRAGMENT = const(0x001A)
RESERVATION_TOKEN = const(0x0022)
TRANSPORT_UDP = const(17)
TRANSPORT_TCP = const(6)
CHANNEL_MIN = const(0x4000)  # RFC 8656 §12: channel numbers 0x4000-0x4FFF
CHANNEL_MAX = const(0x4FFF)

# Allocation states.
ALLOCATING = "allocating"
READY = "ready"
FAILED = "failed"
CLOSED = "closed"

# Transaction kinds.
_ALLOCATE = const(1)
_REFRESH = const(2)
_PERMISSION = const(3)
_CHANNEL = const(4)
_REQUEST_TYPE = {_ALLOCATE: ALLOCATE_REQUEST, _REFRESH: REFRESH_REQUEST,
               _PERMISSION: CREATE_PERMISSION_REQUEST, _CHANNEL: CHANNEL_BIND_REQUEST}

# Peer entry states.
_IDLE = const(0)
_PENDING = const(1)
_OK = const(2)
_REFUSED = const(3)

_MAX_NONCE_RETRIES = const(3)
_MAX_REDIRECTS = const(2)
# Refresh at least hourly whatever LIFETIME the server grants: a deadline must
# stay within half the tick period (2**29 ms, 6.2 days, on ESP32).
_MAX_REFRESH_S = const(3600)
_RM = const(16)  # RFC 8489 §6.2.1: the last send waits Rm x RTO
_CONTROL_SIZE = const(320)  # a request with USERNAME, REALM, NONCE, MI, FP
# A Send indication's header, XOR-PEER-ADDRESS (IPv6) and DATA header, and
# the padding DATA (and a ChannelData frame over TCP) may need.
SEND_OVERHEAD = const(52)
# What a Data indication adds around a payload, FINGERPRINT included.
RECEIVE_OVERHEAD = const(60)


class TurnError(ValueError):
    """Misuse of the TURN client, e.g. sending before the allocation is ready."""


class _Peer:
    """A permission (by address, §9) and optionally a channel (by address and
    port, §12) towards one peer transport address."""

    def __init__(self):
        self.ip = None
        self.port = 0
        self.permission = _IDLE
        self.permission_at = 0  # when to refresh it
        self.channel = 0  # number; 0: none asked for
        self.channel_state = _IDLE
        self.channel_at = 0


class TurnClient:
    """One allocation. `base` is the local socket the server is reached
    from (for TCP, whatever key the driver uses for that stream)."""

    def __init__(
        self, base_ip, base_port, server_ip, server_port, username, password,
        transport="udp", lifetime_s=0, family=stun.FAMILY_IPV4, max_peers=8,
        data_size=1280, permission_refresh_ms=240000, channel_refresh_ms=540000,
        rto_ms=500, max_sends=7, tcp_timeout_ms=10000, software=None,
    ):
        if transport not in ("udp", "tcp"):
            raise TurnError("TURN transport must be 'udp' or 'tcp'")
        # What a successor() needs to allocate again with the same settings.
        self._settings = (base_ip, base_port, server_ip, server_port, username, password, {
            "transport": transport, "lifetime_s": lifetime_s, "family": family, "max_peers": max_peers,
            "data_size": data_size, "permission_refresh_ms": permission_refresh_ms,
            "channel_refresh_ms": channel_refresh_ms, "rto_ms": rto_ms, "max_sends": max_sends,
            "tcp_timeout_ms": tcp_timeout_ms, "software": software})
        if not username or password is None:
            raise TurnError("TURN needs a username and a password (long-term credentials)")
        self.base = (base_ip, base_port)
        self.server = (server_ip, server_port)
        self.transport = transport
        self.username = username
        self._password = password
        self._lifetime_s = lifetime_s
        self._family = family
        self._permission_refresh_ms = permission_refresh_ms
        self._channel_refresh_ms = channel_refresh_ms
        self._software = software
        self.state = ALLOCATING
        self.was_ready = False
        self.error = None  # why the allocation failed, for people
        self.relayed = None  # (ip, port) on the server
        self.mapped = None  # (ip, port) the server saw us from
        self.lifetime_s = 0
        self.realm = None
        self._nonce = None
        self._key = None
        self._redirects = 0
        self._refresh_at = 0
        self._now = 0
        self._peers = [_Peer() for _ in range(max_peers)]
        size = max_peers * 2 + 2
        if transport == "udp":
            self._txs = Transactions(size, rto_ms, 0, max_sends, _RM * rto_ms)
        else:  # RFC 8489 §6.2.2: sent once, then a timeout
            self._txs = Transactions(size, rto_ms, 0, 1, tcp_timeout_ms)
        self.data_size = data_size  # the largest payload wrap() takes
        # Bound once: a bound method made per tick would be an allocation per tick.
        self._resend = self._write
        self._expire = self._timed_out
        self._control = [stun.Writer(bytearray(_CONTROL_SIZE)) for _ in range(4)]
        self._control_head = 0
        self._control_count = 0
        self._data = bytearray(data_size + SEND_OVERHEAD)
        self._data_writer = stun.Writer(self._data)
        self._data_view = None  # the last ChannelData frame's view
        self._msg = stun.Message()
        self.counters = {
            "malformed": 0, "unmatched": 0, "unauthenticated": 0, "no_permission": 0,
            "table_full": 0, "transmit_full": 0,
            # successes, so refreshes can be seen happening
            "allocations": 0, "refreshes": 0, "permissions": 0, "channel_binds": 0,
        }

    def __repr__(self):
        return "<TurnClient %s %s:%d %s relayed=%s>" % (
            self.transport, self.server[0], self.server[1], self.state, self.relayed)

    @property
    def ready(self):
        return self.state == READY

    # ---- driver entry points ---------------------------------------------

    def start(self, now_ms):
        """Send the first Allocate request."""
        self._now = now_ms
        self._request(_ALLOCATE)

    def handle_timeout(self, now_ms):
        self._now = now_ms
        self._txs.run_due(now_ms, self._resend, self._expire)
        if self.state != READY:
            return
        # A deadline that falls due while its request is still in flight moves
        # on too, or poll_timeout would keep returning it (a busy loop).
        if ticks_diff(now_ms, self._refresh_at) >= 0:
            self._refresh_at = ticks_add(now_ms, self._refresh_interval())
            if not self._txs.count(_REFRESH):
                # Ask for the lifetime granted so far (§8.1), so the server
                # cannot fall back to its default behind our back.
                self._request(_REFRESH, lifetime=self._lifetime_s or self.lifetime_s)
        for peer in self._peers:
            if peer.ip is None:
                continue
            if peer.permission == _OK and ticks_diff(now_ms, peer.permission_at) >= 0:
                peer.permission_at = ticks_add(now_ms, self._permission_refresh_ms)
                self._request(_PERMISSION, peer)
            if peer.channel_state == _OK and ticks_diff(now_ms, peer.channel_at) >= 0:
                peer.channel_at = ticks_add(now_ms, self._channel_refresh_ms)
                self._request(_CHANNEL, peer)

    def poll_timeout(self):
        deadline = self._txs.next_deadline()
        if self.state == READY:
            deadline = _earliest(deadline, self._refresh_at)
            for peer in self._peers:
                if peer.permission == _OK:
                    deadline = _earliest(deadline, peer.permission_at)
                if peer.channel_state == _OK:
                    deadline = _earliest(deadline, peer.channel_at)
        return deadline

    def poll_transmit(self):
        """Next request for the server: (base_ip, base_port, server_ip,
        server_port, view); send it before calling again."""
        if not self._control_count:
            return None
        slot = self._control_head
        self._control_head = (slot + 1) % len(self._control)
        self._control_count -= 1
        return self.base[0], self.base[1], self.server[0], self.server[1], self._control[slot].view()

    def handle_packet(self, now_ms, data):
        """A datagram (or frame) from the server. Returns (peer_ip, peer_port,
        payload view) when it carries a peer's data, else None. Malformed or
        unauthenticated input is counted and dropped."""
        self._now = now_ms
        try:
            if is_channel_data(data):
                number, payload = parse_channel_data(data)
                for peer in self._peers:
                    if peer.channel == number and peer.channel_state == _OK:
                        return peer.ip, peer.port, payload
                self.counters["unmatched"] += 1
                return None
            msg = self._msg.parse(data)
            if msg.type == DATA_INDICATION:
                peer = msg.xor_address(XOR_PEER_ADDRESS)
                payload = msg.get(DATA_ATTR)
                if peer is None or payload is None:
                    self.counters["malformed"] += 1
                    return None
                return peer[0], peer[1], payload
            if msg.cls in (stun.SUCCESS, stun.ERROR):
                self._on_response(msg)
            else:
                self.counters["unmatched"] += 1
        except stun.StunError:
            self.counters["malformed"] += 1
        return None

    # ---- peers and the data path -----------------------------------------

    def permit(self, ip):
        """Ask for a permission towards `ip` (§10.1); idempotent."""
        peer = self._peer(ip, None)
        if peer is not None and peer.permission == _IDLE and self.state == READY:
            self._request(_PERMISSION, peer)
        return peer

    def bind_channel(self, ip, port):
        """Bind a channel to (ip, port) (§12.1) so data goes as ChannelData."""
        peer = self._peer(ip, port)
        if peer is None or peer.channel:
            return
        numbers = [p.channel for p in self._peers if p.channel]
        number = CHANNEL_MIN
        while number in numbers:
            number += 1
        peer.channel = number
        if self.state == READY:
            self._request(_CHANNEL, peer)

    def has_channel(self, ip, port):
        for peer in self._peers:
            if peer.channel_state == _OK and peer.port == port and peer.ip == ip:
                return True
        return False

    def wrap(self, peer_ip, peer_port, payload):
        """Frame `payload` for a peer: ChannelData on a bound channel, else a
        Send indication (§11.1). Returns a view into a reused buffer, or None
        (counted) when no permission could be asked for."""
        if self.state != READY:
            raise TurnError("the TURN allocation is %s: wait for it to be ready" % self.state)
        if len(payload) > self.data_size:
            raise TurnError("%d bytes is more than this TURN client's data_size (%d)" % (len(payload), self.data_size))
        for peer in self._peers:
            if peer.channel_state == _OK and peer.port == peer_port and peer.ip == peer_ip:
                size = write_channel_data(self._data, peer.channel, payload, self.transport == "tcp")
                view = self._data_view
                if view is None or len(view) != size:  # most frames' chunks share a size: kept
                    view = self._data_view = memoryview(self._data)[:size]
                return view
        if self.permit(peer_ip) is None:
            self.counters["no_permission"] += 1
            return None
        w = self._data_writer
        w.start(SEND_INDICATION, stun.new_txid())
        w.add_xor_address(XOR_PEER_ADDRESS, peer_ip, peer_port)
        w.add_bytes(DATA_ATTR, payload)
        return w.view()

    def resolved(self, server_ip):
        """The server was given by name; this is its address (UDP: where
        requests go and answers come from)."""
        self.server = (server_ip, self.server[1])
        settings = self._settings
        self._settings = settings[:2] + (server_ip,) + settings[3:]

    def successor(self):
        """A new client with this one's settings, to allocate again after the
        allocation was lost (e.g. the server restarted: 437, or no answer)."""
        base_ip, base_port, server_ip, server_port, username, password, options = self._settings
        return TurnClient(base_ip, base_port, server_ip, server_port, username, password, **options)

    def close(self, now_ms):
        """Deallocate: a Refresh with LIFETIME 0 (§8.1), sent once."""
        self._now = now_ms
        if self.state == READY:
            self._txs.close_all()
            self._request(_REFRESH, lifetime=0)
        self._txs.close_all()  # no retransmits and no answer awaited
        self.state = CLOSED

    # ---- internals ---------------------------------------------------------

    def _peer(self, ip, port):
        free = None
        for peer in self._peers:
            if peer.ip == ip and (port is None or peer.port == port or not peer.channel):
                if port is not None:
                    peer.port = port
                return peer
            if peer.ip is None and free is None:
                free = peer
        if free is None:
            self.counters["table_full"] += 1
            return None
        free.ip = ip
        free.port = port or 0
        return free

    def _refresh_interval(self):
        # Refresh a minute early, or at 3/4 of a short lifetime (§8.1).
        life_ms = min(self.lifetime_s, _MAX_REFRESH_S) * 1000
        return life_ms - 60000 if life_ms > 240000 else life_ms * 3 // 4

    def _request(self, kind, peer=None, lifetime=-1):
        if peer is not None and self._txs.count(kind, peer):
            return None
        t = self._txs.open(kind, self.base[0], self.base[1], self.server[0], self.server[1], peer)
        if t is None:
            self.counters["table_full"] += 1
            return None
        t.value = lifetime
        # The refresh time moves on now, so a request in flight is not asked
        # for again; a success sets it properly.
        if kind == _PERMISSION:
            if peer.permission != _OK:
                peer.permission = _PENDING
            peer.permission_at = ticks_add(self._now, self._permission_refresh_ms)
        elif kind == _CHANNEL:
            if peer.channel_state != _OK:
                peer.channel_state = _PENDING
            peer.channel_at = ticks_add(self._now, self._channel_refresh_ms)
        self._write(t)
        return t

    def _write(self, t):
        """(Re)build a request; a retransmission has the same ID and body."""
        self._txs.sent(t, self._now)
        if self._control_count >= len(self._control):
            self.counters["transmit_full"] += 1
            return
        slot = (self._control_head + self._control_count) % len(self._control)
        self._control_count += 1
        w = self._control[slot]
        w.start(_REQUEST_TYPE[t.kind], t.txid)
        if t.kind == _ALLOCATE:
            w.add_u32(REQUESTED_TRANSPORT, TRANSPORT_UDP << 24)  # §18.10: then three reserved bytes
            if self._family != stun.FAMILY_IPV4:
                w.add_u32(REQUESTED_ADDRESS_FAMILY, self._family << 24)  # §18.6
            if self._lifetime_s:
                w.add_u32(LIFETIME, self._lifetime_s)
        elif t.kind == _REFRESH:
            if t.value >= 0:
                w.add_u32(LIFETIME, t.value)
        else:
            peer = t.subject
            if t.kind == _CHANNEL:
                w.add_u32(CHANNEL_NUMBER, peer.channel << 16)  # §18.1: then two reserved bytes
            w.add_xor_address(XOR_PEER_ADDRESS, peer.ip, peer.port)
        if self._software:
            w.add_bytes(stun.SOFTWARE, self._software)
        if self._nonce is not None:
            w.add_bytes(stun.USERNAME, self.username)
            w.add_bytes(stun.REALM, self.realm)
            w.add_bytes(stun.NONCE, self._nonce)
            w.add_integrity(self._key)
        w.add_fingerprint()

    def _on_response(self, msg):
        t = self._txs.find(msg.txid)
        if t is None:
            self.counters["unmatched"] += 1
            return
        if msg.cls == stun.ERROR:
            self._on_error(t, msg)
            return
        # §9.2.5 of RFC 8489: a success must carry a valid MESSAGE-INTEGRITY.
        if self._key is None or not msg.check_integrity(self._key):
            self.counters["unauthenticated"] += 1
            return
        kind = t.kind
        if kind == _ALLOCATE:
            # Decode before closing the transaction: a malformed attribute
            # raises StunError and the response is dropped like any other.
            relayed = msg.xor_address(XOR_RELAYED_ADDRESS)
            mapped = msg.xor_mapped_address()
            lifetime = msg.get_u32(LIFETIME)
        peer = t.subject
        asked = t.value
        self._txs.close(t)
        now = self._now
        if kind == _ALLOCATE:
            if relayed is None:
                self._fail("the server's Allocate success has no XOR-RELAYED-ADDRESS")
                return
            self.relayed = relayed
            self.mapped = mapped
            self.lifetime_s = lifetime or 600
            self._refresh_at = ticks_add(now, self._refresh_interval())
            self.state = READY
            self.was_ready = True
            self.counters["allocations"] += 1
            for peer in self._peers:  # asked for while allocating
                if peer.ip is not None:
                    self._request(_PERMISSION, peer)
                    if peer.channel:
                        self._request(_CHANNEL, peer)
        elif kind == _REFRESH:
            if asked != 0:
                self.lifetime_s = msg.get_u32(LIFETIME) or self.lifetime_s
                self._refresh_at = ticks_add(now, self._refresh_interval())
                self.counters["refreshes"] += 1
        elif kind == _PERMISSION:
            self.counters["permissions"] += 1
            peer.permission = _OK
            peer.permission_at = ticks_add(now, self._permission_refresh_ms)
        else:
            self.counters["channel_binds"] += 1
            peer.channel_state = _OK
            peer.channel_at = ticks_add(now, self._channel_refresh_ms)
            # A channel binding also installs or refreshes the permission (§12.2).
            peer.permission = _OK
            peer.permission_at = ticks_add(now, self._permission_refresh_ms)

    def _on_error(self, t, msg):
        # A signed error must verify (RFC 8489 §9.2.5); 401/438 come unsigned.
        if msg.has(stun.MESSAGE_INTEGRITY) and (self._key is None or not msg.check_integrity(self._key)):
            self.counters["unauthenticated"] += 1
            return
        code = msg.error_code()
        code = code[0] if code else 0
        if code in (401, 438):
            realm = msg.get_str(stun.REALM)
            nonce = msg.get_str(stun.NONCE)
            # A 401 to a request that already carried our credentials means
            # they are wrong; give up rather than loop (RFC 8489 §9.2.5).
            if nonce is None or t.retries >= _MAX_NONCE_RETRIES or (
                code == 401 and self._nonce is not None and t.kind == _ALLOCATE and t.retries
            ):
                self._give_up(t, "TURN server refused the credentials (%d): check the username and password" % code)
                return
            if realm is not None:
                if realm != self.realm:
                    self._key = digest.long_term_key(self.username, realm, self._password)
                self.realm = realm
            if self.realm is None:
                self._give_up(t, "TURN server sent no REALM")
                return
            self._nonce = nonce
            self._txs.renew(t)  # a new transaction (§9.2.5)
            self._write(t)
            return
        if code == 300 and t.kind == _ALLOCATE:
            alternate = msg.address(stun.ALTERNATE_SERVER)
            if alternate is not None and self.transport == "udp" and self._redirects < _MAX_REDIRECTS:
                self._redirects += 1
                self.server = alternate
                self.realm = self._nonce = self._key = None
                self._txs.renew(t)
                t.retries = 0
                t.dest_ip, t.dest_port = alternate
                self._write(t)
                return
        if code == 300 and self.transport != "udp":
            self._give_up(t, "TURN server redirected (300) over %s: only UDP allocations follow "
                             "ALTERNATE-SERVER; point turn_server at the alternate" % self.transport)
            return
        self._give_up(t, "TURN %s failed with error %d" % (_KIND_NAMES[t.kind], code))

    def _timed_out(self, t):
        self._give_up(t, "TURN server %s:%d did not answer the %s request" % (
            self.server[0], self.server[1], _KIND_NAMES[t.kind]))

    def _give_up(self, t, reason):
        kind = t.kind
        peer = t.subject
        self._txs.close(t)
        if kind in (_ALLOCATE, _REFRESH):
            self._fail(reason)
        elif kind == _PERMISSION:
            peer.permission = _REFUSED
        else:
            peer.channel_state = _REFUSED

    def fail(self, reason):
        """The allocation is gone without a word from the server: its TCP
        or TLS connection closed, or never opened."""
        self._fail(reason)

    def _fail(self, reason):
        self.state = FAILED
        self.error = reason
        self._txs.close_all()


_KIND_NAMES = {_ALLOCATE: "Allocate", _REFRESH: "Refresh", _PERMISSION: "CreatePermission",
               _CHANNEL: "ChannelBind"}


# ---- ChannelData (RFC 8656 §12.4) -------------------------------------------


def is_channel_data(data):
    """RFC 7983: a first byte of 64-79 marks a TURN ChannelData frame."""
    return len(data) >= 4 and 0x40 <= data[0] <= 0x4F


def parse_channel_data(data):
    """(channel, payload view) of one ChannelData frame.

    Over UDP the frame may carry up to 3 bytes of padding (RFC 8656 §12.5)."""
    size = len(data)
    if size < 4:
        raise stun.StunError("ChannelData shorter than its 4-byte header")
    channel = (data[0] << 8) | data[1]
    if channel < CHANNEL_MIN or channel > CHANNEL_MAX:
        raise stun.StunError("channel number 0x%04x is outside 0x4000-0x4FFF" % channel)
    length = (data[2] << 8) | data[3]
    if 4 + length > size or size > 4 + ((length + 3) & ~3):
        raise stun.StunError("ChannelData length %d does not match a %d-byte frame" % (length, size))
    return channel, memoryview(data)[4 : 4 + length]


def write_channel_data(buf, channel, payload, pad=False):
    """Frame `payload` for `channel` into `buf`; returns the frame length.
    `pad` rounds up to 4 bytes, as TURN over TCP requires (RFC 8656 §12.5)."""
    if channel < CHANNEL_MIN or channel > CHANNEL_MAX:
        raise ValueError("channel number must be 0x4000-0x4FFF")
    length = len(payload)
    end = 4 + length
    total = (end + 3) & ~3 if pad else end
    if total > len(buf) or length > 0xFFFF:
        raise ValueError("ChannelData frame does not fit its buffer")
    struct.pack_into(">HH", buf, 0, channel, length)
    buf[4:end] = payload
    for i in range(end, total):
        buf[i] = 0
    return total


def frame_length(head):
    """Bytes in the frame that starts with `head` (at least 4 bytes) on a
    stream transport (RFC 8656 §12.5): a STUN message or padded ChannelData."""
    if len(head) < 4:
        raise stun.StunError("need 4 bytes to size a frame")
    length = (head[2] << 8) | head[3]
    if head[0] < 0x40:
        if head[0] & 0xC0 or length & 3:
            raise stun.StunError("not a STUN message header")
        return stun.HEADER_SIZE + length
    if head[0] <= 0x4F:
        return (4 + length + 3) & ~3
    raise stun.StunError("stream frame is neither STUN nor ChannelData")
