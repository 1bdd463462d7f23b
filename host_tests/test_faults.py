"""Faults on the simulated network: heavy loss with duplication and
reordering, NAT rebinding mid-session, the device's network going down and
up. Runs on both runtimes."""

from scenarios import Session


def no_bugs(*agents):
    for agent in agents:
        assert agent.counters["internal_errors"] == 0, agent.counters


def test_loss_duplication_and_reordering_lose_nothing_the_network_delivered():
    """30 % loss, 10 % duplicates, 20 % reordering and jitter on both links:
    ICE connects, and every datagram the network carried to b is handed to
    b's application (duplicates included: UDP keeps them, the app decides)."""
    for seed in (1, 2):
        s = Session(None, "full-cone", seed=seed, loss=0.3, duplicate=0.1, reorder=0.2, jitter_ms=5)
        assert s.connect(30000), seed
        s.sim.advance(200)
        before = len(s.data_b)
        payloads = [b"\x80" + bytes([i]) for i in range(200)]
        delivered_before = s.host_b.received
        for payload in payloads:
            s.send(s.a, payload)
            s.sim.advance(5)
        s.sim.advance(500)
        got = s.data_b[before:]
        assert got and set(got) <= set(payloads)
        assert 100 < len(set(got)) < 200  # about 70 % of 200 survive each way
        # Nothing the network delivered to b's port went missing in the agent.
        network_data = s.host_b.received - delivered_before
        stun_in_between = network_data - len(got)
        assert 0 <= stun_in_between <= 10, (network_data, len(got))
        assert s.sim.stats["duplicated"] and s.sim.stats["reordered"]
        no_bugs(s.a, s.b)


def test_nat_rebinding_is_noticed_and_an_ice_restart_recovers():
    """The NAT in front of `a` forgets its mapping mid-session (a router
    reboot): `a`'s packets reach `b` from a new port, which `b` does not take
    as data (not a valid pair), and `b`'s consent checks go to the old mapping
    and die, so `b` goes disconnected (RFC 7675). An ICE restart recovers."""
    s = Session("port-restricted", None)
    assert s.connect()
    s.nat_a.rebind()
    assert s.sim.run_until(lambda: s.b.state == "disconnected", 15000)
    before = len(s.data_b)
    s.send(s.a, b"\x80lost on the old path")
    s.sim.advance(200)
    assert len(s.data_b) == before
    assert s.b.counters["unknown_source"] >= 1
    old_pair = s.b.selected_pair
    s.restart()
    assert s.sim.run_until(lambda: s.both_connected() and s.b.selected_pair is not old_pair, 15000)
    s.send(s.a, b"\x80back")
    s.sim.advance(200)
    assert s.data_b[-1] == b"\x80back"
    no_bugs(s.a, s.b)


def test_network_down_and_up_on_the_device_side():
    """The camera's link drops for 10 s (Wi-Fi gone), then returns: both sides
    go disconnected, come back on the same pair by consent alone (no restart,
    well within the 30 s consent timeout), and data flows again."""
    s = Session(None, "port-restricted")
    assert s.connect()
    pair = s.a.selected_pair
    s.sim.partition(s.host_a, True)
    assert s.sim.run_until(lambda: s.a.state == "disconnected" and s.b.state == "disconnected", 15000)
    s.sim.advance(2000)
    s.sim.partition(s.host_a, False)
    assert s.sim.run_until(lambda: s.both_connected(), 10000)
    assert s.a.selected_pair is pair
    s.send(s.b, b"\x80after the outage")
    s.sim.advance(200)
    assert s.data_a[-1] == b"\x80after the outage"
    no_bugs(s.a, s.b)
