"""Power from real workloads: switching activity from a gate-level simulation of quantized
tensors, priced with OpenSTA and the library's power tables.

Method (docs/synthesis.md, "Power"):

1. **Workload.** Activations and weights are quantized exactly as ``if4mac quantize`` does
   (:func:`~if4mac.golden.quantize.quantize`, from :func:`~if4mac.golden.tensors.load_tensor`
   for a user file) and turned into the MAC's beats by
   :func:`~if4mac.golden.quantize.stimulus_from_quantized` (one segment per output). A MAC
   with ``B`` < 16 lanes takes each 16-element block as ``16 / B`` consecutive beats that
   share the block's scales (:func:`lane_stream`).
2. **Gate-level simulation.** The mapped netlist, with cell models that Yosys builds from
   the Liberty file's own ``function`` and ``ff`` groups (:func:`cell_models`), runs in
   Icarus Verilog under the plan-file testbench of :mod:`if4mac.sim.fast` (zero delay);
   its results must equal the golden model's. Every net's activity is its number of 0-1
   changes per clock cycle over the run (X is not switching).
3. **Pricing.** OpenSTA (the Debian 2019 build: no ``read_vcd``/``read_saif``, and one
   activity for every signal pin) reports each cell's power twice, with every signal at
   activity 0 and at 1 (clocks at their own rate): power is linear in activity, so a cell
   whose output net toggles ``a`` times per cycle draws ``P(0) + a (P(1) - P(0))`` --
   internal power from the Liberty tables at the cell's slews and loads, switching power
   of its output net, leakage. Summed over all cells; energy per lane product = total
   power x period x cycles / (enabled beats x B).

Limits: zero-delay simulation has no glitches (glitch power in the multipliers and adders is
missing); a cell's input-pin internal power is scaled by its output's activity; wires are
the library's wire-load model, the clock tree is ideal (no clock-buffer power), the corner
typical; the testbench's idle cycles (reset, pipeline drain) are in the average.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np

__all__ = ["lane_stream", "example_workload", "tensor_workload", "gate_activity",
           "cell_models", "run_power", "EXAMPLE_SHAPES"]

#: The built-in workload: the demo's tensors (``if4mac demo``): Student-t activations
#: (heavy tails with outliers, like an LLM's) and Hadamard-rotated Gaussian weights.
EXAMPLE_SHAPES = {"activations": (4, 64), "weights": (4, 64)}
#: Rows of a user's weight tensor simulated at most (each row is K/16 segments per
#: activation row): enough for stable toggle rates, small enough for a quick simulation.
MAX_USER_ROWS = 8
#: The format's block: a scale covers this many elements (docs/spec.md).
FORMAT_BLOCK = 16


def lane_stream(stream, block_size: int):
    """``stream`` (16 lanes) as beats of a ``block_size``-lane MAC (``block_size`` divides
    16): each beat becomes ``16 / B`` beats of consecutive elements with the same scales;
    only the first of them keeps ``first``."""
    from if4mac.golden import Stream

    if block_size not in (1, 2, 4, 8, 16):
        raise ValueError(f"block size must divide {FORMAT_BLOCK} for a tensor workload, "
                         f"got {block_size}")
    k = FORMAT_BLOCK // block_size
    n = len(stream)
    first = np.zeros((n, k), dtype=bool)
    first[:, 0] = np.asarray(stream.first)
    return Stream(stream.unit, np.repeat(np.asarray(stream.en), k), first.reshape(-1),
                  np.asarray(stream.a).reshape(n * k, block_size),
                  np.asarray(stream.w).reshape(n * k, block_size),
                  np.repeat(np.asarray(stream.a_sf), k), np.repeat(np.asarray(stream.w_sf), k))


def example_workload(unit: str, block_size: int):
    """The built-in workload (:data:`EXAMPLE_SHAPES`) as beats of a ``block_size`` MAC."""
    from if4mac.golden.quantize import quantize, stimulus_from_quantized
    from if4mac.golden.tensors import example_tensor

    acts = example_tensor("student-t", EXAMPLE_SHAPES["activations"], seed=1)
    wts = example_tensor("gaussian", EXAMPLE_SHAPES["weights"], seed=2, hadamard=True)
    stream = stimulus_from_quantized(quantize(acts, unit), quantize(wts, unit), unit)
    return lane_stream(stream, block_size)


def tensor_workload(unit: str, block_size: int, path, *, key: str | None = None,
                    tensor: str | None = None, max_rows: int = MAX_USER_ROWS):
    """A user's weight tensor (``.npy``/``.npz``/``.safetensors``, read as ``if4mac
    quantize`` reads it) times the built-in activations, as beats of a ``block_size`` MAC.

    The tensor is taken as rows of its last dimension; its first ``max_rows`` rows and
    first ``K`` columns are used, ``K`` the largest multiple of 16 it has, at most 256.
    """
    from if4mac.golden.quantize import quantize, stimulus_from_quantized
    from if4mac.golden.tensors import example_tensor, load_tensor

    x = np.asarray(load_tensor(path, key=key, tensor=tensor)).astype(np.float32)
    if x.ndim < 1 or x.shape[-1] < FORMAT_BLOCK:
        raise ValueError(f"{path}: need a tensor whose last dimension is at least "
                         f"{FORMAT_BLOCK}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: the tensor holds NaN or infinity")
    x = x.reshape(-1, x.shape[-1])
    k = min(256, x.shape[-1] // FORMAT_BLOCK * FORMAT_BLOCK)
    w = np.ascontiguousarray(x[:max_rows, :k])
    acts = example_tensor("student-t", (EXAMPLE_SHAPES["activations"][0], k), seed=1)
    stream = stimulus_from_quantized(quantize(acts, unit), quantize(w, unit), unit)
    return lane_stream(stream, block_size)


# --- Simulation -----------------------------------------------------------------------------

def _toggle_vcd(path: Path, scopes_wanted: dict[str, str]) -> tuple[dict, int, int]:
    """Every 0 <-> 1 change of every bit of the variables in the VCD scopes
    ``scopes_wanted`` (dotted scope -> prefix for the names), and the time each bit spent
    high. Returns ``{name: [changes, time high] per bit}``, the clock's rising edges and
    the end time. A plain line parser: a gate-level dump has millions of changes."""
    vars_of: dict[str, list[tuple[str, int]]] = {}
    scope: list[str] = []
    clk_code = None
    state: dict[str, list] = {}     # code -> [bits (LSB first), last change times, stats]
    edges = 0
    now = 0
    with open(path) as f:
        for line in f:
            if line.startswith("$var"):
                parts = line.split()
                size, code, ref = int(parts[2]), parts[3], parts[4]
                where = ".".join(scope)
                if ref == "clk" and where == next(iter(scopes_wanted)):   # the DUT's clock port
                    clk_code = code
                if where in scopes_wanted:
                    vars_of.setdefault(code, []).append((scopes_wanted[where] + ref.lstrip("\\"), size))
            elif line.startswith("$scope"):
                scope.append(line.split()[2])
            elif line.startswith("$upscope"):
                scope.pop()
            elif line.startswith("$enddefinitions"):
                break
        for code, names in vars_of.items():
            size = names[0][1]
            state[code] = [["x"] * size, [0] * size, [0] * size, [0] * size]
        clk = "x"
        for line in f:
            c = line[0]
            if c == "#":
                now = int(line[1:])
                continue
            if c == "b":
                value, code = line[1:].split()
            elif c in "01xzXZ":
                value, code = c, line[1:].strip()
            else:
                continue
            if code == clk_code:
                if clk == "0" and value == "1":
                    edges += 1
                clk = value
            st = state.get(code)
            if st is None:
                continue
            bits, since, changes, high = st
            size = len(bits)
            if len(value) < size:
                value = value.rjust(size, value[0] if value[0] in "xzXZ" else "0")
            for i in range(size):
                b = value[size - 1 - i]
                old = bits[i]
                if b == old:
                    continue
                if old == "1":
                    high[i] += now - since[i]
                if b in "01" and old in "01":
                    changes[i] += 1
                bits[i] = b
                since[i] = now
    out = {}
    for code, (bits, since, changes, high) in state.items():
        for i, b in enumerate(bits):
            if b == "1":
                high[i] += now - since[i]
        for name, _ in vars_of[code]:
            out[name] = [[changes[i], high[i]] for i in range(len(bits))]
    return out, edges, now


def _child_instances(netlist_text: str, top: str) -> list[str]:
    """Instance names of the top's child modules in a Yosys netlist."""
    mods = set(m.strip().lstrip("\\") for m in
               re.findall(r"^module\s+(\\\S+\s|\S+?)\s*\(", netlist_text, re.M))
    body = re.search(rf"^module\s+{re.escape(top)}\s*\(.*?^endmodule", netlist_text, re.S | re.M)
    if body is None:
        raise ValueError(f"netlist has no module {top}")
    out = []
    for line in body.group(0).splitlines():
        cm = _CELL.match(line)
        if cm and cm.group(1).lstrip("\\") in mods:
            out.append(cm.group(2).strip().lstrip("\\"))
    return out


def cell_models(liberty: str | Path, workdir: Path, timeout: float | None = 600) -> Path:
    """Verilog models of the library's cells, made by Yosys from the Liberty ``function``
    and ``ff`` groups (cells without a function, e.g. clock gates, are left out)."""
    from .tools import find_tool, require_file, run_tool

    out = Path(workdir) / "cells.v"
    log = Path(workdir) / "cells.log"
    run_tool([find_tool("yosys"), "-q", "-p",
              f"read_liberty -ignore_miss_func -ignore_miss_dir -ignore_miss_data_latch "
              f"{liberty}; write_verilog -noattr {out.name}"], log=log, cwd=Path(workdir),
             timeout=timeout)
    return require_file(out, "cell models", log)


def gate_activity(design, stream, netlist: Path, liberty: str | Path, workdir, *,
                  timeout: float | None = 600, keep_vcd: bool = False) -> dict:
    """Simulate ``stream`` on the mapped ``netlist`` of ``design`` (gate level, zero delay,
    cells from :func:`cell_models`) and return every net's activity: 0 <-> 1 changes per
    clock cycle and the fraction of time high. The netlist's results are checked against
    the golden model first: a netlist that computes something else has no power to speak of.
    """
    from if4mac.golden import run
    from if4mac.sim.fast import TESTBENCH_TOP, sv_testbench, write_plan
    from if4mac.sim.plan import drive_plan
    _check_workload(design, stream)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = Path(netlist).read_text()
    children = _child_instances(text, design.name)
    tb = sv_testbench(design, design.reduction == "shared")
    vcd = workdir / "gate_activity.vcd"
    dut = f"{TESTBENCH_TOP}.dut"
    dumps = "".join(f"    $dumpvars(1, {dut}.{c});\n" for c in [""] + children).replace(
        f"{dut}.)", f"{dut})")
    tb = tb.replace("endmodule", f'  initial begin\n    $dumpfile("{vcd.name}");\n{dumps}'
                                 "  end\nendmodule")
    (workdir / "gate_tb.v").write_text(tb)
    cells = cell_models(liberty, workdir, timeout)
    plan = drive_plan(stream, design.latency)
    write_plan(plan, workdir / "gate_plan.hex")
    out = workdir / "gate_out.txt"
    for cmd in (["iverilog", "-g2012", "-s", TESTBENCH_TOP, "-o", "gate.vvp", "gate_tb.v",
                 str(Path(netlist).resolve()), cells.name],
                ["vvp", "-n", "gate.vvp", "+plan=gate_plan.hex", f"+out={out.name}"]):
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed for the gate-level simulation: "
                               f"{(proc.stdout + proc.stderr).strip()[-400:]}")
    got = [ln.split()[1] for ln in out.read_text().splitlines() if not ln.startswith("end")]
    want = [h[2:] if h.startswith("0x") else h
            for h in run(stream, reduction=design.reduction).hex()]
    if [g.lower() for g in got] != [w.lower() for w in want]:
        raise RuntimeError(f"the gate-level netlist's results differ from the golden model "
                           f"({len(got)} results, {len(want)} expected): {out}")
    scopes = {dut: ""}
    scopes.update({f"{dut}.{c}": f"{c}/" for c in children})
    stats, edges, end = _toggle_vcd(vcd, scopes)
    if not keep_vcd:
        vcd.unlink(missing_ok=True)
    if edges != len(plan) or end <= 0:
        raise RuntimeError(f"gate-level simulation saw {edges} clock edges, expected {len(plan)}")
    signals = {name: [[round(c / edges, 6), round(h / end, 6)] for c, h in bits]
               for name, bits in stats.items()}
    beats = int(np.asarray(plan.en).sum())
    return {
        "level": "gate", "unit": design.unit, "block_size": design.block_size,
        "reduction": design.reduction, "verilog_sha256": design.sha256,
        "netlist_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "cycles": edges, "enabled_beats": beats, "lane_products": beats * design.block_size,
        "results_checked": len(got),
        "signals": signals,     # net -> [[changes per cycle, time high] per bit, LSB first]
    }


def _check_workload(design, stream):
    if design.latency is None or design.block_size is None:
        raise ValueError("power needs a MAC top (design 'mac')")
    if stream.unit != design.unit or stream.block_size != design.block_size:
        raise ValueError(f"workload is {stream.unit} with {stream.block_size} lanes, the "
                         f"design {design.unit} with {design.block_size}")


# --- OpenSTA ----------------------------------------------------------------------------------

_CELL = re.compile(r"^\s+(\\?\S+)\s+(\\\S+\s|\S+)\s*\(\s*$")


def _instances(netlist_text: str, top: str, cells: dict) -> dict[str, list[str]]:
    """Leaf cell instances of ``top`` (hierarchical names, ``lane_acc_0/_123_``) and the
    nets (same naming) on their output pins."""
    modules: dict[str, str] = {}
    for mt in re.finditer(r"^module\s+(\\\S+\s|\S+?)\s*\(.*?^endmodule", netlist_text,
                          re.S | re.M):
        modules[mt.group(1).strip().lstrip("\\")] = mt.group(0)
    inst_re = re.compile(r"^\s+(\\?\S+)\s+(\\\S+\s|\S+)\s*\((.*?)\);", re.S | re.M)
    pin_re = re.compile(r"\.(\w+)\(\s*(\\\S+\s|[^()\s]+)\s*\)")
    out: dict[str, list[str]] = {}

    def walk(mod: str, prefix: str):
        for mt in inst_re.finditer(modules[mod]):
            ctype = mt.group(1).lstrip("\\")
            inst = mt.group(2).strip().lstrip("\\")
            if ctype in modules:
                walk(ctype, prefix + inst + "/")
            elif ctype in cells:
                nets = [net.strip().lstrip("\\") for pin, net in pin_re.findall(mt.group(3))
                        if pin in cells[ctype].outputs]
                out[prefix + inst] = [prefix + n for n in nets]

    walk(top, "")
    return out


_INST_LINE = re.compile(r"^\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s+"
                        r"(-?[\d.eE+-]+)\s+(\S+)\s*$")


def run_power(*, netlist: Path, top: str, library, activity: dict, clock_ps: float,
              clock: str = "clk", reset: str | None = "rst_n", workdir: Path,
              timeout: float | None = 600) -> dict:
    """Power of ``netlist`` at ``clock_ps`` with the gate-level ``activity``
    (:func:`gate_activity`); returns power (W), energy per lane product (pJ) and how many
    cells got a simulated activity.

    The Debian OpenSTA 2.0.17 uses one activity for every non-clock pin (its
    ``set_power_activity -pins`` is not read by ``report_power``), so each cell's power is
    taken from two per-instance reports, at activity 0 and 1 for every signal (clocks at
    their own rate in both): power is linear in activity (energy per transition from the
    Liberty tables, times transitions per cycle), so a cell whose output net toggles
    ``a`` times per cycle draws ``P(0) + a (P(1) - P(0))``. A cell with several outputs
    takes their mean activity.
    """
    from .tools import ToolError, find_tool, run_tool

    if activity.get("level") != "gate":
        raise ValueError("power needs a gate-level activity (gate_activity)")
    info = library.info
    text = Path(netlist).read_text()
    insts = _instances(text, top, info.cells)
    flat: dict[str, float] = {}
    for name, bits in activity["signals"].items():
        if len(bits) == 1:
            flat[name] = bits[0][0]
        for i, (act, _duty) in enumerate(bits):
            flat[f"{name}[{i}]"] = act
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    wl = info.default_wire_load
    script = workdir / "sta_power.tcl"
    script.write_text(
        f"read_liberty {info.path}\nread_verilog {Path(netlist).resolve()}\n"
        f"link_design {top}\n"
        + (f"set_wire_load_model -name {{{wl}}}\n" if wl else "")
        + f"create_clock -name clk -period {clock_ps / info.time_unit_ps:.6g}"
          f" [get_ports {clock}]\n"
        + "set cells [get_cells -hierarchical *]\n"
        + "".join(f'set_power_activity -global -activity {a} -duty 0.5\nputs "@@a{a}"\n'
                  "report_power -instances $cells -digits 8\n" for a in (0, 1))
        + 'puts "@@end"\n')
    log = workdir / "sta_power.log"
    t0 = time.monotonic()
    run_tool([find_tool("sta"), "-no_init", "-exit", str(script)], log=log, cwd=workdir,
             timeout=timeout)
    runtime = time.monotonic() - t0
    out = log.read_text(errors="replace")
    if "@@end" not in out:
        raise ToolError(f"OpenSTA stopped before the end of {script} (log: {log})")
    errors = [ln for ln in out.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolError(f"OpenSTA: {errors[0]} (log: {log})")
    per = {}
    for label, chunk in zip(("0", "1"), out.split("@@a0", 1)[1].split("@@a1", 1)):
        rows = {}
        for line in chunk.splitlines():
            mt = _INST_LINE.match(line)
            if mt:
                rows[mt.group(5)] = [float(x) for x in mt.groups()[:4]]
        per[label] = rows
    comps = ("internal_w", "switching_w", "leakage_w", "total_w")
    tot = dict.fromkeys(comps, 0.0)
    matched = 0
    missing = [i for i in insts if i not in per["0"] or i not in per["1"]]
    if missing:
        raise ToolError(f"OpenSTA reported no power for {len(missing)} cells, e.g. "
                        f"{missing[0]} (log: {log})")
    for inst, nets in insts.items():
        acts = [flat[n] for n in nets if n in flat]
        if acts:
            matched += 1
        a = sum(acts) / len(acts) if acts else 0.0
        p0, p1 = per["0"][inst], per["1"][inst]
        for k, c in enumerate(comps):
            tot[c] += p0[k] + a * (p1[k] - p0[k])
    dynamic = tot["internal_w"] + tot["switching_w"]
    period_s = clock_ps * 1e-12
    per_lp = 1e12 * period_s * activity["cycles"] / max(1, activity["lane_products"])
    return {
        "clock_ps": clock_ps,
        "total_w": tot["total_w"], "dynamic_w": dynamic, "leakage_w": tot["leakage_w"],
        "internal_w": tot["internal_w"], "switching_w": tot["switching_w"],
        "energy_per_lane_product_pj": tot["total_w"] * per_lp,
        "dynamic_energy_per_lane_product_pj": dynamic * per_lp,
        "cycles": activity["cycles"], "lane_products": activity["lane_products"],
        "activity_level": "gate",
        "annotated": {"cells": matched, "cells_total": len(insts)},
        "runtime_s": round(runtime, 2),
    }
