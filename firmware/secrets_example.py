# Copy to firmware/secrets.py (git ignores it) and fill in; `make deploy`
# copies it to the board. Never commit real credentials.
WIFI_SSID = "my-network"
WIFI_PASSWORD = "wifi-password"
SIGNALING_HOST = "192.168.1.10"  # the machine running tools/signaling.py
SIGNALING_PORT = 8765
ROOM = "camera"
# Relayed candidates, for viewers behind NATs that block direct paths. As a
# browser's iceServers: turn:host[:port][?transport=udp|tcp] (port 3478) or
# turns:host[:port] (TLS over TCP, port 5349; 443 passes most firewalls).
TURN_SERVERS = [
    # {"urls": "turn:turn.example.org?transport=udp", "username": "u", "credential": "p"},
    # {"urls": "turns:turn.example.org:443", "username": "u", "credential": "p"},
]
# For turns: servers, the CA certificate that signed theirs (PEM or DER), a
# file on the board (make deploy copies it); the certificate and the host
# name are always checked.
# TURN_CA = "turn_ca.pem"
# "relay": only relayed candidates (a browser's iceTransportPolicy), so
# viewers never learn the camera's addresses; "all" (the default) is faster.
# ICE_TRANSPORT_POLICY = "all"
