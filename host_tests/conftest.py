# pytest setup: make `ice` (lib/), the camera app `cam` (firmware/), the board
# settings (boards/), the host tools (tools/) and the shared test helpers
# (host_tests/) importable.
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_HERE, os.path.join(_HERE, "cpython"), *(os.path.join(_ROOT, d) for d in ("lib", "firmware", "boards", "tools"))):
    if _p not in sys.path:
        sys.path.insert(0, _p)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)  # `from tools import signaling, viewer`


TURN_NAME = "turn.ice.test"  # what dns_server (below) resolves to 127.0.0.1


@pytest.fixture(scope="session")
def turn_server(tmp_path_factory):
    """A private coturn on 127.0.0.1 (tools/turnserver.py), shared by the
    session: UDP and TCP on `port`, TLS on `tls_port` with a certificate for
    "localhost" and TURN_NAME from a CA made here (`ca`, tools/testca.py). Skipped when
    coturn is not installed, unless CI is set: there a missing `turnserver`
    is a broken setup (.ci/run installs it) and fails."""
    from testca import TestCA
    from turnserver import TurnServer, find_turnserver

    if find_turnserver() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but coturn's `turnserver` binary is missing; .ci/run installs "
                        "the Debian package `coturn`", pytrace=False)
        pytest.skip("coturn's `turnserver` is not installed (apt-get install coturn); CI runs these tests")
    ca = TestCA(tmp_path_factory.mktemp("ca"))
    server = TurnServer(tls=ca.server("localhost", TURN_NAME))
    server.ca = ca
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dns_server():
    """dnsmasq on 127.0.0.1 (tools/dnsserver.py) answering TURN_NAME with
    127.0.0.1 and refusing every other name."""
    from dnsserver import DnsServer, find_dnsmasq

    if find_dnsmasq() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but dnsmasq is missing; .ci/run installs the Debian package "
                        "`dnsmasq-base`", pytrace=False)
        pytest.skip("dnsmasq is not installed (apt-get install dnsmasq-base); CI runs these tests")
    with DnsServer({TURN_NAME: "127.0.0.1"}) as server:
        yield server
