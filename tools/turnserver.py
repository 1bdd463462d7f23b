"""A private coturn `turnserver` on loopback, for the tests (conftest.py's
`turn_server` fixture) and the NAT lab. CPython only.

    with TurnServer(permission_lifetime=5) as turn:
        sock.sendto(allocate_request, (turn.ip, turn.port))

Each instance runs `turnserver -n` (no configuration file: /etc/turnserver.conf
is never read) on 127.0.0.1 with free UDP+TCP listening ports, a narrow free
relay port range, one long-term-credential user, TLS only when asked, and no
DTLS, CLI, web admin or RFC 5780 extras. Its SQLite user database, pid file and log live in a
temporary directory that stop() removes; the log text stays readable through
log_text() after stop().

Written against coturn 4.6.1 (Debian bookworm), checked by hand there:

* Loopback peers are refused (403 Forbidden IP on CreatePermission and
  ChannelBind) unless `--allow-loopback-peers` is given; it always is here.
* The lifetime options take an *optional* argument, so they must be written
  `--channel-lifetime=5`. The spaced form `--channel-lifetime 5` only logs
  "CONFIGURATION ALERT: Unknown argument: 5", keeps the default and starts
  anyway. Options built here always use the `=` form.
* Lifetimes (seconds; coturn's clock has 1 s resolution, so expiry is only
  accurate to about a second). None is clamped from below: 1 works.
    --max-allocate-lifetime=N  (default 3600) The lifetime granted is the
        requested LIFETIME (600 when absent, raised to 600 when lower),
        capped at N. So N < 600 makes every Allocate and Refresh get exactly N.
        Trust the LIFETIME attribute, not the log's "session ...: new,
        lifetime=600", which shows the value before the cap.
    --permission-lifetime=N    (default 300) CreatePermission.
    --channel-lifetime=N       (default 600) ChannelBind; the permission that
        a ChannelBind installs or refreshes gets N too, not the permission
        lifetime, and goes with the channel when it expires.
    --stale-nonce=N            (default 600) NONCE lifetime: a request with an
        older nonce gets 438 Stale Nonce and a fresh NONCE.
  With --verbose the log shows "peer <ip> lifetime updated: N" per permission
  or channel.
* Clients may send FINGERPRINT or not; coturn adds one to its answers when the
  request had one (always, with fingerprint=True).
* Reason phrases are NUL-padded to a multiple of 4 inside the ERROR-CODE
  length ("Stale nonce\x00", "Try Alternate\x00\x00\x00").
* A listening port already in use does not make coturn exit: it retries the
  bind forever. start() notices the silence, and retries with fresh ports.
* ALTERNATE-SERVER: `--alternate-server=IP:PORT` makes a server answer every
  Allocate, over UDP and over TCP, with 300 Try Alternate carrying
  ALTERNATE-SERVER = IP:PORT (and SOFTWARE). It comes before any
  authentication: the first, credential-less Allocate gets it instead of a
  401, and an Allocate with valid USERNAME/REALM/NONCE/MESSAGE-INTEGRITY gets
  the same 300 *without* MESSAGE-INTEGRITY. Binding is answered normally and
  Refresh with 401. See `TurnServer.redirecting_to()`.
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

LOOPBACK = "127.0.0.1"
_BINARY_NAMES = ("turnserver",)
_BINARY_FALLBACKS = ("/usr/bin/turnserver", "/usr/sbin/turnserver", "/usr/local/bin/turnserver")


def find_turnserver():
    """Path of coturn's `turnserver` binary, or None when it is not installed."""
    for name in _BINARY_NAMES:
        path = shutil.which(name)
        if path:
            return path
    for path in _BINARY_FALLBACKS:
        if os.access(path, os.X_OK):
            return path
    return None


def turnserver_version(binary=None):
    """coturn's version string ("4.6.1"), or None when it is not installed."""
    binary = binary or find_turnserver()
    if not binary:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else None


def _port_is_free(port, ip=LOOPBACK):
    """True when both UDP and TCP can bind ip:port right now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(ip=LOOPBACK):
    """A port the kernel hands out that is free for both UDP and TCP."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if _port_is_free(port, ip):
            return port
    raise RuntimeError("no port free for both UDP and TCP on %s" % ip)


def free_port_range(count, ip=LOOPBACK, low=20000, high=32000):
    """First port of `count` consecutive ports free for UDP and TCP, chosen
    below Linux's ephemeral range (32768-60999) so the kernel does not hand
    them to someone else's bind(0) meanwhile."""
    for _ in range(200):
        base = random.randrange(low, high - count) & ~1  # coturn likes even starts
        if all(_port_is_free(base + i, ip) for i in range(count)):
            return base
    raise RuntimeError("no %d consecutive free ports on %s" % (count, ip))


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def wait_listening(address, proc, timeout=10.0):
    """True once `address` accepts TCP; False when `proc` exits or
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(address, timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def _binding_request():
    txid = os.urandom(12)
    return struct.pack(">HHI", 0x0001, 0, 0x2112A442) + txid, txid


class TurnServer:
    """One coturn process on loopback; start() / stop() or use `with`.

    ip, port            where it listens (UDP and TCP, same port)
    username, password  the one long-term-credential account
    realm               the realm it sends in 401 responses
    relay_ports         (first, last) of the relay port range
    """

    def __init__(
        self,
        username="ice",
        password="ice-secret",
        realm="ice.test",
        channel_lifetime=None,
        permission_lifetime=None,
        max_allocate_lifetime=None,
        stale_nonce=None,
        alternate_server=None,
        relay_port_count=16,
        fingerprint=False,
        tls=None,
        tls_port=0,
        auth_secret=None,
        verbose=False,
        extra_args=(),
        binary=None,
        startup_timeout=15.0,
    ):
        """Lifetimes are in seconds; None keeps coturn's default (see module
        doc). `alternate_server` is (ip, port) to answer Allocate with 300.
        `fingerprint` makes coturn add FINGERPRINT to its messages (clients
        may send it either way). `tls` = (certificate file, key file) adds a
        TLS listener on `tls_port` (0: a free one). `auth_secret` (text)
        replaces the account with coturn's shared-secret mode (time-limited
        credentials, tools/admission.py). `verbose` logs every session and message."""
        self.binary = binary or find_turnserver()
        if not self.binary:
            raise FileNotFoundError("coturn's turnserver binary is not installed (apt-get install coturn)")
        self.ip = LOOPBACK
        self.port = 0
        self.username = username
        self.password = password
        self.realm = realm
        self.channel_lifetime = channel_lifetime
        self.permission_lifetime = permission_lifetime
        self.max_allocate_lifetime = max_allocate_lifetime
        self.stale_nonce = stale_nonce
        self.alternate_server = alternate_server
        self.relay_port_count = relay_port_count
        self.relay_ports = (0, 0)
        self.fingerprint = fingerprint
        self.tls = tls
        self.tls_port = tls_port
        self.auth_secret = auth_secret
        self._fixed_tls_port = tls_port
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.args = []
        self._proc = None
        self._dir = ""  # its temporary folder while it runs
        self._log_path = ""
        self._log_file = None
        self._final_log = ""

    @classmethod
    def redirecting_to(cls, primary, **kwargs):
        """A second server that answers every Allocate (UDP and TCP) with
        300 Try Alternate, ALTERNATE-SERVER = primary's address. It shares
        the primary's credentials and realm unless told otherwise."""
        kwargs.setdefault("username", primary.username)
        kwargs.setdefault("password", primary.password)
        kwargs.setdefault("realm", primary.realm)
        kwargs["alternate_server"] = (primary.ip, primary.port)
        return cls(**kwargs)

    # ---- addresses --------------------------------------------------------

    @property
    def address(self):
        return (self.ip, self.port)

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self):
        return "<TurnServer %s:%d %s>" % (self.ip, self.port, "running" if self.running else "stopped")

    # ---- life cycle -------------------------------------------------------

    def build_args(self):
        """The full turnserver command line for the current ports and options."""
        first, last = self.relay_ports
        args = [
            self.binary,
            "-n",  # no configuration file: /etc/turnserver.conf is never read
            "--listening-ip=%s" % self.ip,
            "--relay-ip=%s" % self.ip,
            "--listening-port=%d" % self.port,
            "--min-port=%d" % first,
            "--max-port=%d" % last,
            "--realm=%s" % self.realm,
        ] + (["--use-auth-secret", "--static-auth-secret=%s" % self.auth_secret] if self.auth_secret else [
            "--lt-cred-mech",
            "--user=%s:%s" % (self.username, self.password),
        ]) + [
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",
            "--allow-loopback-peers",
            "--relay-threads=1",
            "--userdb=%s" % os.path.join(self._dir, "turndb"),
            "--pidfile=%s" % os.path.join(self._dir, "turnserver.pid"),
            "--log-file=stdout",  # the process's stdout goes to the log file
            "--simple-log",
        ]
        if self.tls:
            args += ["--tls-listening-port=%d" % self.tls_port, "--cert=%s" % self.tls[0], "--pkey=%s" % self.tls[1]]
        else:
            args.append("--no-tls")
        if self.fingerprint:
            args.append("--fingerprint")
        if self.verbose:
            args.append("--verbose")
        for flag, value in (
            ("--channel-lifetime", self.channel_lifetime),
            ("--permission-lifetime", self.permission_lifetime),
            ("--max-allocate-lifetime", self.max_allocate_lifetime),
            ("--stale-nonce", self.stale_nonce),
        ):
            if value is not None:
                args.append("%s=%d" % (flag, value))  # `=` form: optional-argument options
        if self.alternate_server:
            args.append("--alternate-server=%s:%d" % tuple(self.alternate_server))
        args.extend(self.extra_args)
        return args

    def start(self):
        if self.running:
            return self
        self._dir = tempfile.mkdtemp(prefix="turnserver-")
        self._log_path = os.path.join(self._dir, "turnserver.log")
        last_error = None
        for _ in range(3):  # a port taken between the check and coturn's bind: try new ones
            self.port = free_port(self.ip)
            if self.tls:
                self.tls_port = self._fixed_tls_port or free_port(self.ip)
            first = free_port_range(self.relay_port_count, self.ip)
            self.relay_ports = (first, first + self.relay_port_count - 1)
            self.args = self.build_args()
            self._log_file = open(self._log_path, "ab")
            self._log_file.write(("$ %s\n" % " ".join(self.args)).encode())
            self._log_file.flush()
            self._proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                start_new_session=True,  # a terminal's Ctrl-C reaches pytest, not coturn
            )
            try:
                self._wait_ready()
                return self
            except RuntimeError as e:
                last_error = e
                self._terminate()
                if "Address already in use" not in self.log_text():
                    break
        log = self.log_text()
        self._cleanup()
        raise RuntimeError("%s\n--- turnserver log tail ---\n%s" % (last_error, _tail(log)))

    def restart(self):
        """Kill the server and start it again on the same ports: it forgets
        every allocation, as a rebooted server would."""
        self._terminate()
        self._log_file = open(self._log_path, "ab")
        self._proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            cwd=self._dir, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Poll until UDP answers a Binding request and TCP accepts."""
        deadline = time.monotonic() + self.startup_timeout
        udp_ok = tcp_ok = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(0.1)
            while time.monotonic() < deadline:
                code = self._proc.poll()
                if code is not None:
                    raise RuntimeError("turnserver exited with status %d while starting" % code)
                if not udp_ok:
                    request, txid = _binding_request()
                    try:
                        sock.sendto(request, self.address)
                        data = sock.recv(2048)
                        udp_ok = len(data) >= 20 and data[8:20] == txid
                    except OSError:  # timeout, or ICMP port unreachable
                        pass
                if udp_ok and not tcp_ok:
                    try:
                        socket.create_connection(self.address, timeout=0.5).close()
                        if self.tls:
                            socket.create_connection((self.ip, self.tls_port), timeout=0.5).close()
                        tcp_ok = True
                    except OSError:
                        pass
                if udp_ok and tcp_ok:
                    return
                time.sleep(0.05)
        finally:
            sock.close()
        raise RuntimeError(
            "turnserver did not answer on %s:%d (udp %s, tcp %s) within %.1f s"
            % (self.ip, self.port, "ok" if udp_ok else "silent",
               "ok" if tcp_ok else ("refused" if udp_ok else "not tried"), self.startup_timeout)
        )

    def _terminate(self):
        if self._proc is None:
            return
        stop_process(self._proc)
        self._proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def _cleanup(self):
        self._final_log = self.log_text()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = ""
        self._log_path = ""

    def stop(self):
        """Terminate coturn (SIGTERM, then SIGKILL after 5 s) and remove its
        temporary directory. The log stays available through log_text()."""
        self._terminate()
        self._cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass

    # ---- log ----------------------------------------------------------------

    def log_text(self):
        """Everything coturn printed so far (its command line first)."""
        if self._log_path and os.path.exists(self._log_path):
            if self._log_file:
                self._log_file.flush()
            with open(self._log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        return self._final_log


def _tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])
