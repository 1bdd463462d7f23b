"""The camera app with a DTLS certificate (browsers get a data channel),
on one address, plus a task that samples the live heap every 500 ms:

    micropython -m browser_camera REPO_ROOT SIGNALING_PORT ROOM ADDRESS CERT_DER KEY_DER

prints the app's status lines and `HEAP ms live-bytes` (after gc.collect())."""

import gc
import sys
import time

root, port, room, address = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.append(root + "/boards")

import asyncio  # noqa: E402

from cam.app import CameraApp  # noqa: E402
from cam.camera_source import open_source  # noqa: E402

board = __import__("unix")


async def sampler():
    t0 = time.ticks_ms()
    while True:
        await asyncio.sleep_ms(500)
        gc.collect()
        print("HEAP", time.ticks_diff(time.ticks_ms(), t0), gc.mem_alloc())


async def main():
    options = {"interfaces": [("v0", address)], "include_loopback": True, "use_ipv6": False}
    app = CameraApp(board, open_source(board.CAMERA, 320, 240), "127.0.0.1", port, room,
                    connection_options=options, dtls=(sys.argv[5], sys.argv[6]))
    asyncio.create_task(sampler())
    await app.run()


asyncio.run(main())
