# Copy to firmware/secrets.py (git ignores it) and fill in; `make deploy`
# copies it to the board. Never commit real credentials.
WIFI_SSID = "my-network"
WIFI_PASSWORD = "wifi-password"
SIGNALING_HOST = "192.168.1.10"  # the machine running tools/signaling.py
SIGNALING_PORT = 8765
ROOM = "camera"
# Relayed candidates, for viewers behind NATs that block direct paths.
TURN_SERVERS = [
    # {"host": "turn.example.org", "port": 3478, "username": "u", "password": "p", "transport": "udp"},
]
