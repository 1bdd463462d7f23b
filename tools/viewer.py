"""The host viewer: meet a camera through signaling, connect to it with ICE
(as the controlling agent), reassemble its JPEG frames, report losses back,
and show the live picture and the ICE state on a local web page.

    python tools/viewer.py --signaling 127.0.0.1:8765 --room cam1 --http 127.0.0.1:8081 \\
        [--stun HOST:PORT] [--turn HOST:PORT --turn-user U --turn-password P \\
        --turn-transport udp|tcp] [--ice-server URI ... [--turn-ca CA.pem]] \\
        [--relay-only] [--include-loopback]

--ice-server takes stun:, turn: and turns: URIs (RFC 7064/7065), repeated;
the TURN ones use --turn-user and --turn-password, and turns: servers are
checked against --turn-ca (else the system's CAs).

Protocols: firmware/PROTOCOL.md. The viewer joins the room as "viewer"; when a
camera is there (or joins later) it opens an `ice.aio.Connection`, sends `ice`
(its credentials) and then trickles `candidate` lines and `end-of-candidates`;
the camera answers the same way. New credentials from the camera while
connected are an ICE restart: the viewer restarts too and signals its new
credentials and candidates. A `restart` request from the camera makes the
viewer start one. `busy` closes the attempt; the viewer retries when a peer
leaves the room, and every `busy_retry_s`. `peer-left` of the camera ends the
session; a camera joining starts a new one.

Frames arrive as chunk datagrams (lib/camlink/framing.py) and are rebuilt by
`framing.Assembler`; every second the viewer sends the camera a loss report
(frames completed and dropped in that window).

The web page (the `websockets` package's server answers each request from its
`process_request` hook, one request per connection; GET only, no WebSocket):

    /             HTML with inline CSS/JS: the picture (<img id="frame">) and the
                  ICE view (#ice-state, #selected, #fps, #frames, #bytes, #pairs)
    /status.json  the fields below
    /frame.jpg    the latest complete frame (404 until one exists); the page
                  asks for /frame.jpg?n=<frame_seq> (the query only defeats caches)

The page polls /status.json and loads /frame.jpg?n=... when `frame_seq`
changes, right after the previous picture finished loading (so it shows
frames as fast as they come, and never queues them). This rather than an
MJPEG `multipart/x-mixed-replace` stream: a stream never finishes loading,
so the page's `load` event never fires (headless Chromium drivers wait for
it), each open tab pins a response the server has to cut at shutdown, and
the page could not tell which frame it shows. Polling works in every
browser, headless or not.

/status.json fields:

    room              the room name
    signaling         "connecting", "connected" or "disconnected"
    viewer_id         our id in the room (null before joining)
    camera            the camera's id (null when there is no camera)
    busy              true after the camera answered `busy` (until a retry)
    sessions          how many sessions were started so far
    state             ICE state of the current session ("new", "checking",
                      "connected", "completed", "disconnected", "failed",
                      "closed"), or "waiting" (no camera) / "busy" without one
    selected          null, or the selected pair: {"local_type", "local_host",
                      "local_port", "remote_type", "remote_host", "remote_port",
                      "rtt_ms", "nominated"}
    pairs             candidate pairs, each {"local_type", "local_host",
                      "local_port", "remote_type", "remote_host", "remote_port",
                      "state", "nominated", "rtt_ms", "requests_sent",
                      "requests_received", "responses_sent", "responses_received",
                      "bytes_sent", "bytes_received"}
    local_candidates  number of local candidates trickled so far
    remote_candidates number of the camera's candidates in use
    restarts          ICE restarts in this session
    fps               frames completed per second over the last `fps_window_s`
    frames_completed  frames rebuilt in this session
    frames_dropped    incomplete frames abandoned for a newer one (framing.Assembler;
                      a frame lost whole is not seen: frame ids are not
                      consecutive per viewer, the camera numbers all its sends)
    frames_malformed  datagrams that were not well-formed chunks
    bytes_received    datagram bytes received from the camera in this session
    reports_sent      loss reports sent in this session
    frame_seq         number of the latest frame (counts up over the viewer's
                      life, never reset; 0 = none yet)
    has_frame         whether /frame.jpg has a picture (cleared with the session)
    frame_bytes       size of the latest frame
    frame_age_ms      how long ago it completed (null without one)
    connected_ms      ms from the session's start until data could flow (the
                      first valid pair, state "connected"), or null
    completed_ms      ms until a pair was nominated (state "completed"), or null
    first_frame_ms    ms until the first whole frame arrived, or null
    turn              the TURN allocations of the session (ice stats)

Per-session fields start again from zero when the camera leaves.

API (in-process, e.g. tests):

    viewer = Viewer(("127.0.0.1", 8765), "cam1", ("127.0.0.1", 0), include_loopback=True)
    await viewer.start()          # HTTP serving, signaling running; viewer.url
    status = await viewer.wait_for(lambda s: s["frames_completed"] >= 10, timeout=10)
    viewer.latest_frame           # bytes or None
    await viewer.close()

or `await run_viewer(...)` (same arguments), which runs until cancelled.
"""

import argparse
import asyncio
import collections
import http
import json
import signal
import sys
import time
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from camlink import framing, grants
from camlink.session import IceSignaling
from camlink.signal import SignalingClient, SignalingError, signaling_url
from ice import aio, netio, servers

_UP = ("connected", "completed")
# A connection has this long to send its request and take our whole answer
# (websockets' open_timeout and close_timeout; the library also caps a request
# head at 128 lines of 8 KiB and refuses a request body).
_HTTP_TIMEOUT_S = 10


def _log(line):
    print(line, flush=True)


def _host_port(text, what):
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("%s must be HOST:PORT, got %r" % (what, text))
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Session:
    """One ICE session with the camera, and what came over it."""

    def __init__(self, camera_id, conn, ice, grant=None):
        self.camera_id = camera_id
        self.conn = conn
        self.ice = ice
        # With a grant (camlink.grants.ViewerAuth): nothing but the hello goes
        # out until the camera's challenge proves it holds the secret.
        self.grant = grant
        self.authorized = asyncio.Event()
        self.held = []  # messages waiting for it
        self.tasks = []
        self.assembler = framing.Assembler()
        self.completed = 0
        self.bytes_received = 0
        self.reports_sent = 0
        self.frame_times = collections.deque()
        self.started_at = time.monotonic()
        self.first_frame_at = None
        self.failed_since = None
        self.report_at = time.monotonic()
        self.reported_completed = 0
        self.reported_dropped = 0

    def on_frame(self, now):
        self.completed += 1
        self.frame_times.append(now)
        if self.first_frame_at is None:
            self.first_frame_at = now

    def fps(self, now, window_s):
        times = self.frame_times
        while times and now - times[0] > window_s:
            times.popleft()
        if not times or self.first_frame_at is None:
            return 0.0
        span = min(window_s, max(now - self.first_frame_at, 0.5))
        return len(times) / span


class Viewer:
    """The viewer; see the module docstring. `signaling` and `http` are
    (host, port); port 0 for `http` picks a free one (see `http_port`)."""

    def __init__(self, signaling=("127.0.0.1", 8765), room="cam1", http=("127.0.0.1", 8081), *,
                 stun=None, turn=None, turn_user=None, turn_password=None, turn_transport="udp",
                 relay_only=False, include_loopback=False, connection_options=None, log=None,
                 tick_s=1.0, fps_window_s=2.0, busy_retry_s=10.0, failed_restart_s=10.0,
                 reconnect_s=1.0, grant=None, signaling_tls=None, room_credential=None, signaling_mqtt=None):
        self.signaling = (signaling[0], int(signaling[1]))
        self.signaling_tls = signaling_tls  # an ssl.SSLContext, or None: plain TCP
        self.room_credential = room_credential
        self.signaling_mqtt = signaling_mqtt  # (username, password): through an MQTT broker
        self.server_ice_servers = []  # TURN credentials from the server's `joined`
        self.room = room
        self.http = (http[0], int(http[1]))
        # A frame is tens of datagrams at once: a receive buffer of 1 MiB rides
        # out a busy moment of this process without losing one.
        options = {"include_loopback": include_loopback, "recv_queue_size": 512, "recv_buffer_size": 1 << 20}
        if stun is not None:
            options["stun_server"] = (stun[0], int(stun[1]))
        if turn is not None:
            options.update(turn_server=(turn[0], int(turn[1])), turn_username=turn_user,
                           turn_password=turn_password, turn_transport=turn_transport)
        if relay_only:
            options["transport_policy"] = "relay"
        options.update(connection_options or {})
        self.connection_options = options
        self.grant = grant  # the owner's grant for this camera (tools/grant.py), text
        if grant is not None:
            grants.load(grant)  # a malformed grant fails here, not at the camera
        self.denied = None  # the camera's reason for refusing our grant
        self.unverified = 0  # messages from the camera that failed their check, dropped
        self.log = log or _log
        self.tick_s = tick_s
        self.fps_window_s = fps_window_s
        self.busy_retry_s = busy_retry_s
        self.failed_restart_s = failed_restart_s
        self.reconnect_s = reconnect_s

        self.viewer_id = None
        self.camera_id = None
        self.signaling_state = "connecting"
        self.busy = False
        self.sessions = 0
        self.session = None
        self.latest_frame = None
        self.frame_seq = 0
        self._frame_at = None
        self._busy_at = 0.0
        self._client = None
        self._outbox = None
        self._server = None
        self._http_conns = set()  # open HTTP connections, cut by close()
        self._tasks = []
        self._changed = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()

    # ---- life cycle -----------------------------------------------------------

    @property
    def http_port(self):
        return self._server.sockets[0].getsockname()[1] if self._server else None

    @property
    def url(self):
        host = self.http[0]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d/" % (host, self.http_port)

    async def start(self):
        """Serve the page, then meet the camera in the background."""
        viewer = self

        class Connection(ServerConnection):
            def connection_made(self, transport):
                super().connection_made(transport)
                if viewer._closing:
                    self.transport.abort()
                else:
                    viewer._http_conns.add(self)

            def connection_lost(self, exc):
                viewer._http_conns.discard(self)
                super().connection_lost(exc)

        # process_request answers every request, so no WebSocket handshake
        # ever completes and _no_websocket never runs.
        self._server = await serve(
            _no_websocket, self.http[0], self.http[1], create_connection=Connection,
            process_request=self._route, server_header=None, compression=None,
            ping_interval=None, open_timeout=_HTTP_TIMEOUT_S, close_timeout=_HTTP_TIMEOUT_S)
        self.log("viewer page: %s" % self.url)
        self._tasks.append(asyncio.create_task(self._signaling_loop()))
        self._tasks.append(asyncio.create_task(self._ticker()))
        return self

    async def wait_closed(self):
        await self._closed.wait()

    async def close(self):
        """Close the session's Connection, the signaling client and the HTTP server."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # keeps our own cancellation
        self._tasks = []
        await self._end_session(None)
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._server is not None:
            self._server.close()
            for conn in list(self._http_conns):
                conn.transport.abort()  # silent connections too
            await self._server.wait_closed()
        self.signaling_state = "disconnected"
        self._closed.set()
        self._notify()

    async def wait_for(self, predicate, timeout=10.0):
        """Wait until predicate(status()) is true; returns that status.
        TimeoutError (with the last status) otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("viewer status never matched: %s" % json.dumps(status))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
            except TimeoutError:
                pass

    def _notify(self):
        self._changed.set()

    # ---- status -----------------------------------------------------------------

    def status(self):
        now = time.monotonic()
        session = self.session
        out = {
            "room": self.room,
            "signaling": self.signaling_state,
            "viewer_id": self.viewer_id,
            "camera": self.camera_id,
            "busy": self.busy,
            "denied": self.denied,
            "unverified": self.unverified,
            "sessions": self.sessions,
            "state": "busy" if self.busy else "waiting",
            "selected": None,
            "pairs": [],
            "local_candidates": 0,
            "remote_candidates": 0,
            "restarts": 0,
            "fps": 0.0,
            "frames_completed": 0,
            "frames_dropped": 0,
            "frames_malformed": 0,
            "bytes_received": 0,
            "reports_sent": 0,
            "frame_seq": self.frame_seq,
            "has_frame": self.latest_frame is not None,
            "frame_bytes": len(self.latest_frame) if self.latest_frame is not None else 0,
            "frame_age_ms": None if self._frame_at is None else int((now - self._frame_at) * 1000),
            "connected_ms": None,
            "completed_ms": None,
            "first_frame_ms": None,
            "turn": [],
        }
        if session is None:
            return out
        conn = session.conn
        stats = conn.stats()
        pair = conn.selected_pair
        if pair is not None:
            out["selected"] = {
                "local_type": pair.local.type, "local_host": pair.local.host, "local_port": pair.local.port,
                "remote_type": pair.remote.type, "remote_host": pair.remote.host,
                "remote_port": pair.remote.port, "rtt_ms": pair.rtt_ms, "nominated": pair.nominated,
            }
        out.update(
            state=conn.state,
            pairs=stats["pairs"],
            local_candidates=session.ice.local_candidates,
            remote_candidates=len(conn.remote_candidates),
            restarts=session.ice.restarts,
            fps=round(session.fps(now, self.fps_window_s), 1),
            frames_completed=session.completed,
            frames_dropped=session.assembler.dropped,
            frames_malformed=session.assembler.malformed,
            bytes_received=session.bytes_received,
            reports_sent=session.reports_sent,
            connected_ms=stats["times"].get("connected"),
            completed_ms=stats["times"].get("completed"),
            first_frame_ms=None if session.first_frame_at is None else
            int((session.first_frame_at - session.started_at) * 1000),
            turn=[_jsonable(t) for t in stats.get("turn", [])],
        )
        return out

    def progress_line(self, status=None):
        s = status or self.status()
        if s["camera"] is None:
            head = "waiting for a camera in room %r (signaling %s)" % (self.room, s["signaling"])
            return "viewer: " + head
        sel = s["selected"]
        via = "-" if sel is None else "%s/%s" % (sel["local_type"], sel["remote_type"])
        rtt = "" if sel is None or sel["rtt_ms"] is None else " rtt=%sms" % sel["rtt_ms"]
        return "viewer: %s selected=%s%s fps=%.1f frames=%d dropped=%d bytes=%d" % (
            s["state"], via, rtt, s["fps"], s["frames_completed"], s["frames_dropped"], s["bytes_received"])

    # ---- signaling ----------------------------------------------------------------

    async def _signaling_loop(self):
        host, port = self.signaling
        while not self._closing:
            if self.signaling_mqtt is not None:
                from mqtt_signaling import HostMqttSignalingClient

                client = HostMqttSignalingClient()
                connect_args = (self.signaling_tls,) + tuple(self.signaling_mqtt)
            else:
                client = SignalingClient()
                connect_args = (self.signaling_tls,)
            self.signaling_state = "connecting"
            try:
                await client.connect(host, port, *connect_args)
                joined = await client.join(self.room, "viewer", self.room_credential)
            except (OSError, SignalingError) as exc:
                await client.close()
                self.log("viewer: signaling %s:%d: %s, retrying" % (host, port, exc or "refused"))
                await asyncio.sleep(self.reconnect_s)
                continue
            self._client = client
            self._outbox = asyncio.Queue()
            sender = asyncio.create_task(self._send_loop(client, self._outbox))
            self.signaling_state = "connected"
            self.viewer_id = joined.get("id")
            self.server_ice_servers = joined.get("ice_servers") or []
            self.log("viewer: joined room %r as %s" % (self.room, self.viewer_id))
            self._notify()
            try:
                for peer in joined.get("peers") or []:
                    if peer.get("role") == "camera":
                        self.camera_id = peer.get("id")
                        await self._start_session(self.camera_id)
                while True:
                    msg = await client.recv()
                    if msg is None:
                        break
                    try:
                        await self._on_message(msg)
                    except Exception as exc:  # a bug or a bad message must not end the viewer
                        self.log("viewer: error handling %r: %r" % (msg.get("type"), exc))
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                self._client = None
                self._outbox = None
                self.signaling_state = "disconnected"
                self.camera_id = None
                self.busy = False
                await self._end_session("signaling closed")
                await client.close()
            self.log("viewer: signaling closed, reconnecting")
            await asyncio.sleep(self.reconnect_s)

    async def _send_loop(self, client, outbox):
        while True:
            session, msg = await outbox.get()
            if session is not self.session:
                continue  # for a session already over
            if session.grant is not None and msg["type"] != "hello":
                session.grant.seal(msg)
            msg["to"] = session.camera_id
            try:
                await client.send(msg)
            except (OSError, AttributeError) as exc:  # AttributeError: the client was closed
                self.log("viewer: signaling send failed (%s)" % exc)

    def _post(self, session, msg):
        if session.grant is not None and msg["type"] != "hello" and not session.authorized.is_set():
            session.held.append(msg)  # sent, in order, once the camera has proved itself
        elif self._outbox is not None:
            self._outbox.put_nowait((session, msg))

    async def _on_message(self, msg):
        kind = msg.get("type")
        sender = msg.get("from")
        session = self.session
        if kind == "ice-servers" and sender is None:  # fresh TURN credentials from the server
            self.server_ice_servers = msg.get("ice_servers") or []
        elif kind == "peer-joined":
            if msg.get("role") == "camera":
                self.camera_id = msg.get("id")
                self.log("viewer: camera %s joined" % self.camera_id)
                await self._start_session(self.camera_id)
        elif kind == "peer-left":
            left = msg.get("id")
            if left is not None and left == self.camera_id:
                self.log("viewer: camera %s left" % left)
                self.camera_id = None
                self.busy = False
                await self._end_session("camera left")
            elif self.busy and self.camera_id is not None:
                await self._start_session(self.camera_id)  # a slot may be free now
        elif kind == "error":
            self.log("viewer: signaling error: %s" % msg.get("reason"))
        elif session is None or sender != session.camera_id:
            return  # not from the camera we are talking to
        elif session.grant is not None and not self._verified(session, kind, msg):
            return
        elif kind == "restart":
            self._restart(session, "the camera asked")
        elif kind in ("ice", "candidate", "end-of-candidates"):
            restarts = session.ice.restarts
            await session.ice.handle(msg)
            if session.ice.restarts != restarts:
                self.log("viewer: camera restarted ICE (%d), restarting too" % session.ice.restarts)
        elif kind == "busy":
            self.log("viewer: camera %s is busy (no room for another viewer), waiting" % sender)
            await self._end_session("busy")
            self.busy = True
            self._busy_at = time.monotonic()
        elif kind == "bye":
            self.log("viewer: camera %s said bye" % sender)
            await self._end_session("camera said bye")
        self._notify()

    def _verified(self, session, kind, msg):
        """With a grant: act on the challenge and a denial here; let through
        only "busy" and messages sealed by the camera (camlink.grants)."""
        grant = session.grant
        if kind == "challenge":
            if not session.authorized.is_set() and grant.on_challenge(msg):
                session.authorized.set()
                held, session.held = session.held, []
                for waiting in held:
                    self._post(session, waiting)
            else:
                self.unverified += 1
                self.log("viewer: the camera's challenge does not prove it holds the owner's secret: ignored")
            return False
        if kind == "denied":
            self.denied = msg.get("reason")
            self.log("viewer: the camera refused our grant (%s)%s" % (
                self.denied, ": ask the owner for a new one" if self.denied in ("expired", "other_camera") else ""))
            return False
        if kind == "busy":
            return True
        if grant.auth is None or grant.auth.check(msg) is not None:
            self.unverified += 1
            return False
        return True

    async def _hello(self, session):
        """Say hello until the camera answers (a hello can be lost with the
        camera's restart or rate limit); a denial ends it."""
        while not session.authorized.is_set() and self.denied is None:
            self._post(session, session.grant.hello())
            try:
                await asyncio.wait_for(session.authorized.wait(), 2.0)
            except asyncio.TimeoutError:
                continue

    def _restart(self, session, why):
        self.log("viewer: restarting ICE (%s)" % why)
        session.ice.restart()

    # ---- sessions ------------------------------------------------------------------

    async def _start_session(self, camera_id):
        if self._closing:
            return
        await self._end_session(None)
        self.busy = False
        options = dict(self.connection_options)
        if self.server_ice_servers:
            options["ice_servers"] = list(options.get("ice_servers") or []) + self.server_ice_servers
        conn = aio.Connection(ice_controlling=True, **options)

        def post(msg):
            self._post(session, msg)
            self._notify()

        grant = grants.ViewerAuth(self.grant) if self.grant is not None else None
        session = _Session(camera_id, conn, IceSignaling(conn, post), grant)
        self.session = session
        self.sessions += 1
        self.denied = None
        self.log("viewer: session %d with camera %s" % (self.sessions, camera_id))
        if grant is not None:
            session.tasks.append(asyncio.create_task(self._hello(session)))
        session.ice.send_credentials()
        session.tasks.append(asyncio.create_task(self._gather(session)))
        session.tasks.append(asyncio.create_task(self._receive(session)))
        self._notify()

    async def _end_session(self, why):
        session = self.session
        if session is None:
            return
        self.session = None
        for task in session.tasks:
            task.cancel()
        await asyncio.gather(*session.tasks, return_exceptions=True)
        await session.conn.close()
        self.latest_frame = None
        self._frame_at = None
        if why:
            self.log("viewer: session with %s over (%s)" % (session.camera_id, why))
        self._notify()

    async def _gather(self, session):
        try:
            await session.conn.gather_candidates()
        except Exception as exc:  # e.g. an unresolvable STUN/TURN name
            self.log("viewer: gathering failed (%s)" % exc)

    async def _receive(self, session):
        conn = session.conn
        assembler = session.assembler
        while True:
            try:
                data = conn.recv_nowait()  # what is queued, without a wait per datagram
                if data is None:
                    data = await conn.recv()
            except ConnectionError:
                return
            session.bytes_received += len(data)
            if not framing.is_frame_datagram(data) or data[0] != framing.CHUNK:
                continue
            frame = assembler.add(data)
            if frame is None:
                continue
            now = time.monotonic()
            session.on_frame(now)
            self.latest_frame = frame
            self.frame_seq += 1
            self._frame_at = now
            self._notify()

    # ---- once a second ----------------------------------------------------------

    async def _ticker(self):
        while True:
            await asyncio.sleep(self.tick_s)
            session = self.session
            if session is not None:
                await self._send_report(session)
                self._check_failed(session)
            elif self.busy and self.camera_id is not None and \
                    time.monotonic() - self._busy_at >= self.busy_retry_s:
                self.log("viewer: asking camera %s again" % self.camera_id)
                await self._start_session(self.camera_id)
            self.log(self.progress_line())

    async def _send_report(self, session):
        conn = session.conn
        if conn.state not in _UP or conn.selected_pair is None:
            return
        now = time.monotonic()
        completed = session.completed
        dropped = session.assembler.dropped
        buf = bytearray(framing.HEADER_SIZE)
        framing.write_report(buf, completed - session.reported_completed, dropped - session.reported_dropped,
                             int((now - session.report_at) * 1000))
        try:
            await conn.send(bytes(buf))
        except ConnectionError:
            return
        session.report_at = now
        session.reported_completed = completed
        session.reported_dropped = dropped
        session.reports_sent += 1

    def _check_failed(self, session):
        """Failed for `failed_restart_s` and the camera did nothing: restart
        ourselves (a camera that gave up on us takes it as a new session)."""
        now = time.monotonic()
        if session.conn.state != "failed":
            session.failed_since = None
            return
        if session.failed_since is None:
            session.failed_since = now
        elif now - session.failed_since >= self.failed_restart_s:
            session.failed_since = None
            self._restart(session, "ICE failed")

    # ---- HTTP ------------------------------------------------------------------------

    def _route(self, connection, request):
        """The response to one request (websockets' process_request hook)."""
        if request.method != "GET":
            return _response(405, b"GET only\n", "text/plain", [("Allow", "GET")])
        try:
            path = urlsplit(request.path).path
        except ValueError:
            return _response(400, b"bad request target\n", "text/plain")
        if path in ("/", "/index.html"):
            return _response(200, PAGE.encode(), "text/html; charset=utf-8")
        if path == "/status.json":
            body = json.dumps(self.status(), default=str).encode()
            return _response(200, body, "application/json")
        if path == "/frame.jpg":
            frame = self.latest_frame
            if frame is None:
                return _response(404, b"no frame yet\n", "text/plain")
            return _response(200, frame, "image/jpeg")
        return _response(404, b"not found\n", "text/plain")


def _response(code, body, content_type, extra=()):
    status = http.HTTPStatus(code)
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("Connection", "close"), *extra])
    return Response(status.value, status.phrase, headers, body)


async def _no_websocket(connection):
    await connection.close(1008)  # policy violation (RFC 6455 section 7.4.1)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>camera viewer</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #ddd; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
  #picture { flex: 1 1 480px; min-height: 240px; background: #000; display: flex;
             align-items: center; justify-content: center; position: relative; }
  #frame { width: 100%; max-height: 80vh; object-fit: contain; }
  #frame.empty { display: none; }
  #nopic { color: #777; }
  #info { flex: 1 1 360px; }
  h1 { font-size: 16px; margin: 0 0 8px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 12px; }
  dt { color: #999; }
  dd { margin: 0; font-family: ui-monospace, monospace; }
  table { border-collapse: collapse; width: 100%; font: 12px ui-monospace, monospace; }
  th, td { border-bottom: 1px solid #333; padding: 2px 6px; text-align: left; }
  tr.selected td { color: #8f8; }
  .state-connected, .state-completed { color: #8f8; }
  .state-checking, .state-new { color: #fd6; }
  .state-failed, .state-disconnected, .state-closed { color: #f77; }
</style>
</head>
<body>
<main>
  <div id="picture"><img id="frame" class="empty" alt="camera picture"><span id="nopic">no picture yet</span></div>
  <div id="info">
    <h1>ICE</h1>
    <dl>
      <dt>room</dt><dd id="room">-</dd>
      <dt>camera</dt><dd id="camera">-</dd>
      <dt>state</dt><dd id="ice-state">-</dd>
      <dt>selected pair</dt><dd id="selected">-</dd>
      <dt>fps</dt><dd id="fps">0</dd>
      <dt>frames</dt><dd id="frames">0</dd>
      <dt>bytes received</dt><dd id="bytes">0</dd>
      <dt>times</dt><dd id="times">-</dd>
    </dl>
    <table>
      <thead><tr><th>local</th><th>remote</th><th>state</th><th>rtt</th><th>checks</th><th>bytes in/out</th></tr></thead>
      <tbody id="pairs"></tbody>
    </table>
  </div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let shown = -1;
function text(id, value) { $(id).textContent = value; }
function addr(type, host, port) { return type + " " + (host.indexOf(":") >= 0 ? "[" + host + "]" : host) + ":" + port; }
function render(s) {
  text("room", s.room + " (signaling " + s.signaling + ")");
  text("camera", s.camera === null ? "none" : s.camera + (s.busy ? " (busy)" : ""));
  text("ice-state", s.state);
  $("ice-state").className = "state-" + s.state;
  const sel = s.selected;
  text("selected", sel ? addr(sel.local_type, sel.local_host, sel.local_port) + " \\u2192 " +
       addr(sel.remote_type, sel.remote_host, sel.remote_port) +
       (sel.rtt_ms === null ? "" : " (" + sel.rtt_ms + " ms)") + " [" + sel.local_type + "/" + sel.remote_type + "]" : "none");
  text("fps", s.fps.toFixed(1));
  text("frames", s.frames_completed + " completed, " + s.frames_dropped + " dropped");
  text("bytes", String(s.bytes_received));
  const ms = (v) => v === null ? "-" : v + " ms";
  text("times", "first pair " + ms(s.connected_ms) + ", nominated " + ms(s.completed_ms) +
       ", first frame " + ms(s.first_frame_ms));
  const body = $("pairs");
  body.textContent = "";
  for (const p of s.pairs) {
    const tr = document.createElement("tr");
    if (sel && p.local_host === sel.local_host && p.local_port === sel.local_port &&
        p.remote_host === sel.remote_host && p.remote_port === sel.remote_port) tr.className = "selected";
    const cells = [addr(p.local_type, p.local_host, p.local_port), addr(p.remote_type, p.remote_host, p.remote_port),
                   p.state + (p.nominated ? " *" : ""), p.rtt_ms === null ? "-" : p.rtt_ms + " ms",
                   p.requests_sent + "/" + p.responses_received, p.bytes_received + "/" + p.bytes_sent];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    body.appendChild(tr);
  }
}
function showFrame(seq) {
  return new Promise((resolve) => {
    const img = $("frame");
    img.onload = () => { img.className = ""; $("nopic").style.display = "none"; shown = seq; resolve(); };
    img.onerror = () => { shown = seq; resolve(); };
    img.src = "/frame.jpg?n=" + seq;
  });
}
async function poll() {
  for (;;) {
    let waited = false;
    try {
      const r = await fetch("/status.json", {cache: "no-store"});
      const s = await r.json();
      render(s);
      if (!s.has_frame) {
        $("frame").className = "empty";
        $("nopic").style.display = "";
      } else if (s.frame_seq !== shown) {
        await showFrame(s.frame_seq);
        waited = true;
      }
    } catch (e) {
      text("ice-state", "viewer offline");
      $("ice-state").className = "state-failed";
    }
    if (!waited) await new Promise((r) => setTimeout(r, 100));
  }
}
poll();
</script>
</body>
</html>
"""


async def run_viewer(signaling=("127.0.0.1", 8765), room="cam1", http=("127.0.0.1", 8081), **options):
    """Run a Viewer until cancelled (or closed); always closes it."""
    viewer = Viewer(signaling, room, http, **options)
    try:
        await viewer.start()
        await viewer.wait_closed()
    finally:
        await viewer.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Watch a camera over ICE; serves a page with the picture and ICE state.")
    p.add_argument("--signaling", default="127.0.0.1:8765",
                   help="signaling server tls://HOST:PORT, or tcp://HOST:PORT / HOST:PORT for plain TCP; or a "
                        "broker, mqtts://ROOM:PASSWORD@HOST[:PORT] (mqtt:// plain)")
    p.add_argument("--signaling-ca", metavar="PEM", help="CA of the signaling server's certificate (default: the system's)")
    p.add_argument("--room-credential", help="the signaling server's room credential (tools/grant.py room)")
    p.add_argument("--room", default="cam1")
    p.add_argument("--http", default="127.0.0.1:8081", help="where to serve the page, HOST:PORT")
    p.add_argument("--stun", help="STUN server HOST:PORT")
    p.add_argument("--turn", help="TURN server HOST:PORT")
    p.add_argument("--turn-user")
    p.add_argument("--turn-password")
    p.add_argument("--turn-transport", choices=("udp", "tcp"), default="udp")
    p.add_argument("--ice-server", action="append", default=[], metavar="URI",
                   help="stun:, turn: or turns: URI, repeatable (TURN ones use --turn-user/--turn-password)")
    p.add_argument("--turn-ca", help="CA certificate (PEM) that signed the turns: servers' certificates")
    p.add_argument("--relay-only", action="store_true", help="use relayed candidates only")
    p.add_argument("--include-loopback", action="store_true", help="offer 127.0.0.1/::1 host candidates")
    p.add_argument("--grant", metavar="FILE", help="the owner's grant for this camera (tools/grant.py issue)")
    args = p.parse_args(argv)
    if args.grant:
        try:
            with open(args.grant) as f:
                args.grant = f.read().strip()
            grants.load(args.grant)
        except (OSError, grants.GrantError) as exc:
            p.error("--grant: %s" % exc)
    try:
        args.signaling_tls, host, port, args.signaling_mqtt = signaling_url(args.signaling)
        args.signaling = (host, port)
        args.http = _host_port(args.http, "--http")
        args.stun = _host_port(args.stun, "--stun") if args.stun else None
        args.turn = _host_port(args.turn, "--turn") if args.turn else None
    except ValueError as exc:
        p.error(str(exc))
    if args.turn and (args.turn_user is None or args.turn_password is None):
        p.error("--turn needs --turn-user and --turn-password")
    args.ice_servers = [{"urls": uri, "username": args.turn_user, "credential": args.turn_password}
                        for uri in args.ice_server]
    try:
        relays = [s for s in servers.parse_all(args.ice_servers) if s.kind == "turn"]
    except ValueError as exc:
        p.error(str(exc))
    if args.relay_only and not (args.turn or relays):
        p.error("--relay-only needs --turn or a turn:/turns: --ice-server")
    return args


def _signaling_tls(args):
    if not args.signaling_tls:
        return None
    import ssl

    return ssl.create_default_context(cafile=args.signaling_ca)


def _server_options(args):
    """Connection options for --ice-server and --turn-ca."""
    options = {"ice_servers": args.ice_servers} if args.ice_servers else {}
    if args.turn_ca:
        with open(args.turn_ca) as f:
            options["turn_ssl"] = netio.tls_context(cadata=f.read())
    return options


async def _main(args):
    task = asyncio.current_task()
    assert task is not None  # run by asyncio.run()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        await run_viewer(args.signaling, args.room, args.http, stun=args.stun, turn=args.turn,
                         turn_user=args.turn_user, turn_password=args.turn_password,
                         turn_transport=args.turn_transport, relay_only=args.relay_only,
                         include_loopback=args.include_loopback, connection_options=_server_options(args),
                         grant=args.grant, signaling_tls=_signaling_tls(args), room_credential=args.room_credential,
                         signaling_mqtt=args.signaling_mqtt)
    except asyncio.CancelledError:
        pass


def main(argv=None):
    args = parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
