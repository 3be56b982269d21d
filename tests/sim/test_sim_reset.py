"""A reset while a result is in flight, on the simulated RTL (issue 17, item 1): rst_n pulsed
1, 2, .., latency + 2 cycles after a closing beat, with nothing drained first, through the
cocotb testbench and the plain Verilog testbench, both reductions, block sizes 2 and 16.

The stream and the results that must come out are worked out by hand in tests/reset_streams.py
(a result survives only a reset more than ``latency`` cycles after its closing beat); each
testbench also scores every result against golden at its exact cycle, so a result that
came out when it should have been discarded (or the reverse) fails twice.
"""

from __future__ import annotations

import pytest

from if4mac.sim.fast import build_fast, run_fast
from if4mac.sim.runner import design_verilog, run_job
from tests.reset_streams import LATENCY, expected, reset_ladder

from .conftest import BUILD_ROOT

#: (block size, reduction, simulator). Icarus builds in a second; Verilator only where the
#: suite builds the design anyway (the block-16 pipelined IF4 regression), or marked slow (a
#: Verilator build of its own is 1-2 minutes on two cores).
COCOTB = [(2, "pipelined", "icarus"), (2, "shared", "icarus"), (16, "pipelined", "icarus"),
          (16, "shared", "icarus"), (16, "pipelined", "verilator")]
SV = [(2, "pipelined", "icarus"), (2, "shared", "icarus"), (16, "pipelined", "icarus"),
      (16, "shared", "icarus"),
      pytest.param(2, "shared", "verilator", marks=pytest.mark.slow),
      pytest.param(16, "pipelined", "verilator", marks=pytest.mark.slow)]


def ladder(block_size):
    return reset_ladder("if4", block_size, range(1, LATENCY[block_size] + 3))


@pytest.mark.parametrize("block_size,reduction,simulator", COCOTB)
def test_cocotb_reset_in_flight(sim_build, block_size, reduction, simulator):
    stream, cases = ladder(block_size)
    built = sim_build("if4", simulator, block_size, reduction)
    out = run_job(built, stimulus=stream)["run_stimulus"]
    assert out.passed, out.report or out.message
    assert out.results == [f"0x{b:08x}" for b in expected(cases)]


@pytest.mark.parametrize("block_size,reduction,simulator", SV)
def test_sv_reset_in_flight(block_size, reduction, simulator):
    stream, cases = ladder(block_size)
    built = build_fast(design_verilog("if4", block_size, reduction, BUILD_ROOT), simulator,
                       build_root=BUILD_ROOT)
    out = run_fast(built, stream)
    assert out.passed, out.report
    assert out.results == [f"0x{b:08x}" for b in expected(cases)]
