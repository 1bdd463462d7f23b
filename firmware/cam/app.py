"""The camera app: meet viewers through signaling, run one ICE session per
viewer (up to the board's cap), and stream JPEG frames over each selected
pair. Runs on ESP32 boards, on the MicroPython unix port and on CPython.

Protocols: firmware/PROTOCOL.md. The viewer controls ICE; the camera answers,
trickles its candidates, and restarts ICE when a session loses consent or
the network changes under it.
"""

import gc

import asyncio

from camlink import framing
from camlink.session import IceSignaling
from camlink.signal import SignalingClient, signaling_url
from ice import aio, netio
from ice.agent import Config
from ice.compat import IS_MICROPYTHON, ConnectionError, ticks_add, ticks_diff, ticks_ms, ticks_us

_STATUS_MS = 1000
_RESTART_AFTER_MS = 5000  # disconnected this long: restart ICE
_MAX_RESTARTS = 2  # unanswered restarts before the viewer is given up
_DROP_LIMIT_PERCENT = 5  # back off when more frames than this are dropped


def free_heap():
    if IS_MICROPYTHON:
        return gc.mem_free()
    return None


class Session:
    """One viewer: its Connection, frame pacing and restart bookkeeping."""

    def __init__(self, viewer_id, conn, fps_max, post):
        self.viewer_id = viewer_id
        self.conn = conn
        self.ice = IceSignaling(conn, post)  # post(msg): to this viewer
        self.fps_max = fps_max
        self.fps = fps_max
        self.next_frame_at = ticks_us()
        self.frames_sent = 0
        self.send_waits = 0  # sends that waited for room in the socket's buffer
        self.trouble_since = None  # when it last left connected/completed
        self.browser = False
        self.link = None  # webrtc.peer.DataChannelLink of a browser viewer
        self.auth = None  # camlink.grants.PeerAuth of an authorized viewer
        self.tasks = []

    def frame_sent(self, now):
        """Schedule the next frame one interval after this one was due (the
        rate holds whatever a send took); late by more than an interval, at
        once, without a burst to catch up."""
        due = ticks_add(self.next_frame_at, 1000000 // self.fps)
        self.next_frame_at = now if ticks_diff(due, now) < 0 else due

    def on_report(self, completed, dropped):
        """Halve the frame rate on loss, climb back one step per clean report."""
        total = completed + dropped
        if total and dropped * 100 > total * _DROP_LIMIT_PERCENT:
            self.fps = max(1, self.fps // 2)
        elif self.fps < self.fps_max:
            self.fps += 1

    def describe(self):
        conn = self.conn
        state = conn.state
        pair = conn.selected_pair
        if self.link is not None and state in ("connected", "completed"):
            from cam.browser import describe

            return describe(self)
        if state in ("connected", "completed") and pair is not None:
            return "%s: connected via %s/%s, %d fps, %d frames, %d waits" % (
                self.viewer_id, pair.local.type, pair.remote.type, self.fps, self.frames_sent, self.send_waits)
        if state in ("new", "checking"):
            pairs = len(conn.stats()["pairs"])
            starved = conn.counters["recv_no_memory"]  # datagrams waiting for a hole in the heap
            return "%s: %s %d pairs%s" % (self.viewer_id, "gathering" if not pairs else "checking", pairs,
                                           ", %d reads short of heap" % starved if starved else "")
        return "%s: %s" % (self.viewer_id, state)


def ice_servers(turn_servers):
    """secrets.TURN_SERVERS as a Connection's ice_servers: entries shaped
    like a browser's iceServers ({"urls", "username", "credential"}) as
    they are, the older {"host", "port", "username", "password",
    "transport"} as a turn: URI."""
    found = []
    for entry in turn_servers:
        if "urls" not in entry:
            host = entry["host"]
            entry = {"urls": "turn:%s:%d?transport=%s" % ("[%s]" % host if ":" in host else host, entry["port"],
                                                           entry.get("transport", "udp")),
                     "username": entry["username"], "credential": entry["password"]}
        found.append(entry)
    return found


def from_settings(board, secrets, args, source):
    """(CameraApp, signaling URL) from a board module, the secrets module
    (or None) and firmware/main.py's arguments (signaling, room, interface).
    Here rather than in main.py: a board runs this bytecode from flash."""
    room = args.get("room") or getattr(secrets, "ROOM", "camera")
    options = {}
    if "interface" in args:  # a host run on loopback only
        options = {"interfaces": [("lo", args["interface"])], "include_loopback": True, "use_ipv6": False}
    if getattr(secrets, "ICE_TRANSPORT_POLICY", "all") == "relay":  # the camera's address never leaves it
        options["transport_policy"] = "relay"
    # tls://host:port, its certificate checked against SIGNALING_CA; plain
    # tcp:// only when asked for (the local demo); mqtts://room:password@broker
    # (or mqtt://) through a broker.
    url = args.get("signaling") or getattr(secrets, "SIGNALING", None) or "tcp://%s:%d" % (
        getattr(secrets, "SIGNALING_HOST", "127.0.0.1"), getattr(secrets, "SIGNALING_PORT", 8765))
    use_tls, host, port, mqtt = signaling_url(url)

    def context(ca_file):  # the CA's certificate (PEM or DER), put on the board by make deploy
        with open(ca_file, "rb") as f:
            return netio.tls_context(cadata=f.read())

    ca_file = getattr(secrets, "TURN_CA", None)
    # the DTLS certificate browsers check (tools/dtls_cert.py), read at the first browser
    dtls = (args.get("dtls-cert") or getattr(secrets, "DTLS_CERT", "dtls_cert.der"),
            args.get("dtls-key") or getattr(secrets, "DTLS_KEY", "dtls_key.der"))
    app = CameraApp(board, source, host, port, room, turn_servers=getattr(secrets, "TURN_SERVERS", None),
                    connection_options=options, turn_tls=context(ca_file) if ca_file else None,
                    camera_secret=getattr(secrets, "CAMERA_SECRET", None), camera_id=getattr(secrets, "CAMERA_ID", None),
                    signaling_tls=context(getattr(secrets, "SIGNALING_CA", "signaling_ca.pem")) if use_tls else None,
                    room_credential=getattr(secrets, "ROOM_CREDENTIAL", None), signaling_mqtt=mqtt,
                    dtls=dtls)
    return app, url


class CameraApp:
    """`board` is a board settings module (boards/*.py); `source` has
    capture() -> JPEG bytes."""

    def __init__(self, board, source, signaling_host, signaling_port, room,
                 turn_servers=None, connection_options=None, status=print,
                 restart_after_ms=_RESTART_AFTER_MS, status_ms=_STATUS_MS, turn_tls=None,
                 camera_secret=None, camera_id=None, signaling_tls=None, room_credential=None,
                 signaling_mqtt=None, dtls=None):
        self.board = board
        self.source = source
        self.signaling = (signaling_host, signaling_port)
        self.signaling_tls = signaling_tls  # a TLS context, or None: plain TCP
        self.room_credential = room_credential  # what the server asks for a join, if anything
        self.signaling_mqtt = signaling_mqtt  # (username, password): signal through an MQTT broker
        self.server_ice_servers = []  # short-lived TURN credentials from the server's `joined`
        self.room = room
        self.ice_servers = ice_servers(turn_servers if turn_servers is not None else board.TURN_SERVERS)
        # TURN over TLS: the context that checks the servers' certificates,
        # made once; without one for a turns: server this fails now, saying why.
        self.turn_tls = turn_tls
        if turn_tls is None and self.ice_servers:
            from ice import servers  # only with servers: a board without them never loads it

            if any(s.tls for s in servers.parse_all(self.ice_servers)):
                self.turn_tls = netio.tls_context()
        self.connection_options = connection_options or {}
        # Viewer grants (camlink.grants): with the owner's secret only viewers
        # holding a grant for this camera get in; without one, anyone who
        # knows the room does.
        self.gate = None
        if camera_secret:
            from camlink.grants import Gate

            self.gate = Gate(camera_secret, camera_id or room)
        # Browsers (cam.browser): the DTLS certificate's and key's files, or
        # once read (certificate DER, key DER, fingerprint). One attribute:
        # each one more can grow every CameraApp's table of them.
        self.dtls = dtls
        self.status = status
        self.sessions = {}
        self.client = None
        self.chunker = framing.Chunker()
        self.frames_captured = 0
        self.restart_after_ms = restart_after_ms
        self.status_ms = status_ms
        self._stopping = False
        self._wake = asyncio.Event()  # a session can carry frames now: stream at once

    # ---- signaling ----------------------------------------------------------

    async def run(self, duration_ms=None):
        """Serve viewers until stop() (or for `duration_ms`)."""
        if self.signaling_mqtt is not None:
            from camlink.mqtt_signal import MqttSignalingClient  # only a fleet on a broker needs it

            self.client = client = MqttSignalingClient()
            await client.connect(self.signaling[0], self.signaling[1], self.signaling_tls, *self.signaling_mqtt)
        else:
            self.client = client = SignalingClient()
            await client.connect(self.signaling[0], self.signaling[1], self.signaling_tls)
        joined = await client.join(self.room, "camera", self.room_credential)
        self.server_ice_servers = joined.get("ice_servers") or []
        self.status("camera: joined room %r, waiting for viewers%s" % (
            self.room, "" if self.gate else " (no CAMERA_SECRET: anyone who knows the room can watch)"))
        tasks = [asyncio.create_task(self._stream()), asyncio.create_task(self._report_status())]
        started = ticks_ms()
        try:
            while not self._stopping:
                msg = await client.recv()
                if msg is None:
                    self.status("camera: signaling closed")
                    break
                await self._on_message(msg)
                if duration_ms is not None and ticks_diff(ticks_ms(), started) > duration_ms:
                    break
        finally:
            self._stopping = True
            for task in tasks:
                task.cancel()
            for viewer_id in list(self.sessions):
                await self._close_session(viewer_id)
            await client.close()

    def stop(self):
        self._stopping = True
        if self.client is not None:
            asyncio.create_task(self.client.close())

    async def _send(self, to, msg):
        session = self.sessions.get(to)
        if session is not None and session.auth is not None:
            session.auth.seal(msg)
        msg["to"] = to
        await self.client.send(msg)

    def _post(self, session, msg):
        """Send without waiting, in order: a task per message."""
        session.tasks.append(asyncio.create_task(self._send(session.viewer_id, msg)))
        if len(session.tasks) > 8:
            session.tasks = [t for t in session.tasks if not t.done()]

    async def _on_message(self, msg):
        kind = msg.get("type")
        if kind == "ice-servers" and "from" not in msg:  # fresh TURN credentials from the server
            self.server_ice_servers = msg.get("ice_servers") or []
            return
        sender = msg.get("from") or msg.get("id")
        session = self.sessions.get(sender)
        if self.gate is not None and "from" in msg:  # from a peer, not the server
            session = await self._gated(sender, kind, msg, session)
            if session is None:
                return
            if kind == "ice" and session.auth.received == 1:  # the opening message
                session.ice.send_credentials()
        elif session is None and kind == "ice" and msg.get("ufrag") and msg.get("pwd"):
            session = await self._open_session(sender)  # a viewer opens with its credentials
            if session is None:
                return
            session.ice.send_credentials()
        if kind == "sdp" and msg.get("kind") == "offer":
            await self._on_offer(sender, msg.get("sdp") or "")
        elif kind in ("bye", "peer-left") and session is not None:
            self.status("camera: %s left" % sender)
            await self._close_session(sender)
        elif session is not None and kind == "restart":
            self._restart(session)
        elif session is not None:
            await session.ice.handle(msg)

    async def _gated(self, sender, kind, msg, session):
        """With viewer grants: the session a peer's message may act on, or
        None. Nothing about the camera goes to a viewer before its grant
        and its first sealed message check out (camlink.grants)."""
        gate = self.gate
        if session is not None:
            why = session.auth.check(msg)
            if why is None:
                return session
            if kind not in ("hello", "ice", "sdp") or (kind in ("ice", "sdp") and "grant" not in msg):
                gate.counters[why] += 1
                return None
            # A new opening from a viewer we have a session with (it lost
            # ours): once it proves its grant again, it replaces the old one.
        if kind == "hello":
            reply = gate.challenge(sender, msg)
        elif kind == "ice" or (kind == "sdp" and msg.get("kind") == "offer"):  # a browser opens with its offer
            auth, reply = gate.admit(sender, msg)
            if auth is not None:
                if session is not None:
                    await self._close_session(sender)
                return await self._open_session(sender, auth)
        elif kind in ("bye", "peer-left"):
            return None
        else:
            reply = gate.refuse("anonymous")
        if reply is not None:
            if reply["type"] == "denied":
                self.status("camera: %s refused (%s)" % (sender, reply["reason"]))
            await self._send(sender, reply)
        return None

    async def _on_offer(self, viewer_id, sdp_text):
        from cam import browser  # only browsers need SDP, DTLS and SCTP

        await browser.on_offer(self, viewer_id, sdp_text)

    async def _open_session(self, viewer_id, auth=None):
        board = self.board
        if len(self.sessions) >= board.MAX_VIEWERS:
            await self._send(viewer_id, {"type": "busy"})
            self.status("camera: %s refused, %d viewers is the cap" % (viewer_id, board.MAX_VIEWERS))
            return None
        gc.collect()  # the session's tables go into a heap with as few holes as it can have
        options = {"config": Config(**board.ICE), "port_range": board.PORT_RANGE,
                   "stun_servers": list(board.STUN_SERVERS)}
        servers = self.ice_servers + self.server_ice_servers
        if servers:
            options.update(ice_servers=servers, turn_ssl=self.turn_tls)
        dns_servers = getattr(board, "DNS_SERVERS", None)
        if dns_servers:  # else the network's (DHCP)
            options["dns_servers"] = dns_servers
        options.update(self.connection_options)
        conn = aio.Connection(False, **options)
        session = Session(viewer_id, conn, board.FPS_MAX, lambda msg: self._post(session, msg))
        session.auth = auth
        self.sessions[viewer_id] = session
        session.tasks.append(asyncio.create_task(conn.gather_candidates()))
        session.tasks.append(asyncio.create_task(self._receive(session)))
        session.tasks.append(asyncio.create_task(self._when_ready(session)))
        self.status("camera: session for %s" % viewer_id)
        return session

    def _restart(self, session):
        session.trouble_since = ticks_ms()
        session.ice.restart()
        self.status("camera: restarting ICE with %s (%d)" % (session.viewer_id, session.ice.restarts))

    async def _close_session(self, viewer_id):
        session = self.sessions.pop(viewer_id, None)
        if session is None:
            return
        if session.link is not None:
            session.link.close()
        for task in session.tasks:
            task.cancel()
        await session.conn.close()
        gc.collect()

    # ---- media ----------------------------------------------------------------

    async def _when_ready(self, session):
        """Wake the streamer the moment the session can carry data: its first
        valid pair (RFC 8445 §12.1), not the end of nomination."""
        try:
            await session.conn.connect()
        except ConnectionError:
            return  # failed, or closed: the health check deals with it
        self._wake.set()

    async def _receive(self, session):
        conn = session.conn
        while True:
            try:
                data = await conn.recv()
            except ConnectionError:
                return
            link = session.link
            if link is not None:
                if link.handle_datagram(data) and link.state == "open":
                    self._wake.set()
                continue
            if framing.is_frame_datagram(data):
                try:
                    completed, dropped, _ = framing.parse_report(data)
                except framing.FrameError:
                    continue
                session.on_report(completed, dropped)

    def _streamable(self, session):
        if session.link is not None:
            return session.link.state == "open"
        return session.conn.state in ("connected", "completed")

    def _due(self, session, now):
        return self._streamable(session) and ticks_diff(now, session.next_frame_at) >= 0

    def _any_due(self, now):
        for session in self.sessions.values():
            if self._due(session, now):
                return True
        return False

    async def _stream(self):
        """Capture at the pace of the most eager session; each session gets
        frames at its own (possibly backed-off) rate, timed in microseconds."""
        idle_us = 1000000 // max(1, self.board.FPS_MAX)
        while not self._stopping:
            now = ticks_us()
            if self._any_due(now):
                due = [s for s in self.sessions.values() if self._due(s, now)]  # a copy: sessions come and go
                frame = self.source.capture()
                self.frames_captured += 1
                for session in due:
                    if session.link is not None:  # browsers need a copy (cam.browser)
                        from cam.browser import kept

                        due, frame = kept(due, frame)
                        break
                for session in due:
                    await self._send_frame(session, frame)
                    session.frame_sent(ticks_us())
                due = frame = session = None  # a closed session must not stay reachable from here
            wait = idle_us
            now = ticks_us()
            for s in self.sessions.values():
                if self._streamable(s):
                    wait = min(wait, ticks_diff(s.next_frame_at, now))
            if wait >= 1000:
                await netio.wait_event(self._wake, wait // 1000)
                self._wake.clear()
            else:
                await netio.sleep_ms(0)  # due within the millisecond: stay on time

    async def _send_frame(self, session, frame):
        """Every chunk of a frame, each waiting while the socket's buffer is
        full: the link's pace, not loss, sets the frame rate it reaches."""
        if session.link is not None:
            if session.link.send_frame(frame, self.frames_captured):
                session.frames_sent += 1
            return
        conn = session.conn
        try:
            for chunk in self.chunker.chunks(frame):
                while not conn.send_nowait(chunk):
                    session.send_waits += 1
                    await conn.writable()
        except ConnectionError:
            return
        session.frames_sent += 1

    # ---- health and status ------------------------------------------------------

    async def _report_status(self):
        while not self._stopping:
            await netio.sleep_ms(self.status_ms)
            await self._check_health()
            parts = [s.describe() for s in self.sessions.values()] or ["no viewers"]
            if self.gate is not None:
                c = self.gate.counters
                parts.append("viewers admitted %d, refused %d" % (c["admitted"], sum(c.values()) - c["admitted"]
                                                                 - c["challenges"]))
            heap = free_heap()
            self.status("camera: %s%s" % ("; ".join(parts), "" if heap is None else ", heap free %d" % heap))

    async def _check_health(self):
        """Restart ICE on a session that lost consent (RFC 7675) or failed;
        give a viewer up after unanswered restarts."""
        now = ticks_ms()
        for session in list(self.sessions.values()):
            state = session.conn.state
            if state in ("connected", "completed"):
                session.trouble_since = None
                session.ice.restarts = 0
                continue
            if state in ("new", "checking") and session.ice.restarts == 0:
                continue
            if session.trouble_since is None:
                session.trouble_since = now
                continue
            if ticks_diff(now, session.trouble_since) < self.restart_after_ms and state != "failed":
                continue
            if session.ice.restarts >= _MAX_RESTARTS or session.browser:
                self.status("camera: giving up on %s" % session.viewer_id)
                await self._close_session(session.viewer_id)
            else:
                self._restart(session)
