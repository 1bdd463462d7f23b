"""A real browser viewer against the camera's ICE: headless Chromium runs
host_tests/browser/interop.html, meets an answerer through tools/signaling.py
(WebSocket for the browser, JSON lines over TCP for the camera side) and
connects with ICE. CPython only.

The browser offers a data channel and is the controlling agent; the answerer
answers with firmware/cam/webrtc.py and trickles its candidates. Chromium keeps
its default of hiding host candidates behind mDNS names, so the answerer sees
the browser either through its mDNS name (when the one-shot query is answered)
or as peer-reflexive; the tests accept both and record which (`record_property`,
and a line printed with `-s`). There is no DTLS on the camera side: the browser
reaches ICE "connected", never DTLS "connected" (firmware/cam/webrtc.py).

Everything runs in the private network namespace of host_tests/cpython/browser.py:
the signaling server and the answerer on a thread of their own, Chromium through
Playwright on the test's thread.
"""

import asyncio
import os
import sys
import threading
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (ROOT, os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from browser import browser_network, browser_page  # noqa: E402,F401  (fixtures)
from cam import webrtc  # noqa: E402
from camlink.signal import SignalingClient  # noqa: E402
from ice import aio  # noqa: E402
from tools import signaling  # noqa: E402

PAGE_DIR = os.path.join(ROOT, "host_tests", "browser")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
ICE_TIMEOUT_S = 20


class LoopThread:
    """An asyncio loop on its own thread; `call(coro)` runs a coroutine there
    and waits for its result. The thread inherits the caller's network namespace."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="interop-loop", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc):
        async def drain():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.call(drain(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class Answerer:
    """The camera's answering side built from the product's pieces: the
    SignalingClient, ice.aio.Connection(ice_controlling=False) and cam.webrtc.
    One browser session at a time; what happened is kept for the assertions."""

    def __init__(self, signaling_port, room, address):
        self.signaling_port = signaling_port
        self.room = room
        self.address = address
        self.client = SignalingClient()
        self.conn = None
        self.viewer = None
        self.offer = None
        self.answer = None
        self.browser_candidates = []  # candidate lines the browser trickled
        self.sent_candidates = []
        self.got_end_of_candidates = False
        self.connected_at = None
        self.errors = []
        self._outbox = asyncio.Queue()
        self._tasks = []

    async def start(self):
        await self.client.connect("127.0.0.1", self.signaling_port)
        await self.client.join(self.room, "camera")
        self._tasks.append(asyncio.ensure_future(self._run()))
        self._tasks.append(asyncio.ensure_future(self._send_loop()))

    async def _send_loop(self):
        # One sender keeps the order: the answer first, then candidates.
        while True:
            msg = await self._outbox.get()
            msg["to"] = self.viewer
            await self.client.send(msg)

    async def _run(self):
        while True:
            msg = await self.client.recv()
            if msg is None:
                return
            try:
                await self._on_message(msg)
            except Exception as exc:  # kept for the test to show
                self.errors.append("%s: %r" % (msg.get("type"), exc))

    async def _on_message(self, msg):
        kind = msg.get("type")
        if kind == "sdp" and msg.get("kind") == "offer":
            await self._on_offer(msg["from"], msg["sdp"])
        elif kind == "candidate" and self.conn is not None:
            line = msg.get("candidate") or ""
            if line:
                self.browser_candidates.append(line)
                await self.conn.add_remote_candidate(aio.Candidate.from_sdp(line))
            else:
                await self.conn.add_remote_candidate(None)
        elif kind == "end-of-candidates" and self.conn is not None:
            self.got_end_of_candidates = True
            await self.conn.add_remote_candidate(None)

    async def _on_offer(self, viewer, sdp_text):
        self.viewer = viewer
        self.offer = offer = webrtc.parse_offer(sdp_text)

        def trickle(cand):
            if cand is None:
                self._outbox.put_nowait({"type": "end-of-candidates"})
            else:
                line = "candidate:" + cand.to_sdp()
                self.sent_candidates.append(line)
                self._outbox.put_nowait({"type": "candidate", "candidate": line})

        self.conn = conn = aio.Connection(
            ice_controlling=False, interfaces=[("v0", self.address)], use_ipv6=False,
            mdns_interface=self.address, on_candidate=trickle)
        conn.remote_is_lite = offer["ice_lite"]
        conn.remote_username, conn.remote_password = offer["ufrag"], offer["pwd"]
        self.answer = webrtc.build_answer(offer, conn.local_username, conn.local_password)
        self._outbox.put_nowait({"type": "sdp", "kind": "answer", "sdp": self.answer})
        for line in offer["candidates"]:
            await conn.add_remote_candidate(aio.Candidate.from_sdp(line))
        self._tasks.append(asyncio.ensure_future(conn.gather_candidates()))
        self._tasks.append(asyncio.ensure_future(self._connect(conn)))

    async def _connect(self, conn):
        await conn.connect()
        self.connected_at = time.monotonic()

    def summary(self):
        """What the assertions need, read on the loop's thread."""
        conn = self.conn
        pair = conn.selected_pair if conn is not None else None
        return {
            "state": conn.state if conn is not None else None,
            "pair": None if pair is None else {
                "local": (pair.local.type, pair.local.host, pair.local.port),
                "remote": (pair.remote.type, pair.remote.host, pair.remote.port),
            },
            "remote_candidates": [c.type for c in conn.remote_candidates] if conn is not None else [],
            "mdns_unresolved": conn.counters["mdns_unresolved"] if conn is not None else None,
            "errors": list(self.errors),
        }

    async def close(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.conn is not None:
            await self.conn.close()
        await self.client.close()


async def _summary_of(answerer):
    return answerer.summary()


def _open_viewer_page(page, server, room):
    url = "http://127.0.0.1:%d/interop.html?room=%s&ws=ws://127.0.0.1:%d/ws" % (
        server.http_port, room, server.http_port)
    page.goto(url)
    return url


def _wait_ice_connected(page, timeout_s=ICE_TIMEOUT_S):
    """Wait until the browser's iceConnectionState said connected or completed."""
    try:
        page.wait_for_function(
            "window.iceState && (window.iceState.includes('connected') || window.iceState.includes('completed'))",
            polling=50, timeout=timeout_s * 1000)
    except Exception:
        state = page.evaluate("({ice: window.iceState, interop: window.interop})")
        pytest.fail("the browser's ICE did not connect within %d s: %r" % (timeout_s, state), pytrace=False)


def _browser_pair(page):
    page.wait_for_function("window.interop.selectedPair !== null", polling=50, timeout=5000)
    return page.evaluate("window.interop.selectedPair")


def test_browser_connects_to_cpython_answerer(browser_network, browser_page, record_property):
    page = browser_page
    room = "interop-" + uuid.uuid4().hex[:8]
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=PAGE_DIR))
        answerer = Answerer(server.tcp_port, room, browser_network.address)
        try:
            loop.call(answerer.start())
            opened = time.monotonic()
            _open_viewer_page(page, server, room)
            _wait_ice_connected(page)
            took = time.monotonic() - opened
            browser = _browser_pair(page)
            # The answerer side: connected, with a selected pair.
            deadline = time.monotonic() + 5
            while True:
                ours = loop.call(_summary_of(answerer))
                if ours["state"] in ("connected", "completed") and ours["pair"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            interop = page.evaluate("window.interop")
        finally:
            loop.call(answerer.close())
            loop.call(server.close())

    assert not interop["errors"], interop["errors"]
    assert not ours["errors"], ours["errors"]
    assert interop["answerApplied"] is True  # Chromium took webrtc.build_answer's SDP
    assert ours["state"] in ("connected", "completed"), ours
    assert ours["pair"] is not None, ours
    # Browser side: what Chromium selected and what it gathered.
    # Chromium's selected pair; its stats `state` reads "in-progress" while a
    # consent check is out, so the proof of a working pair is nomination and answers.
    assert browser["nominated"] and browser["responsesReceived"] >= 1, browser
    assert browser["remote"]["type"] == "host"  # our trickled host candidate
    assert browser["remote"]["address"] == browser_network.address
    assert browser["remote"]["port"] == ours["pair"]["local"][2]
    assert answerer.browser_candidates and all(".local " in c for c in answerer.browser_candidates), \
        answerer.browser_candidates  # Chromium's default: host addresses hidden behind mDNS
    assert answerer.got_end_of_candidates
    # Our side: the pair exists whatever type the browser's end was learned as.
    remote_type = ours["pair"]["remote"][0]
    assert remote_type in ("host", "prflx"), ours
    assert ours["pair"]["remote"][2] == browser["local"]["port"]
    record_property("browser_remote_type", remote_type)
    record_property("ice_connected_s", round(took, 3))
    record_property("browser_dtls_state", interop["dtlsState"])
    print("\ninterop: CPython answerer, browser ICE connected %.2f s after the page load began; "
          "our pair %s <- browser %s; browser DTLS %s, connectionState %s" % (
              took, ours["pair"]["local"], ours["pair"]["remote"], interop["dtlsState"],
              interop["connectionState"]))


def _camera_command(signaling_url, room, address, seconds):
    """The camera as tools/demo.py runs it: firmware/main.py on the MicroPython
    unix port with the `unix` board settings, on the namespace's address."""
    return [MICROPYTHON, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"),
            "--board", "unix", "--signaling", signaling_url, "--room", room,
            "--interface", address, "--seconds", str(seconds)]


async def _camera_says(camera, needle, lines, timeout_s):
    """Read the camera's output lines (kept in `lines`) until one holds
    `needle`; that line, or None at the timeout or the camera's exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = await asyncio.wait_for(camera.stdout.readline(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if not line:
            break
        text = line.decode(errors="replace").rstrip()
        lines.append(text)
        if needle in text:
            return text
    return None


async def _start_camera(command):
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def _stop_camera(camera):
    if camera.returncode is None:
        camera.terminate()
    try:
        await asyncio.wait_for(camera.wait(), 10)
    except asyncio.TimeoutError:
        camera.kill()
        await camera.wait()


def _page_meets_camera(loop, page, server, room, command, lines):
    """Start the camera (`command`), open the page once the camera is in the
    room, as a user would find it, and wait for the browser's ICE to
    connect; then stop the camera and the server. (seconds from the page
    load to connected, the browser's pair, the camera's "connected via" line
    or None, window.interop); the camera's output lines go to `lines`."""
    camera = loop.call(_start_camera(command))
    try:
        joined = loop.call(_camera_says(camera, "camera: joined room", lines, 20), timeout=25)
        assert joined is not None, "the camera never joined:\n" + "\n".join(lines)
        opened = time.monotonic()
        _open_viewer_page(page, server, room)
        _wait_ice_connected(page)
        took = time.monotonic() - opened
        browser = _browser_pair(page)
        status = loop.call(_camera_says(camera, ": connected via ", lines, 10), timeout=15)
        return took, browser, status, page.evaluate("window.interop")
    finally:
        loop.call(_stop_camera(camera), timeout=15)
        loop.call(server.close())


def test_browser_connects_to_micropython_camera(browser_network, browser_page, record_property):
    """The camera app itself (firmware/main.py under the MicroPython unix port)
    answers the browser: cam.app's browser path, cam.webrtc, camlink.signal."""
    if not os.access(MICROPYTHON, os.X_OK):
        pytest.fail("the MicroPython unix port is missing from .venv (make setup)", pytrace=False)
    page = browser_page
    room = "interop-mp-" + uuid.uuid4().hex[:8]
    lines = []
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=PAGE_DIR))
        command = _camera_command("127.0.0.1:%d" % server.tcp_port, room, browser_network.address, 60)
        took, browser, status, interop = _page_meets_camera(loop, page, server, room, command, lines)

    assert not interop["errors"], interop["errors"]
    assert interop["answerApplied"] is True
    # Chromium's selected pair; its stats `state` reads "in-progress" while a
    # consent check is out, so the proof of a working pair is nomination and answers.
    assert browser["nominated"] and browser["responsesReceived"] >= 1, browser
    assert browser["remote"]["type"] == "host" and browser["remote"]["address"] == browser_network.address
    assert interop["remoteCandidates"], interop  # the camera trickled its candidates
    assert status is not None, "the camera never reported a connected viewer:\n" + "\n".join(lines)
    # "camera: <id>: connected via host/prflx, ..." (cam.app.Session.describe)
    local_type, remote_type = status.split(" connected via ", 1)[1].split(",", 1)[0].split("/")
    assert local_type == "host" and remote_type in ("host", "prflx"), status
    record_property("camera_remote_type", remote_type)
    record_property("ice_connected_s", round(took, 3))
    print("\ninterop: MicroPython camera, browser ICE connected %.2f s after the page load began; "
          "camera says %r" % (took, status))


def test_browser_meets_a_camera_on_mqtt_through_the_bridge(browser_network, browser_page, tmp_path):
    """Issue 18: the camera signals through Mosquitto; the browser page speaks
    the same WebSocket protocol to tools/signaling.py, which bridges it into
    the broker's room (tools/mqtt_signaling.Bridge, the accounts kept on the
    server). ICE connects as it does without the broker."""
    from mosquitto import Broker, find_mosquitto
    from mqtt_signaling import Bridge

    if find_mosquitto() is None and not os.environ.get("CI"):
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    page = browser_page
    room = "bridged"
    lines = []
    with Broker({room: "bridge-password"}) as broker, LoopThread() as loop:
        bridge = Bridge(broker.ip, broker.port, None, broker.accounts)
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=PAGE_DIR, bridge=bridge))
        command = _camera_command(broker.url(room), room, browser_network.address, 60)
        _, _, status, interop = _page_meets_camera(loop, page, server, room, command, lines)
    assert not interop["errors"], interop["errors"]
    assert interop["answerApplied"] is True and interop["remoteCandidates"], interop
    assert status is not None, "the camera never reported a connected viewer:\n" + "\n".join(lines)
