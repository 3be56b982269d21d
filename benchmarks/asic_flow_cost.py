"""CPU cost and QoR of ASIC flow variants on one design (docs/synthesis.md, "Where the time
goes"). Two modes, each printing one JSON line per run:

    # the flow before and after the split: one Yosys process with the full STA, against
    # the generic part once plus a mapping without the stage analysis
    .venv/bin/python benchmarks/asic_flow_cost.py split --unit if4 --arch reference \\
        --block-size 16 --clock-ps 3000
    # ABC script variants, each mapping the same generic RTLIL
    .venv/bin/python benchmarks/asic_flow_cost.py abc --unit if4 --block-size 4 \\
        --clock-ps 6000,3000,2000
    # OpenSTA with and without the stage analysis, on the netlist of one mapping
    .venv/bin/python benchmarks/asic_flow_cost.py sta --unit if4 --block-size 16 \\
        --clock-ps 6000

CPU seconds are those of the tools (Yosys, ABC, OpenSTA), so they hold whatever the load;
the step times in ``steps_wall_s`` are wall seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

from if4mac.synth import asic
from if4mac.synth.designs import CONTROL, make_design
from if4mac.synth.libraries import resolve_library
from if4mac.synth.sta import run_sta

#: The variants compared with ``ABC_SCRIPT`` (docs/synthesis.md gives the outcome).
ABC_VARIANTS = {
    "current": asic.ABC_SCRIPT,
    "no-scorr-dretime": asic.ABC_SCRIPT.replace("scorr;", "").replace("dretime;", ""),
    "dch-only": "+strash;&get,-n;&dch,-f;&nf,{D};&put;buffer,-p;upsize,{D};dnsize,{D}",
}


def _cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _row(r: dict, **extra) -> dict:
    return {**extra, "area_um2": r["area"]["total_um2"],
            "period_ps": r["timing"]["critical_path"]["min_period_ps"],
            "steps_wall_s": r["steps_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("split", "abc", "sta"))
    ap.add_argument("--unit", default="if4")
    ap.add_argument("--arch", default="reference")
    ap.add_argument("--block-size", type=int, default=4)
    ap.add_argument("--clock-ps", default="3000")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    kw = {} if args.arch == "reference" else {"arch": args.arch}
    design = make_design("mac", unit=args.unit, block_size=args.block_size, **kw)
    lib = resolve_library("nangate45", None)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="flow-cost-"))
    name = f"{args.unit}-{args.arch}-b{args.block_size}"
    c0 = _cpu()
    generic = asic.synth_generic(design, work / "generic", flat=True)
    print(json.dumps({"design": name, "step": "generic", "cpu_s": round(_cpu() - c0, 1)}),
          flush=True)
    for clock in (float(c) for c in args.clock_ps.split(",")):
        common = dict(clock_ps=clock, abc_delay_target=True, flat=True)
        if args.mode == "split":
            c0 = _cpu()
            old = asic.synth_asic(design, lib, work / f"one-{clock:g}", one_process=True,
                                  **common)
            print(json.dumps(_row(old, design=name, clock_ps=clock, flow="one process",
                                  cpu_s=round(_cpu() - c0, 1))), flush=True)
            c0 = _cpu()
            new = asic.synth_asic(design, lib, work / f"map-{clock:g}", stages=False,
                                  generic=generic["rtlil"], **common)
            print(json.dumps(_row(new, design=name, clock_ps=clock, flow="mapping only",
                                  cpu_s=round(_cpu() - c0, 1))), flush=True)
            continue
        if args.mode == "sta":
            r = asic.synth_asic(design, lib, work / f"map-{clock:g}", stages=False,
                                generic=generic["rtlil"], **common)
            netlist = work / f"map-{clock:g}" / f"{design.name}.netlist.v"
            info = lib.info
            for stages in (True, False):
                c0 = _cpu()
                t = run_sta(netlist=netlist, top=design.name, liberty=info.path,
                            library_name=info.name, clock=design.clock, reset=design.reset,
                            period_ns=clock / 1000.0,
                            wire_load=info.default_wire_load or None,
                            time_unit_ps=info.time_unit_ps,
                            category=lambda inst: design.category(inst) if inst else CONTROL,
                            workdir=netlist.parent,
                            driving_cell=(info.buffer.name, next(iter(info.buffer.outputs))),
                            output_load=4 * max(info.nand2.input_caps.values()),
                            stages=stages)
                print(json.dumps({"design": name, "clock_ps": clock, "stages": stages,
                                  "cpu_s": round(_cpu() - c0, 2),
                                  "period_ps": t["critical_path"]["min_period_ps"],
                                  "n_stages": len(t["stages"])}), flush=True)
            continue
        for variant, script in ABC_VARIANTS.items():
            asic.ABC_SCRIPT = script
            c0 = _cpu()
            r = asic.synth_asic(design, lib, work / f"{variant}-{clock:g}", stages=False,
                                generic=generic["rtlil"], **common)
            print(json.dumps(_row(r, design=name, clock_ps=clock, abc=variant,
                                  cpu_s=round(_cpu() - c0, 1))), flush=True)


if __name__ == "__main__":
    main()
