"""NAT lab: real kernels, real NATs, real coturn (issue 6).

Builds a private topology of Linux network namespaces, nothing of it routed
to the machine's own interfaces:

    internet namespace  <prefix>-inet: bridge br0 203.0.113.0/24 (RFC 5737
                        TEST-NET-3); the "servers" live on br0 itself at
                        203.0.113.2 (coturn STUN+TURN, signaling) and
                        203.0.113.3 (a second address for mapping probes)
    site N (1, 2)       router <prefix>-rN: WAN 203.0.113.1N on the bridge,
                        LAN 10.0.N.1/24; host <prefix>-hN: 10.0.N.2/24,
                        default route via the router. With NAT "none" the
                        LAN is public instead: 192.0.2.0/25 (site 1, host
                        192.0.2.10) or 192.0.2.128/25 (site 2, host
                        192.0.2.138), routed without translation.

The router's behaviour is chosen per run (RFC 4787 terms; EIM/EIF:
endpoint-independent mapping/filtering, ADF: address-dependent filtering,
APDM/APDF: address-and-port-dependent). All NAT types translate with the
kernel's conntrack, one nftables table `ip netlab` in the router namespace;
see NAT_RULES for the exact rules:

    none             routed, no translation, no filtering
    full-cone        EIM + EIF: masquerade (port preserving: one host per
                     LAN, so the external port is the internal one); every
                     UDP source port the host used (dynamic set @mapped) is
                     DNAT'ed back to the host from any remote address
    restricted       EIM + ADF: as full-cone, but inbound new flows are let
                     in only from a remote *address* the host has sent to
                     from that port (dynamic set @contacted: addr . port)
    port-restricted  EIM + APDF: plain conntrack masquerade (port
                     preserving); only replies to a flow pass
    symmetric        APDM + APDF: masquerade fully-random, a fresh random
                     external port per flow (5-tuple)

One more site type is a firewall rather than a NAT type (FIREWALLS):

    tcp443-only      as port-restricted, and the LAN may open nothing but TCP
                     connections to port 443: no UDP leaves the site, as on
                     corporate and hotel networks. Signaling (on
                     203.0.113.3:443) and coturn's TLS listener (on
                     203.0.113.2:443) are reachable; STUN and UDP are not.

Every site's router runs a DNS server (dnsmasq) on its LAN address, as a
home or office router does, answering TURN_NAME with coturn's address; the
lab's certificate authority (lab.ca, tools/testca.py) signed coturn's TLS
certificate for that name.

Unsolicited UDP that no rule admits reaches the router's own input chain and
is dropped silently, as home routers do.

Delay and loss on each site's uplink (both directions): `tc qdisc netem`
when the kernel has it; otherwise (kernels built without sch_netem, such as
this project's CI VM) the uplink is a pair of TAP devices joined by a small
user-space "delay line" process that holds each Ethernet frame `delay_ms`
and drops a `loss` fraction.

Every namespace name starts with `nlab<owner pid>-`: `cleanup()` removes the
labs whose owner process is gone (killing whatever still runs inside), so a
killed run's leftovers never pile up; Lab.close() runs from the context
manager, atexit and SIGTERM/SIGINT/SIGHUP.

    with Lab("port-restricted", "symmetric", delay_ms=10) as lab:
        lab.popen(1, ["ping", "-c1", lab.server_ip])      # in site 1's host
        lab.call("inet", some_function, arg)              # a forked child in the internet
        lab.turn.address, lab.turn.username, lab.turn.password
        lab.reconfigure("full-cone", "none")              # new sites, same internet and coturn

CLI (needs root and iproute2 + nftables):

    python tools/netlab.py up NAT1 NAT2 [--delay-ms N] [--loss F]   # until Ctrl-C
    python tools/netlab.py down        # remove every lab (any owner)
    python tools/netlab.py cleanup     # remove labs whose owner is gone
"""

import argparse
import atexit
import contextlib
import ctypes
import errno
import fcntl
import heapq
import json
import os
import pickle
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import packages
from dnsserver import DnsServer, find_dnsmasq

ROOT = packages.ROOT

NAT_TYPES = ("none", "full-cone", "restricted", "port-restricted", "symmetric")
FIREWALLS = ("tcp443-only",)
SITE_TYPES = NAT_TYPES + FIREWALLS
TURN_NAME = "turn.netlab.test"
TURNS_PORT = 443
PREFIX = "nlab"
SERVER_IP = "203.0.113.2"
SERVER_IP2 = "203.0.113.3"
INTERNET_PREFIX = 24
SIGNALING_PORT = 443
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
CAMERA_BUILD = os.path.join(ROOT, "build", "netlab")
_CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/var/run/netns"

# The public LAN of a site whose NAT is "none": (network, router, host).
_PUBLIC_LAN = {1: ("192.0.2.0/25", "192.0.2.1", "192.0.2.10"),
               2: ("192.0.2.128/25", "192.0.2.129", "192.0.2.138")}

# nftables rules per NAT type, formatted with lan (the LAN prefix) and host
# (the LAN host). One table; the input chain drops unsolicited UDP silently.
_COMMON = """
table ip netlab {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" meta l4proto udp drop
  }
%s
}
"""
NAT_RULES = {
    "none": """
  chain forward {
    type filter hook forward priority filter; policy accept;
  }
""",
    "full-cone": """
  set mapped {
    type inet_service; flags timeout; timeout 120s;
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "lan" oifname "wan" meta l4proto udp update @mapped { udp sport }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" udp dport @mapped dnat to {host}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr {lan} masquerade
  }
""",
    "restricted": """
  set contacted {
    type ipv4_addr . inet_service; flags timeout; timeout 120s;
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "lan" oifname "wan" meta l4proto udp update @contacted { ip daddr . udp sport }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" ip saddr . udp dport @contacted dnat to {host}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr {lan} masquerade
  }
""",
    "port-restricted": """
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr {lan} masquerade
  }
""",
    "tcp443-only": """
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" tcp dport 443 accept
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr {lan} masquerade
  }
""",
    "symmetric": """
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr {lan} masquerade fully-random
  }
""",
}

_libc = ctypes.CDLL(None, use_errno=True)


def _log(line):
    print("netlab: " + line, file=sys.stderr, flush=True)


def ip_binary():
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.path.exists(p)), None)


def nft_binary():
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)


def unavailable_reason():
    """None when a lab can be built here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not ip_binary():
        return "iproute2's `ip` is not installed"
    if not nft_binary():
        return "nftables' `nft` is not installed"
    if not find_dnsmasq():
        return "dnsmasq is not installed (Debian package dnsmasq-base)"
    if not os.path.exists("/dev/net/tun") and not _has_netem():
        return "neither tc netem nor /dev/net/tun for delay lines"
    return None


def _run(argv, check=True, input=None):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=input)
    if check and out.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), (out.stderr or out.stdout).strip()))
    return out


def _ip(*args, ns=None, check=True):
    argv = [ip_binary() or "ip"]
    if ns:
        argv += ["-n", ns]
    return _run(argv + [str(a) for a in args], check=check)


_NETEM = None


def _has_netem():
    """Whether this kernel has sch_netem (tried once on a throw-away namespace)."""
    global _NETEM
    if _NETEM is None:
        ns = "%s%d-netemprobe" % (PREFIX, os.getpid())
        _ip("netns", "add", ns, check=False)
        out = _ip("qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", ns=ns, check=False)
        _ip("netns", "del", ns, check=False)
        _NETEM = out.returncode == 0
    return _NETEM


# ---- namespaces, processes inside them -------------------------------------------------


def list_namespaces():
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _owner(ns):
    """The pid in a lab namespace's name, or None."""
    head = ns.split("-", 1)[0]
    if not head.startswith(PREFIX):
        return None
    try:
        return int(head[len(PREFIX):])
    except ValueError:
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespace(ns):
    """Kill what runs inside, then delete (its veths and taps go with it)."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(int(pid), sig)
                alive.append(pid)
            except (ProcessLookupError, ValueError):
                pass
        if not alive:
            break
        deadline = time.monotonic() + 2
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _alive(int(p)) and not _zombie(int(p))]
            time.sleep(0.02)
        pids = alive
    _ip("netns", "del", ns, check=False)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def cleanup(everything=False):
    """Remove lab namespaces whose owner process is gone (all with
    everything=True). Returns the names removed."""
    removed = []
    for ns in list_namespaces():
        pid = _owner(ns)
        if pid is None:
            continue
        if everything or not _alive(pid):
            delete_namespace(ns)
            removed.append(ns)
    return removed


def setns(ns):
    """Move the calling thread into namespace `ns` (a name); returns an fd of
    the one it left (give it to _setns_fd to go back)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    fd = os.open(os.path.join(_NETNS_DIR, ns), os.O_RDONLY)
    try:
        _setns_fd(fd)
    except BaseException:
        os.close(home)
        raise
    finally:
        os.close(fd)
    return home


def _setns_fd(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: %s" % os.strerror(err))


@contextlib.contextmanager
def inside(ns):
    """The calling thread runs in `ns` for the block: sockets it creates and
    processes it starts live there. Only for synchronous code."""
    home = setns(ns)
    try:
        yield
    finally:
        try:
            _setns_fd(home)
        finally:
            os.close(home)


def _child_init():
    """In a forked child: the parent's lab handlers must never run here."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class Child:
    """A forked child running a Python function in a namespace; result() is
    its return value (pickled over a pipe) or raises its exception."""

    def __init__(self, ns, func, args, kwargs):
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                _child_init()
                os.close(rd)
                os.setsid()
                home = setns(ns)
                os.close(home)
                try:
                    payload = (True, func(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    payload = (False, "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc()))
                    code = 1
                data = pickle.dumps(payload)
                view = memoryview(data)
                while view:
                    view = view[os.write(wr, view):]
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                code = 2
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(wr)
        self.pid = pid
        self.ns = ns
        self._rd = rd
        self._data = b""
        self._done = False
        self._result = None

    def _collect(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._rd is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._rd], [], [], left)
            if not ready:
                raise TimeoutError("child %d in %s still running" % (self.pid, self.ns))
            chunk = os.read(self._rd, 65536)
            if not chunk:
                os.close(self._rd)
                self._rd = None
                break
            self._data += chunk
        if not self._done:
            os.waitpid(self.pid, 0)
            self._done = True

    def result(self, timeout=None):
        self._collect(timeout)
        if not self._data:
            raise RuntimeError("child %d in %s died without a result" % (self.pid, self.ns))
        ok, value = pickle.loads(self._data)
        if not ok:
            raise RuntimeError("in namespace %s: %s" % (self.ns, value))
        return value

    def kill(self):
        if not self._done:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self._done = True
        if self._rd is not None:
            os.close(self._rd)
            self._rd = None


# ---- the delay line (no sch_netem) ---------------------------------------------------------

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000


def _open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def _delay_line(ns_a, name_a, ns_b, name_b, delay_ms, loss, ready_fd):
    """Runs in a forked child: a TAP in each namespace, frames copied across
    after delay_ms, a `loss` fraction dropped. Until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    home = setns(ns_a)
    a = _open_tap(name_a)
    os.close(setns(ns_b))
    b = _open_tap(name_b)
    _setns_fd(home)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    peer = {a: b, b: a}
    queue = []  # (due, seq, fd, frame)
    seq = 0
    delay = delay_ms / 1000.0
    rng = random.Random()
    while True:
        timeout = None if not queue else max(0.0, queue[0][0] - time.monotonic())
        ready, _, _ = select.select([a, b], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            for _ in range(64):
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if loss and rng.random() < loss:
                    continue
                seq += 1
                heapq.heappush(queue, (now + delay, seq, peer[fd], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, frame = heapq.heappop(queue)
            try:
                os.write(fd, frame)
            except OSError:
                pass


# ---- the camera app under the MicroPython unix port ------------------------------------------


def compile_camera(build=CAMERA_BUILD):
    """The library and the app as .mpy (as tools/demo.py and a board do)."""
    packages.compile_packages(build)
    return build


def write_camera_settings(folder, stun, turn_servers=(), turn_ca=None, dns_server=None):
    """A board module `netlab_board` (the unix board with STUN_SERVERS set to
    the lab's coturn, and the site's DNS server) and a `secrets` module with
    its TURN servers (iceServers entries) and their CA, for a folder put
    first on MICROPYPATH. firmware/main.py needs no change: `--board
    netlab_board` imports it, `import secrets` finds it first."""
    with open(os.path.join(folder, "netlab_board.py"), "w") as f:
        f.write("from unix import *  # noqa: F401,F403\n")
        f.write("STUN_SERVERS = [%r]\n" % (tuple(stun),))
        if dns_server:
            f.write("DNS_SERVERS = [%r]\n" % dns_server)
    with open(os.path.join(folder, "secrets.py"), "w") as f:
        f.write("TURN_SERVERS = %r\n" % (list(turn_servers),))
        if turn_ca:
            f.write("TURN_CA = %r\n" % turn_ca)


# ---- the lab ------------------------------------------------------------------------------------


class Site:
    """One site: router and host namespaces and their addresses."""

    def __init__(self, index, nat, prefix, generation=0):
        self.index = index
        self.nat = nat
        self.router_ns = "%s-r%d" % (prefix, index)
        self.host_ns = "%s-h%d" % (prefix, index)
        # Fresh public addresses per reconfigure(): coturn still holds the
        # allocations of killed cameras, and a reused 5-tuple would get 437.
        self.wan_ip = "203.0.113.%d" % (10 + 2 * (generation % 100) + index)
        if nat == "none":
            lan, router_ip, host_ip = _PUBLIC_LAN[index]
            self.lan, self.router_ip = lan, router_ip
            self.host_ip = "%s.%d" % (host_ip.rsplit(".", 1)[0], int(host_ip.rsplit(".", 1)[1]) + generation % 100)
        else:
            self.lan, self.router_ip, self.host_ip = "10.0.%d.0/24" % index, "10.0.%d.1" % index, "10.0.%d.2" % index
        self.lan_prefix = int(self.lan.split("/")[1])
        self.delay_pid = None
        self.dns = None  # its router's DnsServer

    @property
    def public_ip(self):
        """The address the internet sees this site's host as."""
        return self.host_ip if self.nat == "none" else self.wan_ip

    def __repr__(self):
        return "<Site %d %s host %s public %s>" % (self.index, self.nat, self.host_ip, self.public_ip)


class Lab:
    """The topology in the module docstring; see there. `turn=False` skips
    coturn, `signaling=False` the signaling server."""

    _count = 0

    def __init__(self, nat1="none", nat2="none", delay_ms=0, loss=0.0, turn=True, signaling=True,
                 turn_options=None):
        for nat in (nat1, nat2):
            if nat not in SITE_TYPES:
                raise ValueError("unknown site type %r (one of %s)" % (nat, ", ".join(SITE_TYPES)))
        reason = unavailable_reason()
        if reason:
            raise OSError(reason)
        Lab._count += 1
        self.prefix = "%s%d-%d" % (PREFIX, os.getpid(), Lab._count)
        self.inet_ns = self.prefix + "-inet"
        self.delay_ms = delay_ms
        self.loss = loss
        self.server_ip = SERVER_IP
        self.server_ip2 = SERVER_IP2
        self.ca = None  # the CA of coturn's TLS certificate (tools/testca.py)
        self._ca_dir = None
        self.sites = {}
        self._generation = -1
        self.turn = None
        self.signaling_proc = None
        self.signaling_port = SIGNALING_PORT
        self._children = []
        self._closed = False
        self._owner_pid = os.getpid()
        self._old_handlers = {}
        cleanup()  # leftovers of killed runs
        atexit.register(self.close)
        self._install_signal_handlers()
        try:
            self._build_internet()
            self.reconfigure(nat1, nat2)
            if turn:
                self._start_turn(turn_options or {})
            if signaling:
                self._start_signaling()
        except BaseException:
            self.close()
            raise

    # ---- addresses ------------------------------------------------------------

    @property
    def stun(self):
        """coturn's (ip, port): it answers STUN Binding too."""
        return self.turn.address if self.turn else None

    @property
    def signaling(self):
        return (self.server_ip2, self.signaling_port)

    def ice_servers(self, turns=False):
        """The iceServers entry for the lab's coturn: by address over UDP,
        or turns: by name on port 443 (TLS, the name through the site's DNS
        server; trust self.ca.pem)."""
        turn = self.turn
        url = "turns:%s:%d" % (TURN_NAME, TURNS_PORT) if turns else "turn:%s:%d" % turn.address
        return [{"urls": url, "username": turn.username, "credential": turn.password}]

    def site(self, index):
        return self.sites[index]

    def namespace(self, where):
        """"inet", 1 / 2 (the site's host), "r1" / "r2" (routers), or a full name."""
        if where == "inet":
            return self.inet_ns
        if isinstance(where, int):
            return self.sites[where].host_ns
        if isinstance(where, str) and len(where) == 2 and where[0] in "rh" and where[1].isdigit():
            site = self.sites[int(where[1])]
            return site.router_ns if where[0] == "r" else site.host_ns
        return where

    def host_ip(self, index):
        return self.sites[index].host_ip

    # ---- running things inside ------------------------------------------------------

    def popen(self, where, argv, env=None, **kwargs):
        """subprocess.Popen of argv in a namespace (`ip netns exec`)."""
        return subprocess.Popen([ip_binary() or "ip", "netns", "exec", self.namespace(where)] + list(argv),
                                env=env, **kwargs)

    def run(self, where, argv, timeout=30, **kwargs):
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run([ip_binary() or "ip", "netns", "exec", self.namespace(where)] + list(argv),
                              timeout=timeout, **kwargs)

    def spawn(self, where, func, *args, **kwargs):
        """Run func(*args, **kwargs) in a forked child inside the namespace;
        returns a Child (child.result(timeout)). The child starts its own
        asyncio loop if it needs one."""
        child = Child(self.namespace(where), func, args, kwargs)
        self._children.append(child)
        return child

    def call(self, where, func, *args, timeout=60, **kwargs):
        child = self.spawn(where, func, *args, **kwargs)
        try:
            return child.result(timeout)
        finally:
            child.kill()
            self._children.remove(child)

    def start_camera(self, room, folder, site=1, heap="512K", build=CAMERA_BUILD, stdout=None, turns=False):
        """firmware/main.py under the MicroPython unix port in a site's host,
        its STUN and TURN the lab's coturn (settings written into `folder`),
        TURN over UDP or, with `turns`, over TLS by name; returns the Popen.
        compile_camera() first."""
        write_camera_settings(folder, self.stun, self.ice_servers(turns) if self.turn else (),
                              turn_ca=self.ca.pem if turns else None, dns_server=self.sites[site].router_ip)
        env = dict(os.environ, MICROPYPATH="%s:.frozen:%s" % (folder, build))
        argv = [MICROPYTHON, "-X", "heapsize=" + heap, os.path.join(ROOT, "firmware", "main.py"),
                "--board", "netlab_board", "--signaling", "%s:%d" % self.signaling, "--room", room,
                "--interface", self.host_ip(site)]
        return self.popen(site, argv, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)

    def inside(self, where):
        """Context manager: the calling thread in that namespace (synchronous code only)."""
        return inside(self.namespace(where))

    # ---- building ---------------------------------------------------------------------

    def _build_internet(self):
        ns = self.inet_ns
        _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", ns=ns)
        _ip("link", "add", "br0", "type", "bridge", ns=ns)
        _ip("link", "set", "br0", "up", ns=ns)
        for addr in (SERVER_IP, SERVER_IP2):
            _ip("addr", "add", "%s/%d" % (addr, INTERNET_PREFIX), "dev", "br0", ns=ns)
        # A default route into a sink (a veth pair whose far end drops all),
        # as the real Internet has one: coturn relaying to a peer's private
        # address must not get ENETUNREACH, which makes it close the whole
        # allocation. ARP is off, so nothing waits for a neighbour either.
        _ip("link", "add", "sink0", "type", "veth", "peer", "name", "sink1", ns=ns)
        for dev in ("sink0", "sink1"):
            _ip("link", "set", dev, "arp", "off", "up", ns=ns)
        _ip("route", "add", "default", "dev", "sink0", ns=ns)

    def reconfigure(self, nat1, nat2):
        """Rebuild both sites (fresh routers, hosts, conntrack) with these NAT
        types; the internet, coturn and signaling stay."""
        for site in list(self.sites.values()):
            self._remove_site(site)
        self.sites = {}
        self._generation += 1
        for index, nat in ((1, nat1), (2, nat2)):
            if nat not in SITE_TYPES:
                raise ValueError("unknown site type %r" % nat)
            self.sites[index] = Site(index, nat, self.prefix, self._generation)
        for site in self.sites.values():
            self._build_site(site)
        self._fill_neighbours()

    def _fill_neighbours(self):
        """Every neighbour on every link known in advance (permanent ARP
        entries), as on a network that has carried traffic before: the first
        packet to a new neighbour would otherwise wait for an ARP exchange,
        through the delay line when there is one, and measurements of the
        first check would show the lab, not the agent."""
        def mac(dev, ns):
            return json.loads(_ip("-j", "link", "show", "dev", dev, ns=ns).stdout)[0]["address"]

        def neighbour(ns, ip, lladdr, dev):
            _ip("neigh", "replace", ip, "lladdr", lladdr, "dev", dev, "nud", "permanent", ns=ns)

        bridge = mac("br0", self.inet_ns)
        wans = {i: mac("wan", s.router_ns) for i, s in self.sites.items()}
        for i, site in self.sites.items():
            r, h = site.router_ns, site.host_ns
            neighbour(h, site.router_ip, mac("lan", r), "eth0")
            neighbour(r, site.host_ip, mac("eth0", h), "lan")
            for addr in (SERVER_IP, SERVER_IP2):
                neighbour(r, addr, bridge, "wan")
            neighbour(self.inet_ns, site.wan_ip, wans[i], "br0")
            other = self.sites[2 if i == 1 else 1]
            neighbour(r, other.wan_ip, wans[2 if i == 1 else 1], "wan")

    def _build_site(self, site):
        r, h = site.router_ns, site.host_ns
        for ns in (r, h):
            _ip("netns", "add", ns)
            _ip("link", "set", "lo", "up", ns=ns)
        uplink = "up%d" % site.index  # its end on the internet bridge
        use_netem = (self.delay_ms or self.loss) and _has_netem()
        if (self.delay_ms or self.loss) and not use_netem:
            rd, wr = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    _child_init()
                    os.close(rd)
                    os.setsid()
                    _delay_line(r, "wan", self.inet_ns, uplink, self.delay_ms, self.loss, wr)
                finally:
                    os._exit(1)
            os.close(wr)
            ready, _, _ = select.select([rd], [], [], 10)
            ok = ready and os.read(rd, 1) == b"1"
            os.close(rd)
            site.delay_pid = pid
            if not ok:
                raise RuntimeError("the delay line for site %d did not start" % site.index)
        else:
            _ip("link", "add", "wan", "type", "veth", "peer", "name", uplink, "netns", self.inet_ns, ns=r)
        _ip("link", "set", uplink, "master", "br0", ns=self.inet_ns)
        _ip("link", "set", uplink, "up", ns=self.inet_ns)
        _ip("addr", "add", "%s/%d" % (site.wan_ip, INTERNET_PREFIX), "dev", "wan", ns=r)
        _ip("link", "set", "wan", "up", ns=r)
        if use_netem:
            netem = ["netem"]
            if self.delay_ms:
                netem += ["delay", "%dms" % self.delay_ms]
            if self.loss:
                netem += ["loss", "%g%%" % (self.loss * 100)]
            _ip("qdisc", "add", "dev", "wan", "root", *netem, ns=r)
            _ip("qdisc", "add", "dev", uplink, "root", *netem, ns=self.inet_ns)
        _ip("link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", h, ns=r)
        _ip("addr", "add", "%s/%d" % (site.router_ip, site.lan_prefix), "dev", "lan", ns=r)
        _ip("link", "set", "lan", "up", ns=r)
        _ip("addr", "add", "%s/%d" % (site.host_ip, site.lan_prefix), "dev", "eth0", ns=h)
        _ip("link", "set", "eth0", "up", ns=h)
        _ip("route", "add", "default", "via", site.router_ip, ns=h)
        other = self.sites[2 if site.index == 1 else 1]
        _ip("route", "add", other.lan if other.nat == "none" else _PUBLIC_LAN[other.index][0],
            "via", other.wan_ip, ns=r)
        _ip("route", "replace", _PUBLIC_LAN[site.index][0], "via", site.wan_ip, ns=self.inet_ns)  # "none" LANs
        _run([ip_binary() or "ip", "netns", "exec", r, "sh", "-c",
              "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        rules = _COMMON % NAT_RULES[site.nat].replace("{lan}", site.lan).replace("{host}", site.host_ip)
        _run([ip_binary() or "ip", "netns", "exec", r, nft_binary() or "nft", "-f", "-"], input=rules)
        site.dns = DnsServer({TURN_NAME: SERVER_IP}, ip=site.router_ip, port=53)
        with inside(r):
            site.dns.start()

    def _remove_site(self, site):
        if site.dns is not None:
            site.dns.stop()
            site.dns = None
        if site.delay_pid:
            try:
                os.kill(site.delay_pid, signal.SIGKILL)
                os.waitpid(site.delay_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            site.delay_pid = None
        for ns in (site.host_ns, site.router_ns):
            delete_namespace(ns)
        _ip("link", "del", "up%d" % site.index, ns=self.inet_ns, check=False)

    def _start_turn(self, options):
        from testca import TestCA
        from turnserver import TurnServer

        self._ca_dir = tempfile.mkdtemp(prefix="netlab-ca-")
        self.ca = TestCA(self._ca_dir, "netlab CA")
        turn = TurnServer(relay_port_count=options.pop("relay_port_count", 200), tls=self.ca.server(TURN_NAME),
                          tls_port=TURNS_PORT, **options)
        turn.ip = self.server_ip  # listening and relay address, inside the internet namespace
        with self.inside("inet"):
            turn.start()
        self.turn = turn

    def _start_signaling(self):
        self.signaling_proc = self.popen(
            "inet", [sys.executable, os.path.join(ROOT, "tools", "signaling.py"), "--host", self.server_ip2,
                     "--tcp-port", str(self.signaling_port), "--http-port", "0",
                     # Every cell tears its sites down; a FIN lost with them leaves
                     # a room behind until keepalive finds it: room for hundreds.
                     "--max-rooms", "4096", "--max-connections", "8192"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        with self.inside("inet"):
            while True:
                try:
                    socket.create_connection(self.signaling, timeout=0.5).close()
                    return
                except OSError:
                    if time.monotonic() > deadline or self.signaling_proc.poll() is not None:
                        raise RuntimeError("the signaling server did not start")
                    time.sleep(0.05)

    # ---- teardown ------------------------------------------------------------------------

    def _install_signal_handlers(self):
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def _on_signal(self, sig, frame):
        self.close()
        old = self._old_handlers.get(sig)
        if callable(old):
            old(sig, frame)
        elif old == signal.SIG_DFL or old is None:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    def close(self):
        if self._closed or os.getpid() != self._owner_pid:  # never from a forked child
            return
        self._closed = True
        for child in self._children:
            child.kill()
        self._children = []
        if self.signaling_proc is not None and self.signaling_proc.poll() is None:
            self.signaling_proc.terminate()
            try:
                self.signaling_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.signaling_proc.kill()
        if self.turn is not None:
            with contextlib.suppress(Exception):
                self.turn.stop()
        if self._ca_dir:
            shutil.rmtree(self._ca_dir, ignore_errors=True)
        for site in list(self.sites.values()):
            with contextlib.suppress(Exception):
                self._remove_site(site)
        delete_namespace(self.inet_ns)
        for sig, old in self._old_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)
        self._old_handlers = {}
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self):
        lines = ["internet %s: br0 %s, %s; coturn %s (user %s / %s); signaling %s:%d" % (
            self.inet_ns, SERVER_IP, SERVER_IP2, "%s:%d" % self.turn.address if self.turn else "-",
            self.turn.username if self.turn else "-", self.turn.password if self.turn else "-",
            self.server_ip2, self.signaling_port)]
        for site in self.sites.values():
            lines.append("site %d (%s): host %s in %s, router %s (wan %s); public %s" % (
                site.index, site.nat, site.host_ip, site.host_ns, site.router_ns, site.wan_ip, site.public_ip))
        if self.delay_ms or self.loss:
            lines.append("uplinks: %d ms each way, loss %g (%s)" % (
                self.delay_ms, self.loss, "netem" if _has_netem() else "delay line"))
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a lab and keep it until Ctrl-C")
    up.add_argument("nat1", choices=SITE_TYPES)
    up.add_argument("nat2", choices=SITE_TYPES)
    up.add_argument("--delay-ms", type=int, default=0, help="one-way delay on each uplink")
    up.add_argument("--loss", type=float, default=0.0, help="loss fraction on each uplink, each way")
    sub.add_parser("down", help="remove every lab namespace (any owner)")
    sub.add_parser("cleanup", help="remove lab namespaces whose owner is gone")
    args = parser.parse_args(argv)
    if args.command in ("down", "cleanup"):
        for ns in cleanup(everything=args.command == "down"):
            print("removed %s" % ns)
        return 0
    reason = unavailable_reason()
    if reason:
        parser.error(reason)
    with Lab(args.nat1, args.nat2, args.delay_ms, args.loss) as lab:
        print(lab.describe())
        print("enter one: ip netns exec %s bash   (Ctrl-C here tears everything down)" % lab.namespace(1))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
