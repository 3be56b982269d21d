"""Gate-level simulation (issue 17, item 4): the mapped netlists of the block-2 MACs of every
architecture (reference with both reductions, fused-fp32, fused-exact, and IF4's fused-exact
with the serial converter), both units, on Nangate 45 (the ASIC flow's netlist, the one
OpenSTA times, with the library's own cell models) and on the ECP5 (the ECP5 flow's Yosys
mapping with Yosys' cell models), played through the Verilog testbench against golden on a
random stream with bubbles, resets and edge-case scales. "The design we measured is the
design we verified."

The eighteen syntheses and simulations run two at a time with Dask (each is one Yosys,
OpenSTA or Icarus process); Icarus, because the Nangate models are user-defined primitives,
which Verilator does not take. Measured on the 2-core development machine: see docs/fused.md
(gate-level simulation).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import dask
import numpy as np
import pytest

from if4mac.golden import REDUCTIONS, UNITS, MacConfig, random_stream
from if4mac.sim.fast import build_fast, run_fast
from if4mac.sim.runner import Design
from if4mac.synth.gatesim import (TARGETS, asic_gate_design, ecp5_gate_design,
                                  expected_results, play)

BLOCK = 2
#: Every architecture and option on main, both units (the serial converter is IF4's).
MACS = ([MacConfig(u, BLOCK, r) for u in UNITS for r in REDUCTIONS]
        + [MacConfig(u, BLOCK, arch=a) for a in ("fused-fp32", "fused-exact") for u in UNITS]
        + [MacConfig("if4", BLOCK, arch="fused-exact", converter="serial")])
CONFIGS = [(t, c) for t in TARGETS for c in MACS]
IDS = [f"{t}-{c.name}" for t, c in CONFIGS]
EDGE_SCALES = np.array([0x00, 0x80, 0x01, 0x81, 0x7E, 0x7F, 0xFE, 0xFF], dtype=np.uint8)


def gate_stream(config: MacConfig, seed: int = 11):
    """About 280 cycles: segments of 1..6 beats, 20% bubbles, 3% resets, a quarter of the
    scale bytes from the edge cases (zero, smallest, largest, each with the INT flag).

    The serial converter takes a result only every SERIAL_CONVERTER_BUSY + 1 cycles: its
    stream has 100 segments of 1..16 beats (about 800 cycles), so most results come out and
    some close too soon and are refused."""
    unit = config.unit
    serial = config.converter == "serial"
    s = random_stream(unit, 100 if serial else 60, seed=seed, max_len=16 if serial else 6,
                      block_size=BLOCK, bubble_prob=0.2)
    rng = np.random.default_rng(seed)
    n = len(s)
    scales = {}
    for name in ("a_sf", "w_sf"):
        v = np.array(getattr(s, name), dtype=np.uint8)
        pick = rng.random(n) < 0.25
        v[pick] = rng.choice(EDGE_SCALES, int(pick.sum()))
        scales[name] = v
    reset = rng.random(n) < 0.03
    reset[0] = False
    return dataclasses.replace(s, reset=reset, **scales)


@pytest.fixture(scope="session")
def gate_runs(tmp_path_factory):
    """{(target, config): (Design, FastOutcome)} for every config, two at a time."""
    work = tmp_path_factory.mktemp("gatesim")

    def one(target, config):
        make = asic_gate_design if target == "asic" else ecp5_gate_design
        design = make(config, work / f"{target}-{config.name}")
        built = build_fast(design, "icarus", build_root=work / "builds")
        return design, play(built, gate_stream(config), config)

    done = dask.compute(*[dask.delayed(one)(*c) for c in CONFIGS], scheduler="threads",
                        num_workers=2)
    return dict(zip(CONFIGS, done)), work


@pytest.mark.parametrize("target,config", CONFIGS, ids=IDS)
def test_netlist_matches_golden(gate_runs, target, config):
    design, out = gate_runs[0][(target, config)]
    assert out.passed, out.report
    stream = gate_stream(config)
    want = expected_results(stream, config)
    assert out.results == want.hex()
    # The stream did what it is for: results, resets, bubbles and INT4 blocks all present,
    # and for the serial converter refused results too.
    assert len(want) >= 40 and stream.reset.any() and not stream.en.all()
    if config.arch != "reference":     # a reset discarded a result in flight
        assert len(want.discarded_beat) > 0
    if config.converter == "serial":
        assert len(want.overrun_beat) > 0
    if config.unit == "if4":
        assert ((np.asarray(stream.a_sf) >> 7) & np.asarray(stream.en)).any()
    # It is a netlist of library cells, not the RTL.
    top = re.search(rf"^module {design.toplevel}\(.*?^endmodule", design.verilog, re.S | re.M)
    flop = r"^\s+DFFR_X\d " if target == "asic" else r"^\s+TRELLIS_FF "
    assert re.search(flop, top.group(0), re.M) and "always" not in top.group(0)


def test_a_broken_netlist_fails(gate_runs):
    """Every AND2 of the Nangate netlist turned into an OR2 (same pins): the testbench must
    report it."""
    runs, work = gate_runs
    config = MacConfig("if4", BLOCK)
    design, _ = runs[("asic", config)]
    netlist, models = design.verilog.split("`define TETRAMAX", 1)
    broken = re.sub(r"^(\s+)AND2_X1\b", r"\1OR2_X1", netlist, flags=re.M)
    assert broken != netlist
    bad = Design(design.unit, design.block_size, design.reduction, design.toplevel,
                 design.latency, broken + "`define TETRAMAX" + models)
    out = run_fast(build_fast(bad, "icarus", build_root=work / "builds"), gate_stream(config))
    assert not out.passed and out.report.startswith("RTL and golden disagree")


def test_a_broken_fused_netlist_fails(gate_runs):
    """The same fault in the fused-exact IF4 netlist: :func:`play`'s scoring against
    ``run_arch`` must report it."""
    runs, work = gate_runs
    config = MacConfig("if4", BLOCK, arch="fused-exact")
    design, _ = runs[("asic", config)]
    netlist, models = design.verilog.split("`define TETRAMAX", 1)
    broken = re.sub(r"^(\s+)AND2_X1\b", r"\1OR2_X1", netlist, flags=re.M)
    assert broken != netlist
    bad = dataclasses.replace(design, verilog=broken + "`define TETRAMAX" + models)
    out = play(build_fast(bad, "icarus", build_root=work / "builds"), gate_stream(config),
               config)
    assert not out.passed and out.report.startswith("RTL and golden disagree")
