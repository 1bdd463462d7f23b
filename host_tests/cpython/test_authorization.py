"""Only the owner's viewers see the camera (issue 20): the camera app under
MicroPython (64- and 32-bit) with a CAMERA_SECRET refuses anonymous
viewers, expired grants, grants for another camera, replayed and tampered
messages, and tells them nothing about itself, while the owner's viewer
(tools/viewer.py with a grant) streams in the same room at the same time.
Then TLS signaling from the camera with a private CA, and a wrong CA."""

import asyncio
import os
import time

import pytest

from camlink import grants
from camlink.signal import SignalingClient
from peers import MICROPYTHONS, ROOT, run
from testca import TestCA

SECRET = bytes(range(32))
CAMERA = "garage"
REVEALING = {"ice", "candidate", "end-of-candidates", "sdp"}  # what an intruder must never get


def grant(viewer="alice", camera=CAMERA, seconds=600):
    return grants.issue(SECRET, camera, viewer, int(time.time()) + seconds)


async def start_camera(micropython, tmp_path, signaling_url, room, extra=""):
    (tmp_path / "secrets.py").write_text("CAMERA_SECRET = %r\nCAMERA_ID = %r\n%s" % (SECRET.hex(), CAMERA, extra))
    return await asyncio.create_subprocess_exec(
        micropython, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"), "--board", "unix",
        "--signaling", signaling_url, "--room", room, "--interface", "127.0.0.1", "--seconds", "40",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, MICROPYPATH="%s:.frozen" % tmp_path))


class Intruder:
    """A raw signaling client in the room: sends what a test scripts and
    keeps every message the camera sends it."""

    def __init__(self):
        self.client = SignalingClient()
        self.got = []
        self.camera = None
        self._reader = None

    async def join(self, port, room):
        await self.client.connect("127.0.0.1", port)
        joined = await self.client.join(room, "viewer")
        self.camera = next((p["id"] for p in joined["peers"] if p["role"] == "camera"), None)
        assert self.camera, "the camera is not in the room"
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self):
        while True:
            msg = await self.client.recv()
            if msg is None:
                return
            if msg.get("from") == self.camera:
                self.got.append(msg)

    async def send(self, msg):
        msg = dict(msg, to=self.camera)
        await self.client.send(msg)

    async def wait_for(self, kind, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.got:
                if msg.get("type") == kind:
                    return msg
            await asyncio.sleep(0.02)
        raise AssertionError("no %s from the camera; got %s" % (kind, self.got))

    def kinds(self):
        return {m.get("type") for m in self.got}

    async def close(self):
        if self._reader:
            self._reader.cancel()
        await self.client.close()


def ice_message():
    return {"type": "ice", "ufrag": "intr", "pwd": "intruder-password-0123"}


async def opened_by(auth_text, intruder):
    """hello -> challenge -> a sealed opening `ice` (not sent); the ViewerAuth."""
    viewer = grants.ViewerAuth(auth_text)
    await intruder.send(viewer.hello())
    assert viewer.on_challenge(await intruder.wait_for("challenge"))
    return viewer, viewer.seal(ice_message())


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
def test_only_the_owners_viewer_gets_in(tmp_path, micropython):
    import signaling
    import viewer as viewer_tool

    async def main():
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0)
        camera = await start_camera(micropython, tmp_path, "127.0.0.1:%d" % server.tcp_port, "auth-cam")
        intruders = {name: Intruder() for name in ("anonymous", "expired", "other_camera", "replay", "tamper",
                                                   "legit_raw")}
        owner = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), "auth-cam", ("127.0.0.1", 0),
                                   include_loopback=True, log=lambda line: None, grant=grant(),
                                   connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
        try:
            for _ in range(100):  # until the camera is in the room
                if any("joined room" in line for line in await _lines(camera, 0.1)):
                    break
            for intruder in intruders.values():
                await intruder.join(server.tcp_port, "auth-cam")
            await owner.start()

            await intruders["anonymous"].send(ice_message())
            await intruders["expired"].send(grants.ViewerAuth(grant(seconds=-1)).hello())
            await intruders["other_camera"].send(grants.ViewerAuth(grant(camera="porch")).hello())
            # A viewer with a real grant whose opening message is changed on the way.
            _, sealed = await opened_by(grant("bob"), intruders["tamper"])
            sealed["pwd"] = "swapped-password-01234"
            await intruders["tamper"].send(sealed)
            # The owner's own opening, sent again by another peer id.
            _, sealed = await opened_by(grant("carol"), intruders["legit_raw"])
            await intruders["legit_raw"].send(sealed)
            await intruders["legit_raw"].wait_for("ice")  # carol's grant is good: the camera answers her
            await intruders["replay"].send(sealed)

            status = await owner.wait_for(lambda s: s["frames_completed"] >= 10, 30)
            assert status["denied"] is None and status["unverified"] == 0, status
            for name in ("anonymous", "expired", "other_camera", "tamper"):
                await intruders[name].wait_for("denied")
            await asyncio.sleep(0.5)  # time for anything the camera might still say
            reasons = {name: [m["reason"] for m in i.got if m["type"] == "denied"] for name, i in intruders.items()}
            assert reasons["anonymous"] == ["anonymous"], reasons
            assert reasons["expired"] == ["expired"], reasons
            assert reasons["other_camera"] == ["other_camera"], reasons
            assert reasons["tamper"] == ["bad_mac"], reasons
            assert reasons["replay"] in ([], ["bad_mac"]), reasons
            for name, intruder in intruders.items():
                if name != "legit_raw":
                    assert not intruder.kinds() & REVEALING, (name, intruder.got)
        finally:
            for intruder in intruders.values():
                await intruder.close()
            await owner.close()
            camera.terminate()
            out = (await camera.stdout.read()).decode()
            await camera.wait()
            await server.close()
        assert "refused" in out, out[-2000:]

    run(main(), timeout=90)


async def _lines(proc, seconds):
    lines = []
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), seconds)
            if not line:
                break
            lines.append(line.decode())
    except asyncio.TimeoutError:
        pass
    return lines


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
def test_tls_signaling_with_a_private_ca_and_a_wrong_one(tmp_path, micropython):
    """The camera joins over TLS (tls://localhost, its certificate from a CA
    made here) and the owner's viewer, also over TLS, streams; with another
    CA the camera stops at once, saying why."""
    import ssl

    import signaling
    import viewer as viewer_tool

    ca = TestCA(tmp_path)
    cert, key = ca.server("localhost")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def main():
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0, tls=server_tls)
        url = "tls://localhost:%d" % server.tcp_port
        other_dir = tmp_path / "wrong"
        other_dir.mkdir()
        wrong = TestCA(other_dir, "another CA")
        refused = await start_camera(micropython, other_dir, url, "tls-cam", "SIGNALING_CA = %r\n" % wrong.pem)
        out = (await asyncio.wait_for(refused.stdout.read(), 20)).decode()
        assert await refused.wait() == 1, out
        assert "camera: signaling %s: " % url in out and ("TLS" in out or "certificate" in out.lower()), out

        camera = await start_camera(micropython, tmp_path, url, "tls-cam", "SIGNALING_CA = %r\n" % ca.pem)
        owner = viewer_tool.Viewer(("localhost", server.tcp_port), "tls-cam", ("127.0.0.1", 0),
                                   include_loopback=True, log=lambda line: None, grant=grant(),
                                   signaling_tls=ssl.create_default_context(cafile=ca.pem),
                                   connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
        try:
            await owner.start()
            await owner.wait_for(lambda s: s["frames_completed"] >= 5, 30)
        finally:
            await owner.close()
            camera.terminate()
            await camera.wait()
            await server.close()

    run(main(), timeout=90)


@pytest.mark.parametrize("first", ["camera", "viewer"])
def test_short_lived_turn_credentials_from_the_signaling_server(tmp_path, first):
    """coturn in shared-secret mode: the credentials the signaling server
    hands out carry a relay-only session between the camera (MicroPython)
    and the owner's viewer, neither holding a TURN password; expired ones
    are refused by coturn. The second to join comes after the first one's
    credentials from `joined` expired: the first allocates with the fresh
    ones the server sent it since (`ice-servers`)."""
    import admission
    import signaling
    import viewer as viewer_tool
    from ice import aio
    from turnserver import TurnServer

    secret = "shared-secret-of-this-test"
    micropython = MICROPYTHONS[-1][1]
    ttl_s = 6

    async def main(turn):
        username, password = admission.turn_credentials(secret.encode(), "late", -60)
        late = aio.Connection(True, turn_server=turn.address, turn_username=username, turn_password=password,
                              transport_policy="relay", include_loopback=True, use_ipv6=False)
        await late.gather_candidates()
        [allocation] = late.stats()["turn"]
        await late.close()
        assert allocation["state"] == "failed" and allocation["relayed"] is None, allocation

        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0, turn=(secret.encode(), ["turn:127.0.0.1:%d" % turn.port], ttl_s))
        owner = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), "rest-cam", ("127.0.0.1", 0), relay_only=True,
                                   include_loopback=True, log=lambda line: None, grant=grant(),
                                   connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
        camera = None
        try:
            if first == "viewer":
                await owner.start()
                await asyncio.sleep(ttl_s + 1)  # the viewer's credentials from `joined` are stale now
            camera = await start_camera(micropython, tmp_path, "127.0.0.1:%d" % server.tcp_port, "rest-cam",
                                        "ICE_TRANSPORT_POLICY = 'relay'\n")
            if first == "camera":
                await asyncio.sleep(ttl_s + 1)  # the camera's are
                await owner.start()
            status = await owner.wait_for(lambda s: s["frames_completed"] >= 5, 30)
            assert status["selected"]["local_type"] == "relay" and status["selected"]["remote_type"] == "relay"
            assert status["turn"][0]["server"][1] == turn.port
        finally:
            await owner.close()
            if camera is not None:
                camera.terminate()
                await camera.wait()
            await server.close()

    with TurnServer(auth_secret=secret) as turn:
        run(main(turn), timeout=90)


def test_browsers_reach_the_tls_server_over_wss(tmp_path):
    import ssl

    import signaling
    import websockets.asyncio.client

    ca = TestCA(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*ca.server("localhost"))

    async def main():
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0, tls=server_tls)
        try:
            url = "wss://localhost:%d/ws" % server.http_port
            async with websockets.asyncio.client.connect(url, ssl=ssl.create_default_context(cafile=ca.pem)) as ws:
                await ws.send('{"type": "join", "room": "wss", "role": "viewer"}')
                assert '"joined"' in await asyncio.wait_for(ws.recv(), 5)
            with pytest.raises(ssl.SSLCertVerificationError):  # a browser without the CA refuses it too
                async with websockets.asyncio.client.connect(url, ssl=ssl.create_default_context()):
                    pass
        finally:
            await server.close()

    run(main())
