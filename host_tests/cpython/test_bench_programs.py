"""The programs `make bench` runs on the MicroPython unix ports
(tools/mpbench/), each briefly on every port this machine has, read the
way tools/bench_device.py reads them. CPython only (it drives subprocesses)."""

import asyncio

import pytest

import bench_device


@pytest.fixture(scope="module", params=[0, 1], ids=["mp64", "mp32"])
def port(request, tmp_path_factory):
    ports, missing = bench_device.ports(str(tmp_path_factory.mktemp("bench")))
    if request.param >= len(ports):
        pytest.skip(missing)
    p = ports[request.param]
    p.prepare(lambda text: None)
    return p


def test_imports_reports_each_module_and_the_total(port):
    per, total = port.import_cost(bench_device.CORE, ".mpy")
    assert list(per) == bench_device.CORE and all(v > 0 for v in per.values())
    assert total >= sum(per.values()) * 0.9
    per_rom, total_rom = port.import_cost(bench_device.CORE, "ROMFS")
    assert list(per_rom) == bench_device.CORE and total_rom < total  # bytecode stays in the image


def test_session_connects_and_meters_every_kind_of_call(port):
    r = port.run(["session", "6", "_on_request,parse,stun_mac,fingerprint_into"], "1M")
    assert r.returncode == 0, r.stderr
    res = bench_device.parse_session(r.stdout)
    assert res["connected_ms"] is not None and res["states"][2] == 0  # no internal errors
    assert res["states"][0] in ("connected", "completed")
    per_check, steady = bench_device.check_bytes(res)
    assert per_check is not None and steady is not None and steady <= 512  # issue 7's budget, per port
    funcs = {f[0]: f[1:] for f in res["funcs"]}
    assert set(funcs) == {"_on_request", "parse", "stun_mac", "fingerprint_into"}
    assert funcs["_on_request"][0] > 0 and funcs["_on_request"][1] == funcs["_on_request"][0]  # once per check
    assert len(res["trace"]) == 60


def test_cycles_connect_and_close(port):
    res = port.cycles(5)
    assert res["ok"] and res["n"] == 5 and res["failures"] == 0 and len(res["values"]) == 5


def test_camera_streams_to_a_viewer_and_samples_the_heap(port):
    run = asyncio.run(port.camera("512K", 10, 40, sampled=True))
    assert run["passed"] and run["frames"] >= 10, run["error"]
    assert {"start", "imports", "app"} <= set(run["stages"]) and run["samples"]


def test_datapath_times_every_way_and_meters_the_connections(port):
    res = port.datapath(200)
    ways = {(kind, way) for kind in ("SEND", "RECV") for way in ("conn", "conn_nowait", "raw")}
    assert ways <= set(res) and res["lost"] == 0
    assert all(res[w][0] > 0 and res[w][1] is not None for w in ways)
    assert res[("SEND", "conn_nowait")][1] == 0  # issue 19's budget: nothing per datagram sent


def test_datapath_runs_on_cpython_too():
    res = bench_device.cpython_datapath(200)
    assert res[("SEND", "conn_nowait")][0] > 0 and res[("SEND", "conn_nowait")][1] is None
    assert res["lost"] == 0


def test_camera_rate_reports_frames_that_arrived(port):
    best, results = asyncio.run(port.max_frame_rate(30000, [30], lambda text: None, seconds=1.0))
    assert best == 30 and results[30]["dropped"] == 0 and results[30]["fps"] >= 0.95 * 30


def test_relay_cost_times_udp_tcp_and_tls_on_every_runtime(tmp_path):
    ports, _ = bench_device.ports(str(tmp_path))
    for p in ports:
        p.prepare(lambda text: None)
    found = bench_device.relay_costs(ports, rounds=3)
    for name in ["CPython"] + [p.name + " port" for p in ports]:
        for transport in bench_device.RELAY_TRANSPORTS:
            ms, heap = found[(name, transport)]
            assert ms >= 0 and (heap is None) == (name == "CPython"), (name, transport, ms, heap)
            assert heap is None or heap > 1000


def test_grant_cost_reports_the_heap_and_every_step(port):
    costs = port.grant_costs(3)
    assert costs["MODULE"] > 0 and costs["GATE"] > 0 and costs["SESSION"] > 0
    assert {"hello", "admit", "seal", "check"} <= set(costs)
    assert all(costs[step][0] > 0 and costs[step][1] >= 0 for step in ("hello", "admit", "seal", "check"))
