"""A private Mosquitto broker (Debian package mosquitto) for tests, the demo
and benchmarks: its own configuration, password file (one account per
room, made with mosquitto_passwd) and the ACL of tools/mosquitto.acl; no
persistence, so a restart forgets retained messages as a crashed broker
would.

    with Broker({"cam1": "room-password"}) as broker:
        broker.url("cam1")           # mqtt://cam1:room-password@127.0.0.1:PORT
        broker.restart()             # same port, everything forgotten

`tls` = (certificate, key) adds an mqtts:// listener (tls_port).
"""

import os
import shutil
import subprocess
import tempfile

from turnserver import free_port, stop_process, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACL = os.path.join(ROOT, "tools", "mosquitto.acl")


def find_mosquitto():
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/sbin/mosquitto") if os.path.exists(p)), None)


class Broker:
    def __init__(self, accounts, ip="127.0.0.1", tls=None, max_packet=None):
        """`accounts`: room -> password. `max_packet`: mosquitto's
        message_size_limit in bytes (None: its default)."""
        binary = find_mosquitto()
        if not binary:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.accounts = dict(accounts)
        self.ip = ip
        self.port = 0
        self.tls = tls
        self.tls_port = 0
        self.max_packet = max_packet
        self._dir = tempfile.mkdtemp(prefix="mosquitto-")
        self._proc = None

    def url(self, room, password=None, tls=False):
        return "%s://%s:%s@%s:%d" % ("mqtts" if tls else "mqtt", room, password or self.accounts[room],
                                     "localhost" if tls else self.ip, self.tls_port if tls else self.port)

    def _configure(self):
        passwords = os.path.join(self._dir, "passwords")
        open(passwords, "w").close()
        for room, password in self.accounts.items():
            subprocess.run(["mosquitto_passwd", "-b", passwords, room, password], check=True,
                           capture_output=True)
        # set_tcp_nodelay: signaling messages are small and come one after
        # another; with Nagle the broker holds each behind the last one's ACK.
        lines = ["per_listener_settings false", "allow_anonymous false", "persistence false", "set_tcp_nodelay true",
                 "password_file %s" % passwords, "acl_file %s" % ACL, "log_dest stdout",
                 "listener %d %s" % (self.port, self.ip)]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who cannot read this folder
        if self.max_packet:
            lines.append("message_size_limit %d" % self.max_packet)
        if self.tls:
            lines += ["listener %d %s" % (self.tls_port, self.ip), "certfile %s" % self.tls[0],
                      "keyfile %s" % self.tls[1]]
        with open(os.path.join(self._dir, "mosquitto.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        if not self.port:
            self.port = free_port(self.ip)
            if self.tls:
                self.tls_port = free_port(self.ip)
            self._configure()
        self._log = open(os.path.join(self._dir, "log"), "ab")
        self._proc = subprocess.Popen([self.binary, "-c", os.path.join(self._dir, "mosquitto.conf")],
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_listening((self.ip, self.port), self._proc):
            self.stop()
            raise RuntimeError("mosquitto did not start: %s" % self.log_text()[-2000:])
        return self

    def stop(self):
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
            self._log.close()

    def restart(self):
        """Stop and start on the same ports: clients lose their connection,
        and the broker forgets retained messages and subscriptions."""
        self.stop()
        self.start()

    def log_text(self):
        try:
            with open(os.path.join(self._dir, "log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
