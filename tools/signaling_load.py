"""Signaling under load (issue 18): N simulated cameras and N viewers, all
CPython ice.aio Connections on loopback in this process, each pair in its
own room, meeting through tools/signaling.py or through one Mosquitto
(tools/mosquitto.py, aiomqtt clients). Reports the time from a viewer's
join to ICE connected (median, p95) and the signaling messages a session
took, side by side.

    python tools/signaling_load.py [--pairs 200] [--transport server|mqtt|both]

The cameras join first; then the viewers join, `--rate` a second.
"""

import argparse
import asyncio
import statistics
import sys
import time

from camlink.session import IceSignaling
from camlink.signal import SignalingClient
from ice import aio

LOOPBACK = {"include_loopback": True, "use_ipv6": False, "include_addresses": ["127.0.0.1"]}


class Peer:
    """One simulated camera or viewer: a signaling client and, once the
    other side is known, an ICE session driven by camlink.session."""

    def __init__(self, make_client, room, role):
        self.client = make_client()
        self.room, self.role = room, role
        self.conn = None
        self.ice = None
        self.other = None
        self.sent = 0
        self.received = 0
        self.connected = asyncio.Event()
        self._outbox = []
        self._tasks = []

    def post(self, msg):
        msg["to"] = self.other
        self.sent += 1
        self._tasks.append(asyncio.ensure_future(self.client.send(msg)))

    def start_session(self, other):
        """A Connection with `other`; our credentials go out at once."""
        self.other = other
        self.conn = aio.Connection(self.role == "viewer", **LOOPBACK)
        self.ice = ice = IceSignaling(self.conn, self.post)
        self._tasks.append(asyncio.ensure_future(self.conn.gather_candidates()))
        self._tasks.append(asyncio.ensure_future(self._until_connected()))
        ice.send_credentials()
        return ice

    async def _until_connected(self):
        while self.conn.remote_password is None:  # connect() wants the peer's credentials
            await asyncio.sleep(0.005)
        await self.conn.connect()
        self.connected.set()

    async def run(self, connect):
        await connect(self.client)
        joined = await self.client.join(self.room, self.role)
        for peer in joined.get("peers") or []:
            if self.role == "viewer" and peer.get("role") == "camera":
                self.start_session(peer["id"])
        while True:
            msg = await self.client.recv()
            if msg is None:
                return
            kind = msg.get("type")
            if kind == "peer-joined" and self.role == "viewer" and msg.get("role") == "camera" and self.ice is None:
                self.start_session(msg["id"])
            elif "from" in msg:
                self.received += 1
                ice = self.ice
                if ice is None and kind == "ice":
                    ice = self.start_session(msg["from"])
                if ice is not None:
                    await ice.handle(msg)

    async def close(self):
        for task in self._tasks:
            task.cancel()
        if self.conn is not None:
            await self.conn.close()
        await self.client.close()


async def run_load(pairs, transport, rate, log):
    """{"connected": [seconds...], "failed": n, "messages": [per session]}."""
    if transport == "mqtt":
        from mosquitto import Broker
        from mqtt_signaling import HostMqttSignalingClient

        broker = Broker({"load%d" % i: "pw%d" % i for i in range(pairs)}).start()
        make = HostMqttSignalingClient

        def connect_for(room):
            return lambda c: c.connect(broker.ip, broker.port, None, room, broker.accounts[room])
        closer = broker.close
    else:
        import signaling

        signaling.log = lambda text: None
        server = await signaling.serve("127.0.0.1", 0, 0, max_rooms=pairs + 8, max_connections=4 * pairs + 16)
        make = SignalingClient

        def connect_for(room):
            return lambda c: c.connect("127.0.0.1", server.tcp_port)

        async def close_server():
            await server.close()
        closer = close_server
    cameras, viewers, tasks = [], [], []
    try:
        for i in range(pairs):
            room = "load%d" % i
            camera = Peer(make, room, "camera")
            cameras.append(camera)
            tasks.append(asyncio.ensure_future(camera.run(connect_for(room))))
        await asyncio.sleep(2.0)
        log("%s: %d cameras in their rooms; viewers joining, %d a second" % (transport, pairs, rate))
        times = []

        async def one(viewer, room):
            started = time.monotonic()
            runner = asyncio.ensure_future(viewer.run(connect_for(room)))
            tasks.append(runner)
            try:
                await asyncio.wait_for(viewer.connected.wait(), 30)
                times.append(time.monotonic() - started)
            except asyncio.TimeoutError:
                pass

        joins = []
        for i in range(pairs):
            viewer = Peer(make, "load%d" % i, "viewer")
            viewers.append(viewer)
            joins.append(asyncio.ensure_future(one(viewer, "load%d" % i)))
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*joins)
        messages = [c.sent + v.sent for c, v in zip(cameras, viewers) if v.connected.is_set()]
        return {"connected": times, "failed": pairs - len(times), "messages": messages}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(p.close() for p in cameras + viewers), return_exceptions=True)
        result = closer()
        if asyncio.iscoroutine(result):
            await result


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def format_rows(results, pairs):
    lines = ["%d simulated cameras and %d viewers (CPython, loopback, host candidates), one room a pair: "
             "seconds from a viewer's join to ICE connected, and the signaling messages a session took "
             "(both directions)." % (pairs, pairs), "",
             "| signaling | connected | median | p95 | max | messages per session |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        t = r["connected"]
        lines.append("| %s | %d of %d | %.3f | %.3f | %.3f | %.0f |" % (
            name, len(t), pairs, statistics.median(t) if t else 0, percentile(t, 0.95) if t else 0,
            max(t) if t else 0, statistics.median(r["messages"]) if r["messages"] else 0))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="viewers joining a second")
    parser.add_argument("--transport", choices=("server", "mqtt", "both"), default="both")
    args = parser.parse_args(argv)
    names = ("server", "mqtt") if args.transport == "both" else (args.transport,)
    results = {}
    for name in names:
        results[{"server": "tools/signaling.py", "mqtt": "Mosquitto"}[name]] = asyncio.run(
            run_load(args.pairs, name, args.rate, lambda line: print(line, file=sys.stderr, flush=True)))
    print("\n".join(format_rows(results, args.pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
