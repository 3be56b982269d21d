"""Power from simulated activity: the workload's beats, the simulated toggle rates (against
an independent count from the drive plan), the annotation of every flip-flop, and OpenSTA's
power responding as it must to activity and clock period.
"""

from __future__ import annotations

import numpy as np
import pytest

from if4mac.golden import run
from if4mac.golden.quantize import quantize, stimulus_from_quantized
from if4mac.golden.tensors import example_tensor
from if4mac.sim.plan import drive_plan
from if4mac.synth.designs import mac_design
from if4mac.synth.libraries import find_library
from if4mac.synth.power import (example_workload, gate_activity, lane_stream, run_power,
                                tensor_workload)


def test_lane_stream_splits_blocks_into_beats():
    acts = example_tensor("gaussian", (2, 32), seed=3)
    wts = example_tensor("gaussian", (2, 32), seed=4)
    s16 = stimulus_from_quantized(quantize(acts, "if4"), quantize(wts, "if4"), "if4")
    s4 = lane_stream(s16, 4)
    assert len(s4) == 4 * len(s16) and s4.block_size == 4
    for j in range(len(s16)):
        # The four 4-lane beats of a 16-element beat, in order, with its scales.
        assert np.array_equal(np.concatenate([s4.a[4 * j + k] for k in range(4)]), s16.a[j])
        assert np.array_equal(np.concatenate([s4.w[4 * j + k] for k in range(4)]), s16.w[j])
        assert all(s4.a_sf[4 * j + k] == s16.a_sf[j] for k in range(4))
        assert s4.first[4 * j] == s16.first[j] and not s4.first[4 * j + 1:4 * j + 4].any()
    # Same segments, so the same number of results.
    assert len(run(s4)) == len(run(s16))
    with pytest.raises(ValueError, match="must divide 16"):
        lane_stream(s16, 3)


def test_tensor_workload_reads_safetensors(tmp_path):
    from safetensors.numpy import save_file

    w = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    path = tmp_path / "layer.safetensors"
    save_file({"w": w, "b": w[0]}, str(path))
    s = tensor_workload("nvfp4", 2, path, tensor="w")
    # 4 activation rows x 3 weight rows x (32 / 16) blocks of 8 two-lane beats, plus the
    # closing beat split the same way.
    assert len(s) == (4 * 3 * 2 + 1) * 8
    with pytest.raises(ValueError, match="'nope'"):
        tensor_workload("nvfp4", 2, path, tensor="nope")
    save_file({"w": np.ones((2, 8), np.float32)}, str(tmp_path / "small.safetensors"))
    with pytest.raises(ValueError, match="at least 16"):
        tensor_workload("nvfp4", 2, tmp_path / "small.safetensors")


def _short(stream, beats: int):
    """The first ``beats`` beats (cut at a segment start, so segments stay whole)."""
    from if4mac.golden import Stream

    starts = np.flatnonzero(stream.first)
    n = int(starts[starts <= beats][-1]) + 1
    return Stream(stream.unit, stream.en[:n], stream.first[:n], stream.a[:n], stream.w[:n],
                  stream.a_sf[:n], stream.w_sf[:n])


@pytest.fixture(scope="module")
def activity2(mac2_asic, synth_dir, tmp_path_factory):
    """Gate-level activity of the block-2 IF4 netlist of the flow tests on 400 beats of
    the built-in workload."""
    des = mac_design("if4", 2, "pipelined")
    assert mac2_asic["verilog_sha256"] == des.sha256
    netlist = synth_dir / "asic" / mac2_asic["name"] / f"{des.name}.netlist.v"
    stream = _short(example_workload("if4", 2), 400)
    act = gate_activity(des, stream, netlist, find_library("nangate45").path,
                        tmp_path_factory.mktemp("act"))
    return des, stream, netlist, act


def test_gate_activity_of_the_ports_matches_the_plan(activity2):
    des, stream, _, act = activity2
    plan = drive_plan(stream, des.latency)
    assert act["level"] == "gate" and act["cycles"] == len(plan)
    assert act["lane_products"] == 2 * int(stream.en.sum())
    # The netlist computed the golden results (checked inside gate_activity).
    assert act["results_checked"] == len(run(stream)) > 0
    # Independent count: bit flips between consecutive cycles of what the plan drives.
    a_bits = np.array([[(int(v) >> i) & 1 for i in range(4)] for v in plan.a[:, 0]])
    toggles = np.abs(np.diff(a_bits, axis=0)).sum(axis=0) / len(plan)
    sim = np.array(act["signals"]["a_in"][:4])
    assert np.allclose(sim[:, 0], toggles, atol=1e-6)
    # Time high: each value is held one cycle (shifted half a cycle from the edges).
    assert np.allclose(sim[:, 1], a_bits.mean(axis=0), atol=2 / len(plan))
    # Internal nets of the blocks are there too, named as in the netlist.
    assert any(k.startswith("lane_acc_0/") for k in act["signals"])


def test_power_from_activity(activity2, mac2_asic):
    des, _, netlist, act = activity2
    lib = find_library("nangate45")

    def power(activity, clock_ps, sub):
        return run_power(netlist=netlist, top=des.name, library=lib, activity=activity,
                         clock_ps=clock_ps, workdir=netlist.parent / sub)

    p = power(act, 5000.0, "power-a")
    # Every cell got the activity of its output net from the simulation.
    assert p["annotated"]["cells"] == p["annotated"]["cells_total"] \
        == mac2_asic["area"]["cells"]
    # (OpenSTA prints each cell's powers to 8 digits: sums agree to that.)
    assert p["total_w"] == pytest.approx(p["internal_w"] + p["switching_w"] + p["leakage_w"],
                                         rel=1e-6)
    assert p["leakage_w"] > 0 and p["dynamic_w"] > p["leakage_w"]
    assert p["energy_per_lane_product_pj"] == pytest.approx(
        p["total_w"] * 5000e-12 * act["cycles"] / act["lane_products"] * 1e12)

    # Nothing switching but the clock: no switching power, only the flip-flops' clock pins.
    quiet = dict(act, signals={k: [[0.0, d] for _, d in v] for k, v in act["signals"].items()})
    q = power(quiet, 5000.0, "power-q")
    assert q["switching_w"] < 1e-9 and q["dynamic_w"] < 0.5 * p["dynamic_w"]
    assert q["leakage_w"] == pytest.approx(p["leakage_w"], rel=1e-9)
    # Activities are per clock cycle: twice the period, half the dynamic power.
    slow = power(act, 10000.0, "power-s")
    assert slow["dynamic_w"] == pytest.approx(p["dynamic_w"] / 2, rel=1e-6)
    assert slow["leakage_w"] == pytest.approx(p["leakage_w"], rel=1e-9)
    with pytest.raises(ValueError, match="gate-level"):
        power(dict(act, level="rtl"), 5000.0, "power-x")
