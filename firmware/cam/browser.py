"""The camera's browser viewers (firmware/PROTOCOL.md "Browsers"): answer a
WebRTC offer, then run the session's data channel (webrtc.peer) over its
ICE pair. Imported at the first browser: a camera only CPython viewers
watch never loads SDP, DTLS or SCTP.
"""

import gc

import asyncio

from cam import webrtc
from ice import aio
from ice.compat import ConnectionError


def identity(app):
    """(certificate DER, key DER, its sha-256 fingerprint `AA:BB:..`), read
    from the files in app.dtls once; None (said once) without them."""
    if app.dtls is None or len(app.dtls) == 3:
        return app.dtls
    files, app.dtls = app.dtls, None
    try:
        with open(files[0], "rb") as f:
            cert = f.read()
        with open(files[1], "rb") as f:
            key = f.read()
    except OSError as exc:
        app.status("camera: no DTLS certificate (%s: %s): browsers cannot view; tools/dtls_cert.py makes one"
                   % (files[0], exc))
        return None
    from webrtc.dtls import digest_of, format_fingerprint

    app.dtls = (cert, key, format_fingerprint(digest_of(cert)))
    return app.dtls


def describe(session):
    """The status of a browser whose ICE is up: its data channel."""
    link = session.link
    pair = session.conn.selected_pair
    if link.state == "open" and pair is not None:
        return "%s: data channel via %s/%s, %d frames, %d skipped" % (
            session.viewer_id, pair.local.type, pair.remote.type, link.frames_sent, link.frames_skipped)
    return "%s: data channel %s (DTLS %s, SCTP %s)" % (session.viewer_id, link.state, link.dtls.state,
                                                       link.sctp.state)


async def on_offer(app, viewer_id, sdp_text):
    try:
        offer = webrtc.parse_offer(sdp_text)
    except ValueError:
        return
    session = app.sessions.get(viewer_id) or await app._open_session(viewer_id)
    if session is None:
        return
    session.browser = True
    conn = session.conn
    conn.remote_username, conn.remote_password = offer["ufrag"], offer["pwd"]
    mine = identity(app)
    if session.link is None and offer["fingerprint"] is not None and mine is not None:
        from webrtc.dtls import parse_fingerprint
        from webrtc.peer import DataChannelLink

        try:
            digest = parse_fingerprint(offer["fingerprint"][1])
            session.link = DataChannelLink(conn, mine[0], mine[1], offer["fingerprint"][0], digest,
                                           offer["max_message_size"])
        except ValueError as exc:
            app.status("camera: %s: %s" % (viewer_id, exc))
            await app._close_session(viewer_id)
            return
        session.tasks.append(asyncio.create_task(run_link(app, session)))
    options = {}
    if session.link is not None:  # a later offer (an ICE restart) keeps the same DTLS session
        options = {"fingerprint_hex": mine[2], "max_message_size": session.link.sctp.max_message_size}
    try:
        answer = webrtc.build_answer(offer, conn.local_username, conn.local_password, **options)
    except ValueError as exc:
        app.status("camera: %s: %s" % (viewer_id, exc))
        await app._close_session(viewer_id)
        return
    await app._send(viewer_id, {"type": "sdp", "kind": "answer", "sdp": answer})
    for line in offer["candidates"]:
        try:
            await conn.add_remote_candidate(aio.Candidate.from_sdp(line))
        except ValueError:
            pass


async def run_link(app, session):
    """A browser's DTLS and SCTP, once ICE has a pair; a failure (a wrong
    fingerprint, an aborted association) ends the session."""
    try:
        await session.conn.connect()
        await session.link.run()
        return
    except ConnectionError:
        why = session.link.error
        if why is None:
            return  # ICE failed or the session was closed: not ours to end
    except Exception as exc:  # noqa: BLE001 - a bug here must not stop the camera
        why = "data channel stopped: %r" % exc
    app.status("camera: %s: %s" % (session.viewer_id, why))
    # from a task of its own: closing cancels the session's tasks, this one
    # among them, and MicroPython's asyncio refuses a task cancelling itself
    asyncio.create_task(app._close_session(session.viewer_id))


def kept(due, frame):
    """(sessions, frame) to send when browsers are among them: SCTP may
    send a frame again later while the camera reuses its buffer, so they
    get one copy for all; short of heap for it they skip this frame
    (counted in their link's frames_skipped) and the others go on."""
    try:
        return due, bytes(frame)
    except MemoryError:
        gc.collect()
        for session in due:
            if session.link is not None:
                session.link.frames_skipped += 1
        return [s for s in due if s.link is None], frame
