"""Signaling server: cameras and viewers meet in rooms (firmware/PROTOCOL.md).

    python tools/signaling.py --host 127.0.0.1 --tcp-port 8765 --http-port 8080 [--static DIR]

Two transports feed the same rooms: one JSON object per line over TCP (devices,
the CPython viewer) and one JSON object per WebSocket text message on
`GET /ws` of the HTTP port (browsers). The HTTP port also serves `--static DIR`.
CPython 3.11+, stdlib only; `serve()` runs it inside another event loop.

Rules beyond the protocol table:
- `bye` (with or without `to`) is forwarded when it has a `to`, then the sender
  leaves its room and the others get `peer-left`; the connection stays open.
- `to` must name a peer in the sender's own room, and the server's own types
  (join, joined, peer-joined, peer-left, error) are never forwarded, so a peer
  cannot forge them. A client-supplied `from` is overwritten.
- Every refusal is an `error` and the connection stays open, except on caps of
  total connections (the error, then close) and WebSocket protocol violations
  (a close frame, RFC 6455 section 7.1.7).
- Limits: 64 KiB per line or message (also after `from` is added), nesting
  depth 8, 64 rooms, 16 peers a room, 256 sockets; a peer that leaves 1 MiB
  of our writes unread is disconnected.
- Logs: one line per join and leave on stderr, never a message body (they
  carry ICE passwords).
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import struct
import sys
import urllib.parse

MAX_MESSAGE = 64 * 1024  # bytes of one line or one WebSocket message
MAX_ROOMS = 64
MAX_PEERS = 16  # per room, camera included
MAX_CONNECTIONS = 256  # TCP and HTTP/WebSocket together
MAX_ROOM_NAME = 64
MAX_DEPTH = 8  # nesting of a message; protocol messages need 3, boards have small heaps
MAX_SEND_BUFFER = 1024 * 1024  # a peer that does not read this much is dropped
MAX_HEADERS = 16 * 1024
HTTP_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
ROLES = ("camera", "viewer")
SERVER_TYPES = ("join", "joined", "peer-joined", "peer-left", "error")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            426: "Upgrade Required", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


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
    """One joined-or-joinable client connection; `kind` is "tcp" or "ws"."""

    kind = "?"

    def __init__(self, writer):
        self.writer = writer
        self.id = None
        self.room = None
        self.role = None
        self.closed = False  # aborted, or (WebSocket) our close frame is out

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
        self.writer.write(ws_frame(_OP_TEXT, data))

    def pong(self, payload):
        if self._writable():
            self.writer.write(ws_frame(_OP_PONG, payload))  # same application data (5.5.2)

    def send_close(self, code, reason=""):
        if self._writable():
            payload = b"" if code is None else struct.pack(">H", code) + reason.encode()[:123]
            self.writer.write(ws_frame(_OP_CLOSE, payload))
        self.closed = True  # nothing may follow a close frame (RFC 6455 section 5.5.1)


class Hub:
    """Rooms and the rules of firmware/PROTOCOL.md, shared by both transports."""

    def __init__(self, max_rooms=MAX_ROOMS, max_peers=MAX_PEERS):
        self.max_rooms = max_rooms
        self.max_peers = max_peers
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

    def _join(self, peer, msg):
        room, role = msg.get("room"), msg.get("role")
        if peer.room is not None:
            return peer.send({"type": "error", "reason": "already in a room"})
        if not isinstance(room, str) or not 1 <= len(room) <= MAX_ROOM_NAME:
            return peer.send({"type": "error", "reason": "room must be a string of 1-%d characters" % MAX_ROOM_NAME})
        if role not in ROLES:
            return peer.send({"type": "error", "reason": "role must be camera or viewer"})
        members = self.rooms.get(room)
        if members is None and len(self.rooms) >= self.max_rooms:
            return peer.send({"type": "error", "reason": "too many rooms"})
        members = members or {}
        if len(members) >= self.max_peers:
            return peer.send({"type": "error", "reason": "room is full"})
        if role == "camera" and any(p.role == "camera" for p in members.values()):
            return peer.send({"type": "error", "reason": "room already has a camera"})
        peer.id, peer.room, peer.role = self._new_id(), room, role
        peer.send({"type": "joined", "id": peer.id, "room": room,
                   "peers": [{"id": p.id, "role": p.role} for p in members.values()]})
        for other in members.values():
            other.send({"type": "peer-joined", "id": peer.id, "role": role})
        members[peer.id] = peer
        self.rooms[room] = members
        log("join room=%s id=%s role=%s via=%s peers=%d" % (ascii(room), peer.id, role, peer.kind, len(members)))

    def _forward(self, peer, kind, msg):
        to = msg["to"]
        if peer.room is None:
            return peer.send({"type": "error", "reason": "join a room first"})
        if kind in SERVER_TYPES:
            return peer.send({"type": "error", "reason": "type %s is not forwarded" % kind})
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


# -- WebSocket (RFC 6455) -------------------------------------------------------

def ws_accept(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_frame(opcode, payload):
    """One final, unmasked frame (RFC 6455 sections 5.2; servers never mask, 5.1)."""
    n = len(payload)
    if n < 126:
        return struct.pack(">BB", 0x80 | opcode, n) + payload
    if n < 65536:
        return struct.pack(">BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack(">BBQ", 0x80 | opcode, 127, n) + payload


def ws_unmask(data, key):
    """XOR with the repeating 4-byte key (RFC 6455 section 5.3); its own inverse."""
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def _valid_close_code(code):
    # RFC 6455 section 7.4: 1004-1006 and 1015 are never sent; 1016-2999 are reserved.
    return 1000 <= code <= 1014 and code not in (1004, 1005, 1006) or 3000 <= code <= 4999


class WsFail(Exception):
    """Fail the WebSocket connection with a close code (RFC 6455 section 7.1.7)."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def ws_messages(reader, peer, limit=MAX_MESSAGE):
    """Yield (opcode, payload) per complete data message: payload is None when it
    was longer than `limit` (and discarded). Control frames are answered here.
    Returns after a close frame; raises WsFail on a protocol violation."""
    parts, size, opcode = [], 0, None  # opcode of the message being reassembled
    while True:
        b0, b1 = await reader.readexactly(2)
        fin, frame_op, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
        if b0 & 0x70:
            raise WsFail(1002, "reserved bits set")  # no extension was negotiated (5.2)
        if not b1 & 0x80:
            raise WsFail(1002, "client frames must be masked")  # 5.1
        if length == 126:
            (length,) = struct.unpack(">H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", await reader.readexactly(8))
            if length >> 63:
                raise WsFail(1002, "bad frame length")  # most significant bit must be 0 (5.2)
        key = await reader.readexactly(4)
        if frame_op >= 8:  # control frames: short and unfragmented, may interleave (5.5, 5.4)
            if not fin or length > 125:
                raise WsFail(1002, "bad control frame")
            payload = ws_unmask(await reader.readexactly(length), key)
            if frame_op == _OP_CLOSE:
                await _ws_answer_close(peer, payload)
                return
            if frame_op == _OP_PING:
                peer.pong(payload)
            elif frame_op != _OP_PONG:  # an unsolicited pong is ignored (5.5.3)
                raise WsFail(1002, "unknown opcode")
            continue
        if frame_op == _OP_CONT:
            if opcode is None:
                raise WsFail(1002, "continuation outside a message")  # 5.4
        elif frame_op in (_OP_TEXT, _OP_BINARY):
            if opcode is not None:
                raise WsFail(1002, "new message inside a fragmented one")  # 5.4
            opcode, parts, size = frame_op, [], 0
        else:
            raise WsFail(1002, "unknown opcode")  # reserved opcodes (5.2)
        size += length
        if size > limit or opcode == _OP_BINARY:
            parts = []
            while length:  # discard without buffering
                length -= len(await reader.readexactly(min(length, 65536)))
        else:
            parts.append(ws_unmask(await reader.readexactly(length), key))
        if fin:
            yield opcode, (b"".join(parts) if size <= limit else None)
            opcode, parts = None, []


async def _ws_answer_close(peer, payload):
    """Echo a close frame's status code (RFC 6455 sections 5.5.1, 7.4)."""
    if len(payload) == 1:
        raise WsFail(1002, "bad close frame")
    if payload:
        (code,) = struct.unpack(">H", payload[:2])
        if not _valid_close_code(code):
            raise WsFail(1002, "bad close code")
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise WsFail(1007, "close reason is not UTF-8") from None
        peer.send_close(code)
    else:
        peer.send_close(None)


# -- HTTP ---------------------------------------------------------------------

class HttpError(Exception):
    def __init__(self, status, text, headers=()):
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers


async def read_request(reader):
    """(method, target, version, headers) of one HTTP/1.1 request head."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    try:
        lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise HttpError(400, "bad request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(400, "HTTP/1.x only")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "bad header line")
        name, value = name.lower(), value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return method, target, version, headers


def _tokens(value):
    return {t.strip().lower() for t in value.split(",")}


def http_response(status, body=b"", content_type="text/plain; charset=utf-8", headers=()):
    lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "")),
             "Content-Type: " + content_type, "Content-Length: %d" % len(body),
             "Connection: close", "X-Content-Type-Options: nosniff", "Cache-Control: no-cache"]
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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
                 max_connections=MAX_CONNECTIONS):
        self.hub = Hub(max_rooms, max_peers)
        self.static_dir = static_dir
        self.max_connections = max_connections
        self.open = 0  # admitted sockets: TCP, HTTP and WebSocket
        self.peers = set()
        self.tcp_port = self.http_port = None
        self._servers = []
        self._tasks = set()
        self._writers = set()

    async def start(self, host, tcp_port, http_port):
        tcp = await asyncio.start_server(self._tcp_client, host, tcp_port)
        self._servers.append(tcp)
        http = await asyncio.start_server(self._http_client, host, http_port, limit=MAX_HEADERS)
        self._servers.append(http)
        self.tcp_port = tcp.sockets[0].getsockname()[1]
        self.http_port = http.sockets[0].getsockname()[1]

    async def close(self):
        for server in self._servers:
            server.close()
        for peer in list(self.peers):
            if isinstance(peer, WsPeer):
                peer.send_close(1001)  # going away (7.4.1)
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

    def _accept(self, writer):
        """Track this handler; True when the socket fits under the cap."""
        task = asyncio.current_task()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._writers.add(writer)
        task.add_done_callback(lambda _: self._writers.discard(writer))
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
        peer = TcpPeer(writer)
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

    async def _http_client(self, reader, writer):
        admitted = self._accept(writer)
        try:
            try:
                timeout = HTTP_TIMEOUT if admitted else CLOSE_TIMEOUT
                method, target, _, headers = await asyncio.wait_for(read_request(reader), timeout)
                path = urllib.parse.urlsplit(target).path
                if not path.startswith("/"):
                    raise HttpError(400, "bad request target")
                if path == "/ws":
                    await self._websocket(reader, writer, method, headers, admitted)
                elif not admitted:
                    raise HttpError(503, "server full")
                else:
                    self._static(writer, method, path)
            except HttpError as e:
                body = (e.text + "\n").encode()
                writer.write(http_response(e.status, body, headers=e.headers) + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.open -= admitted
            writer.close()

    def _static(self, writer, method, path):
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "method not allowed", ("Allow: GET, HEAD",))
        full = static_path(self.static_dir, path) if self.static_dir else None
        if full is None:
            raise HttpError(404, "not found")
        with open(full, "rb") as f:
            body = f.read()
        ext = os.path.splitext(full)[1].lower()
        head = http_response(200, body, CONTENT_TYPES.get(ext, "application/octet-stream"))
        writer.write(head if method == "HEAD" else head + body)

    async def _websocket(self, reader, writer, method, headers, admitted):
        # The opening handshake (RFC 6455 section 4.2.1); anything else is refused (4.2.2).
        if method != "GET":
            raise HttpError(405, "method not allowed", ("Allow: GET",))
        key = headers.get("sec-websocket-key", "")
        try:
            key_ok = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            key_ok = False
        if ("websocket" not in _tokens(headers.get("upgrade", ""))
                or "upgrade" not in _tokens(headers.get("connection", ""))
                or "host" not in headers or not key_ok):
            raise HttpError(400, "not a WebSocket handshake")
        if headers.get("sec-websocket-version") != "13":
            raise HttpError(426, "WebSocket version 13 only", ("Sec-WebSocket-Version: 13",))  # 4.4
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept(key)).encode())
        peer = WsPeer(writer)
        if not admitted:  # a browser sees no HTTP status, so refuse inside the socket
            peer.send({"type": "error", "reason": "server full"})
            peer.send_close(1013, "server full")  # try again later
            await writer.drain()
            writer.write_eof()
            await _drain_until_eof(reader)
            return
        self.peers.add(peer)
        try:
            async for opcode, payload in ws_messages(reader, peer):
                if opcode == _OP_BINARY:
                    peer.send({"type": "error", "reason": "binary messages are not supported"})
                elif payload is None:
                    peer.send({"type": "error", "reason": "message too long"})
                else:
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise WsFail(1007, "text is not UTF-8") from None  # 8.1
                    self.hub.handle(peer, payload)
                await writer.drain()
        except WsFail as e:
            peer.send_close(e.code, e.reason)
        finally:
            self._gone(peer)
        # The server ends the TCP connection first (7.1.1): FIN after the close frame.
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        await _drain_until_eof(reader)


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
                max_peers=MAX_PEERS, max_connections=MAX_CONNECTIONS):
    """Start both listeners; ports 0 pick free ones (see `.tcp_port`, `.http_port`)."""
    server = SignalingServer(static_dir, max_rooms, max_peers, max_connections)
    try:
        await server.start(host, tcp_port, http_port)
    except BaseException:
        await server.close()
        raise
    return server


async def _main(args):
    server = await serve(args.host, args.tcp_port, args.http_port, args.static,
                         max_rooms=args.max_rooms, max_peers=args.max_peers,
                         max_connections=args.max_connections)
    log("tcp %s:%d, http %s:%d%s" % (args.host, server.tcp_port, args.host, server.http_port,
                                       ", static " + args.static if args.static else ""))
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tcp-port", type=int, default=8765, help="JSON lines (default 8765)")
    parser.add_argument("--http-port", type=int, default=8080, help="WebSocket /ws and static files (default 8080)")
    parser.add_argument("--static", metavar="DIR", help="serve files from DIR over HTTP")
    parser.add_argument("--max-rooms", type=int, default=MAX_ROOMS)
    parser.add_argument("--max-peers", type=int, default=MAX_PEERS, help="per room")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    args = parser.parse_args(argv)
    if args.static and not os.path.isdir(args.static):
        parser.error("--static %s is not a directory" % args.static)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
