"""Frame transport over the selected ICE pair (see firmware/PROTOCOL.md):
frames are cut into chunks that each fit a safe UDP payload, reassembled on
the viewer, and the viewer reports completed and dropped frames."""

import struct

from ice.compat import const


CHUNK = const(0x81)
REPORT = const(0x82)
HEADER_SIZE = const(8)
MAX_CHUNK = const(1100)  # chunk + headers fit 1280 bytes even inside TURN
_HEADER = ">BBHHH"
_REPORT = ">BBHHH"


class FrameError(ValueError):
    """A datagram that is not a well-formed chunk or report."""


def is_frame_datagram(data):
    return len(data) >= 1 and 0x80 <= data[0] <= 0x8F


class Chunker:
    """Cuts frames into chunk datagrams written into one reused buffer."""

    def __init__(self, max_chunk=MAX_CHUNK):
        if not 1 <= max_chunk <= MAX_CHUNK:
            raise ValueError("max_chunk must be 1-%d" % MAX_CHUNK)
        self.max_chunk = max_chunk
        self.frame_id = 0
        self._buf = bytearray(HEADER_SIZE + max_chunk)
        self._view = memoryview(self._buf)  # a whole chunk's datagram, as most are

    def count(self, frame_size):
        return max(1, (frame_size + self.max_chunk - 1) // self.max_chunk)

    def chunks(self, frame):
        """Yield one datagram view per chunk of `frame`; each view is valid
        until the next one is taken. The frame id advances per frame."""
        self.frame_id = (self.frame_id + 1) & 0xFFFF
        total = self.count(len(frame))
        if total > 0xFFFF:
            raise ValueError("frame too large")
        frame = memoryview(frame)
        for index in range(total):
            part = frame[index * self.max_chunk : (index + 1) * self.max_chunk]
            struct.pack_into(_HEADER, self._buf, 0, CHUNK, 0, self.frame_id, index, total)
            self._buf[HEADER_SIZE : HEADER_SIZE + len(part)] = part
            yield self._view if len(part) == self.max_chunk else self._view[: HEADER_SIZE + len(part)]


def parse_chunk(data):
    """(frame_id, index, count, payload view) of a chunk datagram."""
    if len(data) < HEADER_SIZE or data[0] != CHUNK:
        raise FrameError("not a frame chunk")
    _, _, frame_id, index, count = struct.unpack_from(_HEADER, data, 0)
    if count == 0 or index >= count:
        raise FrameError("chunk %d of %d is out of range" % (index, count))
    return frame_id, index, count, memoryview(data)[HEADER_SIZE:]


class Assembler:
    """Rebuilds frames from chunks, newest frame first: a chunk of a newer
    frame abandons an incomplete older one (counted as dropped)."""

    def __init__(self, max_frame=256 * 1024):
        self.max_frame = max_frame
        self.completed = 0
        self.dropped = 0
        self.malformed = 0
        self._id = None
        self._parts = {}  # index -> payload: grows with chunks received, not with the wire's count
        self._count = 0
        self._have = 0

    def add(self, data):
        """Feed one datagram; returns a complete frame (bytes) or None."""
        try:
            frame_id, index, count, payload = parse_chunk(data)
        except FrameError:
            self.malformed += 1
            return None
        if frame_id != self._id:
            if self._id is not None and _newer(self._id, frame_id):
                return None  # a late chunk of a frame already given up
            if self._id is not None and self._have < self._count:
                self.dropped += 1
            self._id = frame_id
            self._parts = {}
            self._count = count
            self._have = 0
        if count != self._count or index in self._parts:
            return None  # a duplicate, or a chunk that disagrees on the count
        self._parts[index] = bytes(payload)
        self._have += 1
        if self._have < count:
            return None
        frame = b"".join([self._parts[i] for i in range(count)])
        self._parts = {}  # complete: nothing pending for this id
        self._count = 0
        self._have = 0
        if len(frame) > self.max_frame:
            self.malformed += 1
            return None
        self.completed += 1
        return frame


def _newer(a, b):
    """True when frame id `a` is after `b`, modulo 2^16."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def write_report(buf, completed, dropped, window_ms):
    struct.pack_into(_REPORT, buf, 0, REPORT, 0, completed & 0xFFFF, dropped & 0xFFFF, min(window_ms, 0xFFFF))
    return HEADER_SIZE


def parse_report(data):
    """(completed, dropped, window_ms) of a loss report."""
    if len(data) < HEADER_SIZE or data[0] != REPORT:
        raise FrameError("not a loss report")
    _, _, completed, dropped, window = struct.unpack_from(_REPORT, data, 0)
    return completed, dropped, window
