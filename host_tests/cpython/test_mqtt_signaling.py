"""Signaling through a real Mosquitto (issue 18): the camera app under
MicroPython (camlink.mqtt_signal on camlink.mqtt) meets the CPython viewer
(aiomqtt) through the broker; the broker restarted mid-session; the ACL of
tools/mosquitto.acl; malformed and oversized messages. CPython drives."""

import asyncio
import json
import os
import time

import pytest

from camlink.mqtt import MqttClient
from camlink.mqtt_signal import MqttSignalingClient
from camlink.signal import parse_mqtt_url as parse_url
from peers import MICROPYTHONS, run
from test_authorization import grant, start_camera

ROOM = "garage"
ACCOUNTS = {ROOM: "garage-password", "porch": "porch-password"}


@pytest.fixture
def broker():
    from mosquitto import Broker, find_mosquitto

    if find_mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but mosquitto is missing; .ci/run installs the Debian package", pytrace=False)
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with Broker(ACCOUNTS, max_packet=128 * 1024) as b:
        yield b


def test_urls():
    assert parse_url("mqtt://room:pw@broker.example") == (False, "broker.example", 1883, "room", "pw")
    assert parse_url("mqtts://room@[2001:db8::1]:9000/") == (True, "2001:db8::1", 9000, "room", None)
    for bad in ("tcp://x:1", "mqtt://", "mqtt://user@"):
        with pytest.raises(ValueError):
            parse_url(bad)


def viewer_for(broker, room=ROOM, tls=False, **kw):
    import viewer as viewer_tool

    _, host, port, user, password = parse_url(broker.url(room, tls=tls))
    return viewer_tool.Viewer((host, port), room, ("127.0.0.1", 0), include_loopback=True, log=lambda line: None,
                              grant=grant(), signaling_mqtt=(user, password),
                              connection_options={"use_ipv6": False, "include_addresses": ["127.0.0.1"]}, **kw)


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
def test_the_camera_streams_through_the_broker_and_survives_its_restart(broker, tmp_path, micropython):
    async def main():
        camera = await start_camera(micropython, tmp_path, broker.url(ROOM), ROOM)
        first = viewer_for(broker)
        try:
            await first.start()
            status = await first.wait_for(lambda s: s["frames_completed"] >= 10, 30)
            # Garbage into the camera's inbox, from an account of its room: dropped, nothing breaks.
            junk = MqttClient("junk", lambda topic, payload: None)
            await junk.connect("127.0.0.1", broker.port, None, ROOM, ACCOUNTS[ROOM])
            inbox = "icecam/%s/to/%s/from/junk" % (ROOM, status["camera"])
            for payload in (b"not json", b"[1]", b"{" * 5000, b'{"type": "ice", "pad": "%s"}' % (b"x" * 70000)):
                await junk.publish(inbox, payload, qos=1)
            await junk.disconnect()
            before = (await first.wait_for(lambda s: s["frames_completed"] >= status["frames_completed"] + 15,
                                           10))["frames_completed"]
            broker.restart()  # every client cut; retained presence and subscriptions forgotten
            status = await first.wait_for(lambda s: s["frames_completed"] >= before + 30, 20)
            assert status["sessions"] == 1, status  # the ICE session never stopped
            # Signaling is back: a viewer that joins after the restart finds the camera.
            second = viewer_for(broker)
            await second.start()
            try:
                await second.wait_for(lambda s: s["frames_completed"] >= 5, 30)
            finally:
                await second.close()
        finally:
            await first.close()
            camera.terminate()
            out = (await camera.stdout.read()).decode()
            await camera.wait()
        assert "joined room" in out, out[-2000:]

    run(main(), timeout=120)


async def client(broker, room, role, password=None):
    _, host, port, user, pw = parse_url(broker.url(room, password))
    c = MqttSignalingClient()
    await c.connect(host, port, None, user, pw)
    await c.join(room, role)
    return c


async def drain(c, seconds=0.5):
    got = []
    try:
        while True:
            got.append(await asyncio.wait_for(c.recv(), seconds))
    except asyncio.TimeoutError:
        return got


def test_the_acl_keeps_rooms_and_inboxes_apart(broker):
    """A client of another room, and a viewer of the same room, try to read
    and write what is not theirs: nothing arrives, nothing leaks."""
    async def main():
        camera = await client(broker, ROOM, "camera")
        viewer = await client(broker, ROOM, "viewer")
        assert (await camera.recv())["type"] == "peer-joined"
        assert (await viewer.recv())["id"] == camera.id

        seen = []
        spy = MqttClient("spy", lambda topic, payload: seen.append((topic, payload)))
        await spy.connect("127.0.0.1", broker.port, None, "porch", ACCOUNTS["porch"])
        await spy.subscribe([("icecam/#", 1), ("#", 1)])
        await spy.publish("icecam/%s/to/%s/from/spy" % (ROOM, camera.id), json.dumps({"type": "ice"}), qos=1)
        await spy.publish("icecam/%s/presence/spy" % ROOM, json.dumps({"role": "camera"}), qos=1, retain=True)

        snoop = []
        nosy = MqttClient("nosy", lambda topic, payload: snoop.append(topic))
        await nosy.connect("127.0.0.1", broker.port, None, ROOM, ACCOUNTS[ROOM])
        await nosy.subscribe([("icecam/%s/to/+/from/+" % ROOM, 1)])
        # `from` forged: the topic names the viewer, the connection is nosy's.
        await nosy.publish("icecam/%s/to/%s/from/%s" % (ROOM, camera.id, viewer.id), json.dumps({"type": "bye"}),
                           qos=1)

        await viewer.send({"type": "ice", "to": camera.id, "ufrag": "abcd", "pwd": "p" * 22})
        got = await drain(camera)
        assert [(m["type"], m["from"]) for m in got] == [("ice", viewer.id)], got
        assert seen == [] and snoop == [], (seen, snoop)
        assert await drain(viewer) == []
        for c in (camera, viewer):
            await c.close()
        await spy.disconnect()
        await nosy.disconnect()

    run(main())


def test_a_wrong_password_is_refused_with_the_reason(broker):
    from camlink.signal import SignalingError

    async def main():
        with pytest.raises(SignalingError, match="bad username or password|not authorized"):
            await client(broker, ROOM, "camera", password="wrong")

    run(main())


def test_malformed_and_oversized_messages_are_dropped_and_counted(broker):
    async def main():
        camera = await client(broker, ROOM, "camera")
        peer = MqttClient("peer1", lambda topic, payload: None)
        await peer.connect("127.0.0.1", broker.port, None, ROOM, ACCOUNTS[ROOM])
        inbox = "icecam/%s/to/%s/from/peer1" % (ROOM, camera.id)
        for payload in (b"not json", b"[1, 2]", b"\xff\xfe", b"{" * 10000, b'{"type": "x", "pad": "%s"}' % (b"y" * 70000)):
            await peer.publish(inbox, payload, qos=1)
        await peer.publish("icecam/%s/presence/peer1" % ROOM, b'{"role": "king"}', qos=1, retain=True)
        await peer.publish(inbox, json.dumps({"type": "ice", "ufrag": "abcd", "pwd": "p" * 22}), qos=1)
        got = await drain(camera)
        assert [m["type"] for m in got] == ["ice"], got  # only the good one, and no peer-joined for a "king"
        assert camera.malformed == 5 and camera.dropped == 1, (camera.malformed, camera.dropped)
        await peer.publish("icecam/%s/presence/peer1" % ROOM, b"", qos=1, retain=True)
        await camera.close()
        await peer.disconnect()

    run(main())


def test_presence_comes_and_goes_and_the_will_tells_of_a_vanished_peer(broker):
    async def main():
        camera = await client(broker, ROOM, "camera")
        viewer = await client(broker, ROOM, "viewer")
        assert await camera.recv() == {"type": "peer-joined", "id": viewer.id, "role": "viewer"}
        viewer._client._writer.transport.abort()  # gone without a word: the broker publishes its will
        viewer._closing = True
        assert await asyncio.wait_for(camera.recv(), 5) == {"type": "peer-left", "id": viewer.id}
        late = await client(broker, ROOM, "viewer")
        assert await asyncio.wait_for(late.recv(), 5) == {"type": "peer-joined", "id": camera.id, "role": "camera"}
        for c in (camera, late):
            await c.close()

    run(main())


def test_the_load_tool_connects_every_pair_both_ways():
    """tools/signaling_load.py (make bench runs it with 200 pairs), briefly."""
    import signaling_load

    for transport in ("server", "mqtt"):
        result = asyncio.run(signaling_load.run_load(10, transport, 50, lambda line: None))
        assert result["failed"] == 0 and len(result["connected"]) == 10, (transport, result)
        assert all(m >= 6 for m in result["messages"]), result  # ice, candidate, end-of-candidates each way


@pytest.mark.parametrize("micropython", [m for _, m in MICROPYTHONS], ids=[n for n, _ in MICROPYTHONS])
def test_mqtts_with_a_private_ca_and_nothing_secret_in_the_broker(tmp_path, micropython):
    """The camera (MicroPython's TLS) and the viewer (aiomqtt) reach the
    broker over mqtts:// with a CA made here, and stream; the broker's log
    and its retained messages hold no ICE credentials."""
    import ssl

    from mosquitto import Broker
    from testca import TestCA

    ca = TestCA(tmp_path)

    async def main(broker):
        camera = await start_camera(micropython, tmp_path, broker.url(ROOM, tls=True), ROOM,
                                    "SIGNALING_CA = %r\n" % ca.pem)
        viewer = viewer_for(broker, tls=True, signaling_tls=ssl.create_default_context(cafile=ca.pem))
        retained = []
        watcher = MqttClient("watcher", lambda topic, payload: retained.append(payload))
        try:
            await viewer.start()
            await viewer.wait_for(lambda s: s["frames_completed"] >= 5, 30)
            await watcher.connect("127.0.0.1", broker.port, None, ROOM, ACCOUNTS[ROOM])
            await watcher.subscribe([("icecam/%s/presence/+" % ROOM, 1)])
            await asyncio.sleep(0.3)
        finally:
            await watcher.disconnect()
            await viewer.close()
            camera.terminate()
            await camera.wait()
        return retained

    with Broker(ACCOUNTS, tls=ca.server("localhost")) as broker:
        retained = run(main(broker), timeout=90)
        log = broker.log_text()
    assert retained and all(json.loads(p) in ({"role": "camera"}, {"role": "viewer"}) for p in retained if p), retained
    assert "pwd" not in log and "ufrag" not in log, log[-2000:]


def test_a_bridged_join_carries_the_servers_ice_servers(broker):
    """tools/signaling.py with --mqtt-bridge: a client's `joined` comes from
    the broker, and still carries --ice-servers and TURN credentials made
    for the id the broker gave it, as a join on the server itself does."""
    import admission
    import signaling
    from mqtt_signaling import Bridge

    stun = {"urls": "stun:stun.example.org:3478"}

    async def main():
        bridge = Bridge(broker.ip, broker.port, None, broker.accounts)
        server = await signaling.serve("127.0.0.1", 0, 0, bridge=bridge, ice_servers=[stun],
                                       turn=(b"turn-secret", ["turn:turn.example.org"], 600))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
            writer.write(b'{"type": "join", "room": "%s", "role": "viewer"}\n' % ROOM.encode())
            joined = json.loads(await asyncio.wait_for(reader.readline(), 10))
            writer.close()
            return joined
        finally:
            await server.close()

    joined = asyncio.run(main())
    assert joined["type"] == "joined" and joined["id"], joined
    first, turn = joined["ice_servers"]
    assert first == stun
    assert turn["urls"] == ["turn:turn.example.org"] and turn["username"].endswith(":" + joined["id"])
    assert (turn["username"], turn["credential"]) == admission.turn_credentials(
        b"turn-secret", joined["id"], 600, now=int(turn["username"].split(":")[0]) - 600)
