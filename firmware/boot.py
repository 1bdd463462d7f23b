"""Runs first on a board: join Wi-Fi with the credentials in secrets.py."""

import time

try:
    import network
    import secrets
except ImportError:  # a host, or a board without secrets.py yet
    network = None

if network is not None and getattr(secrets, "WIFI_SSID", None):
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        print("boot: joining Wi-Fi %r" % secrets.WIFI_SSID)
        wlan.connect(secrets.WIFI_SSID, secrets.WIFI_PASSWORD)
        for _ in range(200):  # 20 s
            if wlan.isconnected():
                break
            time.sleep_ms(100)
    print("boot: Wi-Fi", "up at %s" % wlan.ifconfig()[0] if wlan.isconnected() else "not connected")
