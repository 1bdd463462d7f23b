# An ice.aio.Connection on the MicroPython unix port, driven by CPython tests
# (test_connection.py, test_datapath.py) through a file and stdout:
#
#   MICROPYPATH=.frozen:lib micropython mp_peer.py OFFER.json
#
# OFFER (a file: this unix port dies on an argv argument of 256 bytes or more):
#   {"controlling", "ufrag", "pwd", "candidates": [SDP lines], "options": {Connection
#    keyword arguments}, "mode": "echo" | "mirror", "count": N}
# It prints one JSON line with its credentials and candidates, connects, then
# answers `count` datagrams: "echo" with b"echo " + data, "mirror" with the
# datagram as it came. Last it prints {"state", "got": [first datagram as
# text, or null], "answered": N, "send_errors": N} and exits 0.
import asyncio
import json
import sys

from ice import aio


async def main():
    with open(sys.argv[1]) as f:
        peer = json.load(f)
    conn = aio.Connection(peer["controlling"], include_loopback=True, use_ipv6=False,
                          interfaces=[("lo", "127.0.0.1")], port_range=(40000, 40999), **peer["options"])
    await conn.gather_candidates()
    print(json.dumps({"ufrag": conn.local_username, "pwd": conn.local_password,
                      "candidates": [c.to_sdp() for c in conn.local_candidates]}))
    conn.remote_username, conn.remote_password = peer["ufrag"], peer["pwd"]
    for line in peer["candidates"]:
        await conn.add_remote_candidate(aio.Candidate.from_sdp(line))
    await conn.add_remote_candidate(None)
    await conn.connect()
    mirror = peer.get("mode") == "mirror"
    first = None
    answered = errors = 0
    for _ in range(peer.get("count", 1)):
        data = await conn.recv()
        if first is None:
            first = data
        try:
            await conn.send(data if mirror else b"echo " + data)
            answered += 1
        except (ValueError, OSError):
            errors += 1
    await asyncio.sleep_ms(200)
    print(json.dumps({"state": conn.state, "got": None if mirror else first.decode(), "answered": answered,
                      "send_errors": errors}))
    await conn.close()


asyncio.run(main())
