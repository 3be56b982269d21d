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
    ({"unit": "if4", "arch": "fused-fp32", "reduction": "shared"}, "has no reduction tree"),
    ({"unit": "if4", "acc_width": 60}, "acc_width is an option of fused-exact"),
    ({"unit": "if4", "arch": "fused-fp32", "converter": "serial"}, "converter is an option"),
    ({"unit": "nvfp4", "arch": "fused-exact", "converter": "serial"}, "NVFP4 has no division"),
    ({"unit": "if4", "arch": "fused-exact", "acc_width": 8}, "cannot hold one beat"),
])
def test_config_is_validated_once_at_the_edge(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MacConfig(**kwargs)


def test_config_builds_its_top():
    assert set(ARCHITECTURES) == {"reference", "fused-fp32", "fused-exact"}
    top = MacConfig("nvfp4", 3).build()
    assert isinstance(top, MacUnit) and top.name == "nvfp4_mac_b3_pipelined"
    assert top.port_widths["a_in"] == 12 and top.port_widths["acc"] == 32
    assert top.blocks["lane accumulators"] == ("lane_acc_0", "lane_acc_1", "lane_acc_2")
    Fragment.get(top, None)    # elaborated, so Amaranth does not warn of an unused top


@pytest.mark.parametrize("arch, options, cls, name", [
    ("fused-fp32", {}, "FusedFp32Mac", "if4_mac_b3_fused_fp32"),
    ("fused-exact", {"converter": "serial"}, "FusedExactMac", "if4_mac_b3_fused_exact_w{}_serial"),
])
def test_config_builds_the_fused_tops(arch, options, cls, name):
    from if4mac.golden.fused import exact_acc_width
    from if4mac.hdl import fused

    config = MacConfig("if4", 3, arch=arch, **options)
    top = config.build()
    assert type(top) is getattr(fused, cls) and top.config == config
    assert top.name == config.name == name.format(exact_acc_width("if4", 3))
    # The same top as built directly, so the Verilog of both is one design.
    direct = getattr(fused, cls)("if4", 3, **options)
    assert direct.config == config and direct.latency == top.latency
    ports = list(top.port_widths)
    assert ports[-2:] == (["overflow", "overrun"] if options else ["acc", "done"])
    assert set(top.blocks["block dot product"]) == {"dot"}
    Fragment.get(top, None)
    Fragment.get(direct, None)
