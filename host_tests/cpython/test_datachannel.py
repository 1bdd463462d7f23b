"""Issue 16: the camera under MicroPython (64- and 32-bit unix ports) sends
frames over a WebRTC data channel to aiortc, an independent DTLS/SCTP stack
(PyPI), through the signaling server: the SDP offer/answer, DTLS with the
camera as client, SCTP, DCEP and partially reliable frames, on loopback.
Loss, a dropped first handshake flight and a wrong fingerprint too."""

import asyncio
import os
import struct
import subprocess
import sys
import uuid

import pytest

aiortc = pytest.importorskip("aiortc") if not os.environ.get("CI") else __import__("aiortc")
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.sdp import candidate_from_sdp  # noqa: E402

from peers import MICROPYTHONS, ROOT  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
import dtls_cert  # noqa: E402
import signaling  # noqa: E402
from camlink.signal import SignalingClient  # noqa: E402

FRAME_HEADER = ">BBHII"


@pytest.fixture(autouse=True)
def data_only_dtls(monkeypatch):
    """aiortc fails any DTLS handshake that did not agree an SRTP profile,
    even when it carries only data channels; MicroPython's mbedTLS offers
    no use_srtp extension (RFC 5764), and Chromium does not ask for it. Let
    aiortc skip SRTP keys when none was agreed: nothing else changes."""
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    original = RTCDtlsTransport._setup_srtp

    def setup_srtp(self):
        if self._ssl.get_selected_srtp_profile():
            original(self)

    monkeypatch.setattr(RTCDtlsTransport, "_setup_srtp", setup_srtp)


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return dtls_cert.make(str(tmp_path_factory.mktemp("dtls")))


@pytest.fixture(params=MICROPYTHONS, ids=[name for name, _ in MICROPYTHONS])
def micropython(request):
    return request.param[1]


async def start_camera(binary, identity, port, room, seconds=40):
    cert, key = identity
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib"))
    proc = await asyncio.create_subprocess_exec(
        binary, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"), "--board", "unix",
        "--signaling", "127.0.0.1:%d" % port, "--room", room, "--interface", "127.0.0.1",
        "--seconds", str(seconds), "--dtls-cert", cert, "--dtls-key", key,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=ROOT)
    lines = []

    async def read():
        async for line in proc.stdout:
            lines.append(line.decode(errors="replace").rstrip())

    reader = asyncio.ensure_future(read())
    while not any("joined room" in line for line in lines):
        assert proc.returncode is None and not reader.done(), "\n".join(lines)
        await asyncio.sleep(0.05)
    return proc, lines


async def stop(proc):
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()


async def view(port, room, frames_wanted, tamper=None, timeout_s=20, reopen=False):
    """aiortc as the browser: offer a data channel, take the camera's answer
    and candidates, collect frames. (frames, the channel's open state,
    seconds to the first frame). `reopen`: once the frames are in, close
    the channel, open another and collect `frames_wanted` more on it."""
    client = SignalingClient()
    await client.connect("127.0.0.1", port)
    joined = await client.join(room, "viewer")
    camera = [p["id"] for p in joined["peers"] if p["role"] == "camera"][0]
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("frames", ordered=False, maxPacketLifeTime=500)
    frames = []
    got_all = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = []

    def on_message(message):
        if isinstance(message, bytes):
            if not first:
                first.append(loop.time() - started)
            frames.append(message)
            if len(frames) >= frames_wanted:
                got_all.set()

    channel.on("message", on_message)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    if tamper is not None:
        sdp = tamper(sdp)
    await client.send({"type": "sdp", "kind": "offer", "sdp": sdp, "to": camera})

    async def signals():
        while True:
            msg = await client.recv()
            if msg is None:
                return
            if msg.get("type") == "sdp" and msg.get("kind") == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
            elif msg.get("type") == "candidate" and msg.get("candidate"):
                cand = candidate_from_sdp(msg["candidate"].split(":", 1)[1])
                cand.sdpMid = "0"
                await pc.addIceCandidate(cand)

    task = asyncio.ensure_future(signals())
    try:
        await asyncio.wait_for(got_all.wait(), timeout_s)
        if reopen:
            closed = asyncio.Event()
            channel.on("close", closed.set)
            channel.close()  # aiortc resets its stream and waits for ours (RFC 8831 §6.7)
            await asyncio.wait_for(closed.wait(), 5)
            got_all.clear()
            frames_wanted += len(frames)
            channel = pc.createDataChannel("frames again", ordered=False, maxPacketLifeTime=500)
            channel.on("message", on_message)
            await asyncio.wait_for(got_all.wait(), timeout_s)
    except asyncio.TimeoutError:
        pass
    state = channel.readyState
    task.cancel()
    await pc.close()
    await client.close()
    return frames, state, first[0] if first else None


def check_frames(frames):
    for message in frames:
        magic, _, _, _, size = struct.unpack_from(FRAME_HEADER, message)
        assert magic == 0x83 and size == len(message) - 12
        assert message[12:14] == b"\xff\xd8" and message[-2:] == b"\xff\xd9"  # a whole JPEG


def run_session(micropython, identity, frames_wanted=30, tamper=None, timeout_s=20, reopen=False):
    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0)
        room = "dc-" + uuid.uuid4().hex[:8]
        camera, lines = await start_camera(micropython, identity, server.tcp_port, room)
        try:
            result = await view(server.tcp_port, room, frames_wanted, tamper, timeout_s, reopen)
        finally:
            await stop(camera)
            await server.close()
        return result, lines

    result, lines = asyncio.run(main())
    assert not any("Traceback" in line for line in lines), "\n".join(lines)  # the session ended cleanly
    return result, lines


def test_aiortc_receives_frames_from_the_camera(micropython, identity):
    (frames, state, first_s), lines = run_session(micropython, identity)
    assert len(frames) >= 30, "\n".join(lines)
    assert state == "open"
    check_frames(frames)
    ids = [struct.unpack_from(FRAME_HEADER, m)[2] for m in frames]
    assert len(set(ids)) == len(ids)  # each frame once
    assert any("data channel via host/" in line for line in lines), "\n".join(lines)
    print("\naiortc: first frame %.2f s after the offer" % first_s)


def test_aiortc_closes_the_channel_and_the_camera_streams_on_the_next(micropython, identity):
    """aiortc's close resets the stream (RFC 6525); it completes only when
    the camera resets its side too; frames then come on the new channel."""
    (frames, state, _), lines = run_session(micropython, identity, frames_wanted=10, reopen=True)
    assert len(frames) >= 20 and state == "open", "\n".join(lines)
    check_frames(frames)


def test_wrong_fingerprint_is_refused(micropython, identity):
    def tamper(sdp):
        lines = sdp.split("\r\n")
        for i, line in enumerate(lines):
            if line.startswith("a=fingerprint:sha-256 "):
                digits = line.split(" ", 1)[1]
                lines[i] = "a=fingerprint:sha-256 " + ("00" if digits[:2] != "00" else "11") + digits[2:]
        return "\r\n".join(lines)

    (frames, state, _), lines = run_session(micropython, identity, tamper=tamper, timeout_s=8)
    assert frames == [] and state != "open"
    assert any("does not match the fingerprint" in line for line in lines), "\n".join(lines)


def nft(*commands):
    """Run nft commands in the current network namespace; the output."""
    out = subprocess.run(["nft", *commands], check=True, capture_output=True, text=True)
    return out.stdout


def dropped_by(table):
    """Packets the `drop` rules of `table` dropped (their counters)."""
    listing = nft("list", "table", "ip", table)
    return sum(int(part.split()[0]) for part in listing.split("counter packets ")[1:])


@pytest.fixture
def private_network():
    """A network namespace of this test's own: its nftables rules drop
    packets between the camera and aiortc and nothing else."""
    from browser import PrivateNetwork

    try:
        network = PrivateNetwork()
        network.__enter__()
    except (OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip("no network namespace (needs root and iproute2): %s" % exc)
    try:
        yield network
    finally:
        network.__exit__(None, None, None)


def test_first_handshake_flight_dropped_then_frames(private_network, micropython, identity):
    """The camera's first ClientHello is lost (RFC 6347 §4.2.4: the client
    sends its flight again on its timer); the session still streams."""
    nft("add", "table", "ip", "loss")
    nft("add", "chain", "ip", "loss", "out", "{ type filter hook output priority 0; }")
    # DTLS handshake record (content type 22) holding a ClientHello (type 1);
    # the quota passes the second one (a ClientHello is about 170 bytes with headers)
    nft("add", "rule", "ip", "loss", "out", "udp", "length", "> 60", "@th,64,8", "22", "@th,168,8", "1",
        "quota", "until", "300", "bytes", "counter", "drop")
    (frames, state, first_s), lines = run_session(micropython, identity, frames_wanted=20)
    assert dropped_by("loss") == 1
    assert len(frames) >= 20 and state == "open", "\n".join(lines)
    check_frames(frames)
    assert first_s >= 0.9  # waited for the resend (mbedTLS's first timeout is 1 s)


def test_frames_keep_coming_through_5_percent_loss(private_network, micropython, identity):
    """5 % of datagrams each way lost once the session streams: SCTP
    retransmits or abandons (the channel's 500 ms lifetime), frames go on."""
    (frames, state, _), lines = run_session(micropython, identity, frames_wanted=10)
    assert len(frames) >= 10
    nft("add", "table", "ip", "loss")
    nft("add", "chain", "ip", "loss", "out", "{ type filter hook output priority 0; }")
    # every 20th UDP datagram: exactly 5 %, so the count of losses does not
    # hang on a random draw
    nft("add", "rule", "ip", "loss", "out", "meta", "l4proto", "udp", "numgen", "inc", "mod", "20", "0",
        "counter", "drop")
    (frames, state, _), lines = run_session(micropython, identity, frames_wanted=60, timeout_s=30)
    assert dropped_by("loss") >= 10  # 20 in runs here: 60 frames are ~400 datagrams
    assert len(frames) >= 60 and state == "open", "\n".join(lines)
    check_frames(frames)


DTLS_GARBAGE = """
import sys
from webrtc.dtls import DtlsClient
cert = open(sys.argv[1], "rb").read()
key = open(sys.argv[2], "rb").read()
sent = []
seed = 99
for round in range(20):
    client = DtlsClient(cert, key, "sha-256", b"\\0" * 32, lambda r: sent.append(len(r)) or True, lambda p: None)
    client.start()
    for n in range(10):
        size = 13 + seed % 300
        record = bytearray(size)
        for i in range(size):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            record[i] = (seed >> 16) & 0xFF
        record[0] = 20 + seed % 44  # a DTLS content type byte (RFC 7983)
        record[1], record[2] = 0xFE, 0xFD
        client.receive(bytes(record))
        client.poll()
    assert client.state in ("connecting", "failed"), client.state
    client.close()
print("ok", len(sent))
"""


@pytest.mark.parametrize("runtime", ["cpython"] + [name for name, _ in MICROPYTHONS])
def test_garbage_dtls_records_fail_the_handshake_cleanly(runtime, identity, tmp_path):
    """Random records into the DTLS client, on every runtime: a handshake
    that fails says so in `state`; nothing raises."""
    script = tmp_path / "garbage.py"
    script.write_text(DTLS_GARBAGE)
    binary = sys.executable if runtime == "cpython" else dict(MICROPYTHONS)[runtime]
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib"), PYTHONPATH=os.path.join(ROOT, "lib"))
    out = subprocess.run([binary, str(script), *identity], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok "), out.stdout + out.stderr
    assert int(out.stdout.split()[1]) >= 20  # a ClientHello from each client


def test_camera_on_cpython_sends_frames_to_aiortc(identity):
    """The same camera app, SCTP and data channel code on CPython, under its
    own DTLS adapter (pyOpenSSL): aiortc receives whole frames."""
    import unix as unix_board
    from cam.app import CameraApp
    from cam.synthetic import SyntheticCamera

    async def main():
        server = await signaling.serve("127.0.0.1", 0, 0)
        lines = []
        app = CameraApp(unix_board, SyntheticCamera(160, 120), "127.0.0.1", server.tcp_port, "cpy",
                        connection_options={"interfaces": [("lo", "127.0.0.1")], "include_loopback": True,
                                            "use_ipv6": False},
                        status=lines.append, status_ms=200, dtls=identity)
        task = asyncio.ensure_future(app.run())
        while not any("joined room" in line for line in lines):
            await asyncio.sleep(0.02)
        try:
            frames, state, _ = await view(server.tcp_port, "cpy", 20)
        finally:
            app.stop()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        return frames, state, lines

    frames, state, lines = asyncio.run(main())
    assert len(frames) >= 20 and state == "open", "\n".join(lines)
    check_frames(frames)
    assert any("data channel via host/" in line for line in lines), "\n".join(lines)
