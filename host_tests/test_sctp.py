"""SCTP for data channels (RFC 9260, RFC 3758, RFC 8831/8832): two
associations against each other over a virtual network and clock."""

import struct

from helpers import raises
from webrtc import crc32c, sctp
from webrtc.datachannel import PPID_BINARY, PPID_STRING, DataChannels


class Link:
    """Two associations joined by a queue; `drop(n, packet)` decides loss."""

    def __init__(self, drop=None, **options):
        self.now = 0
        self.queue = []
        self.drop = drop
        self.sent = 0
        self.got = {"a": [], "b": []}
        self.a = sctp.Association(lambda p: self._put("b", p), lambda *m: self._got("a", *m), **options)
        self.b = sctp.Association(lambda p: self._put("a", p), lambda *m: self._got("b", *m), **options)

    def _put(self, to, packet):
        self.sent += 1
        if self.drop is None or not self.drop(self.sent, bytes(packet)):
            self.queue.append((to, bytes(packet)))

    def _got(self, side, stream, ppid, view):
        self.got[side].append((stream, ppid, bytes(view)))

    def run(self, ms=0, step=10):
        """Deliver until quiet, then let `ms` of virtual time pass."""
        end = self.now + ms
        while True:
            while self.queue:
                to, packet = self.queue.pop(0)
                (self.a if to == "a" else self.b).receive(packet, self.now)
            if self.now >= end:
                return
            self.now += step
            for assoc in (self.a, self.b):
                wait = assoc.timeout_ms(self.now)
                if wait == 0:
                    assoc.handle_timeout(self.now)


def connected(**options):
    link = Link(**options)
    link.b.connect(link.now)
    link.run()
    assert link.a.state == "established" and link.b.state == "established"
    return link


def message(size, seed=3):
    data = bytearray(size)
    for i in range(size):
        data[i] = (seed + i * 7) & 0xFF
    return bytes(data)


def test_checksum_known_answer_rfc9260_appendix_a():
    packet = bytearray(12) + b"123456789"
    crc32c.stamp(packet, len(packet))
    assert bytes(packet[8:12]) == struct.pack("<I", 0x96B99AB1)
    assert crc32c.check(packet, len(packet))
    packet[13] ^= 1
    assert not crc32c.check(packet, len(packet))


def test_open_by_init_and_cookie_rfc9260_5_1():
    link = connected()
    assert link.a.counters["malformed"] == 0 and link.b.counters["malformed"] == 0


def test_init_lost_is_sent_again_on_t1():
    link = Link(drop=lambda n, p: n == 1)
    link.b.connect(0)
    link.run(1500)
    assert link.a.state == "established" and link.b.state == "established"


def test_large_message_is_fragmented_and_reassembled():
    link = connected(max_message_size=30000)
    data = message(25000)
    assert link.b.send(1, PPID_BINARY, data, link.now)
    link.run(100)
    assert link.got["a"] == [(1, PPID_BINARY, data)]
    assert link.b.buffered() == 0 and link.b.flight == 0


def test_head_goes_before_data_without_a_copy():
    link = connected()
    assert link.b.send(1, PPID_BINARY, message(3000), link.now, head=b"HEAD")
    link.run(100)
    assert link.got["a"] == [(1, PPID_BINARY, b"HEAD" + message(3000))]


def test_lost_chunks_are_sent_again_and_order_holds_rfc9260_6_3():
    drops = (5, 9, 10, 20)
    link = connected(drop=lambda n, p: n in drops, max_message_size=20000)
    sent = [message(5000, seed) for seed in range(6)]
    for data in sent:
        assert link.b.send(1, PPID_BINARY, data, link.now)
    link.run(5000)
    assert [m[2] for m in link.got["a"]] == sent
    assert link.b.counters["retransmits"] >= len(drops) - 1
    assert link.b.buffered() == 0


def sack(assoc, cum, gaps, rwnd=65536):
    """A SACK for `assoc` as a browser sends it, with gap blocks."""
    packet = bytearray(12 + 16 + 4 * len(gaps))
    struct.pack_into(">HHI", packet, 0, 5000, 5000, assoc._tag)
    struct.pack_into(">BBHIIHH", packet, 12, sctp.SACK, 0, 16 + 4 * len(gaps), cum, rwnd, len(gaps), 0)
    for i, (start, end) in enumerate(gaps):
        struct.pack_into(">HH", packet, 28 + 4 * i, start, end)
    crc32c.stamp(packet, len(packet))
    return packet


def test_three_miss_reports_retransmit_before_the_timer_rfc9260_7_2_4():
    link = connected()
    sender = link.b
    out = []
    sender.transmit = lambda p: out.append(bytes(p))
    first = sender._next_tsn
    assert sender.send(1, PPID_BINARY, message(12000), link.now)
    assert len(out) == 3  # the first congestion window (§7.2.1)
    cum = first - 1
    for end in (2, 3, 3):  # the first chunk never arrives; later ones do
        sender.receive(sack(sender, cum, [(2, end)]), link.now + 5)
    resent = [p for p in out[3:] if struct.unpack_from(">I", p, 16)[0] == first]
    assert len(resent) == 1 and sender.counters["fast_retransmits"] == 1 and sender.counters["timeouts"] == 0
    assert sender.cwnd == sender.ssthresh


def test_expired_message_is_abandoned_and_forward_tsn_skips_it_rfc3758():
    link = connected(max_message_size=20000)
    dropping = [True]
    link.drop = lambda n, p: dropping[0] and p[12] == sctp.DATA
    assert link.b.send(1, PPID_BINARY, message(4000, 1), link.now, unordered=True, lifetime_ms=300)
    link.run(100)
    dropping[0] = False
    link.run(3000)
    assert link.b.counters["abandoned"] == 1 and link.b.counters["forward_tsn_sent"] >= 1
    assert link.b.buffered() == 0
    assert link.b.send(1, PPID_BINARY, message(4000, 2), link.now, unordered=True, lifetime_ms=300)
    link.run(200)
    assert [m[2] for m in link.got["a"]] == [message(4000, 2)]


def test_max_retransmits_zero_gives_up_after_one_send():
    link = connected()
    dropping = [True]
    link.drop = lambda n, p: dropping[0] and p[12] == sctp.DATA
    assert link.b.send(1, PPID_BINARY, message(2000, 1), link.now, unordered=True, max_retransmits=0)
    link.run(100)
    dropping[0] = False
    link.run(3000)
    assert link.b.counters["abandoned"] == 1 and link.b.counters["retransmits"] == 0
    assert link.b.buffered() == 0 and link.got["a"] == []


def test_full_ring_refuses_then_takes_after_acks():
    link = connected(max_in_flight=16)
    big = message(16 * link.b.max_payload)
    assert link.b.send(1, PPID_BINARY, big, link.now)
    assert not link.b.send(1, PPID_BINARY, b"x", link.now)
    link.run(100)
    assert link.b.send(1, PPID_BINARY, b"x", link.now)
    assert raises(ValueError, link.b.send, 1, PPID_BINARY, message(17 * link.b.max_payload), link.now)


def test_heartbeat_is_answered_with_its_info():
    link = connected()
    heartbeat = bytearray(12 + 12)
    struct.pack_into(">HHI", heartbeat, 0, 5000, 5000, link.a._tag)
    struct.pack_into(">BBHHH4s", heartbeat, 12, sctp.HEARTBEAT, 0, 12, 1, 8, b"ping")
    crc32c.stamp(heartbeat, len(heartbeat))
    answers = []
    link.a.transmit = lambda p: answers.append(bytes(p))
    link.a.receive(heartbeat, link.now)
    assert len(answers) == 1 and answers[0][12] == sctp.HEARTBEAT_ACK and answers[0][16:24] == heartbeat[16:24]


def test_malformed_packets_are_counted_never_raised():
    link = connected()
    good = []
    link.a.transmit = lambda p: good.append(bytes(p))
    link.a.send(1, PPID_BINARY, b"hello", link.now)
    packet = bytearray(good[0])
    tag = link.a._peer_tag
    for body in (b"\x00\x03\x00\x05x", b"\x03\x00\x00\x30", b"\x00\x00\x00\x04", b"\xc0\x00\x00\x05\x01",
                 b"\x03\x00\x00\x10" + b"\0" * 12 + b"\x00\x01\xff\xff"):
        bad = bytearray(struct.pack(">HH", 5000, 5000) + struct.pack(">I", link.b._tag) + b"\0\0\0\0" + body)
        crc32c.stamp(bad, len(bad))
        link.b.receive(bad, link.now)
    packet[20] ^= 0xFF  # checksum no longer matches
    link.b.receive(packet, link.now)
    link.b.receive(b"\x00" * 5, link.now)
    assert link.b.counters["malformed"] >= 4 and link.b.counters["bad_checksum"] == 1
    assert link.b.state == "established" and tag


def test_abort_ends_both_sides():
    link = connected()
    closed = []
    link.a.on_closed = closed.append
    link.b.abort("bye")
    link.run()
    assert link.a.state == "closed" and closed == ["aborted by peer"] and link.b.ended == "bye"


def test_shutdown_is_answered():
    link = connected()
    shutdown = bytearray(12 + 8)
    struct.pack_into(">HHI", shutdown, 0, 5000, 5000, link.a._tag)
    struct.pack_into(">BBHI", shutdown, 12, sctp.SHUTDOWN, 0, 8, 0)
    crc32c.stamp(shutdown, len(shutdown))
    answers = []
    link.a.transmit = lambda p: answers.append(bytes(p))
    link.a.receive(shutdown, link.now)
    assert answers[0][12] == sctp.SHUTDOWN_ACK and link.a.state == "closed"


def test_dcep_opens_a_channel_both_ways_rfc8832():
    link = connected()
    opened = {"a": [], "b": []}
    messages = []
    ours = DataChannels(link.b, even=True, on_open=opened["b"].append)
    theirs = DataChannels(link.a, even=False, on_open=opened["a"].append,
                          on_message=lambda ch, view, text: messages.append((ch.label, bytes(view), text)))
    channel = ours.open("frames", link.now, ordered=False, lifetime_ms=500)
    link.run(50)
    assert channel.state == "open" and [c.label for c in opened["a"]] == ["frames"]
    peer_channel = opened["a"][0]
    assert not peer_channel.ordered and peer_channel.lifetime_ms == 500 and peer_channel.stream == 0
    channel.send("hi", link.now)
    channel.send(b"", link.now)
    channel.send(message(3000), link.now, head=b"\x83")
    link.run(50)
    assert messages == [("frames", b"hi", True), ("frames", b"", False), ("frames", b"\x83" + message(3000), False)]
    assert theirs.counters["malformed"] == 0


def test_dcep_open_on_our_parity_or_beyond_the_cap_is_refused():
    link = connected()
    ours = DataChannels(link.b, even=True, max_channels=1)
    theirs = DataChannels(link.a, even=False)
    ours.open("one", link.now)
    link.run(20)
    assert raises(ValueError, ours.open, "two", link.now)
    theirs.open("back", link.now)  # stream 1: beyond b's cap of one
    link.run(20)
    assert ours.counters["refused"] == 1 and PPID_STRING == 51


def channels_both_ways(link):
    """b opens a channel on stream 0 and a opens one on stream 1."""
    ours = DataChannels(link.b, even=True)
    theirs = DataChannels(link.a, even=False)
    ours.open("frames", link.now)
    theirs.open("back", link.now)
    link.run(50)
    return ours, theirs


def test_closing_a_channel_resets_its_stream_both_ways_rfc8831_6_7():
    link = connected()
    ours, theirs = channels_both_ways(link)
    channel = ours.channels[0]
    channel.send("before", link.now)  # ordered: stream sequence number 1 after the DCEP open's 0
    channel.close(link.now)
    assert channel.state == "closing" and raises(ValueError, channel.send, "after", link.now)
    link.run(50)
    # the peer's side followed with its own reset: closed on both, gone from both tables
    assert channel.state == "closed" and sorted(ours.channels) == [1] and sorted(theirs.channels) == [1]
    assert link.b._ssn.get(0) is None and link.a._ssn.get(0) is None  # sequence numbers start again
    # the peer closes the other one: we follow
    peer_channel = theirs.channels[1]
    peer_channel.close(link.now)
    link.run(50)
    assert peer_channel.state == "closed" and ours.channels == {} and theirs.channels == {}
    # the stream is free again: a new channel on it, its messages in order
    got = []
    theirs.on_message = lambda ch, view, text: got.append((ch.label, bytes(view)))
    again = ours.open("again", link.now)
    assert again.stream == 0
    again.send("one", link.now)
    again.send("two", link.now)
    link.run(50)
    assert got == [("again", b"one"), ("again", b"two")]
    assert link.a.counters["resets_refused"] == link.b.counters["resets_refused"] == 0


def reconfig(assoc, kind, seq, *fields):
    """A RE-CONFIG packet for `assoc` with one request parameter."""
    param = struct.pack(">HHI", kind, 8 + 4 * len(fields[:2]) + 2 * len(fields[2:]), seq) + \
        struct.pack(">" + "I" * len(fields[:2]) + "H" * len(fields[2:]), *fields)
    packet = bytearray(12 + 4 + ((len(param) + 3) & ~3))
    struct.pack_into(">HHI", packet, 0, 5000, 5000, assoc._tag)
    struct.pack_into(">BBH", packet, 12, sctp.RE_CONFIG, 0, 4 + len(param))
    packet[16 : 16 + len(param)] = param
    crc32c.stamp(packet, len(packet))
    return packet


def reset_results(packets):
    """(number, result) of each RE-CONFIG response in `packets`."""
    return [struct.unpack_from(">II", p, 20) for p in packets if p[12] == sctp.RE_CONFIG and p[17] == 16]


def test_reset_waits_for_the_data_before_it_and_numbers_are_checked_rfc6525_5_2():
    link = connected()
    resets = []
    link.a.on_reset = resets.append
    out = []
    link.a.transmit = lambda p: out.append(bytes(p))
    first = link.a._peer_reset_seq
    last_tsn = (link.a._peer_cum + 2) & 0xFFFFFFFF  # a DATA chunk the peer sent that has not arrived
    link.a.receive(reconfig(link.a, 13, first, 0, last_tsn, 3), link.now)
    assert reset_results(out) == [(first, 6)] and resets == []  # in progress
    last_tsn = link.a._peer_cum
    link.a.receive(reconfig(link.a, 13, first, 0, last_tsn, 3, 5), link.now)  # asked again, all there
    assert reset_results(out)[-1] == (first, 1) and resets == [[3, 5]]
    link.a.receive(reconfig(link.a, 13, first, 0, last_tsn, 3, 5), link.now)  # a resend: same answer, once
    assert reset_results(out)[-1] == (first, 1) and resets == [[3, 5]]
    link.a.receive(reconfig(link.a, 13, first + 5, 0, last_tsn, 3), link.now)
    assert reset_results(out)[-1] == (first + 5, 5)  # bad sequence number
    link.a.receive(reconfig(link.a, 17, first + 1, 0), link.now)  # add outgoing streams: not done here
    assert reset_results(out)[-1] == (first + 1, 2) and resets == [[3, 5]]  # denied, and numbered on


def test_lost_reset_request_is_sent_again():
    link = connected()
    ours, theirs = channels_both_ways(link)
    dropping = [True]
    link.drop = lambda n, p: dropping[0] and p[12] == sctp.RE_CONFIG
    ours.channels[0].close(link.now)
    link.run(500)
    assert 0 in theirs.channels  # the request was lost
    dropping[0] = False
    link.run(2000)
    assert sorted(theirs.channels) == sorted(ours.channels) == [1]


def test_fuzzed_packets_are_dropped_and_counted_never_raised():
    """Seeded random chunks behind a valid header and checksum (what gets
    past DTLS): the association counts them and still carries messages."""
    link = connected()
    link.a.transmit = lambda p: None
    seed = 12345
    kinds = (sctp.DATA, sctp.INIT, sctp.INIT_ACK, sctp.SACK, sctp.HEARTBEAT, sctp.ABORT, sctp.SHUTDOWN,
             sctp.COOKIE_ECHO, 0x40, 0x80, 0xC1, 130)  # FORWARD-TSN may move it on: tested on its own
    for n in range(1500):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        size = 16 + seed % 64
        packet = bytearray(size)
        for i in range(12, size):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            packet[i] = (seed >> 16) & 0xFF
        packet[12] = kinds[seed % len(kinds)]
        if kinds[seed % len(kinds)] in (sctp.ABORT, sctp.SHUTDOWN, sctp.INIT):
            packet[12] = sctp.SACK  # these end or restart the association: tested on their own
        struct.pack_into(">HHI", packet, 0, 5000, 5000, link.a._tag)
        if n % 3 == 0:
            struct.pack_into(">H", packet, 14, seed % (size + 8))  # a chunk length that may lie
        crc32c.stamp(packet, size)
        link.a.receive(packet, link.now)
    counted = link.a.counters
    assert counted["malformed"] + counted["unknown_chunks"] + counted["dropped_out_of_order"] + \
        counted["duplicates"] > 100
    link.a.transmit = lambda p: link._put("b", p)
    link.run(50)
    assert link.a.state == "established"
    link.b.send(1, PPID_BINARY, b"after", link.now)
    link.run(3000)
    assert link.got["a"] and link.got["a"][-1][2] == b"after"
