"""A private DNS server for tests and the NAT lab: Debian's dnsmasq
(package dnsmasq-base) answering a fixed set of names, and nothing else (no
upstream, no /etc/hosts, no DHCP).

    with DnsServer({"turn.example.test": "127.0.0.1"}, ip="127.0.5.3") as server:
        server.address        # (ip, port) to give a resolver

`port=0` picks a free port; port 53 needs root.
"""

import os
import shutil
import socket
import subprocess
import time

from turnserver import free_port


def find_dnsmasq():
    return shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.path.exists(p)), None)


class DnsServer:
    def __init__(self, records, ip="127.0.0.1", port=0):
        """`records`: host name -> IPv4 address."""
        self.binary = find_dnsmasq()
        if not self.binary:
            raise FileNotFoundError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        self.records = dict(records)
        self.ip = ip
        self.port = port
        self._proc = None

    @property
    def address(self):
        return (self.ip, self.port)

    def args(self):
        args = [self.binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces", "--listen-address=%s" % self.ip, "--port=%d" % self.port,
                "--pid-file="]
        if os.geteuid() == 0:
            args.append("--user=root")  # stays root: it runs inside the tests' namespaces too
        for name, ip in self.records.items():
            args.append("--address=/%s/%s" % (name, ip))  # the name and every name under it
        return args

    def start(self):
        if not self.port:
            self.port = free_port(self.ip)
        self._proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Until dnsmasq answers a query (its TCP listener accepts first)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: %s" % self._proc.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(self.address, timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("dnsmasq did not start on %s:%d" % self.address)

    def stop(self):
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc.stderr.close()
            self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
