"""The ASIC and ECP5 flows on small configurations: the results exist, are sane, and agree
with independent recounts.

The area reference (``ref_netlist_area``) recounts the mapped Verilog netlist's cell
instances, module by module through the hierarchy, and prices them from the Liberty file;
the flow itself reads Yosys's statistics instead, so the two meet only in the answer.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.synth.designs import BLOCK_ORDER, REGISTERS
from if4mac.synth.flow import synthesize
from if4mac.synth.libraries import find_library

MAC_BLOCKS = ("lane multipliers", "scale path", "product x scale multipliers",
              "lane accumulators", "reduction")


def ref_netlist_area(netlist: Path, top: str, liberty_cells) -> float:
    """Area of ``top`` from the netlist text: cell instances priced by the Liberty file."""
    text = netlist.read_text()
    modules = {}
    for mt in re.finditer(r"^module\s+\\?(\S+)\s*\(.*?^endmodule", text, re.S | re.M):
        body = mt.group(0)
        insts = re.findall(r"^\s+\\?(\S+)\s+\\?\S+\s*\(\s*$", body, re.M)
        modules[mt.group(1)] = insts
    memo = {}

    def area(mod):
        if mod not in memo:
            total = 0.0
            for cell in modules[mod]:
                total += area(cell) if cell in modules else liberty_cells[cell].area
            memo[mod] = total
        return memo[mod]

    return area(top)


def _check_timing(t):
    cp = t["critical_path"]
    assert math.isfinite(cp["min_period_ps"]) and cp["min_period_ps"] > 0
    assert cp["min_period_ps"] == pytest.approx(cp["arrival_ps"] + cp["setup_ps"], abs=0.2)
    assert cp["startpoint"].endswith("_reg") and cp["endpoint"].endswith("_reg")
    assert t["fmax_mhz"] == pytest.approx(1e6 / cp["min_period_ps"], rel=1e-3)
    # The critical path is the worst of the per-stage worst paths.
    assert cp["min_period_ps"] == max(s["min_period_ps"] for s in t["stages"])
    assert all(s["min_period_ps"] > 0 for s in t["stages"])


@pytest.mark.parametrize("library", ["nangate45", "osu018"])
def test_registered_multiplier_on_each_open_library(tmp_path, library):
    rec = synthesize(target="asic", design="regmul", width=8, library=library,
                     workdir=tmp_path)
    lib = find_library(library)
    area = rec["area"]
    assert area["flip_flops"] == 8 + 8 + 16
    assert area["blocks_um2"]["multiplier"] > 0 and area["blocks_um2"][REGISTERS] > 0
    netlist = tmp_path / rec["name"] / f"{rec['design']['top']}.netlist.v"
    assert area["total_um2"] == pytest.approx(
        ref_netlist_area(netlist, rec["design"]["top"], lib.info.cells), rel=1e-9)
    assert area["total_nand2"] == pytest.approx(area["total_um2"] / lib.nand2_area, abs=0.1)
    t = rec["timing"]
    _check_timing(t)
    # An 8 x 8 multiplier is tens of gates deep: between 0.1 and 20 ns in 45 to 180 nm.
    assert 100 < t["critical_path"]["min_period_ps"] < 20_000
    assert [s["stage"] for s in t["stages"]] == [2]   # input registers -> product register
    assert t["stages"][0]["blocks"] == ["multiplier"]
    assert rec["library"]["corner"] == lib.corner
    assert rec["git"]["commit"] and rec["tools"]["yosys"].startswith("Yosys")


def test_mac_asic_small(mac2_asic, synth_dir):
    rec = mac2_asic
    area = rec["area"]
    for block in MAC_BLOCKS + (REGISTERS,):
        assert area["blocks_um2"][block] > 0, block
    assert set(area["blocks_um2"]) <= set(BLOCK_ORDER)
    assert area["instances"] == {"lane multipliers": 2, "scale path": 1,
                                 "product x scale multipliers": 2, "lane accumulators": 2,
                                 "reduction": 1}
    assert sum(area["blocks_um2"].values()) == pytest.approx(area["total_um2"], abs=0.01)
    netlist = synth_dir / "asic" / rec["name"] / f"{rec['design']['top']}.netlist.v"
    lib = find_library("nangate45")
    assert area["total_um2"] == pytest.approx(
        ref_netlist_area(netlist, rec["design"]["top"], lib.info.cells), rel=1e-9)
    # Two lanes hold at least the p (16), m (32) and accumulator (32) words each.
    assert area["flip_flops"] >= 2 * (16 + 32 + 32) + 32
    t = rec["timing"]
    _check_timing(t)
    stages = [s["stage"] for s in t["stages"]]
    assert stages == list(range(1, len(stages) + 1))
    # input regs, products, scaled products, lanes, then one stage per tree level.
    assert stages[-1] == rec["design"]["latency"] + 2
    assert "lane accumulators" in {b for s in t["stages"] for b in s["blocks"]}


def test_mac_asic_io_paths(mac2_asic):
    """This project's MAC registers its inputs and outputs: OpenSTA's input-to-register and
    register-to-output paths (inputs driven by BUF_X1) exist and are short, there is no
    combinational input-to-output path, and the all-paths period is the critical path."""
    t = mac2_asic["timing"]
    crit = t["critical_path"]["min_period_ps"]
    inp, out = t["input_to_register"], t["register_to_output"]
    ports_in = ("a_in", "a_sf", "w_in", "w_sf", "en", "first")
    assert inp["startpoint"].split("[")[0] in ports_in and inp["endpoint"].endswith(("/D", "_reg"))
    assert out["startpoint"].endswith("_reg") or "/" in out["startpoint"]
    assert out["endpoint"].split("[")[0] in ("acc", "done")
    assert 0 < inp["min_period_ps"] < crit and 0 < out["min_period_ps"] < crit
    assert t["input_to_output"] is None
    assert t["min_period_all_paths_ps"] == crit
    assert t["io_constraints"] == {"input_delay_ps": 0.0, "output_delay_ps": 0.0,
                                   "input_driving_cell": "BUF_X1",
                                   "output_load": t["io_constraints"]["output_load"]}
    assert t["io_constraints"]["output_load"] > 0


def test_mac_ecp5_small(mac2_ecp5):
    rec = mac2_ecp5
    y, w, p = rec["yosys_cells"], rec["wrapper_cells"], rec["placed"]
    assert y["LUT4"] > 500 and y["TRELLIS_FF"] >= 2 * (16 + 32 + 32)
    # The wrapper adds its frame register and nothing in the MAC's paths.
    assert 0 < w["TRELLIS_FF"] <= rec["design"]["frame_width"]
    assert w["LUT4"] <= 4
    # nextpnr places exactly what Yosys produced, design and wrapper together. (IF4 reads
    # every input bit; for NVFP4 the frame bit of an ignored scale bit 7 may be dropped once
    # the design is flattened, one flip-flop fewer.)
    assert p["TRELLIS_FF"] == y["TRELLIS_FF"] + w["TRELLIS_FF"]
    assert p["MULT18X18D"] == y["MULT18X18D"] + w["MULT18X18D"]
    assert p["TRELLIS_IO"] == rec["design"]["pins"]
    assert 1 < rec["fmax_mhz"] < 500
    assert rec["critical_path"]["delay_ns"] == pytest.approx(1e3 / rec["fmax_mhz"], rel=0.05)


def test_synth_cli_writes_json_and_summary(tmp_path):
    lib = find_library("nangate45")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["synth", "--target", "asic", "--design", "regmul",
                                   "--width", "4", "--liberty", lib.path,
                                   "--workdir", str(tmp_path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    assert rec["library"]["key"] == "user" and rec["target"] == "asic"
    assert out.with_suffix(".txt").read_text().startswith(rec["name"])
    assert "critical path:" in res.output


@pytest.mark.parametrize("args,message", [
    (["--target", "asic", "--liberty", "/nonexistent.lib"], "Liberty file not found"),
    (["--target", "ecp5", "--library", "osu018"], "apply to --target asic only"),
    (["--target", "asic", "--freq-mhz", "50"], "--freq-mhz applies to --target ecp5"),
    (["--target", "asic", "--block-size", "0"], "must be a positive integer"),
    (["--target", "fpga"], "'fpga' is not one of"),
    (["--target", "asic", "--design", "regmul", "--arch", "fused-fp32"],
     "apply to --design mac without --rtl"),
    (["--target", "asic", "--arch", "fused-exact", "--unit", "nvfp4", "--converter", "serial"],
     "NVFP4 has no division"),
])
def test_synth_cli_errors_are_one_line(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["synth", "--workdir", str(tmp_path), *args])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_synth_cli_builds_a_fused_architecture(tmp_path):
    """``--arch`` reaches the flow: the record is the fused MAC's, named by its config."""
    from if4mac.golden import MacConfig

    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["synth", "--target", "asic", "--unit", "if4",
                                   "--block-size", "1", "--arch", "fused-exact",
                                   "--acc-width", "60", "--workdir", str(tmp_path),
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    config = MacConfig("if4", 1, arch="fused-exact", acc_width=60)
    assert rec["name"] == f"{config.name}-asic-nangate45"
    assert (rec["design"]["arch"], rec["design"]["acc_width"]) == ("fused-exact", 60)


def test_flat_flow_has_no_blocks_but_the_same_cells(tmp_path):
    rec = synthesize(target="asic", design="regmul", width=8, library="nangate45",
                     workdir=tmp_path, flat=True)
    assert rec["name"].endswith("-flat") and rec["flow"].startswith("Yosys: flatten all")
    area = rec["area"]
    assert set(k for k, v in area["blocks_um2"].items() if v > 0) == {
        "control and register enables", REGISTERS}
    netlist = tmp_path / rec["name"] / f"{rec['design']['top']}.netlist.v"
    assert area["total_um2"] == pytest.approx(
        ref_netlist_area(netlist, rec["design"]["top"], find_library("nangate45").info.cells),
        rel=1e-9)
    _check_timing(rec["timing"])


def test_fused_architectures_synthesize(tmp_path):
    """A MacConfig of any architecture goes through both flows: the record names the
    architecture and its options, the run name is the config's, and the ASIC area is read
    per block from the top's own block map (every fused block present, nothing else)."""
    from if4mac.golden import MacConfig

    config = MacConfig("if4", 1, arch="fused-exact", converter="serial")
    rec = synthesize(target="asic", unit=config, library="nangate45", workdir=tmp_path)
    assert rec["name"] == f"{config.name}-asic-nangate45"
    assert {k: rec["design"][k] for k in ("arch", "acc_width", "converter", "latency")} == {
        "arch": "fused-exact", "acc_width": config.acc_width, "converter": "serial",
        "latency": config.build().latency}
    area = rec["area"]
    top_blocks = dict(config.build().blocks)
    assert area["instances"] == {k: len(v) for k, v in top_blocks.items()}
    assert set(area["blocks_um2"]) == set(top_blocks) | {REGISTERS, "control and register enables"}
    assert all(area["blocks_um2"][b] > 0 for b in top_blocks)
    assert sum(area["blocks_um2"].values()) == pytest.approx(area["total_um2"], abs=0.01)
    netlist = tmp_path / rec["name"] / f"{rec['design']['top']}.netlist.v"
    assert area["total_um2"] == pytest.approx(
        ref_netlist_area(netlist, rec["design"]["top"], find_library("nangate45").info.cells),
        rel=1e-9)
    _check_timing(rec["timing"])
    # The same config from its fields; the fields are validated by MacConfig.
    ecp5 = synthesize(target="ecp5", unit="nvfp4", block_size=1, arch="fused-fp32",
                      workdir=tmp_path)
    assert ecp5["name"] == "nvfp4_mac_b1_fused_fp32-ecp5"
    assert ecp5["design"]["arch"] == "fused-fp32" and ecp5["yosys_cells"]["LUT4"] > 100
    with pytest.raises(ValueError, match="converter is an option of fused-exact"):
        synthesize(target="asic", unit="if4", block_size=1, arch="fused-fp32",
                   converter="serial", workdir=tmp_path)
