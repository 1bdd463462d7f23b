"""Join to DTLS and join to first frame for a browser viewer through real
NATs (tools/netlab.py): the camera app under the MicroPython unix port in
site 1 (with its DTLS certificate, so browsers get a data channel), headless
Chromium in site 2 opening tools/web/index.html from a signaling server in
the lab's internet, for a few NAT pairs.

    python tools/netlab_browser_bench.py [--pairs A/B ...] [--loads 3] [--delay-ms 10]

The page's own clock (window.viewer.joinToDtlsMs / joinToFirstFrameMs)
counts from its join, the camera already in the room; each figure is the
median over `--loads` page loads (those that showed a frame), a fresh page
each, one camera and one Chromium per pair.
The selected pair's candidate types are those of the last load (local: the
browser's, remote: the camera's). Our signaling server (tools/signaling.py)
stands in for the lab's: on the lab's second server address, TCP (cameras)
on the lab's port, HTTP/WebSocket (the page) on HTTP_PORT, its iceServers
the lab's coturn (STUN and TURN over UDP). Prints a Markdown table. Needs
root, iproute2, nftables, coturn, Chromium and Playwright.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import dtls_cert
import netlab

PAIRS = [("none", "none"), ("full-cone", "port-restricted"), ("symmetric", "symmetric")]
HTTP_PORT = 8080
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_S = 30


def log(line):
    print(line, file=sys.stderr, flush=True)


def start_signaling(lab):
    """tools/signaling.py in the internet namespace, serving the page; the Popen."""
    stun = {"urls": "stun:%s:%d" % lab.stun}
    proc = lab.popen("inet", [sys.executable, os.path.join(netlab.ROOT, "tools", "signaling.py"),
                              "--host", lab.server_ip2, "--tcp-port", str(lab.signaling_port),
                              "--http-port", str(HTTP_PORT), "--ice-servers", json.dumps([stun] + lab.ice_servers())],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    with lab.inside("inet"):
        while True:
            try:
                socket.create_connection((lab.server_ip2, HTTP_PORT), timeout=0.5).close()
                return proc
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError("the signaling server did not start")
                time.sleep(0.05)


class Camera:
    """firmware/main.py in site 1 as Lab.start_camera runs it, plus the DTLS
    certificate; its output lines collected by a thread."""

    def __init__(self, lab, room, folder, build):
        cert, key = dtls_cert.make(folder)
        netlab.write_camera_settings(folder, lab.stun, lab.ice_servers(), dns_server=lab.site(1).router_ip)
        env = dict(os.environ, MICROPYPATH="%s:.frozen:%s" % (folder, build))
        argv = [netlab.MICROPYTHON, "-X", "heapsize=512K", os.path.join(netlab.ROOT, "firmware", "main.py"),
                "--board", "netlab_board", "--signaling", "%s:%d" % lab.signaling, "--room", room,
                "--interface", lab.host_ip(1), "--dtls-cert", cert, "--dtls-key", key]
        self.lines = []
        self.proc = lab.popen(1, argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait(self, needle, since=0, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines[since:]):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the camera never said %r:\n%s" % (needle, "\n".join(self.lines[-20:])))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load_page(context, url, camera):
    """One page load until its first frame: window.viewer."""
    since = len(camera.lines)
    page = context.new_page()
    try:
        page.goto(url)
        try:
            page.wait_for_function("window.viewer.joinToFirstFrameMs !== null && window.viewer.selectedPair !== null",
                                   polling=50, timeout=PAGE_TIMEOUT_S * 1000)
        except Exception:
            state = page.evaluate("window.viewer")
            raise RuntimeError("no frame within %d s: %s" % (PAGE_TIMEOUT_S, {
                k: state.get(k) for k in ("status", "ice", "dtls", "channel", "errors", "localCandidateTypes")}))
        return page.evaluate("window.viewer")
    finally:
        page.close()
        camera.wait(" left", since, timeout=10)


def run_pair(lab, nat1, nat2, loads, build):
    """(median join→DTLS ms, median join→first frame ms, pair types, loads that
    showed a frame) of one NAT pair; the medians over those loads."""
    from playwright.sync_api import sync_playwright

    lab.reconfigure(nat1, nat2)  # kills whatever ran in the old sites: a fresh Chromium per pair
    room = "browser-%s-%s-%d" % (nat1, nat2, os.getpid())
    url = "http://%s:%d/?room=%s" % (lab.server_ip2, HTTP_PORT, room)
    dtls, first, types = [], [], "-"
    with tempfile.TemporaryDirectory(prefix="netlab-browser-") as folder:
        camera = Camera(lab, room, folder, build)
        try:
            camera.wait("camera: joined room")
            # This thread in site 2 while Playwright starts its driver and
            # Chromium, so both live there; never across a reconfigure().
            with lab.inside(2), sync_playwright() as pw:
                context = pw.chromium.launch_persistent_context(os.path.join(folder, "profile"), headless=True,
                                                                executable_path=CHROMIUM, args=BROWSER_ARGS)
                try:
                    for i in range(loads):
                        try:
                            v = load_page(context, url, camera)
                        except RuntimeError as exc:
                            log("%s/%s load %d FAILED: %s" % (nat1, nat2, i + 1, exc))
                            continue
                        pair = v["selectedPair"]
                        types = "%s/%s" % (pair["local"]["type"], pair["remote"]["type"])
                        dtls.append(v["joinToDtlsMs"])
                        first.append(v["joinToFirstFrameMs"])
                        log("%s/%s load %d: DTLS %s ms, first frame %s ms, %s" % (
                            nat1, nat2, i + 1, v["joinToDtlsMs"], v["joinToFirstFrameMs"], types))
                finally:
                    context.close()
        finally:
            camera.stop()
    if not dtls:
        raise RuntimeError("no page load showed a frame")
    return statistics.median(dtls), statistics.median(first), types, len(dtls)


def run(pairs, loads=3, delay_ms=10):
    """[(nat1, nat2, dtls ms, first frame ms, types, good loads)]; a failed pair has None times."""
    build = netlab.compile_camera()
    rows = []
    with netlab.Lab(*pairs[0], delay_ms=delay_ms, signaling=False) as lab:
        log(lab.describe())
        server = start_signaling(lab)
        try:
            for nat1, nat2 in pairs:
                try:
                    rows.append((nat1, nat2) + run_pair(lab, nat1, nat2, loads, build))
                except RuntimeError as exc:
                    log("%s/%s FAILED: %s" % (nat1, nat2, exc))
                    rows.append((nat1, nat2, None, None, "FAILED", 0))
        finally:
            server.terminate()
            server.wait(5)
    return rows


def format_table(rows, loads, delay_ms):
    lines = ["Camera (MicroPython) in site 1, Chromium in site 2, %d ms each way on each uplink; ms from the page's "
             "join, median over the loads that showed a frame (of %d)." % (delay_ms, loads), "",
             "| NAT pair | join → DTLS ms | join → first frame ms | selected pair (browser/camera) | loads with a frame |",
             "| --- | ---: | ---: | --- | ---: |"]
    for nat1, nat2, dtls, first, types, good in rows:
        fmt = lambda x: "-" if x is None else "%d" % x  # noqa: E731
        lines.append("| %s/%s | %s | %s | %s | %d of %d |" % (nat1, nat2, fmt(dtls), fmt(first), types, good, loads))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pairs", nargs="*", help="NAT1/NAT2 (default: %s)" % " ".join("%s/%s" % p for p in PAIRS))
    parser.add_argument("--loads", type=int, default=3, help="page loads per pair")
    parser.add_argument("--delay-ms", type=int, default=10, help="one-way delay on each site's uplink")
    args = parser.parse_args(argv)
    reason = netlab.unavailable_reason()
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = "Chromium is not installed (%s)" % CHROMIUM
    if reason:
        parser.error(reason)
    pairs = [tuple(p.split("/")) for p in args.pairs] if args.pairs else PAIRS
    started = time.monotonic()
    rows = run(pairs, args.loads, args.delay_ms)
    print("\n".join(format_table(rows, args.loads, args.delay_ms)))
    print("\n%d pairs in %.0f s" % (len(rows), time.monotonic() - started))
    return 0 if all(r[5] == args.loads for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
