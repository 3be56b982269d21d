"""``if4mac report``: synthesise NVFP4 and IF4 side by side and write reports/.

Three jobs, three modules: :mod:`.runs` runs or reuses the configurations (:func:`collect`),
:mod:`.figures` draws the plots, and this module writes the markdown report -- one function
per section -- and the JSON with every number in it (:func:`render`).
"""

from __future__ import annotations

import json
from pathlib import Path

from if4mac.golden import DEFAULT_BLOCK_SIZE
from if4mac.golden.mac import REDUCTIONS
from if4mac.safe_output import write_text

from .designs import BLOCK_ORDER
from .figures import figures as draw_figures
from .report_data import blocks_present, find_run, noise_floor, pct, ratio, same_rtl
from .runs import REPORT_SCHEMA, UNITS_COMPARED, collect

__all__ = ["UNITS_COMPARED", "PAPER_LATENCY_RATIO", "REPORT_SCHEMA", "collect", "render",
           "generate_report"]

#: The IF4 paper's one hardware figure: its IF4 MAC's latency is 4.7 % above NVFP4's.
PAPER_LATENCY_RATIO = 1.047


def _stage_label(stage: dict) -> str:
    regs = stage["registers"]
    shown = ", ".join(f"`{r}`" for r in regs[:3]) + (" ..." if len(regs) > 3 else "")
    return shown


def _paper_section(data) -> list[str]:
    """The paper's +4.7 % next to ours, with the reasons they differ, from the numbers."""
    lines = ["## Against the paper's figure", ""]
    pair = [find_run(data, "asic", u, "pipelined") for u in UNITS_COMPARED]
    if any(p is None for p in pair):
        return lines + ["(needs the ASIC runs of the pipelined reduction)", ""]
    nv, if4 = pair
    cp_nv = nv["timing"]["critical_path"]["min_period_ps"]
    cp_if = if4["timing"]["critical_path"]["min_period_ps"]
    st_nv = {s["stage"]: s for s in nv["timing"]["stages"] if s["stage"]}
    st_if = {s["stage"]: s for s in if4["timing"]["stages"] if s["stage"]}
    common = sorted(set(st_nv) & set(st_if))
    blocks = [b for b in BLOCK_ORDER if b in nv["area"].get("rtl_sha256", {})]
    differ = [b for b in blocks if same_rtl(nv, if4, b) is False]
    same = [b for b in blocks if same_rtl(nv, if4, b)]
    # The stages whose worst IF4 path runs through a block IF4 changes.
    touched = [k for k in common if set(st_if[k]["blocks"]) & set(differ)] or \
        [max(common, key=lambda k: st_if[k]["min_period_ps"] - st_nv[k]["min_period_ps"])]
    k2 = max(touched, key=lambda k: st_if[k]["min_period_ps"])
    d_nv, d_if = st_nv[k2]["min_period_ps"], st_if[k2]["min_period_ps"]
    sum_nv = sum(st_nv[k]["min_period_ps"] for k in common if k > 1)
    sum_if = sum(st_if[k]["min_period_ps"] for k in common if k > 1)
    lat_nv, lat_if = nv["design"].get("latency"), if4["design"].get("latency")
    lines += [
        "The IF4 paper reports one hardware number, from a closed-source flow: its IF4 MAC's "
        "latency is **+4.7 %** above its NVFP4 MAC's. Here, for block size "
        f"{data['block_size']} with the pipelined tree:",
        "",
        "| measure | NVFP4 | IF4 | IF4 / NVFP4 |",
        "|---|---:|---:|---:|",
        f"| paper: MAC latency | | | {PAPER_LATENCY_RATIO:.3f} |",
        f"| cycles from a closing beat to `done` | {lat_nv} | {lat_if} | {ratio(lat_if, lat_nv)} |",
        f"| clock period (critical path), ps | {cp_nv:.1f} | {cp_if:.1f} | {ratio(cp_if, cp_nv)} |",
        f"| stage {k2} (through {', '.join(b for b in st_if[k2]['blocks'] if b in differ) or 'the changed logic'}), ps"
        f" | {d_nv:.1f} | {d_if:.1f} | {ratio(d_if, d_nv)} |",
        f"| sum of the datapath stages (2-{common[-1]}), ps | {sum_nv:.1f} | {sum_if:.1f} | "
        f"{ratio(sum_if, sum_nv)} |",
    ]
    flat = [find_run(data, "asic", u, "pipelined", flat=True) for u in UNITS_COMPARED]
    if all(flat):
        fa = [f["area"]["total_um2"] for f in flat]
        fc = [f["timing"]["critical_path"]["min_period_ps"] for f in flat]
        lines += [
            f"| whole design flat: clock period, ps | {fc[0]:.1f} | {fc[1]:.1f} | "
            f"{ratio(fc[1], fc[0])} |",
            f"| whole design flat: area, um^2 | {fa[0]:,.1f} | {fa[1]:,.1f} | "
            f"{ratio(fa[1], fa[0])} |",
        ]
    lines += [
        "",
        "Why the numbers differ:",
        "",
    ]
    if differ:
        lines.append(
            f"* IF4 changes the RTL of the {' and the '.join(differ)} only (an INT4 significand "
            "reaches 8, so an element product is 4 x 4 bits instead of 2 x 2; the scale path "
            "adds the 6/7 and 36/49 factors). The "
            f"{', '.join(same)} are the same RTL in both units, and the cycle latency is the "
            f"same ({lat_if} cycles).")
    crit_blocks = if4["timing"]["critical_path"]["blocks"]
    crit_same = bool(crit_blocks) and all(same_rtl(nv, if4, b) for b in crit_blocks
                                          if b in nv["area"].get("rtl_sha256", {}))
    if crit_same and k2 != max(st_if, key=lambda k: st_if[k]["min_period_ps"]):
        lines.append(
            f"* With the blocks kept apart, the clock is set by the path through the "
            f"{', '.join(crit_blocks)} "
            f"({cp_if:.0f} ps for IF4, {cp_nv:.0f} ps for NVFP4), logic that is the same in "
            f"both units. IF4's extra logic lengthens stage {k2} by {pct(d_if, d_nv)}, but "
            f"that stage keeps {cp_if - d_if:.0f} ps of slack, so in this pipeline IF4 costs "
            "area and no clock period ("
            + ("the two critical paths are identical)." if cp_if == cp_nv else
               f"{pct(cp_if, cp_nv)}, mapping noise on the same logic: see the area "
               "tables)."))
    else:
        lines.append(
            f"* The critical path runs through {', '.join(crit_blocks) or 'registers only'}; "
            f"IF4 changes the clock period by {pct(cp_if, cp_nv)} and stage {k2} by "
            f"{pct(d_if, d_nv)}.")
    if all(flat):
        lines.append(
            f"* Synthesised flat, where NVFP4's narrow scaled products shrink its binary32 "
            f"datapath and IF4's do not, IF4 is {pct(fa[1], fa[0])} in area and "
            f"{pct(fc[1], fc[0])} in clock period over NVFP4. Clock-period differences "
            "within about 10 % are within this flow's mapping noise (docs/synthesis.md), so "
            "the area is the robust part of the answer.")
    lines += [
        "* A MAC built as fewer, longer stages carries the element decode in its latency; "
        "adding up our stage delays as a stand-in for such a design gives "
        f"{pct(sum_if, sum_nv)}, and the identical stages' mapping noise is part of that "
        "sum. The paper's figure comes from its own pipeline, library, corner and tools, none "
        "of them open, so the two cannot be matched exactly.",
        "",
    ]
    return lines


def _runs_of(data):
    """The first per-block ASIC run and the first ECP5 run (None where there is none)."""
    asic = next((r for r in data["runs"] if r["target"] == "asic" and not r.get("flat")), None)
    ecp5 = next((r for r in data["runs"] if r["target"] == "ecp5"), None)
    return asic, ecp5


def _header_section(data) -> list[str]:
    B = data["block_size"]
    git = data["git"]
    commit = git.get("commit", "unknown")
    return [
        f"# IF4 vs NVFP4 MAC: area and delay, block size {B}",
        "",
        "Generated by `if4mac report"
        + (f" --block-size {B}" if B != DEFAULT_BLOCK_SIZE else "") + "` from commit "
        f"`{commit}`" + (" with local changes to hdl/, golden/ or synth/" if git.get("dirty")
                          else "") + ". Every number is in `synthesis.json`; "
        "docs/synthesis.md describes the flows.",
        "",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in data["tools"].items()) + ".",
        "",
    ]


def _setup_section(data) -> list[str]:
    asic_any, ecp5_any = _runs_of(data)
    lines = []
    lines += ["## Setup", ""]
    if asic_any:
        lib = asic_any["library"]
        lines.append(f"* **ASIC**: {lib['title']} (`{lib['name']}`), corner {lib['corner']}, "
                     f"wire load {lib['wire_load']}; NAND2 equivalent = {lib['nand2_cell']} = "
                     f"{lib['nand2_area_um2']:g} um^2; library from {lib['source']}. "
                     f"Flow: {asic_any['flow']}. Delays are minimum clock periods (clock-to-Q, "
                     "logic, setup) of the mapped netlist, before placement.")
    if ecp5_any:
        dev = ecp5_any["device"]
        lines.append(f"* **FPGA**: {dev['family']} {dev['part']}, {dev['package']}, speed "
                     f"{dev['speed']}. Flow: {ecp5_any['flow']}. The MAC sits inside a wrapper "
                     f"that loads each beat's {ecp5_any['design'].get('frame_width')} operand "
                     f"bits through a port of {ecp5_any['design'].get('serial_width')} bits "
                     f"({ecp5_any['design'].get('pins')} pins in all), so it fits the package; "
                     "LUT/FF/DSP counts below are the MAC's own (Yosys, MAC kept as its own "
                     "module), Fmax is after place and route.")
    lines.append("")

    return lines


def _summary_section(data) -> list[str]:
    asic_any, ecp5_any = _runs_of(data)
    lines = []
    # Summary.
    lines += ["## Summary: IF4 / NVFP4", ""]
    head = "| measure |"
    sep = "|---|"
    for red in REDUCTIONS:
        head += f" NVFP4 {red} | IF4 {red} | ratio |"
        sep += "---:|---:|---:|"
    lines += [head, sep]

    # The run a row reads is named by its arguments, not guessed from the label's words.
    def row(label, getter, fmt="{:,.1f}", *, target="asic", flat=False):
        cells = f"| {label} |"
        for red in REDUCTIONS:
            vals = []
            for unit in UNITS_COMPARED:
                rec = find_run(data, target, unit, red, flat=flat)
                vals.append(getter(rec) if rec else None)
            cells += "".join(f" {fmt.format(v) if v is not None else 'n/a'} |" for v in vals)
            cells += f" {ratio(vals[1], vals[0])} |"
        return cells

    flat_any = any(r.get("flat") for r in data["runs"])
    if flat_any:
        lines += [
            row("ASIC area (whole design, flat), um^2", lambda r: r["area"]["total_um2"],
                flat=True),
            row("ASIC area (flat), NAND2 eq.", lambda r: r["area"]["total_nand2"], "{:,.0f}",
                flat=True),
            row("ASIC flip-flops (flat)", lambda r: r["area"]["flip_flops"], "{:,}", flat=True),
            row("ASIC critical path (flat), ps",
                lambda r: r["timing"]["critical_path"]["min_period_ps"], flat=True),
        ]
    if asic_any:
        lines += [
            row("ASIC area (blocks kept apart), um^2", lambda r: r["area"]["total_um2"]),
            row("ASIC area (blocks apart), NAND2 eq.", lambda r: r["area"]["total_nand2"],
                "{:,.0f}"),
            row("ASIC flip-flops (blocks apart)", lambda r: r["area"]["flip_flops"], "{:,}"),
            row("ASIC critical path (blocks apart), ps",
                lambda r: r["timing"]["critical_path"]["min_period_ps"]),
            row("ASIC latency, cycles", lambda r: r["design"].get("latency"), "{}"),
        ]
    if ecp5_any:
        lines += [
            row("ECP5 LUT4", lambda r: r["yosys_cells"]["LUT4"], "{:,}", target="ecp5"),
            row("ECP5 carry cells (CCU2C)", lambda r: r["yosys_cells"]["CCU2C"], "{:,}",
                target="ecp5"),
            row("ECP5 flip-flops", lambda r: r["yosys_cells"]["TRELLIS_FF"], "{:,}", target="ecp5"),
            row("ECP5 DSP (MULT18X18D)", lambda r: r["yosys_cells"]["MULT18X18D"], "{:,}",
                target="ecp5"),
            row("ECP5 Fmax, MHz", lambda r: r["fmax_mhz"], "{:.2f}", target="ecp5"),
        ]
    lines += [""]
    if flat_any:
        lines += [
            "Two ASIC syntheses of each design: *flat* optimises the whole MAC at once, as a "
            "production flow would, and is its true cost; *blocks kept apart* synthesises "
            "each block on its own (the top's children stay separate modules), which is what "
            "lets area be read per block below, but no constant or narrow value crosses a "
            "block boundary. The difference matters here: an NVFP4 element product has at "
            "most 4 significant bits and an E4M3 x E4M3 scale product at most 8, so NVFP4's "
            "scaled products m_i = p_i x sf have at most 12 and their low mantissa bits are "
            "always zero; the flat synthesis removes those register bits and the logic they "
            "feed. IF4's 6/7 and 36/49 factors give sf, and so m_i, full 24-bit significands, "
            "so IF4 keeps the whole binary32 datapath. The flat IF4 / NVFP4 ratio is the cost "
            "of IF4; the per-block tables show where IF4's own logic sits.", ""]

    return lines


def _area_section(data, figures) -> list[str]:
    lines = []
    lines += ["## ASIC area by block (blocks kept apart)", "",
              "*RTL* says whether a block's Verilog is the same in both units. "
              "Flip-flops are counted under *registers* wherever they sit (pipeline, lane "
              "and tree registers); each block's row is its combinational logic. "
              "*Control and register enables* is the top's own glue: the enable "
              "multiplexers of the pipeline registers and the beat/segment control.", ""]
    if figures:
        lines += ["![area by block](area.png)", ""]
    for red in REDUCTIONS:
        pair = [find_run(data, "asic", u, red) for u in UNITS_COMPARED]
        if any(p is None for p in pair):
            continue
        nv, if4 = pair
        lines += [f"### {red} reduction", "",
                  "| block | instances | RTL | NVFP4 um^2 | IF4 um^2 | IF4 - NVFP4 um^2 | "
                  "NVFP4 NAND2 | IF4 NAND2 | IF4 / NVFP4 |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for block in blocks_present(pair):
            a = nv["area"]["blocks_um2"].get(block, 0.0)
            b = if4["area"]["blocks_um2"].get(block, 0.0)
            n = if4["area"]["instances"].get(block, "")
            same = {True: "same", False: "**differs**", None: ""}[same_rtl(nv, if4, block)]
            lines.append(f"| {block} | {n} | {same} | {a:,.1f} | {b:,.1f} | {b - a:+,.1f} | "
                         f"{nv['area']['blocks_nand2'].get(block, 0):,.0f} | "
                         f"{if4['area']['blocks_nand2'].get(block, 0):,.0f} | {ratio(b, a)} |")
        ta, tb = nv["area"]["total_um2"], if4["area"]["total_um2"]
        lines.append(f"| **total** | | | **{ta:,.1f}** | **{tb:,.1f}** | **{tb - ta:+,.1f}** | "
                     f"**{nv['area']['total_nand2']:,.0f}** | **{if4['area']['total_nand2']:,.0f}**"
                     f" | **{ratio(tb, ta)}** |")
        noise = noise_floor(nv, if4)
        if noise:
            lines += ["", f"Blocks marked *same* are identical RTL in both units (their "
                      f"Verilog differs only in generated names); their areas still differ "
                      f"by up to {noise[0] * 100:.1f} % ({noise[1]}), because ABC's "
                      "choices depend on net names and order. Read smaller differences "
                      "than that as noise."]
        lines.append("")

    return lines


def _timing_section(data, figures) -> list[str]:
    lines = []
    lines += ["## ASIC timing", "",
              "Stages are numbered by register level from the inputs (1 = input "
              "registers); each row is the worst path into that stage's registers.", ""]
    if figures:
        lines += ["![delay per stage](delay.png)", ""]
    for red in REDUCTIONS:
        pair = [find_run(data, "asic", u, red) for u in UNITS_COMPARED]
        if any(p is None for p in pair):
            continue
        nv, if4 = pair
        lines += [f"### {red} reduction", ""]
        for unit, rec in zip(UNITS_COMPARED, pair):
            cp = rec["timing"]["critical_path"]
            lines.append(f"* {unit.upper()} critical path: **{cp['min_period_ps']:.1f} ps** "
                         f"({rec['timing']['fmax_mhz']} MHz), `{cp['startpoint']}` -> "
                         f"`{cp['endpoint']}`, {cp['logic_levels']} cells through "
                         f"{', '.join(cp['blocks']) or 'wires only'}.")
        lines += ["", "| stage | registers (IF4) | worst path through | NVFP4 ps | IF4 ps | "
                  "IF4 / NVFP4 |", "|---:|---|---|---:|---:|---:|"]
        st_nv = {s["stage"]: s for s in nv["timing"]["stages"]}
        st_if = {s["stage"]: s for s in if4["timing"]["stages"]}
        for k in sorted(set(st_nv) | set(st_if), key=lambda x: (x is None, x or 0)):
            a = st_nv.get(k, {}).get("min_period_ps")
            b = st_if.get(k, {}).get("min_period_ps")
            ref = st_if.get(k) or st_nv.get(k)
            lines.append(f"| {k if k else 'other'} | {_stage_label(ref)} | "
                         f"{', '.join(ref['blocks']) or 'registers only'} | "
                         f"{a if a is not None else 'n/a'} | {b if b is not None else 'n/a'} | "
                         f"{ratio(b, a)} |")
        lines.append("")

    return lines


def _ecp5_section(data) -> list[str]:
    lines = []
    lines += ["## ECP5", "",
              "| configuration | LUT4 | CCU2C | PFUMX | FF | MULT18X18D | wrapper FF | "
              "placed COMB / FF (with wrapper) | Fmax, MHz |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for red in REDUCTIONS:
        for unit in UNITS_COMPARED:
            r = find_run(data, "ecp5", unit, red)
            if r is None:
                continue
            y, p = r["yosys_cells"], r["placed"]
            lines.append(f"| {unit.upper()} {red} | {y['LUT4']:,} | {y['CCU2C']:,} | "
                         f"{y['PFUMX']:,} | {y['TRELLIS_FF']:,} | {y['MULT18X18D']} | "
                         f"{r['wrapper_cells']['TRELLIS_FF']} | {p['TRELLIS_COMB']:,} / "
                         f"{p['TRELLIS_FF']:,} | {r['fmax_mhz']:.2f} |")
    lines.append("")

    return lines


def render(data: dict, outdir: str | Path) -> list[Path]:
    """Write ``synthesis.md``, ``synthesis.json``, ``area.png`` and ``delay.png``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(data, outdir)
    asic_any, ecp5_any = _runs_of(data)
    lines = _header_section(data) + _setup_section(data) + _summary_section(data)
    if asic_any:
        lines += _area_section(data, figures) + _timing_section(data, figures)
    if ecp5_any:
        lines += _ecp5_section(data)
    if asic_any:
        lines += _paper_section(data)
    md = write_text(outdir / "synthesis.md", "\n".join(lines).rstrip() + "\n")
    js = write_text(outdir / "synthesis.json", json.dumps(data, indent=2) + "\n")
    return [md, js, *figures]


def generate_report(*, outdir: str | Path = "reports", **kwargs) -> list[Path]:
    """:func:`collect` then :func:`render`."""
    return render(collect(**kwargs), outdir)

