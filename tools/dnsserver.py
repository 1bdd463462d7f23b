"""A private DNS server for tests and the NAT lab: Debian's dnsmasq
(package dnsmasq-base) answering a fixed set of names, and nothing else (no
upstream, no /etc/hosts, no DHCP).

    with DnsServer({"turn.example.test": "127.0.0.1"}, ip="127.0.5.3") as server:
        server.address        # (ip, port) to give a resolver

`port=0` picks a free port; port 53 needs root.
"""

import os
import shutil
import subprocess

from turnserver import free_port, stop_process, wait_listening


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
        """Until dnsmasq listens (on TCP as on UDP: both open together)."""
        if wait_listening(self.address, self._proc):
            return
        exited = self._proc.poll() is not None
        why = self._proc.stderr.read().decode(errors="replace") if exited else "no listener after 10 s"
        self.stop()
        raise RuntimeError("dnsmasq did not start on %s:%d: %s" % (self.address + (why,)))

    def stop(self):
        if self._proc is not None:
            stop_process(self._proc)
            self._proc.stderr.close()
            self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
