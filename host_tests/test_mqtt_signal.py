"""camlink.mqtt_signal without a broker: URLs, and what topics and payloads
become (presence, inbox, malformed, oversized). Runs under pytest and under
the MicroPython unix port."""

import asyncio

from camlink import mqtt_signal
from camlink.mqtt_signal import MqttSignalingClient
from camlink.signal import parse_mqtt_url, signaling_url
from helpers import raises


def client():
    c = MqttSignalingClient()
    c.room = "garage"
    return c


def test_urls():
    assert parse_mqtt_url("mqtt://garage:pw@192.0.2.7") == (False, "192.0.2.7", 1883, "garage", "pw")
    assert parse_mqtt_url("mqtts://garage:p:w@broker.example:9001/") == (
        True, "broker.example", 9001, "garage", "p:w")
    assert parse_mqtt_url("mqtt://[2001:db8::2]:1884") == (False, "2001:db8::2", 1884, None, None)
    for bad in ("tls://x:1", "mqtt://", "mqtts://u:p@"):
        assert raises(ValueError, parse_mqtt_url, bad)
    assert signaling_url("mqtts://g:pw@b") == (True, "b", 8883, ("g", "pw"))
    assert signaling_url("tls://b:9") == (True, "b", 9, None)
    assert signaling_url("b:9") == (False, "b", 9, None)


def test_ids_are_one_topic_level():
    for _ in range(50):
        peer = MqttSignalingClient().id
        assert len(peer) == 8 and "/" not in peer and "+" not in peer and "#" not in peer


def test_inbox_messages_carry_the_sender_from_the_topic():
    c = client()
    c._on_message("icecam/garage/to/%s/from/v1" % c.id, b'{"type": "ice", "from": "forged", "ufrag": "u"}')
    c._on_message("icecam/garage/to/someone-else/from/v1", b'{"type": "ice"}')  # not our inbox
    assert c._inbox == [{"type": "ice", "from": "v1", "ufrag": "u"}]


def test_presence_becomes_peer_joined_once():
    c = client()
    c._on_message("icecam/garage/presence/cam1", b'{"role": "camera"}')
    c._on_message("icecam/garage/presence/cam1", b'{"role": "camera"}')  # again after a reconnect
    c._on_message("icecam/garage/presence/%s" % c.id, b'{"role": "viewer"}')  # ourselves
    c._on_message("icecam/garage/presence/x", b'{"role": "admin"}')
    assert c._inbox == [{"type": "peer-joined", "id": "cam1", "role": "camera"}]
    assert c.malformed == 1


def test_malformed_and_oversized_payloads_are_counted():
    c = client()
    inbox = "icecam/garage/to/%s/from/v1" % c.id
    for payload in (b"nope", b"[1]", b"\xff", b"{" * 2000, b'"text"'):
        c._on_message(inbox, payload)
    c._on_message(inbox, b'{"pad": "' + b"x" * (mqtt_signal.MAX_MESSAGE + 1) + b'"}')
    assert c._inbox == [] and c.malformed == 5 and c.dropped == 1


def test_a_full_inbox_drops_and_counts():
    c = client()
    for i in range(mqtt_signal._INBOX + 3):
        c._on_message("icecam/garage/to/%s/from/v1" % c.id, b'{"type": "candidate"}')
    assert len(c._inbox) == mqtt_signal._INBOX and c.dropped == 3


def test_send_needs_a_recipient():
    c = client()
    try:
        asyncio.run(c.send({"type": "ice"}))
    except ValueError:
        return
    raise AssertionError("sent without a `to`")


def test_qos1_messages_kept_for_a_resend_are_bounded():
    """A broker away for long: at most 32 wait for a resend, the oldest go."""
    from camlink.mqtt import MqttClient

    c = MqttClient("cam", lambda topic, payload: None)
    c._pid = 0xFFFF - 10  # the packet ids wrap while they wait

    async def main():
        for i in range(40):
            await c.publish("t", b"%d" % i, qos=1)

    asyncio.run(main())
    # A packet: type, length, topic "t" (2 + 1 bytes), packet id (2), payload.
    kept = sorted(int(packet[7:]) for packet in c._unacked.values())
    assert len(kept) == 32 and c.counters["unacked_dropped"] == 8
    assert kept == list(range(8, 40)), kept
