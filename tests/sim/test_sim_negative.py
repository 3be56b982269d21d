"""The testbenches must fail on a wrong design: the real MAC wrapped in small Verilog faults
(one result off by an ulp, every result a cycle late, one result dropped), on Icarus, through
both the cocotb testbench and the plain Verilog one. Each must be caught and reported with the
segment it hit.
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


def faulty_design(unit: str, fault: str) -> Design:
    core = design_verilog(unit, 16, build_root=BUILD_ROOT)
    wrapper = f"""
module faulty_mac(clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done);
  input clk, rst_n, en, first;
  input [63:0] a_in, w_in;
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
  {FAULTS[fault]}
endmodule
"""
    return Design(unit, 16, "pipelined", "faulty_mac", core.latency, core.verilog + wrapper)


@pytest.fixture(scope="module")
def stream():
    return make_scenario("all_fp4", "if4", 16, 1, 0.1)


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
