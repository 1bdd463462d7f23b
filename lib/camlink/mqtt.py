"""An MQTT 3.1.1 client on asyncio streams, for the camera's signaling over
a broker (camlink.mqtt_signal). The same source runs on MicroPython and
CPython.

Why not micropython-lib's umqtt.simple: every call of it blocks the board,
connect (DNS, TCP, TLS, CONNACK), subscribe (until SUBACK) and a QoS 1
publish (until PUBACK), so a slow or restarting broker would stop ICE
consent checks and frames; and the release on PyPI wraps TLS with `ussl`,
which MicroPython 1.29 no longer has. This client awaits instead, over
ice.netio.open_stream (TCP, or TLS with a checked certificate).

The subset a signaling client needs (OASIS MQTT 3.1.1): CONNECT with a
will, username and password; SUBSCRIBE; PUBLISH at QoS 0 and 1 both ways
(QoS 1 sent again with DUP after a reconnect until acknowledged);
PINGREQ on the keepalive; DISCONNECT. A packet larger than `max_packet`
is skipped as it arrives and counted, never held whole.
"""

import struct

import asyncio

from ice import netio
from ice.compat import ticks_diff, ticks_ms

_CONNECT = 0x10
_CONNACK = 0x20
_PUBLISH = 0x30
_PUBACK = 0x40
_SUBSCRIBE = 0x82  # the flags MQTT 3.1.1 §3.8.1 requires
_SUBACK = 0x90
_PINGREQ = 0xC0
_PINGRESP = 0xD0
_DISCONNECT = 0xE0
_READ_SIZE = 512
_MAX_UNACKED = 32  # QoS 1 messages kept for a resend; the oldest goes first beyond this


class MqttError(Exception):
    """The broker refused (CONNACK code, SUBACK failure) or broke the protocol."""


def _utf8(text):
    data = text.encode() if isinstance(text, str) else bytes(text)
    return struct.pack(">H", len(data)) + data


def _remaining(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


class MqttClient:
    """One connection to a broker. `on_message(topic, payload)` is called
    for each PUBLISH that arrives (topic text, payload bytes). `counters`:
    oversized packets skipped, malformed ones, QoS 1 messages given up
    unacknowledged (more than _MAX_UNACKED waiting)."""

    def __init__(self, client_id, on_message, keepalive_s=30, max_packet=65536):
        self.client_id = client_id
        self.on_message = on_message
        self.keepalive_s = keepalive_s
        self.max_packet = max_packet
        self.counters = {"oversized": 0, "malformed": 0, "unacked_dropped": 0}
        self._reader = None
        self._writer = None
        self._pid = 0
        self._unacked = {}  # pid -> PUBLISH packet (QoS 1), sent again after a reconnect
        self._waiting = {}  # pid -> (Event, [reply]) for SUBACK
        self._tasks = []
        self.connected = False
        self.error = None  # why the last connection ended
        self._heard = 0  # ticks of the last packet from the broker
        self.closed = asyncio.Event()  # set when the connection ends, for whatever reason

    async def connect(self, host, port, tls_context=None, username=None, password=None, will=None,
                      clean_session=True):
        """`will` = (topic, payload bytes, qos, retain). Raises MqttError
        with the broker's code when refused, OSError when unreachable."""
        flags = 0x02 if clean_session else 0
        payload = _utf8(self.client_id)
        if will is not None:
            topic, message, qos, retain = will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload += _utf8(topic) + _utf8(message)
        if username is not None:
            flags |= 0x80
            payload += _utf8(username)
            if password is not None:
                flags |= 0x40
                payload += _utf8(password)
        body = _utf8("MQTT") + bytes((4, flags)) + struct.pack(">H", self.keepalive_s) + payload
        self._reader, self._writer = await netio.open_stream(host, port, tls_context, host)
        netio.tcp_nodelay(self._writer)
        self.closed = asyncio.Event()
        try:
            await self._write(bytes((_CONNECT,)) + _remaining(len(body)) + body)
            kind, data = await self._packet()
        except ValueError as e:  # MicroPython: a failed TLS check, in the first write or read
            await self._drop()
            raise OSError("TLS: %s" % (e,))
        if kind != _CONNACK or data is None or len(data) != 2:
            await self._drop()
            raise MqttError("no CONNACK from the broker")
        if data[1]:
            await self._drop()
            raise MqttError("the broker refused the connection (code %d%s)" % (
                data[1], ": bad username or password" if data[1] == 4 else ": not authorized" if data[1] == 5 else ""))
        self.connected = True
        for packet in self._unacked.values():  # at least once: again, marked DUP (§4.4)
            await self._write(bytes((packet[0] | 0x08,)) + packet[1:])
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._keepalive())]

    async def subscribe(self, topics):
        """[(filter, qos)...]; returns the granted QoS per filter. MqttError
        when the broker refuses one (0x80: its ACL)."""
        pid = self._next_pid()
        body = struct.pack(">H", pid)
        for topic, qos in topics:
            body += _utf8(topic) + bytes((qos,))
        event, reply = asyncio.Event(), []
        self._waiting[pid] = (event, reply)
        await self._write(bytes((_SUBSCRIBE,)) + _remaining(len(body)) + body)
        try:
            await netio.wait_ms(event.wait(), 10000)
        finally:
            self._waiting.pop(pid, None)
        granted = list(reply[0]) if reply else []
        if len(granted) != len(topics) or 0x80 in granted:
            raise MqttError("the broker refused a subscription: %s" % ", ".join(
                t for (t, _), g in zip(topics, granted + [0x80] * len(topics)) if g == 0x80))
        return granted

    async def publish(self, topic, payload, qos=0, retain=False):
        """Send now; a QoS 1 message is kept until its PUBACK and sent again
        after a reconnect."""
        if isinstance(payload, str):
            payload = payload.encode()
        header = _PUBLISH | (qos << 1) | (1 if retain else 0)
        body = _utf8(topic)
        if qos:
            pid = self._next_pid()
            body += struct.pack(">H", pid)
        body += payload
        packet = bytes((header,)) + _remaining(len(body)) + body
        if qos:
            if len(self._unacked) >= _MAX_UNACKED:  # a broker away for long: the oldest message goes
                del self._unacked[max(self._unacked, key=lambda p: (pid - p) % 0xFFFF)]
                self.counters["unacked_dropped"] += 1
            self._unacked[pid] = packet
        if self.connected:
            await self._write(packet)

    async def disconnect(self):
        if self.connected:
            try:
                await self._write(bytes((_DISCONNECT, 0)))
            except OSError:
                pass
        await self._drop()

    # ---- inside ---------------------------------------------------------------

    def _next_pid(self):
        self._pid = self._pid % 0xFFFF + 1
        return self._pid

    async def _write(self, data):
        self._writer.write(data)
        await self._writer.drain()

    async def _read(self, n):
        """Exactly n bytes (MicroPython's Stream has no readexactly)."""
        data = b""
        while len(data) < n:
            part = await self._reader.read(min(n - len(data), _READ_SIZE))
            if not part:
                raise OSError("the broker closed the connection")
            data += part
        return data

    async def _packet(self):
        """(type byte, body) of the next packet; (None, None) for one over
        max_packet, skipped."""
        first = (await self._read(1))[0]
        self._heard = ticks_ms()
        length, shift = 0, 0
        while True:
            byte = (await self._read(1))[0]
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MqttError("malformed remaining length")
        if length > self.max_packet:
            self.counters["oversized"] += 1
            while length:
                length -= len(await self._read(min(length, _READ_SIZE)))
            return None, None
        return first, (await self._read(length) if length else b"")

    async def _read_loop(self):
        try:
            while True:
                kind, data = await self._packet()
                if kind is not None:
                    await self._handle(kind, data)
        except (OSError, MqttError, ValueError, IndexError) as e:
            self.error = "%s" % (e,)
        finally:
            await self._drop()

    async def _handle(self, kind, data):
        if kind & 0xF0 == _PUBLISH:
            qos = (kind >> 1) & 3
            if len(data) < 2:
                self.counters["malformed"] += 1
                return
            size = (data[0] << 8) | data[1]
            start = 2 + size + (2 if qos else 0)
            if start > len(data) or qos > 1:
                self.counters["malformed"] += 1
                return
            try:
                topic = data[2 : 2 + size].decode()
            except UnicodeError:
                self.counters["malformed"] += 1
                return
            if qos:
                await self._write(bytes((_PUBACK, 2)) + data[2 + size : start])
            self.on_message(topic, data[start:])
        elif kind == _PUBACK and len(data) == 2:
            self._unacked.pop((data[0] << 8) | data[1], None)
        elif kind == _SUBACK and len(data) >= 3:
            waiter = self._waiting.get((data[0] << 8) | data[1])
            if waiter is not None:
                waiter[1].append(data[2:])
                waiter[0].set()
        elif kind != _PINGRESP:
            self.counters["malformed"] += 1

    async def _keepalive(self):
        """PINGREQ twice a keepalive period; a broker silent for one and a
        half periods is gone (MQTT 3.1.1 §3.1.2.10 gives it the same)."""
        period_ms = self.keepalive_s * 1000
        while self.connected:
            await netio.sleep_ms(period_ms // 2)
            if ticks_diff(ticks_ms(), self._heard) > period_ms * 3 // 2:
                self.error = "the broker went silent"
                await self._drop()
                return
            try:
                await self._write(bytes((_PINGREQ, 0)))
            except OSError:
                await self._drop()

    async def _drop(self):
        if self._writer is None:
            return
        self.connected = False
        writer, self._writer = self._writer, None
        current = asyncio.current_task() if hasattr(asyncio, "current_task") else None
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        try:
            writer.close()
            await writer.wait_closed()
        except (OSError, ValueError):
            pass
        self.closed.set()
