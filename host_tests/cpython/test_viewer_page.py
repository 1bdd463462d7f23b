"""The browser viewer page (tools/web/index.html), served by tools/signaling.py,
in headless Chromium against the camera app (firmware/main.py under the
MicroPython unix port) and real servers: coturn for STUN and TURN, the
camera's own grant gate. CPython only.

The page's contract is in its own header comment and firmware/PROTOCOL.md.
Everything runs in the private network namespace of host_tests/cpython/browser.py,
with the loop thread and camera helpers of test_browser_interop.py. The page
reports through `window.viewer`.

A browser opens a grant's session with its sealed `sdp` offer
(test_page_with_a_grant_connects).
"""

import asyncio
import json
import os
import subprocess
import sys
import contextlib
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from browser import browser_network, browser_page  # noqa: F401  (fixtures)
from peers import MICROPYTHONS
from camlink import grants
from camlink.signal import SignalingClient
from test_browser_interop import (MICROPYTHON, ROOT, Answerer, LoopThread, _camera_command, _camera_says,
                                  _stop_camera)
from tools import signaling

SECRET = bytes(range(32))
CAMERA = "porch"
ICE_TIMEOUT_S = 20
FRAMES_TIMEOUT_S = 20
ICE_UP = "['connected', 'completed'].includes(window.viewer.ice)"


def _need_micropython():
    if not os.access(MICROPYTHON, os.X_OK):
        pytest.fail("the MicroPython unix port is missing from .venv (make setup)", pytrace=False)


def _grant(viewer="phone", camera=CAMERA, seconds=600, secret=SECRET):
    return grants.issue(secret, camera, viewer, int(time.time()) + seconds)


def _url(server, room, **query):
    query = dict(query, room=room)
    return "http://127.0.0.1:%d/?%s" % (server.http_port, urllib.parse.urlencode(query))


def _viewer(page):
    return page.evaluate("window.viewer")


def _wait(page, condition, what, timeout_s=ICE_TIMEOUT_S):
    """Wait until the JS `condition` holds; fail with window.viewer if it does not."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, polling=50, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pytest.fail("%s within %d s; window.viewer = %s" % (what, timeout_s, json.dumps(_viewer(page), indent=1)),
                    pytrace=False)


async def _start_camera(command, secrets_dir=None):
    """The camera process; with `secrets_dir`, its secrets.py comes from there."""
    env = None
    if secrets_dir is not None:
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % secrets_dir)
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)


class Camera:
    """firmware/main.py in the browser's namespace, started and stopped on `loop`."""

    def __init__(self, loop, server, room, address, secrets_dir=None, seconds=60, dtls=None):
        self.loop = loop
        self.command = _camera_command("127.0.0.1:%d" % server.tcp_port, room, address, seconds)
        if dtls is not None:  # (certificate, key) files from tools/dtls_cert.py: browsers get a data channel
            self.command += ["--dtls-cert", dtls[0], "--dtls-key", dtls[1]]
        self.secrets_dir = secrets_dir
        self.lines = []
        self.proc = None

    def start(self):
        self.proc = self.loop.call(_start_camera(self.command, self.secrets_dir))
        joined = self.loop.call(_camera_says(self.proc, "camera: joined room", self.lines, 20), timeout=25)
        assert joined is not None, "the camera never joined:\n" + self.output()
        return self

    def says(self, needle, timeout_s=10):
        return self.loop.call(_camera_says(self.proc, needle, self.lines, timeout_s), timeout=timeout_s + 5)

    def stop(self):
        if self.proc is not None:
            self.loop.call(_stop_camera(self.proc), timeout=15)
            self.proc = None

    def output(self):
        return "\n".join(self.lines)


def _secrets(tmp_path):
    (tmp_path / "secrets.py").write_text("CAMERA_SECRET = %r\nCAMERA_ID = %r\n" % (SECRET.hex(), CAMERA))
    return str(tmp_path)


# -- the server side: the page and --ice-servers -------------------------------------

def test_signaling_serves_the_page_and_ice_servers_by_default():
    """`tools/signaling.py` without --static serves tools/web/ (GET / is the
    page); --ice-servers lands in every joined; a list that is not one is refused."""
    stun = [{"urls": "stun:127.0.0.1:3478"}, {"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "p"}]
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "signaling.py"), "--host", "127.0.0.1",
         "--tcp-port", "0", "--http-port", "0", "--ice-servers", json.dumps(stun)],
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "signaling: tcp 127.0.0.1:P, http 127.0.0.1:Q, static DIR; ..."
        tcp_port, http_port = [int(part.split(":")[-1].split(",")[0]) for part in line.split()[2:5:2]]
        with urllib.request.urlopen("http://127.0.0.1:%d/" % http_port, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            body = response.read().decode()
        with open(os.path.join(ROOT, "tools", "web", "index.html")) as f:
            assert body == f.read()

        async def joined():
            client = SignalingClient()
            await client.connect("127.0.0.1", tcp_port)
            try:
                return await client.join("page", "viewer")
            finally:
                await client.close()

        assert asyncio.run(joined())["ice_servers"] == stun
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
    for bad in ('{"urls": "stun:x"}', '[{"url": "stun:x"}]', "[{\"urls\": \"stun:x\", \"username\": 1}]", "nope"):
        refused = subprocess.run(
            [sys.executable, os.path.join(ROOT, "tools", "signaling.py"), "--ice-servers", bad],
            capture_output=True, text=True, timeout=10)
        assert refused.returncode == 2 and "--ice-servers" in refused.stderr, (bad, refused.stderr)


def test_joined_carries_ice_servers_then_turn_credentials():
    stun = {"urls": "stun:127.0.0.1:3478"}

    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0, ice_servers=[stun],
                                       turn=(b"turn-secret", ["turn:127.0.0.1:3478"], 60))
        client = SignalingClient()
        try:
            await client.connect("127.0.0.1", server.tcp_port)
            return await client.join("merged", "camera")
        finally:
            await client.close()
            await server.close()

    servers = asyncio.run(main())["ice_servers"]
    assert servers[0] == stun
    assert len(servers) == 2 and servers[1]["urls"] == ["turn:127.0.0.1:3478"], servers
    assert servers[1]["username"].split(":")[0].isdigit() and servers[1]["credential"], servers  # admission.py



def test_joined_peers_get_fresh_turn_credentials_each_half_lifetime():
    """A peer that stays joined longer than its TURN credentials last gets
    fresh ones (`ice-servers`) every half of their lifetime."""
    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0, turn=(b"turn-secret", ["turn:127.0.0.1:3478"], 4))
        client = SignalingClient()
        try:
            await client.connect("127.0.0.1", server.tcp_port)
            joined = await client.join("renewed", "camera")
            renewals = [await asyncio.wait_for(client.recv(), 5) for _ in range(2)]
            return joined, renewals
        finally:
            await client.close()
            await server.close()

    joined, renewals = asyncio.run(main())
    expiries = [int(m["ice_servers"][0]["username"].split(":")[0]) for m in [joined] + renewals]
    assert [m["type"] for m in renewals] == ["ice-servers", "ice-servers"], renewals
    assert expiries[0] <= expiries[1] <= expiries[2] and expiries[2] - expiries[0] >= 3, expiries  # 2 s apart
    assert all(m["ice_servers"][0]["username"].endswith(":" + joined["id"]) for m in renewals)


# -- the page in Chromium ------------------------------------------------------------

def test_page_waits_for_the_camera_connects_and_sees_it_leave(browser_network, browser_page):
    """Opened before the camera: it says it waits; the camera joins and ICE
    connects over the namespace's address; the camera goes and the page says
    so; the camera comes back and the page connects again."""
    _need_micropython()
    page = browser_page
    room = "page-" + uuid.uuid4().hex[:8]
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR))
        camera = Camera(loop, server, room, browser_network.address)
        try:
            response = page.goto(_url(server, room))
            assert response.status == 200 and response.headers["content-type"].startswith("text/html")
            _wait(page, "window.viewer.status === 'waiting for a camera'", "the page never said it waits")
            assert page.text_content("#status") == "waiting for a camera"
            waiting = _viewer(page)
            assert waiting["signaling"] == "joined" and waiting["cameraId"] is None, waiting

            camera.start()
            _wait(page, ICE_UP, "the page's ICE never connected")
            _wait(page, "window.viewer.selectedPair !== null", "no selected pair in getStats", 5)
            first = _viewer(page)
            status = camera.says(": connected via ")

            camera.stop()
            _wait(page, "window.viewer.status.startsWith('camera left')", "the page never saw the camera leave", 10)
            gone = _viewer(page)
            gone_text = page.text_content("#status")

            camera.start()
            _wait(page, ICE_UP + " && window.viewer.sessions === 2", "the page did not connect to the camera again")
            again = _viewer(page)
        finally:
            camera.stop()
            loop.call(server.close())

    assert status is not None, "the camera never reported the page connected:\n" + camera.output()
    assert not first["errors"], first["errors"]
    assert first["cameraId"] and first["pcSignaling"] == "stable", first  # the camera's answer applied
    assert first["iceServers"] == [] and first["iceTransportPolicy"] == "all", first
    pair = first["selectedPair"]
    assert pair["remote"]["type"] == "host" and pair["remote"]["address"] == browser_network.address, pair
    assert gone_text == "camera left, waiting for it", gone_text
    assert gone["cameraId"] is None and gone["ice"] == "closed", gone
    assert again["cameraId"] and again["cameraId"] != first["cameraId"] and not again["errors"], again


def test_page_uses_fresh_turn_credentials_for_a_later_session(browser_network, browser_page):
    """Relay-only, with TURN credentials that last 4 s: the camera comes
    back after those in the page's `joined` expired, and the page's next
    session allocates with the fresh ones the server sent it since."""
    from turnserver import TurnServer, find_turnserver

    _need_micropython()
    if find_turnserver() is None and not os.environ.get("CI"):
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    page = browser_page
    room = "renew-" + uuid.uuid4().hex[:8]
    ttl_s = 4
    with TurnServer(auth_secret="turn-secret") as turn, LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR,
                                           turn=(b"turn-secret", ["turn:%s:%d?transport=udp" % turn.address], ttl_s)))
        camera = Camera(loop, server, room, browser_network.address)
        try:
            page.goto(_url(server, room, relay="1"))
            camera.start()
            _wait(page, ICE_UP + " && window.viewer.selectedPair !== null", "the page's ICE never connected")
            first = _viewer(page)
            camera.stop()
            _wait(page, "window.viewer.status.startsWith('camera left')", "the page never saw the camera leave", 10)
            time.sleep(ttl_s + 1)
            camera.start()
            _wait(page, ICE_UP + " && window.viewer.sessions === 2 && window.viewer.selectedPair !== null",
                  "the page did not connect through the relay again")
            again = _viewer(page)
        finally:
            camera.stop()
            loop.call(server.close())
    for viewer in (first, again):
        assert viewer["selectedPair"]["local"]["type"] == "relay", viewer["selectedPair"]
        assert not viewer["errors"], viewer["errors"]
    assert first["iceServers"][0]["username"] != again["iceServers"][0]["username"]


def test_ice_servers_reach_the_page(browser_network, browser_page):
    """--ice-servers (a STUN server: coturn in the namespace) goes into the
    page's RTCPeerConnection, which then gathers a server-reflexive candidate;
    with ?relay=1 and --turn-secret the page relays through coturn to the camera."""
    from turnserver import TurnServer, find_turnserver

    _need_micropython()
    if find_turnserver() is None and not os.environ.get("CI"):
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    page = browser_page
    room = "stun-" + uuid.uuid4().hex[:8]
    with TurnServer(auth_secret="turn-secret") as turn, LoopThread() as loop:
        stun = {"urls": "stun:%s:%d" % turn.address}
        turn_uri = "turn:%s:%d?transport=udp" % turn.address
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR, ice_servers=[stun],
                                           turn=(b"turn-secret", [turn_uri], 600)))
        camera = Camera(loop, server, room, browser_network.address)
        try:
            camera.start()
            page.goto(_url(server, room))
            _wait(page, "window.viewer.localCandidateTypes.includes('srflx')", "no server-reflexive candidate")
            plain = _viewer(page)
            page.goto(_url(server, room, relay="1"))
            _wait(page, ICE_UP, "the relayed page's ICE never connected")
            _wait(page, "window.viewer.selectedPair !== null", "no selected pair in getStats", 5)
            relayed = _viewer(page)
        finally:
            camera.stop()
            loop.call(server.close())

    given = plain["iceServers"]  # the pc's own configuration, in the browser's normal form
    assert [s["urls"] for s in given] == [[stun["urls"]], [turn_uri]] and given[1]["username"], given
    assert relayed["iceTransportPolicy"] == "relay" and set(relayed["localCandidateTypes"]) == {"relay"}, relayed
    assert relayed["selectedPair"]["local"]["type"] == "relay", relayed["selectedPair"]
    assert not relayed["errors"], relayed["errors"]


# -- grants ----------------------------------------------------------------------------

class GatedAnswerer(Answerer):
    """test_browser_interop's answerer behind camlink.grants.Gate, taking a
    sealed `sdp` offer as the opening message: nothing goes to the page
    before its grant checks out, and everything after is sealed."""

    def __init__(self, *args, gate):
        super().__init__(*args)
        self.gate = gate
        self.auth = None
        self.dropped = []  # page messages that did not check out

    async def _on_message(self, msg):
        if "from" not in msg:
            return
        if self.auth is None:
            kind = msg.get("type")
            if kind == "hello":
                reply = self.gate.challenge(msg["from"], msg)
            elif kind == "sdp":
                self.auth, reply = self.gate.admit(msg["from"], msg)
            else:
                reply = self.gate.refuse("anonymous")
            if reply is not None:
                await self.client.send(dict(reply, to=msg["from"]))
            if self.auth is None:
                return
        elif self.auth.check(msg) is not None:
            self.dropped.append(msg)
            return
        await super()._on_message(msg)

    async def _send_loop(self):
        while True:
            msg = await self._outbox.get()
            self.auth.seal(msg)
            msg["to"] = self.viewer
            await self.client.send(msg)


def test_page_seals_with_the_grant_protocol(browser_network, browser_page):
    """The page's WebCrypto end of the grant protocol against camlink.grants
    itself: its hello gets a challenge, its sealed offer opens the session at
    the Gate, every later message checks out, and it accepts the camera's
    sealed answer and candidates (ICE connects)."""
    page = browser_page
    room = "sealed-" + uuid.uuid4().hex[:8]
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR))
        answerer = GatedAnswerer(server.tcp_port, room, browser_network.address, gate=grants.Gate(SECRET, CAMERA))
        try:
            loop.call(answerer.start())
            claims, key = _grant().split("#")  # the key in the URL's fragment, kept from the server
            page.goto(_url(server, room, grant=claims) + "#" + key)
            _wait(page, ICE_UP, "the page's ICE never connected")
            viewer = _viewer(page)
            deadline = time.monotonic() + 5
            while not answerer.got_end_of_candidates and time.monotonic() < deadline:
                time.sleep(0.05)  # the page's last candidates, sealed
        finally:
            loop.call(answerer.close())
            loop.call(server.close())
    counters = answerer.gate.counters
    assert counters["admitted"] == 1 and counters["challenges"] >= 1, counters
    assert sum(counters.values()) == counters["admitted"] + counters["challenges"], counters  # nothing refused
    assert not answerer.dropped and not answerer.errors, (answerer.dropped, answerer.errors)
    assert answerer.auth.received >= 2 and answerer.got_end_of_candidates  # sealed candidates after the offer
    assert viewer["grant"] == "accepted" and viewer["unverified"] == 0 and not viewer["errors"], viewer


def test_page_with_wrong_grants_gets_nothing(browser_network, browser_page, tmp_path):
    """The camera with a CAMERA_SECRET refuses pages without a grant, with
    an expired one and with one for another camera, each shown with the
    reason; a grant whose key is not the owner's fails the page's check of
    the camera's challenge. None of them gets an answer."""
    _need_micropython()
    room = "refused-" + uuid.uuid4().hex[:8]
    wrong_key = _grant(secret=bytes(32))
    cases = [({}, "denied: anonymous"), ({"grant": _grant(seconds=-60)}, "denied: expired"),
             ({"grant": _grant(camera="garage")}, "denied: other_camera"),
             ({"grant": wrong_key}, "the camera's challenge does not prove")]
    results = []
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR))
        camera = Camera(loop, server, room, browser_network.address, secrets_dir=_secrets(tmp_path))
        try:
            camera.start()
            for query, error in cases:
                page = browser_page.context.new_page()
                page.goto(_url(server, room, **query))
                _wait(page, "window.viewer.errors.some((e) => e.startsWith(%s))" % json.dumps(error),
                      "no %r on the page" % error, 10)
                time.sleep(0.5)  # anything the camera might still say
                results.append((error, _viewer(page), page.text_content("#status")))
                page.close()
        finally:
            camera.stop()
            loop.call(server.close())
    for error, viewer, status in results:
        assert viewer["pcSignaling"] != "stable", (error, viewer)  # no answer came
        assert viewer["selectedPair"] is None and viewer["ice"] in ("new", "closed"), (error, viewer)
        if error.startswith("denied: "):
            reason = error.split(": ")[1]
            assert viewer["denied"] == reason and reason in status, (viewer, status)
        else:
            assert viewer["grant"] == "not yet" and viewer["unverified"] >= 1, viewer


def test_page_with_a_grant_connects(browser_network, browser_page, tmp_path):
    """The owner's grant: the camera checks the page's sealed offer, answers
    it sealed, and ICE connects."""
    _need_micropython()
    page = browser_page
    room = "granted-" + uuid.uuid4().hex[:8]
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR))
        camera = Camera(loop, server, room, browser_network.address, secrets_dir=_secrets(tmp_path))
        try:
            camera.start()
            page.goto(_url(server, room, grant=_grant()))
            _wait(page, "window.viewer.pcSignaling === 'stable' || window.viewer.denied !== null",
                  "no answer and no refusal from the camera")
            assert _viewer(page)["denied"] is None, _viewer(page)
            _wait(page, ICE_UP, "the page's ICE never connected")
            viewer = _viewer(page)
        finally:
            camera.stop()
            loop.call(server.close())
    assert viewer["grant"] == "accepted" and viewer["unverified"] == 0 and not viewer["errors"], viewer


# -- frames over the data channel ------------------------------------------------

@pytest.mark.parametrize("path", ["host", "relay"])
@pytest.mark.parametrize("runtime", [name for name, _ in MICROPYTHONS])
def test_page_shows_frames(browser_network, browser_page, tmp_path, runtime, path):
    """The whole way, with the camera under the 64- and 32-bit ports: DTLS
    connects, the data channel opens, the camera's JPEG frames show in the
    <img> with fps, latency and rtt; directly, and with ?relay=1 through
    coturn (short-lived credentials from the server)."""
    import dtls_cert
    from turnserver import TurnServer, find_turnserver

    _need_micropython()
    if path == "relay" and find_turnserver() is None and not os.environ.get("CI"):
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    page = browser_page
    room = "frames-" + uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as stack:
        loop = stack.enter_context(LoopThread())
        options, query = {}, {}
        if path == "relay":
            turn = stack.enter_context(TurnServer(auth_secret="turn-secret"))
            options["turn"] = (b"turn-secret", ["turn:%s:%d?transport=udp" % turn.address], 600)
            query["relay"] = "1"
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR, **options))
        camera = Camera(loop, server, room, browser_network.address, dtls=dtls_cert.make(str(tmp_path)))
        camera.command[0] = dict(MICROPYTHONS)[runtime]
        try:
            camera.start()
            page.goto(_url(server, room, **query))
            _wait(page, ICE_UP, "the page's ICE never connected")
            _wait(page, "window.viewer.dtls === 'connected' && window.viewer.channel === 'open'",
                  "DTLS and the data channel never opened", FRAMES_TIMEOUT_S)
            _wait(page, "window.viewer.frames >= 10 && window.viewer.lastImageWidth > 0 && "
                        "window.viewer.rttMs !== null && window.viewer.latencyMs !== null",
                  "no frames shown", FRAMES_TIMEOUT_S)
            viewer = _viewer(page)
            status = camera.says(" data channel via ")
        finally:
            camera.stop()
            loop.call(server.close())
    assert status is not None, camera.output()
    assert not viewer["errors"], viewer["errors"]
    assert (viewer["lastImageWidth"], viewer["lastImageHeight"]) == (320, 240), viewer
    assert viewer["fps"] > 0 and viewer["bytes"] > 0 and viewer["lastFrameSize"] > 0, viewer
    assert 0 <= viewer["rttMs"] < 1000 and -50 < viewer["latencyMs"] < 1000, viewer
    assert viewer["joinToFirstFrameMs"] >= viewer["joinToDtlsMs"] > 0, viewer
    assert viewer["dropped"] <= viewer["frames"] // 2, viewer
    assert viewer["status"] == "live", viewer
    if path == "relay":
        assert viewer["selectedPair"]["local"]["type"] == "relay", viewer["selectedPair"]
    print("\nviewer page (%s, %s): DTLS %d ms and first frame %d ms after the join, %d fps, latency %s ms, rtt %s ms, "
          "%s kbit/s, %d of %d frames dropped" % (
              runtime, path, viewer["joinToDtlsMs"], viewer["joinToFirstFrameMs"], viewer["fps"], viewer["latencyMs"],
              viewer["rttMs"], viewer["kbps"], viewer["dropped"], viewer["frames"]))


CLOSE_AND_REOPEN = """async () => {
  const s = session, firstStream = s.dc.id;
  const closed = new Promise((done) => s.dc.addEventListener("close", done));
  s.dc.close();
  const late = (ms, what) => new Promise((_, fail) => setTimeout(() => fail(new Error(what)), ms));
  await Promise.race([closed, late(5000, "the channel never closed")]);
  const dc = s.pc.createDataChannel("frames again", {ordered: false, maxPacketLifeTime: 500});
  dc.binaryType = "arraybuffer";
  let frames = 0;
  dc.onmessage = (e) => { if (typeof e.data !== "string") frames += 1; };
  const enough = new Promise((done) => { const t = setInterval(() => frames >= 5 && done(clearInterval(t)), 50); });
  await Promise.race([enough, late(10000, "no frames on the new channel")]);
  return {frames, stream: dc.id, firstStream, first: s.dc.readyState};
}"""


def test_browser_closes_the_channel_and_opens_another(browser_network, browser_page, tmp_path):
    """RFC 8831 §6.7: the page closes the frame channel (its stream is reset
    both ways, RFC 6525), then opens another on the same connection; the
    camera (32-bit port) closes its side and streams on the new one."""
    import dtls_cert

    _need_micropython()
    page = browser_page
    room = "reopen-" + uuid.uuid4().hex[:8]
    with LoopThread() as loop:
        server = loop.call(signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR))
        camera = Camera(loop, server, room, browser_network.address, dtls=dtls_cert.make(str(tmp_path)))
        camera.command[0] = MICROPYTHONS[-1][1]
        try:
            camera.start()
            page.goto(_url(server, room))
            _wait(page, "window.viewer.frames >= 5", "no frames shown", FRAMES_TIMEOUT_S)
            reopened = page.evaluate(CLOSE_AND_REOPEN)
            viewer = _viewer(page)
        finally:
            camera.stop()
            loop.call(server.close())
    assert reopened["first"] == "closed" and reopened["frames"] >= 5, reopened
    assert reopened["stream"] == reopened["firstStream"], reopened  # free again after both resets
    assert not viewer["errors"], viewer["errors"]
