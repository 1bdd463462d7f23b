"""A browser's data channel over an ice.aio.Connection: DTLS (webrtc.dtls)
on the selected pair, SCTP (webrtc.sctp) inside it, channels (webrtc.
datachannel) on top. The camera app keeps one per browser viewer.

    link = DataChannelLink(conn, cert_der, key_der, "sha-256", digest)
    task = asyncio.create_task(link.run())   # after ICE has a pair
    link.handle_datagram(data)               # each datagram conn.recv() gives
    link.send_frame(jpeg, frame_id)          # False: skipped, SCTP is full

Frames go as one binary message each: a 12-byte header (magic 0x83, flags,
frame id u16, the camera's ms clock u32 (wraps at 2**30), JPEG size u32, big-endian) then
the JPEG (firmware/PROTOCOL.md "Browsers"), on the channel the browser
opened, on its terms (unordered, a lifetime; when the browser closes it,
the next one it opens). A text message
`{"type": "ping", "t": T}` is answered with `{"type": "pong", "t": T,
"camera_ms": C}` so the page can tell latency.
"""

import json
import struct

import asyncio

from ice import netio
from ice.compat import ConnectionError, ticks_ms
from webrtc import dtls
from webrtc.datachannel import DataChannels
from webrtc.sctp import Association

FRAME_MAGIC = 0x83
FRAME_HEADER = ">BBHII"
FRAME_HEADER_SIZE = 12
DTLS_OVERHEAD = 80  # a record's header, IV, MAC and padding at most (AES-CBC with SHA-1 is the largest)


class DataChannelLink:
    def __init__(self, conn, cert_der, key_der, algorithm, digest, peer_max_message_size=65536,
                 max_frames_queued=2, max_in_flight=160, max_message_size=2048):
        self.conn = conn
        self.dtls = dtls.DtlsClient(cert_der, key_der, algorithm, digest, self._send_record, self._on_packet,
                                    conn.max_data_size)
        self.sctp = Association(self._send_packet, None, self._on_closed, mtu=conn.max_data_size - DTLS_OVERHEAD,
                                max_in_flight=max_in_flight, max_messages=max_frames_queued + 1,
                                max_message_size=max_message_size)
        self.sctp.peer_max_message_size = peer_max_message_size
        self.max_frames_queued = max_frames_queued
        self.channels = DataChannels(self.sctp, even=True, on_open=self._on_open, on_message=self._on_message)
        self.channel = None  # the one frames go on: the first the browser opens
        self.error = None
        self.frames_sent = 0
        self.frames_skipped = 0  # SCTP had no room: the viewer gets the next one
        self.started_ms = None
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def state(self):
        """"new", "connecting", "open", "failed" or "closed"."""
        if self.error is not None:
            return "failed"
        if self._closed:
            return "closed"
        if self.channel is not None and self.channel.state == "open":
            return "open"
        return "connecting" if self.started_ms is not None else "new"

    # ---- the layers' callbacks ------------------------------------------------

    def _send_record(self, record):
        try:
            return self.conn.send_nowait(record)
        except (ConnectionError, ValueError):
            return False

    def _send_packet(self, packet):
        self.dtls.send(packet)

    def _on_packet(self, packet):
        self.sctp.receive(packet, ticks_ms())

    def _on_open(self, channel):
        if self.channel is None or self.channel.state != "open":
            self.channel = channel  # the first, or the next after the browser closed it

    def _on_message(self, channel, view, is_text):
        if not is_text or len(view) > 256:
            return
        try:
            msg = json.loads(bytes(view))
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("type") == "ping":
            reply = json.dumps({"type": "pong", "t": msg.get("t"), "camera_ms": ticks_ms()})
            try:
                channel.send(reply, ticks_ms())
            except ValueError:
                pass

    def _on_closed(self, reason):
        if self.error is None and not self._closed:
            self.error = "data channel: SCTP %s" % reason
        self._wake.set()

    # ---- driving --------------------------------------------------------------

    def handle_datagram(self, data):
        """A datagram from the pair: DTLS records are ours (RFC 7983)."""
        if dtls.is_record(data):
            self.dtls.receive(data)
            self._wake.set()
            return True
        return False

    async def run(self):
        """Handshake, then keep the timers, until closed or failed; raises
        ConnectionError saying why it failed."""
        self.started_ms = ticks_ms()
        self.dtls.start()
        self.sctp.connect(self.started_ms)  # INIT waits for the handshake; browsers send theirs too (§5.2.1)
        while not self._closed:
            if self.dtls.state == "failed":
                self.error = self.dtls.error
            if self.error is not None:
                self.sctp.abort("failed")
                raise ConnectionError(self.error)
            now = ticks_ms()
            wait = self.dtls.timeout_ms()
            timer = self.sctp.timeout_ms(now)
            if timer is not None:
                wait = timer if wait is None else min(wait, timer)
            await netio.wait_event(self._wake, 1000 if wait is None else max(1, wait))
            self._wake.clear()
            self.dtls.poll()
            self.sctp.handle_timeout(ticks_ms())

    def send_frame(self, frame, frame_id):
        """Queue one JPEG for the browser; False when it was skipped. SCTP
        keeps it until acknowledged: `frame` must not change (a camera's
        reused buffer must be copied first)."""
        channel = self.channel
        if channel is None or channel.state != "open" or self.sctp.state != "established":
            return False
        size = len(frame)
        if self.sctp.queued_messages() >= self.max_frames_queued or not self.sctp.can_send(FRAME_HEADER_SIZE + size):
            self.frames_skipped += 1
            return False
        now = ticks_ms()
        head = struct.pack(FRAME_HEADER, FRAME_MAGIC, 0, frame_id & 0xFFFF, now, size)  # kept until acknowledged
        try:
            sent = channel.send(frame, now, head)
        except ValueError:  # larger than the browser takes
            sent = False
        if sent:
            self.frames_sent += 1
        else:
            self.frames_skipped += 1
        return sent

    def close(self):
        if not self._closed:
            self._closed = True
            self.sctp.abort("closed")
            self.dtls.close()
            self._wake.set()
