"""The testbenches must fail on a wrong design: the real MAC wrapped in small Verilog faults
(one result off by an ulp, every result a cycle late, one result dropped; for the shared tree,
``overrun`` a cycle late or never raised), on Icarus, through both the cocotb testbench and
the plain Verilog one, on a stream with INT4 blocks. Each must be caught and reported with the
segment (or the cycle) it hit.
"""

from __future__ import annotations

import pytest

from if4mac.golden import run
from if4mac.sim.fast import build_fast, run_fast
from if4mac.sim.runner import Design, build, design_verilog, run_job
from if4mac.sim.scenarios import make_scenario

from .conftest import BUILD_ROOT

FAULTS = {
    # The fourth result (index 3) with its last bit flipped.
    "flip": "assign acc = core_acc ^ {31'd0, count == 8'd3};\n"
            "  assign done = core_done;",
    # Every result one cycle late.
    "late": "reg [31:0] acc_q; reg done_q;\n"
            "  always @(posedge clk or negedge rst_n)\n"
            "    if (!rst_n) begin acc_q <= 32'd0; done_q <= 1'b0; end\n"
            "    else begin acc_q <= core_acc; done_q <= core_done; end\n"
            "  assign acc = acc_q;\n  assign done = done_q;",
    # The third result (index 2) never signalled.
    "drop": "assign acc = core_acc;\n  assign done = core_done & (count != 8'd2);",
}


#: Faults of the shared tree's sticky overrun output (the results themselves are right).
OVERRUN_FAULTS = {
    # Raised one cycle later than the hardware should: only a per-edge check sees it.
    "overrun_late": "reg ov_q;\n"
                    "  always @(posedge clk or negedge rst_n)\n"
                    "    if (!rst_n) ov_q <= 1'b0; else ov_q <= core_overrun;\n"
                    "  assign overrun = ov_q;",
    # Never raised: a lost result would go unreported.
    "overrun_stuck": "assign overrun = 1'b0;",
}


def faulty_design(unit: str, fault: str, block_size: int = 16) -> Design:
    shared = fault in OVERRUN_FAULTS
    core = design_verilog(unit, block_size, "shared" if shared else "pipelined",
                          build_root=BUILD_ROOT)
    ov_port = ", overrun" if shared else ""
    ov_decl = "output overrun;\n  wire core_overrun;" if shared else ""
    ov_conn = ", .overrun(core_overrun)" if shared else ""
    body = (OVERRUN_FAULTS[fault] + "\n  assign acc = core_acc;\n  assign done = core_done;"
            if shared else FAULTS[fault])
    wrapper = f"""
module faulty_mac(clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done{ov_port});
  input clk, rst_n, en, first;
  input [{4 * block_size - 1}:0] a_in, w_in;
  input [7:0] a_sf, w_sf;
  output [31:0] acc;
  output done;
  {ov_decl}
  wire [31:0] core_acc;
  wire core_done;
  {core.toplevel} core (.clk(clk), .rst_n(rst_n), .en(en), .first(first), .a_in(a_in),
    .a_sf(a_sf), .w_in(w_in), .w_sf(w_sf), .acc(core_acc), .done(core_done){ov_conn});
  // Results so far: during result k's done cycle, count is k.
  reg [7:0] count;
  always @(posedge clk or negedge rst_n)
    if (!rst_n) count <= 8'd0;
    else if (core_done) count <= count + 8'd1;
  {body}
endmodule
"""
    return Design(unit, block_size, core.reduction, "faulty_mac", core.latency,
                  core.verilog + wrapper)


@pytest.fixture(scope="module")
def stream():
    """INT4 and FP4 blocks mixed (28 of its 57 beats have an INT4 activation block)."""
    s = make_scenario("mixed_blocks", "if4", 16, 1, 0.1)
    assert ((s.a_sf >> 7) & s.en).sum() >= 10 and len(run(s)) >= 4
    return s


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_cocotb_testbench_catches_a_faulty_design(fault, stream):
    built = build(faulty_design("if4", fault), "icarus", build_root=BUILD_ROOT)
    out = run_job(built, stimulus=stream)["run_stimulus"]
    assert out.status == "failed"
    want = run(stream)
    report = out.report
    assert report.startswith("RTL and golden disagree:"), report
    if fault == "flip":
        bits = int(want.bits[3])
        assert f"segment 3 (stimulus beats {want.start_beat[3]}..{want.close_beat[3] - 1}" \
            in report
        assert f"expected 0x{bits:08x}" in report and f"got 0x{bits ^ 1:08x}" in report
        assert "1 mismatches in all (1 value)" in report
    elif fault == "late":
        assert "segment 0" in report and "came 7 cycles after the closing beat" in report
    else:
        assert "segment 2" in report and "missing" in report


@pytest.mark.parametrize("fault", ["flip", "drop"])
def test_verilog_testbench_catches_a_faulty_design(fault, stream):
    built = build_fast(faulty_design("if4", fault), "icarus", build_root=BUILD_ROOT)
    out = run_fast(built, stream)
    assert not out.passed
    assert ("segment 3" if fault == "flip" else "segment 2") in out.report
    assert len(out.results) == len(run(stream)) - (fault == "drop")


@pytest.mark.parametrize("fault", sorted(OVERRUN_FAULTS))
def test_verilog_testbench_checks_overrun_per_edge(fault):
    """Back-to-back one-beat segments overflow the shared tree; the results are right, only
    the overrun output is wrong, and the per-edge check names the cycle."""
    s = make_scenario("single_beat_segments", "if4", 16, 1, 0.1)
    want = run(s, reduction="shared")
    assert len(want.overrun_beat) > 0
    good = build_fast(design_verilog("if4", 16, "shared", BUILD_ROOT), "icarus",
                      build_root=BUILD_ROOT)
    assert run_fast(good, s).passed
    out = run_fast(build_fast(faulty_design("if4", fault), "icarus", build_root=BUILD_ROOT), s)
    assert not out.passed
    assert out.results == want.hex()          # every result right: only overrun is wrong
    assert "overrun change 0" in out.report, out.report


def test_verilator_testbench_catches_a_faulty_design():
    """The same on Verilator (its own build of the plain Verilog testbench, block size 2 to keep
    the build short), with INT4 blocks: the flipped fourth result is named."""
    s = make_scenario("mixed_blocks", "if4", 2, 1, 0.1)
    want = run(s)
    assert len(want) >= 4 and ((s.a_sf >> 7) & s.en).any()
    out = run_fast(build_fast(faulty_design("if4", "flip", 2), "verilator",
                              build_root=BUILD_ROOT), s)
    assert not out.passed
    bits = int(want.bits[3])
    assert "segment 3" in out.report and f"got 0x{bits ^ 1:08x}" in out.report, out.report
    assert len(out.results) == len(want)


@pytest.mark.parametrize("fault", sorted(OVERRUN_FAULTS))
def test_cocotb_testbench_checks_overrun_per_edge(fault):
    """The same faults through the cocotb testbench (issue 17, item 6): its flag monitor
    compares every change of overrun with golden's, so an overrun one cycle late (right at
    the end of the run) fails as well as one never raised."""
    s = make_scenario("single_beat_segments", "if4", 16, 1, 0.1)
    want = run(s, reduction="shared")
    assert len(want.overrun_beat) > 0
    out = run_job(build(faulty_design("if4", fault), "icarus", build_root=BUILD_ROOT),
                  stimulus=s)["run_stimulus"]
    assert out.status == "failed"
    assert out.results == want.hex()          # every result right: only overrun is wrong
    assert "overrun change 0" in out.report, out.report
