# amaranth: UnusedElaboratable=no
"""The netlist check of ``if4mac report --external``, on a small MAC written here.

``mini_mac`` is an NVFP4 MAC of block size 1 with the reference design's port list (lanes as
unpacked arrays) built from the ChipWare stand-ins, written independently of golden: element
and scale decodes as case tables, the products and the lane accumulation with
``CW_fp_mult`` / ``CW_fp_add``, and a result register chain giving golden's latency. Its
mapped netlist must pass the check (golden stream, value and cycle), and the check must
fail on a mutated netlist and on a wrong latency. (The authors' testbench through the
reference shim runs at block 16 only, on their checkout: docs/external.md.)
"""

from __future__ import annotations

import json
import re

import pytest

from if4mac.golden import latency
from if4mac.hdl.chipware import chipware_standins

MINI_MAC = """\
module mini_mac #(parameter BLOCK_SIZE = 1) (
    input  logic        clk, rst_n, en, first,
    input  logic [3:0]  a_in [BLOCK_SIZE-1:0],
    input  logic [7:0]  a_sf,
    input  logic [3:0]  w_in [BLOCK_SIZE-1:0],
    input  logic [7:0]  w_sf,
    output logic [31:0] acc,
    output logic        done
);
  function automatic logic [31:0] e2m1(input logic [3:0] c);
    logic [30:0] mag;
    case (c[2:0])
      3'd0: mag = 31'h00000000;  3'd1: mag = 31'h3F000000;
      3'd2: mag = 31'h3F800000;  3'd3: mag = 31'h3FC00000;
      3'd4: mag = 31'h40000000;  3'd5: mag = 31'h40400000;
      3'd6: mag = 31'h40800000;  default: mag = 31'h40C00000;
    endcase
    return {c[3], mag};
  endfunction
  // E4M3 in binary32; 0x7F reads as 448 (mantissa 6), exponent 0 is subnormal (man * 2^-9).
  function automatic logic [31:0] e4m3(input logic [6:0] b);
    logic [2:0] man;
    man = (b == 7'h7F) ? 3'd6 : b[2:0];
    if (b[6:3] != 4'd0) return {1'b0, 8'(b[6:3] + 8'd120), man, 20'd0};
    case (man)
      3'd0: return 32'h00000000;
      3'd1: return {1'b0, 8'd118, 23'd0};
      3'd2: return {1'b0, 8'd119, 23'd0};
      3'd3: return {1'b0, 8'd119, 2'b10, 21'd0};
      3'd4: return {1'b0, 8'd120, 23'd0};
      3'd5: return {1'b0, 8'd120, 2'b01, 21'd0};
      3'd6: return {1'b0, 8'd120, 2'b10, 21'd0};
      default: return {1'b0, 8'd120, 2'b11, 21'd0};
    endcase
  endfunction

  logic [31:0] p, sf, m, sum;
  CW_fp_mult #(23, 8, 0, 1, 0) mul_p  (.a(e2m1(a_in[0])), .b(e2m1(w_in[0])), .rnd(3'b000),
                                       .z(p), .status());
  CW_fp_mult #(23, 8, 0, 1, 0) mul_sf (.a(e4m3(a_sf[6:0])), .b(e4m3(w_sf[6:0])),
                                       .rnd(3'b000), .z(sf), .status());
  CW_fp_mult #(23, 8, 0, 1, 0) mul_m  (.a(p), .b(sf), .rnd(3'b000), .z(m), .status());

  logic        s1_valid, s1_first, open_seg, snap_valid, out_valid;
  logic [31:0] s1_m, lane, snap, out_q;
  CW_fp_add #(23, 8, 0, 0, 1) add (.a(lane), .b(s1_m), .rnd(3'b000), .z(sum), .status());

  always_ff @(posedge clk or negedge rst_n)
    if (!rst_n) begin
      s1_valid <= 0; s1_first <= 0; s1_m <= 0; lane <= 0; open_seg <= 0;
      snap <= 0; snap_valid <= 0; out_q <= 0; out_valid <= 0; acc <= 0; done <= 0;
    end else begin
      s1_valid <= en;
      s1_first <= first;
      s1_m <= m;
      snap_valid <= s1_valid && s1_first && open_seg;
      if (s1_valid) begin
        snap <= lane;
        lane <= s1_first ? s1_m : sum;
        open_seg <= 1;
      end
      out_q <= snap;
      out_valid <= snap_valid;
      acc <= out_q;
      done <= out_valid;
    end
endmodule
"""

#: Edges from a closing beat's sampling edge (into s1) to ``done``: snap, out_q, acc.
MINI_LATENCY = 3


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mapped netlist of ``mini_mac`` through the report's run store, as the report's
    external runs are."""
    from if4mac.synth.store import RunSpec, execute

    d = tmp_path_factory.mktemp("mini")
    (d / "mini_mac.sv").write_text(MINI_MAC)
    (d / "cw_reduced.v").write_text(chipware_standins("reduced"))
    rtl = {"files": [str(d / "cw_reduced.v"), str(d / "mini_mac.sv")], "top": "mini_mac",
           "params": {"BLOCK_SIZE": "1"}, "label": "mini nvfp4", "unit": "nvfp4"}
    spec = RunSpec(target="asic", design="rtl", unit="nvfp4", block_size=1, clock_ps=6000.0,
                   abc_delay_target=True, flat=True, rtl=json.dumps(rtl, sort_keys=True))
    rec = execute(spec, d / "store", d / "work")
    return spec, rec, d


def test_mini_mac_latency_is_goldens():
    # The check plays every external MAC at golden's latency (the authors' is the same).
    assert MINI_LATENCY == latency(1)


def test_netlist_check_passes_and_is_cached(mini):
    from if4mac.synth.external_rows import check_netlist

    spec, rec, d = mini
    c = check_netlist(rec, spec, d, d, segments=40, log=lambda m: None)
    assert c["tb"] is None            # the authors' vectors are block 16 only
    assert c["golden"] == (40, 40) and not c["cached"] and c["beats"] > 40 * 2
    assert check_netlist(rec, spec, d, d, segments=40, log=lambda m: None)["cached"]


def test_netlist_check_fails_on_a_mutated_netlist(mini, tmp_path):
    from if4mac.synth.external_rows import ExternalError, _netlist_path, check_netlist

    spec, rec, d = mini
    path = _netlist_path(rec, d)
    text = path.read_text()
    # One AND gate becomes an OR (same pins): a single wrong cell.
    mutated, n = re.subn(r"\bAND2_X1\b", "OR2_X1", text, count=1)
    assert n == 1
    work = tmp_path / "work" / rec["run_key"]["sha256"][:16] / rec["name"]
    work.mkdir(parents=True)
    (work / path.name).write_text(mutated)
    with pytest.raises(ExternalError, match="disagrees with golden"):
        check_netlist(rec, spec, tmp_path, tmp_path, segments=40, log=lambda m: None)


def test_wrong_latency_is_caught(mini):
    from if4mac.synth.external_rows import _netlist_path, golden_check_stream
    from if4mac.synth.gatesim import netlist_mac_design, play_netlist

    spec, rec, d = mini
    netlist = _netlist_path(rec, d).read_text()
    stream = golden_check_stream("nvfp4", 1, 20)
    out = play_netlist(netlist_mac_design(netlist, "mini_mac", "nvfp4", 1, MINI_LATENCY + 1),
                       stream, d / "late")
    assert not out.passed and "latency" in out.report


def _ext_record(unit, variant, area, period, seed=None):
    rtl = {"label": f"authors {unit}_mac, {variant} stand-ins", "unit": unit,
           "standins": variant, "top": f"{unit}_mac"}
    return {"role": "external", "target": "asic", "label": rtl["label"] + (
                f"-seed{seed}" if seed is not None else ""),
            "spec": {"abc_seed": seed, "rtl": json.dumps(rtl)},
            "design": {"top": f"{unit}_mac", "unit": unit},
            "area": {"total_um2": area, "flip_flops": 100},
            "timing": {"critical_path": {"min_period_ps": period},
                       "input_to_register": {"min_period_ps": period / 2},
                       "min_period_all_paths_ps": period},
            "cpu_s": 10.0}


def test_external_ratios_carry_the_measured_spread():
    """IF4/NVFP4 of the external rows: the ratio of the default-seed runs, widened by each
    unit's (max - min) / min over its repeats; the IEEE variant (no repeats) borrows the
    reduced runs' spread and says so."""
    from if4mac.synth.report_data import _external, _external_ratios

    runs = [_ext_record("nvfp4", "reduced", 1000.0, 4000.0),
            _ext_record("if4", "reduced", 1300.0, 4100.0),
            _ext_record("nvfp4", "reduced", 1020.0, 4200.0, seed=1),
            _ext_record("if4", "reduced", 1313.0, 4100.0, seed=1),
            _ext_record("nvfp4", "ieee", 2000.0, 5000.0),
            _ext_record("if4", "ieee", 2000.0, 5000.0)]
    data = {"runs": runs, "external": {"verified": {}}}
    rows = {r["standins"]: r for r in _external_ratios(data)}
    red, ieee = rows["reduced"], rows["ieee"]
    assert red["spread_from"] == "reduced" and ieee["spread_from"] == "reduced"
    assert red["area"]["ratio"] == pytest.approx(1.3)
    assert red["area"]["spread"] == {"nvfp4": pytest.approx(0.02), "if4": pytest.approx(0.01)}
    w = 1.02 * 1.01
    assert red["area"]["ratio_min"] == pytest.approx(1.3 / w)
    assert red["area"]["verdict"] == "IF4 larger"
    # Period: 4100/4000 = 1.025 against a 5 % NVFP4 spread.
    assert red["period"]["spread"]["nvfp4"] == pytest.approx(0.05)
    assert red["period"]["verdict"] == "not distinguishable"
    assert ieee["area"]["ratio"] == pytest.approx(1.0)
    assert ieee["area"]["verdict"] == "not distinguishable"
    # The rows table shows the default-seed runs only.
    assert len(_external(data)) == 4


def _twin_records(mini, workdir, *, mutate_second=False):
    """The report's view of two external runs of ``mini_mac`` (a default and a seed-7 run,
    as the noise repeats are) whose netlists sit in ``workdir``: the same cells, or in the
    second one AND gate turned into an OR."""
    import dataclasses
    import shutil

    from if4mac.synth.external_rows import _netlist_path

    spec, rec, d = mini
    src = _netlist_path(rec, d)
    runs, specs = [], []
    for n, (seed, fill) in enumerate(((None, None), (7, "e"))):
        s = dataclasses.replace(spec, abc_seed=seed)
        r = dict(rec, role="external", label=s.label(), spec={"abc_seed": seed, "rtl": spec.rtl})
        if fill:
            r["run_key"] = dict(rec["run_key"], sha256=fill * 64)
        dst = _netlist_path(r, workdir)
        dst.parent.mkdir(parents=True)
        shutil.copy(src, dst)
        if n:   # a netlist of its own (its own cached outcome), as a seed's run is
            text = dst.read_text() + "// the seed-7 run\n"
            dst.write_text(re.sub(r"\bAND2_X1\b", "OR2_X1", text, count=1)
                           if mutate_second else text)
        runs.append(r)
        specs.append(s)
    return {"runs": runs, "external": {"verified": {}}}, specs


def test_netlist_checks_run_on_two_dask_workers(mini, tmp_path):
    """The report's checks are Dask tasks: two workers' outcomes, in the report's order."""
    from if4mac.synth.external_rows import check_netlists

    data, specs = _twin_records(mini, tmp_path)
    lines = []
    check_netlists(data, specs, tmp_path, tmp_path, segments=30, workers=2, log=lines.append)
    checks = data["external"]["netlist_checks"]
    assert list(checks) == [r["label"] for r in data["runs"]]
    assert all(c["golden"] == (30, 30) and not c["cached"] for c in checks.values())
    assert len(lines) == 2 and all("golden stream 30/30" in ln for ln in lines)
    # Only the default-seed run names the design's verification.
    assert list(data["external"]["verified"]) == ["mini nvfp4"]
    # Nothing of the checks' folders is left but the two cached outcomes.
    assert sorted(p.suffix for p in (tmp_path / "checks").iterdir()) == [".json", ".json"]


def test_a_failing_check_stops_the_report_through_dask(mini, tmp_path):
    from if4mac.synth.external_rows import ExternalError, check_netlists

    data, specs = _twin_records(mini, tmp_path, mutate_second=True)
    with pytest.raises(ExternalError, match="disagrees with golden"):
        check_netlists(data, specs, tmp_path, tmp_path, segments=30, workers=2,
                       log=lambda m: None)
