"""One cell of the NAT lab (tools/netlab.py): the camera app in site 1, a
viewer in site 2 behind another NAT, and what each cell should select. Used
by the matrix tests (host_tests/cpython/test_netlab.py) and by
tools/netlab_bench.py.

Two viewers, each run in site 2 as a forked child: ours (tools/viewer.py's
Viewer on ice.aio.Connection) and one built on aioice. Each reports seconds
from its session start (it sees the camera and sends its credentials):
- remote_known_s: the camera's end-of-candidates arrived;
- connected_s: a pair could carry data (ours: the first valid pair, RFC 8445
  §12.1; aioice: its nominated pair, the only one it uses);
- final_s: the final selected pair (ours: nominated; aioice: as connected_s);
- first_frame_s: the first whole frame arrived;
and local_type/remote_type, the final selected pair's candidate types (local:
the viewer's, remote: the camera's).
"""

import asyncio
import functools
import os
import time

from netlab import NAT_TYPES

FRAMES = 3  # frames that must arrive per cell
CELL_TIMEOUT_S = 20
CELLS = [(a, b) for a in NAT_TYPES for b in NAT_TYPES]

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


# ---- viewers, run in site 2 (forked children) -------------------------------------------------


def run_our_viewer(signaling, room, stun, turn, frames=FRAMES, timeout=CELL_TIMEOUT_S, turns=None):
    """tools/viewer.py's Viewer until `frames` frames arrived and a pair is
    nominated (the final one); the times are in the module docstring.
    `turns`: (iceServers, CA file, DNS server) to use TURN over TLS by name
    instead of `turn` over UDP."""
    import viewer as viewer_tool

    from ice import netio

    options = {"use_ipv6": False}  # type: dict
    if turns is not None:
        ice_servers, ca_file, dns_server = turns
        with open(ca_file) as f:
            options.update(ice_servers=ice_servers, turn_ssl=netio.tls_context(cadata=f.read()),
                           dns_servers=[dns_server])
        turn = (None, None, None, None)

    class TimedViewer(viewer_tool.Viewer):
        remote_done_at = None

        async def _on_message(self, msg):
            if msg.get("type") == "end-of-candidates" and self.remote_done_at is None:
                self.remote_done_at = time.monotonic()
            await super()._on_message(msg)

    async def main():
        lines = []
        v = TimedViewer(signaling, room, ("127.0.0.1", 0), stun=stun, turn=turn[:2] if turn[0] else None,
                        turn_user=turn[2], turn_password=turn[3], connection_options=options, log=lines.append)
        await v.start()
        started = connected = final = first = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                now = time.monotonic()
                status = v.status()
                if started is None and v.session is not None:
                    started = now
                if connected is None and status["state"] in ("connected", "completed") and status["selected"]:
                    connected = now
                if final is None and status["state"] == "completed":
                    final = now
                if first is None and status["frames_completed"] >= 1:
                    first = now
                if status["frames_completed"] >= frames and final is not None:
                    break
                await asyncio.sleep(0.002)
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
            "final_s": _since(started, final),
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
                          final_s=_since(started, connected), first_frame_s=_since(started, first))
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


def run_cell(lab, nat1, nat2, peer, build, log_dir, timeout=CELL_TIMEOUT_S, turns_at=None):
    """One cell: fresh sites, the camera in site 1, the viewer in site 2.
    Returns the viewer's result with the camera's output lines. `turns_at`
    "camera" or "viewer" (ours): that end reaches coturn by name over TLS
    on port 443 (for a tcp443-only site), the other over UDP."""
    lab.reconfigure(nat1, nat2)
    _rooms[0] += 1
    room = "lab%d" % _rooms[0]
    log_path = os.path.join(log_dir, "camera-%s-%s-%s.log" % (nat1, nat2, peer))
    turn = (lab.turn.ip, lab.turn.port, lab.turn.username, lab.turn.password)
    with open(log_path, "wb") as out:
        camera = lab.start_camera(room, log_dir, build=build, stdout=out, turns=turns_at == "camera")
        try:
            try:
                viewer = functools.partial(VIEWERS[peer], timeout=timeout)
                if turns_at == "viewer":
                    viewer = functools.partial(viewer, turns=(lab.ice_servers(turns=True), lab.ca.pem,
                                                              lab.site(2).router_ip))
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
            time.sleep(0.1)  # the FINs cross the uplinks' delay before the sites go
    with open(log_path, "rb") as f:
        result["camera"] = f.read().decode(errors="replace").splitlines()[-8:]
    return result
