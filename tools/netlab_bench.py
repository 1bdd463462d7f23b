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
tools/bench.py calls run_cells() and format_table() for its NAT-lab section.
"""

import argparse
import os
import sys
import tempfile
import time

import netlab

PEERS = ("ours", "aioice")


def _fmt(value):
    return "-" if value is None else "%.3f" % value


def _cell_text(result):
    if result.get("frames", 0) < 1:
        return ["FAILED (%s)" % (result.get("state") or "error"), "-", "-", "-"]
    return ["%s/%s" % (result["local_type"], result["remote_type"]), _fmt(result.get("remote_known_s")),
            _fmt(result.get("connected_s")), _fmt(result.get("connected_after_known_s"))]


def unavailable_reason():
    """None when the cells can run here, else why not."""
    from turnserver import find_turnserver

    reason = netlab.unavailable_reason()
    if reason is None and find_turnserver() is None:
        reason = "coturn's turnserver is not installed"
    if reason is None and not os.path.exists(netlab.MICROPYTHON):
        reason = "the MicroPython unix port is not in .venv (make setup)"
    return reason


def run_cells(cells=None, peers=PEERS, delay_ms=10, timeout=15, log=None):
    """Runs each (NAT1, NAT2) cell (default: all 25) with each viewer in one
    lab. Returns [(nat1, nat2, {peer: result})]; a result holds the viewer's
    times (s) and "wall_s", the cell's wall time for that viewer."""
    import test_netlab as cells_lib  # the viewers and run_cell live with the matrix tests

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    build = netlab.compile_camera()
    rows = []
    with netlab.Lab("none", "none", delay_ms=delay_ms, turn_options={"relay_port_count": 400}) as lab:
        for line in lab.describe().splitlines():
            log(line)
        for nat1, nat2 in cells or cells_lib.CELLS:
            results = {}
            for peer in peers:
                started = time.monotonic()
                with tempfile.TemporaryDirectory(prefix="netlab-bench-") as log_dir:
                    result = cells_lib.run_cell(lab, nat1, nat2, peer, build, log_dir, timeout=timeout)
                result["wall_s"] = time.monotonic() - started
                results[peer] = result
                log("%s %s/%s: %s" % (peer, nat1, nat2, " ".join(_cell_text(result))))
            rows.append((nat1, nat2, results))
    return rows


def connect_ratio(results, a="ours", b="aioice"):
    """`a`'s connect time (session start -> connected) over `b`'s, or None."""
    ra, rb = results.get(a, {}), results.get(b, {})
    if min(ra.get("frames", 0), rb.get("frames", 0)) < 1 or not ra.get("connected_s") or not rb.get("connected_s"):
        return None
    return ra["connected_s"] / rb["connected_s"]


def format_table(rows, delay_ms=10, ratio=False):
    """The Markdown table (with `ratio`, an ours / aioice column) as lines."""
    peers = list(rows[0][2]) if rows else list(PEERS)
    head = ["camera NAT", "viewer NAT"]
    for peer in peers:
        head += ["%s selected" % peer, "%s known" % peer, "%s connected" % peer, "%s conn-known" % peer]
    if ratio:
        head.append("connected ours / aioice")
    lines = ["Round trip camera-viewer %d ms (%d ms each way on each uplink, %s); seconds from session start." % (
        4 * delay_ms, delay_ms, "netem" if netlab._has_netem() else "delay line"), "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for nat1, nat2, results in rows:
        row = [nat1, nat2] + [x for peer in peers for x in _cell_text(results[peer])]
        if ratio:
            r = connect_ratio(results)
            row.append("-" if r is None else "%.2fx" % r)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=int, default=10, help="one-way delay on each site's uplink")
    parser.add_argument("--timeout", type=int, default=15, help="per cell and viewer, seconds")
    parser.add_argument("--cells", nargs="*", help="NAT1/NAT2 pairs (default: all 25)")
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        parser.error(reason)
    cells = [tuple(c.split("/")) for c in args.cells] if args.cells else None
    started = time.monotonic()
    rows = run_cells(cells, args.peers.split(","), args.delay_ms, args.timeout)
    print("\n".join(format_table(rows, args.delay_ms)))
    print("\n%d cells in %.0f s" % (len(rows), time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
