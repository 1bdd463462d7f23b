"""Runs first on a board: join Wi-Fi with the credentials in secrets.py,
then set the clock by NTP (viewer grants expire by it: camlink.grants)."""

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
    if wlan.isconnected():
        try:
            import ntptime

            ntptime.host = getattr(secrets, "NTP_SERVER", ntptime.host)
            ntptime.settime()
            print("boot: clock set by NTP")
        except Exception as e:  # no NTP here: a camera with grants refuses viewers until it is set
            print("boot: NTP failed (%s)" % (e,))
