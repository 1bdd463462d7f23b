"""WebRTC data channels for the camera: SCTP (sctp), data channel
negotiation (datachannel), DTLS over the ICE pair (dtls) and the session
that joins them to an ice.aio.Connection (peer)."""
