"""One configuration, one design, one emitter: the Verilog that ``if4mac verilog`` writes, that
the simulators compile and that the synthesis flows read is the same text, and the block map
the MAC top publishes names exactly the instances in it."""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.golden import ARCHITECTURES, MAX_BLOCK_SIZE, MacConfig
from if4mac.hdl.design import mac_design
from if4mac.hdl.mac import MacUnit
from if4mac.sim.runner import design_verilog
from if4mac.synth.designs import fpga_design
from if4mac.synth.designs import mac_design as synth_mac_design


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The if4 block-2 shared MAC as each consumer gets it."""
    tmp = tmp_path_factory.mktemp("design")
    out = tmp / "core.v"
    result = CliRunner().invoke(cli, ["verilog", "--unit", "if4", "--block-size", "2",
                                      "--reduction", "shared", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return {
        "cli": out.read_text(),
        "sim": design_verilog("if4", 2, "shared", tmp / "sim"),
        "synth": synth_mac_design("if4", 2, "shared"),
        "cached": mac_design(MacConfig("if4", 2, "shared"), cache_dir=tmp / "sim" / "verilog"),
    }


def test_simulated_and_synthesised_verilog_are_the_same_bytes(small):
    assert small["sim"].verilog == small["cli"]
    assert small["synth"].verilog == small["cli"]
    # The second read comes from the on-disk cache the simulator filled.
    assert small["cached"].verilog == small["cli"]
    assert small["cached"] == small["sim"] == small["synth"]


def test_block_map_names_every_child_instance(small):
    design = small["synth"]
    children = {c[len(design.name) + 1:] for c in design.child_modules()}
    mapped = [inst for _, insts in design.blocks for inst in insts]
    assert len(mapped) == len(set(mapped))
    assert set(mapped) == children
    assert {"lane_mul_0", "lane_mul_1", "scale_mul", "tree"} <= children


def test_fpga_wrapper_holds_the_same_top():
    wrapped = fpga_design("mac", unit="nvfp4", block_size=1, reduction="pipelined")
    assert "module \\ecp5_nvfp4_mac_b1_pipelined.mac " in wrapped.verilog


@pytest.mark.parametrize("kwargs, message", [
    ({"unit": "nvint4"}, "unknown unit 'nvint4'"),
    ({"unit": "if4", "block_size": MAX_BLOCK_SIZE + 1}, f"outside 1..{MAX_BLOCK_SIZE}"),
    ({"unit": "if4", "block_size": 16.0}, "block_size must be a positive integer"),
    ({"unit": "if4", "reduction": "tree"}, "unknown reduction 'tree'"),
    ({"unit": "if4", "arch": "fused"}, "unknown architecture 'fused'"),
])
def test_config_is_validated_once_at_the_edge(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MacConfig(**kwargs)


def test_config_builds_its_top():
    assert set(ARCHITECTURES) == {"reference"}
    top = MacConfig("nvfp4", 3).build()
    assert isinstance(top, MacUnit) and top.name == "nvfp4_mac_b3_pipelined"
    assert top.port_widths["a_in"] == 12 and top.port_widths["acc"] == 32
    assert top.blocks["lane accumulators"] == ("lane_acc_0", "lane_acc_1", "lane_acc_2")
    Fragment.get(top, None)    # elaborated, so Amaranth does not warn of an unused top
