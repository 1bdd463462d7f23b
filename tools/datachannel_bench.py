"""Browser data channel: the camera app under each MicroPython unix port
streaming to headless Chromium (tools/web/index.html, DTLS + SCTP) next to
the plain-UDP path (tools/viewer.py), on loopback in a private network
namespace (host_tests/cpython/browser.py: Chromium announces its mDNS names
on every interface). A section of `make bench` (tools/bench.py); alone:

    python tools/datachannel_bench.py [--seconds 10] [--loads 5] [--runtimes mp64,mp32]

Per port:
- join -> DTLS connected and join -> first frame, as the page measures them
  (window.viewer), over LOADS page loads, each a new page in the same
  Chromium, the previous one closed, one camera process for all of them;
- then the last page's frames per second, kbit/s and latency over SECONDS,
  and a CPython viewer's (plain UDP) over as long against the same camera;
  the camera's CPU time (/proc/PID/schedstat) per frame it sent (its status
  lines) on each path;
- heap: what the webrtc modules and a DataChannelLink cost
  (tools/mpbench/datachannel_cost.py), and the camera app's live heap
  after gc.collect() (tools/mpbench/browser_camera.py) with no viewer, one
  UDP viewer, one and two browsers.

Needs root (the namespace), iproute2, Chromium and Playwright; otherwise the
section says what is missing. Progress goes to stderr, the section to stdout.
"""

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "tools"), os.path.join(ROOT, "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
sys.path.append(os.path.join(ROOT, "host_tests", "cpython"))  # browser.py: the namespace, Chromium's flags

import bench_device  # noqa: E402
import dtls_cert  # noqa: E402
import signaling  # noqa: E402
import viewer as viewer_tool  # noqa: E402

TARGET_DTLS_MS = 400
TARGET_FIRST_FRAME_MS = 1000
TARGET_FPS_RATIO = 0.9
TARGET_HEAP = 24 * 1024  # per browser viewer beyond its ICE session, 32-bit port
RUNTIMES = {"mp64": "64-bit", "mp32": "32-bit"}
HEAP_SAMPLES = 4  # 500 ms apart, median

_T0 = time.monotonic()


def progress(text):
    print("datachannel: [%5.1f s] %s" % (time.monotonic() - _T0, text), file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """CPU time of every thread of `pid` so far, from schedstat (ns)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


class Camera:
    """A camera process in the namespace; its lines with when they came and
    the process's CPU time then."""

    def __init__(self):
        self.proc = None
        self.lines = []  # (monotonic, cpu s, text)
        self._reader = None

    async def start(self, command, env):
        self.proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        self._reader = asyncio.ensure_future(self._read())
        await self.wait("joined room", 0, 20)
        return self

    async def _read(self):
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                cpu = cpu_seconds(self.proc.pid)
            except (OSError, ValueError):
                cpu = None
            self.lines.append((time.monotonic(), cpu, line.decode(errors="replace").rstrip()))

    async def wait(self, needle, since, timeout_s=10):
        """The first line from index `since` on holding `needle`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, _, text in self.lines[since:]:
                if needle in text:
                    return text
            if self._reader.done():
                break
            await asyncio.sleep(0.05)
        raise RuntimeError("the camera did not say %r within %d s:\n%s" % (
            needle, timeout_s, "\n".join(t for _, _, t in self.lines[-15:])))

    async def heap(self, count=HEAP_SAMPLES):
        """Median of the next `count` HEAP samples (tools/mpbench/browser_camera.py)."""
        since = len(self.lines)
        deadline = time.monotonic() + count * 0.5 + 5
        while time.monotonic() < deadline:
            found = [int(t.split()[2]) for _, _, t in self.lines[since:] if t.startswith("HEAP ")]
            if len(found) >= count:
                return statistics.median(found[:count])
            await asyncio.sleep(0.1)
        raise RuntimeError("no HEAP lines from the camera")

    def cpu_per_frame(self, started, ended):
        """Camera CPU ms per frame sent between two times, from its status lines."""
        rows = []
        for at, cpu, text in self.lines:
            frames = [int(n) for n in re.findall(r"(\d+) frames", text)]
            if started <= at <= ended and frames and cpu is not None and text.startswith("camera:"):
                rows.append((cpu, sum(frames)))
        if len(rows) < 2 or rows[-1][1] <= rows[0][1]:
            return None
        return (rows[-1][0] - rows[0][0]) * 1000 / (rows[-1][1] - rows[0][1])

    async def stop(self):
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def open_page(context, url):
    """A new page at `url`, once it shows a frame: (page, window.viewer)."""
    page = await context.new_page()
    await page.goto(url)
    try:
        await page.wait_for_function("window.viewer.joinToFirstFrameMs !== null", polling=50, timeout=20000)
    except Exception:
        state = await page.evaluate("window.viewer")
        await page.close()
        raise RuntimeError("no frame on the page within 20 s: %s" % {
            k: state.get(k) for k in ("status", "ice", "dtls", "channel", "errors")})
    return page, await page.evaluate("window.viewer")


async def close_page(page, camera):
    since = len(camera.lines)
    await page.close()
    await camera.wait(" left", since)


PAGE_COUNTERS = "({frames: window.viewer.frames, bytes: window.viewer.bytes, t: performance.now()})"


async def browser_window(page, camera, seconds):
    """(fps, kbit/s, median latency ms, camera CPU ms per frame) over `seconds`."""
    await asyncio.sleep(1)
    first, started = await page.evaluate(PAGE_COUNTERS), time.monotonic()
    latencies = []
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        latency = await page.evaluate("window.viewer.latencyMs")
        if latency is not None:
            latencies.append(latency)
    last, ended = await page.evaluate(PAGE_COUNTERS), time.monotonic()
    span = (last["t"] - first["t"]) / 1000
    return ((last["frames"] - first["frames"]) / span, (last["bytes"] - first["bytes"]) * 8 / span / 1000,
            statistics.median(latencies) if latencies else None, camera.cpu_per_frame(started, ended))


def udp_viewer(server, room, address):
    return viewer_tool.Viewer(("127.0.0.1", server.tcp_port), room, ("127.0.0.1", 0), include_loopback=True,
                              connection_options={"use_ipv6": False, "include_addresses": [address]},
                              log=lambda line: None)


async def udp_window(server, room, address, camera, seconds):
    """The CPython viewer against the same camera: (fps, kbit/s, camera CPU ms per frame)."""
    viewer = udp_viewer(server, room, address)
    since = len(camera.lines)
    try:
        await viewer.start()
        await viewer.wait_for(lambda s: s["frames_completed"] >= 3, 20)
        await asyncio.sleep(1)
        first, started = viewer.status(), time.monotonic()
        await asyncio.sleep(seconds)
        last, ended = viewer.status(), time.monotonic()
    finally:
        await viewer.close()
    await camera.wait(" left", since)
    span = ended - started
    return ((last["frames_completed"] - first["frames_completed"]) / span,
            (last["bytes_received"] - first["bytes_received"]) * 8 / span / 1000,
            camera.cpu_per_frame(started, ended))


async def timings(port, context, address, identity, seconds, loads):
    """Page loads, then the browser's and the UDP viewer's throughput, one camera process."""
    server = await signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR)
    room = "dc-%s-%s" % (port.march, uuid.uuid4().hex[:6])
    url = "http://127.0.0.1:%d/?room=%s" % (server.http_port, room)
    camera = Camera()
    res: dict = {"loads": []}
    try:
        await camera.start([port.binary, "-X", "heapsize=512K", os.path.join(ROOT, "firmware", "main.py"),
                            "--board", "unix", "--signaling", "127.0.0.1:%d" % server.tcp_port, "--room", room,
                            "--interface", address, "--dtls-cert", identity[0], "--dtls-key", identity[1]],
                           dict(os.environ, MICROPYPATH=port.path(".mpy")))
        page = None
        for i in range(loads):
            if page is not None:
                await close_page(page, camera)
            page, v = await open_page(context, url)
            res["loads"].append((v["joinToDtlsMs"], v["joinToFirstFrameMs"]))
            progress("%s port: page load %d: DTLS %s ms, first frame %s ms after the join"
                     % (port.name, i + 1, v["joinToDtlsMs"], v["joinToFirstFrameMs"]))
        res["browser"] = await browser_window(page, camera, seconds)
        res["frame_bytes"] = await page.evaluate("window.viewer.lastFrameSize")
        await close_page(page, camera)
        progress("%s port: browser %.1f fps; the UDP viewer for %d s" % (port.name, res["browser"][0], seconds))
        res["udp"] = await udp_window(server, room, address, camera, seconds)
        progress("%s port: UDP viewer %.1f fps" % (port.name, res["udp"][0]))
    finally:
        await camera.stop()
        await server.close()
    return res


async def heap_phases(port, context, address, identity):
    """The camera's live heap after gc.collect() as viewers join and stay:
    one UDP viewer, two, then one and two browsers besides. A first browser
    comes and goes before (the webrtc modules load with it); none leaves
    during the count (the app's streaming loop holds a closed session until
    it sends the next frame)."""
    server = await signaling.serve("127.0.0.1", 0, 0, static_dir=signaling.WEB_DIR)
    room = "dc-heap-%s-%s" % (port.march, uuid.uuid4().hex[:6])
    url = "http://127.0.0.1:%d/?room=%s" % (server.http_port, room)
    camera = Camera()
    pages, viewers = [], []
    heap = {}
    try:
        await camera.start([port.binary, "-X", "heapsize=512K", "-m", "browser_camera", ROOT,
                            str(server.tcp_port), room, address, identity[0], identity[1]],
                           dict(os.environ, MICROPYPATH=port.path(".mpy")))
        page, _ = await open_page(context, url)
        await close_page(page, camera)
        for n in (1, 2):
            viewers.append(udp_viewer(server, room, address))
            await viewers[-1].start()
            await viewers[-1].wait_for(lambda s: s["frames_completed"] >= 3, 20)
            await asyncio.sleep(0.5)
            heap["udp%d" % n] = await camera.heap()
        for n in (1, 2):
            pages.append((await open_page(context, url))[0])
            await asyncio.sleep(0.5)
            heap["browsers%d" % n] = await camera.heap()
        progress("%s port: live heap %s" % (port.name, heap))
    finally:
        for page in pages:
            await page.close()
        for viewer in viewers:
            await viewer.close()
        await camera.stop()
        await server.close()
    return heap


def link_cost(port, identity):
    """tools/mpbench/datachannel_cost.py: {"IMPORT", "LINK", "STARTED", "dtls", "sctp", "channels": bytes}."""
    out = port.run(["datachannel_cost", identity[0], identity[1]], "512K", timeout=60)
    if out.returncode != 0:
        raise RuntimeError("datachannel_cost on the %s port: %s" % (port.name, (out.stdout + out.stderr)[-500:]))
    res = {}
    for line in out.stdout.splitlines():
        p = line.split()
        if len(p) == 2 and p[0] in ("IMPORT", "LINK", "STARTED"):
            res[p[0]] = int(p[1])
        elif len(p) == 3 and p[0] == "PART":
            res[p[1]] = int(p[2])
    return res


def unavailable_reason():
    from browser import find_chromium  # pyright: ignore[reportMissingImports]

    if os.geteuid() != 0:
        return "needs root for a private network namespace"
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the PyPI package playwright is not installed (make setup)"
    return None


async def measure(ports, address, identity, seconds, loads):
    from browser import BROWSER_ARGS, find_chromium  # pyright: ignore[reportMissingImports]
    from playwright.async_api import async_playwright

    signaling.log = lambda text: None
    results = {}
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=find_chromium(), headless=True, args=BROWSER_ARGS)
            try:
                for port in ports:
                    progress("%s port: %d page loads, then %d s of frames to the page and to a UDP viewer"
                             % (port.name, loads, seconds))
                    res = await timings(port, context, address, identity, seconds, loads)
                    progress("%s port: the camera's heap with one and two UDP viewers, then one and two "
                             "browsers besides" % port.name)
                    res["heap"] = await heap_phases(port, context, address, identity)
                    results[port.name] = res
            finally:
                await context.close()
    return results


def kb(n):
    return "—" if n is None else "%.1f KB" % (n / 1024)


def ms(v):
    return "—" if v is None else "%.2f ms" % v


def section(ports, seconds=10, loads=5, log=None):
    """(Markdown lines, [(passed, text)] targets) for tools/bench.py; `ports`
    are bench_device.Port objects, prepared."""
    global progress
    if log is not None:
        progress = log
    started = time.monotonic()
    w = []
    w.append("## Browser data channel (tools/datachannel_bench.py)")
    w.append("")
    reason = unavailable_reason()
    if reason:
        return w + ["Not run: %s." % reason, ""], []
    from browser import PrivateNetwork  # pyright: ignore[reportMissingImports]

    net = PrivateNetwork()
    try:
        with tempfile.TemporaryDirectory(prefix="dtls-") as folder:
            identity = dtls_cert.make(folder)
            costs = {p.name: link_cost(p, identity) for p in ports}
            with net:
                results = asyncio.run(measure(ports, net.address, identity, seconds, loads))
    except Exception as exc:  # the rest of the report is still worth printing
        return w + ["Not run: %r." % exc, ""], []
    w.append("The camera app (firmware/main.py --board unix, .mpy, `FPS_MAX` %d, synthetic 320x240 JPEGs) and headless "
             "Chromium showing tools/web/index.html, in a private network namespace, on %s. Join -> DTLS and "
             "join -> first frame as the page measures them (from its `join` to the signaling server): %d page "
             "loads, each a new page in the same Chromium after the previous one closed, one camera process for "
             "all of them and for the rest of the row. Then the last page's frames over %d s, and a CPython viewer's "
             "(tools/viewer.py, plain UDP) over as long from the same camera; camera CPU = its process's CPU time "
             "(/proc/PID/schedstat) per frame it reported sent." % (
                 bench_device.board_settings("unix").FPS_MAX, net.address, loads, seconds))
    w.append("")
    w.append("| port | join -> DTLS, median (min-max) | join -> first frame, median (min-max) | browser fps "
             "| UDP viewer fps | browser / UDP | kbit/s browser / UDP | latency, median | camera CPU per frame, "
             "browser / UDP |")
    w.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    targets = []
    for p in ports:
        r = results[p.name]
        dtls_ms = [d for d, _ in r["loads"]]
        first_ms = [f for _, f in r["loads"]]
        b_fps, b_kbps, latency, b_cpu = r["browser"]
        u_fps, u_kbps, u_cpu = r["udp"]
        ratio = b_fps / u_fps if u_fps else 0
        w.append("| %s | %d ms (%d-%d) | %d ms (%d-%d) | %.1f | %.1f | %.0f %% | %.0f / %.0f | %s | %s / %s |" % (
            p.name, statistics.median(dtls_ms), min(dtls_ms), max(dtls_ms), statistics.median(first_ms),
            min(first_ms), max(first_ms), b_fps, u_fps, 100 * ratio, b_kbps, u_kbps,
            "—" if latency is None else "%.1f ms" % latency, ms(b_cpu), ms(u_cpu)))
        targets += [
            (statistics.median(dtls_ms) <= TARGET_DTLS_MS, "%s: browser DTLS ≤ %d ms after the join, loopback: "
             "median %d ms" % (p.name, TARGET_DTLS_MS, statistics.median(dtls_ms))),
            (statistics.median(first_ms) <= TARGET_FIRST_FRAME_MS, "%s: browser's first frame ≤ %d ms after the "
             "join: median %d ms" % (p.name, TARGET_FIRST_FRAME_MS, statistics.median(first_ms))),
            (ratio >= TARGET_FPS_RATIO, "%s: browser ≥ %d %% of the plain-UDP viewer's frame rate: %.0f %% "
             "(%.1f / %.1f fps)" % (p.name, TARGET_FPS_RATIO * 100, 100 * ratio, b_fps, u_fps)),
        ]
    w.append("")
    w.append("Frame size, the page's last: %s." % ", ".join(
        "%s B (%s)" % (results[p.name]["frame_bytes"], p.name) for p in ports))
    w.append("")
    w.append("Heap (MicroPython's, after gc.collect()). The webrtc modules and a DataChannelLink built on a connected "
             "Connection (tools/mpbench/datachannel_cost.py); then the camera app's live heap, median of %d samples "
             "500 ms apart (tools/mpbench/browser_camera.py), as viewers join and stay: one UDP viewer (after a "
             "first browser came and went: the modules loaded), a second, then one and two browsers besides. Beyond "
             "ICE = a browser's increase minus the second UDP viewer's (an ICE session and the app's Session); the "
             "first browser's also holds the frame copy browsers share. mbedTLS's own buffers are malloc'd outside "
             "this heap on the unix port (ESP-IDF's heap on a board): not in these figures." % HEAP_SAMPLES)
    w.append("")
    w.append("| port | webrtc imports (once) | link: DTLS / SCTP / channels | link, total | + DTLS started "
             "| live: 1 UDP viewer | 2 UDP viewers | + 1 browser | + 2 browsers | per UDP viewer "
             "| per browser beyond ICE: first / second |")
    w.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in ports:
        c, h = costs[p.name], results[p.name]["heap"]
        ice = h["udp2"] - h["udp1"]
        first = h["browsers1"] - h["udp2"] - ice
        second = h["browsers2"] - h["browsers1"] - ice
        w.append("| %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            p.name, kb(c.get("IMPORT")), kb(c.get("dtls")), kb(c.get("sctp")), kb(c.get("channels")),
            kb(c.get("LINK")), kb(c.get("STARTED")), kb(h["udp1"]), kb(h["udp2"]), kb(h["browsers1"]),
            kb(h["browsers2"]), kb(ice), kb(first), kb(second)))
        if p.name == "32-bit":
            worst = max(first, second)
            targets.append((worst <= TARGET_HEAP, "%s: ≤ %d KB heap per browser viewer beyond its ICE session: "
                            "%s (first %s, second %s; the link alone %s)" % (
                                p.name, TARGET_HEAP // 1024, kb(worst), kb(first), kb(second),
                                kb(c.get("STARTED")))))
    w.append("")
    w.append("%d s for this section." % (time.monotonic() - started))
    w.append("")
    return w, targets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="each throughput window")
    parser.add_argument("--loads", type=int, default=5, help="page loads per port")
    parser.add_argument("--runtimes", default="mp64,mp32", help="mp64, mp32 or both")
    args = parser.parse_args(argv)
    found, missing = bench_device.ports()
    wanted = [RUNTIMES[name.strip()] for name in args.runtimes.split(",") if name.strip()]
    ports = [p for p in found if p.name in wanted]
    for p in ports:
        p.prepare(progress)
    lines, targets = section(ports, args.seconds, args.loads)
    if "32-bit" in wanted and missing:
        targets.append((False, "NOT MEASURED: the 32-bit port (%s)" % missing))
    if targets:
        lines += ["### Targets", ""] + ["- %s %s" % ("PASS" if ok else "FAIL", text) for ok, text in targets] + [""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
