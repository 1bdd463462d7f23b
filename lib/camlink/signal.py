"""Signaling client (firmware/PROTOCOL.md): one JSON object per line over TCP
to tools/signaling.py. The same source runs on MicroPython (unix port, ESP32)
and CPython; it uses only asyncio streams and json.

    sig = SignalingClient()
    await sig.connect("192.0.2.10", 8765, tls_context)   # TLS unless None
    joined = await sig.join("garage", "camera", credential)    # sig.id is ours now
    while (msg := await sig.recv()) is not None:   # None: the server closed
        ...
        await sig.send({"type": "ice", "to": msg["from"], "ufrag": u, "pwd": p})
    await sig.close()
"""

import asyncio
import json

from ice import netio

MAX_LINE = 65536  # the server's cap on a line, in bytes
_READ_SIZE = 512  # a read allocates this much at once: small enough for a fragmented board heap


class SignalingError(Exception):
    """The server refused a join (its `reason`), or closed before answering."""


def parse_url(text):
    """(tls, host, port) of "tls://host:port", "tcp://host:port" or a bare
    "host:port" (plain TCP, for a server on this machine or the local
    demo). IPv6 addresses go in brackets."""
    tls = text.startswith("tls://")
    if tls or text.startswith("tcp://"):
        text = text[6:]
    elif "://" in text:
        raise ValueError("signaling URL %r: tls://host:port or tcp://host:port" % text)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("signaling URL %r: tls://host:port or tcp://host:port" % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return tls, host, int(port)


def parse_mqtt_url(text):
    """(tls, host, port, username, password) of mqtt://[user[:password]@]host[:port]
    or mqtts://... (ports 1883 and 8883 by default)."""
    tls = text.startswith("mqtts://")
    if not tls and not text.startswith("mqtt://"):
        raise ValueError("an MQTT URL starts with mqtt:// or mqtts://, not %r" % text)
    rest = text[8 if tls else 7 :].rstrip("/")
    username = password = None
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        username, sep, password = userinfo.partition(":")
        if not sep:
            password = None
    host, port = rest, 8883 if tls else 1883
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif ":" in rest:
        host, port_text = rest.rsplit(":", 1)
        port = int(port_text)
    if not host:
        raise ValueError("no broker host in %r" % text)
    return tls, host, port, username, password


def signaling_url(text):
    """(tls, host, port, MQTT account) of any signaling URL: tls://, tcp://
    or bare host:port (the account None), mqtt:// or mqtts:// (the account
    (username, password): camlink.mqtt_signal)."""
    if text.startswith("mqtt"):
        tls, host, port, username, password = parse_mqtt_url(text)
        return tls, host, port, (username, password)
    tls, host, port = parse_url(text)
    return tls, host, port, None


class SignalingClient:
    """One connection to the signaling server. `dropped` counts lines that were
    too long, `malformed` lines that were not a JSON object; both are skipped."""

    def __init__(self, max_line=MAX_LINE):
        self.max_line = max_line
        self.id = None
        self.room = None
        self.dropped = 0
        self.malformed = 0
        self.error = None  # why the connection ended, when it failed
        self._reader = None
        self._writer = None
        self._parts = []  # pieces of the line being read
        self._size = 0
        self._skipping = False  # inside a line already counted as dropped
        self._rest = b""  # read past the last line end
        self._pending = []  # messages that arrived while join() waited

    async def connect(self, host, port, tls_context=None):
        """Over TLS when `tls_context` is given (ice.netio.tls_context; the
        server's certificate checked against `host`)."""
        self._reader, self._writer = await netio.open_stream(host, port, tls_context, host)
        netio.tcp_nodelay(self._writer)

    async def join(self, room, role, credential=None):
        """Enter `room` as "camera" or "viewer", with the room credential the
        server may ask for; returns the `joined` message (with `ice_servers`
        when the server hands out TURN credentials). Raises SignalingError
        with the server's reason when refused."""
        msg = {"type": "join", "room": room, "role": role}
        if credential is not None:
            msg["credential"] = credential
        try:
            await self.send(msg)
        except ValueError as e:  # MicroPython: a failed TLS check surfaces at the first write
            raise SignalingError("TLS: %s" % (e,))
        while True:
            msg = await self._next()
            if msg is None:
                raise SignalingError(self.error or "connection closed")
            kind = msg.get("type")
            if kind == "joined":
                self.id = msg.get("id")
                self.room = msg.get("room")
                return msg
            if kind == "error":
                raise SignalingError(msg.get("reason", "refused"))
            self._pending.append(msg)

    async def send(self, msg):
        self._writer.write(json.dumps(msg).encode() + b"\n")
        await self._writer.drain()

    async def recv(self):
        """The next message (a dict), or None once the server has closed."""
        if self._pending:
            return self._pending.pop(0)
        return await self._next()

    async def close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _next(self):
        while True:
            line = await self._line()
            if line is None:
                return None
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except (ValueError, MemoryError, RuntimeError):  # deep nesting: MemoryError on a
                # small heap, RecursionError (a RuntimeError) on CPython
                msg = None
            if isinstance(msg, dict):
                return msg
            self.malformed += 1

    async def _line(self):
        # Bounded readline: a longer line is counted and skipped as it arrives,
        # never held whole (plain readline has no limit on MicroPython).
        while True:
            data, self._rest = self._rest, b""
            if not data:
                try:
                    data = await self._reader.read(_READ_SIZE)
                except (OSError, ValueError) as e:  # ValueError: MicroPython's TLS (its handshake is in the first read)
                    self.error = "%s" % (e,)
                    data = b""
                if not data:
                    self._parts, self._size, self._skipping = [], 0, False
                    return None
            end = data.find(b"\n")
            if end >= 0:
                self._rest = data[end + 1 :]
                data = data[:end]
            if not self._skipping:
                self._size += len(data)
                if self._size > self.max_line + 1:  # + a possible "\r"
                    self.dropped += 1
                    self._parts, self._skipping = [], True
                else:
                    self._parts.append(data)
            if end < 0:
                continue
            skipped, self._skipping = self._skipping, False
            parts, self._parts, self._size = self._parts, [], 0
            if skipped:
                continue
            line = b"".join(parts)
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                self.dropped += 1
                continue
            try:
                return line.decode()
            except UnicodeError:
                self.malformed += 1
