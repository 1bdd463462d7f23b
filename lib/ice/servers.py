"""STUN and TURN server URIs (RFC 7064, RFC 7065), as browsers take them in
`iceServers`:

    stun:host[:port]                          UDP, port 3478
    turn:host[:port][?transport=udp|tcp]      UDP unless told, port 3478
    turns:host[:port][?transport=tcp]         TLS over TCP, port 5349

`host` is a name, an IPv4 address or a bracketed IPv6 one. Loaded only when
a Connection is given URIs.
"""

STUN_PORT = 3478
TLS_PORT = 5349


class Server:
    """One parsed URI: `kind` "stun" or "turn", `host`, `port`, `transport`
    "udp" or "tcp", `tls` (turns:), and the TURN credentials."""

    def __init__(self, kind, host, port, transport="udp", tls=False, username=None, password=None):
        self.kind = kind
        self.host = host
        self.port = port
        self.transport = transport
        self.tls = tls
        self.username = username
        self.password = password

    def __repr__(self):
        return "%s%s:%s:%d?transport=%s" % (self.kind, "s" if self.tls else "", self.host, self.port, self.transport)


def parse(uri, username=None, password=None):
    """A Server from one URI; ValueError saying what is wrong."""
    scheme, sep, rest = uri.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("stun", "stuns", "turn", "turns"):
        raise ValueError("%r: an ICE server URI starts with stun:, turn: or turns:" % uri)
    if scheme == "stuns":
        raise ValueError("%r: STUN over TLS is not supported; use stun: (UDP)" % uri)
    if rest.startswith("//"):
        raise ValueError("%r: no // after the scheme (RFC 7064 §3.1)" % uri)
    address, _, query = rest.partition("?")
    tls = scheme == "turns"
    transport = "tcp" if tls else "udp"
    if query:
        if scheme == "stun":
            raise ValueError("%r: a stun: URI takes no ?transport (RFC 7064)" % uri)
        key, _, value = query.partition("=")
        if key != "transport" or value not in ("udp", "tcp"):
            raise ValueError("%r: the query must be ?transport=udp or ?transport=tcp (RFC 7065 §3.1)" % uri)
        if tls and value == "udp":
            raise ValueError("%r: turns: over UDP (DTLS) is not supported; use ?transport=tcp" % uri)
        transport = value
    host, port = _host_port(uri, address, TLS_PORT if tls else STUN_PORT)
    if scheme.startswith("turn") and (not username or password is None):
        raise ValueError("%r: a TURN server needs a username and a credential" % uri)
    return Server(scheme[:4], host, port, transport, tls, username, password)


def _host_port(uri, address, default_port):
    if address.startswith("["):
        host, _, tail = address[1:].partition("]")
        if tail and not tail.startswith(":"):
            raise ValueError("%r: expected :port after the IPv6 address" % uri)
        port_text = tail[1:]
    else:
        host, _, port_text = address.partition(":")
        if ":" in port_text:
            raise ValueError("%r: write an IPv6 address in brackets, [::1]" % uri)
    if not host:
        raise ValueError("%r: no host" % uri)
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("%r: the port must be 1-65535" % uri)
    return host, int(port_text)


def parse_all(ice_servers):
    """Servers from a list shaped like RTCConfiguration.iceServers: each
    entry a URI, or a dict with "urls" (a URI or a list of them) and, for
    TURN, "username" and "credential"."""
    found = []
    for entry in ice_servers:
        if isinstance(entry, str):
            found.append(parse(entry))
            continue
        urls = entry.get("urls")
        if urls is None:
            raise ValueError("an ice_servers entry needs 'urls': %r" % sorted(entry))
        for uri in [urls] if isinstance(urls, str) else urls:
            found.append(parse(uri, entry.get("username"), entry.get("credential")))
    return found
