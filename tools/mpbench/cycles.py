"""Connect/close cycles of two ice.aio.Connections on loopback, with the
heap after gc.collect() after every cycle:

    micropython -m cycles N

prints `CYCLES n failures ms` and `VALUES v1 v2 ...`."""

import gc
import sys
import time

import asyncio
from ice import aio

OPTIONS = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}


async def cycle():
    a = aio.Connection(True, **OPTIONS)
    b = aio.Connection(False, **OPTIONS)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for s, r in ((a, b), (b, a)):
        r.remote_username, r.remote_password = s.local_username, s.local_password
        for c in s.local_candidates:
            await r.add_remote_candidate(aio.Candidate.from_sdp(c.to_sdp()))
        await r.add_remote_candidate(None)
    await asyncio.gather(a.connect(), b.connect())
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
