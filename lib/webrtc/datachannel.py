"""Data channels (RFC 8831) opened by DCEP (RFC 8832) over a
webrtc.sctp.Association: each channel is one SCTP stream, opened by a
DATA_CHANNEL_OPEN on it and acknowledged by DATA_CHANNEL_ACK.

    channels = DataChannels(assoc, even=True, on_open=..., on_message=...)
    assoc.on_data = channels.handle      # SCTP hands messages here
    channel = channels.open("frames", now_ms, ordered=False, lifetime_ms=500)
    channel.send(data, now_ms)           # bytes: binary, str: text
    channel.close(now_ms)                # "closing", then "closed"

The DTLS client takes even stream ids, the server odd ones (RFC 8832 §6);
a channel the peer opens arrives through `on_open(channel)`. At most
`max_channels` at once: an open beyond that is not acknowledged (counted),
the table never grows. A channel closes by resetting its stream both ways
(RFC 8831 §6.7, RFC 6525): when the peer resets its side, ours follows
and the channel is closed and leaves the table.
"""

import struct

from ice.compat import const

PPID_DCEP = const(50)
PPID_STRING = const(51)
PPID_BINARY = const(53)
PPID_STRING_EMPTY = const(56)
PPID_BINARY_EMPTY = const(57)

_OPEN = const(0x03)
_ACK = const(0x02)
_UNORDERED = const(0x80)
_REXMIT = const(0x01)
_TIMED = const(0x02)


class Channel:
    def __init__(self, owner, stream, label, protocol, kind, reliability):
        self.owner = owner
        self.stream = stream
        self.label = label
        self.protocol = protocol
        self.ordered = not kind & _UNORDERED
        self.max_retransmits = reliability if kind & 0x7F == _REXMIT else None
        self.lifetime_ms = reliability if kind & 0x7F == _TIMED else None
        self.state = "connecting"

    def send(self, data, now_ms, head=b""):
        """Send one message (`str`: text, else binary) on the channel's
        terms. False while SCTP has no room: wait for acknowledgements."""
        if self.state not in ("connecting", "open"):
            raise ValueError("data channel %r is %s" % (self.label, self.state))
        if isinstance(data, str):
            data = data.encode()
            ppid = PPID_STRING if data else PPID_STRING_EMPTY
        else:
            ppid = PPID_BINARY if len(data) or head else PPID_BINARY_EMPTY
        if not len(data) and not head:
            data = b"\0"  # an empty message is one zero byte under its own PPID (RFC 8831 §6.6)
        return self.owner.assoc.send(self.stream, ppid, data, now_ms, not self.ordered, self.lifetime_ms,
                                     self.max_retransmits, head)

    def close(self, now_ms):
        """Reset our side of the stream; "closed" once the peer resets its."""
        if self.state in ("connecting", "open"):
            self.state = "closing"
            self.owner.assoc.reset_stream(self.stream, now_ms)


class DataChannels:
    def __init__(self, assoc, even=True, max_channels=4, on_open=None, on_message=None):
        self.assoc = assoc
        self.even = even
        self.max_channels = max_channels
        self.on_open = on_open  # on_open(channel)
        self.on_message = on_message  # on_message(channel, view, is_text); the view lasts the call
        self.channels = {}
        self.counters = {"refused": 0, "malformed": 0, "unknown_stream": 0}
        assoc.on_data = self.handle
        assoc.on_reset = self._on_reset

    def open(self, label, now_ms, ordered=True, max_retransmits=None, lifetime_ms=None, protocol=""):
        """Open a channel of ours: DATA_CHANNEL_OPEN on the next free stream
        of our parity (RFC 8832 §5.1). It may carry data before the ACK."""
        if len(self.channels) >= self.max_channels:
            raise ValueError("at most %d data channels" % self.max_channels)
        stream = 0 if self.even else 1
        while stream in self.channels:
            stream += 2
        kind = 0 if ordered else _UNORDERED
        reliability = 0
        if max_retransmits is not None:
            kind, reliability = kind | _REXMIT, max_retransmits
        elif lifetime_ms is not None:
            kind, reliability = kind | _TIMED, lifetime_ms
        label_bytes, protocol_bytes = label.encode(), protocol.encode()
        message = struct.pack(">BBHIHH", _OPEN, kind, 0, reliability, len(label_bytes), len(protocol_bytes)) + \
            label_bytes + protocol_bytes
        channel = Channel(self, stream, label, protocol, kind, reliability)
        self.channels[stream] = channel
        self.assoc.send(stream, PPID_DCEP, message, now_ms)  # DCEP goes ordered and reliable (§6)
        return channel

    def handle(self, stream, ppid, view):
        """SCTP's on_data: DCEP messages and channel messages."""
        if ppid == PPID_DCEP:
            self._dcep(stream, view)
            return
        channel = self.channels.get(stream)
        if channel is None:
            self.counters["unknown_stream"] += 1
            return
        if channel.state == "connecting":
            channel.state = "open"  # data before the ACK means the peer has it (§6)
        if ppid in (PPID_STRING_EMPTY, PPID_BINARY_EMPTY):
            view = view[:0]
        if self.on_message is not None:
            self.on_message(channel, view, ppid in (PPID_STRING, PPID_STRING_EMPTY))

    def _on_reset(self, streams):
        """The peer reset its side of `streams` ([]: all): those channels
        close, our side reset too unless we began (RFC 8831 §6.7)."""
        for stream in streams or list(self.channels):
            channel = self.channels.pop(stream, None)
            if channel is not None:
                if channel.state != "closing":
                    self.assoc.reset_stream(stream, self.assoc.now_ms)
                channel.state = "closed"

    def _dcep(self, stream, view):
        if len(view) < 1:
            self.counters["malformed"] += 1
            return
        if view[0] == _ACK:
            channel = self.channels.get(stream)
            if channel is not None and channel.state == "connecting":
                channel.state = "open"
            return
        if view[0] != _OPEN or len(view) < 12:
            self.counters["malformed"] += 1
            return
        _, kind, _, reliability, label_len, protocol_len = struct.unpack_from(">BBHIHH", view, 0)
        if 12 + label_len + protocol_len > len(view) or kind & 0x7F > _TIMED:
            self.counters["malformed"] += 1
            return
        if stream in self.channels or len(self.channels) >= self.max_channels or \
                (stream % 2 == 0) == self.even:
            self.counters["refused"] += 1  # a stream of ours, in use, or one too many
            return
        try:
            label = str(bytes(view[12 : 12 + label_len]), "utf-8")
            protocol = str(bytes(view[12 + label_len : 12 + label_len + protocol_len]), "utf-8")
        except UnicodeError:
            self.counters["malformed"] += 1
            return
        channel = Channel(self, stream, label, protocol, kind, reliability)
        self.channels[stream] = channel
        self.assoc.send(stream, PPID_DCEP, b"\x02", self.assoc.now_ms)
        channel.state = "open"
        if self.on_open is not None:
            self.on_open(channel)
