"""The camera app sending same-size frames at a set rate to a viewer:

    micropython -m camera_rate REPO_ROOT SIGNALING_PORT ROOM FPS FRAME_BYTES

The unix board's settings with FPS_MAX = FPS, no backing off on the
viewer's loss reports, and a source whose capture() returns one
FRAME_BYTES-long frame (a JPEG's start and end markers around filler): what
is measured is the transport, not an encoder."""

import sys

root, port, room = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fps, size = int(sys.argv[4]), int(sys.argv[5])
sys.path.append(root + "/boards")

import asyncio  # noqa: E402

from cam import app as camera_app  # noqa: E402

# The rate under test is held: a loss shows as the viewer's dropped frames,
# not as a halved rate that climbs back one frame per second per report.
camera_app.Session.on_report = lambda self, completed, dropped: None

unix = __import__("unix")


class Settings:
    """The unix board, streaming at `fps`."""

    ICE = unix.ICE
    PORT_RANGE = unix.PORT_RANGE
    STUN_SERVERS = []
    TURN_SERVERS = []
    MAX_VIEWERS = 1
    FPS_MAX = fps


class FixedFrame:
    def __init__(self, size):
        frame = bytearray(size)
        frame[0:2] = b"\xff\xd8"
        frame[-2:] = b"\xff\xd9"
        self.frame = bytes(frame)

    def capture(self):
        return self.frame


async def main():
    options = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}
    app = camera_app.CameraApp(Settings, FixedFrame(size), "127.0.0.1", port, room, connection_options=options,
                    status=lambda line: None)
    await app.run()


asyncio.run(main())
