"""The native testbench (``if4mac.sim.native``): its file formats and piece-cutting without a
simulator, then the compiled harness on the B = 16 MAC against golden, whole and in pieces,
and on faults it must catch: a wrong expected value, and a netlist wrapped in Verilog faults
(a flipped result bit, a dropped result).

Two Verilator builds: the B = 16 pipelined MAC (about a minute on two cores; cached in
build/sim) and a B = 2 faulty wrapper (a few seconds).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from if4mac.golden import Results, Stream, random_stream, run, save_stimulus
from if4mac.sim import arch as sim_arch
from if4mac.sim.native import (RESULT_DTYPE, _joined, _pack_nibbles, _piece, build_native,
                               read_native_results, run_native, split_points,
                               write_native_plan)
from if4mac.sim.plan import drive_plan, pack_lanes
from if4mac.sim.runner import Design, design_verilog
from if4mac.sim.scenarios import make_scenario

from .conftest import BUILD_ROOT
from .test_sim_cli import if4mac

LATENCY = 6


# -- no simulator -------------------------------------------------------------------------

@pytest.mark.parametrize("block_size", [1, 2, 3, 16, 17])
def test_plan_file_packs_lanes_as_the_ports_do(tmp_path, block_size):
    s = random_stream("if4", 20, block_size=block_size, seed=block_size, bubble_prob=0.2)
    plan = drive_plan(s, LATENCY, gap_prob=0.3, seed=2)
    write_native_plan(plan, tmp_path / "p.bin")
    raw = (tmp_path / "p.bin").read_bytes()
    lanes = (block_size + 1) // 2
    assert raw[:8] == b"IF4PLAN1"
    assert np.frombuffer(raw[8:16], "<u4").tolist() == [block_size, lanes]
    rec = np.frombuffer(raw[16:], np.uint8).reshape(len(plan), 3 + 2 * lanes)
    assert rec[:, 0].tolist() == (plan.rst_n * 4 + plan.en * 2 + plan.first * 1).tolist()
    assert rec[:, 1].tolist() == plan.a_sf.tolist() and rec[:, 2].tolist() == plan.w_sf.tolist()
    # The port value, read little-endian, is the Verilog testbench's packed word.
    a_ports = [int.from_bytes(r[3:3 + lanes].tobytes(), "little") for r in rec]
    w_ports = [int.from_bytes(r[3 + lanes:].tobytes(), "little") for r in rec]
    assert a_ports == pack_lanes(plan.a) and w_ports == pack_lanes(plan.w)
    assert _pack_nibbles(plan.a).shape == (len(plan), lanes)


def test_result_file_keeps_whole_records(tmp_path):
    rec = np.zeros(3, RESULT_DTYPE)
    rec["cycle"], rec["acc"] = [7, 9, 300], [1, 0xFFFFFFFF, 5]
    (tmp_path / "o.bin").write_bytes(rec.tobytes() + b"\x01\x02")   # a record being written
    got = read_native_results(tmp_path / "o.bin")
    assert got["cycle"].tolist() == [7, 9, 300] and got["acc"].tolist() == [1, 0xFFFFFFFF, 5]
    assert len(read_native_results(tmp_path / "missing.bin")) == 0


def _pieces_results(s: Stream, pieces: int) -> tuple[list, np.ndarray]:
    cuts = split_points(s, pieces).tolist()
    starts, stops = [0] + cuts, [c + 1 for c in cuts] + [len(s)]
    return [run(_piece(s, lo, hi)) for lo, hi in zip(starts, stops)], np.array(cuts)


@pytest.mark.parametrize("seed", range(4))
def test_pieces_give_every_result_once(seed):
    """Golden on the pieces, concatenated, is golden on the whole stream: the cuts sit on
    enabled first=1 beats, never on a reset."""
    s = make_scenario("reset_mid_segment", "if4", 16, seed, 0.2)
    parts, cuts = _pieces_results(s, 5)
    assert 1 <= len(cuts) <= 4
    assert np.all(s.en[cuts] & s.first[cuts]) and not np.any(s.reset[cuts])
    whole = run(s)
    assert np.concatenate([p.bits for p in parts]).tolist() == whole.bits.tolist()


def test_split_points_where_no_cut_is_possible():
    s = random_stream("nvfp4", 1, seed=0)
    assert len(split_points(s, 1)) == 0
    first_only = Stream("nvfp4", np.ones(4, bool), np.array([1, 0, 0, 0], bool),
                        np.zeros((4, 16), np.uint8), np.zeros((4, 16), np.uint8),
                        np.zeros(4, np.uint8), np.zeros(4, np.uint8))
    assert len(split_points(first_only, 3)) == 0


def test_joined_plan_maps_cycles_to_rows():
    s = random_stream("if4", 30, seed=5, bubble_prob=0.1)
    cuts = split_points(s, 3).tolist()
    starts, stops = [0] + cuts, [c + 1 for c in cuts] + [len(s)]
    plans = [drive_plan(_piece(s, lo, hi), LATENCY) for lo, hi in zip(starts, stops)]
    plan, close_cycle, offsets = _joined(plans, starts, len(s))
    assert len(plan) == sum(len(p) for p in plans) == offsets[-1]
    for row in range(len(s)):
        assert plan.row[plan.cycle_of_row[row]] == row
        assert plan.row[close_cycle[row]] == row
    for i, cut in enumerate(cuts):
        # A cut row closes in piece i (its last row) and opens piece i + 1 (its first row).
        assert close_cycle[cut] == offsets[i] + plans[i].cycle_of_row[-1]
        assert plan.cycle_of_row[cut] == offsets[i + 1] + plans[i + 1].cycle_of_row[0]


def test_bad_arguments():
    design = Design("if4", 16, "shared", "top", 6, "")
    built = type("B", (), {"design": design})()
    s = random_stream("if4", 3, seed=0)
    with pytest.raises(ValueError, match="jobs > 1 needs the pipelined tree"):
        run_native(built, s, jobs=2)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_native(built, s, jobs=0)
    with pytest.raises(ValueError, match="stimulus is for nvfp4"):
        run_native(built, random_stream("nvfp4", 3, seed=0))
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        build_native(design, threads=0)
    with pytest.raises(ValueError, match="block size 17 is over 16"):
        build_native(Design("if4", 17, "pipelined", "top", 6, ""))
    empty = random_stream("if4", 0, seed=0, close=False)
    assert len(empty) == 0 and len(split_points(empty, 4)) == 0


# -- the harness on the MAC -----------------------------------------------------------------

@pytest.fixture(scope="module")
def built16():
    return build_native(design_verilog("if4", 16, "pipelined", BUILD_ROOT), build_root=BUILD_ROOT)


@pytest.fixture(scope="module")
def mixed_stream():
    """Every scenario's kind of beat, back to back: random codes and scales, INT/FP mixes,
    zero and maximal scales, resets mid-segment, single-beat segments, INT4 code 0x8, and
    a quantized dot product (about 15,000 beats)."""
    return concatenated([make_scenario(name, "if4", 16, 3, 1.0) for name in [
        "random", "mixed_blocks", "zero_scales", "max_scales", "reset_mid_segment",
        "single_beat_segments", "invalid_codes", "quantized_student_t_hadamard"]])


def concatenated(parts: list[Stream]) -> Stream:
    """The streams back to back, each starting with a reset as it would on its own."""
    cat = lambda name: np.concatenate([np.asarray(getattr(p, name)) for p in parts])  # noqa: E731
    reset = np.concatenate([np.zeros(len(p), bool) if p.reset is None
                            else np.asarray(p.reset, bool) for p in parts])
    reset[np.cumsum([0] + [len(p) for p in parts[:-1]])] = True
    return Stream(parts[0].unit, cat("en"), cat("first"), cat("a"), cat("w"), cat("a_sf"),
                  cat("w_sf"), reset)


@pytest.mark.parametrize("jobs", [1, 3])
def test_native_harness_matches_golden(built16, mixed_stream, jobs):
    out = run_native(built16, mixed_stream, jobs=jobs)
    want = run(mixed_stream)
    assert out.passed, out.report
    assert out.results == want.hex() and len(want) > 1000
    assert out.pieces == (1 if jobs == 1 else 3)
    assert out.beats == int(mixed_stream.en.sum())


def test_native_harness_on_an_empty_stream(built16):
    out = run_native(built16, random_stream("if4", 0, seed=0, close=False), jobs=2)
    assert out.passed and out.results == [] and out.beats == 0


def test_native_harness_catches_a_wrong_expected_value(built16, mixed_stream, monkeypatch):
    """The same run scored against golden with one result's last bit flipped and another
    result removed: both must be reported, naming the segments."""
    real = run(mixed_stream)
    flip, gone = 17, 40

    def corrupted(stream, **kw):
        out = run(stream, **kw)
        bits = out.bits.copy()
        bits[flip] ^= 1
        keep = np.arange(len(bits)) != gone
        return Results(bits[keep], out.start_beat[keep], out.close_beat[keep])

    monkeypatch.setattr(sim_arch, "run", corrupted)   # golden, as every testbench calls it
    out = run_native(built16, mixed_stream, jobs=2)
    assert not out.passed
    first = out.report.splitlines()[0]
    assert first.startswith(f"RTL and golden disagree: segment {flip} (stimulus beats "
                            f"{real.start_beat[flip]}..{real.close_beat[flip] - 1}")
    assert f"expected 0x{int(real.bits[flip]) ^ 1:08x}" in first
    assert f"got 0x{int(real.bits[flip]):08x}" in first
    # The removed prediction leaves one RTL result with no partner.
    assert "unexpected" in out.report
    assert out.results == real.hex()


def faulty_b2() -> Design:
    """The B = 2 MAC with two Verilog faults: the fourth result (index 3) has its last bit
    flipped and the seventh (index 6) is never signalled."""
    core = design_verilog("if4", 2, "pipelined", BUILD_ROOT)
    wrapper = f"""
module faulty_mac(clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done);
  input clk, rst_n, en, first;
  input [7:0] a_in, w_in;
  input [7:0] a_sf, w_sf;
  output [31:0] acc;
  output done;
  wire [31:0] core_acc;
  wire core_done;
  {core.toplevel} core (.clk(clk), .rst_n(rst_n), .en(en), .first(first), .a_in(a_in),
    .a_sf(a_sf), .w_in(w_in), .w_sf(w_sf), .acc(core_acc), .done(core_done));
  // Results so far: during result k's done cycle, count is k.
  reg [7:0] count;
  always @(posedge clk or negedge rst_n)
    if (!rst_n) count <= 8'd0;
    else if (core_done) count <= count + 8'd1;
  assign acc = core_acc ^ {{31'd0, count == 8'd3}};
  assign done = core_done & (count != 8'd6);
endmodule
"""
    return Design("if4", 2, "pipelined", "faulty_mac", core.latency, core.verilog + wrapper)


def test_native_harness_catches_a_faulty_netlist():
    built = build_native(faulty_b2(), build_root=BUILD_ROOT)
    s = random_stream("if4", 50, block_size=2, seed=4, bubble_prob=0.1)
    want = run(s)
    out = run_native(built, s)
    assert not out.passed
    lines = out.report.splitlines()
    assert lines[0].startswith(f"RTL and golden disagree: segment 3 (stimulus beats "
                               f"{want.start_beat[3]}..{want.close_beat[3] - 1}, closed by "
                               f"beat {want.close_beat[3]}")
    assert f"expected 0x{int(want.bits[3]):08x}" in lines[0]
    assert f"got 0x{int(want.bits[3]) ^ 1:08x}" in lines[0]
    # After the dropped result every later one pairs with the wrong prediction: segment 6 is
    # the next mismatch, and one prediction is left without a result.
    assert len(out.results) == len(want) - 1
    assert out.results[:6] == [want.hex()[i] if i != 3 else f"0x{int(want.bits[3]) ^ 1:08x}"
                               for i in range(6)]
    assert "missing" in lines[1]


def test_cli_native(built16, tmp_path):
    s = make_scenario("random", "if4", 16, 8, 0.2)
    path = tmp_path / "stim.json"
    save_stimulus(s, path)
    golden = if4mac("golden", "--stimulus", str(path))
    for jobs in ("1", "2"):
        out = if4mac("sim", "--unit", "if4", "--stimulus", str(path), "--testbench", "native",
                     "--jobs", jobs)
        assert out.returncode == 0, out.stderr
        assert out.stdout == golden.stdout and len(json.loads(out.stdout)) > 50


@pytest.mark.parametrize("args, message", [
    (["--testbench", "native", "--simulator", "icarus"],
     "--testbench native needs --simulator verilator"),
    (["--testbench", "sv", "--jobs", "2"], "--jobs needs --testbench native"),
    (["--testbench", "native", "--jobs", "2", "--reduction", "shared"],
     "--jobs needs --reduction pipelined"),
    (["--testbench", "native", "--jobs", "0"], "Invalid value for '--jobs'"),
])
def test_cli_native_bad_usage(tmp_path, args, message):
    path = tmp_path / "stim.json"
    save_stimulus(random_stream("if4", 3, seed=0), path)
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(path), *args)
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""
    if not message.startswith("Invalid value"):      # click's own usage errors have a header
        assert out.stderr.count("\n") == 1
