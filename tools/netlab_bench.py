"""Time to first frame and the final path through real NATs (tools/netlab.py):
the camera app under the MicroPython unix port in site 1, a viewer in site 2,
every pair of NAT types, our viewer (tools/viewer.py) and an aioice viewer
side by side; then a few cells again with loss on both uplinks.

    python tools/netlab_bench.py [--delay-ms 10] [--timeout 15] [--cells A/B ...]
                                 [--loss 0.05] [--lossy-runs 5] [--no-lossy]

Each site's uplink delays every packet `--delay-ms` each way (netem, or the
lab's delay line when the kernel has no netem), so with the default 10 ms the
camera-viewer round trip is 40 ms. Times are seconds from the viewer's session
start (tools/netlab_cells.py says what each means): the first whole frame at
the viewer, the final selected pair, and that pair's candidate types. The
floor for a first frame is the moment the camera's candidates are known plus
one round trip. Prints Markdown tables; tools/bench.py calls run_cells(),
run_lossy() and the format functions for its NAT-lab section. Needs root,
iproute2, nftables and coturn.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import netlab
import netlab_cells

PEERS = ("ours", "aioice")
LOSSY_CELLS = [("none", "none"), ("port-restricted", "port-restricted"), ("symmetric", "symmetric")]


def _fmt(value):
    return "-" if value is None else "%.3f" % value


def unavailable_reason():
    """None when the cells can run here, else why not."""
    from turnserver import find_turnserver

    reason = netlab.unavailable_reason()
    if reason is None and find_turnserver() is None:
        reason = "coturn's turnserver is not installed"
    if reason is None and not os.path.exists(netlab.MICROPYTHON):
        reason = "the MicroPython unix port is not in .venv (make setup)"
    return reason


def _run(lab, cells, peers, timeout, build, log):
    rows = []
    for nat1, nat2 in cells:
        results = {}
        for peer in peers:
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="netlab-bench-") as log_dir:
                result = netlab_cells.run_cell(lab, nat1, nat2, peer, build, log_dir, timeout=timeout)
            result["wall_s"] = time.monotonic() - started
            results[peer] = result
            log("%s %s/%s%s: %s" % (peer, nat1, nat2, " loss %g" % lab.loss if lab.loss else "",
                                    " ".join(cell_text(result))))
        rows.append((nat1, nat2, results))
    return rows


def run_cells(cells=None, peers=PEERS, delay_ms=10, timeout=15, log=None, lossy=True, loss=0.05, lossy_runs=5):
    """Each (NAT1, NAT2) cell (default: all 25) with each viewer, in one lab;
    then, with `lossy`, LOSSY_CELLS `lossy_runs` times each with `loss` on
    both uplinks; and relay_times() in between. Returns (rows, lossy rows,
    relay times); a row is (nat1, nat2,
    {peer: result}), a result holds the viewer's times (s), the final pair's
    types and "wall_s"."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    build = netlab.compile_camera()
    with netlab.Lab("none", "none", delay_ms=delay_ms, turn_options={"relay_port_count": 400}) as lab:
        for line in lab.describe().splitlines():
            log(line)
        rows = _run(lab, cells or netlab_cells.CELLS, peers, timeout, build, log)
        relays = relay_times(lab, log=log)
        lossy_rows = []
        if lossy:
            lab.loss = loss  # applies from the next reconfigure, to both uplinks, both ways
            lossy_rows = _run(lab, [c for c in LOSSY_CELLS for _ in range(lossy_runs)], peers, timeout, build, log)
    return rows, lossy_rows, relays


RELAY_TRANSPORTS = ("udp", "tcp", "tls")


def relay_runtimes():
    """(name, argv, env) of tools/mpbench/relay_cost.py on CPython and the
    MicroPython unix ports here (the 32-bit one from UPY32 or ../shared)."""
    program = os.path.join(netlab.ROOT, "tools", "mpbench", "relay_cost.py")
    lib = os.path.join(netlab.ROOT, "lib")
    found = [("CPython", [sys.executable, program], dict(os.environ, PYTHONPATH=lib))]
    upy32 = os.environ.get("UPY32") or os.path.join(netlab.ROOT, "..", "shared", "upy32", "micropython")
    for name, binary in (("MicroPython 64-bit", netlab.MICROPYTHON), ("MicroPython 32-bit", upy32)):
        if os.path.exists(binary):
            found.append((name, [binary, "-X", "heapsize=512K", program], dict(os.environ, MICROPYPATH=".frozen:" + lib)))
    return found


def relay_times(lab, rounds=5, log=print):
    """Median ms from gather_candidates() to the relayed candidate, from a
    site behind a port-restricted NAT to the lab's coturn: over UDP and TCP
    by address, over TLS by name on port 443 (the site's DNS server, the
    lab's CA). {(runtime, transport): ms}."""
    lab.reconfigure("port-restricted", "none")
    turn = lab.turn
    uris = {"udp": "turn:%s:%d" % turn.address, "tcp": "turn:%s:%d?transport=tcp" % turn.address,
            "tls": "turns:%s:%d" % (netlab.TURN_NAME, netlab.TURNS_PORT)}
    site = lab.site(1)
    found = {}
    for name, argv, env in relay_runtimes():
        for transport in RELAY_TRANSPORTS:
            out = lab.run(1, argv + [uris[transport], turn.username, turn.password, lab.ca.pem, str(rounds),
                                     site.host_ip, site.router_ip], env=env, timeout=120)
            times = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("RELAY ")]
            if out.returncode != 0 or not times:
                raise RuntimeError("relay_cost %s %s: %s" % (name, transport, (out.stdout + out.stderr)[-500:]))
            found[(name, transport)] = statistics.median(times[1:] or times)
            log("relayed candidate, %s over %s: %s ms" % (name, transport, found[(name, transport)]))
    return found


def format_relays(relays, delay_ms=10):
    runtimes = list(dict.fromkeys(name for name, _ in relays))
    lines = ["From a site behind a port-restricted NAT, %d ms round trip to coturn: ms from gather_candidates() "
             "to the relayed candidate (median of 4 after a first run); TLS by name through the site's DNS "
             "server, the certificate checked." % (2 * delay_ms), "",
             "| runtime | " + " | ".join(t.upper() for t in RELAY_TRANSPORTS) + " |",
             "| --- |" + " ---: |" * len(RELAY_TRANSPORTS)]
    for name in runtimes:
        lines.append("| %s | %s |" % (name, " | ".join("%d" % relays[(name, t)] for t in RELAY_TRANSPORTS)))
    return lines


def cell_text(result):
    """[final pair, first frame, final pair at] for one viewer's result."""
    if result.get("frames", 0) < 1:
        return ["FAILED (%s)" % (result.get("state") or result.get("error", "error")[:40]), "-", "-"]
    return ["%s/%s" % (result["local_type"], result["remote_type"]), _fmt(result.get("first_frame_s")),
            _fmt(result.get("final_s"))]


def first_frame_ratio(results):
    """Our first frame over aioice's connected time, or None."""
    ours, theirs = results.get("ours", {}), results.get("aioice", {})
    if not ours.get("first_frame_s") or not theirs.get("connected_s") or theirs.get("frames", 0) < 1:
        return None
    return ours["first_frame_s"] / theirs["connected_s"]


def over_floor(result, rtt_s):
    """Round trips between the floor (camera's candidates known + 1 RTT)
    and the first frame, or None."""
    if result.get("first_frame_s") is None or result.get("remote_known_s") is None:
        return None
    return (result["first_frame_s"] - result["remote_known_s"]) / rtt_s - 1


def best_pair(nat1, nat2, result):
    """True when the final pair is the most direct the cell allows."""
    if result.get("frames", 0) < 1:
        return False
    path, _ = netlab_cells.expected_path(nat1, nat2)
    relayed = "relay" in (result["local_type"], result["remote_type"])
    if path == "relay":
        return relayed
    return not relayed and result["remote_type"] in netlab_cells.allowed_types(nat1, "remote") and \
        result["local_type"] in netlab_cells.allowed_types(nat2, "local")


def format_table(rows, delay_ms=10):
    """The loss-free table, with the ratio and floor columns, as lines."""
    rtt_s = 4 * delay_ms / 1000
    peers = list(rows[0][2]) if rows else list(PEERS)
    head = ["camera NAT", "viewer NAT"]
    for peer in peers:
        head += ["%s final pair" % peer, "%s first frame" % peer, "%s final pair at" % peer]
    head += ["aioice connected", "ours first frame / aioice connected", "ours: RTTs over the floor"]
    lines = ["Round trip camera-viewer %d ms (%d ms each way on each uplink, %s); seconds from the viewer's "
             "session start." % (4 * delay_ms, delay_ms, "netem" if netlab._has_netem() else "delay line"), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for nat1, nat2, results in rows:
        row = [nat1, nat2] + [x for peer in peers for x in cell_text(results[peer])]
        ratio = first_frame_ratio(results)
        floor = over_floor(results.get("ours", {}), rtt_s)
        row += [_fmt(results.get("aioice", {}).get("connected_s")), "-" if ratio is None else "%.2fx" % ratio,
                "-" if floor is None else "%.1f" % floor]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def lossy_summary(lossy_rows):
    """{(nat1, nat2): {peer: (runs that delivered, runs, median first frame,
    median final pair at, final pair types seen)}}."""
    out = {}
    for nat1, nat2, results in lossy_rows:
        cell = out.setdefault((nat1, nat2), {})
        for peer, r in results.items():
            cell.setdefault(peer, []).append(r)
    summary = {}
    for key, peers in out.items():
        summary[key] = {}
        for peer, runs in peers.items():
            ok = [r for r in runs if r.get("frames", 0) >= 1]
            first = [r["first_frame_s"] for r in ok if r.get("first_frame_s") is not None]
            final = [r["final_s"] for r in ok if r.get("final_s") is not None]
            types = sorted({"%s/%s" % (r["local_type"], r["remote_type"]) for r in ok})
            summary[key][peer] = (len(ok), len(runs), statistics.median(first) if first else None,
                                  statistics.median(final) if final else None, types)
    return summary


def format_lossy(lossy_rows, loss, rows=()):
    """The lossy cells, medians over their runs, with the loss-free first frame beside."""
    clean = {(a, b): r for a, b, r in rows}
    summary = lossy_summary(lossy_rows)
    peers = list(PEERS)
    head = ["camera NAT", "viewer NAT"]
    for peer in peers:
        head += ["%s connected runs" % peer, "%s first frame (median)" % peer, "%s final pair at (median)" % peer,
                 "%s final pairs" % peer]
    head.append("ours: first frame / loss-free")
    lines = ["%g %% loss on both uplinks, each way; medians over the runs." % (loss * 100), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (nat1, nat2), cell in summary.items():
        row = [nat1, nat2]
        for peer in peers:
            ok, runs, first, final, types = cell.get(peer, (0, 0, None, None, []))
            row += ["%d of %d" % (ok, runs), _fmt(first), _fmt(final), ", ".join(types) or "-"]
        base = clean.get((nat1, nat2), {}).get("ours", {}).get("first_frame_s")
        first = cell.get("ours", (0, 0, None))[2]
        row.append("%.2fx" % (first / base) if first and base else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def targets(rows, lossy_rows, delay_ms=10):
    """[(met, text)] for issue 14's targets."""
    rtt_s = 4 * delay_ms / 1000
    ratios = [first_frame_ratio(r) for _, _, r in rows]
    every = all(x is not None and x <= 1 for x in ratios)
    known = [x for x in ratios if x is not None]
    median = statistics.median(known) if known else None
    floors = [over_floor(r["ours"], rtt_s) for a, b, r in rows if netlab_cells.expected_path(a, b)[0] == "direct"]
    worst = max((f for f in floors if f is not None), default=None)
    best = [(a, b) for a, b, r in rows if not best_pair(a, b, r["ours"])]
    out = [
        (every, "first frame ≤ aioice's connected in every cell: %d of %d" % (
            sum(1 for x in ratios if x is not None and x <= 1), len(rows))),
        (median is not None and median <= 0.8, "median first frame / aioice connected ≤ 0.8: %s" % (
            "%.2fx" % median if median is not None else "-")),
        (worst is not None and worst <= 1.5 and None not in floors,
         "first frame within 1.5 round trips of the floor where a direct path exists: worst %s" % (
             "%.1f" % worst if worst is not None else "-")),
        (not best, "final pair the best available in every cell%s" % (
            "" if not best else ": not in %s" % ", ".join("%s/%s" % c for c in best))),
    ]
    if lossy_rows:
        clean = {(a, b): r["ours"].get("first_frame_s") for a, b, r in rows}
        summary = lossy_summary(lossy_rows)
        connects = all(cell["ours"][0] == cell["ours"][1] for cell in summary.values())
        slow = [k for k, cell in summary.items()
                if not (cell["ours"][2] and clean.get(k) and cell["ours"][2] <= 2 * clean[k])]
        out.append((connects, "with loss every run of every lossy cell connects: %s" % ", ".join(
            "%s/%s %d of %d" % (k[0], k[1], c["ours"][0], c["ours"][1]) for k, c in summary.items())))
        out.append((not slow, "with loss first frame (median) ≤ 2 × loss-free%s" % (
            "" if not slow else ": not in %s" % ", ".join("%s/%s" % k for k in slow))))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--delay-ms", type=int, default=10, help="one-way delay on each site's uplink")
    parser.add_argument("--timeout", type=int, default=15, help="per cell and viewer, seconds")
    parser.add_argument("--cells", nargs="*", help="NAT1/NAT2 pairs (default: all 25)")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--loss", type=float, default=0.05, help="loss on each uplink for the lossy cells")
    parser.add_argument("--lossy-runs", type=int, default=5)
    parser.add_argument("--no-lossy", action="store_true")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        parser.error(reason)
    cells = [tuple(c.split("/")) for c in args.cells] if args.cells else None
    started = time.monotonic()
    rows, lossy_rows, relays = run_cells(cells, args.peers.split(","), args.delay_ms, args.timeout,
                                         lossy=not args.no_lossy, loss=args.loss, lossy_runs=args.lossy_runs)
    print("\n".join(format_table(rows, args.delay_ms)))
    print()
    print("\n".join(format_relays(relays, args.delay_ms)))
    if lossy_rows:
        print()
        print("\n".join(format_lossy(lossy_rows, args.loss, rows)))
    print()
    for ok, text in targets(rows, lossy_rows, args.delay_ms):
        print("- %s %s" % ("PASS" if ok else "FAIL", text))
    print("\n%d cells in %.0f s" % (len(rows) + len(lossy_rows), time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
