"""What viewer grants cost the camera (camlink.grants): the heap the Gate
and one authorized session's PeerAuth keep, and the time and bytes
allocated per hello answered, per viewer admitted and per sealed or
checked message:

    micropython -m grant_cost ROUNDS
    python tools/mpbench/grant_cost.py ROUNDS      (CPython: times only)

Prints `MODULE bytes` (importing camlink.grants), `GATE bytes`,
`SESSION bytes`, then per step `STEP name µs bytes` (medians over ROUNDS;
bytes -1 on CPython)."""

import gc
import sys

from ice import digest  # noqa: F401 (the camera's agent has it loaded already)
from ice.compat import ticks_diff, ticks_us


def live():
    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1


def allocated():
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    rounds = int(sys.argv[1])
    base = live()
    from camlink import grants

    print("MODULE", live() - base if base >= 0 else -1)
    secret = bytes(range(32))
    base = live()
    gate = grants.Gate(secret, "garage", refusals_per_s=1000000)
    print("GATE", live() - base if base >= 0 else -1)
    now = grants.unix_time()
    text = grants.issue(secret, "garage", "alice", now + 3600)
    ice = {"type": "candidate", "candidate": "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host"}
    steps = {"hello": [], "admit": [], "seal": [], "check": []}
    held = None
    for i in range(rounds):
        viewer = grants.ViewerAuth(text)
        hello = viewer.hello()
        gc.collect()
        before, started = allocated(), ticks_us()
        challenge = gate.challenge("v%d" % i, hello)
        steps["hello"].append((ticks_diff(ticks_us(), started), allocated() - before))
        viewer.on_challenge(challenge)
        opening = viewer.seal({"type": "ice", "ufrag": "abcd", "pwd": "0123456789abcdefghijkl"})
        gc.collect()
        base = live()
        before, started = allocated(), ticks_us()
        auth, _ = gate.admit("v%d" % i, opening)
        steps["admit"].append((ticks_diff(ticks_us(), started), allocated() - before))
        if held is None:
            held = auth
            print("SESSION", live() - base if base >= 0 else -1)
        msg = dict(ice)
        gc.collect()
        before, started = allocated(), ticks_us()
        auth.seal(msg)
        steps["seal"].append((ticks_diff(ticks_us(), started), allocated() - before))
        sealed = viewer.seal(dict(ice))
        gc.collect()
        before, started = allocated(), ticks_us()
        ok = auth.check(sealed) is None
        steps["check"].append((ticks_diff(ticks_us(), started), allocated() - before))
        if not ok or auth is None:
            print("a check failed")
            sys.exit(1)
    for name, values in steps.items():
        heap = median([v[1] for v in values]) if hasattr(gc, "mem_alloc") else -1
        print("STEP", name, median([v[0] for v in values]), heap)


main()
