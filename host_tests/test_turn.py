"""The sans-IO TURN client (RFC 8656) against a scripted server.

The test plays the server: it reads the requests the client emits with
`poll_transmit()`, answers them with `stun.Writer` under the long-term key
(RFC 8489 §9.2), and moves a plain integer clock through `handle_timeout`.
Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

from ice import digest, stun, turn
from ice.compat import ticks_add, ticks_diff
from helpers import raises
from netsim import Rng

BASE = ("10.0.0.2", 50000)
SERVER = ("192.0.2.10", 3478)
ALTERNATE = ("192.0.2.99", 3479)
USER = "camera-7"
PASSWORD = "s3cret"
REALM = "example.org"
NONCE = "nonce-1"
KEY = digest.long_term_key(USER, REALM, PASSWORD)
RELAYED = ("192.0.2.10", 49152)
MAPPED = ("198.51.100.7", 40000)
PEER = ("203.0.113.5", 6000)
OTHER_PEER = ("203.0.113.6", 7000)


class Server:
    """A scripted TURN server for one client. It keeps every message the
    client sent and answers the last one (or another, by index in `sent`)."""

    def __init__(self, client):
        self.client = client
        self.now = 0
        self.sent = []  # (server ip, server port, bytes) per transmit, in order
        self.msg = stun.Message()
        self.writer = stun.Writer(bytearray(256))

    def drain(self):
        """Collect what the client has to send; returns how many messages.
        Everything due has been handled by now, so the next deadline must
        lie ahead: a deadline in the past would make a driver spin."""
        n = 0
        out = self.client.poll_transmit()
        while out is not None:
            assert (out[0], out[1]) == BASE
            self.sent.append((out[2], out[3], bytes(out[4])))
            n += 1
            out = self.client.poll_transmit()
        deadline = self.client.poll_timeout()
        assert deadline is None or ticks_diff(deadline, self.now) > 0, (self.now, deadline)
        return n

    def request(self, which=-1):
        """A message the client sent, decoded (valid until the next call)."""
        return self.msg.parse(self.sent[which][2])

    def advance(self, now):
        """Move the clock to `now` and run the client's timers; returns how
        many messages went out."""
        self.now = now
        self.client.handle_timeout(now)
        return self.drain()

    def deliver(self, data):
        """A datagram (or frame) from the server to the client."""
        got = self.client.handle_packet(self.now, data)
        self.drain()
        return got

    def reply(self, cls, add=None, key=KEY, which=-1):
        """Answer a request: same method and transaction ID, attributes from
        `add(writer)`, signed with `key` unless it is None."""
        req = self.request(which)
        w = self.writer.start(stun.message_type(req.method, cls), req.txid)
        if add is not None:
            add(w)
        if key is not None:
            w.add_integrity(key)
        w.add_fingerprint()
        return self.deliver(bytes(w.view()))

    def challenge(self, code=401, nonce=NONCE, which=-1):
        """401 Unauthenticated or 438 Stale Nonce with REALM and NONCE (RFC 8489 §9.2.4)."""
        def add(w):
            w.add_error_code(code, "Unauthenticated" if code == 401 else "Stale Nonce")
            w.add_bytes(stun.REALM, REALM)
            w.add_bytes(stun.NONCE, nonce)
        return self.reply(stun.ERROR, add, None, which)

    def redirect(self):
        """300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10)."""
        def add(w):
            w.add_error_code(300, "Try Alternate")
            w.add_address(stun.ALTERNATE_SERVER, ALTERNATE[0], ALTERNATE[1])
        return self.reply(stun.ERROR, add, None)

    def grant(self, lifetime=600, key=KEY, which=-1):
        """A success response; an Allocate's carries the addresses (RFC 8656
        §7.3), an Allocate's or a Refresh's the LIFETIME (§8.2)."""
        method = self.request(which).method
        def add(w):
            if method == turn.ALLOCATE:
                w.add_xor_address(turn.XOR_RELAYED_ADDRESS, RELAYED[0], RELAYED[1])
                w.add_xor_address(stun.XOR_MAPPED_ADDRESS, MAPPED[0], MAPPED[1])
            if method in (turn.ALLOCATE, turn.REFRESH):
                w.add_u32(turn.LIFETIME, lifetime)
        return self.reply(stun.SUCCESS, add, key, which)


def allocating(transport="udp", start_ms=0, **options):
    """A client that has sent its first Allocate, and its server."""
    client = turn.TurnClient(BASE[0], BASE[1], SERVER[0], SERVER[1], USER, PASSWORD,
                             transport=transport, **options)
    server = Server(client)
    server.now = start_ms
    client.start(start_ms)
    assert server.drain() == 1
    return client, server


def ready(transport="udp", lifetime=600, **options):
    """A client whose allocation has been granted at time 0."""
    client, server = allocating(transport, **options)
    server.challenge()
    server.grant(lifetime)
    assert client.state == turn.READY
    return client, server


def signed(msg, nonce=NONCE):
    """USERNAME, REALM, NONCE and a MESSAGE-INTEGRITY under the long-term key
    (RFC 8489 §9.2.4), then a FINGERPRINT."""
    return (msg.get_str(stun.USERNAME) == USER and msg.get_str(stun.REALM) == REALM
            and msg.get_str(stun.NONCE) == nonce and msg.check_integrity(KEY) and msg.check_fingerprint())


def data_indication(peer, payload, address=None):
    w = stun.Writer(bytearray(128)).start(turn.DATA_INDICATION, stun.new_txid())
    if address is None:
        w.add_xor_address(turn.XOR_PEER_ADDRESS, peer[0], peer[1])
    else:
        w.add_bytes(turn.XOR_PEER_ADDRESS, address)  # raw, to break it
    if payload is not None:
        w.add_bytes(turn.DATA_ATTR, payload)
    return bytes(w.view())


def channel_data(number, payload):
    buf = bytearray(64)
    return bytes(buf[: turn.write_channel_data(buf, number, payload)])


# ---- allocation (RFC 8656 §7, RFC 8489 §9.2) -------------------------------


def test_allocate_with_long_term_credentials_rfc8656_s7():
    """RFC 8656 §7.1, RFC 8489 §9.2.4: the first Allocate carries no
    credentials; the 401's REALM and NONCE make a new transaction with
    USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; a signed success with the
    relayed and mapped addresses makes the allocation ready (§7.3)."""
    client, server = allocating()
    assert client.state == turn.ALLOCATING
    assert server.sent[0][:2] == SERVER
    first = server.request()
    assert first.type == turn.ALLOCATE_REQUEST and first.check_fingerprint()
    assert first.get_u32(turn.REQUESTED_TRANSPORT) == turn.TRANSPORT_UDP << 24
    for attr in (stun.USERNAME, stun.REALM, stun.NONCE, stun.MESSAGE_INTEGRITY):
        assert not first.has(attr)
    first_txid = first.txid

    assert server.challenge() is None
    assert len(server.sent) == 2 and client.state == turn.ALLOCATING and client.realm == REALM
    retry = server.request()
    assert retry.type == turn.ALLOCATE_REQUEST and retry.txid != first_txid
    assert retry.get_u32(turn.REQUESTED_TRANSPORT) == turn.TRANSPORT_UDP << 24
    assert signed(retry)

    assert server.grant(lifetime=1200) is None
    assert client.state == turn.READY and client.error is None
    assert client.relayed == RELAYED and client.mapped == MAPPED and client.lifetime_s == 1200
    assert client.counters["allocations"] == 1 and client.counters["unauthenticated"] == 0
    assert len(server.sent) == 2


def test_unauthenticated_success_is_dropped_rfc8489_s9_2_5():
    """RFC 8489 §9.2.5: a success without a valid MESSAGE-INTEGRITY is
    discarded and the transaction goes on; so is an answer to no open one."""
    client, server = allocating()
    server.grant(key=None)  # no key yet to check anything with
    assert client.counters["unauthenticated"] == 1 and client.state == turn.ALLOCATING
    server.challenge()
    server.grant(key=None)
    server.grant(key=digest.long_term_key(USER, REALM, "not the password"))
    assert client.counters["unauthenticated"] == 3
    assert client.state == turn.ALLOCATING and client.relayed is None
    assert client.counters["allocations"] == 0
    server.grant()  # the genuine answer, still awaited
    assert client.state == turn.READY
    server.grant(which=0)  # the first Allocate's transaction was replaced
    assert client.counters["unmatched"] == 1 and client.counters["allocations"] == 1


def test_malformed_signed_success_is_dropped_and_the_allocate_goes_on():
    """A signed success whose XOR-MAPPED-ADDRESS cannot be decoded counts as
    malformed like any other; the transaction stays open (retransmissions,
    then a timeout) instead of leaving the client allocating forever."""
    client, server = allocating()
    server.challenge()

    def add(w):
        w.add_xor_address(turn.XOR_RELAYED_ADDRESS, RELAYED[0], RELAYED[1])
        w.add_bytes(stun.XOR_MAPPED_ADDRESS, b"\x00\x03\x00\x01abcd")  # family 3

    server.reply(stun.SUCCESS, add)
    assert client.counters["malformed"] == 1 and client.state == turn.ALLOCATING
    assert client.poll_timeout() == 500
    server.grant()
    assert client.state == turn.READY and client.mapped == MAPPED


def test_stale_nonce_438_retries_with_the_new_nonce_rfc8489_s9_2_5():
    client, server = allocating()
    server.challenge()
    signed_txid = server.request().txid
    server.challenge(438, "nonce-2")
    again = server.request()
    assert len(server.sent) == 3 and again.txid != signed_txid
    assert again.type == turn.ALLOCATE_REQUEST and signed(again, "nonce-2")
    server.grant()
    assert client.state == turn.READY


def test_401_after_credentials_fails_rfc8489_s9_2_5():
    """A 401 to a request that carried the credentials means they are wrong:
    fail with a message that says so, rather than loop."""
    client, server = allocating()
    server.challenge()
    server.challenge(nonce="nonce-2")
    assert client.state == turn.FAILED
    assert "credentials" in client.error
    assert len(server.sent) == 2 and client.poll_timeout() is None
    assert server.advance(100000) == 0


def test_try_alternate_300_moves_the_allocation_rfc8489_s10():
    """RFC 8489 §10, RFC 8656 §7.4: over UDP the Allocate goes again, as a new
    transaction, to the ALTERNATE-SERVER."""
    client, server = allocating()
    first_txid = server.request().txid
    server.redirect()
    assert client.server == ALTERNATE and client.state == turn.ALLOCATING
    assert len(server.sent) == 2 and server.sent[-1][:2] == ALTERNATE
    moved = server.request()
    assert moved.type == turn.ALLOCATE_REQUEST and moved.txid != first_txid
    server.challenge()
    assert server.sent[-1][:2] == ALTERNATE and signed(server.request())
    server.grant()
    assert client.state == turn.READY and client.server == ALTERNATE


def test_try_alternate_over_tcp_fails_clearly():
    """Over TCP the stream is tied to the first server: a 300 ends the
    allocation with an error naming the code, and nothing moves."""
    client, server = allocating("tcp")
    server.redirect()
    assert client.state == turn.FAILED and client.server == SERVER
    assert "300" in client.error
    assert len(server.sent) == 1 and client.poll_timeout() is None


# ---- retransmission (RFC 8489 §6.2) ------------------------------------------


def test_udp_retransmissions_rfc8489_s6_2_1():
    """RTO doubling from rto_ms, max_sends (Rc) sends, then failure Rm = 16
    initial RTOs after the last one: with 500 ms, sends at 0, 500, 1500,
    3500, 7500, 15500 and 31500 ms and failure at 39500 ms (§6.2.1's example)."""
    for options, sends, fail_at in (
        ({}, (500, 1500, 3500, 7500, 15500, 31500), 39500),
        ({"rto_ms": 100, "max_sends": 3}, (100, 300), 1900),
    ):
        client, server = allocating(**options)
        for due in sends:
            assert client.poll_timeout() == due
            assert server.advance(due - 1) == 0
            assert server.advance(due) == 1
            assert server.sent[-1] == server.sent[0]  # same transaction, same bytes
        assert client.poll_timeout() == fail_at
        assert server.advance(fail_at - 1) == 0 and client.state == turn.ALLOCATING
        assert server.advance(fail_at) == 0
        assert len(server.sent) == 1 + len(sends)
        assert client.state == turn.FAILED
        assert "192.0.2.10:3478" in client.error and "Allocate" in client.error
        assert client.poll_timeout() is None


def test_tcp_sends_once_then_times_out_rfc8489_s6_2_2():
    """A reliable transport is not retransmitted on: one send, then failure
    after tcp_timeout_ms."""
    client, server = allocating("tcp", tcp_timeout_ms=10000)
    assert client.poll_timeout() == 10000
    assert server.advance(9999) == 0
    assert server.advance(10000) == 0
    assert len(server.sent) == 1
    assert client.state == turn.FAILED and "192.0.2.10:3478" in client.error


def test_retransmission_deadlines_cross_the_tick_wrap():
    """Deadlines are ticks (compat): a clock about to wrap keeps working."""
    start = ticks_add(0, -300)
    client, server = allocating(start_ms=start)
    assert client.poll_timeout() == ticks_add(start, 500) == 200
    assert server.advance(ticks_add(start, 499)) == 0
    assert server.advance(200) == 1
    assert client.poll_timeout() == 1200


# ---- refresh (RFC 8656 §8) ---------------------------------------------------


def test_refresh_a_minute_before_expiry_rfc8656_s8():
    """§8: refresh roughly a minute before the lifetime ends (at 3/4 of a
    short lifetime), asking for the lifetime granted so far (§8.1)."""
    for lifetime, interval in ((600, 540000), (120, 90000)):
        client, server = ready(lifetime=lifetime)
        assert client.poll_timeout() == interval
        assert server.advance(interval - 1) == 0
        assert server.advance(interval) == 1
        refresh = server.request()
        assert refresh.type == turn.REFRESH_REQUEST
        assert refresh.get_u32(turn.LIFETIME) == lifetime and signed(refresh)
        server.grant(lifetime)
        assert client.counters["refreshes"] == 1 and client.state == turn.READY
        assert client.poll_timeout() == 2 * interval


def test_refresh_takes_the_new_lifetime_and_a_stale_nonce_rfc8656_s8_3():
    """§8.3: a 438 to a Refresh is retried with the new nonce; the success's
    LIFETIME becomes the allocation's and sets the next refresh."""
    client, server = ready()
    assert server.advance(540000) == 1
    server.challenge(438, "nonce-2")
    again = server.request()
    assert again.type == turn.REFRESH_REQUEST and signed(again, "nonce-2")
    server.grant(lifetime=200)
    assert client.lifetime_s == 200 and client.counters["refreshes"] == 1
    assert client.poll_timeout() == 540000 + 150000


# ---- permissions and channels (RFC 8656 §9, §10, §12) --------------------------


def test_permission_and_its_refresh_rfc8656_s10():
    """§10.1: permit(ip) sends one CreatePermission with XOR-PEER-ADDRESS;
    asking again sends nothing; it is refreshed after permission_refresh_ms
    (permissions last 300 s, §9)."""
    client, server = ready(permission_refresh_ms=240000)
    assert client.permit(PEER[0]) is not None
    assert server.drain() == 1
    request = server.request()
    assert request.type == turn.CREATE_PERMISSION_REQUEST and signed(request)
    assert request.xor_address(turn.XOR_PEER_ADDRESS)[0] == PEER[0]
    first_txid = request.txid
    client.permit(PEER[0])
    assert server.drain() == 0
    server.grant()
    assert client.counters["permissions"] == 1
    assert client.poll_timeout() == 240000
    assert server.advance(240000) == 1
    again = server.request()
    assert again.type == turn.CREATE_PERMISSION_REQUEST and again.txid != first_txid
    server.grant()
    assert client.counters["permissions"] == 2 and client.poll_timeout() == 480000


def test_peers_asked_for_while_allocating_follow_the_allocation():
    client, server = allocating()
    client.permit(OTHER_PEER[0])
    client.bind_channel(PEER[0], PEER[1])
    assert server.drain() == 0
    server.challenge()
    server.grant()
    types = [server.request(i).type for i in (-3, -2, -1)]
    assert types == [turn.CREATE_PERMISSION_REQUEST, turn.CREATE_PERMISSION_REQUEST,
                     turn.CHANNEL_BIND_REQUEST]


def test_channel_bind_then_channel_data_rfc8656_s12():
    """§12.1: ChannelBind with CHANNEL-NUMBER 0x4000 and XOR-PEER-ADDRESS.
    Until it is confirmed, wrap() makes a Send indication (§11.1); then
    ChannelData (§12.4), padded to 4 bytes over TCP only (§12.5)."""
    for transport, frame_size in (("udp", 7), ("tcp", 8)):
        client, server = ready(transport)
        client.bind_channel(PEER[0], PEER[1])
        assert server.drain() == 1
        bind = server.request()
        assert bind.type == turn.CHANNEL_BIND_REQUEST and signed(bind)
        assert bind.get_u32(turn.CHANNEL_NUMBER) == 0x4000 << 16
        assert bind.xor_address(turn.XOR_PEER_ADDRESS) == PEER

        send = stun.Message().parse(client.wrap(PEER[0], PEER[1], b"abc"))
        assert send.type == turn.SEND_INDICATION
        assert send.xor_address(turn.XOR_PEER_ADDRESS) == PEER
        assert bytes(send.get(turn.DATA_ATTR)) == b"abc"
        assert server.drain() == 1  # the Send indication needs a permission
        assert server.request().type == turn.CREATE_PERMISSION_REQUEST

        server.grant(which=-2)  # the ChannelBind
        assert client.has_channel(PEER[0], PEER[1]) and client.counters["channel_binds"] == 1
        frame = bytes(client.wrap(PEER[0], PEER[1], b"abc"))
        assert len(frame) == frame_size, transport
        number, payload = turn.parse_channel_data(frame)
        assert number == 0x4000 and bytes(payload) == b"abc"
        assert frame[7:] == b"\x00" * (frame_size - 7)


def test_data_from_peers_rfc8656_s11_4_s12_6():
    """A Data indication (§11.4) and ChannelData on a bound channel (§12.6)
    give (peer ip, peer port, payload); ChannelData on a channel bound to no
    one is discarded and counted."""
    client, server = ready()
    client.bind_channel(PEER[0], PEER[1])
    server.drain()
    server.grant()
    got = server.deliver(data_indication(OTHER_PEER, b"hello"))
    assert got[:2] == OTHER_PEER and bytes(got[2]) == b"hello"
    got = server.deliver(channel_data(0x4000, b"ping"))
    assert got[:2] == PEER and bytes(got[2]) == b"ping"
    assert server.deliver(channel_data(0x4001, b"ping")) is None
    assert client.counters["unmatched"] == 1 and client.counters["malformed"] == 0


def test_garbage_is_counted_and_never_raises():
    client, server = ready()
    broken = [
        b"",
        b"\x00",
        b"\xff" * 40,
        b"\x40\x00\x00\x10ab",  # ChannelData shorter than its length
        b"\x50\x00\x00\x00",  # reserved first byte
        server.sent[-1][2][:-4],  # a STUN message cut short
        data_indication(PEER, None),  # no DATA
        data_indication(PEER, b"x", b"\x00\x03\x00\x01abcd"),  # unknown family
    ]
    for data in broken:
        assert server.deliver(data) is None, data
    assert client.counters["malformed"] == len(broken)
    request = stun.Writer(bytearray(64)).start(stun.BINDING_REQUEST, stun.new_txid())
    assert server.deliver(bytes(request.view())) is None
    assert client.counters["unmatched"] == 1

    rng = Rng(8656)
    seeds = (data_indication(PEER, b"payload"), channel_data(0x4000, b"payload"))
    for i in range(400):
        data = bytearray(seeds[i % 2])
        for _ in range(1 + rng.below(3)):
            data[rng.below(len(data))] ^= 1 << rng.below(8)
        server.deliver(bytes(data[: len(data) - rng.below(3)]))
    assert client.state == turn.READY


# ---- misuse, limits, close -----------------------------------------------------


def test_wrap_before_ready_raises():
    assert raises(turn.TurnError, turn.TurnClient, "10.0.0.2", 1, "192.0.2.10", 3478, USER, PASSWORD, "sctp")
    assert raises(turn.TurnError, turn.TurnClient, "10.0.0.2", 1, "192.0.2.10", 3478, "", PASSWORD)
    client, server = allocating()
    assert raises(turn.TurnError, client.wrap, PEER[0], PEER[1], b"x")
    server.challenge()
    server.challenge()
    assert client.state == turn.FAILED
    assert raises(turn.TurnError, client.wrap, PEER[0], PEER[1], b"x")


def test_full_peer_table_is_reported_not_grown():
    """The caller sizes the peer table; a full one gives None and counts."""
    client, server = ready(max_peers=1)
    assert client.permit(PEER[0]) is not None
    assert client.permit(OTHER_PEER[0]) is None
    assert client.counters["table_full"] == 1
    assert client.wrap(OTHER_PEER[0], OTHER_PEER[1], b"x") is None
    assert client.counters["table_full"] == 2 and client.counters["no_permission"] == 1
    client.bind_channel(OTHER_PEER[0], OTHER_PEER[1])
    assert client.counters["table_full"] == 3
    assert server.drain() == 1  # only PEER's CreatePermission
    assert client.wrap(PEER[0], PEER[1], b"x") is not None


def test_close_deallocates_with_lifetime_zero_rfc8656_s8_1():
    client, server = ready()
    client.permit(PEER[0])
    assert server.drain() == 1  # in flight, abandoned by close
    server.now = 1000
    client.close(1000)
    assert server.drain() == 1
    refresh = server.request()
    assert refresh.type == turn.REFRESH_REQUEST and signed(refresh)
    assert refresh.get_u32(turn.LIFETIME) == 0
    assert client.state == turn.CLOSED and client.poll_timeout() is None
    assert server.advance(1000000) == 0
    client, server = allocating()
    client.close(0)
    assert server.drain() == 0 and client.state == turn.CLOSED


# ---- the driver's loop -------------------------------------------------------


def test_poll_timeout_is_never_in_the_past_when_idle():
    """No busy loop: after everything due at t has been handled, the next
    deadline is None or after t, also while a Refresh or a CreatePermission
    is still unanswered when the next one falls due (a short lifetime of
    30 s refreshes every 22.5 s; a transaction lives 39.5 s)."""
    client, server = ready(lifetime=30, permission_refresh_ms=5000)
    client.permit(PEER[0])
    client.bind_channel(OTHER_PEER[0], OTHER_PEER[1])
    server.drain()
    answered = len(server.sent)
    for i in range(-2, 0):
        server.grant(lifetime=30, which=i)
    steps = 0
    while client.state == turn.READY:
        steps += 1
        assert steps < 1000
        due = client.poll_timeout()
        assert ticks_diff(due, server.now) > 0
        server.advance(due)  # asserts the invariant after each step
        if server.now < 60000:  # answer for a minute, then go silent
            while answered < len(server.sent):
                server.grant(lifetime=30, which=answered)
                answered += 1
    assert client.state == turn.FAILED and "Refresh" in client.error
    assert client.counters["refreshes"] >= 2 and client.counters["permissions"] >= 10
