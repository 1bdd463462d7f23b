"""Two ice.aio.Connections that meet on loopback (a host pair): where the
bench's data-path programs and the Connection data-path tests start."""

import asyncio
from ice import aio

OPTIONS = {"interfaces": [("lo", "127.0.0.1")], "include_loopback": True, "use_ipv6": False}


async def connected_pair(viewer_options=None):
    """(viewer, camera): the controlling side with `viewer_options` on top
    of OPTIONS, the controlled one with OPTIONS; both connected."""
    options = dict(OPTIONS)
    options.update(viewer_options or {})
    viewer = aio.Connection(True, **options)
    camera = aio.Connection(False, **OPTIONS)
    await asyncio.gather(viewer.gather_candidates(), camera.gather_candidates())
    for sender, receiver in ((viewer, camera), (camera, viewer)):
        receiver.remote_username, receiver.remote_password = sender.local_username, sender.local_password
        for cand in sender.local_candidates:
            await receiver.add_remote_candidate(aio.Candidate.from_sdp(cand.to_sdp()))
        await receiver.add_remote_candidate(None)
    await asyncio.gather(viewer.connect(), camera.connect())
    return viewer, camera
