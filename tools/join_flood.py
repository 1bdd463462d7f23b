"""Bad joins at a signaling server, as fast as it answers them: each of
`--addresses` loopback source addresses (127.0.1.1 and up) opens a
connection, sends a join with a forged room credential, reads the refusal
and closes, over and over, until killed. For tests and benchmarks of the
server's admission (tools/admission.py) on this machine only.

    python tools/join_flood.py PORT [--addresses 20] [--room flood]

Prints the number of joins sent when it ends (SIGTERM or Ctrl-C).
"""

import argparse
import asyncio
import json
import signal
import sys


async def flood(port, addresses, room, counter):
    line = (json.dumps({"type": "join", "room": room, "role": "viewer", "credential": "x|viewer|1|0"}) + "\n").encode()

    async def one(address):
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
            except OSError:
                await asyncio.sleep(0.01)
                continue
            try:
                writer.write(line)
                counter[0] += 1
                await reader.readline()
            except OSError:
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one("127.0.1.%d" % i) for i in range(1, addresses + 1)))


async def main_async(args):
    counter = [0]
    task = asyncio.ensure_future(flood(args.port, args.addresses, args.room, counter))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    print(counter[0], flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument("--room", default="flood")
    args = parser.parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
