"""Connect/close cycles of two ice.aio.Connections on loopback, with the
heap after gc.collect() after every cycle:

    micropython -m cycles N

prints `CYCLES n failures ms` and `VALUES v1 v2 ...`."""

import gc
import sys
import time

import asyncio
from loopback import connected_pair


async def cycle():
    a, b = await connected_pair()
    await a.send(b"x")
    ok = await b.recv() == b"x"
    await a.close()
    await b.close()
    return ok


async def main(n):
    started = time.ticks_ms()
    failures = 0
    values = [0] * n  # preallocated: the record adds nothing to the heap as it fills
    for i in range(n):
        if not await cycle():
            failures += 1
        gc.collect()
        values[i] = gc.mem_alloc()
    print("CYCLES", n, failures, time.ticks_diff(time.ticks_ms(), started))
    print("VALUES", " ".join(str(v) for v in values))


asyncio.run(main(int(sys.argv[1])))
