"""What a browser viewer's data channel adds to its ICE session before any
frame: the heap a webrtc.peer.DataChannelLink keeps on top of a connected
ice.aio.Connection (the DTLS client with its certificate and key, the SCTP
association's tables and buffers, the channel table), and after its DTLS
handshake has started (mbedTLS's session object, the ClientHello sent):

    micropython -m datachannel_cost CERT_DER KEY_DER

Prints `IMPORT bytes` (the webrtc modules, once per camera), `PART name
bytes` per layer as the link makes it, `LINK bytes` and `STARTED bytes`.
mbedTLS's own buffers are malloc'd outside the MicroPython heap on the unix
port (ESP-IDF's heap on a board): not counted here."""

import gc
import sys

import asyncio
from loopback import connected_pair


def live():
    gc.collect()
    return gc.mem_alloc()


def metered(parts, name, make):
    """`make` wrapped: the live heap of what it builds goes in parts[name]."""
    def wrapper(*args, **kw):
        base = live()
        obj = make(*args, **kw)
        parts[name] = live() - base
        return obj
    return wrapper


async def main():
    with open(sys.argv[1], "rb") as f:
        cert = f.read()
    with open(sys.argv[2], "rb") as f:
        key = f.read()
    viewer, camera = await connected_pair()
    base = live()
    from webrtc import dtls, peer

    print("IMPORT", live() - base)
    parts = {}
    dtls.DtlsClient = metered(parts, "dtls", dtls.DtlsClient)
    peer.Association = metered(parts, "sctp", peer.Association)
    peer.DataChannels = metered(parts, "channels", peer.DataChannels)
    base = live()
    link = peer.DataChannelLink(camera, cert, key, "sha-256", dtls.digest_of(cert))
    held = live() - base
    for name, n in parts.items():
        print("PART", name, n)
    print("LINK", held)
    link.dtls.start()  # mbedTLS's session, the ClientHello out
    print("STARTED", live() - base)
    link.close()
    await viewer.close()
    await camera.close()


asyncio.run(main())
