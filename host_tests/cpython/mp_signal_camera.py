# A camera's signaling client (lib/camlink/signal.py) on the MicroPython unix
# port, driven by test_signaling.py through a file and stdout:
#
#   MICROPYPATH=.frozen:lib micropython mp_signal_camera.py CONF.json
#
# CONF (a file: this unix port dies on an argv argument of 256 bytes or more):
#   {"port": signaling TCP port, "room": R, "bad_port": a server sending junk}
# It joins R as the camera and prints {"id", "peers"}; answers the first `ice`
# with its own (pwd + "-ack"); then expects `bye` and `peer-left`, checks that
# close() from another task ends a pending recv() with None; last it reads three
# messages from the junk server and prints {"got", "dropped", "malformed"}.
# Any failed check raises, so the process exits non-zero with a traceback.
import asyncio
import json
import sys

from camlink.signal import SignalingClient


async def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    sig = SignalingClient()
    await sig.connect("127.0.0.1", conf["port"])
    joined = await sig.join(conf["room"], "camera")
    print(json.dumps({"id": sig.id, "peers": joined["peers"]}))
    while True:
        msg = await sig.recv()
        if msg["type"] == "ice":
            break
    await sig.send({"type": "ice", "to": msg["from"], "ufrag": "cam", "pwd": msg["pwd"] + "-ack"})
    msg = await sig.recv()
    assert msg["type"] == "bye", msg
    assert (await sig.recv())["type"] == "peer-left"  # a bye also leaves the room
    pending = asyncio.create_task(sig.recv())
    await asyncio.sleep_ms(50)
    await sig.close()  # from another task: the pending recv() ends with None
    assert await pending is None
    # A server that sends a 100 KB line and junk: dropped and counted, not a crash.
    bad = SignalingClient()
    await bad.connect("127.0.0.1", conf["bad_port"])
    await bad.join("r", "camera")
    got = [await bad.recv(), await bad.recv(), await bad.recv()]
    print(json.dumps({"got": got, "dropped": bad.dropped, "malformed": bad.malformed}))
    await bad.close()


asyncio.run(main())
