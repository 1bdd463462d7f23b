"""The NAT lab (tools/netlab.py, issue 6): real kernels, real NATs, real coturn.

First the lab proves itself: for each NAT type a tiny UDP probe from site 1
against three endpoints on the internet host (two ports on 203.0.113.2, one
on 203.0.113.3) classifies the router's mapping and filtering in RFC 4787
terms. Then the camera app (firmware/main.py under the MicroPython unix
port) in site 1 meets a viewer in site 2 through every pair of NAT types:
first tools/viewer.py's Viewer (our library), then a small viewer built on
aioice. Every cell must deliver frames over the most direct pair possible
(expected_path below says which, and why).

Needs root, iproute2 and nftables (and coturn): elsewhere these tests skip
with the reason, unless CI is set, where they fail.
"""

import asyncio
import functools
import json
import os
import socket
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _path in ("tools", "firmware", "lib"):
    if os.path.join(ROOT, _path) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, _path))

import netlab  # noqa: E402
from netlab import NAT_TYPES  # noqa: E402

FRAMES = 3  # frames that must arrive per cell
CELL_TIMEOUT_S = 20

# ---- what each cell must select --------------------------------------------------------
#
# Camera in site 1 (nat1), viewer in site 2 (nat2). A direct UDP path between
# two sites exists unless one NAT maps per destination (symmetric: APDM) and
# the other filters per address *and port* (port-restricted or symmetric:
# APDF): the APDM side reaches the peer from a fresh external port the APDF
# side never sent to, and the APDF side's packets go to the APDM side's
# srflx mapping, which only admits the STUN server. Against ADF
# (restricted) the fresh port comes from an address that side already
# contacted, so it passes and is learned as peer-reflexive; EIF (full cone)
# and "none" admit anything.
_APDM = ("symmetric",)
_APDF = ("port-restricted", "symmetric")


def expected_path(nat1, nat2):
    """("direct" | "relay", reason)."""
    for a, b in ((nat1, nat2), (nat2, nat1)):
        if a in _APDM and b in _APDF:
            return "relay", "%s maps per destination and %s filters per address and port" % (a, b)
    if nat1 == nat2 == "none":
        return "direct", "both hosts are public: host/host"
    return "direct", "at most one side changes its port per destination, and the other admits it"


def allowed_types(nat, end):
    """Candidate types one end of a *direct* selected pair may have, `end`
    "remote" (the camera, as the viewer sees it) or "local" (the viewer's).
    Public host: its host candidate. Behind an endpoint-independent mapping:
    its srflx address, or the same address learned as prflx when a check
    arrived before the trickled srflx candidate. Behind a symmetric NAT: only
    prflx (its address towards the peer is a new one). The local end may
    also be named by the base the checks were sent from (host), as aioice
    does (RFC 8445 §7.2.5.3.2 would name it by the mapped address)."""
    if nat == "none":
        return {"host"}
    types = {"prflx"} if nat == "symmetric" else {"srflx", "prflx"}
    return types | {"host"} if end == "local" else types


def check_selected(nat1, nat2, local_type, remote_type, relay_ok=False):
    """local = the viewer's (site 2), remote = the camera's (site 1)."""
    path, why = expected_path(nat1, nat2)
    where = "%s/%s selected %s/%s (%s)" % (nat1, nat2, local_type, remote_type, why)
    if path == "relay" or (relay_ok and "relay" in (local_type, remote_type)):
        assert "relay" in (local_type, remote_type), where
        return
    assert "relay" not in (local_type, remote_type), where
    assert remote_type in allowed_types(nat1, "remote"), where
    assert local_type in allowed_types(nat2, "local"), where


# ---- fixtures -----------------------------------------------------------------------


def _unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail("CI is set but %s; .ci/run installs iproute2, nftables and coturn and runs as root"
                    % reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab():
    from turnserver import find_turnserver

    reason = netlab.unavailable_reason()
    if reason is None and find_turnserver() is None:
        reason = "coturn's turnserver is not installed"
    if reason:
        _unavailable(reason)
    with netlab.Lab("none", "none", turn_options={"relay_port_count": 400}) as lab:
        yield lab


@pytest.fixture(scope="module")
def camera_build():
    if not os.path.exists(netlab.MICROPYTHON):
        _unavailable("the MicroPython unix port is not in .venv (make setup)")
    return netlab.compile_camera()


# ---- the NAT probe ---------------------------------------------------------------------

PROBE_PORTS = (19302, 19303)


def probe_server(addresses, seconds):
    """In the internet namespace: answer "map" with the source address seen,
    and "filter" from three endpoints: the one asked, another port on the
    same address, another address."""
    import select

    socks = {}
    for addr in addresses:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(addr)
        socks[addr] = s
    same_addr_other_port = {addresses[0]: addresses[1], addresses[1]: addresses[0]}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks.values()), [], [], 0.1)
        for s in ready:
            data, src = s.recvfrom(100)
            here = s.getsockname()
            if data == b"map":
                s.sendto(("%s:%d" % src).encode(), src)
            elif data == b"filter":
                s.sendto(b"same", src)
                other = same_addr_other_port.get(here)
                if other:
                    socks[other].sendto(b"other-port", src)
                socks[addresses[2]].sendto(b"other-addr", src)
    return True


def probe_client(addresses):
    """In a site's host: (local ip, mapped addresses per destination, tags of
    the filter answers that got in)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.settimeout(0.3)
    mapped = []
    for dest in addresses:
        for _ in range(10):
            s.sendto(b"map", dest)
            try:
                mapped.append(s.recv(100).decode())
                break
            except socket.timeout:
                continue
        else:
            raise AssertionError("no answer from %s:%d" % dest)
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    f.bind(("0.0.0.0", 0))
    f.settimeout(0.3)
    got = set()
    for _ in range(10):
        f.sendto(b"filter", addresses[0])
        try:
            got.add(f.recv(100).decode())
        except socket.timeout:
            continue
        if "same" in got:
            break
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            got.add(f.recv(100).decode())
        except socket.timeout:
            pass
    local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local.connect(addresses[0])
    return local.getsockname()[0], mapped, sorted(got)


def classify(local_ip, mapped, got):
    """(translated, mapping, filtering) in RFC 4787 terms."""
    translated = any(m.split(":")[0] != local_ip for m in mapped)
    if mapped[0] == mapped[1] == mapped[2]:
        mapping = "EIM"
    elif mapped[0] == mapped[1]:
        mapping = "ADM"
    else:
        mapping = "APDM"
    if "same" not in got:
        filtering = "none answered"
    elif "other-addr" in got and "other-port" in got:
        filtering = "EIF"
    elif "other-port" in got:
        filtering = "ADF"
    elif "other-addr" in got:
        filtering = "odd: other address in, other port not"
    else:
        filtering = "APDF"
    return translated, mapping, filtering


PROBE_EXPECTED = {
    "none": (False, "EIM", "EIF"),
    "full-cone": (True, "EIM", "EIF"),
    "restricted": (True, "EIM", "ADF"),
    "port-restricted": (True, "EIM", "APDF"),
    "symmetric": (True, "APDM", "APDF"),
}


def probe(lab, site=1):
    addresses = [(lab.server_ip, PROBE_PORTS[0]), (lab.server_ip, PROBE_PORTS[1]), (lab.server_ip2, PROBE_PORTS[0])]
    server = lab.spawn("inet", probe_server, addresses, 6)
    try:
        local_ip, mapped, got = lab.call(site, probe_client, addresses, timeout=20)
    finally:
        server.kill()
    return local_ip, mapped, got


@pytest.mark.parametrize("nat", NAT_TYPES)
def test_nat_behaviour(lab, nat):
    """RFC 4787 §4.1 (mapping) and §5 (filtering): the router does what its name says."""
    lab.reconfigure(nat, "none")
    local_ip, mapped, got = probe(lab)
    print("%s: local %s, mapped %s, filter answers %s" % (nat, local_ip, mapped, got))
    assert classify(local_ip, mapped, got) == PROBE_EXPECTED[nat], (local_ip, mapped, got)
    if nat != "symmetric":  # port preservation: the mapping keeps the local port
        assert len({m.split(":")[1] for m in mapped}) == 1


# ---- viewers, run in site 2 (forked children) -------------------------------------------------


def _pair_types(local, remote):
    return {"local_type": local, "remote_type": remote}


def run_our_viewer(signaling, room, stun, turn, frames=FRAMES, timeout=CELL_TIMEOUT_S):
    """tools/viewer.py's Viewer until `frames` frames arrived. Times (s) from
    the session's start: remote end-of-candidates, connected, first frame."""
    import viewer as viewer_tool

    class TimedViewer(viewer_tool.Viewer):
        remote_done_at = None

        async def _on_message(self, msg):
            if msg.get("type") == "end-of-candidates" and self.remote_done_at is None:
                self.remote_done_at = time.monotonic()
            await super()._on_message(msg)

    async def main():
        lines = []
        v = TimedViewer(signaling, room, ("127.0.0.1", 0), stun=stun, turn=turn[:2], turn_user=turn[2],
                        turn_password=turn[3], connection_options={"use_ipv6": False}, log=lines.append)
        await v.start()
        started = connected = first = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                now = time.monotonic()
                status = v.status()
                if started is None and v.session is not None:
                    started = now
                if connected is None and status["state"] in ("connected", "completed") and status["selected"]:
                    connected = now
                if first is None and status["frames_completed"] >= 1:
                    first = now
                if status["frames_completed"] >= frames:
                    break
                await asyncio.sleep(0.005)
            status = v.status()
        finally:
            await v.close()
        sel = status["selected"] or {}
        return {
            "frames": status["frames_completed"],
            "state": status["state"],
            "local_type": sel.get("local_type"),
            "remote_type": sel.get("remote_type"),
            "selected": sel,
            "pairs": [] if status["frames_completed"] >= frames else [
                "%(local_type)s %(local_host)s:%(local_port)s -> %(remote_type)s %(remote_host)s:%(remote_port)s "
                "%(state)s sent %(requests_sent)s got %(responses_received)s in %(requests_received)s" % p
                for p in status["pairs"]],
            "turn": status.get("turn"),
            "remote_known_s": _since(started, v.remote_done_at),
            "connected_s": _since(started, connected),
            "connected_after_known_s": _since(v.remote_done_at, connected),
            "first_frame_s": _since(started, first),
            "log": lines[-15:],
        }

    return asyncio.run(main())


def _since(start, end):
    return None if start is None or end is None else round(end - start, 3)


def run_aioice_viewer(signaling, room, stun, turn, frames=FRAMES, timeout=CELL_TIMEOUT_S):
    """A viewer on aioice.Connection: our signaling protocol (SignalingClient),
    camlink.framing.Assembler for the frames. aioice does not trickle: it
    gathers, sends every candidate, then end-of-candidates."""
    import aioice
    from camlink import framing
    from camlink.signal import SignalingClient

    async def main():
        client = SignalingClient()
        await client.connect(*signaling)
        joined = await client.join(room, "viewer")
        camera = next((p["id"] for p in joined.get("peers", []) if p.get("role") == "camera"), None)
        while camera is None:
            msg = await asyncio.wait_for(client.recv(), timeout)
            if msg and msg.get("type") == "peer-joined" and msg.get("role") == "camera":
                camera = msg["id"]
        started = time.monotonic()
        conn = aioice.Connection(ice_controlling=True, stun_server=tuple(stun), turn_server=tuple(turn[:2]),
                                 turn_username=turn[2], turn_password=turn[3], use_ipv6=False)
        result = {"frames": 0, "state": "new", "local_type": None, "remote_type": None}
        try:
            await client.send({"type": "ice", "to": camera, "ufrag": conn.local_username,
                               "pwd": conn.local_password})
            await conn.gather_candidates()
            for cand in conn.local_candidates:
                await client.send({"type": "candidate", "to": camera, "candidate": "candidate:" + cand.to_sdp()})
            await client.send({"type": "end-of-candidates", "to": camera})
            while True:
                msg = await asyncio.wait_for(client.recv(), timeout)
                if msg is None:
                    raise ConnectionError("signaling closed")
                if msg.get("from") != camera:
                    continue
                kind = msg.get("type")
                if kind == "ice":
                    conn.remote_username, conn.remote_password = msg["ufrag"], msg["pwd"]
                elif kind == "candidate" and msg.get("candidate"):
                    line = msg["candidate"]
                    if line.startswith("candidate:"):
                        line = line[len("candidate:"):]
                    await conn.add_remote_candidate(aioice.Candidate.from_sdp(line))
                elif kind in ("end-of-candidates", "candidate"):
                    await conn.add_remote_candidate(None)
                    break
            known = time.monotonic()
            await asyncio.wait_for(conn.connect(), timeout)
            connected = time.monotonic()
            pair = conn._nominated.get(1)  # aioice keeps the selected pair per component here
            result.update(state="connected", local_type=pair.local_candidate.type,
                          remote_type=pair.remote_candidate.type,
                          selected={"local": "%s:%d" % (pair.local_candidate.host, pair.local_candidate.port),
                                    "remote": "%s:%d" % (pair.remote_candidate.host, pair.remote_candidate.port)})
            assembler = framing.Assembler()
            first = None
            while result["frames"] < frames:
                data = await asyncio.wait_for(conn.recv(), timeout)
                if framing.is_frame_datagram(data) and data[0] == framing.CHUNK and assembler.add(data) is not None:
                    result["frames"] += 1
                    first = first or time.monotonic()
            result.update(remote_known_s=_since(started, known), connected_s=_since(started, connected),
                          connected_after_known_s=_since(known, connected), first_frame_s=_since(started, first))
        finally:
            await conn.close()
            await client.close()
        return result

    async def bounded():
        return await asyncio.wait_for(main(), timeout)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        return {"frames": 0, "state": "timeout after %d s" % timeout, "local_type": None, "remote_type": None}


VIEWERS = {"ours": run_our_viewer, "aioice": run_aioice_viewer}
_rooms = [0]


def run_cell(lab, nat1, nat2, peer, build, log_dir, timeout=CELL_TIMEOUT_S):
    """One cell: fresh sites, the camera in site 1, the viewer in site 2.
    Returns the viewer's result with the camera's output lines."""
    lab.reconfigure(nat1, nat2)
    _rooms[0] += 1
    room = "lab%d" % _rooms[0]
    log_path = os.path.join(log_dir, "camera-%s-%s-%s.log" % (nat1, nat2, peer))
    turn = (lab.turn.ip, lab.turn.port, lab.turn.username, lab.turn.password)
    with open(log_path, "wb") as out:
        camera = lab.start_camera(room, log_dir, build=build, stdout=out)
        try:
            try:
                viewer = functools.partial(VIEWERS[peer], timeout=timeout)
                result = lab.call(2, viewer, lab.signaling, room, lab.stun, turn, timeout=timeout + 15)
            except (RuntimeError, TimeoutError) as exc:
                result = {"frames": 0, "error": str(exc)[-1500:]}
        finally:
            camera.terminate()
            try:
                camera.wait(5)
            except Exception:
                camera.kill()
                camera.wait(5)
    with open(log_path, "rb") as f:
        result["camera"] = f.read().decode(errors="replace").splitlines()[-8:]
    return result


CELLS = [(a, b) for a in NAT_TYPES for b in NAT_TYPES]


def _check_cell(lab, camera_build, nat1, nat2, peer):
    with tempfile.TemporaryDirectory(prefix="netlab-") as log_dir:
        started = time.monotonic()
        result = run_cell(lab, nat1, nat2, peer, camera_build, log_dir)
    print("%s camera %s / viewer %s: %s/%s in %.1f s, connected after %s s" % (
        peer, nat1, nat2, result.get("local_type"), result.get("remote_type"), time.monotonic() - started,
        result.get("connected_s")))
    assert result["frames"] >= FRAMES, json.dumps(result, indent=1, default=str)
    # aioice (0.13), the controlling viewer, nominates the first pair whose
    # check succeeds rather than the best one, so a relayed pair may win the
    # race where a direct one exists: the choice is aioice's, not the camera's.
    check_selected(nat1, nat2, result["local_type"], result["remote_type"], relay_ok=peer == "aioice")


@pytest.mark.parametrize("nat1,nat2", CELLS)
def test_matrix_ours(lab, camera_build, nat1, nat2):
    """Camera (MicroPython) in site 1, tools/viewer.py in site 2: frames over the most direct pair."""
    _check_cell(lab, camera_build, nat1, nat2, "ours")


@pytest.mark.parametrize("nat1,nat2", CELLS)
def test_matrix_aioice(lab, camera_build, nat1, nat2):
    """Camera (MicroPython) in site 1, an aioice viewer in site 2: frames over the most direct pair."""
    pytest.importorskip("aioice")
    _check_cell(lab, camera_build, nat1, nat2, "aioice")
