"""Signaling through an MQTT broker for host programs (the CPython viewer,
benchmarks): the topics and messages of camlink.mqtt_signal, spoken by
aiomqtt (on paho-mqtt), a maintained client independent of the camera's.

    client = HostMqttSignalingClient()
    await client.connect(host, port, tls_context, username, password)
    joined = await client.join(room, "viewer")     # then send / recv / close

It reconnects by itself with backoff; a message sent while the broker is
away raises OSError (the caller's session goes on over ICE meanwhile).
"""

import asyncio
import json
import socket

import aiomqtt

from camlink.mqtt_signal import MqttSignalingClient
from camlink.signal import SignalingError

_RETRY_S = (0.5, 30.0)
# Small messages one after another: without TCP_NODELAY (paho leaves Nagle
# on) each waits ~40 ms behind the last one's delayed ACK.
_NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class HostMqttSignalingClient(MqttSignalingClient):
    """camlink.mqtt_signal's client with aiomqtt underneath."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._aclient = None
        self._ready = asyncio.Event()

    async def join(self, room, role, credential=None):
        self.room, self.role = room, role
        self._supervisor = asyncio.create_task(self._run())
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([waiter, self._supervisor], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            waiter.cancel()
            self._closing = True
            self._supervisor.cancel()
            raise SignalingError(self.error or "no answer from the broker")
        return {"type": "joined", "id": self.id, "room": room, "peers": []}

    async def _run(self):
        host, port, tls, username, password = self._broker
        presence = self._topic("presence", self.id)
        wait_s = _RETRY_S[0]
        while not self._closing:
            try:
                async with aiomqtt.Client(host, port, username=username, password=password, identifier=self.id,
                                          tls_context=tls, keepalive=30, socket_options=_NO_DELAY,
                                          protocol=aiomqtt.ProtocolVersion.V311,
                                          will=aiomqtt.Will(presence, b"", 1, True)) as client:
                    await client.subscribe([(self._topic("presence", "+"), 1),
                                            (self._topic("to", self.id, "from", "+"), 1)])
                    await client.publish(presence, json.dumps({"role": self.role}), qos=1, retain=True)
                    self._aclient = client
                    self.connections += 1
                    self._ready.set()
                    wait_s = _RETRY_S[0]
                    async for message in client.messages:
                        self._on_message(message.topic.value, bytes(message.payload))
            except aiomqtt.MqttError as e:
                self.error = str(e)
                if not self._ready.is_set() and ("not authori" in self.error.lower() or "bad user" in self.error.lower()):
                    return  # refused: join() says why
            finally:
                self._aclient = None
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, _RETRY_S[1])

    def _is_up(self):
        return self._aclient is not None

    async def send(self, msg):
        client = self._aclient
        to = msg.get("to")
        if not isinstance(to, str) or not to:
            raise ValueError("a message over MQTT needs a `to`")
        if client is None:
            raise OSError("not connected to the broker (%s)" % self.error)
        try:
            await client.publish(self._topic("to", to, "from", self.id), json.dumps(msg), qos=1)
        except aiomqtt.MqttError as e:
            raise OSError(str(e))

    async def close(self):
        self._closing = True
        self._arrived.set()
        client = self._aclient
        if client is not None:
            try:
                await client.publish(self._topic("presence", self.id), b"", qos=1, retain=True)
            except aiomqtt.MqttError:
                pass
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)


class Bridge:
    """tools/signaling.py's bridge to a broker (--mqtt-bridge): a browser or
    device that joins the server over WebSocket or TCP is given an MQTT
    client of its own in the broker's room, so it meets cameras that signal
    through the broker with the protocol it already speaks. The broker
    accounts stay on the server (`accounts`: room -> password); the peer's
    id is its MQTT client id."""

    def __init__(self, host, port, tls, accounts):
        self.host, self.port, self.tls = host, port, tls
        self.accounts = dict(accounts)
        self.clients = {}  # peer -> HostMqttSignalingClient

    def can_join(self, room):
        return room in self.accounts

    def join(self, peer, room, role, ice_servers_for=lambda peer_id: []):
        """Join `room` for `peer` in the background; `peer.send` gets the
        `joined` (or an `error`) and then every message for it. The `joined`
        carries `ice_servers_for(peer id)` as the server's own does."""
        task = asyncio.ensure_future(self._run(peer, room, role, ice_servers_for))
        peer.bridge_task = task

    async def _run(self, peer, room, role, ice_servers_for):
        client = HostMqttSignalingClient()
        await client.connect(self.host, self.port, self.tls, room, self.accounts[room])
        try:
            joined = await client.join(room, role)
        except SignalingError as e:
            peer.room = peer.role = None
            peer.send({"type": "error", "reason": "the broker refused: %s" % e})
            return
        self.clients[peer] = client
        peer.id = client.id
        servers = ice_servers_for(peer.id)
        if servers:
            joined["ice_servers"] = servers
        peer.send(joined)
        try:
            while True:
                msg = await client.recv()
                if msg is None:
                    return
                peer.send(msg)
        finally:
            self.clients.pop(peer, None)

    def forward(self, peer, msg):
        client = self.clients.get(peer)
        if client is None:
            peer.send({"type": "error", "reason": "not joined yet"})
            return
        task = asyncio.ensure_future(client.send(msg))
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or peer.send(
            {"type": "error", "reason": "the broker is away: %s" % t.exception()}))

    def leave(self, peer):
        client = self.clients.pop(peer, None)
        task = getattr(peer, "bridge_task", None)
        if task is not None:
            task.cancel()
        if client is not None:
            asyncio.ensure_future(client.close())
