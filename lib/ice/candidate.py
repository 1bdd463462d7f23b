"""An ICE candidate (RFC 8839 §5.1): the fields the agent works with and
their SDP form. Parsing lives in ice.sdp, loaded only by code that reads
SDP (`Candidate.from_sdp` loads it), so the sans-IO agent does without.
"""

TYPES = ("host", "srflx", "prflx", "relay")  # RFC 8839 §5.1 cand-type


class Candidate:
    """One ICE candidate as an SDP "candidate" attribute carries it (RFC 8839 §5.1).

    `transport`, `type` and `tcptype` are kept lowercase. `extensions` holds
    the name/value pairs this module does not interpret (Chrome's `ufrag`,
    `network-id`, `network-cost`, ...), in order; RFC 8839 §5.1 says to ignore
    them, so they only ride along.
    """

    def __init__(
        self,
        *,
        foundation,
        priority,
        host,
        port,
        component=1,
        transport="udp",
        type="host",
        related_address=None,
        related_port=None,
        tcptype=None,
        generation=None,
        extensions=None
    ):
        self.foundation = foundation
        self.component = component
        self.transport = transport.lower()
        self.priority = priority
        self.host = host
        self.port = port
        self.type = type.lower()
        self.related_address = related_address
        self.related_port = related_port
        self.tcptype = None if tcptype is None else tcptype.lower()
        self.generation = generation
        self.extensions = [] if extensions is None else [(n, v) for n, v in extensions]

    @classmethod
    def from_sdp(cls, line):
        """Parse `[a=][candidate:]foundation component transport ...`;
        ice.sdp.SdpError (a ValueError) if malformed."""
        from ice import sdp

        return sdp.parse_candidate(line, cls)

    def to_sdp(self):
        """`candidate:...` without `a=`, in RFC 8839 §5.1 order; extensions last."""
        out = "candidate:%s %d %s %d %s %d typ %s" % (
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.host,
            self.port,
            self.type,
        )
        if self.related_address is not None:
            out += " raddr %s rport %d" % (self.related_address, self.related_port)
        if self.tcptype is not None:
            out += " tcptype " + self.tcptype
        if self.generation is not None:
            out += " generation %d" % self.generation
        for name, value in self.extensions:
            out += " %s %s" % (name, value)
        return out

    def _key(self):
        return (
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.host,
            self.port,
            self.type,
            self.related_address,
            self.related_port,
            self.tcptype,
            self.generation,
            tuple(self.extensions),
        )

    def __eq__(self, other):
        return isinstance(other, Candidate) and self._key() == other._key()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        try:
            return "<Candidate %s>" % self.to_sdp()
        except (TypeError, ValueError):
            return "<Candidate %r>" % (self._key(),)
