"""The three architectures side by side on the Nangate 45 flow, flat (issue 13's table).

    python benchmarks/fused_table.py [--block-size 16] [--jobs 2] [--workdir build/fused_table]
                                     [--only ARCH[:CONVERTER]] [--clock-ps PS] [--json FILE]

Synthesises every configuration below flat (``synthesize(target="asic", flat=True)``, the
flow of the report's flat runs: Yosys + ABC, OpenSTA) ``--jobs`` at a time, reusing a run
whose record in the work directory still matches its Verilog (and clock), and prints a
Markdown table:
area, flip-flops, the achieved clock period (OpenSTA's register-to-register minimum),
latency, each fused unit's area against its reference counterpart (pipelined tree), and
IF4 / NVFP4 per architecture. ``--clock-ps``: give ABC that period as its delay target and
OpenSTA that clock (the report's ladder points are such runs); default: no ABC target, a
10 ns STA clock.

Configurations: reference (pipelined and shared tree), fused-fp32, fused-exact with the
pipelined converter, and for IF4 fused-exact with the serial converter, both units.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from if4mac.golden import UNITS, MacConfig
from if4mac.hdl.design import mac_design
from if4mac.synth.flow import run_name, synthesize, write_result

#: (label, MacConfig fields beyond unit and block size); IF4-only rows name it.
ROWS = (
    ("reference pipelined", {"reduction": "pipelined"}),
    ("reference shared", {"reduction": "shared"}),
    ("fused-fp32", {"arch": "fused-fp32"}),
    ("fused-exact", {"arch": "fused-exact"}),
    ("fused-exact serial /49", {"arch": "fused-exact", "converter": "serial"}),
)


def configs(block_size: int, only=None):
    for label, fields in ROWS:
        tag = fields.get("arch", "reference") + (
            ":" + fields["converter"] if "converter" in fields else "")
        if only and tag not in only and label not in only:
            continue
        for unit in UNITS:
            if fields.get("converter") == "serial" and unit != "if4":
                continue
            yield label, MacConfig(unit, block_size, **fields)


def one(config: MacConfig, workdir: Path, clock_ps: float | None = None, log=print) -> dict:
    name = run_name("mac", "asic", unit=config, library="nangate45") + "-flat" + (
        f"-{clock_ps:g}ps" if clock_ps else "")
    path = workdir / "runs" / f"{name}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if rec.get("verilog_sha256") == mac_design(config).sha256:
            log(f"reusing {name}")
            return rec
    log(f"synthesising {name} ...")
    rec = synthesize(target="asic", unit=config, library="nangate45", flat=True,
                     clock_ps=clock_ps, abc_delay_target=clock_ps is not None,
                     workdir=workdir / "work")
    write_result(rec, path)
    log(f"{name}: {rec['area']['total_um2']:.0f} um^2, "
        f"{rec['timing']['critical_path']['min_period_ps']:.0f} ps, {rec['runtime_s']} s")
    return rec


def table(rows) -> str:
    """Markdown table of ``rows`` [(label, config, record)]."""
    by = {(label, c.unit): rec for label, c, rec in rows}
    out = ["| architecture | unit | area um^2 | flip-flops | period ps | latency | "
           "vs reference pipelined | IF4 / NVFP4 |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, c, rec in rows:
        area = rec["area"]["total_um2"]
        ref = by.get(("reference pipelined", c.unit))
        vs = f"1/{ref['area']['total_um2'] / area:.1f}" if ref and label != \
            "reference pipelined" else "-"
        nv = by.get((label, "nvfp4"))
        ratio = f"{area / nv['area']['total_um2']:.2f}" if c.unit == "if4" and nv else (
            f"{area / by[('fused-exact', 'nvfp4')]['area']['total_um2']:.2f} (vs NVFP4 "
            "fused-exact)" if label.endswith("serial /49") and ("fused-exact", "nvfp4") in by
            else "-")
        out.append(f"| {label} | {c.unit} | {area:,.0f} | {rec['area']['flip_flops']} | "
                   f"{rec['timing']['critical_path']['min_period_ps']:.0f} | "
                   f"{rec['design']['latency']} | {vs} | {ratio} |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("build/fused_table"))
    parser.add_argument("--only", nargs="*", help="rows to run, e.g. fused-fp32 "
                        "fused-exact:serial 'reference pipelined'")
    parser.add_argument("--clock-ps", type=float, help="ABC delay target and STA clock "
                        "(default: none, 10 ns STA)")
    parser.add_argument("--json", type=Path, help="also write the rows' records here")
    args = parser.parse_args(argv)
    todo = list(configs(args.block_size, args.only))
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        recs = list(pool.map(lambda lc: one(lc[1], args.workdir, args.clock_ps), todo))
    rows = [(label, c, rec) for (label, c), rec in zip(todo, recs)]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([r for _, _, r in rows], indent=1))


if __name__ == "__main__":
    main()
