"""The ICE half of a camera-viewer session's signaling (firmware/PROTOCOL.md),
shared by the camera app and the viewer: trickling our candidates, taking
the peer's, and ICE restarts (RFC 8445 §9).

    ice = IceSignaling(conn, post)       # post(msg): send a message to the peer
    ice.send_credentials()               # the viewer opens with these
    handled = await ice.handle(msg)      # "ice", "candidate", "end-of-candidates", "restart"
    ice.restart()                        # new credentials and every candidate again

`post` must not block: the camera queues a send task, the viewer an outbox.
"""

from ice import aio


class IceSignaling:
    def __init__(self, conn, post):
        self.conn = conn
        self.post = post
        self.gathered = False  # our end-of-candidates went out
        self.local_candidates = 0  # trickled so far
        self.restarts = 0
        self.malformed = 0  # candidate lines that did not parse
        conn.on_candidate = self._trickle

    def _trickle(self, cand):
        if cand is None:
            self.gathered = True
            self.post({"type": "end-of-candidates"})
        else:
            self.local_candidates += 1
            self.post({"type": "candidate", "candidate": "candidate:" + cand.to_sdp()})

    def send_credentials(self):
        self.post({"type": "ice", "ufrag": self.conn.local_username, "pwd": self.conn.local_password})

    def restart(self):
        """An ICE restart: new credentials, then every candidate again (the
        peer-reflexive ones are learnt, not signalled)."""
        self.restarts += 1
        self.conn.restart()
        self.send_credentials()
        for cand in self.conn.local_candidates:
            if cand.type != "prflx":
                self.post({"type": "candidate", "candidate": "candidate:" + cand.to_sdp()})
        if self.gathered:
            self.post({"type": "end-of-candidates"})
        # else: gathering is still going; its end is trickled when it comes

    async def handle(self, msg):
        """Act on one message from the peer; False when it is not about ICE."""
        kind = msg.get("type")
        conn = self.conn
        if kind == "ice":
            self._credentials(msg.get("ufrag"), msg.get("pwd"))
        elif kind == "candidate":
            line = msg.get("candidate") or ""
            if not line:  # browsers end with an empty candidate
                await conn.add_remote_candidate(None)
                return True
            try:
                cand = aio.Candidate.from_sdp(line)
            except ValueError:
                self.malformed += 1
                return True
            await conn.add_remote_candidate(cand)
        elif kind == "end-of-candidates":
            await conn.add_remote_candidate(None)
        elif kind == "restart":
            self.restart()
        else:
            return False
        return True

    def _credentials(self, ufrag, pwd):
        conn = self.conn
        if not ufrag or not pwd or (conn.remote_username, conn.remote_password) == (ufrag, pwd):
            return
        if conn.remote_username is not None:
            self.restart()  # the peer's credentials changed: it restarted ICE, so do we
        conn.remote_username, conn.remote_password = ufrag, pwd
