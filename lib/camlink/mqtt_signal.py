"""Signaling over an MQTT broker (firmware/PROTOCOL.md, "Over MQTT"): the
messages of the JSON protocol, carried by topics instead of the signaling
server, with the same client interface as camlink.signal.SignalingClient
(connect, join, send, recv, close). Runs on MicroPython and CPython
(camlink.mqtt underneath).

Topics, under a prefix (default "icecam"), room R, peer ids:
    <prefix>/R/presence/<id>           retained {"role": ...}; emptied on leave,
                                       and by the broker (the will) when a
                                       peer vanishes
    <prefix>/R/to/<to>/from/<from>     one message for <to>

The broker's ACL (tools/mosquitto.acl) lets a client of room R (its
username) read only R's presence and its own inbox, and write only its own
presence and messages whose <from> is its own client id, so `from` cannot
be forged and rooms cannot see each other.

QoS 1 for everything: a lost candidate or credentials message costs a
session and a lost presence a viewer's view of the camera; a duplicate
costs nothing (candidates and credentials are idempotent, sealed messages
carry sequence numbers). The connection comes back by itself after the
broker or the network goes away: subscriptions and presence are made
again, and recv() goes on.
"""

import json

import asyncio

from camlink.mqtt import MqttClient, MqttError
from camlink.signal import SignalingError
from ice import netio
from ice.compat import random_token

PREFIX = "icecam"
MAX_MESSAGE = 65536
_INBOX = 64  # messages waiting for recv(); more are dropped and counted
_RETRY_MS = (500, 30000)  # reconnect backoff: first, longest
# A peer's presence emptied is taken as its leaving only if our own
# connection holds this long: a broker shutting down publishes every
# client's will just before it cuts them all, and the peers are back when
# it is.
_LEAVE_GRACE_MS = 2000


class MqttSignalingClient:
    """See the module docstring. `dropped`: messages too long or over the
    inbox; `malformed`: payloads that are not a JSON object."""

    def __init__(self, prefix=PREFIX, keepalive_s=30):
        self.prefix = prefix
        self.id = random_token(8).replace("+", "x").replace("/", "y")  # a topic level: no wildcards
        self.room = None
        self.role = None
        self._dropped = 0
        self.malformed = 0
        self.error = None
        self._broker = ("", 0, None, None, None)  # (host, port, TLS context, username, password)
        self._peers = {}  # id -> role, from presence
        self._leaving = []  # peers whose presence went, within the grace period
        self.connections = 0  # connections made so far
        self._inbox = []
        self._arrived = asyncio.Event()
        self._closing = False
        self._supervisor = None
        self._client = MqttClient(self.id, self._on_message, keepalive_s, MAX_MESSAGE + 512)

    @property
    def reconnects(self):
        return max(0, self.connections - 1)

    @property
    def dropped(self):
        """Messages too long (skipped by the MQTT client as they arrived, or
        after) or beyond the inbox."""
        return self._dropped + self._client.counters["oversized"]

    # ---- SignalingClient's interface -------------------------------------------------

    async def connect(self, host, port, tls_context=None, username=None, password=None):
        """Remember the broker; the connection opens in join() (its will names the room)."""
        self._broker = (host, port, tls_context, username, password)

    async def join(self, room, role, credential=None):
        """Announce ourselves in `room`; returns a `joined` message. The peers
        already there arrive as `peer-joined` messages (their retained
        presence). `credential` is unused: the broker's own login admits."""
        self.room, self.role = room, role
        try:
            await self._open()
        except MqttError as e:
            raise SignalingError("%s" % (e,))
        self._supervisor = asyncio.create_task(self._supervise())
        return {"type": "joined", "id": self.id, "room": room, "peers": []}

    async def send(self, msg):
        to = msg.get("to")
        if not isinstance(to, str) or not to:
            raise ValueError("a message over MQTT needs a `to`")
        await self._client.publish(self._topic("to", to, "from", self.id), json.dumps(msg), qos=1)

    async def recv(self):
        """The next message (a dict), or None once closed."""
        while not self._inbox:
            if self._closing:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        return self._inbox.pop(0)

    async def close(self):
        self._closing = True
        self._arrived.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._client.connected and self.room is not None:
            try:
                await self._client.publish(self._topic("presence", self.id), b"", qos=1, retain=True)
            except OSError:
                pass
        await self._client.disconnect()

    # ---- inside ---------------------------------------------------------------------

    def _topic(self, *levels):
        return "/".join((self.prefix, self.room or "") + levels)

    async def _open(self):
        host, port, tls, username, password = self._broker
        presence = self._topic("presence", self.id)
        await self._client.connect(host, port, tls, username, password, will=(presence, b"", 1, True))
        await self._client.subscribe([(self._topic("presence", "+"), 1), (self._topic("to", self.id, "from", "+"), 1)])
        await self._client.publish(presence, json.dumps({"role": self.role}), qos=1, retain=True)
        self.connections += 1

    def _is_up(self):
        return self._client.connected

    async def _confirm_leaving(self, peer):
        connections = self.connections
        await netio.sleep_ms(_LEAVE_GRACE_MS)
        if peer not in self._leaving:
            return  # it announced itself again
        self._leaving.remove(peer)
        if self._is_up() and self.connections == connections:
            self._peers.pop(peer, None)
            self._queue({"type": "peer-left", "id": peer})

    async def _supervise(self):
        """Connect again whenever the connection ends, backing off."""
        wait_ms = _RETRY_MS[0]
        while not self._closing:
            await self._client.closed.wait()
            if self._closing:
                return
            self.error = self._client.error
            while not self._closing:
                await netio.sleep_ms(wait_ms)
                try:
                    await self._open()
                    wait_ms = _RETRY_MS[0]
                    break
                except (OSError, MqttError) as e:
                    self.error = "%s" % (e,)
                    await self._client.disconnect()
                    wait_ms = min(wait_ms * 2, _RETRY_MS[1])

    def _queue(self, msg):
        if len(self._inbox) >= _INBOX:
            self._dropped += 1
            return
        self._inbox.append(msg)
        self._arrived.set()

    def _on_message(self, topic, payload):
        levels = topic.split("/")
        if len(levels) == 4 and levels[2] == "presence":
            self._on_presence(levels[3], payload)
        elif len(levels) == 6 and levels[2] == "to" and levels[3] == self.id and levels[4] == "from":
            msg = self._decode(payload)
            if msg is not None:
                msg["from"] = levels[5]  # the broker's ACL made sure of it
                self._queue(msg)

    def _on_presence(self, peer, payload):
        if peer == self.id:
            return
        if not payload:
            if peer in self._peers and peer not in self._leaving:
                self._leaving.append(peer)
                asyncio.create_task(self._confirm_leaving(peer))
            return
        msg = self._decode(payload)
        role = msg.get("role") if msg is not None else None
        if role not in ("camera", "viewer"):
            if msg is not None:
                self.malformed += 1
            return
        if peer in self._leaving:
            self._leaving.remove(peer)  # back: it never left
        if peer not in self._peers:  # seen again after a reconnect: nothing new
            self._peers[peer] = role
            self._queue({"type": "peer-joined", "id": peer, "role": role})

    def _decode(self, payload):
        if len(payload) > MAX_MESSAGE:
            self._dropped += 1
            return None
        try:
            msg = json.loads(payload)
        except (ValueError, MemoryError, RuntimeError, UnicodeError):
            msg = None
        if not isinstance(msg, dict):
            self.malformed += 1
            return None
        return msg
