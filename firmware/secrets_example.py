# Copy to firmware/secrets.py (git ignores it) and fill in; `make deploy`
# copies it to the board. Never commit real credentials.
WIFI_SSID = "my-network"
WIFI_PASSWORD = "wifi-password"
# The machine running tools/signaling.py. Over TLS, its certificate checked
# against SIGNALING_CA (a file make deploy copies from firmware/); plain
# "tcp://host:port" carries the ICE credentials in clear: only for a server
# on your own desk.
SIGNALING = "tls://192.168.1.10:8765"
SIGNALING_CA = "signaling_ca.pem"
# Or through an MQTT broker (a fleet): the room's account on it, TLS
# checked against SIGNALING_CA too (firmware/PROTOCOL.md, "Over MQTT").
# SIGNALING = "mqtts://camera:room-password@broker.example.org:8883"
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
# The signaling server's room credential for this camera, when it asks for
# one (tools/grant.py room --role camera).
# ROOM_CREDENTIAL = "camera|camera|1893456000|..."
# Viewer grants: with a secret only viewers holding a grant from the owner
# (tools/grant.py issue) see the camera; `tools/grant.py provision` makes
# one. Without it anyone who knows the room watches. Never log or share it.
# CAMERA_SECRET = "64 hex digits"
# CAMERA_ID = "camera"  # what grants name; default: ROOM
# NTP_SERVER = "pool.ntp.org"  # the clock viewer grants expire by (firmware/boot.py)
# Browsers view the camera over a WebRTC data channel; they check its DTLS
# certificate, which make deploy makes on the host (tools/dtls_cert.py) and
# copies beside this file. These are the defaults:
# DTLS_CERT = "dtls_cert.der"
# DTLS_KEY = "dtls_key.der"
