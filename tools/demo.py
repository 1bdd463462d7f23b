"""The camera-to-viewer demo on one machine, no board needed (`make demo`).

Starts the signaling server, the camera app under the MicroPython unix port
(synthetic JPEG frames, the `unix` board settings) and the CPython viewer,
all on loopback; prints the two pages' addresses and progress lines: the
browser page (tools/web/index.html, served by the signaling server), where
the browser takes frames straight from the camera over a WebRTC data
channel, and the CPython viewer's page. The camera gets a secret and a
DTLS certificate made for the run and lets in only viewers with a grant
from it (camlink.grants): the CPython viewer holds one, and the browser
page's address carries another.

    python tools/demo.py [--seconds N] [--page-port 8080] [--http-port 8081] [--heap 256K] [--signaling mqtt]

`--signaling mqtt` (make demo SIGNALING=mqtt) signals through a private
Mosquitto (tools/mosquitto.py) instead of tools/signaling.py.

Runs until Ctrl-C, or for N seconds. Exit status 1 when no frame reached the
viewer.
"""

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from urllib.parse import quote

import dtls_cert
import packages
import signaling
import viewer as viewer_tool
from camlink import grants

ROOT = packages.ROOT
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
BUILD = os.path.join(ROOT, "build", "demo")
ROOM = "demo"


def compile_camera():
    """The library and the app as bytecode (.mpy), the way a board loads
    them: compiling the source on the device would need far more heap."""
    packages.compile_packages(BUILD)


async def pipe_lines(stream, prefix, log):
    while True:
        line = await stream.readline()
        if not line:
            return
        log(prefix + line.decode(errors="replace").rstrip())


def camera_command(signaling_url, heap, seconds=None):
    cert, key = dtls_cert.make(os.path.join(BUILD, "dtls"))
    command = [MICROPYTHON, "-X", "heapsize=" + heap, os.path.join(ROOT, "firmware", "main.py"),
               "--board", "unix", "--signaling", signaling_url, "--room", ROOM,
               "--interface", "127.0.0.1", "--dtls-cert", cert, "--dtls-key", key]
    if seconds is not None:
        command += ["--seconds", str(seconds)]
    return command


async def run(seconds=None, http_port=8081, heap=None, log=None, stop=None, on_ready=None, mqtt=False,
              page_port=8080):
    """Run the three parts until `stop` (an asyncio.Event) is set, SIGINT or
    SIGTERM, or `seconds` pass; returns the viewer's frame count at the end.
    `on_ready(viewer)` is called once the page is served."""
    log = log or log_line
    # The MQTT client and its reads cost the camera heap (and its small reads
    # fragment it): a board with PSRAM has it to spare.
    # A browser's DTLS session keeps mbedTLS's record buffers in the heap
    # (about 40 KB on the unix port), beside the CPython viewer's session.
    heap = heap or "384K"
    compile_camera()
    camera_secret = secrets.token_bytes(32)
    settings = os.path.join(BUILD, "settings")  # the camera's secrets.py, first on its MICROPYPATH
    os.makedirs(settings, exist_ok=True)
    with open(os.open(os.path.join(settings, "secrets.py"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("CAMERA_SECRET = %r\nCAMERA_ID = %r\n" % (camera_secret.hex(), ROOM))
    grant = grants.issue(camera_secret, ROOM, "demo-viewer", time.time() + 24 * 3600)
    broker = server = None
    if mqtt:
        from mosquitto import Broker

        broker = Broker({ROOM: secrets.token_hex(16)}).start()
        url, address, account = broker.url(ROOM), (broker.ip, broker.port), (ROOM, broker.accounts[ROOM])
    else:
        server = await signaling.serve("127.0.0.1", 0, page_port, static_dir=signaling.WEB_DIR)
        url, address, account = "127.0.0.1:%d" % server.tcp_port, ("127.0.0.1", server.tcp_port), None
    viewer = viewer_tool.Viewer(address, ROOM, ("127.0.0.1", http_port), include_loopback=True, grant=grant,
                                signaling_mqtt=account,
                                connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]},
                                log=lambda line: log("viewer | " + line))
    camera = await asyncio.create_subprocess_exec(
        *camera_command(url, heap), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, MICROPYPATH="%s:.frozen:%s" % (settings, BUILD)))
    output = asyncio.ensure_future(pipe_lines(camera.stdout, "camera | ", log))
    try:
        await viewer.start()
        log("demo: signaling %s, camera pid %d (MicroPython unix port)" % (
            "through Mosquitto on %s:%d" % address if mqtt else "on %s:%d" % address, camera.pid))
        if server is not None:
            browser_grant = grants.issue(camera_secret, ROOM, "demo-browser", time.time() + 24 * 3600)
            claims, _, key = browser_grant.partition("#")
            log("demo: browser page, frames straight from the camera over a WebRTC data channel: "
                "http://127.0.0.1:%d/?room=%s&grant=%s#%s" % (server.http_port, ROOM, quote(claims, safe=""), key))
        log("demo: CPython viewer's page: %s" % viewer.url)
        log("demo: the camera lets in only viewers with a grant from its secret; this viewer holds one")
        if on_ready is not None:
            on_ready(viewer)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(camera.wait())]
        if seconds is not None:
            waiters.append(asyncio.ensure_future(asyncio.sleep(seconds)))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if camera.returncode is not None:
            log("demo: the camera exited with status %d" % camera.returncode)
        return viewer.status().get("frames_completed", 0)
    finally:
        if camera.returncode is None:
            camera.terminate()
            await camera.wait()
        await output
        await viewer.close()
        if broker is not None:
            broker.close()
        if server is not None:
            await server.close()


def log_line(line):
    print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--http-port", type=int, default=8081, help="CPython viewer's page port (0: any free)")
    parser.add_argument("--page-port", type=int, default=8080, help="browser page port (0: any free)")
    parser.add_argument("--heap", help="MicroPython heap for the camera (default 256K, 320K with MQTT)")
    parser.add_argument("--signaling", choices=("server", "mqtt"), default="server",
                        help="tools/signaling.py (default) or a private Mosquitto broker")
    args = parser.parse_args(argv)
    frames = asyncio.run(run(args.seconds, args.http_port, args.heap, mqtt=args.signaling == "mqtt",
                             page_port=args.page_port))
    print("demo: %d frames reached the viewer" % frames, flush=True)
    return 0 if frames else 1


if __name__ == "__main__":
    sys.exit(main())
