"""Signaling server: cameras and viewers meet in rooms (firmware/PROTOCOL.md).

    python tools/signaling.py --host 127.0.0.1 --tcp-port 8765 --http-port 8080 [--static DIR]
        [--ice-servers '[{"urls": "stun:stun.example.org:3478"}]']

Two transports feed the same rooms: one JSON object per line over TCP (devices,
the CPython viewer) and one JSON object per WebSocket text message on
`GET /ws` of the HTTP port (browsers). The HTTP port also serves `--static DIR`,
by default tools/web/: the browser viewer page (`GET /?room=NAME`).
CPython 3.11+ with the `websockets` package, whose asyncio server runs the HTTP
port: it parses requests, does the RFC 6455 handshake, framing and closing,
and our `process_request` hook answers every plain HTTP request (static files,
refusals). `serve()` runs it all inside another event loop.

Rules beyond the protocol table:
- `bye` (with or without `to`) is forwarded when it has a `to`, then the sender
  leaves its room and the others get `peer-left`; the connection stays open.
- `to` must name a peer in the sender's own room, and the server's own types
  (join, joined, peer-joined, peer-left, error) are never forwarded, so a peer
  cannot forge them. A client-supplied `from` is overwritten.
- Every refusal is an `error` and the connection stays open, except on caps of
  total connections (the error, then close), WebSocket protocol violations
  (websockets fails the connection with a close frame, RFC 6455 section 7.1.7)
  and WebSocket messages over 128 KiB (websockets closes with 1009).
- Limits: 64 KiB per line or message (also after `from` is added), nesting
  depth 8, 64 rooms, 16 peers a room, 256 sockets; a peer that leaves 1 MiB
  of our writes unread is disconnected.
- Logs: one line per join and leave on stderr, never a message body (they
  carry ICE passwords).
- Admission (tools/admission.py): `--room-secret` makes a join need a room
  credential, `--joins-per-minute` caps joins per address, `--turn-secret`
  hands out TURN credentials that expire (`--turn-ttl`; fresh ones go to
  every joined peer each half of it); `--tls-cert/--tls-key` serve TLS.
- `--ice-servers JSON`: RTCIceServer entries every `joined` carries in
  `ice_servers` (before the TURN credentials of `--turn-secret`), so pages
  learn the site's STUN and TURN servers.
- `--mqtt-bridge URL --mqtt-accounts FILE`: the rooms live on an MQTT broker
  (camlink.mqtt_signal); each client here gets an MQTT client of its own in
  its room (tools/mqtt_signaling.Bridge), so browsers meet cameras that
  signal through the broker.
"""

import argparse
import asyncio
import http
import json
import os
import secrets
import socket
import sys
import urllib.parse

import admission

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

MAX_MESSAGE = 64 * 1024  # bytes of one line or one WebSocket message
MAX_ROOMS = 64
MAX_PEERS = 16  # per room, camera included
MAX_CONNECTIONS = 256  # TCP and HTTP/WebSocket together
MAX_ROOM_NAME = 64
MAX_DEPTH = 8  # nesting of a message; protocol messages need 3, boards have small heaps
MAX_SEND_BUFFER = 1024 * 1024  # a peer that does not read this much is dropped
MAX_HEADERS = 16 * 1024  # request line and headers; see _head_size()
# websockets buffers a whole message before we see it: up to this size the
# client gets our "message too long" error, beyond it the library closes with
# 1009 (RFC 6455 section 7.4.1).
WS_MAX_SIZE = 2 * MAX_MESSAGE
HTTP_TIMEOUT = 10.0  # to send a request and receive our answer (websockets' open_timeout)
KEEPALIVE_IDLE_S = 60  # a silent device connection is probed after this
KEEPALIVE_INTERVAL_S = 10
CLOSE_TIMEOUT = 2.0
ROLES = ("camera", "viewer")
WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")  # the viewer page
SERVER_TYPES = ("join", "joined", "peer-joined", "peer-left", "error", "ice-servers")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
}


def log(text):
    sys.stderr.write("signaling: %s\n" % text)
    sys.stderr.flush()


def encode(msg):
    """Compact UTF-8 JSON; escaped ASCII when a lone surrogate (which JSON
    allows and UTF-8 cannot carry) would make an invalid text frame."""
    try:
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(msg, separators=(",", ":")).encode()


def _reject_constant(name):
    raise ValueError("not JSON: " + name)  # NaN/Infinity, which browsers cannot parse


def _depth(value, limit):
    """True when `value` nests no deeper than `limit` containers."""
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return True
    if limit == 0:
        return False
    return all(_depth(v, limit - 1) for v in value)


class Peer:
    """One joined-or-joinable client connection; `kind` is "tcp" or "ws".
    `writer` is an asyncio StreamWriter (TCP) or a websockets ServerConnection."""

    kind = "?"

    def __init__(self, writer, address=None):
        self.writer = writer
        self.address = address  # the client's IP, for the join limit
        self.id = None
        self.room = None
        self.role = None
        self.closed = False  # aborted

    def send(self, msg):
        self.send_raw(encode(msg))

    def send_raw(self, data):
        if self._writable():
            self._write(data)

    def _writable(self):
        transport = self.writer.transport
        if self.closed or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > MAX_SEND_BUFFER:
            self.closed = True
            transport.abort()  # a stalled reader must not grow our memory
            return False
        return True

    def _write(self, data):
        raise NotImplementedError


class TcpPeer(Peer):
    kind = "tcp"

    def _write(self, data):
        self.writer.write(data + b"\n")


class WsPeer(Peer):
    kind = "ws"

    def _write(self, data):
        # The library's synchronous send (the Hub does not await); it skips a
        # connection that is already closing. `data` is valid UTF-8 (encode()).
        broadcast((self.writer,), data, text=True)


class Hub:
    """Rooms and the rules of firmware/PROTOCOL.md, shared by both transports.
    Admission (tools/admission.py): with `room_secret` a join needs a room
    credential; `limiter` caps joins per address; with `turn` =
    (secret, [URI...], seconds) each `joined` carries TURN credentials that
    expire after that long, after the `ice_servers` entries given here."""

    def __init__(self, max_rooms=MAX_ROOMS, max_peers=MAX_PEERS, room_secret=None, limiter=None, turn=None,
                 bridge=None, ice_servers=()):
        self.bridge = bridge  # tools/mqtt_signaling.Bridge: rooms live on an MQTT broker
        self.max_rooms = max_rooms
        self.max_peers = max_peers
        self.room_secret = room_secret
        self.limiter = limiter
        self.turn = turn
        self.ice_servers = list(ice_servers)  # RTCIceServer dicts for every `joined`
        self.refused_joins = 0
        self.rooms = {}  # name -> {id: Peer}, in join order
        self.ids = set()

    def _new_id(self):
        while True:
            peer_id = secrets.token_hex(4)
            if peer_id not in self.ids:
                self.ids.add(peer_id)
                return peer_id

    def handle(self, peer, data):
        """One message (bytes) from `peer`; replies and forwards are written at once."""
        if len(data) > MAX_MESSAGE:
            return peer.send({"type": "error", "reason": "message too long"})
        try:
            msg = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return peer.send({"type": "error", "reason": "invalid JSON"})
        if not isinstance(msg, dict):
            return peer.send({"type": "error", "reason": "message must be a JSON object"})
        if not _depth(msg, MAX_DEPTH):
            return peer.send({"type": "error", "reason": "message nested too deep"})
        kind = msg.get("type")
        if not isinstance(kind, str):
            return peer.send({"type": "error", "reason": "message needs a string type"})
        if kind == "join":
            return self._join(peer, msg)
        if "to" in msg:
            return self._forward(peer, kind, msg)
        if kind == "bye":
            if peer.room is None:
                return peer.send({"type": "error", "reason": "not in a room"})
            return self.leave(peer, "bye")
        peer.send({"type": "error", "reason": "unknown message type"})

    def _refuse_join(self, peer, reason):
        self.refused_joins += 1
        peer.send({"type": "error", "reason": reason})

    def _join(self, peer, msg):
        room, role = msg.get("room"), msg.get("role")
        if peer.room is not None:
            return peer.send({"type": "error", "reason": "already in a room"})
        if self.limiter is not None and not self.limiter.allow(peer.address):
            return self._refuse_join(peer, "too many joins from your address: wait a moment")
        if not isinstance(room, str) or not 1 <= len(room) <= MAX_ROOM_NAME:
            return peer.send({"type": "error", "reason": "room must be a string of 1-%d characters" % MAX_ROOM_NAME})
        if role not in ROLES:
            return peer.send({"type": "error", "reason": "role must be camera or viewer"})
        if self.room_secret is not None:
            why = admission.check_room_credential(self.room_secret, msg.get("credential"), room, role)
            if why is not None:
                return self._refuse_join(peer, why)
        if self.bridge is not None:
            if not self.bridge.can_join(room):
                return self._refuse_join(peer, "no such room on the broker")
            peer.room, peer.role = room, role
            log("join room=%s role=%s via=%s bridged to the broker" % (ascii(room), role, peer.kind))
            return self.bridge.join(peer, room, role, self._ice_servers_for)
        members = self.rooms.get(room)
        if members is None and len(self.rooms) >= self.max_rooms:
            return peer.send({"type": "error", "reason": "too many rooms"})
        members = members or {}
        if len(members) >= self.max_peers:
            return peer.send({"type": "error", "reason": "room is full"})
        if role == "camera" and any(p.role == "camera" for p in members.values()):
            return peer.send({"type": "error", "reason": "room already has a camera"})
        peer.id, peer.room, peer.role = self._new_id(), room, role
        joined = {"type": "joined", "id": peer.id, "room": room,
                  "peers": [{"id": p.id, "role": p.role} for p in members.values()]}
        servers = self._ice_servers_for(peer.id)
        if servers:
            joined["ice_servers"] = servers
        peer.send(joined)
        for other in members.values():
            other.send({"type": "peer-joined", "id": peer.id, "role": role})
        members[peer.id] = peer
        self.rooms[room] = members
        log("join room=%s id=%s role=%s via=%s peers=%d" % (ascii(room), peer.id, role, peer.kind, len(members)))

    def _ice_servers_for(self, peer_id):
        """The RTCIceServer dicts for `peer_id`'s `joined` and renewals: the
        configured ones, then TURN credentials made for this peer."""
        servers = list(self.ice_servers)
        if self.turn is not None:
            secret, urls, ttl_s = self.turn
            username, password = admission.turn_credentials(secret, peer_id, ttl_s)
            servers.append({"urls": list(urls), "username": username, "credential": password})
        return servers

    def renew_turn_credentials(self):
        """Fresh TURN credentials to every joined peer (`ice-servers`), so
        one that stays joined longer than they last can still allocate."""
        peers = [p for members in self.rooms.values() for p in members.values()]
        if self.bridge is not None:
            peers += list(self.bridge.clients)
        for peer in peers:
            peer.send({"type": "ice-servers", "ice_servers": self._ice_servers_for(peer.id)})

    def _forward(self, peer, kind, msg):
        to = msg["to"]
        if peer.room is None:
            return peer.send({"type": "error", "reason": "join a room first"})
        if kind in SERVER_TYPES:
            return peer.send({"type": "error", "reason": "type %s is not forwarded" % kind})
        if self.bridge is not None:
            return self.bridge.forward(peer, msg)
        target = self.rooms[peer.room].get(to) if isinstance(to, str) else None
        if target is None:
            return peer.send({"type": "error", "reason": "unknown peer id"})
        msg["from"] = peer.id
        data = encode(msg)
        if len(data) > MAX_MESSAGE:  # `from` (or escapes) can grow it; receivers cap at 64 KiB
            return peer.send({"type": "error", "reason": "message too long"})
        target.send_raw(data)
        if kind == "bye":
            self.leave(peer, "bye")

    def leave(self, peer, why):
        """Take `peer` out of its room (if any) and tell the others."""
        if peer.room is None:
            return
        if self.bridge is not None:
            self.bridge.leave(peer)
            peer.id = peer.room = peer.role = None
            return
        members = self.rooms[peer.room]
        del members[peer.id]
        self.ids.discard(peer.id)
        if not members:
            del self.rooms[peer.room]
        for other in members.values():
            other.send({"type": "peer-left", "id": peer.id})
        log("leave room=%s id=%s (%s) peers=%d" % (ascii(peer.room), peer.id, why, len(members)))
        peer.id = peer.room = peer.role = None


# -- JSON lines over TCP ------------------------------------------------------

async def read_lines(reader, limit=MAX_MESSAGE):
    """Yield each line without its line end, or None once for a line longer
    than `limit` bytes; the rest of that line is discarded as it arrives."""
    buf = bytearray()
    skipping = False
    while True:
        data = await reader.read(65536)
        if not data:
            return
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if skipping:
                skipping = False
            else:
                buf += data[start:end]
                if buf.endswith(b"\r"):
                    del buf[-1]
                yield bytes(buf) if len(buf) <= limit else None
                buf.clear()
            start = end + 1
        if not skipping:
            buf += data[start:]
            if len(buf) > limit + 1:  # +1: a "\r" may still be stripped
                buf.clear()
                skipping = True
                yield None


# -- HTTP and WebSocket (websockets) --------------------------------------------

def _response(status, body, content_type="text/plain; charset=utf-8", extra=()):
    """A whole HTTP response for websockets to send; it closes the connection after it."""
    status = http.HTTPStatus(status)
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Connection", "close"), ("Cache-Control", "no-cache"), *extra])
    return Response(status.value, status.phrase, headers, body)


def _head_size(request):
    """Roughly the bytes of a request's head, CRLFs included. (While reading it,
    websockets holds at most 128 header lines of 8 KiB: its own cap.)"""
    size = len(request.method) + len(request.path) + len(request.protocol) + 4
    return size + sum(len(k) + len(v) + 4 for k, v in request.headers.raw_items()) + 2


def static_path(root, url_path):
    """The file under `root` that `url_path` names, or None; never outside `root`."""
    try:
        path = urllib.parse.unquote(url_path, errors="strict")
    except UnicodeDecodeError:
        return None
    parts = [p for p in path.split("/") if p]
    if "\0" in path or any(p in (".", "..") for p in parts):
        return None
    root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, *parts))
    if full != root and not full.startswith(root + os.sep):
        return None  # a symlink out of root
    if os.path.isdir(full):
        full = os.path.join(full, "index.html")
    return full if os.path.isfile(full) else None


# -- the server -----------------------------------------------------------------

class SignalingServer:
    """Both listeners and the hub; made by `serve()`."""

    def __init__(self, static_dir=None, max_rooms=MAX_ROOMS, max_peers=MAX_PEERS,
                 max_connections=MAX_CONNECTIONS, **admission_options):
        self.hub = Hub(max_rooms, max_peers, **admission_options)
        self.static_dir = static_dir
        self.max_connections = max_connections
        self.open = 0  # admitted sockets: TCP, HTTP and WebSocket
        self.peers = set()
        self.tcp_port = self.http_port = None
        self._servers = []  # the TCP listener
        self._ws = None  # the websockets server on the HTTP port
        self._http = {}  # its connections -> admitted under the cap
        self._closing = False
        self._tasks = set()
        self._writers = set()
        self._renewer = None

    async def start(self, host, tcp_port, http_port, tls=None):
        """`tls`: an ssl.SSLContext for both listeners (wss:// for browsers)."""
        tcp = await asyncio.start_server(self._tcp_client, host, tcp_port, ssl=tls)
        self._servers.append(tcp)
        self.tcp_port = tcp.sockets[0].getsockname()[1]
        owner = self

        class Connection(ServerConnection):
            """Counts each socket under the cap from the moment it is accepted."""

            cutoff = None

            def connection_made(self, transport):
                super().connection_made(transport)
                owner._http_made(self)

            def data_received(self, data):
                super().data_received(data)
                # After the peer's close frame or a protocol error, our close
                # frame and FIN are out and websockets waits for the peer's FIN
                # with no deadline (it has one only when we start the close):
                # give the peer CLOSE_TIMEOUT (RFC 6455 section 7.1.1).
                if self.cutoff is None and self.protocol.close_expected():
                    self.cutoff = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

            def connection_lost(self, exc):
                owner._http_lost(self)
                if self.cutoff is not None:
                    self.cutoff.cancel()
                super().connection_lost(exc)

        self._ws = await ws_serve(
            self._websocket, host, http_port, create_connection=Connection,
            process_request=self._process_request, process_response=_nosniff,
            server_header=None,
            compression=None,  # no extension: RSV bits stay an error (RFC 6455 section 5.2)
            ping_interval=None,  # no keepalive pings, as on the TCP side
            open_timeout=HTTP_TIMEOUT, close_timeout=CLOSE_TIMEOUT,
            max_size=WS_MAX_SIZE, max_queue=4, ssl=tls)
        self.http_port = self._ws.sockets[0].getsockname()[1]
        if self.hub.turn is not None:
            self._renewer = asyncio.ensure_future(self._renew_turn_credentials(self.hub.turn[2]))

    async def _renew_turn_credentials(self, ttl_s):
        """Every half of the credentials' lifetime: each peer always holds
        ones good for at least that long."""
        while True:
            await asyncio.sleep(max(1, ttl_s / 2))
            self.hub.renew_turn_credentials()

    async def close(self):
        self._closing = True
        if self._renewer is not None:
            self._renewer.cancel()
        for server in self._servers:
            server.close()
        if self._ws is not None:
            # websockets sends 1001 (going away, RFC 6455 section 7.4.1) to
            # WebSocket peers; a socket that sent no request yet is cut.
            self._ws.close()
            for conn in list(self._http):
                if conn.request is None:
                    conn.transport.abort()
        # Closing each socket ends its handler at its next read. (Cancelling
        # them instead makes 3.11's stream callback log a CancelledError.)
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in late:
                task.cancel()
        for server in self._servers:
            await server.wait_closed()
        if self._ws is not None:
            await self._ws.wait_closed()

    def _accept(self, writer):
        """Track this TCP handler; True when the socket fits under the cap."""
        task = asyncio.current_task()
        assert task is not None  # a stream callback runs as a task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._writers.add(writer)
        task.add_done_callback(lambda _: self._writers.discard(writer))
        return self._admit()

    def _admit(self):
        if self.open >= self.max_connections:
            return False
        self.open += 1
        return True

    def _gone(self, peer):
        self.hub.leave(peer, "disconnect")
        self.peers.discard(peer)
        peer.closed = True

    async def _tcp_client(self, reader, writer):
        admitted = self._accept(writer)
        _keepalive(writer.get_extra_info("socket"))
        peer = TcpPeer(writer, (writer.get_extra_info("peername") or ("?",))[0])
        try:
            if not admitted:
                peer.send({"type": "error", "reason": "server full"})
                await writer.drain()
                writer.write_eof()
                await _drain_until_eof(reader)  # no reset over unread data
                return
            self.peers.add(peer)
            async for line in read_lines(reader):
                if line is None:
                    peer.send({"type": "error", "reason": "message too long"})
                elif line.strip():
                    self.hub.handle(peer, line)
                await writer.drain()  # back-pressure on a client that sends but does not read
        except (ConnectionError, OSError):
            pass
        finally:
            self._gone(peer)
            self.open -= admitted
            writer.close()

    def _http_made(self, conn):
        if self._closing:
            conn.transport.abort()  # accepted while close() ran
            return
        admitted = self._admit()
        self._http[conn] = admitted
        if not admitted:  # over the cap: less time to say what it wants
            conn.loop.call_later(CLOSE_TIMEOUT, _cut_if_silent, conn)

    def _http_lost(self, conn):
        if self._http.pop(conn, False):
            self.open -= 1

    def _process_request(self, conn, request):
        """Answer a plain HTTP request; None lets websockets do the WebSocket handshake."""
        if _head_size(request) > MAX_HEADERS:
            return _response(431, b"request head too large\n")
        try:
            path = urllib.parse.urlsplit(request.path).path
        except ValueError:
            path = ""
        if not path.startswith("/"):
            return _response(400, b"bad request target\n")
        if path == "/ws":
            # websockets checks the handshake (RFC 6455 section 4.2.1) and
            # refuses with 400, 405 or 426, but it names no version (we do,
            # 4.4) and leaves the Host header to us.
            if "Host" not in request.headers:
                return _response(400, b"no Host header\n")
            if request.method == "GET" and "Upgrade" in request.headers and \
                    request.headers.get_all("Sec-WebSocket-Version") != ["13"]:
                return _response(426, b"WebSocket version 13 only\n", extra=[("Sec-WebSocket-Version", "13")])
            return None
        if not self._http.get(conn):
            return _response(503, b"server full\n")
        return self._static(request.method, path)

    def _static(self, method, path):
        if method not in ("GET", "HEAD"):
            return _response(405, b"method not allowed\n", extra=[("Allow", "GET, HEAD")])
        full = static_path(self.static_dir, path) if self.static_dir else None
        try:
            if full is None:
                raise FileNotFoundError(path)
            with open(full, "rb") as f:
                body = f.read()
        except OSError:
            return _response(404, b"not found\n")
        ext = os.path.splitext(full)[1].lower()
        response = _response(200, body, CONTENT_TYPES.get(ext, "application/octet-stream"))
        if method == "HEAD":
            response.body = b""  # Content-Length stays the file's
        return response

    async def _websocket(self, ws):
        """One WebSocket on /ws, after websockets completed the handshake."""
        peer = WsPeer(ws, (ws.remote_address or ("?",))[0])
        if not self._http.get(ws):  # a browser sees no HTTP status, so refuse inside the socket
            peer.send({"type": "error", "reason": "server full"})
            await ws.close(1013, "server full")  # try again later
            return
        self.peers.add(peer)
        try:
            # Text arrives decoded: websockets fails a connection whose text is
            # not UTF-8 with 1007 (RFC 6455 section 8.1), so encode() restores
            # the bytes that were sent.
            async for message in ws:
                if isinstance(message, str):
                    self.hub.handle(peer, message.encode())
                else:
                    peer.send({"type": "error", "reason": "binary messages are not supported"})
        except ConnectionClosed:
            pass  # websockets has sent its close frame
        finally:
            self._gone(peer)


def _keepalive(sock):
    """TCP keepalive on a device's connection: a camera whose network went
    away without a FIN (power cut, Wi-Fi lost, NAT mapping expired) leaves
    its room after about KEEPALIVE_IDLE_S + 5 x KEEPALIVE_INTERVAL_S."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                        ("TCP_KEEPCNT", 5)):
        if hasattr(socket, name):  # Linux names them; elsewhere the system's defaults hold
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _nosniff(conn, request, response):
    """Every plain HTTP answer, ours or the library's, keeps its content type."""
    if response.status_code != 101:
        response.headers["X-Content-Type-Options"] = "nosniff"


def _cut_if_silent(conn):
    if conn.request is None:
        conn.transport.abort()


async def _drain_until_eof(reader):
    """After our FIN: discard what the client still sends until it closes too
    (or a short timeout), so closing never resets the connection over unread
    data, which could destroy our last message in flight."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while await reader.read(4096):
                pass
    except (TimeoutError, ConnectionError, OSError):
        pass


async def serve(host, tcp_port, http_port, static_dir=None, *, max_rooms=MAX_ROOMS,
                max_peers=MAX_PEERS, max_connections=MAX_CONNECTIONS, tls=None, **admission_options):
    """Start both listeners; ports 0 pick free ones (see `.tcp_port`, `.http_port`).
    `tls`: an ssl.SSLContext; `admission_options`: Hub's room_secret, limiter, turn,
    ice_servers, bridge."""
    server = SignalingServer(static_dir, max_rooms, max_peers, max_connections, **admission_options)
    try:
        await server.start(host, tcp_port, http_port, tls)
    except BaseException:
        await server.close()
        raise
    return server


def parse_ice_servers(text):
    """`--ice-servers`: a JSON list of RTCIceServer dicts ("urls": a URI or
    a list of them; "username" and "credential" text, optional)."""
    try:
        servers = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("not JSON: %s" % exc)
    if not isinstance(servers, list):
        raise argparse.ArgumentTypeError("a JSON list of {\"urls\": ...} objects")
    for entry in servers:
        urls = entry.get("urls") if isinstance(entry, dict) else None
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise argparse.ArgumentTypeError("every entry needs \"urls\": a URI or a list of URIs: %r" % (entry,))
        for key in ("username", "credential"):
            if key in entry and not isinstance(entry[key], str):
                raise argparse.ArgumentTypeError("%s must be text: %r" % (key, entry))
    return servers


def _read_secret(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


async def _main(args):
    tls = None
    if args.tls_cert:
        import ssl

        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    options = {"limiter": admission.JoinLimiter(args.joins_per_minute / 60, burst=max(1, args.joins_per_minute // 6))}  # type: dict
    if args.room_secret:
        options["room_secret"] = _read_secret(args.room_secret)
    if args.mqtt_bridge:
        import json as json_module

        from camlink.signal import parse_mqtt_url
        from mqtt_signaling import Bridge

        tls_broker, host, port, _, _ = parse_mqtt_url(args.mqtt_bridge)
        with open(args.mqtt_accounts) as f:
            accounts = json_module.load(f)
        broker_tls = None
        if tls_broker:
            import ssl

            broker_tls = ssl.create_default_context(cafile=args.mqtt_ca)
        options["bridge"] = Bridge(host, port, broker_tls, accounts)
    if args.turn_secret:
        with open(args.turn_secret) as f:  # coturn keys its HMAC with the text as written
            options["turn"] = (f.read().strip().encode(), args.turn_url, args.turn_ttl)
    if args.ice_servers:
        options["ice_servers"] = args.ice_servers
    server = await serve(args.host, args.tcp_port, args.http_port, args.static,
                         max_rooms=args.max_rooms, max_peers=args.max_peers,
                         max_connections=args.max_connections, tls=tls, **options)
    log("%s %s:%d, http%s %s:%d%s; %s" % (
        "tls" if tls else "tcp", args.host, server.tcp_port, "s" if tls else "", args.host, server.http_port,
        ", static " + args.static if args.static else "",
        "joins need a room credential" if args.room_secret else "open rooms: anyone may join (--room-secret)"))
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tcp-port", type=int, default=8765, help="JSON lines (default 8765)")
    parser.add_argument("--http-port", type=int, default=8080, help="WebSocket /ws and static files (default 8080)")
    parser.add_argument("--static", metavar="DIR", default=WEB_DIR,
                        help="serve files from DIR over HTTP (default: the viewer page, tools/web)")
    parser.add_argument("--ice-servers", metavar="JSON", type=parse_ice_servers,
                        help='RTCIceServer list every joined carries, e.g. \'[{"urls": "stun:stun.example.org:3478"}]\'')
    parser.add_argument("--max-rooms", type=int, default=MAX_ROOMS)
    parser.add_argument("--max-peers", type=int, default=MAX_PEERS, help="per room")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS (and wss://) with this certificate chain")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    parser.add_argument("--room-secret", metavar="FILE",
                        help="hex secret of the room credentials a join must carry (tools/grant.py room)")
    parser.add_argument("--turn-secret", metavar="FILE",
                        help="coturn's static-auth-secret: joins get TURN credentials that expire")
    parser.add_argument("--turn-url", action="append", default=[], metavar="URI",
                        help="turn:/turns: URI the credentials are for, repeatable")
    parser.add_argument("--turn-ttl", type=int, default=86400,
                        help="seconds the TURN credentials last (a relayed session lasts at most this)")
    parser.add_argument("--joins-per-minute", type=int, default=60, help="per client address")
    parser.add_argument("--mqtt-bridge", metavar="URL",
                        help="rooms live on this MQTT broker (mqtt[s]://host[:port]); clients here are bridged to it")
    parser.add_argument("--mqtt-accounts", metavar="JSON", help="the broker accounts: {room: password}")
    parser.add_argument("--mqtt-ca", metavar="PEM", help="CA of an mqtts:// broker (default: the system's)")
    args = parser.parse_args(argv)
    if args.static and not os.path.isdir(args.static):
        parser.error("--static %s is not a directory" % args.static)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.mqtt_bridge and not args.mqtt_accounts:
        parser.error("--mqtt-bridge needs --mqtt-accounts")
    if args.turn_secret and not args.turn_url:
        parser.error("--turn-secret needs at least one --turn-url")
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
