"""Camera-to-viewer session on a simulated network, run by the real agent.

    micropython tools/sim_demo.py    (`make sim-demo`; CPython works too)

A camera behind a port-restricted NAT and a viewer behind a full-cone NAT
trickle their candidates over a 30 ms signalling channel, run ICE through
the simulator (10 ms access links, 0.5 % loss each), then the camera streams
synthetic frames in chunks over the selected pair for ten virtual seconds.
"""

import gc
import struct
import sys

from scenarios import Session

FPS = 10
FRAME_BYTES = 6000
CHUNK = 1100  # payload per datagram: well inside a 1280-byte path MTU
# Application framing: a first byte of 0xF0 keeps clear of STUN (0-3) and
# TURN ChannelData (64-79) under RFC 7983 demultiplexing.
_HEADER = ">BHBB"  # marker, frame id, chunk index, chunk count


def frame_chunks(frame_id):
    body = bytes((frame_id + i) & 0xFF for i in range(FRAME_BYTES))
    count = (len(body) + CHUNK - 1) // CHUNK
    for index in range(count):
        yield struct.pack(_HEADER, 0xF0, frame_id, index, count) + body[index * CHUNK : (index + 1) * CHUNK]


class Viewer:
    """Reassembles frames; incomplete ones are dropped when a newer starts."""

    def __init__(self):
        self.frame_id = -1
        self.chunks = 0
        self.complete = 0
        self.dropped = 0

    def on_datagram(self, data):
        marker, frame_id, _index, count = struct.unpack_from(_HEADER, data)
        if marker != 0xF0:
            return
        if frame_id != self.frame_id:
            if self.frame_id >= 0 and self.chunks:
                self.dropped += 1
            self.frame_id, self.chunks = frame_id, 0
        self.chunks += 1
        if self.chunks == count:
            self.complete += 1
            self.chunks = 0


def heap():
    gc.collect()
    return "%d KB free" % (gc.mem_free() // 1024) if hasattr(gc, "mem_free") else "n/a"


def main():
    s = Session("port-restricted", "full-cone", seed=7, loss=0.005)
    camera, viewer_agent, sim = s.a, s.b, s.sim
    print("[%5d ms] camera gathering: %d local candidate(s) so far, %s" % (sim.now, len(camera.local_candidates), heap()))
    states = []
    sim.run_until(lambda: camera.state != "new", 5000)
    print("[%5d ms] camera %s, %d pair(s)" % (sim.now, camera.state, len(camera.pairs)))
    if not s.connect(20000):
        print("ICE failed: camera %s, viewer %s" % (camera.state, viewer_agent.state))
        sys.exit(1)
    pair = camera.selected_pair
    print("[%5d ms] connected via %s -> %s (%s:%d -> %s:%d), rtt %s ms" % (
        sim.now, pair.local.type, pair.remote.type, pair.local.host, pair.local.port,
        pair.remote.host, pair.remote.port, pair.rtt_ms))
    for line in (c.to_sdp() for c in camera.local_candidates):
        print("           camera candidate: " + line)
    viewer = Viewer()
    start = sim.now
    for frame_id in range(10 * FPS):
        at = start + frame_id * 1000 // FPS
        sim.run(at)
        for chunk in frame_chunks(frame_id):
            s.send(camera, chunk)
        for payload in s.data_b:
            viewer.on_datagram(payload)
        del s.data_b[:], s.events_b[:]
        states.append(camera.state)
        if frame_id % FPS == FPS - 1:
            seconds = (sim.now - start + 1000 // FPS) / 1000
            print("[%5d ms] %s: %d frames shown (%.1f fps), %d incomplete dropped, %d bytes sent, %s" % (
                sim.now, camera.state, viewer.complete, viewer.complete / seconds, viewer.dropped,
                pair.bytes_sent, heap()))
    sim.advance(200)
    print("done: viewer saw %d of %d frames; camera counters %s" % (viewer.complete, 10 * FPS, camera.counters))


main()
