"""The network simulator itself: links, NAT behaviours (RFC 4787), STUN server.

Runs under pytest and under the MicroPython unix port (host_tests/mp_run.py).
"""

from ice import stun
from netsim import NAT_TYPES, Rng, Simulator

SERVER1 = "203.0.113.1"
SERVER2 = "203.0.113.2"
THIRD = "198.51.100.99"


class Probe:
    """Tiny sans-IO endpoint: sends STUN Binding requests or raw datagrams
    from one port, records mapped addresses and everything else it receives.
    Hands out views of one reused buffer, so the sim must copy them."""

    def __init__(self, ip, port, echo=False):
        self.ip = ip
        self.port = port
        self.echo = echo
        self.mapped = []  # XOR-MAPPED-ADDRESS of each Binding success
        self.got = []  # (now, src_ip, src_port, data) of anything else
        self.timeouts = []
        self.deadline = None
        self._queue = []  # (dst_ip, dst_port, payload or None for STUN)
        self._buf = bytearray(64)
        self._txn = 0

    def stun(self, ip, port=3478):
        self._queue.append((ip, port, None))

    def send(self, ip, port, payload):
        self._queue.append((ip, port, payload))

    def poll_transmit(self):
        if not self._queue:
            return None
        ip, port, payload = self._queue.pop(0)
        if payload is None:
            self._txn += 1
            txid = bytes([self._txn & 0xFF]) * 12
            w = stun.Writer(self._buf).start(stun.BINDING_REQUEST, txid)
            w.add_fingerprint()
            view = w.view()
        else:
            n = len(payload)
            self._buf[:n] = payload
            view = memoryview(self._buf)[:n]
        return (self.ip, self.port, ip, port, view)

    def handle_packet(self, now, local_ip, local_port, src_ip, src_port, data):
        assert local_ip == self.ip and local_port == self.port
        if stun.looks_like_stun(data):
            msg = stun.decode(data)
            if msg.type == stun.BINDING_SUCCESS:
                self.mapped.append(msg.xor_mapped_address())
                return
        self.got.append((now, src_ip, src_port, bytes(data)))
        if self.echo:
            self.send(src_ip, src_port, data)

    def poll_timeout(self):
        return self.deadline

    def wake_at(self, deadline):
        self.deadline = deadline

    def handle_timeout(self, now):
        self.timeouts.append(now)
        self.deadline = None

    def poll_event(self):
        return None


def probe_on(host, port, echo=False):
    return host.attach(Probe(host.ip, port, echo), ports=(port,))


def mapped_after_stun(sim, probe, server_ip, port=3478):
    before = len(probe.mapped)
    probe.stun(server_ip, port)
    sim.kick(probe)
    if not sim.run_until(lambda: len(probe.mapped) > before, 2000):
        return None
    return probe.mapped[-1]


def natted(kind, seed=1, **kw):
    sim = Simulator(seed)
    srv1 = sim.add_stun_server(SERVER1)
    srv2 = sim.add_stun_server(SERVER2)
    nat = sim.add_nat_type("192.0.2.1", kind, **kw)
    client = probe_on(sim.add_host("10.0.0.2", nat=nat), 5000)
    return sim, nat, client, srv1, srv2


def test_rng_same_sequence_on_every_runtime():
    r = Rng(1)
    assert [r.next32() for _ in range(4)] == [1758100174, 3588655591, 2677480138, 3842175245]
    assert Rng(0).next32() == 3862129951
    assert Rng(12345).below(1000) == 404


def test_no_nat_mapped_address_is_own_address():
    sim = Simulator()
    srv = sim.add_stun_server(SERVER1)
    client = probe_on(sim.add_host("198.51.100.10"), 5000)
    assert mapped_after_stun(sim, client, SERVER1) == ("198.51.100.10", 5000)
    assert srv.served == 1
    assert sim.now == 20  # four one-way link crossings of 5 ms
    assert sim.stats["sent"] == 2 and sim.stats["delivered"] == 2


def test_eim_reuses_mapping_for_every_destination_rfc4787_4_1():
    for kind in ("full-cone", "restricted", "port-restricted"):
        sim, nat, client, srv1, srv2 = natted(kind)
        a = mapped_after_stun(sim, client, SERVER1)
        b = mapped_after_stun(sim, client, SERVER2)
        assert a[0] == "192.0.2.1" and a == b, kind
        assert a[1] == 40000  # EIM allocates sequentially from port_start
        assert nat.mappings() == [("10.0.0.2", 5000, 40000)]


def test_apdm_new_mapping_per_destination_rfc4787_4_1():
    sim, nat, client, srv1, srv2 = natted("symmetric")
    sim.add_stun_server(SERVER1, 3479)
    a = mapped_after_stun(sim, client, SERVER1)
    b = mapped_after_stun(sim, client, SERVER2)
    c = mapped_after_stun(sim, client, SERVER1, 3479)
    assert len(set([a[1], b[1], c[1]])) == 3
    assert mapped_after_stun(sim, client, SERVER1) == a  # same destination: reused
    assert len(nat.mappings()) == 3


def test_adm_mapping_per_destination_ip():
    sim = Simulator()
    sim.add_stun_server(SERVER1)
    sim.add_stun_server(SERVER1, 3479)
    sim.add_stun_server(SERVER2)
    nat = sim.add_nat("192.0.2.1", "adm", "apdf")
    client = probe_on(sim.add_host("10.0.0.2", nat=nat), 5000)
    a = mapped_after_stun(sim, client, SERVER1)
    assert mapped_after_stun(sim, client, SERVER1, 3479) == a
    assert mapped_after_stun(sim, client, SERVER2)[1] != a[1]


def filtering_case(kind):
    """Which remote senders reach a mapping made towards SERVER1:3478."""
    sim, nat, client, srv1, srv2 = natted(kind)
    public = mapped_after_stun(sim, client, SERVER1)
    other_port = probe_on(srv1.host, 6000)
    third = probe_on(sim.add_host(THIRD), 6000)
    arrived = []
    for name, sender in (("other-ip", third), ("same-ip-other-port", other_port)):
        before = len(client.got)
        sender.send(public[0], public[1], name.encode())
        sim.kick(sender)
        sim.advance(100)
        if len(client.got) > before:
            assert client.got[-1][1:] == (sender.ip, 6000, name.encode())
            arrived.append(name)
    return arrived, nat.dropped


def test_filtering_rfc4787_5():
    assert filtering_case("full-cone") == (["other-ip", "same-ip-other-port"], 0)
    assert filtering_case("restricted") == (["same-ip-other-port"], 1)
    assert filtering_case("port-restricted") == ([], 2)
    assert filtering_case("symmetric") == ([], 2)
    assert sorted(NAT_TYPES) == ["full-cone", "port-restricted", "restricted", "symmetric"]


def test_unsolicited_inbound_is_dropped_and_counted():
    sim, nat, client, srv1, srv2 = natted("full-cone")
    sim.inject(THIRD, 1, "192.0.2.1", 40000, b"hello")
    sim.advance(100)
    assert client.got == [] and nat.dropped == 1 and sim.stats["nat_dropped"] == 1


def test_mapping_times_out_and_outbound_refreshes_rfc4787_4_3():
    sim, nat, client, srv1, srv2 = natted("port-restricted", timeout_ms=30000)
    first = mapped_after_stun(sim, client, SERVER1)
    sim.advance(20000)
    assert mapped_after_stun(sim, client, SERVER1) == first  # refreshed
    sim.advance(20000)
    assert nat.mappings() != []
    sim.advance(10001)
    assert nat.mappings() == []
    server_peer = probe_on(srv1.host, 7000)
    sim.inject(SERVER1, 3478, first[0], first[1], b"late")
    sim.advance(100)
    assert client.got == [] and nat.dropped == 1
    again = mapped_after_stun(sim, client, SERVER1)
    assert again[1] != first[1]
    assert server_peer.got == []


def test_loss_one_drops_everything():
    sim = Simulator()
    a = probe_on(sim.add_host("198.51.100.1", loss=1.0), 1000)
    b = probe_on(sim.add_host("198.51.100.2"), 2000)
    for i in range(20):
        a.send(b.ip, 2000, b"%d" % i)
    sim.kick(a)
    sim.advance(1000)
    assert b.got == []
    host_a = sim.hosts[0]
    assert sim.stats["lost"] == 20 and sim.stats["delivered"] == 0
    assert host_a.sent == 20 and host_a.dropped == 20


def test_loss_applies_on_the_receiving_link_too():
    sim = Simulator()
    a = probe_on(sim.add_host("198.51.100.1"), 1000)
    b = probe_on(sim.add_host("198.51.100.2", loss=1.0), 2000)
    a.send(b.ip, 2000, b"x")
    sim.kick(a)
    sim.advance(100)
    assert b.got == [] and sim.stats["lost"] == 1 and sim.hosts[1].dropped == 1


def test_duplicate_one_duplicates_every_packet():
    sim = Simulator()
    a = probe_on(sim.add_host("198.51.100.1", duplicate=1.0), 1000)
    b = probe_on(sim.add_host("198.51.100.2"), 2000)
    for i in range(10):
        a.send(b.ip, 2000, b"%d" % i)
    sim.kick(a)
    sim.advance(1000)
    assert len(b.got) == 20 and sim.stats["duplicated"] == 10
    assert sorted(g[3] for g in b.got) == sorted([b"%d" % i for i in range(10)] * 2)


def send_numbered(seed, count=200, **link):
    sim = Simulator(seed)
    a = probe_on(sim.add_host("198.51.100.1", **link), 1000)
    b = probe_on(sim.add_host("198.51.100.2"), 2000)
    for i in range(count):
        a.send(b.ip, 2000, b"%d" % i)
    sim.kick(a)
    sim.advance(1000)
    return [int(g[3]) for g in b.got], [g[0] for g in b.got], sim.stats


def test_reorder_changes_order_with_fixed_seed():
    order, times, stats = send_numbered(3, reorder=0.3)
    assert sorted(order) == list(range(200))
    assert order != list(range(200))
    assert 20 < stats["reordered"] < 100
    plain, plain_times, _ = send_numbered(3)
    assert plain == list(range(200)) and plain_times == [10] * 200


def test_jitter_stays_within_bounds():
    order, times, stats = send_numbered(5, delay_ms=10, jitter_ms=4)
    assert sorted(order) == list(range(200))
    assert min(times) == 15 and max(times) == 19  # + receiver's 5 ms


def test_same_seed_same_results():
    def scenario(seed):
        order, times, stats = send_numbered(
            seed, delay_ms=7, jitter_ms=6, loss=0.2, duplicate=0.1, reorder=0.2)
        sim, nat, client, srv1, srv2 = natted("symmetric", seed)
        ports = [mapped_after_stun(sim, client, ip)[1] for ip in (SERVER1, SERVER2)]
        return order, times, sorted(stats.items()), ports

    first = scenario(7)
    assert scenario(7) == first
    assert scenario(8) != first


def test_partition_and_heal():
    sim, nat, client, srv1, srv2 = natted("full-cone")
    sim.partition(client_host(sim))
    assert mapped_after_stun(sim, client, SERVER1) is None
    assert srv1.served == 0 and sim.stats["partitioned"] == 1
    sim.partition(client_host(sim), False)
    assert mapped_after_stun(sim, client, SERVER1) == ("192.0.2.1", 40000)
    # Cut the server off while the request is in flight: the answer is lost.
    client.stun(SERVER1)
    sim.kick(client)
    sim.call_at(sim.now + 7, lambda: sim.partition(srv1.host))
    sim.advance(1000)
    assert len(client.mapped) == 1 and srv1.served == 1


def client_host(sim):
    return [h for h in sim.hosts if h.ip == "10.0.0.2"][0]


def test_rebind_changes_mapped_port():
    sim, nat, client, srv1, srv2 = natted("port-restricted")
    first = mapped_after_stun(sim, client, SERVER1)
    nat.rebind()
    sim.inject(SERVER1, 3478, first[0], first[1], b"old mapping")
    sim.advance(100)
    assert client.got == [] and nat.dropped == 1
    second = mapped_after_stun(sim, client, SERVER1)
    assert second[0] == first[0] and second[1] != first[1]


def test_same_now_guard():
    class Spinner(Probe):
        def poll_timeout(self):
            return 0  # always "now or earlier"

    sim = Simulator()
    host = sim.add_host("198.51.100.1")
    spinner = host.attach(Spinner(host.ip, 1000))
    try:
        sim.run(10)
        assert False, "the guard did not fire"
    except RuntimeError as e:
        assert "1000 times" in str(e)
    assert len(spinner.timeouts) == 1000


def test_timers_fire_at_the_deadline():
    sim = Simulator()
    host = sim.add_host("198.51.100.1")
    p = probe_on(host, 1000)
    p.wake_at(250)
    sim.kick(p)
    sim.run(249)
    assert p.timeouts == []
    sim.run(1000)
    assert p.timeouts == [250] and sim.now == 1000
    p.wake_at(900)  # already past: runs at once, at the current time
    sim.kick(p)
    sim.run(1000)
    assert p.timeouts == [250, 1000]


def test_unowned_source_unknown_port_and_no_route_are_dropped():
    sim = Simulator()
    a = probe_on(sim.add_host("198.51.100.1"), 1000)
    b = probe_on(sim.add_host("198.51.100.2"), 2000)
    a.port = 1001  # never bound
    a.send(b.ip, 2000, b"x")
    sim.kick(a)
    a.port = 1000
    a.send(b.ip, 2001, b"y")  # nobody listens there
    a.send("203.0.113.77", 1, b"z")  # no such host
    sim.kick(a)
    sim.advance(100)
    assert b.got == []
    s = sim.stats
    assert (s["bad_source"], s["no_listener"], s["no_route"]) == (1, 1, 1)


def test_same_lan_and_hairpin_rfc4787_6():
    for hairpin in (False, True):
        sim = Simulator()
        sim.add_stun_server(SERVER1)
        nat = sim.add_nat_type("192.0.2.1", "full-cone", hairpin=hairpin)
        a = probe_on(sim.add_host("10.0.0.2", nat=nat), 5000)
        b = probe_on(sim.add_host("10.0.0.3", nat=nat), 5000, echo=True)
        pa = mapped_after_stun(sim, a, SERVER1)
        pb = mapped_after_stun(sim, b, SERVER1)
        a.send("10.0.0.3", 5000, b"lan")
        sim.kick(a)
        sim.advance(100)
        assert b.got[-1][1:] == ("10.0.0.2", 5000, b"lan")
        assert a.got[-1][1:] == ("10.0.0.3", 5000, b"lan")  # echo
        a.send(pb[0], pb[1], b"hairpin")
        sim.kick(a)
        sim.advance(100)
        if hairpin:  # REQ-9: the source is a's public address
            assert b.got[-1][1:] == (pa[0], pa[1], b"hairpin")
            assert a.got[-1][1:] == (pb[0], pb[1], b"hairpin")
        else:
            assert len(b.got) == 1 and nat.dropped == 1


def test_overlapping_private_addresses():
    sim = Simulator()
    sim.add_stun_server(SERVER1)
    n1 = sim.add_nat_type("192.0.2.1", "full-cone")
    n2 = sim.add_nat_type("192.0.2.2", "full-cone")
    a = probe_on(sim.add_host("192.168.1.2", nat=n1), 5000)
    b = probe_on(sim.add_host("192.168.1.2", nat=n2), 5000)
    pa = mapped_after_stun(sim, a, SERVER1)
    pb = mapped_after_stun(sim, b, SERVER1)
    assert pa == ("192.0.2.1", 40000) and pb == ("192.0.2.2", 40000)
    a.send(pb[0], pb[1], b"to b")
    sim.kick(a)
    sim.advance(100)
    assert a.got == [] and b.got[-1][1:] == (pa[0], pa[1], b"to b")


def test_inject_forges_the_source():
    sim = Simulator()
    b = probe_on(sim.add_host("198.51.100.2"), 2000)
    sim.inject("6.6.6.6", 666, b.ip, 2000, b"forged", at_ms=50)
    sim.run(54)
    assert b.got == []
    sim.run(55)  # appears at 50, then b's 5 ms link
    assert b.got == [(55, "6.6.6.6", 666, b"forged")]
    assert sim.stats["injected"] == 1


def test_events_go_to_callback_or_host_events():
    class Talker(Probe):
        def __init__(self, ip, port):
            Probe.__init__(self, ip, port)
            self.pending = [("gathered",), ("connected", 1)]

        def poll_event(self):
            return self.pending.pop(0) if self.pending else None

    sim = Simulator()
    host = sim.add_host("198.51.100.1")
    host.attach(Talker(host.ip, 1))
    assert host.events == [("gathered",), ("connected", 1)]
    seen = []
    other = sim.add_host("198.51.100.2")
    t = other.attach(Talker(other.ip, 1), on_event=seen.append)
    assert seen == [("gathered",), ("connected", 1)] and other.events == []
    t.pending.append(("later",))
    sim.kick(t)
    assert seen[-1] == ("later",)


def test_run_until_reports_timeout():
    sim = Simulator()
    assert sim.run_until(lambda: False, 500) is False and sim.now == 500
    assert sim.run_until(lambda: True, 500) is True and sim.now == 500


def test_stun_server_ignores_garbage_and_responses():
    sim = Simulator()
    srv = sim.add_stun_server(SERVER1)
    p = probe_on(sim.add_host("198.51.100.1"), 1000)
    p.send(SERVER1, 3478, b"\x00\x01not stun at all")
    w = stun.Writer(bytearray(32)).start(stun.BINDING_SUCCESS, b"r" * 12)
    p.send(SERVER1, 3478, bytes(w.view()))
    sim.kick(p)
    sim.advance(100)
    assert srv.served == 0 and p.got == [] and p.mapped == []
