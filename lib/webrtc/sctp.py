"""SCTP for WebRTC data channels (RFC 8831 §6 over RFC 9260), sans-IO.

One association over DTLS: decrypted packets and the time go in, packets
to encrypt come out through `transmit(view)` (called at once; the view is
valid only during the call), received messages through `on_data(stream,
ppid, view)`, the end through `on_closed(reason)`.

    assoc = Association(transmit, on_data, on_closed)
    assoc.connect(now_ms)                # send INIT (or wait for the peer's)
    assoc.receive(packet, now_ms)        # a decrypted SCTP packet
    assoc.send(stream, ppid, data, now_ms, unordered=True, lifetime_ms=500)
    assoc.timeout_ms(now_ms)             # ms until handle_timeout is due, or None
    assoc.handle_timeout(now_ms)

What it does, for a camera that mostly sends:
- Opening (§5.1): `connect` sends INIT, resent on T1; an INIT from the
  peer is answered with INIT-ACK and a random cookie, and its COOKIE-ECHO
  establishes us. Both at once, as WebRTC peers do, meet in the middle
  (§5.2.1). The cookie holds no state: DTLS already tells us who the
  peer is, so it only has to match.
- Sending: a message is cut into DATA chunks of consecutive TSNs (§6.9)
  kept in a fixed ring; congestion window, slow start and fast retransmit
  after three miss reports (§7.2), T3-rtx with an RTO from measured round
  trips (§6.3), the peer's receive window.
- Partial reliability (RFC 3758): a message sent with `lifetime_ms` or
  `max_retransmits` is abandoned when it runs out, and FORWARD-TSN moves
  the peer past it, so a stale frame never stalls the next.
- Receiving: chunks in TSN order are reassembled into messages of up to
  `max_message_size` bytes; a chunk ahead of a gap is dropped and the
  SACK (sent for every packet with DATA) shows the gap's start, so the
  sender repeats it (the browser sends the camera little). FORWARD-TSN
  from the peer is honoured.
- Stream resets (RFC 6525), how a data channel closes (RFC 8831 §6.7):
  `reset_stream` asks the peer to reset our outgoing stream, one request
  at a time, resent on the RTO until answered; a request from the peer
  is performed once every TSN before it has arrived and reported through
  `on_reset(streams)`. Other re-configurations are denied.
- HEARTBEAT answered; ABORT, SHUTDOWN (answered at once) and
  SHUTDOWN-COMPLETE end the association.

Memory: the ring (`max_in_flight` TSNs, four bytes each), a table of
`max_messages` messages being sent (each keeps a reference to its data
until acknowledged or abandoned), one packet buffer and one reassembly
buffer, all made here. Our TSNs and verification tag are drawn below
2**28 so their arithmetic stays in small ints on a 32-bit board.
Malformed packets are dropped and counted, never raised.
"""

import struct

from ice.compat import const, ticks_add, ticks_diff, urandom
from webrtc import crc32c

DATA = const(0)
INIT = const(1)
INIT_ACK = const(2)
SACK = const(3)
HEARTBEAT = const(4)
HEARTBEAT_ACK = const(5)
ABORT = const(6)
SHUTDOWN = const(7)
SHUTDOWN_ACK = const(8)
ERROR = const(9)
COOKIE_ECHO = const(10)
COOKIE_ACK = const(11)
SHUTDOWN_COMPLETE = const(14)
RE_CONFIG = const(130)
FORWARD_TSN = const(192)

_STATE_COOKIE = const(7)  # INIT-ACK parameter (RFC 9260 §3.3.3)
_SUPPORTED_EXTENSIONS = const(0x8008)  # RFC 5061 §4.2.7
_FORWARD_TSN_SUPPORTED = const(0xC000)  # RFC 3758 §3.1

# RE-CONFIG parameters and results (RFC 6525 §4)
_OUTGOING_RESET = const(13)
_RECONFIG_RESPONSE = const(16)
_PERFORMED = const(1)
_DENIED = const(2)
_BAD_SEQUENCE = const(5)
_IN_PROGRESS = const(6)

_MASK = const(0xFFFFFFFF)
_HALF = const(0x80000000)

# A TSN slot of the send ring
_FREE = const(0)
_QUEUED = const(1)  # numbered, not sent yet
_SENT = const(2)  # in flight
_LOST = const(3)  # to be sent again
_GAP_ACKED = const(4)
_ABANDONED = const(5)

_COMMON_HEADER = const(12)
_DATA_HEADER = const(16)

_U_FLAG = const(0x04)  # DATA: unordered
_B_FLAG = const(0x02)
_E_FLAG = const(0x01)


class SctpError(ValueError):
    """A malformed packet (counted and dropped inside `receive`)."""


# what a malformed packet can raise while it is read; CPython's struct.error
# is no ValueError (MicroPython's struct raises ValueError)
_PARSE_ERRORS = (SctpError, ValueError, IndexError, TypeError, getattr(struct, "error", ValueError))


def _after(a, b):
    """Serial-number order (RFC 1982): TSN a comes after TSN b."""
    return a != b and ((a - b) & _MASK) < _HALF


def _random_below_2_28():
    return (struct.unpack("<I", urandom(4))[0] & 0x0FFFFFFF) or 1


class Association:
    def __init__(self, transmit, on_data, on_closed=None, port=5000, mtu=1200, max_in_flight=256,
                 max_messages=16, max_message_size=4096, rto_initial_ms=1000, rto_min_ms=200,
                 rto_max_ms=10000):
        if mtu < 256 or max_in_flight < 8 or max_messages < 1:
            raise ValueError("mtu >= 256, max_in_flight >= 8 and max_messages >= 1")
        self.transmit = transmit
        self.on_data = on_data
        self.on_closed = on_closed
        self.port = port
        self.peer_port = port
        self.state = "closed"  # -> "established" -> "closed" (ended says why)
        self.ended = None
        self.counters = {"malformed": 0, "bad_checksum": 0, "bad_tag": 0, "dropped_out_of_order": 0,
                         "duplicates": 0, "too_big": 0, "retransmits": 0, "fast_retransmits": 0,
                         "timeouts": 0, "abandoned": 0, "forward_tsn_sent": 0, "unknown_chunks": 0,
                         "resets_refused": 0, "packets_sent": 0, "packets_received": 0}
        self.mtu = mtu
        self.max_payload = mtu - _COMMON_HEADER - _DATA_HEADER
        self.max_message_size = max_message_size
        self.peer_max_message_size = 65536  # until the SDP says (a=max-message-size)
        self._out = bytearray(mtu)
        self._out_view = memoryview(self._out)
        self._pos = 0
        self._peer_tag = b"\0\0\0\0"
        self._tag = _random_below_2_28()
        self._cookie = urandom(16)
        # receiving
        self._peer_cum = 0  # last TSN received in order
        self._rbuf = bytearray(max_message_size)
        self._rlen = -1  # bytes of the message being reassembled, -1: none
        self._sack_due = False
        self._duplicate_seen = False
        # sending: a ring of TSN slots, and the messages they belong to
        cap = max_in_flight
        self._cap = cap
        self._slot_state = bytearray(cap)
        self._slot_message = bytearray(cap)
        self._slot_sends = bytearray(cap)
        self._slot_misses = bytearray(cap)
        self._messages = [None] * max_messages  # memoryview of the data, or None: free
        self._m_head = [b""] * max_messages
        self._m_first = [0] * max_messages
        self._m_count = [0] * max_messages
        self._m_stream = [0] * max_messages
        self._m_ssn = [0] * max_messages
        self._m_ppid = [0] * max_messages
        self._m_flags = [0] * max_messages
        self._m_expires = [None] * max_messages
        self._m_max_sends = [0] * max_messages  # 0: no limit
        self._ssn = {}  # stream -> next stream sequence number (ordered messages)
        self._next_tsn = _random_below_2_28()
        # stream resets (RFC 6525 §5.1.1: request numbers start at the initial TSN)
        self.on_reset = None  # on_reset(streams): the peer reset its outgoing streams ([]: all)
        self._reset_seq = self._next_tsn  # our request's number
        self._reset_queue = []  # our streams waiting for the next request
        self._reset_sent = None  # the stream of our request in flight
        self._reset_at = None  # when it is sent again
        self._peer_reset_seq = 0  # the number the peer's next request must have
        self._peer_reset_result = _PERFORMED  # repeated if its last request comes again
        self._cum_acked = (self._next_tsn - 1) & _MASK  # every TSN up to this is done
        self._next_unsent = self._next_tsn  # the first _QUEUED TSN
        self._lost = 0  # slots in _LOST
        self.flight = 0  # payload bytes in flight
        self.cwnd = min(4 * mtu, max(2 * mtu, 4380))  # §7.2.1
        self.ssthresh = 1 << 20
        self._partial_acked = 0
        self.peer_rwnd = 0
        self._fast_recovery_until = None  # TSN that ends fast recovery
        self._forward_tsn_due = False
        # round trips and the retransmission timer (§6.3)
        self.rto_ms = rto_initial_ms
        self.rto_min_ms = rto_min_ms
        self.rto_max_ms = rto_max_ms
        self.srtt_ms = None
        self._rttvar = 0
        self._probe_tsn = None
        self._probe_sent = 0
        self._t3_at = None
        self._t1_at = None  # INIT or COOKIE-ECHO resent until answered (§5.1)
        self._t1_sends = 0
        self._peer_cookie = None
        self.now_ms = 0

    # ---- input --------------------------------------------------------------

    def receive(self, packet, now_ms):
        """Take one decrypted SCTP packet; what it asks for is transmitted
        before this returns. Bad packets are counted, never raised."""
        size = len(packet)
        if size < _COMMON_HEADER + 4 or size > 65535:
            self.counters["malformed"] += 1
            return
        if not crc32c.check(packet, size):
            self.counters["bad_checksum"] += 1
            return
        self.counters["packets_received"] += 1
        try:
            self._receive(packet, size, now_ms)
        except _PARSE_ERRORS:
            self.counters["malformed"] += 1
        if self._sack_due and self.state == "established":
            self._begin()
            self._add_sack()
            self._flush()
        self._transmit(now_ms)

    def _receive(self, packet, size, now_ms):
        src, dst, tag = struct.unpack_from(">HHI", packet, 0)
        self.now_ms = now_ms
        first = packet[_COMMON_HEADER]
        if first == INIT:
            if tag != 0:
                raise SctpError("INIT with a verification tag")
        elif tag != self._tag and not (first in (ABORT, SHUTDOWN_COMPLETE) and packet[_COMMON_HEADER + 1] & 1):
            self.counters["bad_tag"] += 1
            return
        if dst != self.port:
            raise SctpError("not our port")
        off = _COMMON_HEADER
        while off + 4 <= size:
            kind, flags, length = struct.unpack_from(">BBH", packet, off)
            if length < 4 or off + length > size:
                raise SctpError("chunk length")
            body = off + 4
            end = off + length
            if kind == DATA:
                self._on_data_chunk(packet, body, end, flags)
            elif kind == SACK:
                self._on_sack(packet, body, end, now_ms)
            elif kind == FORWARD_TSN:
                self._on_forward_tsn(packet, body, end)
            elif kind == INIT:
                self._on_init(packet, body, end, src)
                return  # INIT is alone in its packet (§6.10)
            elif kind == INIT_ACK:
                self._on_init_ack(packet, body, end, src)
                return
            elif kind == COOKIE_ECHO:
                self._on_cookie_echo(packet, body, end)
            elif kind == COOKIE_ACK:
                if self.state == "cookie-echoed":
                    self._established()
            elif kind == HEARTBEAT:
                self._send_chunk(HEARTBEAT_ACK, packet, body, end)
            elif kind == ABORT:
                self._end("aborted by peer")
                return
            elif kind == SHUTDOWN:
                self._send_chunk(SHUTDOWN_ACK)
                self._end("shut down by peer")
                return
            elif kind in (SHUTDOWN_ACK, SHUTDOWN_COMPLETE):
                if kind == SHUTDOWN_ACK:
                    self._send_chunk(SHUTDOWN_COMPLETE)
                self._end("shut down")
                return
            elif kind == RE_CONFIG:
                self._on_reconfig(packet, body, end)
            elif kind in (HEARTBEAT_ACK, ERROR):
                pass  # we send no heartbeats (ICE consent checks the path); errors are the peer's to log
            else:
                # §3.2: the top two bits of an unknown type: 00/01 stop, 10/11 skip it
                self.counters["unknown_chunks"] += 1
                if not kind & 0x80:
                    return
            off = (end + 3) & ~3

    def connect(self, now_ms):
        """Active open (§5.1): send INIT, repeated on the T1 timer until
        answered. Not needed with browsers, which open themselves; either
        way an INIT from the peer is answered."""
        if self.state == "closed" and self.ended is None:
            self.state = "cookie-wait"
            self._t1_sends = 0
            self._send_init(now_ms)

    def _send_init(self, now_ms):
        self._begin(b"\0\0\0\0")
        self._add_init(INIT)
        self._flush()
        self._t1_sends += 1
        self._t1_at = ticks_add(now_ms, min(self.rto_max_ms, self.rto_ms << (self._t1_sends - 1)))

    def _add_init(self, kind):
        """INIT or INIT-ACK (§3.3.2-3): our tag, window, streams and first
        TSN, the cookie (INIT-ACK), and that we speak FORWARD-TSN (RFC 3758
        §3.1) and RE-CONFIG (RFC 5061 §4.2.7, RFC 6525 §3.1)."""
        cookie = self._cookie if kind == INIT_ACK else b""
        at = self._pos
        length = 20 + (4 + len(cookie) if cookie else 0) + 8 + 4
        struct.pack_into(">BBHIIHHI", self._out, at, kind, 0, length, self._tag, len(self._rbuf) * 16,
                         1024, 1024, self._next_tsn)
        at += 20
        if cookie:
            struct.pack_into(">HH", self._out, at, _STATE_COOKIE, 4 + len(cookie))
            self._out[at + 4 : at + 4 + len(cookie)] = cookie
            at += 4 + len(cookie)
        struct.pack_into(">HHBBBB", self._out, at, _SUPPORTED_EXTENSIONS, 6, FORWARD_TSN, RE_CONFIG, 0, 0)
        struct.pack_into(">HH", self._out, at + 8, _FORWARD_TSN_SUPPORTED, 4)
        self._pos = at + 12

    def _take_init(self, packet, body, end, src):
        """The peer's side of an INIT or INIT-ACK."""
        if end - body < 16:
            raise SctpError("short INIT")
        init_tag, rwnd, _, _, first_tsn = struct.unpack_from(">IIHHI", packet, body)
        if init_tag == 0:
            raise SctpError("INIT tag 0")
        self._peer_tag = bytes(packet[body : body + 4])
        self.peer_port = src
        self.peer_rwnd = rwnd
        self._peer_cum = (first_tsn - 1) & _MASK
        self._peer_reset_seq = first_tsn
        self._rlen = -1

    def _on_init(self, packet, body, end, src):
        if self.state not in ("closed", "cookie-wait") or self.ended is not None:
            return  # a restart (§5.2.2) is not supported: the session restarts ICE instead
        self._take_init(packet, body, end, src)
        self._begin()
        self._add_init(INIT_ACK)
        self._flush()

    def _on_init_ack(self, packet, body, end, src):
        if self.state != "cookie-wait":
            return
        self._take_init(packet, body, end, src)
        at = body + 16
        while at + 4 <= end:  # the parameters: find the state cookie
            kind, length = struct.unpack_from(">HH", packet, at)
            if length < 4 or at + length > end:
                raise SctpError("INIT-ACK parameter length")
            if kind == _STATE_COOKIE:
                self._peer_cookie = bytes(packet[at + 4 : at + length])
                self.state = "cookie-echoed"
                self._t1_sends = 0
                self._send_cookie_echo(self.now_ms)
                return
            at += (length + 3) & ~3
        raise SctpError("INIT-ACK without a cookie")

    def _send_cookie_echo(self, now_ms):
        self._send_chunk(COOKIE_ECHO, self._peer_cookie, 0, len(self._peer_cookie))
        self._t1_sends += 1
        self._t1_at = ticks_add(now_ms, min(self.rto_max_ms, self.rto_ms << (self._t1_sends - 1)))

    def _on_cookie_echo(self, packet, body, end):
        if bytes(packet[body:end]) != self._cookie or self.ended is not None:
            raise SctpError("not our cookie")
        self._send_chunk(COOKIE_ACK)
        self._established()

    def _established(self):
        self.state = "established"
        self._t1_at = None
        self._peer_cookie = None

    # ---- receiving data ---------------------------------------------------------

    def _on_data_chunk(self, packet, body, end, flags):
        if self.state != "established":
            return
        if end - body < 13:
            raise SctpError("DATA without user data")
        tsn, stream, _, ppid = struct.unpack_from(">IHHI", packet, body)
        self._sack_due = True
        if tsn != (self._peer_cum + 1) & _MASK:
            if _after(tsn, self._peer_cum):
                self.counters["dropped_out_of_order"] += 1  # the SACK shows the gap
            else:
                self.counters["duplicates"] += 1
                self._duplicate_seen = True
            return
        self._peer_cum = tsn
        start = body + 12
        if flags & _B_FLAG:
            self._rlen = 0
        if self._rlen < 0:
            return  # the rest of a message we lost the start of (skipped by FORWARD-TSN)
        size = end - start
        if self._rlen + size > len(self._rbuf):
            self.counters["too_big"] += 1
            self._rlen = -1
            return
        self._rbuf[self._rlen : self._rlen + size] = packet[start:end]
        self._rlen += size
        if flags & _E_FLAG:
            size = self._rlen
            self._rlen = -1
            self.on_data(stream, ppid, memoryview(self._rbuf)[:size])

    def _on_forward_tsn(self, packet, body, end):
        if end - body < 4:
            raise SctpError("short FORWARD-TSN")
        new_cum = struct.unpack_from(">I", packet, body)[0]
        if ((new_cum - self._peer_cum) & _MASK) > 0xFFFF and _after(new_cum, self._peer_cum):
            raise SctpError("FORWARD-TSN past any window")
        if _after(new_cum, self._peer_cum):
            self._peer_cum = new_cum
            self._rlen = -1  # a message cut by it is gone
        self._sack_due = True

    def _add_sack(self):
        """SACK (§3.3.4): everything in order so far; no gap blocks (what
        came out of order was dropped), a duplicate report when one came."""
        self._sack_due = False
        at = self._pos
        struct.pack_into(">BBHIIHH", self._out, at, SACK, 0, 16, self._peer_cum, len(self._rbuf) * 16, 0, 0)
        self._pos = at + 16

    # ---- stream resets (RFC 6525) ---------------------------------------------------

    def reset_stream(self, stream, now_ms):
        """Ask the peer to reset our outgoing `stream` (§5.1.2): send no
        more on it. Requests go one at a time, resent until answered."""
        if stream not in self._reset_queue and stream != self._reset_sent:
            self._reset_queue.append(stream)
        if self._reset_sent is None and self.state == "established":
            self._send_reset(now_ms)

    def _send_reset(self, now_ms):
        """Our Outgoing SSN Reset Request (§4.1), with the TSN the peer must
        have before it performs it."""
        if self._reset_sent is None:
            self._reset_sent = self._reset_queue.pop(0)
        param = struct.pack(">HHIIIH", _OUTGOING_RESET, 18, self._reset_seq, (self._peer_reset_seq - 1) & _MASK,
                            (self._next_tsn - 1) & _MASK, self._reset_sent)
        self._reset_at = ticks_add(now_ms, self.rto_ms)
        self._send_chunk(RE_CONFIG, param, 0, 18)

    def _on_reconfig(self, packet, body, end):
        if self.state != "established":
            return
        at = body
        while at + 8 <= end:
            kind, length, seq = struct.unpack_from(">HHI", packet, at)
            if length < 8 or at + length > end:
                raise SctpError("RE-CONFIG parameter length")
            if kind == _RECONFIG_RESPONSE:
                if length < 12:
                    raise SctpError("short RE-CONFIG response")
                self._on_reset_response(seq, struct.unpack_from(">I", packet, at + 8)[0])
            else:
                result = self._on_reset_request(packet, at, kind, length, seq)
                self._send_chunk(RE_CONFIG, struct.pack(">HHII", _RECONFIG_RESPONSE, 12, seq, result), 0, 12)
            at += (length + 3) & ~3

    def _on_reset_request(self, packet, at, kind, length, seq):
        """A request of the peer's (§5.2): its result. Requests are taken
        in number order; the last one again gets the same answer."""
        if seq == (self._peer_reset_seq - 1) & _MASK:
            return self._peer_reset_result
        if seq != self._peer_reset_seq:
            return _BAD_SEQUENCE
        if kind != _OUTGOING_RESET or length < 16:
            result = _DENIED  # we add no streams and reset nothing else
        elif _after(struct.unpack_from(">I", packet, at + 12)[0], self._peer_cum):
            return _IN_PROGRESS  # DATA before the reset is still missing (§5.2.2); it asks again
        else:
            result = _PERFORMED
            if self.on_reset is not None:
                self.on_reset([struct.unpack_from(">H", packet, i)[0] for i in range(at + 16, at + length - 1, 2)])
        self._peer_reset_seq = (seq + 1) & _MASK
        self._peer_reset_result = result
        return result

    def _on_reset_response(self, seq, result):
        if self._reset_sent is None or seq != self._reset_seq or result == _IN_PROGRESS:
            return  # not ours, or asked again on the timer
        if result <= _PERFORMED:
            self._ssn.pop(self._reset_sent, None)  # its sequence numbers start again at 0
        else:
            self.counters["resets_refused"] += 1
        self._reset_seq = (self._reset_seq + 1) & _MASK
        self._reset_sent = self._reset_at = None
        if self._reset_queue:
            self._send_reset(self.now_ms)

    # ---- sending ------------------------------------------------------------------

    def buffered(self):
        """TSNs numbered and not yet acknowledged or abandoned."""
        return (self._next_tsn - self._cum_acked - 1) & _MASK

    def queued_messages(self):
        """Messages sent and not yet acknowledged or abandoned."""
        return len(self._messages) - self._messages.count(None)

    def can_send(self, size):
        """True when `send` of a message of `size` bytes would take it now."""
        if self.state != "established":
            return False
        count = max(1, (size + self.max_payload - 1) // self.max_payload)
        return self.buffered() + count <= self._cap and None in self._messages

    def send(self, stream, ppid, data, now_ms, unordered=False, lifetime_ms=None, max_retransmits=None,
             head=b""):
        """Queue one message (`head` then `data`: a short header goes before
        a frame without copying the frame) and send what the windows allow.
        The data must stay unchanged until it is acknowledged. False when the
        ring or the message table is full (call again after acks come:
        `buffered()` falls). ValueError when it can never go: larger than
        the peer takes, or not established."""
        if self.state != "established":
            raise ValueError("SCTP association is %s: wait for the data channel to open" % self.state)
        size = len(head) + len(data)
        if size > self.peer_max_message_size:
            raise ValueError("message of %d bytes: the peer takes at most %d" % (size, self.peer_max_message_size))
        count = max(1, (size + self.max_payload - 1) // self.max_payload)
        if count > self._cap:
            raise ValueError("message of %d bytes needs more than max_in_flight=%d chunks" % (size, self._cap))
        if self.buffered() + count > self._cap:
            return False
        try:
            slot = self._messages.index(None)
        except ValueError:
            return False
        self._messages[slot] = memoryview(data)
        self._m_head[slot] = head
        self._m_first[slot] = self._next_tsn
        self._m_count[slot] = count
        self._m_stream[slot] = stream
        self._m_ppid[slot] = ppid
        if unordered:
            self._m_flags[slot] = _U_FLAG
            self._m_ssn[slot] = 0
        else:
            self._m_flags[slot] = 0
            ssn = self._ssn.get(stream, 0)
            self._m_ssn[slot] = ssn
            self._ssn[stream] = (ssn + 1) & 0xFFFF
        self._m_expires[slot] = None if lifetime_ms is None else ticks_add(now_ms, lifetime_ms)
        self._m_max_sends[slot] = 0 if max_retransmits is None else max_retransmits + 1
        tsn = self._next_tsn
        for _ in range(count):
            index = tsn % self._cap
            self._slot_state[index] = _QUEUED
            self._slot_message[index] = slot
            self._slot_sends[index] = 0
            self._slot_misses[index] = 0
            tsn = (tsn + 1) & _MASK
        self._next_tsn = tsn
        self._transmit(now_ms)
        return True

    def _chunk(self, tsn):
        """(message slot, offset, length) of a numbered TSN."""
        slot = self._slot_message[tsn % self._cap]
        offset = ((tsn - self._m_first[slot]) & _MASK) * self.max_payload
        return slot, offset, min(self.max_payload, len(self._m_head[slot]) + len(self._messages[slot]) - offset)

    def _expired(self, slot, now_ms):
        expires = self._m_expires[slot]
        return expires is not None and ticks_diff(now_ms, expires) >= 0

    def _abandon(self, slot):
        """RFC 3758 §3.5 C1-C2: every chunk of the message goes, and the
        peer is moved past it by FORWARD-TSN."""
        self.counters["abandoned"] += 1
        tsn = self._m_first[slot]
        for _ in range(self._m_count[slot]):
            index = tsn % self._cap
            state = self._slot_state[index]
            if state == _SENT:
                self.flight -= self._chunk(tsn)[2]
            elif state == _LOST:
                self._lost -= 1
            self._slot_state[index] = _ABANDONED
            tsn = (tsn + 1) & _MASK
        self._forward_tsn_due = True

    def _transmit(self, now_ms):
        """Send what is lost, then new chunks, as far as the windows allow
        (§6.1: one packet even when the window is shut but nothing flies)."""
        if self.state != "established":
            return
        if self._forward_tsn_due:
            self._send_forward_tsn()
        window = min(self.cwnd, self.peer_rwnd)
        if self._lost:
            tsn = (self._cum_acked + 1) & _MASK
            while self._lost and tsn != self._next_unsent:
                index = tsn % self._cap
                if self._slot_state[index] == _LOST:
                    slot = self._slot_message[index]
                    if self._expired(slot, now_ms) or (
                            self._m_max_sends[slot] and self._slot_sends[index] >= self._m_max_sends[slot]):
                        self._abandon(slot)
                        continue
                    if self.flight + self.max_payload > window and self.flight:
                        break
                    self._lost -= 1
                    self.counters["retransmits"] += 1
                    self._send_data(tsn, now_ms)
                tsn = (tsn + 1) & _MASK
            if self._forward_tsn_due:
                self._send_forward_tsn()
        while self._next_unsent != self._next_tsn:
            tsn = self._next_unsent
            index = tsn % self._cap
            if self._slot_state[index] != _QUEUED:  # abandoned before it went
                self._next_unsent = (tsn + 1) & _MASK
                continue
            slot = self._slot_message[index]
            if self._expired(slot, now_ms):
                self._abandon(slot)
                continue
            if self.flight and self.flight + self._chunk(tsn)[2] > window:
                break
            self._next_unsent = (tsn + 1) & _MASK
            self._send_data(tsn, now_ms)
        if self._forward_tsn_due:
            self._send_forward_tsn()

    def _send_data(self, tsn, now_ms):
        slot, offset, length = self._chunk(tsn)
        index = tsn % self._cap
        flags = self._m_flags[slot]
        if offset == 0:
            flags |= _B_FLAG
        head = self._m_head[slot]
        if offset + length == len(head) + len(self._messages[slot]):
            flags |= _E_FLAG
        self._begin()
        if self._sack_due:
            self._add_sack()
        at = self._pos
        if at + _DATA_HEADER + length > self.mtu:
            self._flush()
            self._begin()
            at = self._pos
        struct.pack_into(">BBHIHHI", self._out, at, DATA, flags, _DATA_HEADER + length, tsn,
                         self._m_stream[slot], self._m_ssn[slot], self._m_ppid[slot])
        at += _DATA_HEADER
        out = self._out
        if offset < len(head):
            part = min(length, len(head) - offset)
            out[at : at + part] = head[offset : offset + part]
            if part < length:
                out[at + part : at + length] = self._messages[slot][: length - part]
        else:
            offset -= len(head)
            out[at : at + length] = self._messages[slot][offset : offset + length]
        at += length
        while at & 3:
            self._out[at] = 0
            at += 1
        self._pos = at
        self._flush()
        self._slot_state[index] = _SENT
        self._slot_sends[index] += 1
        self._slot_misses[index] = 0
        self.flight += length
        if self._probe_tsn is None and self._slot_sends[index] == 1:
            self._probe_tsn, self._probe_sent = tsn, now_ms  # one round trip at a time, never a resend (§6.3.1)
        if self._t3_at is None:
            self._t3_at = ticks_add(now_ms, self.rto_ms)

    def _send_forward_tsn(self):
        """FORWARD-TSN (RFC 3758 §3.2) past every abandoned TSN right after
        the acknowledged ones, naming the ordered streams it skips."""
        self._forward_tsn_due = False
        point = self._cum_acked
        tsn = (point + 1) & _MASK
        while tsn != self._next_tsn and self._slot_state[tsn % self._cap] == _ABANDONED:
            point = tsn
            tsn = (tsn + 1) & _MASK
        if point == self._cum_acked:
            return
        self._begin()
        at = self._pos
        struct.pack_into(">BBHI", self._out, at, FORWARD_TSN, 0, 8, point)
        at += 8
        skipped = {}
        tsn = (self._cum_acked + 1) & _MASK
        while tsn != (point + 1) & _MASK:
            slot = self._slot_message[tsn % self._cap]
            if not self._m_flags[slot] & _U_FLAG:
                skipped[self._m_stream[slot]] = self._m_ssn[slot]
            tsn = (tsn + 1) & _MASK
        for stream in skipped:
            if at + 4 > self.mtu:
                break
            struct.pack_into(">HH", self._out, at, stream, skipped[stream])
            at += 4
        struct.pack_into(">H", self._out, self._pos + 2, at - self._pos)
        self._pos = at
        self._flush()
        self.counters["forward_tsn_sent"] += 1

    # ---- acknowledgements -----------------------------------------------------------

    def _on_sack(self, packet, body, end, now_ms):
        if end - body < 12:
            raise SctpError("short SACK")
        cum, rwnd, gaps, _ = struct.unpack_from(">IIHH", packet, body)
        if end - body < 12 + 4 * gaps:
            raise SctpError("SACK gap blocks")
        if _after(self._cum_acked, cum) or _after(cum, (self._next_tsn - 1) & _MASK):
            return  # older than one we had (§6.2.1 D), or acks what we never sent
        acked_bytes = 0
        advanced = cum != self._cum_acked
        tsn = (self._cum_acked + 1) & _MASK
        stop = (cum + 1) & _MASK
        while tsn != stop:
            index = tsn % self._cap
            state = self._slot_state[index]
            if state == _SENT:
                length = self._chunk(tsn)[2]
                self.flight -= length
                acked_bytes += length
            elif state == _LOST:
                self._lost -= 1
            if tsn == self._probe_tsn:
                self._measure(ticks_diff(now_ms, self._probe_sent))
            self._slot_state[index] = _FREE
            tsn = (tsn + 1) & _MASK
        self._cum_acked = cum
        if _after(cum, (self._next_unsent - 1) & _MASK):
            self._next_unsent = (cum + 1) & _MASK  # acked though never sent: abandoned ones
        # gap blocks: offsets from cum (§3.3.4)
        highest = cum
        at = body + 12
        for _ in range(gaps):
            start, stop_off = struct.unpack_from(">HH", packet, at)
            at += 4
            if not 0 < start <= stop_off:
                raise SctpError("gap block")
            tsn = (cum + start) & _MASK
            last = (cum + stop_off) & _MASK
            if _after(last, (self._next_unsent - 1) & _MASK):
                raise SctpError("gap block past what was sent")
            while True:
                index = tsn % self._cap
                state = self._slot_state[index]
                if state in (_SENT, _LOST):
                    if state == _SENT:
                        length = self._chunk(tsn)[2]
                        self.flight -= length
                        acked_bytes += length
                    else:
                        self._lost -= 1
                    self._slot_state[index] = _GAP_ACKED
                if tsn == last:
                    break
                tsn = (tsn + 1) & _MASK
            if _after(last, highest):
                highest = last
        self.peer_rwnd = rwnd
        if highest != cum:
            self._count_misses(cum, highest)
        if self._fast_recovery_until is not None and not _after(self._fast_recovery_until, cum):
            self._fast_recovery_until = None
        if advanced:
            self._grow_window(acked_bytes)
            self._free_messages()
        self._forward_tsn_due = self._forward_tsn_due or self._has_abandoned_head()
        if self.flight == 0 and not self._forward_tsn_due:
            self._t3_at = None
        elif advanced or self._t3_at is None:
            self._t3_at = ticks_add(now_ms, self.rto_ms)

    def _count_misses(self, cum, highest):
        """§7.2.4: a TSN still in flight below the highest one acknowledged
        is missed once per SACK; at three it is sent again at once."""
        tsn = (cum + 1) & _MASK
        while tsn != highest:
            index = tsn % self._cap
            if self._slot_state[index] == _SENT:
                misses = self._slot_misses[index] + 1
                self._slot_misses[index] = misses
                if misses == 3:
                    if self._fast_recovery_until is None:
                        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
                        self.cwnd = self.ssthresh
                        self._partial_acked = 0
                        self._fast_recovery_until = (self._next_unsent - 1) & _MASK
                    self._slot_state[index] = _LOST
                    self.flight -= self._chunk(tsn)[2]
                    self._lost += 1
                    self.counters["fast_retransmits"] += 1
            tsn = (tsn + 1) & _MASK

    def _grow_window(self, acked_bytes):
        """§7.2.1-7.2.2: slow start below ssthresh, else one MTU a window."""
        if self._fast_recovery_until is not None:
            return
        if self.cwnd <= self.ssthresh:
            self.cwnd += min(acked_bytes, self.mtu)
        else:
            self._partial_acked += acked_bytes
            if self._partial_acked >= self.cwnd:
                self._partial_acked -= self.cwnd
                self.cwnd += self.mtu

    def _measure(self, rtt_ms):
        """RTO from a round trip (§6.3.1)."""
        self._probe_tsn = None
        if self.srtt_ms is None:
            self.srtt_ms = rtt_ms
            self._rttvar = rtt_ms // 2
        else:
            self._rttvar = (3 * self._rttvar + abs(self.srtt_ms - rtt_ms)) // 4
            self.srtt_ms = (7 * self.srtt_ms + rtt_ms) // 8
        self.rto_ms = min(self.rto_max_ms, max(self.rto_min_ms, self.srtt_ms + 4 * self._rttvar))

    def _free_messages(self):
        """Messages all of whose TSNs are acknowledged give up their data."""
        messages = self._messages
        for slot in range(len(messages)):
            if messages[slot] is not None:
                last = (self._m_first[slot] + self._m_count[slot] - 1) & _MASK
                if not _after(last, self._cum_acked):
                    messages[slot] = None
                    self._m_head[slot] = b""

    def _has_abandoned_head(self):
        tsn = (self._cum_acked + 1) & _MASK
        return tsn != self._next_tsn and self._slot_state[tsn % self._cap] == _ABANDONED

    # ---- timers ---------------------------------------------------------------------

    def timeout_ms(self, now_ms):
        """Milliseconds until `handle_timeout` is due, or None."""
        due = self._t1_at if self.state in ("cookie-wait", "cookie-echoed") else self._t3_at
        if self._reset_at is not None and (due is None or ticks_diff(self._reset_at, due) < 0):
            due = self._reset_at
        if due is None or self.ended is not None:
            return None
        return max(0, ticks_diff(due, now_ms))

    def handle_timeout(self, now_ms):
        """T1 (§5.1): INIT or COOKIE-ECHO again, eight tries in all. T3-rtx
        (§6.3.3): everything in flight counts as lost, the window drops to
        one packet and the RTO doubles. A stream reset request unanswered
        is sent again (RFC 6525 §5.1.1)."""
        if self.state in ("cookie-wait", "cookie-echoed"):
            if self._t1_at is None or ticks_diff(now_ms, self._t1_at) < 0:
                return
            if self._t1_sends >= 8:
                self._end("no answer to INIT")
            elif self.state == "cookie-wait":
                self._send_init(now_ms)
            else:
                self._send_cookie_echo(now_ms)
            return
        if self.state != "established":
            return
        if self._reset_at is not None and ticks_diff(now_ms, self._reset_at) >= 0:
            self._send_reset(now_ms)
        if self._t3_at is None or ticks_diff(now_ms, self._t3_at) < 0:
            return
        self._t3_at = None
        self.counters["timeouts"] += 1
        self.ssthresh = max(self.cwnd // 2, 4 * self.mtu)
        self.cwnd = self.mtu
        self._partial_acked = 0
        self._fast_recovery_until = None
        self.rto_ms = min(self.rto_max_ms, self.rto_ms * 2)
        self._probe_tsn = None
        tsn = (self._cum_acked + 1) & _MASK
        while tsn != self._next_unsent:
            index = tsn % self._cap
            if self._slot_state[index] == _SENT:
                self._slot_state[index] = _LOST
                self._lost += 1
            tsn = (tsn + 1) & _MASK
        self.flight = 0
        self._forward_tsn_due = self._forward_tsn_due or self._has_abandoned_head()
        self._transmit(now_ms)
        if self._t3_at is None and self._has_abandoned_head():
            self._t3_at = ticks_add(now_ms, self.rto_ms)  # until the FORWARD-TSN is acknowledged

    # ---- ending -----------------------------------------------------------------------

    def abort(self, reason="aborted"):
        """Send ABORT (§9.1) and end at once."""
        if self.state == "established":
            self._send_chunk(ABORT)
        self._end(reason)

    def _end(self, reason):
        if self.state == "closed" and self.ended is not None:
            return
        self.state = "closed"
        self.ended = reason
        self._t3_at = None
        for slot in range(len(self._messages)):
            self._messages[slot] = None
        if self.on_closed is not None:
            self.on_closed(reason)

    # ---- packet building ------------------------------------------------------------------

    def _begin(self, tag=None):
        """Start a packet in the buffer unless one is being filled."""
        if self._pos:
            return
        struct.pack_into(">HH", self._out, 0, self.port, self.peer_port)
        self._out[4:8] = self._peer_tag if tag is None else tag
        self._pos = _COMMON_HEADER

    def _send_chunk(self, kind, source=None, start=0, end=0):
        """One packet of one chunk whose value is source[start:end] (padded)."""
        self._begin()
        length = 4 + end - start
        at = self._pos
        if at + ((length + 3) & ~3) > self.mtu:
            self._pos = 0
            raise SctpError("chunk too long to answer")
        struct.pack_into(">BBH", self._out, at, kind, 0, length)
        if end > start:
            self._out[at + 4 : at + length] = source[start:end]
        at += length
        while at & 3:
            self._out[at] = 0
            at += 1
        self._pos = at
        self._flush()

    def _flush(self):
        size = self._pos
        if size <= _COMMON_HEADER:
            return
        self._pos = 0
        crc32c.stamp(self._out, size)
        self.counters["packets_sent"] += 1
        self.transmit(self._out_view[:size])
