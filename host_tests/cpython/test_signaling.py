"""tools/signaling.py on real sockets: JSON lines over TCP, WebSocket clients
(the `websockets` package's client, and a raw one written here from RFC 6455,
independent of the library the server runs on, for frames no library would
send), static files, hostile input, caps, and the firmware's SignalingClient
(lib/camlink/signal.py) on CPython and on the MicroPython unix port
(mp_signal_camera.py). CPython only."""

import asyncio
import base64
import hashlib
import importlib.util
import json
import os
import signal as os_signal
import socket
import struct
import subprocess
import sys

import pytest
import websockets.asyncio.client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
if os.path.join(ROOT, "firmware") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
from camlink.signal import SignalingClient, SignalingError  # noqa: E402

# tools/ is not a package: load the server by path, keeping tools/ off sys.path.
_spec = importlib.util.spec_from_file_location("signaling", os.path.join(ROOT, "tools", "signaling.py"))
signaling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(signaling)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=5):
    """Wait until predicate() is true (the server acts on a closed socket on its next turn)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class Server:
    """`async with Server(**kw) as srv`: the signaling server on free loopback ports."""

    def __init__(self, static_dir=None, **caps):
        self.static_dir, self.caps = static_dir, caps

    async def __aenter__(self):
        self.srv = await signaling.serve("127.0.0.1", 0, 0, self.static_dir, **self.caps)
        return self.srv

    async def __aexit__(self, *exc):
        await self.srv.close()


class Lines:
    """A raw JSON-lines client, so tests can send anything."""

    @classmethod
    async def open(cls, port):
        self = cls()
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def send(self, msg):
        await self.send_raw(json.dumps(msg, ensure_ascii=False).encode() + b"\n")

    async def send_raw(self, data):
        self.w.write(data)
        await self.w.drain()

    async def recv(self, timeout=5):
        line = await asyncio.wait_for(self.r.readline(), timeout)
        assert line, "connection closed"
        return json.loads(line)

    async def join(self, room, role):
        await self.send({"type": "join", "room": room, "role": role})
        msg = await self.recv()
        assert msg["type"] == "joined", msg
        return msg

    async def closed(self, timeout=5):
        return await asyncio.wait_for(self.r.read(), timeout) == b""

    async def close(self):
        self.w.close()
        try:
            await self.w.wait_closed()
        except OSError:
            pass


class RawWs:
    """A minimal RFC 6455 client written from the RFC, separate from the server's code."""

    @classmethod
    async def open(cls, port, key=None, extra="", sock=None):
        self = cls()
        if sock is None:
            self.r, self.w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        else:
            self.r, self.w = await asyncio.open_connection(sock=sock)
        key = key or base64.b64encode(os.urandom(16)).decode()
        self.w.write(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                      "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n%s\r\n" % (port, key, extra)).encode())
        head = (await self.r.readuntil(b"\r\n\r\n")).decode()
        self.status = int(head.split(" ")[1])
        self.head = head
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert "\r\nSec-WebSocket-Accept: %s\r\n" % accept in head  # RFC 6455 section 4.2.2
        return self

    def frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        n = len(payload)
        first = (0x80 if fin else 0) | rsv << 4 | opcode
        bit = 0x80 if mask else 0
        if n < 126:
            head = bytes([first, bit | n])
        elif n < 65536:
            head = bytes([first, bit | 126]) + struct.pack(">H", n)
        else:
            head = bytes([first, bit | 127]) + struct.pack(">Q", n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    async def send_frame(self, opcode, payload=b"", **kw):
        self.w.write(self.frame(opcode, payload, **kw))
        await self.w.drain()

    async def send(self, msg):
        await self.send_frame(1, json.dumps(msg, ensure_ascii=False).encode())

    async def recv_frame(self, timeout=5):
        async def read():
            b0, b1 = await self.r.readexactly(2)
            assert not b1 & 0x80, "server frames are not masked (RFC 6455 section 5.1)"
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", await self.r.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", await self.r.readexactly(8))
            return b0 & 0x0F, await self.r.readexactly(n)
        return await asyncio.wait_for(read(), timeout)

    async def recv(self, timeout=5):
        opcode, payload = await self.recv_frame(timeout)
        assert opcode == 1, (opcode, payload)
        return json.loads(payload)

    async def expect_close(self, timeout=5):
        """Read up to the server's close frame; its status code (None if empty)."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode == 8:
                return struct.unpack(">H", payload[:2])[0] if payload else None

    async def join(self, room, role):
        await self.send({"type": "join", "room": room, "role": role})
        msg = await self.recv()
        assert msg["type"] == "joined", msg
        return msg

    async def close(self):
        self.w.close()
        try:
            await self.w.wait_closed()
        except OSError:
            pass


async def ws_lib(port):
    """A client from the `websockets` package: an independent implementation."""
    return await websockets.asyncio.client.connect("ws://127.0.0.1:%d/ws" % port)


async def ws_lib_recv(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


# -- rooms, ids, forwarding ---------------------------------------------------

def test_join_gives_ids_and_lists_peers_on_both_transports():
    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            joined = await cam.join("garage", "camera")
            assert joined["room"] == "garage" and joined["peers"] == [] and joined["id"]
            viewer = await ws_lib(srv.http_port)
            await viewer.send(json.dumps({"type": "join", "room": "garage", "role": "viewer"}))
            vj = await ws_lib_recv(viewer)
            assert vj["type"] == "joined" and vj["peers"] == [{"id": joined["id"], "role": "camera"}]
            assert vj["id"] != joined["id"]
            assert await cam.recv() == {"type": "peer-joined", "id": vj["id"], "role": "viewer"}
            v2 = await RawWs.open(srv.http_port)
            v2j = await v2.join("garage", "viewer")
            assert v2j["peers"] == [{"id": joined["id"], "role": "camera"}, {"id": vj["id"], "role": "viewer"}]
            assert (await cam.recv())["id"] == v2j["id"]
            assert (await ws_lib_recv(viewer))["type"] == "peer-joined"
            other = await Lines.open(srv.tcp_port)
            assert (await other.join("attic", "viewer"))["peers"] == []  # rooms are separate
            for c in (cam, v2, other):
                await c.close()
            await viewer.close()

    run(main())


def test_forward_tcp_to_tcp_adds_from_and_overwrites_a_forged_one():
    async def main():
        async with Server() as srv:
            cam, viewer = await Lines.open(srv.tcp_port), await Lines.open(srv.tcp_port)
            cam_id = (await cam.join("r", "camera"))["id"]
            viewer_id = (await viewer.join("r", "viewer"))["id"]
            await cam.recv()  # peer-joined
            await viewer.send({"type": "ice", "to": cam_id, "ufrag": "u", "pwd": "p", "from": "forged"})
            assert await cam.recv() == {"type": "ice", "to": cam_id, "ufrag": "u", "pwd": "p", "from": viewer_id}
            await cam.send({"type": "candidate", "to": viewer_id, "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"})
            got = await viewer.recv()
            assert got["from"] == cam_id and got["candidate"].startswith("candidate:1")
            await cam.close()
            await viewer.close()

    run(main())


@pytest.mark.parametrize("ws_kind", ["websockets", "raw"])
def test_forward_between_tcp_and_websocket(ws_kind):
    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            cam_id = (await cam.join("r", "camera"))["id"]
            if ws_kind == "websockets":
                ws = await ws_lib(srv.http_port)
                send = lambda m: ws.send(json.dumps(m, ensure_ascii=False))  # noqa: E731
                recv = lambda: ws_lib_recv(ws)  # noqa: E731
            else:
                ws = await RawWs.open(srv.http_port)
                send, recv = ws.send, ws.recv
            await send({"type": "join", "room": "r", "role": "viewer"})
            viewer_id = (await recv())["id"]
            await cam.recv()
            sdp = "v=0\r\n" + "a=x:" + "é" * 30000 + "\r\n"  # 60 KB as UTF-8, near the cap
            await send({"type": "sdp", "kind": "offer", "sdp": sdp, "to": cam_id})  # WebSocket -> TCP
            got = await cam.recv()
            assert got["sdp"] == sdp and got["from"] == viewer_id
            await cam.send({"type": "sdp", "kind": "answer", "sdp": "v=0 ü", "to": viewer_id})  # TCP -> WebSocket
            got = await recv()
            assert got == {"type": "sdp", "kind": "answer", "sdp": "v=0 ü", "to": viewer_id, "from": cam_id}
            if ws_kind == "websockets":
                await asyncio.wait_for(await ws.ping(b"keepalive"), 5)  # answered with a pong (5.5.2)
            await ws.close()
            assert await cam.recv() == {"type": "peer-left", "id": viewer_id}
            await cam.close()

    run(main())


def test_peer_left_on_disconnect_and_on_bye():
    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            cam_id = (await cam.join("r", "camera"))["id"]
            tcp_viewer, ws_viewer = await Lines.open(srv.tcp_port), await RawWs.open(srv.http_port)
            tid = (await tcp_viewer.join("r", "viewer"))["id"]
            wid = (await ws_viewer.join("r", "viewer"))["id"]
            await cam.recv(), await cam.recv(), await tcp_viewer.recv()
            await tcp_viewer.close()
            assert await cam.recv() == {"type": "peer-left", "id": tid}
            assert await ws_viewer.recv() == {"type": "peer-left", "id": tid}
            # bye: forwarded, then the sender leaves; its connection stays open
            await ws_viewer.send({"type": "bye", "to": cam_id})
            assert await cam.recv() == {"type": "bye", "to": cam_id, "from": wid}
            assert await cam.recv() == {"type": "peer-left", "id": wid}
            again = await ws_viewer.join("r", "viewer")
            assert again["id"] != wid and again["peers"] == [{"id": cam_id, "role": "camera"}]
            await cam.recv()
            await cam.send({"type": "bye"})  # without `to`: just leave
            assert await ws_viewer.recv() == {"type": "peer-left", "id": cam_id}
            await ws_viewer.send_frame(8, struct.pack(">H", 1000))  # close handshake (5.5.1)
            assert await ws_viewer.expect_close() == 1000
            assert await asyncio.wait_for(ws_viewer.r.read(), 5) == b""  # the server closes TCP (7.1.1)
            await ws_viewer.close()
            await until(lambda: "r" not in srv.hub.rooms)  # an empty room is gone
            cam2 = await Lines.open(srv.tcp_port)
            await cam2.join("r", "camera")  # the camera's bye freed the slot
            await cam.close()
            await cam2.close()
        assert srv.hub.rooms == {} and srv.open == 0

    run(main())


def test_second_camera_is_refused_and_stays_connected():
    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            await cam.join("r", "camera")
            second = await RawWs.open(srv.http_port)
            await second.send({"type": "join", "room": "r", "role": "camera"})
            assert await second.recv() == {"type": "error", "reason": "room already has a camera"}
            await second.join("r", "viewer")  # still open, can join otherwise
            await cam.close()
            await second.close()

    run(main())


# -- hostile input: an error, and the connection stays open ---------------------

HOSTILE_LINES = {
    "too-long": b'{"type":"x","pad":"' + b"a" * 70000 + b'"}',
    "too-long-no-json": b"x" * 200000,
    "invalid-json": b'{"type": "join", ',
    "invalid-utf8": b'{"type":"\xff\xfe"}',
    "array": b"[1, 2]",
    "string": b'"join"',
    "number": b"3",
    "null": b"null",
    "nan": b'{"type":"x","to":"a","n":NaN}',
    "deep": b'{"type":"x","a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "deeper-than-boards-take": b'{"type":"x","to":"a","a":' + b"[" * 20 + b"]" * 20 + b"}",
    "no-type": b'{"to":"a"}',
    "type-not-string": b'{"type":1}',
    "unknown-type": b'{"type":"hello"}',
    "to-before-join": b'{"type":"ice","to":"abc"}',
    "bye-before-join": b'{"type":"bye"}',
    "join-bad-role": b'{"type":"join","room":"r","role":"admin"}',
    "join-bad-room": b'{"type":"join","room":"","role":"viewer"}',
    "join-long-room": b'{"type":"join","room":"' + b"r" * 65 + b'","role":"viewer"}',
    "join-room-not-string": b'{"type":"join","room":["r"],"role":"viewer"}',
}


@pytest.mark.parametrize("name", list(HOSTILE_LINES))
def test_hostile_line_gets_an_error_and_the_connection_stays_open(name):
    async def main():
        async with Server() as srv:
            c = await Lines.open(srv.tcp_port)
            join = b'{"type":"join","room":"r","role":"viewer"}\n'
            await c.send_raw(HOSTILE_LINES[name] + b"\n" + join)  # the next line, in the same write
            msg = await c.recv()
            assert msg["type"] == "error" and isinstance(msg["reason"], str), msg
            assert (await c.recv())["type"] == "joined"
            await c.close()

    run(main())


HOSTILE_JOINED = {
    "to-unknown-id": {"type": "ice", "to": "nobody"},
    "to-not-string": {"type": "ice", "to": 5},
    "to-other-room": {"type": "ice", "to": "OTHER"},
    "forged-server-type": {"type": "peer-left", "id": "CAM", "to": "CAM"},
    "forged-joined": {"type": "joined", "id": "x", "to": "CAM"},
    "forged-ice-servers": {"type": "ice-servers", "ice_servers": [{"urls": "turn:evil.example"}], "to": "CAM"},
    "join-twice": {"type": "join", "room": "r2", "role": "viewer"},
    "grows-past-64k": {"type": "x", "to": "CAM", "s": "FILL"},  # 65530 bytes + "from"
}


@pytest.mark.parametrize("name", list(HOSTILE_JOINED))
@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_hostile_message_after_join_gets_an_error(name, transport):
    async def main():
        async with Server() as srv:
            cam, elsewhere = await Lines.open(srv.tcp_port), await Lines.open(srv.tcp_port)
            cam_id = (await cam.join("r", "camera"))["id"]
            other_id = (await elsewhere.join("o", "camera"))["id"]
            c = await (Lines.open(srv.tcp_port) if transport == "tcp" else RawWs.open(srv.http_port))
            await c.join("r", "viewer")
            await cam.recv()
            msg = json.loads(json.dumps(HOSTILE_JOINED[name]).replace("CAM", cam_id).replace("OTHER", other_id))
            if msg.get("s") == "FILL":
                msg["s"] = "a" * (65530 - len(json.dumps(msg)) + len('"FILL"') - 2)
                assert len(json.dumps(msg)) == 65530
            await c.send(msg)
            err = await c.recv()
            assert err["type"] == "error", err
            await c.send({"type": "ping", "to": cam_id})  # still open and joined
            assert (await cam.recv())["type"] == "ping"
            for x in (cam, elsewhere, c):
                await x.close()

    run(main())


def test_line_of_exactly_64_kib_is_accepted():
    async def main():
        async with Server() as srv:
            c = await Lines.open(srv.tcp_port)
            line = b'{"type":"nothing","pad":"'
            line += b"a" * (65536 - len(line) - 2) + b'"}'
            assert len(line) == 65536
            await c.send_raw(line + b"\r\n")
            assert await c.recv() == {"type": "error", "reason": "unknown message type"}
            await c.send_raw(line[:-2] + b'a"}\n')
            assert await c.recv() == {"type": "error", "reason": "message too long"}
            await c.send_raw(b'{"type":"join","room":"r",')  # a line split across writes
            await asyncio.sleep(0.05)
            await c.send_raw(b'"role":"viewer"}\n')
            assert (await c.recv())["type"] == "joined"
            await c.close()

    run(main())


def test_websocket_hostile_messages_get_errors_and_the_connection_stays_open():
    async def main():
        async with Server() as srv:
            c = await RawWs.open(srv.http_port)
            await c.send_frame(2, b"\x00\x01binary")
            assert await c.recv() == {"type": "error", "reason": "binary messages are not supported"}
            await c.send_frame(1, b"x" * 70000)  # one frame over 64 KiB
            assert await c.recv() == {"type": "error", "reason": "message too long"}
            for i in range(5):  # 5 fragments of 20 KB: over 64 KiB only together (5.4)
                await c.send_frame(1 if i == 0 else 0, b"y" * 20000, fin=i == 4)
            assert await c.recv() == {"type": "error", "reason": "message too long"}
            await c.send_frame(1, b"{not json")
            assert (await c.recv())["reason"] == "invalid JSON"
            await c.send_frame(1, b"[]")
            assert (await c.recv())["type"] == "error"
            await c.send_frame(1, b'{"type":"what"}')
            assert (await c.recv())["reason"] == "unknown message type"
            await c.join("r", "viewer")
            await c.close()

    run(main())


def test_websocket_fragments_with_an_interleaved_ping():
    """RFC 6455 section 5.4: control frames may come between fragments; 5.5.2: pong echoes."""
    async def main():
        async with Server() as srv:
            c = await RawWs.open(srv.http_port)
            text = json.dumps({"type": "join", "room": "frag", "role": "camera"}).encode()
            await c.send_frame(1, text[:5], fin=False)
            await c.send_frame(9, b"are you there")
            await c.send_frame(0, text[5:20], fin=False)
            await c.send_frame(10, b"unsolicited")  # ignored (5.5.3)
            await c.send_frame(0, text[20:], fin=True)
            assert await c.recv_frame() == (10, b"are you there")
            assert (await c.recv())["type"] == "joined"
            await c.close()

    run(main())


@pytest.mark.parametrize("frames, code", [
    ([(1, b'{"type":"x"}', {"mask": False})], 1002),  # 5.1: client frames are masked
    ([(0, b"stray", {})], 1002),  # 5.4: continuation with no message
    ([(1, b"{", {"fin": False}), (1, b"}", {})], 1002),  # 5.4: a new message mid-fragments
    ([(1, b"{}", {"rsv": 4})], 1002),  # 5.2: RSV1 without an extension
    ([(3, b"", {})], 1002),  # 5.2: reserved opcode
    ([(9, b"p" * 126, {})], 1002),  # 5.5: control payload over 125 bytes
    ([(9, b"p", {"fin": False})], 1002),  # 5.5: fragmented control frame
    ([(1, b'{"type":"\xff"}', {})], 1007),  # 8.1: text must be UTF-8
    ([(8, b"\x03", {})], 1002),  # 5.5.1: one-byte close body
    ([(8, struct.pack(">H", 1005), {})], 1002),  # 7.4.1: 1005 is never sent
    ([(8, struct.pack(">H", 4000), {})], 4000),  # echoed (5.5.1)
    ([(8, b"", {})], None),
    ([(1, b"z" * 140000, {})], 1009),  # over WS_MAX_SIZE: too big to buffer (7.4.1)
], ids=["unmasked", "stray-continuation", "interleaved-data", "rsv", "opcode-3", "long-ping",
        "fragmented-ping", "bad-utf8", "short-close", "close-1005", "close-4000", "close-empty",
        "over-128k"])
def test_websocket_protocol_violations_and_closes(frames, code):
    """Each ends the connection with the status the server (websockets) sends."""
    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            await cam.join("r", "camera")
            c = await RawWs.open(srv.http_port)
            wid = (await c.join("r", "viewer"))["id"]
            await cam.recv()
            for opcode, payload, kw in frames:
                await c.send_frame(opcode, payload, **kw)
            assert await c.expect_close() == code
            assert await asyncio.wait_for(c.r.read(), 5) == b""  # the server closes TCP first (7.1.1)
            await c.close()
            assert await cam.recv() == {"type": "peer-left", "id": wid}
            await cam.close()

    run(main())


@pytest.mark.parametrize("how", ["protocol-error", "close-frame"])
def test_websocket_peer_that_keeps_its_socket_open_is_cut(monkeypatch, how):
    """After the close frames the server waits CLOSE_TIMEOUT for the peer's FIN."""
    monkeypatch.setattr(signaling, "CLOSE_TIMEOUT", 0.3)

    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            await cam.join("r", "camera")
            c = await RawWs.open(srv.http_port)
            wid = (await c.join("r", "viewer"))["id"]
            await cam.recv()
            if how == "protocol-error":
                await c.send_frame(1, b"{}", mask=False)
            else:
                await c.send_frame(8, struct.pack(">H", 1000))
            assert await c.expect_close() == (1002 if how == "protocol-error" else 1000)
            start = asyncio.get_running_loop().time()
            assert await cam.recv() == {"type": "peer-left", "id": wid}  # our socket is still open
            assert 0.2 < asyncio.get_running_loop().time() - start < 3
            await c.close()
            await cam.close()

    run(main())


def test_websocket_handshake_refusals():
    async def main():
        async with Server() as srv:
            bad_version = await RawWs.open(srv.http_port, extra="Sec-WebSocket-Version: 8\r\n")
            assert bad_version.status == 426 and "Sec-WebSocket-Version: 13" in bad_version.head  # 4.4
            await bad_version.close()
            short_key = await RawWs.open(srv.http_port, key=base64.b64encode(b"short").decode())
            assert short_key.status == 400  # 4.2.1: the key is 16 bytes
            await short_key.close()
            many = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000) for i in range(3))
            cases = [  # request, status, whether it passed our hooks (nosniff)
                (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426, True),  # not an upgrade
                (b"POST /ws HTTP/1.1\r\nHost: x\r\n\r\n", 405, True),
                (b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431,
                 False),  # a line over websockets' 8 KiB, refused while it parses
                (b"GET /ws HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", 431, True),  # 21 KB head: our 16 KiB cap
                (b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", 431, True),
                (b"GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),  # not a path
                (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                 + base64.b64encode(os.urandom(16)) + b"\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, True),  # no Host (4.2.1)
            ]
            for request, want, ours in cases:
                status, headers, _ = await http_get(srv.http_port, raw=request)
                assert status == want, (request[:30], status)
                assert (headers.get("X-Content-Type-Options") == "nosniff") == ours, (request[:30], headers)
            # Not HTTP: websockets closes without an answer.
            r, w = await asyncio.open_connection("127.0.0.1", srv.http_port)
            w.write(b"GARBAGE\r\n\r\n")
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()
            await w.wait_closed()

    run(main())


def test_http_request_must_come_in_time(monkeypatch):
    """HTTP_TIMEOUT for a request head; a socket over the cap has CLOSE_TIMEOUT."""
    monkeypatch.setattr(signaling, "HTTP_TIMEOUT", 0.5)
    monkeypatch.setattr(signaling, "CLOSE_TIMEOUT", 0.1)

    async def cut_after(port):
        loop = asyncio.get_running_loop()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        start = loop.time()
        try:
            assert await asyncio.wait_for(r.read(), 5) == b""
        except ConnectionResetError:
            pass
        w.close()
        return loop.time() - start

    async def main():
        async with Server(max_connections=1) as srv:
            assert 0.4 < await cut_after(srv.http_port) < 3
            await until(lambda: srv.open == 0)
            tcp = await Lines.open(srv.tcp_port)  # the one place
            await tcp.join("r", "camera")
            assert await cut_after(srv.http_port) < 0.4
            await tcp.close()

    run(main())


# -- caps -----------------------------------------------------------------------

def test_caps_on_rooms_peers_and_connections():
    async def main():
        async with Server(max_rooms=2, max_peers=2, max_connections=5) as srv:
            a, b, c, d = [await Lines.open(srv.tcp_port) for _ in range(4)]
            await a.join("one", "camera")
            await b.join("two", "camera")
            await c.send({"type": "join", "room": "three", "role": "camera"})
            assert await c.recv() == {"type": "error", "reason": "too many rooms"}
            await c.join("one", "viewer")
            await d.send({"type": "join", "room": "one", "role": "viewer"})
            assert await d.recv() == {"type": "error", "reason": "room is full"}
            ws = await RawWs.open(srv.http_port)  # the fifth connection
            await ws.join("two", "viewer")
            over = await Lines.open(srv.tcp_port)
            assert await over.recv() == {"type": "error", "reason": "server full"}
            assert await over.closed()
            over_ws = await RawWs.open(srv.http_port)
            assert over_ws.status == 101  # refused inside the socket: browsers see no HTTP status
            assert await over_ws.recv() == {"type": "error", "reason": "server full"}
            assert await over_ws.expect_close() == 1013
            status, _, _ = await http_get(srv.http_port, "/")
            assert status == 503
            for x in (over, over_ws, a):
                await x.close()
            await asyncio.sleep(0.1)
            again = await Lines.open(srv.tcp_port)  # a disconnect frees its place
            await again.join("one", "camera")  # and the camera slot
            for x in (b, c, d, ws, again):
                await x.close()

    run(main())


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_a_peer_that_never_reads_is_dropped(transport):
    async def main():
        async with Server() as srv:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", srv.tcp_port if transport == "tcp" else srv.http_port))
            sock.setblocking(False)
            if transport == "tcp":
                r, w = await asyncio.open_connection(sock=sock)
                w.write(b'{"type":"join","room":"r","role":"camera"}\n')
                cam_id = json.loads(await r.readline())["id"]
            else:
                ws = await RawWs.open(srv.http_port, sock=sock)
                cam_id = (await ws.join("r", "camera"))["id"]
                w = ws.w
            sender = await Lines.open(srv.tcp_port)
            await sender.join("r", "viewer")
            blob = {"type": "x", "to": cam_id, "s": "z" * 60000}
            for _ in range(400):  # 24 MB, far past the 1 MiB the server buffers
                await sender.send(blob)
                if not srv.hub.rooms["r"].get(cam_id):
                    break
            assert await sender.recv() == {"type": "peer-left", "id": cam_id}
            w.close()
            await sender.close()

    run(main())


# -- static files ---------------------------------------------------------------

async def http_get(port, path="/", raw=None):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(raw or ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "js").mkdir(parents=True)
    files = {"index.html": b"<h1>viewer</h1>", "js/app.js": b"let x = 1;", "style.css": b"a{}",
             "logo.png": b"\x89PNG", "snap.jpg": b"\xff\xd8", "conf.json": b"{}", "blob.bin": b"\x00"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(b"do not serve")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    return root


def test_static_files_and_content_types(site):
    async def main():
        async with Server(static_dir=str(site)) as srv:
            cases = {"/": ("text/html; charset=utf-8", b"<h1>viewer</h1>"),
                     "/index.html?v=2": ("text/html; charset=utf-8", b"<h1>viewer</h1>"),
                     "/js/app.js": ("text/javascript; charset=utf-8", b"let x = 1;"),
                     "/style.css": ("text/css; charset=utf-8", b"a{}"),
                     "/logo.png": ("image/png", b"\x89PNG"), "/snap.jpg": ("image/jpeg", b"\xff\xd8"),
                     "/conf.json": ("application/json", b"{}"), "/blob.bin": ("application/octet-stream", b"\x00"),
                     "/js/%61pp.js": ("text/javascript; charset=utf-8", b"let x = 1;")}
            for path, (ctype, body) in cases.items():
                status, headers, got = await http_get(srv.http_port, path)
                assert (status, headers["Content-Type"], got) == (200, ctype, body), path
                assert headers["Content-Length"] == str(len(body))
                assert headers["X-Content-Type-Options"] == "nosniff"
            for path in ("/missing.html", "/js", "/js/"):
                assert (await http_get(srv.http_port, path))[0] == 404, path
            status, headers, got = await http_get(srv.http_port, raw=b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (status, headers["Content-Length"], got) == (200, "3", b"")  # the length, no body
            status, headers, _ = await http_get(srv.http_port, raw=b"DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 405 and headers["Allow"] == "GET, HEAD"

    run(main())


@pytest.mark.parametrize("path", [
    "/../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/js/../../secret.txt",
    "/%2E%2E%2fsecret.txt", "/..%2f..%2f..%2fetc%2fpasswd", "/link.txt", "/%00index.html",
    "/%ff", "//etc/passwd", "/./index.html/..", "/%252e%252e/secret.txt",
])
def test_static_paths_never_leave_the_directory(site, path):
    async def main():
        async with Server(static_dir=str(site)) as srv:
            status, _, body = await http_get(srv.http_port, path)
            assert status in (400, 404), (path, status)
            assert b"root:" not in body and b"do not serve" not in body

    run(main())


def test_without_a_static_dir_everything_but_ws_is_404():
    async def main():
        async with Server() as srv:
            assert (await http_get(srv.http_port, "/"))[0] == 404
            assert (await http_get(srv.http_port, "/index.html"))[0] == 404

    run(main())


# -- logs, shutdown, command line --------------------------------------------------

def test_logs_one_line_per_join_and_leave_and_never_a_body(capfd):
    async def main():
        async with Server() as srv:
            cam, viewer = await Lines.open(srv.tcp_port), await RawWs.open(srv.http_port)
            cam_id = (await cam.join("r", "camera"))["id"]
            await viewer.join("r", "viewer")
            await viewer.send({"type": "ice", "to": cam_id, "ufrag": "UFRAG123", "pwd": "SECRETPASSWORD"})
            await cam.recv(), await cam.recv()
            await viewer.send({"type": "nope", "pwd": "SECRETPASSWORD2"})
            await viewer.recv()
            await viewer.close()
            await cam.recv()
            await cam.close()

    run(main())
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("signaling:")]
    assert len(lines) == 4 and sum(" join " in line for line in lines) == 2, lines
    assert "SECRETPASSWORD" not in err and "UFRAG123" not in err


def test_close_ends_every_connection(monkeypatch):
    """1001 to WebSocket peers; one that never answers is cut after CLOSE_TIMEOUT."""
    monkeypatch.setattr(signaling, "CLOSE_TIMEOUT", 0.5)

    async def main():
        loop = asyncio.get_running_loop()
        srv = await signaling.serve("127.0.0.1", 0, 0)
        cam, ws, mute = await Lines.open(srv.tcp_port), await RawWs.open(srv.http_port), await RawWs.open(srv.http_port)
        await cam.join("r", "camera")
        await ws.join("r", "viewer")
        await cam.recv()
        silent = await asyncio.open_connection("127.0.0.1", srv.http_port)  # no request yet
        start = loop.time()
        closing = asyncio.create_task(srv.close())
        assert await ws.expect_close() == 1001  # going away (7.4.1)
        await ws.send_frame(8, struct.pack(">H", 1001))  # the answer (5.5.1)
        assert await asyncio.wait_for(ws.r.read(), 5) == b""
        assert await cam.closed()
        assert await asyncio.wait_for(silent[0].read(), 5) == b""
        await asyncio.wait_for(closing, 5)
        assert 0.4 < loop.time() - start < 3  # waited for `mute`, not longer
        assert await mute.expect_close() == 1001
        for c in (cam, ws, mute):
            await c.close()
        silent[1].close()
        with pytest.raises(OSError):
            await Lines.open(srv.tcp_port)
        with pytest.raises(OSError):
            await RawWs.open(srv.http_port)

    run(main())


def test_command_line(tmp_path):
    (tmp_path / "index.html").write_text("hello")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "signaling.py"), "--host", "127.0.0.1",
         "--tcp-port", "0", "--http-port", "0", "--static", str(tmp_path)],
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "signaling: tcp 127.0.0.1:P, http 127.0.0.1:Q, static DIR"
        ports = [int(part.split(":")[-1].split(",")[0]) for part in line.split()[2:5:2]]

        async def main():
            c = await Lines.open(ports[0])
            await c.join("cli", "camera")
            await c.close()
            status, _, body = await http_get(ports[1], "/")
            assert (status, body) == (200, b"hello")

        run(main())
    finally:
        proc.send_signal(os_signal.SIGINT)
        assert proc.wait(10) == 0
        proc.stderr.close()


# -- the firmware client ------------------------------------------------------------

def test_signaling_client_on_cpython():
    async def main():
        async with Server() as srv:
            cam = SignalingClient()
            await cam.connect("127.0.0.1", srv.tcp_port)
            joined = await cam.join("r", "camera")
            assert cam.id == joined["id"] and joined["peers"] == []
            viewer = await ws_lib(srv.http_port)
            await viewer.send(json.dumps({"type": "join", "room": "r", "role": "viewer"}))
            vid = (await ws_lib_recv(viewer))["id"]
            assert await cam.recv() == {"type": "peer-joined", "id": vid, "role": "viewer"}
            await viewer.send(json.dumps({"type": "ice", "to": cam.id, "ufrag": "u", "pwd": "p"}))
            assert (await cam.recv())["from"] == vid
            await cam.send({"type": "busy", "to": vid})
            assert await ws_lib_recv(viewer) == {"type": "busy", "to": vid, "from": cam.id}
            second = SignalingClient()
            await second.connect("127.0.0.1", srv.tcp_port)
            with pytest.raises(SignalingError, match="already has a camera"):
                await second.join("r", "camera")
            await second.close()
            await cam.close()
            await viewer.close()

    run(main())


def test_signaling_client_close_ends_a_pending_recv():
    async def main():
        async with Server() as srv:
            c = SignalingClient()
            await c.connect("127.0.0.1", srv.tcp_port)
            await c.join("r", "camera")
            pending = asyncio.create_task(c.recv())
            await asyncio.sleep(0.05)
            await c.close()
            assert await asyncio.wait_for(pending, 5) is None

    run(main())


async def fake_server(lines):
    """A server that sends `lines` (bytes, in pieces) to whoever connects, then closes."""
    async def client(reader, writer):
        await reader.readline()
        for data in lines:
            for i in range(0, len(data), 7000):  # split across reads
                writer.write(data[i : i + 7000])
                await writer.drain()
        writer.close()
    return await asyncio.start_server(client, "127.0.0.1", 0)


OVERSIZED = [
    b'{"type":"joined","id":"me","room":"r","peers":[]}\n',
    b'{"type":"x","pad":"' + b"a" * 100000 + b'"}\n',  # dropped, counted
    b"not json\n[1]\n\xff\xfe\n\n",  # malformed, counted; blank ignored
    b'{"type":"ok","n":1}\r\n' + b"b" * 65537 + b"\n" + b'{"type":"ok","n":2}\n',
]


def test_signaling_client_drops_oversized_and_malformed_lines():
    async def main():
        server = await fake_server(OVERSIZED)
        try:
            c = SignalingClient()
            await c.connect("127.0.0.1", server.sockets[0].getsockname()[1])
            assert (await c.join("r", "camera"))["id"] == "me"
            assert await c.recv() == {"type": "ok", "n": 1}
            assert await c.recv() == {"type": "ok", "n": 2}
            assert await c.recv() is None
            assert (c.dropped, c.malformed) == (2, 3)
            await c.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


async def mp_json_line(proc):
    """The script's next JSON line; anything else (a traceback) fails the test with its output."""
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    if not line.startswith(b"{"):
        rest = line + await proc.stdout.read() + await proc.stderr.read()
        pytest.fail("micropython: " + rest.decode(errors="replace"), pytrace=False)
    return json.loads(line)


def test_micropython_camera_talks_to_a_cpython_viewer(tmp_path):
    """lib/camlink/signal.py on the MicroPython unix port with a 256 KiB heap."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp_signal_camera.py")

    async def main():
        bad = await fake_server(OVERSIZED)
        async with Server() as srv:
            conf = tmp_path / "conf.json"
            conf.write_text(json.dumps({"port": srv.tcp_port, "room": "mp",
                                        "bad_port": bad.sockets[0].getsockname()[1]}))
            proc = await asyncio.create_subprocess_exec(
                MICROPYTHON, "-X", "heapsize=256K", script, str(conf),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib")))
            try:
                cam = await mp_json_line(proc)
                assert cam["peers"] == []
                viewer = SignalingClient()
                await viewer.connect("127.0.0.1", srv.tcp_port)
                joined = await viewer.join("mp", "viewer")
                assert joined["peers"] == [{"id": cam["id"], "role": "camera"}]
                await viewer.send({"type": "ice", "to": cam["id"], "ufrag": "v", "pwd": "secret"})
                reply = await asyncio.wait_for(viewer.recv(), 10)
                assert reply == {"type": "ice", "to": viewer.id, "from": cam["id"], "ufrag": "cam", "pwd": "secret-ack"}
                await viewer.send({"type": "bye", "to": cam["id"]})
                result = await mp_json_line(proc)
                assert result == {"got": [{"type": "ok", "n": 1}, {"type": "ok", "n": 2}, None],
                                  "dropped": 2, "malformed": 3}
                assert await asyncio.wait_for(proc.wait(), 10) == 0, (await proc.stderr.read()).decode()
                await viewer.close()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                bad.close()
                await bad.wait_closed()

    run(main(), timeout=60)


def test_device_connections_are_probed_with_tcp_keepalive():
    """A camera that vanished without a FIN (power cut, NAT mapping gone) must
    leave its room: the server turns on TCP keepalive for every device."""
    import socket

    async def main():
        async with Server() as srv:
            cam = await Lines.open(srv.tcp_port)
            await cam.join("r", "camera")
            (peer,) = srv.peers
            sock = peer.writer.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == signaling.KEEPALIVE_IDLE_S
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == signaling.KEEPALIVE_INTERVAL_S
            await cam.close()

    run(main())
