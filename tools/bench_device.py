"""The MicroPython side of `make bench` (tools/bench.py): heap and allocation
figures measured on each unix port, the 64-bit one from PyPI and the 32-bit
one (../shared/upy32, or UPY32=path), whose objects and small ints have a
board's sizes. Each measurement is one of the programs in tools/mpbench/,
run as .mpy under `-X heapsize`; this module runs them and reads what they
print.

Three ways of loading the device's packages (tools/packages.py):
- "source": the .py files, compiled by the device when imported;
- ".mpy": bytecode files, as copied to a board's filesystem;
- "ROMFS": one image (tools/romfs.py) mounted at /rom; a board keeps it in
  flash and runs the bytecode in place, the unix port reads it into the
  heap first, so its size is reported apart and subtracted where a board's
  figure is wanted.
"""

import asyncio
import os
import re
import subprocess
import sys
import time

import packages
import romfs

ROOT = packages.ROOT
BUILD = os.path.join(ROOT, "build", "bench")
MPBENCH = os.path.join(ROOT, "tools", "mpbench")

# What `import ice.agent` loads (the sans-IO core); what `import ice.aio`
# adds (a Connection: SDP parsing, sockets, the asyncio driver); and every
# module, the ones loaded on first use included (TURN, URIs, DNS, mDNS).
CORE = ["ice", "ice.compat", "ice.sha1_viper", "ice.crc_viper", "ice.digest", "ice.stun", "ice.candidate",
        "ice.checklist", "ice.transaction", "ice.consent", "ice.agent"]
CONNECTION = CORE + ["ice.sdp", "ice.netio", "ice.resolver", "ice.aio"]
FULL = CONNECTION + ["ice.turn", "ice.relays", "ice.servers", "ice.dns", "ice.mdns"]
SETS = (("core", CORE), ("aio", CONNECTION), ("full", FULL))
LIBRARY_FRAMES = 1000
LIBRARY_BOARD = "esp32_generic"  # the library alone runs with this board's tables: an ESP32 without PSRAM


def upy32_binary():
    path = os.environ.get("UPY32") or os.path.join(os.path.dirname(ROOT), "shared", "upy32", "micropython")
    return path if os.path.exists(path) else None


def board_settings(name):
    """boards/<name>.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("board_" + name, os.path.join(ROOT, "boards", name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def heap_bytes(text):
    return int(text[:-1]) * 1024 if text.upper().endswith("K") else int(text)


class Port:
    """One MicroPython unix port and its builds."""

    def __init__(self, name, binary, march, build=BUILD):
        self.name = name  # "64-bit", "32-bit"
        self.binary = binary
        self.march = march  # mpy-cross -march for its native code
        self.build = os.path.join(build, march)
        self.mpy = os.path.join(self.build, "packages")
        self.programs = os.path.join(self.build, "programs")
        self.image = os.path.join(self.build, "image.romfs")
        self.mpy_sizes = {}
        self.image_size = 0

    def prepare(self, progress):
        progress("%s port: compiling the packages and tools/mpbench for -march=%s, ROMFS image"
                 % (self.name, self.march))
        self.mpy_sizes = packages.compile_packages(self.mpy, self.march)
        os.makedirs(self.programs, exist_ok=True)
        for name in sorted(os.listdir(MPBENCH)):
            if name.endswith(".py") and name != "__init__.py":
                subprocess.run([packages.MPY_CROSS, "-march=" + self.march, "-o",
                                os.path.join(self.programs, name[:-3] + ".mpy"), os.path.join(MPBENCH, name)],
                               check=True)
        self.image_size = os.path.getsize(romfs.build(self.march, out=self.image,
                                                      stage=os.path.join(self.build, "romfs")))
        version = subprocess.run([self.binary, "-c", "import sys; print('%d.%d.%d' % sys.implementation.version[:3])"],
                                 capture_output=True, text=True).stdout.strip()
        return "MicroPython %s unix port, %s (%s)" % (version, self.name, os.path.relpath(self.binary, ROOT))

    def path(self, mode):
        """MICROPYPATH for a way of loading the packages."""
        packages_dir = {"source": os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "firmware"),
                        ".mpy": self.mpy, "ROMFS": None}[mode]
        return ":".join([".frozen"] + ([packages_dir] if packages_dir else []) + [self.programs])

    def run(self, args, heap, mode=".mpy", timeout=300):
        """A tools/mpbench program (args[0]) with its arguments."""
        env = dict(os.environ, MICROPYPATH=self.path(mode))
        return subprocess.run([self.binary, "-X", "heapsize=" + heap, "-m"] + args, capture_output=True,
                              text=True, env=env, timeout=timeout)

    def min_heap(self, args, low_k, high_k, mode=".mpy"):
        """Smallest -X heapsize (1K steps) at which `args` exits with status 0."""
        if self.run(args, "%dK" % high_k, mode).returncode != 0:
            return None
        while high_k - low_k > 1:
            mid = (low_k + high_k) // 2
            if self.run(args, "%dK" % mid, mode).returncode == 0:
                high_k = mid
            else:
                low_k = mid
        return high_k

    # ---- measurements ---------------------------------------------------------

    def import_cost(self, mods, mode):
        """(bytes kept per module, in order; total bytes) for importing `mods`."""
        args = ["imports", ",".join(mods)] + ([self.image] if mode == "ROMFS" else [])
        r = self.run(args, "4M" if mode == "source" else "1M", mode)
        per, total = {}, None
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts[:1] == ["IMPORT"]:
                per[parts[1]] = int(parts[2])
            elif parts[:1] == ["TOTAL"]:
                total = int(parts[1])
        return per, total

    def imports(self):
        """{(mode, "core" | "aio" | "full"): (per-module bytes, total bytes, smallest heap K)}."""
        out = {}
        for mode in ("source", ".mpy", "ROMFS"):
            for label, mods in SETS:
                per, total = self.import_cost(mods, mode)
                args = ["imports", ",".join(mods)] + ([self.image] if mode == "ROMFS" else [])
                out[(mode, label)] = (per, total, self.min_heap(args, 4, 2048, mode))
        return out

    def session(self, seconds):
        """Two sans-IO agents: allocation per kind of call, live heap, and per
        function (tools/mpbench/session.py)."""
        r = self.run(["session", str(seconds)], "1M")
        if r.returncode != 0:
            raise RuntimeError("session on %s failed:\n%s%s" % (self.name, r.stdout[-2000:], r.stderr[-2000:]))
        res = parse_session(r.stdout)
        res["min_heap"] = self.min_heap(["session", "15", "session-only"], 16, 1024)
        return res

    def cycles(self, n, heap="256K"):
        """Connect/close cycles of two Connections (tools/mpbench/cycles.py)."""
        r = self.run(["cycles", str(n)], heap, timeout=600)
        res = {"ok": r.returncode == 0, "error": r.stderr.strip()[-400:], "values": [], "n": 0, "failures": 0,
               "ms": 0}
        for line in r.stdout.splitlines():
            p = line.split()
            if p[:1] == ["CYCLES"]:
                res["n"], res["failures"], res["ms"] = int(p[1]), int(p[2]), int(p[3])
            elif p[:1] == ["VALUES"]:
                res["values"] = [int(v) for v in p[1:]]
        return res

    async def camera(self, heap, frames_goal, timeout_s, sampled=False, use_romfs=False):
        """The camera app under this port streaming to a CPython viewer through
        a private signaling server; with `use_romfs`, its packages from the
        ROMFS image (firmware/main.py --romfs)."""
        import signaling
        import viewer as viewer_tool

        signaling.log = lambda text: None  # one line per join and leave: not for the report
        server = await signaling.serve("127.0.0.1", 0, 0)
        room = "bench-%s-%s%s%s" % (self.march, heap, "-sampled" if sampled else "", "-romfs" if use_romfs else "")
        viewer = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), room, ("127.0.0.1", 0), include_loopback=True,
                                    connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]},
                                    log=lambda line: None)
        if sampled:
            command = [self.binary, "-X", "heapsize=" + heap, "-m", "camera", ROOT, str(server.tcp_port), room]
        else:
            command = [self.binary, "-X", "heapsize=" + heap, os.path.join(ROOT, "firmware", "main.py"),
                       "--board", "unix", "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", room,
                       "--interface", "127.0.0.1"] + (["--romfs", self.image] if use_romfs else [])
        camera = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ, MICROPYPATH=self.path("ROMFS" if use_romfs else ".mpy")))
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
        try:
            await viewer.start()
            while time.monotonic() - started < timeout_s:
                await asyncio.sleep(0.25)
                frames = viewer.status().get("frames_completed", 0)
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
        return parse_camera(lines, heap, frames, frames >= frames_goal and alive)

    def grant_costs(self, rounds=21):
        """tools/mpbench/grant_cost.py: {"MODULE"|"GATE"|"SESSION": bytes,
        step name: (µs, bytes allocated)}."""
        out = self.run(["grant_cost", str(rounds)], "512K")
        if out.returncode != 0:
            raise RuntimeError("grant_cost on the %s port: %s" % (self.name, (out.stdout + out.stderr)[-500:]))
        return parse_grant_costs(out.stdout)

    async def connect_times(self, rounds, tls):
        """ms from a viewer's start to ICE connected with the camera app under
        this port holding a CAMERA_SECRET (grants checked), signaling over
        plain TCP or over TLS (a certificate from a CA made here): a list,
        one per viewer, the camera staying up between them."""
        import ssl
        import tempfile

        import signaling
        import viewer as viewer_tool
        from camlink import grants
        from testca import TestCA

        folder = tempfile.mkdtemp(prefix="bench-signaling-")
        secret = bytes(range(32))
        extra = ""
        server_tls = client_tls = None
        if tls:
            ca = TestCA(folder)
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_tls.load_cert_chain(*ca.server("localhost"))
            client_tls = ssl.create_default_context(cafile=ca.pem)
            extra = "SIGNALING_CA = %r\n" % ca.pem
        with open(os.path.join(folder, "secrets.py"), "w") as f:
            f.write("CAMERA_SECRET = %r\nCAMERA_ID = 'bench'\n%s" % (secret.hex(), extra))
        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0, tls=server_tls)
        url = "%s://localhost:%d" % ("tls" if tls else "tcp", server.tcp_port)
        camera = await asyncio.create_subprocess_exec(
            self.binary, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"), "--board", "unix",
            "--signaling", url, "--room", "bench", "--interface", "127.0.0.1",
            stdout=asyncio.subprocess.DEVNULL, env=dict(os.environ, MICROPYPATH=folder + ":" + self.path(".mpy")))
        grant = grants.issue(secret, "bench", "owner", time.time() + 3600)
        times = []
        try:
            for _ in range(rounds):
                viewer = viewer_tool.Viewer(("localhost", server.tcp_port), "bench", ("127.0.0.1", 0),
                                            include_loopback=True, log=lambda line: None, grant=grant,
                                            signaling_tls=client_tls,
                                            connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]})
                started = time.monotonic()
                await viewer.start()
                try:
                    await viewer.wait_for(lambda st: st["state"] in ("connected", "completed"), 20)
                    times.append((time.monotonic() - started) * 1000)
                finally:
                    await viewer.close()
        finally:
            camera.terminate()
            await camera.wait()
            await server.close()
        return times

    def datapath(self, count=5000):
        """tools/mpbench/datapath.py on this port (see parse_datapath)."""
        out = self.run(["datapath", str(count)], "512K")
        if out.returncode != 0:
            raise RuntimeError("datapath on the %s port: %s" % (self.name, out.stderr.strip()[-500:]))
        return parse_datapath(out.stdout)

    async def library_session(self, heap, frames=LIBRARY_FRAMES, timeout=30):
        """The library alone under `-X heapsize=heap` (tools/mpbench/peer.py
        in stream mode, as .mpy): import ice.aio, gather a host candidate,
        connect to a CPython Connection on loopback and send `frames`
        datagrams of 1,100 bytes. {"passed": every datagram arrived and the
        program exited 0, "received", "error"}."""
        import json
        import tempfile

        from ice import aio

        options = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}
        board = board_settings(LIBRARY_BOARD)
        # A receive buffer for the whole burst: the sender has no reason to wait on loopback.
        ours = aio.Connection(True, recv_queue_size=frames, recv_buffer_size=4 << 20, **options)
        received = 0
        error = ""
        proc = None
        with tempfile.TemporaryDirectory() as folder:
            try:
                await ours.gather_candidates()
                offer = os.path.join(folder, "offer.json")
                with open(offer, "w") as f:
                    json.dump({"controlling": False, "ufrag": ours.local_username, "pwd": ours.local_password,
                               "candidates": [c.to_sdp() for c in ours.local_candidates],
                               "options": {"config": board.ICE},
                               "mode": "stream", "count": frames}, f)
                proc = await asyncio.create_subprocess_exec(
                    self.binary, "-X", "heapsize=" + heap, "-m", "peer", offer, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=dict(os.environ, MICROPYPATH=self.path(".mpy")))
                assert proc.stdout is not None and proc.stderr is not None
                line = await asyncio.wait_for(proc.stdout.readline(), timeout)
                if line:
                    answer = json.loads(line)
                    ours.remote_username, ours.remote_password = answer["ufrag"], answer["pwd"]
                    for sdp_line in answer["candidates"]:
                        await ours.add_remote_candidate(aio.Candidate.from_sdp(sdp_line))
                    await ours.add_remote_candidate(None)
                    await asyncio.wait_for(ours.connect(), timeout)
                    while received < frames:
                        await asyncio.wait_for(ours.recv(), 5)
                        received += 1
                    await asyncio.wait_for(proc.stdout.readline(), timeout)
                await asyncio.wait_for(proc.wait(), timeout)
            except (asyncio.TimeoutError, OSError, ValueError) as exc:
                error = "%s %s" % (type(exc).__name__, exc)
            finally:
                if proc is not None:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
                    assert proc.stdout is not None and proc.stderr is not None
                    rest = (await proc.stdout.read() + await proc.stderr.read()).decode(errors="replace")
                    lines = [x for x in rest.splitlines() if "Error" in x]  # a task's exception goes to stdout
                    if lines:
                        error = lines[-1]
                await ours.close()
        passed = proc is not None and proc.returncode == 0 and received == frames
        return {"heap": heap, "passed": passed, "received": received, "error": "" if passed else error}

    async def library_floor(self, heaps, runs, progress, frames=LIBRARY_FRAMES):
        """The smallest of `heaps` at which the library alone passes, then
        `runs` runs at that heap + 8K (fragmentation shows as failures near
        the floor): (floor or None, {heap: result}, passes at floor + 8K)."""
        results = {}
        floor = None
        for heap in heaps:
            results[heap] = r = await self.library_session(heap, frames)
            progress("%s port: the library alone in %s: %s%s" % (
                self.name, heap, "PASS" if r["passed"] else "FAIL", "" if r["passed"] else " (%s)" % r["error"]))
            if r["passed"]:
                floor = heap
                break
        if floor is None:
            return None, results, 0
        margin = "%dK" % (heap_bytes(floor) // 1024 + 8)
        passes = 0
        for _ in range(runs):
            passes += (await self.library_session(margin, frames))["passed"]
        progress("%s port: the library alone in %s: %d of %d runs passed" % (self.name, margin, passes, runs))
        return floor, results, passes

    async def camera_rate(self, fps, size, seconds=5.0):
        """The camera app (tools/mpbench/camera_rate.py) sending `size`-byte
        frames at `fps` to a CPython viewer: {"fps": frames completed per
        second at the viewer, "dropped": incomplete frames} over `seconds`
        after the first frame."""
        import signaling
        import viewer as viewer_tool

        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0)
        room = "rate-%s-%d" % (self.march, fps)
        viewer = viewer_tool.Viewer(("127.0.0.1", server.tcp_port), room, ("127.0.0.1", 0), include_loopback=True,
                                    connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]},
                                    log=lambda line: None)
        camera = await asyncio.create_subprocess_exec(
            self.binary, "-X", "heapsize=512K", "-m", "camera_rate", ROOT, str(server.tcp_port), room, str(fps),
            str(size), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env=dict(os.environ, MICROPYPATH=self.path(".mpy")))
        try:
            await viewer.start()
            first = await viewer.wait_for(lambda s: s["frames_completed"] >= 3, 20)
            await asyncio.sleep(seconds)
            last = viewer.status()
        finally:
            if camera.returncode is None:
                camera.terminate()
            await camera.wait()
            await viewer.close()
            await server.close()
        return {"fps": (last["frames_completed"] - first["frames_completed"]) / seconds,
                "dropped": last["frames_dropped"] - first["frames_dropped"]}

    async def max_frame_rate(self, size, rates, progress, seconds=5.0, tries=2):
        """The highest of `rates` the camera app sustains: 95 % of the rate
        arrives and no frame is dropped, in one of `tries` runs (a shared
        machine's stolen CPU time can sink a single run). Returns (rate or
        None, {rate: the best run's result})."""
        results = {}
        best = None
        for fps in rates:
            for _ in range(tries):
                r = await self.camera_rate(fps, size, seconds)
                progress("%s port: %d-byte frames at %d fps: %.1f fps arrived, %d dropped"
                         % (self.name, size, fps, r["fps"], r["dropped"]))
                kept_up = not r["dropped"] and r["fps"] >= 0.95 * fps
                if fps not in results or kept_up or r["fps"] > results[fps]["fps"]:
                    results[fps] = r
                if kept_up:
                    break
            if not kept_up:
                break
            best = fps
        return best, results

    async def camera_repeats(self, heap, runs, frames, use_romfs=False, at_once=4):
        """`runs` camera sessions of `frames` frames at `heap`, `at_once` at
        a time: how many passed (a heap near its floor shows fragmentation as
        failures that come and go)."""
        passed = 0
        for start in range(0, runs, at_once):
            batch = [self.camera(heap, frames, frames / 15 * 1.5 + 20, use_romfs=use_romfs)
                     for _ in range(min(at_once, runs - start))]
            passed += sum(1 for r in await asyncio.gather(*batch) if r["passed"])
        return passed

    async def cameras(self, heaps, romfs_heaps, frames_goal, progress):
        """Every heap size at once (each with its own signaling server and
        viewer), from .mpy files and from the ROMFS image, plus one sampled
        run at the largest .mpy heap for the heap-over-time plot."""
        progress("%s port: camera sessions at %s, from ROMFS at %s, and a sampled run, %d frames each"
                 % (self.name, ", ".join(heaps), ", ".join(romfs_heaps), frames_goal))
        timeout = frames_goal / 15 * 1.5 + 20
        runs = [self.camera(h, frames_goal, timeout) for h in heaps]
        runs += [self.camera(h, frames_goal, timeout, use_romfs=True) for h in romfs_heaps]
        runs.append(self.camera(heaps[-1], frames_goal, timeout, sampled=True))
        results = await asyncio.gather(*runs)
        return {"mpy": results[:len(heaps)], "romfs": results[len(heaps):-1], "sampled": results[-1]}


def cpython_datapath(count=5000):
    """tools/mpbench/datapath.py on CPython, the same program (see parse_datapath)."""
    out = subprocess.run([sys.executable, os.path.join(MPBENCH, "datapath.py"), str(count)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib")), timeout=300)
    if out.returncode != 0:
        raise RuntimeError("datapath on CPython: %s" % out.stderr.strip()[-500:])
    return parse_datapath(out.stdout)


RELAY_TRANSPORTS = ("udp", "tcp", "tls")


def relay_costs(ports_found, rounds=11):
    """tools/mpbench/relay_cost.py on CPython and each port, against a
    private coturn with a certificate from a CA made here: per runtime and
    transport, (median ms from gather_candidates() to the relayed candidate
    over rounds 2..N, the gathered Connection's heap in bytes or None)."""
    import tempfile

    from testca import TestCA
    from turnserver import TurnServer

    folder = tempfile.mkdtemp(prefix="relay-cost-")
    ca = TestCA(folder)
    runtimes = [("CPython", [sys.executable, os.path.join(MPBENCH, "relay_cost.py")],
                 dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib")))]
    runtimes += [(p.name + " port", [p.binary, "-X", "heapsize=512K", "-m", "relay_cost"],
                  dict(os.environ, MICROPYPATH=p.path(".mpy"))) for p in ports_found]
    found = {}
    with TurnServer(tls=ca.server("localhost"), relay_port_count=400) as turn:  # a port per allocation
        uris = {"udp": "turn:127.0.0.1:%d" % turn.port, "tcp": "turn:127.0.0.1:%d?transport=tcp" % turn.port,
                "tls": "turns:localhost:%d" % turn.tls_port}
        for name, command, env in runtimes:
            for transport in RELAY_TRANSPORTS:
                out = subprocess.run(command + [uris[transport], turn.username, turn.password, ca.pem, str(rounds)],
                                     capture_output=True, text=True, env=env, timeout=300)
                if out.returncode != 0:
                    raise RuntimeError("relay_cost %s %s: exit %d: %s" % (name, transport, out.returncode, (out.stdout + out.stderr)[-500:]))
                times = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("RELAY ")]
                heap = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("HEAP ")]
                found[(name, transport)] = (sorted(times[1:])[len(times[1:]) // 2], heap[0] if heap[0] >= 0 else None)
    return found


def parse_grant_costs(text):
    res = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) == 2 and p[0] in ("MODULE", "GATE", "SESSION"):
            res[p[0]] = int(p[1])
        elif len(p) == 4 and p[0] == "STEP":
            res[p[1]] = (int(p[2]), int(p[3]))
    return res


def parse_datapath(text):
    """{(SEND|RECV, way): (µs per datagram, bytes per datagram or None), "lost": n}."""
    res = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) == 4 and p[0] in ("SEND", "RECV"):
            res[(p[0], p[1])] = (float(p[2]), None if p[3] == "-" else int(p[3]))
        elif len(p) == 2 and p[0] == "LOST":
            res["lost"] = int(p[1])
    return res


def parse_session(text):
    res = {"alloc": {}, "trace": [], "funcs": []}
    for line in text.splitlines():
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


def check_bytes(session):
    """Bytes allocated per handled check (Binding request), over the whole
    session and once connected."""
    alloc = session["alloc"]
    rows = [alloc.get((phase, "request"), (0, 0, 0)) for phase in ("connect", "steady")]
    count = sum(r[0] for r in rows)
    steady = alloc.get(("steady", "request"), (0, 0, 0))
    return (sum(r[1] for r in rows) / count if count else None,
            steady[1] / steady[0] if steady[0] else None)


def cycle_growth(values):
    """Heap growth across reconnects: the first tenth warms up (fixed
    address caches fill), growth is the low of the last tenth minus the low
    of the second."""
    if not values:
        return None
    tenth = max(1, len(values) // 10)
    head = values[tenth:2 * tenth] or values[:tenth]
    return min(values[-tenth:]) - min(head)


def parse_camera(lines, heap, frames, passed):
    error = ""
    for i, line in enumerate(lines):
        if "Error" in line and not line.startswith("camera:"):
            where = [x.strip() for x in lines[max(0, i - 3):i] if "File" in x]
            error = line.strip() + (" (at %s)" % where[-1] if where else "")
            break
    heap_free = [int(m.group(1)) for m in (re.search(r"heap free (\d+)", x) for x in lines) if m]
    samples, stages = [], {}
    for line in lines:
        p = line.split()
        if p[:1] == ["HEAP"] and len(p) == 4:
            samples.append((int(p[1]) / 1000, int(p[2]), int(p[3])))
        elif p[:1] == ["STAGE"] and len(p) == 3:
            stages[p[1]] = int(p[2])
    return {"heap": heap, "passed": passed, "frames": frames, "error": error,
            "min_free": min(heap_free) if heap_free else None, "samples": samples, "stages": stages}


def smallest_passing(runs):
    passing = [heap_bytes(r["heap"]) for r in runs if r["passed"]]
    return min(passing) if passing else None


def ports(build=BUILD):
    """The ports this machine has: (Port list, why the 32-bit one is missing or None)."""
    found = [Port("64-bit", os.path.join(ROOT, ".venv", "bin", "micropython"), "host", build)]
    upy32 = upy32_binary()
    if upy32 is None:
        return found, "no 32-bit unix port (set UPY32=path or put one at ../shared/upy32/micropython)"
    found.append(Port("32-bit", upy32, "x86", build))
    return found, None


if __name__ == "__main__":
    sys.exit("run tools/bench.py (make bench)")
