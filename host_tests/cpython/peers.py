"""What the CPython Connection tests share: running a coroutine with a
timeout, signalling two Connections to each other, and a Connection on the
MicroPython unix ports (tools/mpbench/peer.py) as the other side."""

import asyncio
import json
import os
import subprocess

from ice import aio, netio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
UPY32 = os.environ.get("UPY32") or os.path.join(os.path.dirname(ROOT), "shared", "upy32", "micropython")
# The unix ports a MicroPython peer runs on: the 64-bit PyPI one, and the
# 32-bit one (a board's object and int sizes) where it exists; CI has it.
MICROPYTHONS = [("mp64", MICROPYTHON)] + ([("mp32", UPY32)] if os.path.exists(UPY32) else [])


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def exchange(a, b, end=True):
    """Signal credentials and every gathered candidate (as SDP text) both ways."""
    for sender, receiver in ((a, b), (b, a)):
        receiver.remote_username, receiver.remote_password = sender.local_username, sender.local_password
        for c in sender.local_candidates:
            await receiver.add_remote_candidate(aio.Candidate.from_sdp(c.to_sdp()))
        if end:
            await receiver.add_remote_candidate(None)


async def ping_pong(a, b, rounds=3):
    for i in range(rounds):
        await a.send(b"ping %d" % i)
        assert await asyncio.wait_for(b.recv(), 5) == b"ping %d" % i
        await b.send(b"pong %d" % i)
        assert await asyncio.wait_for(a.recv(), 5) == b"pong %d" % i


def relay_kwargs(turn, transport, portable=False):
    """Connection options for relay-only sessions through `turn` over
    "udp", "tcp" or "tls" (a turns: URI naming "localhost", its CA trusted).
    `portable`: as JSON for tools/mpbench/peer.py (the CA as a file)."""
    if transport != "tls":
        return dict(turn_server=(turn.ip, turn.port), turn_username=turn.username,
                    turn_password=turn.password, turn_transport=transport, transport_policy="relay")
    options = dict(ice_servers=[{"urls": "turns:localhost:%d" % turn.tls_port, "username": turn.username,
                                 "credential": turn.password}], transport_policy="relay")
    if portable:
        options["turn_ca"] = turn.ca.pem
    else:
        options["turn_ssl"] = ca_context(turn.ca.pem)
    return options


def ca_context(path):
    """A TLS client context trusting the CA certificate in the file `path`."""
    with open(path) as f:
        return netio.tls_context(cadata=f.read())


class MicroPythonPeer:
    """tools/mpbench/peer.py under `micropython`, connected to the CPython Connection
    `ours`: `async with MicroPythonPeer(...) as peer:` returns once both are
    connected; `peer.answer` is what it signalled, `await peer.result()`
    its closing report."""

    def __init__(self, tmp_path, ours, controlling, options=None, mode="echo", count=1,
                 micropython=MICROPYTHON, heap="512K", meter=False):
        self.tmp_path = tmp_path
        self.ours = ours
        self.offer = {"controlling": controlling, "options": options or {}, "mode": mode, "count": count,
                      "meter": meter}
        self.command = [micropython, "-X", "heapsize=" + heap, os.path.join(ROOT, "tools", "mpbench", "peer.py")]
        self.proc = None
        self.answer = None

    async def __aenter__(self):
        await self.start()
        ours = self.ours
        ours.remote_username, ours.remote_password = self.answer["ufrag"], self.answer["pwd"]
        for line in self.answer["candidates"]:
            await ours.add_remote_candidate(aio.Candidate.from_sdp(line))
        await ours.add_remote_candidate(None)
        await ours.connect()
        return self

    async def start(self):
        """Gather on both sides and start the peer; its answer (what it
        gathered, its TURN allocations' [state, error]) is `self.answer`."""
        ours = self.ours
        await ours.gather_candidates()
        self.offer.update(ufrag=ours.local_username, pwd=ours.local_password,
                          candidates=[c.to_sdp() for c in ours.local_candidates])
        offer_file = self.tmp_path / "offer.json"
        offer_file.write_text(json.dumps(self.offer))
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, str(offer_file), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib")))
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, (await self.proc.stderr.read()).decode()
        self.answer = json.loads(line)
        return self.answer

    async def result(self):
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, (await self.proc.stderr.read()).decode()
        assert await self.proc.wait() == 0, (await self.proc.stderr.read()).decode()
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON line: %r" % line)

    async def __aexit__(self, *exc):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self.ours.close()
