"""The `turn_server` fixture gives a working coturn: a smoke test of the test
environment (tools/turnserver.py), spoken with our own codec.

CPython only: it needs pytest's fixture and real sockets.
"""

import socket

from ice import digest, stun, turn

class _Client:
    """One TURN client socket (UDP or TCP) with long-term credentials."""

    def __init__(self, server, tcp=False):
        self.server = server
        self.tcp = tcp
        if tcp:
            self.sock = socket.create_connection(server.address, timeout=2)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.settimeout(2)
            self.sock.connect(server.address)
        self.key = digest.long_term_key(server.username, server.realm, server.password)
        self.realm = self.nonce = None
        self.pending = b""

    def close(self):
        self.sock.close()

    def recv(self):
        if not self.tcp:
            return self.sock.recv(2048)
        while True:  # RFC 8656 §12.5: frames back to back on the stream
            if len(self.pending) >= 4:
                size = turn.frame_length(self.pending[:4])
                if len(self.pending) >= size:
                    frame, self.pending = self.pending[:size], self.pending[size:]
                    return frame
            chunk = self.sock.recv(2048)
            assert chunk, "TURN server closed the TCP connection"
            self.pending += chunk

    def send(self, w):
        self.sock.sendall(w.view())

    def request(self, msg_type, add_attrs):
        txid = stun.new_txid()
        w = stun.Writer(bytearray(548)).start(msg_type, txid)
        add_attrs(w)
        if self.nonce is not None:
            w.add_bytes(stun.USERNAME, self.server.username)
            w.add_bytes(stun.REALM, self.realm)
            w.add_bytes(stun.NONCE, self.nonce)
            w.add_integrity(self.key)
        w.add_fingerprint()
        self.send(w)
        while True:
            msg = stun.Message().parse(self.recv())
            if msg.txid == txid:
                return msg

    def allocate(self):
        """401 first, then an authenticated Allocate; the relayed address."""
        udp = lambda w: w.add_u32(turn.REQUESTED_TRANSPORT, turn.TRANSPORT_UDP << 24)  # noqa: E731
        msg = self.request(turn.ALLOCATE_REQUEST, udp)
        assert msg.type == turn.ALLOCATE_ERROR and msg.error_code()[0] == 401
        self.realm = msg.get_str(stun.REALM)
        self.nonce = bytes(msg.get(stun.NONCE))
        assert self.realm == self.server.realm and self.nonce
        msg = self.request(turn.ALLOCATE_REQUEST, udp)
        assert msg.type == turn.ALLOCATE_SUCCESS, msg.error_code()
        assert msg.check_integrity(self.key)
        return msg.xor_address(turn.XOR_RELAYED_ADDRESS)

    def permit(self, peer):
        msg = self.request(turn.CREATE_PERMISSION_REQUEST,
                           lambda w: w.add_xor_address(turn.XOR_PEER_ADDRESS, *peer))
        assert msg.type == turn.CREATE_PERMISSION_SUCCESS, msg.error_code()  # 403 if loopback refused

    def send_to(self, peer, payload):
        w = stun.Writer(bytearray(548)).start(turn.SEND_INDICATION, stun.new_txid())
        w.add_xor_address(turn.XOR_PEER_ADDRESS, *peer)
        w.add_bytes(turn.DATA_ATTR, payload)
        self.send(w)

    def receive(self):
        msg = stun.Message().parse(self.recv())
        assert msg.type == turn.DATA_INDICATION
        return msg.xor_address(turn.XOR_PEER_ADDRESS), bytes(msg.get(turn.DATA_ATTR))

def _relay(server, tcp):
    client = _Client(server, tcp)
    relayed = client.allocate()
    assert relayed[0] == "127.0.0.1"
    lo, hi = server.relay_ports
    assert lo <= relayed[1] <= hi
    return client, relayed

def test_udp_allocate_after_401(turn_server):
    client, _ = _relay(turn_server, tcp=False)
    client.close()

def test_tcp_allocate_after_401(turn_server):
    client, _ = _relay(turn_server, tcp=True)
    client.close()

def test_loopback_relays_exchange_data(turn_server):
    a, relay_a = _relay(turn_server, tcp=False)
    b, relay_b = _relay(turn_server, tcp=True)
    try:
        a.permit(relay_b)
        b.permit(relay_a)
        a.send_to(relay_b, b"ping")
        assert b.receive() == (relay_a, b"ping")
        b.send_to(relay_a, b"pong")
        assert a.receive() == (relay_b, b"pong")
    finally:
        a.close()
        b.close()
