"""The camera app (firmware/cam/app.py) in-process on CPython, against real
signaling and real viewers: the viewer cap, frame-rate back-off on loss,
and freeing the session of a viewer that vanished without a goodbye."""

import asyncio
import types

import unix as unix_board
from cam.app import CameraApp, Session
from camlink.signal import SignalingClient
from cam.synthetic import SyntheticCamera
from ice import aio
from tools import signaling, viewer as viewer_tool

LOOPBACK = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}


def board(**changes):
    """boards/unix.py with changes; consent timers shortened so a lost
    viewer is noticed in about a second (RFC 7675 timings scaled down)."""
    fields = {k: getattr(unix_board, k) for k in dir(unix_board) if k.isupper()}
    fields["ICE"] = dict(fields["ICE"], consent_interval_ms=300, disconnected_after_ms=800,
                         consent_timeout_ms=2000)
    fields.update(changes)
    return types.SimpleNamespace(**fields)


def run(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=10, what="condition"):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Camera:
    """Signaling server plus the camera app, started and stopped together."""

    def __init__(self, settings):
        self.settings = settings
        self.lines = []

    async def __aenter__(self):
        self.server = await signaling.serve("127.0.0.1", 0, 0)
        self.app = CameraApp(self.settings, SyntheticCamera(64, 48), "127.0.0.1", self.server.tcp_port, "cam",
                             connection_options=LOOPBACK, status=self.lines.append,
                             restart_after_ms=300, status_ms=200)
        self.task = asyncio.ensure_future(self.app.run())
        await until(lambda: any("joined room" in line for line in self.lines), what="camera join")
        return self

    async def __aexit__(self, *exc):
        self.app.stop()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.server.close()

    def viewer(self):
        return viewer_tool.Viewer(("127.0.0.1", self.server.tcp_port), "cam", ("127.0.0.1", 0),
                                  include_loopback=True, connection_options=dict(LOOPBACK), log=lambda line: None,
                                  busy_retry_s=0.5)


def test_second_viewer_is_refused_at_the_board_cap_and_served_when_a_slot_frees():
    async def main():
        async with Camera(board(MAX_VIEWERS=1)) as camera:
            first = camera.viewer()
            await first.start()
            await first.wait_for(lambda s: s["frames_completed"] >= 3, timeout=10)
            second = camera.viewer()
            await second.start()
            await second.wait_for(lambda s: s["busy"], timeout=10)
            assert len(camera.app.sessions) == 1
            await first.close()  # leaves the room: the camera frees the slot
            await second.wait_for(lambda s: s["frames_completed"] >= 3, timeout=15)
            await second.close()

    run(main())


def test_frame_rate_halves_on_loss_and_climbs_back():
    session = Session("v1", aio.Connection(False), 12, lambda msg: None)
    session.on_report(90, 10)  # 10 % dropped
    assert session.fps == 6
    session.on_report(100, 3)  # 3 %: under the 5 % limit
    assert session.fps == 7
    for _ in range(10):
        session.on_report(50, 0)
    assert session.fps == 12
    for _ in range(6):
        session.on_report(0, 5)
    assert session.fps == 1
    session.next_frame_at = 5000
    session.frame_sent(5300)  # sent within its interval: the next one a second after this one was due
    assert session.next_frame_at == 1005000
    session.frame_sent(2500000)  # more than an interval late: at once, no burst to catch up
    assert session.next_frame_at == 2500000


def test_vanished_viewer_is_freed_within_the_consent_timeout():
    """A viewer whose network goes silent (no bye, its signaling connection
    left half-open and mute): consent fails, restarts go unanswered, and the
    camera frees the session so a new viewer can take the slot."""
    async def main():
        async with Camera(board(MAX_VIEWERS=1)) as camera:
            client = SignalingClient()
            await client.connect("127.0.0.1", camera.server.tcp_port)
            joined = await client.join("cam", "viewer")
            camera_id = joined["peers"][0]["id"]
            conn = aio.Connection(True, **LOOPBACK)
            await conn.gather_candidates()
            await client.send({"type": "ice", "ufrag": conn.local_username, "pwd": conn.local_password,
                               "to": camera_id})
            for cand in conn.local_candidates:
                await client.send({"type": "candidate", "candidate": "candidate:" + cand.to_sdp(), "to": camera_id})
            while conn.remote_password is None:
                msg = await client.recv()
                if msg["type"] == "ice":
                    conn.remote_username, conn.remote_password = msg["ufrag"], msg["pwd"]
            while True:  # the camera's candidates
                msg = await asyncio.wait_for(client.recv(), 5)
                if msg["type"] == "candidate":
                    await conn.add_remote_candidate(aio.Candidate.from_sdp(msg["candidate"]))
                if msg["type"] == "end-of-candidates":
                    break
            await conn.connect()
            await asyncio.wait_for(conn.recv(), 5)  # frames flow
            assert len(camera.app.sessions) == 1
            await conn.close()  # the viewer's network dies; signaling says nothing
            await until(lambda: not camera.app.sessions, timeout=8, what="the camera to free the session")
            assert any("giving up on" in line for line in camera.lines), camera.lines
            assert any("restarting ICE" in line for line in camera.lines), camera.lines
            newcomer = camera.viewer()
            await newcomer.start()
            await newcomer.wait_for(lambda s: s["frames_completed"] >= 2, timeout=15)
            await newcomer.close()
            await client.close()

    run(main())
