"""The ASIC flow: Yosys maps to a Liberty library (dfflibmap + abc), area per block, OpenSTA.

Area is computed here from the mapped cell counts (``stat -json``) and the Liberty cell
areas, split into flip-flops (the "registers" category, wherever they sit) and
combinational cells of each block; the total is checked against Yosys's own ``stat
-liberty`` figure, so a parsing slip cannot go unnoticed.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .designs import CONTROL, REGISTERS, Design
from .libraries import Library
from .scripts import YOSYS_ASIC, YOSYS_ASIC_GENERIC, YOSYS_ASIC_MAP
from .sta import run_sta
from .profile import strip_stamps, yosys_steps
from .tools import ToolError, find_tool, run_yosys

__all__ = ["synth_asic", "synth_generic", "generic_script", "area_breakdown",
           "DEFAULT_CLOCK_PS", "ABC_SCRIPT", "ABC_PERMUTE", "GENERIC_RTLIL"]

#: ABC's script: Yosys 0.23's own for ``-liberty`` (structural choices, then the delay-
#: oriented ``&nf`` mapper with area recovery), followed by what a sizing-aware flow adds:
#: buffer trees on high-fanout nets (module inputs included, ``-p``) and gate up/down-
#: sizing. ABC sees a module's inputs as ideal drivers unless told otherwise, so the flow
#: also hands it a constraint file (the library's smallest buffer drives every input, each
#: output drives four NAND2 inputs); without it a pipeline register's enable, fanned out to
#: hundreds of multiplexers, took 6 of a block-16 MAC's 7 ns. ``{D}`` is ABC's delay
#: target, if any.
ABC_SCRIPT = ("+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;"
              "&nf,{D};&put;buffer,-p;upsize,{D};dnsize,{D}")

#: ABC command inserted after the first ``strash`` when a seed is given: a random
#: permutation of the inputs, outputs and flip-flops (the same function, another order).
ABC_PERMUTE = "permute,-S,{seed}"

#: The STA clock when none is given. Only slack depends on it: the reported delays are
#: minimum periods, and ABC maps without a delay target unless one is asked for.
DEFAULT_CLOCK_PS = 10_000.0


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def area_breakdown(stat: dict, design: Design, library: Library) -> dict:
    """Area per category (um^2) from Yosys ``stat -json`` of the mapped, hierarchical design.

    Flip-flops go to :data:`REGISTERS`; other cells to the block of the top-level child
    instance they sit in, or :data:`CONTROL` for the top's own logic.
    """
    modules = {_strip(k): v for k, v in stat["modules"].items()}
    top = design.name
    if top not in modules:
        raise ToolError(f"Yosys statistics have no module {top!r}")
    prefix = top + "."
    info = library.info
    blocks: dict[str, float] = {}
    instances: dict[str, int] = {}
    rtl: dict[str, set[str]] = {}
    cells = flops = 0
    unmapped = set()

    def add(category, value):
        blocks[category] = blocks.get(category, 0.0) + value

    for name, mod in modules.items():
        counts = {}
        for ctype, n in mod.get("num_cells_by_type", {}).items():
            ctype = _strip(ctype)
            if ctype in modules:
                continue  # a child module instance, counted on its own
            if ctype.startswith("$"):
                unmapped.add(ctype)
                continue
            counts[ctype] = n
        comb, seq = info.area_of(counts)
        n_cells = sum(counts.values())
        n_flops = sum(n for c, n in counts.items() if info.cells[c].sequential)
        if name == top:
            category, mult = CONTROL, 1
        elif name.startswith(prefix):
            inst = name[len(prefix):]
            if "." in inst:
                raise ToolError(f"module {name} was not flattened into its block")
            category = design.category(inst)
            rtl.setdefault(category, set()).add(design.fingerprint(inst))
            # Each Amaranth submodule is its own module; count how often the top uses it.
            mult = modules[top].get("num_cells_by_type", {}).get(name,
                   modules[top].get("num_cells_by_type", {}).get("\\" + name, 0))
            instances[category] = instances.get(category, 0) + mult
        else:
            raise ToolError(f"unexpected module {name} in {top}")
        add(category, comb * mult)
        add(REGISTERS, seq * mult)
        cells += n_cells * mult
        flops += n_flops * mult
    if unmapped:
        raise ToolError(f"cells left unmapped by {library.info.name}: "
                        f"{', '.join(sorted(unmapped))} (the library may lack a flip-flop "
                        "with asynchronous reset)")
    total = sum(blocks.values())
    return {"total_um2": total, "blocks_um2": blocks, "instances": instances,
            "cells": cells, "flip_flops": flops,
            "rtl_sha256": {k: sorted(v) for k, v in rtl.items()}}


def _yosys_total_area(stat_txt: str) -> float | None:
    mt = re.search(r"Chip area for top module '[^']*':\s*([\d.]+)", stat_txt)
    if not mt:
        mt = re.search(r"Chip area for module '[^']*':\s*([\d.]+)", stat_txt)
    return float(mt.group(1)) if mt else None


#: File name of the generic part's result (RTLIL) in its work folder.
GENERIC_RTLIL = "generic.il"


def _keep_hierarchy(design: Design, flat: bool) -> str:
    children = [] if flat else design.child_modules()
    return ("setattr -mod -set keep_hierarchy 1 " + " ".join(children)) if children else ""


def generic_script(design: Design, *, flat: bool = False) -> str:
    """The generic part's Yosys script for ``design`` exactly as it runs (file names relative
    to its work folder): with the Verilog and the Yosys version, all its result depends on,
    so the store keys the generic run by it (:func:`.store.generic_key_parts`)."""
    return YOSYS_ASIC_GENERIC.substitute(top=design.name, verilog=f"{design.name}.v",
                                         keep_hierarchy=_keep_hierarchy(design, flat),
                                         rtlil=GENERIC_RTLIL)


def synth_generic(design: Design, workdir: Path, *, flat: bool = False,
                  timeout: float | None = 1800) -> dict:
    """The generic part of the ASIC flow (no library, no clock): ``read_verilog`` ..
    ``synth``, written as RTLIL (``workdir/generic.il``) for :func:`synth_asic`.

    Returns ``{"rtlil": path, "steps_s": {...}, "wall_s": seconds}``.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    paths, seconds = run_yosys(
        find_tool("yosys"), YOSYS_ASIC_GENERIC, design=design, workdir=workdir,
        flow="asic_generic", keep_hierarchy=_keep_hierarchy(design, flat),
        outputs={"rtlil": (GENERIC_RTLIL, "Yosys generic RTLIL")}, timeout=timeout,
        stamps=True, fast_clock=True)
    steps = yosys_steps((workdir / "yosys_asic_generic.log").read_text(errors="replace"))
    return {"rtlil": str(paths["rtlil"]), "steps_s": steps, "wall_s": round(seconds, 2)}


def synth_asic(design: Design, library: Library, workdir: Path, *,
               clock_ps: float | None = None, abc_delay_target: bool = False,
               flat: bool = False, abc_seed: int | None = None,
               timeout: float | None = 1800, generic: str | Path | None = None,
               stages: bool = True, one_process: bool = False) -> dict:
    """Synthesise ``design`` to ``library`` in ``workdir`` and time it.

    ``clock_ps`` sets the STA clock (default :data:`DEFAULT_CLOCK_PS`); with
    ``abc_delay_target`` it is also ABC's delay target (``abc -D``), which makes the mapping
    timing-driven (and larger). ``flat`` flattens the whole design before synthesis: no
    per-block area (everything but flip-flops is "control"), but constants and narrow
    values propagate across block boundaries, as in a production flow. Returns a JSON-ready
    dict of area and timing.

    The flow has two Yosys runs: the generic part (:func:`synth_generic`, which depends on
    neither the library nor the clock) and the mapping. ``generic`` is the RTLIL of an
    earlier generic run of this design with this ``flat`` (a sweep shares one between all
    clock targets and seeds, :mod:`.store`); without it the generic part runs here first.
    ``stages`` False skips OpenSTA's per-stage analysis (the ``stages`` list comes back
    empty; the critical and I/O paths are still timed). ``one_process`` runs both parts in
    one Yosys process, as before the split (to check that the split changes nothing).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    yosys = find_tool("yosys")
    info = library.info
    keep = _keep_hierarchy(design, flat)
    generic_steps: dict = {}
    if not one_process:
        if generic is None:
            g = synth_generic(design, workdir / "generic", flat=flat, timeout=timeout)
            generic, generic_steps = g["rtlil"], g["steps_s"]
        generic = Path(generic).resolve()
        if not generic.is_file():
            raise ToolError(f"generic RTLIL not found: {generic}")
    hi, lo = info.tie_high, info.tie_low
    hilomap = (f"hilomap -singleton -hicell {hi[0]} {hi[1]} -locell {lo[0]} {lo[1]}"
               if hi and lo else "")
    # External RTL only: a port driven straight from another port or a shared tie cell is
    # written as `assign {a, b} = ...`, which OpenSTA's Verilog reader rejects; a buffer on
    # each such connection makes it a cell. (This project's designs have none, and their
    # flow is left exactly as it was.)
    buf = info.buffer
    insbuf = (f"insbuf -buf {buf.name} {buf.inputs[0]} {next(iter(buf.outputs))}"
              if design.params.get("design") == "rtl" else "")
    period_ps = float(clock_ps) if clock_ps else DEFAULT_CLOCK_PS
    if period_ps <= 0:
        raise ValueError(f"clock period must be positive, got {clock_ps!r} ps")
    constr = workdir / "abc.constr"
    # Fanout-of-four load on each module output, in the library's capacitance unit.
    nand2_cap = max(info.nand2.input_caps.values(), default=0.0)
    constr.write_text(f"set_driving_cell {info.buffer.name}\nset_load {4 * nand2_cap:.6g}\n")
    if abc_seed is not None and (isinstance(abc_seed, bool) or not isinstance(abc_seed, int)
                                 or abc_seed < 0):
        raise ValueError(f"ABC seed must be a non-negative integer, got {abc_seed!r}")
    abc_script = (ABC_SCRIPT if abc_seed is None else
                  ABC_SCRIPT.replace("+strash;", f"+strash;{ABC_PERMUTE.format(seed=abc_seed)};", 1))
    abc_options = ((f"-D {period_ps:g} " if abc_delay_target else "")
                   + f"-constr {constr.name} -script {abc_script}")
    # stamps: time-stamped log lines, from which the time of each step is read (profile.py).
    paths, synth_s = run_yosys(
        yosys, YOSYS_ASIC if one_process else YOSYS_ASIC_MAP, design=design, workdir=workdir,
        flow="asic", library_name=info.name, keep_hierarchy=keep, liberty=info.path,
        abc_options=abc_options, hilomap=hilomap, insbuf=insbuf,
        rtlil=str(generic) if generic else "",
        outputs={"netlist": (f"{design.name}.netlist.v", "Yosys netlist"),
                 "stat_json": ("yosys_stat.json", "Yosys statistics"),
                 "stat_txt": ("yosys_stat.txt", None)},
        timeout=timeout, stamps=True, fast_clock=True)
    netlist, stat_txt = paths["netlist"], paths["stat_txt"]
    log = workdir / "yosys_asic.log"
    stat = json.loads(strip_stamps(paths["stat_json"].read_text()))
    area = area_breakdown(stat, design, library)
    yosys_area = _yosys_total_area(strip_stamps(stat_txt.read_text()) if stat_txt.exists() else "")
    if yosys_area is None or abs(yosys_area - area["total_um2"]) > 1e-6 * max(1.0, yosys_area) + 0.01:
        raise ToolError(f"area cross-check failed: cells x Liberty areas give "
                        f"{area['total_um2']:.3f}, Yosys stat -liberty says {yosys_area}")
    nand2 = library.nand2_area
    t1 = time.monotonic()
    timing = run_sta(netlist=netlist, top=design.name, liberty=info.path,
                     library_name=info.name, clock=design.clock, reset=design.reset,
                     period_ns=period_ps / 1000.0, wire_load=info.default_wire_load or None,
                     time_unit_ps=info.time_unit_ps,
                     category=lambda inst: design.category(inst) if inst else CONTROL,
                     workdir=workdir, timeout=timeout,
                     driving_cell=(info.buffer.name, next(iter(info.buffer.outputs))),
                     output_load=4 * nand2_cap, stages=stages)
    sta_s = time.monotonic() - t1
    return {
        "target": "asic",
        "library": {
            "key": library.key, "name": info.name, "title": library.title,
            "corner": library.corner, "source": library.source,
            "nand2_cell": info.nand2.name, "nand2_area_um2": nand2,
            "wire_load": info.default_wire_load or "none",
        },
        "flow": (("Yosys: flatten all, " if flat else
                  "Yosys: flatten below the top's children, ") + "synth, dfflibmap, abc -liberty "
                 f"(&nf mapping, then buffer/upsize/dnsize with ports driven by {info.buffer.name}"
                 + (f", delay target {period_ps:g} ps" if abc_delay_target else "")
                 + (f", inputs permuted with seed {abc_seed}" if abc_seed is not None else "")
                 + "); "
                 f"OpenSTA: ideal clock, wire load {info.default_wire_load or 'none'}, I/O delays 0, "
                 f"inputs driven by {info.buffer.name}, outputs loaded by 4 NAND2 inputs, "
                 "asynchronous reset a false path"),
        "area": {
            "total_um2": round(area["total_um2"], 3),
            "total_nand2": round(area["total_um2"] / nand2, 1),
            "blocks_um2": {k: round(v, 3) for k, v in area["blocks_um2"].items()},
            "blocks_nand2": {k: round(v / nand2, 1) for k, v in area["blocks_um2"].items()},
            "instances": area["instances"],
            # Per block, the fingerprints of its instances' RTL (see Design.fingerprint).
            "rtl_sha256": area["rtl_sha256"],
            "cells": area["cells"],
            "flip_flops": area["flip_flops"],
            "yosys_stat_um2": yosys_area,
        },
        "timing": timing,
        "runtime_s": {"yosys": round(synth_s, 1), "sta": round(sta_s, 1)},
        # Where the Yosys time went (synth, ABC's library mapping, the rest), from its log.
        # (For the mapping run alone: the generic part's steps are its own record's, or
        # ``generic_steps_s`` where it ran here.)
        "steps_s": {**yosys_steps(log.read_text(errors="replace"), mapping=not one_process),
                    "opensta": round(sta_s, 2)},
        **({"generic_steps_s": generic_steps} if generic_steps else {}),
        "abc_seed": abc_seed,
    }
