"""An ice.aio.Connection on a MicroPython unix port that a
CPython program drives through a file and stdout: the other side in the
Connection tests (host_tests/cpython/peers.py) and the "library alone"
heap floor of `make bench` (tools/bench_device.py):

    MICROPYPATH=.frozen:lib micropython tools/mpbench/peer.py OFFER.json

OFFER (a file: the unix port dies on an argv argument of 256 bytes or more):
  {"controlling", "ufrag", "pwd", "candidates": [SDP lines], "options": {Connection
   keyword arguments, "config" as a dict of ice.agent.Config's, "turn_ca" a CA file for
   TURN over TLS}, "mode": "echo" | "mirror" |
   "stream", "count": N, "meter": bool}
It prints one JSON line with its credentials, candidates and TURN
allocations ([state, error] each), connects, then
in "stream" mode sends `count` numbered datagrams (see stream()), else
answers `count` datagrams: "echo" with b"echo " + data, "mirror" with the
datagram as it came, each by send_nowait() (waiting for writable() when the
socket is full). Last it prints {"state", "got": [first datagram as text, or
null], "answered": N, "send_errors": N, "send_alloc_max": with "meter", the
most bytes one send_nowait() allocated after the first 10} and exits 0. The
meter turns gc off around each send: not for TURN over TCP, where
MicroPython's stream write can stall with gc off."""

import asyncio
import gc
import json
import sys

from ice import aio, netio
from ice.agent import Config


async def main():
    frame = bytearray(1100)  # what "stream" sends, allocated before the heap fills with holes
    with open(sys.argv[1]) as f:
        peer = json.load(f)
    options = peer["options"]
    if "config" in options:
        options["config"] = Config(**options["config"])
    if "turn_ca" in options:
        with open(options.pop("turn_ca"), "rb") as f:
            options["turn_ssl"] = netio.tls_context(cadata=f.read())
    conn = aio.Connection(peer["controlling"], include_loopback=True, use_ipv6=False,
                          interfaces=[("lo", "127.0.0.1")], port_range=(40000, 40999), **options)
    await conn.gather_candidates()
    print(json.dumps({"ufrag": conn.local_username, "pwd": conn.local_password,
                      "candidates": [c.to_sdp() for c in conn.local_candidates],
                      "turn": [[t["state"], t["error"]] for t in conn.stats()["turn"]]}))
    conn.remote_username, conn.remote_password = peer["ufrag"], peer["pwd"]
    for line in peer["candidates"]:
        await conn.add_remote_candidate(aio.Candidate.from_sdp(line))
    await conn.add_remote_candidate(None)
    await conn.connect()
    if peer.get("mode") == "stream":
        await stream(conn, peer["count"], frame)
        return
    mirror = peer.get("mode") == "mirror"
    meter = peer.get("meter", False)
    first = None
    answered = errors = alloc_max = 0
    for _ in range(peer.get("count", 1)):
        data = await conn.recv()
        if first is None:
            first = data
        reply = data if mirror else b"echo " + data
        try:
            if meter:
                gc.disable()
            before = gc.mem_alloc()
            sent = conn.send_nowait(reply)
            used = gc.mem_alloc() - before
            gc.enable()
            while not sent:
                await conn.writable()
                sent = conn.send_nowait(reply)
            answered += 1
            if answered > 10:
                alloc_max = max(alloc_max, used)
        except (ValueError, OSError):
            gc.enable()
            errors += 1
    await asyncio.sleep_ms(200)
    print(json.dumps({"state": conn.state, "got": None if mirror else first.decode(), "answered": answered,
                      "send_errors": errors, "send_alloc_max": alloc_max}))
    await conn.close()


async def stream(conn, count, data):
    """Send `count` datagrams (`data`, 1,100 bytes) numbered 0.. as fast as
    the socket takes them (send_nowait, then writable() when it is full);
    print {"sent", "waits", "counters"} and close."""
    data[0] = 0x81
    waits = 0
    for seq in range(count):
        data[1] = seq >> 8
        data[2] = seq & 0xFF
        while not conn.send_nowait(data):
            waits += 1
            await conn.writable()
    await asyncio.sleep_ms(500)
    print(json.dumps({"sent": count, "waits": waits, "counters": conn.stats()["driver"]}))
    await conn.close()


asyncio.run(main())
