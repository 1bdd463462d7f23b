"""tools/viewer.py against the real pieces: tools.signaling's server and a
small camera made of SignalingClient, ice.aio.Connection and
framing.Chunker, all in this process on loopback. CPython only."""

import asyncio
import base64
import gc
import json
import os
import re
import signal
import struct
import sys
import urllib.error
import urllib.request

import pytest
import websockets.asyncio.client
import websockets.exceptions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (ROOT, os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from camlink import framing  # noqa: E402
from camlink.signal import SignalingClient  # noqa: E402
from ice import aio  # noqa: E402
from tools import signaling  # noqa: E402
from tools import viewer as viewer_mod  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

LOOPBACK = {"include_loopback": True, "include_addresses": ["127.0.0.1"]}

# A 16x16 baseline JPEG (632 bytes); frames differ by a COM segment after SOI.
BASE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
    "V19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2P/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
    "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
    "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
    "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
    "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDLoooriPpj/9k=")


def jpeg(n):
    """Frame n: a valid JPEG of 1 to 4 chunks, different for every n."""
    comment = b"frame %d " % n + bytes(range(256)) * 12
    comment = comment[: 16 + (n * 397) % 3000]
    return BASE_JPEG[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + BASE_JPEG[2:]


def test_frames_are_valid_jpegs():
    pil = pytest.importorskip("PIL.Image")
    import io

    for n in (0, 1, 7, 40):
        frame = jpeg(n)
        assert pil.open(io.BytesIO(frame)).size == (16, 16)
    assert len({framing.Chunker().count(len(jpeg(n))) for n in range(40)}) >= 3


class Camera:
    """The camera side of firmware/PROTOCOL.md, just enough for the tests:
    answers a viewer's `ice`, trickles its candidates, streams jpeg(n) and
    collects the viewer's loss reports. `restart()` starts an ICE restart."""

    def __init__(self, port, room, busy=False, fps=50):
        self.port = port
        self.room = room
        self.busy = busy
        self.interval = 1 / fps
        self.client = SignalingClient()
        self.id = None
        self.viewer = None
        self.conn = None
        self.sent = []  # frames sent over the current session
        self.reports = []
        self.restarts = 0
        self.remote_credentials = []  # every distinct viewer (ufrag, pwd) applied
        self._outbox = asyncio.Queue()
        self._tasks = []
        self._session_tasks = []

    async def start(self):
        await self.client.connect("127.0.0.1", self.port)
        joined = await self.client.join(self.room, "camera")
        assert joined["type"] == "joined", joined
        self.id = joined["id"]
        self._tasks = [asyncio.create_task(self._messages()), asyncio.create_task(self._sender()),
                       asyncio.create_task(self._stream())]
        return self

    async def _sender(self):
        while True:
            msg = await self._outbox.get()
            await self.client.send(msg)

    def _post(self, msg):
        msg["to"] = self.viewer
        self._outbox.put_nowait(msg)

    async def _messages(self):
        while True:
            msg = await self.client.recv()
            if msg is None:
                return
            kind, sender = msg.get("type"), msg.get("from")
            if kind == "ice":
                await self._on_ice(sender, msg["ufrag"], msg["pwd"])
            elif kind == "candidate" and self.conn is not None and sender == self.viewer:
                await self.conn.add_remote_candidate(aio.Candidate.from_sdp(msg["candidate"]))
            elif kind == "end-of-candidates" and self.conn is not None and sender == self.viewer:
                await self.conn.add_remote_candidate(None)
            elif kind == "peer-left" and msg.get("id") == self.viewer:
                await self._close_session()

    async def _on_ice(self, sender, ufrag, pwd):
        if self.busy:
            self.viewer = sender
            self._post({"type": "busy"})
            self.viewer = None
            return
        if self.conn is None:
            self.viewer = sender
            self.conn = aio.Connection(False, **LOOPBACK)

            def trickle(cand):
                if cand is None:
                    self._post({"type": "end-of-candidates"})
                else:
                    self._post({"type": "candidate", "candidate": "candidate:" + cand.to_sdp()})

            self.conn.on_candidate = trickle
            self._post({"type": "ice", "ufrag": self.conn.local_username, "pwd": self.conn.local_password})
            self._session_tasks = [asyncio.create_task(self.conn.gather_candidates()),
                                   asyncio.create_task(self._receive(self.conn))]
        elif (self.conn.remote_username, self.conn.remote_password) == (ufrag, pwd):
            return
        elif self.conn.remote_username is not None:
            self._restart()  # the viewer restarted
        # else: the answer to our own restart
        self.conn.remote_username, self.conn.remote_password = ufrag, pwd
        self.remote_credentials.append((ufrag, pwd))

    def restart(self):
        """ICE restart (RFC 8445 §9): new credentials and candidates to the viewer."""
        self.restarts += 1
        self._restart()

    def _restart(self):
        conn = self.conn
        conn.restart()
        self._post({"type": "ice", "ufrag": conn.local_username, "pwd": conn.local_password})
        for cand in conn.local_candidates:
            self._post({"type": "candidate", "candidate": "candidate:" + cand.to_sdp()})
        self._post({"type": "end-of-candidates"})

    async def _receive(self, conn):
        while True:
            try:
                data = await conn.recv()
            except ConnectionError:
                return
            self.reports.append(framing.parse_report(data))

    async def _stream(self):
        chunker = framing.Chunker()
        n = 0
        while True:
            await asyncio.sleep(self.interval)
            conn = self.conn
            if conn is None or conn.selected_pair is None or conn.state not in ("connected", "completed"):
                continue
            frame = jpeg(n)
            n += 1
            try:
                for chunk in chunker.chunks(frame):
                    await conn.send(bytes(chunk))
            except ConnectionError:
                continue
            self.sent.append(frame)

    async def _close_session(self):
        for task in self._session_tasks:
            task.cancel()
        await asyncio.gather(*self._session_tasks, return_exceptions=True)
        self._session_tasks = []
        if self.conn is not None:
            await self.conn.close()
        self.conn = None
        self.viewer = None

    async def close(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_session()
        await self.client.close()


def run(coro, timeout=60):
    asyncio.run(asyncio.wait_for(coro, timeout))
    gc.collect()


async def http_get(url):
    """(status, headers, body) of a GET, from a thread (urllib)."""
    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, dict(e.headers), e.read()

    return await asyncio.to_thread(get)


async def status_json(viewer):
    code, headers, body = await http_get(viewer.url + "status.json")
    assert code == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body)


class Setup:
    """Signaling server, viewer (and cameras), closed in reverse order."""

    def __init__(self, **viewer_options):
        self.viewer_options = viewer_options
        self.lines = []
        self.cameras = []

    async def __aenter__(self):
        self.server = await signaling.serve("127.0.0.1", 0, 0)
        options = {"connection_options": LOOPBACK, "log": self.lines.append}
        options.update(self.viewer_options)
        self.viewer = viewer_mod.Viewer(("127.0.0.1", self.server.tcp_port), "cam1", ("127.0.0.1", 0), **options)
        await self.viewer.start()
        return self

    async def camera(self, **options):
        camera = await Camera(self.server.tcp_port, "cam1", **options).start()
        self.cameras.append(camera)
        return camera

    async def __aexit__(self, *exc):
        await self.viewer.close()
        for camera in self.cameras:
            await camera.close()
        await self.server.close()


def connected(s):
    return s["state"] in ("connected", "completed") and s["selected"] is not None


def test_streams_frames_and_reports_losses():
    async def main():
        async with Setup() as t:
            assert t.lines[0] == "viewer page: %s" % t.viewer.url
            code, _, _ = await http_get(t.viewer.url + "frame.jpg")
            assert code == 404  # nothing yet
            camera = await t.camera()
            await t.viewer.wait_for(connected, 10)
            s = await status_json(t.viewer)
            assert connected(s), s
            assert s["camera"] == camera.id and s["signaling"] == "connected"
            assert s["selected"]["local_type"] == "host" and s["selected"]["remote_type"] == "host"
            assert s["pairs"] and {"local_type", "remote_host", "state", "rtt_ms", "bytes_received"} <= set(s["pairs"][0])
            s = await t.viewer.wait_for(lambda s: s["state"] == "completed", 5)
            assert any(p["nominated"] and p["state"] == "succeeded" for p in s["pairs"])
            assert 0 <= s["connected_ms"] <= s["completed_ms"] < 5000  # the first valid pair, then nomination

            s = await t.viewer.wait_for(lambda s: s["frames_completed"] >= 30, 10)
            assert s["connected_ms"] <= s["first_frame_ms"] < 10000
            # Freeze the camera and compare the last frame it sent, byte for byte.
            camera.interval = 3600
            await asyncio.sleep(0.3)
            s = await status_json(t.viewer)
            assert s["frames_completed"] == len(camera.sent) and s["frames_dropped"] == 0
            assert s["bytes_received"] >= sum(len(f) for f in camera.sent)
            assert s["has_frame"] and s["frame_bytes"] == len(camera.sent[-1])
            assert s["fps"] > 0
            code, headers, body = await http_get(t.viewer.url + "frame.jpg?n=%d" % s["frame_seq"])
            assert code == 200 and headers["Content-Type"] == "image/jpeg"
            assert body == camera.sent[-1]
            assert t.viewer.latest_frame == camera.sent[-1]

            # Loss reports, about one a second, counting what the viewer completed.
            await t.viewer.wait_for(lambda s: s["reports_sent"] >= 2, 5)
            await asyncio.sleep(0.2)
            assert len(camera.reports) >= 2
            assert sum(r[0] for r in camera.reports) == len(camera.sent)
            assert all(r[1] == 0 and 500 <= r[2] <= 5000 for r in camera.reports)

            # One progress line per second with the state and the pair's types.
            progress = [line for line in t.lines if re.match(r"viewer: (connected|completed) selected=host/host", line)]
            assert progress and "frames=" in progress[-1] and "fps=" in progress[-1]

    run(main())


def test_page_and_http_server():
    async def main():
        loop = asyncio.get_running_loop()
        async with Setup() as t:
            code, headers, body = await http_get(t.viewer.url)
            assert code == 200 and headers["Content-Type"].startswith("text/html")
            page = body.decode()
            for element in ('id="frame"', 'id="ice-state"', 'id="selected"', 'id="fps"', 'id="frames"',
                            "/status.json", "/frame.jpg?n="):
                assert element in page, element
            assert "http://" not in page and "https://" not in page  # nothing external
            s = await status_json(t.viewer)
            assert s["state"] == "waiting" and s["camera"] is None and s["selected"] is None
            assert s["frame_seq"] == 0 and not s["has_frame"]
            assert (await http_get(t.viewer.url + "nothing"))[0] == 404

            # One request per connection: the answer says so and the server
            # closes its side after it.
            reader, writer = await asyncio.open_connection("127.0.0.1", t.viewer.http_port)
            writer.write(b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            head, _, body = data.partition(b"\r\n\r\n")
            head += b"\r\n"
            assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close\r\n" in head
            assert b"\r\nCache-Control: no-store\r\n" in head
            assert json.loads(body)["room"] == "cam1"  # the whole body, then EOF
            writer.close()
            await writer.wait_closed()
            # Anything but GET is refused.
            for method in (b"POST", b"HEAD", b"DELETE"):
                reader, writer = await asyncio.open_connection("127.0.0.1", t.viewer.http_port)
                writer.write(method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                head = await asyncio.wait_for(reader.read(), 5)
                assert head.startswith(b"HTTP/1.1 405") and b"\r\nAllow: GET\r\n" in head, head
                writer.close()
                await writer.wait_closed()
            # No WebSocket endpoint: the upgrade gets a plain answer.
            with pytest.raises(websockets.exceptions.InvalidStatus):
                await websockets.asyncio.client.connect("ws://127.0.0.1:%d/" % t.viewer.http_port)
            # A connection that never sends a request does not hold up close().
            silent = await asyncio.open_connection("127.0.0.1", t.viewer.http_port)
            await asyncio.sleep(0.05)
            left = loop.time()
        assert loop.time() - left < 1.5
        assert await asyncio.wait_for(silent[0].read(), 5) == b""
        silent[1].close()

    run(main())


def test_camera_leaving_resets_and_a_new_camera_starts_a_session():
    async def main():
        async with Setup() as t:
            first = await t.camera()
            await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 5, 10)
            await first.close()
            t.cameras.remove(first)
            s = await t.viewer.wait_for(lambda s: s["camera"] is None, 5)
            assert s["state"] == "waiting" and s["selected"] is None and s["pairs"] == []
            assert s["frames_completed"] == 0 and s["bytes_received"] == 0 and s["fps"] == 0
            assert not s["has_frame"]
            assert (await http_get(t.viewer.url + "frame.jpg"))[0] == 404
            seq = s["frame_seq"]

            second = await t.camera()
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 5, 10)
            assert s["camera"] == second.id and s["sessions"] == 2 and s["frame_seq"] > seq
            assert any("camera %s left" % first.id in line for line in t.lines)

    run(main())


def test_viewer_joining_after_the_camera():
    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0)
        camera = await Camera(server.tcp_port, "cam1").start()
        lines = []
        viewer = viewer_mod.Viewer(("127.0.0.1", server.tcp_port), "cam1", ("127.0.0.1", 0),
                                   connection_options=LOOPBACK, log=lines.append)
        try:
            await viewer.start()
            s = await viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 3, 10)
            assert s["camera"] == camera.id
        finally:
            await viewer.close()
            await camera.close()
            await server.close()

    run(main())


def test_ice_restart_from_the_camera_keeps_frames_flowing():
    async def main():
        async with Setup() as t:
            camera = await t.camera()
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 10, 10)
            first_ufrag = camera.remote_credentials[-1][0]
            camera.restart()
            s = await t.viewer.wait_for(lambda s: s["restarts"] == 1, 5)
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 40, 10)
            # The viewer answered with new credentials, and the camera took them
            # as the answer (no restart ping-pong).
            assert len(camera.remote_credentials) == 2 and camera.remote_credentials[-1][0] != first_ufrag
            assert camera.conn.remote_username == camera.remote_credentials[-1][0]
            assert camera.restarts == 1
            await asyncio.sleep(1.5)
            s = await status_json(t.viewer)
            assert s["restarts"] == 1 and connected(s) and s["sessions"] == 1
            assert any("camera restarted ICE" in line for line in t.lines)
            # Still streaming on the new pair.
            before = s["frames_completed"]
            await t.viewer.wait_for(lambda s: s["frames_completed"] >= before + 10, 5)
            # Both ends agree on a pair again.
            assert camera.conn.selected_pair is not None

    run(main())


def test_restart_request_from_the_camera():
    """`restart` asks the viewer to restart ICE; the camera answers its new `ice`."""
    async def main():
        async with Setup() as t:
            camera = await t.camera()
            await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 5, 10)
            camera._post({"type": "restart"})
            await t.viewer.wait_for(lambda s: s["restarts"] == 1, 5)
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 30, 10)
            assert len(camera.remote_credentials) == 2 and s["restarts"] == 1

    run(main())


def test_busy_camera_then_a_free_slot():
    async def main():
        async with Setup(busy_retry_s=30) as t:
            camera = await t.camera(busy=True)
            s = await t.viewer.wait_for(lambda s: s["busy"], 5)
            assert s["state"] == "busy" and s["camera"] == camera.id
            assert any("is busy" in line for line in t.lines)
            # Another viewer leaving may free a slot: the viewer asks again.
            camera.busy = False
            other = SignalingClient()
            await other.connect("127.0.0.1", t.server.tcp_port)
            await other.join("cam1", "viewer")
            await other.close()
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 3, 10)
            assert not s["busy"] and s["sessions"] == 2

    run(main())


def test_command_line(tmp_path):
    """The script itself: page URL first, progress lines, clean exit on SIGTERM."""
    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "dev", os.path.join(ROOT, "tools", "viewer.py"),
            "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", "cam1",
            "--http", "127.0.0.1:0", "--include-loopback",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        camera = None
        try:
            first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            assert first.startswith("viewer page: http://127.0.0.1:"), first
            url = first.split()[-1]
            camera = await Camera(server.tcp_port, "cam1").start()
            while True:
                line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
                assert line, "viewer exited"
                if "selected=host/host" in line and " frames=0 " not in line:
                    break
            code, _, body = await http_get(url + "frame.jpg")
            assert code == 200 and body in camera.sent
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 10)
            if camera is not None:
                await camera.close()
            await server.close()
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err and b"ResourceWarning" not in err, err.decode()

    run(main())


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_relay_only_through_turn(turn_server, transport):
    """--relay-only with --turn: the selected pair is the viewer's relayed candidate."""
    async def main():
        turn = dict(turn=(turn_server.ip, turn_server.port), turn_user=turn_server.username,
                    turn_password=turn_server.password, turn_transport=transport, relay_only=True)
        async with Setup(**turn) as t:
            await t.camera()
            s = await t.viewer.wait_for(lambda s: connected(s) and s["frames_completed"] >= 5, 15)
            assert s["selected"]["local_type"] == "relay"
            assert s["turn"] and s["turn"][0]["transport"] == transport

    run(main())
