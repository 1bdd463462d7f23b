"""Connect times through real NATs (tools/netlab.py): the camera app under the
MicroPython unix port in site 1, a viewer in site 2, every pair of NAT types,
with our viewer (tools/viewer.py) and an aioice viewer side by side.

    python tools/netlab_bench.py [--delay-ms 10] [--timeout 15] [--cells A/B ...]

Each site's uplink delays every packet `--delay-ms` each way (netem, or the
lab's delay line when the kernel has no netem), so with the default 10 ms the
camera-viewer round trip is 40 ms and each side's round trip to coturn 20 ms.
Times are seconds from the viewer's session start (it sees the camera and
sends its credentials): "known" when the camera's end-of-candidates arrived,
"connected" when ICE selected a pair, "conn-known" the difference (aioice
gathers first and only then signals, so its "known" includes its gathering;
ours trickles). Prints a Markdown table. Needs root, iproute2, nftables, coturn.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in ("tools", os.path.join("host_tests", "cpython"), "firmware", "lib"):
    if os.path.join(ROOT, _path) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, _path))

import netlab  # noqa: E402


def _fmt(value):
    return "-" if value is None else "%.3f" % value


def _cell_text(result):
    if result.get("frames", 0) < 1:
        return ["FAILED (%s)" % (result.get("state") or "error"), "-", "-", "-"]
    return ["%s/%s" % (result["local_type"], result["remote_type"]), _fmt(result.get("remote_known_s")),
            _fmt(result.get("connected_s")), _fmt(result.get("connected_after_known_s"))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=int, default=10, help="one-way delay on each site's uplink")
    parser.add_argument("--timeout", type=int, default=15, help="per cell and viewer, seconds")
    parser.add_argument("--cells", nargs="*", help="NAT1/NAT2 pairs (default: all 25)")
    parser.add_argument("--peers", default="ours,aioice")
    args = parser.parse_args(argv)
    reason = netlab.unavailable_reason()
    if reason:
        parser.error(reason)
    import test_netlab as cells_lib  # the viewers and run_cell live with the matrix tests

    cells = [tuple(c.split("/")) for c in args.cells] if args.cells else cells_lib.CELLS
    peers = args.peers.split(",")
    build = netlab.compile_camera()
    rows = []
    started = time.monotonic()
    with netlab.Lab("none", "none", delay_ms=args.delay_ms, turn_options={"relay_port_count": 400}) as lab:
        print(lab.describe(), file=sys.stderr, flush=True)
        for nat1, nat2 in cells:
            row = [nat1, nat2]
            for peer in peers:
                with tempfile.TemporaryDirectory(prefix="netlab-bench-") as log_dir:
                    result = cells_lib.run_cell(lab, nat1, nat2, peer, build, log_dir, timeout=args.timeout)
                row += _cell_text(result)
                print("%s %s/%s: %s" % (peer, nat1, nat2, " ".join(_cell_text(result))), file=sys.stderr, flush=True)
            rows.append(row)
    head = ["camera NAT", "viewer NAT"]
    for peer in peers:
        head += ["%s selected" % peer, "%s known" % peer, "%s connected" % peer, "%s conn-known" % peer]
    print("Round trip camera-viewer %d ms (%d ms each way on each uplink, %s); seconds from session start.\n" % (
        4 * args.delay_ms, args.delay_ms, "netem" if netlab._has_netem() else "delay line"))
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n%d cells in %.0f s" % (len(rows), time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
