"""The data path: every datagram the application sends arrives, whatever its
bytes and size up to the limit; data never goes through the control events.
Two agents through the network simulator, and the TURN client's framing.
Runs under pytest and under the MicroPython unix ports (host_tests/mp_run.py)."""

from ice import stun, turn
from ice.agent import STATE, Agent, Config, NotConnectedError
from helpers import raises
from netsim import Rng
from scenarios import Session
from test_turn import PEER, ready

def payloads():
    """One datagram per first-byte value (RFC 7983 gives 0-3 to STUN, 64-79
    to ChannelData, 20-63 to DTLS); those starting 0-3 also carry the magic
    cookie, some with a STUN header that does not parse."""
    rng = Rng(7983)
    out = []
    for first in range(256):
        body = bytearray(8 + rng.below(40))
        for i in range(len(body)):
            body[i] = rng.below(256)
        body[0] = first
        if first < 4 and len(body) >= 20:
            body[4:8] = b"\x21\x12\xa4\x42"  # the cookie, a length that does not match
        out.append(bytes(body))
    return out


def test_every_first_byte_value_arrives_both_ways_rfc7983():
    """A datagram is STUN only when it carries the cookie and parses as STUN
    (RFC 7983 §7); anything else from a valid pair's remote is data."""
    s = Session()
    assert s.connect()
    sent = payloads()
    for data in sent:
        s.send(s.a, data)
        s.send(s.b, data)
        s.sim.advance(2)
    s.sim.advance(100)
    assert s.data_b == sent
    assert s.data_a == sent
    for agent in (s.a, s.b):
        assert agent.counters["unknown_source"] == 0 and agent.counters["internal_errors"] == 0


def test_a_valid_stun_message_from_the_peer_is_not_data():
    """A well-formed Binding request (no integrity) from the peer is STUN: it
    is answered as such (400), not handed to the application."""
    s = Session()
    assert s.connect()
    s.sim.advance(100)
    before = len(s.data_b)
    w = stun.Writer(bytearray(64)).start(stun.BINDING_REQUEST, stun.new_txid())
    w.add_fingerprint()
    s.send(s.a, bytes(w.view()))
    s.sim.advance(100)
    assert len(s.data_b) == before
    assert s.b.counters["unauthenticated"] == 1


def test_a_burst_of_10000_datagrams_never_costs_a_state_event():
    """Data has its own path: 10,000 datagrams delivered around a state change
    leave the control events as they were (issue 13)."""
    s = Session()
    assert s.connect()
    s.sim.advance(1000)
    pair = s.b.selected_pair
    state_events = [e for _, e in s.events_b if e.kind == STATE]
    received = len(s.data_b)
    local, remote = pair.local, pair.remote
    for i in range(10000):
        if i == 5000:
            s.b.restart()  # -> checking
        got = s.b.handle_packet(s.sim.now, local.base_ip, local.base_port, remote.host, remote.port,
                                b"\x80burst %d" % i)
        assert got is not None and got[0] == 0x80
    s.sim.kick(s.b)
    after = [e for _, e in s.events_b if e.kind == STATE]
    assert len(after) == len(state_events) + 1 and after[-1].state == "checking"
    assert s.b.counters["events_dropped"] == 0
    assert len(s.data_b) == received  # handed straight back, never queued by the agent


def test_datagram_size_limit_is_an_error_that_names_it():
    cfg = Config(max_data_size=1200)
    s = Session(config_a=cfg)
    assert s.connect()
    s.send(s.a, b"\x80" * 1200)
    s.sim.advance(50)
    assert s.data_b[-1] == b"\x80" * 1200
    try:
        s.a.send(b"\x80" * 1201)
        raise AssertionError("a 1201-byte datagram went out")
    except ValueError as exc:
        assert "1200" in str(exc) and "max_data_size" in str(exc), exc
    assert not isinstance(_error(s.a.send, b"x" * 1201), NotConnectedError)
    assert isinstance(_error(Agent(True).send, b"x"), NotConnectedError)


def test_a_datagram_that_fills_the_receive_size_is_dropped_and_counted():
    """A datagram as long as the driver's receive size may have been cut by
    it: dropped, counted, never handed on as data."""
    s = Session()
    assert s.connect()
    pair = s.b.selected_pair
    local, remote = pair.local, pair.remote
    size = s.b.receive_size
    assert size > s.b.config.max_data_size
    assert s.b.handle_packet(0, local.base_ip, local.base_port, remote.host, remote.port, b"\x80" * size) is None
    assert s.b.counters["oversize"] == 1
    got = s.b.handle_packet(0, local.base_ip, local.base_port, remote.host, remote.port, b"\x80" * (size - 1))
    assert got is not None and len(got) == size - 1


def _error(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    return None


def test_turn_wraps_every_size_to_the_limit_rfc8656_s11_s12():
    """Send indications (§11) before the channel exists, ChannelData (§12,
    padded over TCP) after: every payload size from 1 to the client's
    data_size frames and parses back; one byte more is refused."""
    for transport in ("udp", "tcp"):
        client, server = ready(transport, data_size=1472)
        msg = stun.Message()
        for size in range(1, 1473, 13):
            payload = bytes((size + i) & 0xFF for i in range(size))
            sent = bytes(client.wrap(PEER[0], PEER[1], payload))
            msg.parse(sent)
            assert msg.type == turn.SEND_INDICATION and bytes(msg.get(turn.DATA_ATTR)) == payload, size
        server.drain()
        client.bind_channel(PEER[0], PEER[1])
        server.drain()
        server.grant(which=-1)
        assert client.has_channel(PEER[0], PEER[1])
        for size in (1, 2, 3, 4, 5, 700, 1471, 1472):
            payload = bytes((size * 3 + i) & 0xFF for i in range(size))
            frame = bytes(client.wrap(PEER[0], PEER[1], payload))
            assert len(frame) == (4 + size + 3) // 4 * 4 if transport == "tcp" else 4 + size
            number, got = turn.parse_channel_data(frame)
            assert bytes(got) == payload, (transport, size)
        assert raises(turn.TurnError, client.wrap, PEER[0], PEER[1], bytes(1473))
