"""The camera app as firmware/main.py runs it on the unix port, plus a task
that samples the heap every 500 ms:

    micropython -m camera REPO_ROOT SIGNALING_PORT ROOM

prints `STAGE name live-bytes` (before imports, after imports, after the
app is made) and `HEAP ms live-bytes free-before-collect`."""

import gc
import sys
import time

root, port, room = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.append(root + "/boards")
gc.collect()
print("STAGE start", gc.mem_alloc())

import asyncio  # noqa: E402

from cam.app import CameraApp  # noqa: E402
from cam.camera_source import open_source  # noqa: E402

board = __import__("unix")
gc.collect()
print("STAGE imports", gc.mem_alloc())


async def sampler():
    t0 = time.ticks_ms()
    while True:
        await asyncio.sleep_ms(500)
        free = gc.mem_free()
        gc.collect()
        print("HEAP", time.ticks_diff(time.ticks_ms(), t0), gc.mem_alloc(), free)


async def main():
    options = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}
    app = CameraApp(board, open_source(board.CAMERA, 320, 240), "127.0.0.1", port, room,
                    connection_options=options)
    gc.collect()
    print("STAGE app", gc.mem_alloc())
    asyncio.create_task(sampler())
    await app.run()


asyncio.run(main())
