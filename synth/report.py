"""``if4mac report``: synthesise NVFP4 and IF4 side by side and write reports/.

:func:`collect` runs (or reuses) the eight configurations -- two units x two reductions x
two targets -- and :func:`render` writes the markdown report, the JSON with every number
in it, and the figures. A run is reused from the work directory only when its record
matches the design's Verilog (by hash), the library file and the tool versions, so a
report can never mix stale numbers with fresh ones.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from if4mac.golden.mac import REDUCTIONS
from if4mac.safe_output import atomic_file, write_text

from .designs import BLOCK_ORDER, fpga_design, make_design
from .flow import SCHEMA, run_name, synthesize, write_result
from .libraries import resolve_library
from .tools import git_revision, tool_versions

__all__ = ["UNITS_COMPARED", "PAPER_LATENCY_RATIO", "collect", "render", "generate_report"]

#: Baseline first: every ratio is IF4 / NVFP4.
UNITS_COMPARED = ("nvfp4", "if4")
#: The IF4 paper's one hardware figure: its IF4 MAC's latency is 4.7 % above NVFP4's.
PAPER_LATENCY_RATIO = 1.047
REPORT_SCHEMA = "if4mac-report/1"


def _configs(block_size: int, targets, reductions=REDUCTIONS, flat: bool = True):
    for target in targets:
        for flat_run in ((False, True) if target == "asic" and flat else (False,)):
            for reduction in reductions:
                for unit in UNITS_COMPARED:
                    cfg = {"target": target, "unit": unit, "block_size": block_size,
                           "reduction": reduction}
                    if flat_run:
                        cfg["flat"] = True
                    yield cfg


def _cached(path: Path, cfg: dict, library_path: str | None) -> dict | None:
    """The saved record at ``path`` if it still describes this configuration exactly."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("schema") != SCHEMA:
        return None
    if bool(rec.get("flat", rec.get("name", "").endswith("-flat"))) != bool(cfg.get("flat")):
        return None
    kind = "mac"
    des = (make_design(kind, unit=cfg["unit"], block_size=cfg["block_size"],
                       reduction=cfg["reduction"]) if cfg["target"] == "asic" else
           fpga_design(kind, unit=cfg["unit"], block_size=cfg["block_size"],
                       reduction=cfg["reduction"]))
    if rec.get("verilog_sha256") != des.sha256:
        return None
    if library_path and rec.get("target") == "asic":
        # The record names its library; the file's content must still be the same one.
        if rec.get("library_sha256") not in (None, _file_sha256(library_path)):
            return None
    versions = tool_versions()
    if any(versions.get(k) != v for k, v in rec.get("tools", {}).items()):
        return None
    rec.setdefault("flat", bool(cfg.get("flat")))
    if rec.get("target") == "asic" and "rtl_sha256" not in rec["area"]:
        # Records from before fingerprints: they follow from the (matching) Verilog alone.
        rtl: dict[str, set[str]] = {}
        for child in des.child_modules():
            inst = child[len(des.name) + 1:]
            rtl.setdefault(des.category(inst), set()).add(des.fingerprint(inst))
        rec["area"]["rtl_sha256"] = {k: sorted(v) for k, v in rtl.items()}
    return rec


def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def collect(*, block_size: int = 16, targets=("asic", "ecp5"), library: str | None = None,
            liberty: str | None = None, workdir: str | Path = "build/report",
            jobs: int = 2, reuse: bool = True, flat: bool = True,
            timeout: float | None = 3600, log=print) -> dict:
    """Run (or reuse) every configuration; return the report data.

    ``flat`` adds, for the ASIC, a synthesis of each whole design flattened: the per-block
    runs keep block boundaries (so area can be read per block), which also stops constants
    and narrow values from crossing them; the flat runs give each design's true total.
    """
    workdir = Path(workdir)
    lib = resolve_library(library, liberty) if "asic" in targets else None
    configs = list(_configs(block_size, targets, flat=flat))
    runs_dir = workdir / "runs"

    def one(cfg):
        name = run_name("mac", cfg["target"], unit=cfg["unit"], block_size=cfg["block_size"],
                        reduction=cfg["reduction"], library=lib.key if lib else None) \
            + ("-flat" if cfg.get("flat") else "")
        path = runs_dir / f"{name}.json"
        if reuse:
            rec = _cached(path, cfg, lib.path if lib and cfg["target"] == "asic" else None)
            if rec is not None:
                log(f"report: reusing {name}")
                return rec
        log(f"report: synthesising {name} ...")
        extra = ({"library": library, "liberty": liberty} if cfg["target"] == "asic" else {})
        rec = synthesize(workdir=workdir / "work", timeout=timeout, **cfg, **extra)
        if cfg["target"] == "asic":
            rec["library_sha256"] = _file_sha256(lib.path)
        write_result(rec, path)
        log(f"report: {name} done")
        return rec

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        records = list(pool.map(one, configs))
    return {
        "schema": REPORT_SCHEMA,
        "block_size": block_size,
        "targets": list(targets),
        "git": git_revision(),
        "tools": tool_versions(),
        "runs": [{k: v for k, v in r.items() if k != "runtime_s"} for r in records],
    }


# --- Rendering ---------------------------------------------------------------------------------

def _find(data, target, unit, reduction, flat=False):
    for r in data["runs"]:
        d = r["design"]
        if (r["target"] == target and d["unit"] == unit and d["reduction"] == reduction
                and bool(r.get("flat")) == flat):
            return r
    return None


def _ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.3f}"


def _pct(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{(a / b - 1) * 100:+.1f} %"


def _blocks_present(runs) -> list[str]:
    names = []
    for block in BLOCK_ORDER:
        if any(r["area"]["blocks_um2"].get(block, 0) > 0 for r in runs):
            names.append(block)
    for r in runs:
        for block in r["area"]["blocks_um2"]:
            if block not in names and r["area"]["blocks_um2"][block] > 0:
                names.append(block)
    return names


def _same_rtl(nv: dict, if4: dict, block: str) -> bool | None:
    """Whether ``block`` is the same RTL in both records (None where unknown)."""
    a = nv["area"].get("rtl_sha256", {}).get(block)
    b = if4["area"].get("rtl_sha256", {}).get(block)
    return None if a is None or b is None else a == b


def _noise_floor(nv: dict, if4: dict) -> tuple[float, str] | None:
    """Largest relative area difference among blocks that are the same RTL in both units."""
    worst = None
    for block, fp in nv["area"].get("rtl_sha256", {}).items():
        if _same_rtl(nv, if4, block):
            a = nv["area"]["blocks_um2"].get(block, 0.0)
            b = if4["area"]["blocks_um2"].get(block, 0.0)
            if a > 0:
                d = abs(b / a - 1)
                if worst is None or d > worst[0]:
                    worst = (d, block)
    return worst


def _stage_label(stage: dict) -> str:
    regs = stage["registers"]
    shown = ", ".join(f"`{r}`" for r in regs[:3]) + (" ..." if len(regs) > 3 else "")
    return shown


def _figures(data, outdir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    asic = [(red, unit, _find(data, "asic", unit, red)) for red in REDUCTIONS
            for unit in UNITS_COMPARED]
    asic = [x for x in asic if x[2] is not None]
    if asic:
        blocks = _blocks_present([r for _, _, r in asic])
        fig, ax = plt.subplots(figsize=(8, 4.8))
        labels = [f"{unit.upper()}\n{red}" for red, unit, _ in asic]
        bottom = [0.0] * len(asic)
        cmap = plt.get_cmap("tab10")
        for i, block in enumerate(blocks):
            vals = [r["area"]["blocks_nand2"].get(block, 0.0) / 1000 for _, _, r in asic]
            ax.bar(labels, vals, bottom=bottom, label=block, color=cmap(i % 10),
                   edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, vals)]
        for x, total in enumerate(bottom):
            ax.text(x, total, f"{total:.1f}k", ha="center", va="bottom", fontsize=9)
        flat = [_find(data, "asic", unit, red, flat=True) for red, unit, _ in asic]
        if all(flat):
            totals = [f["area"]["total_nand2"] / 1000 for f in flat]
            ax.scatter(range(len(flat)), totals, marker="D", color="black", zorder=3,
                       label="whole design, flat")
            for x, total in enumerate(totals):
                ax.text(x + 0.12, total, f"{total:.1f}k", va="center", fontsize=8)
        lib = asic[0][2]["library"]
        ax.set_ylabel("area, thousands of NAND2 equivalents")
        ax.set_title(f"MAC area by block (blocks kept apart), B = {data['block_size']} "
                     f"({lib['title'].split(' (')[0]})", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylim(0, max(bottom) * 1.12)
        fig.tight_layout()
        path = outdir / "area.png"
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)
        files.append(path)

        fig, axes = plt.subplots(1, len(REDUCTIONS), figsize=(9, 4), sharey=True, squeeze=False)
        for ax, red in zip(axes[0], REDUCTIONS):
            pair = [_find(data, "asic", u, red) for u in UNITS_COMPARED]
            if any(p is None for p in pair):
                continue
            stages = sorted({s["stage"] or 0 for p in pair for s in p["timing"]["stages"]})
            width = 0.38
            for k, (unit, rec) in enumerate(zip(UNITS_COMPARED, pair)):
                by = {s["stage"] or 0: s["min_period_ps"] for s in rec["timing"]["stages"]}
                xs = [i + (k - 0.5) * width for i in range(len(stages))]
                ax.bar(xs, [by.get(s, 0) for s in stages], width, label=unit.upper(),
                       color=("#7f7f7f", "#d62728")[k])
            ax.set_xticks(range(len(stages)), [f"{s}" if s else "other" for s in stages])
            ax.set_xlabel("pipeline stage (register level)")
            ax.set_title(f"{red} reduction", fontsize=10)
        axes[0][0].set_ylabel("register-to-register delay, ps")
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"Worst path into each stage, B = {data['block_size']}", fontsize=10)
        fig.tight_layout()
        path = outdir / "delay.png"
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def _paper_section(data) -> list[str]:
    """The paper's +4.7 % next to ours, with the reasons they differ, from the numbers."""
    lines = ["## Against the paper's figure", ""]
    pair = [_find(data, "asic", u, "pipelined") for u in UNITS_COMPARED]
    if any(p is None for p in pair):
        return lines + ["(needs the ASIC runs of the pipelined reduction)", ""]
    nv, if4 = pair
    cp_nv = nv["timing"]["critical_path"]["min_period_ps"]
    cp_if = if4["timing"]["critical_path"]["min_period_ps"]
    st_nv = {s["stage"]: s for s in nv["timing"]["stages"] if s["stage"]}
    st_if = {s["stage"]: s for s in if4["timing"]["stages"] if s["stage"]}
    common = sorted(set(st_nv) & set(st_if))
    blocks = [b for b in BLOCK_ORDER if b in nv["area"].get("rtl_sha256", {})]
    differ = [b for b in blocks if _same_rtl(nv, if4, b) is False]
    same = [b for b in blocks if _same_rtl(nv, if4, b)]
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
        f"| cycles from a closing beat to `done` | {lat_nv} | {lat_if} | {_ratio(lat_if, lat_nv)} |",
        f"| clock period (critical path), ps | {cp_nv:.1f} | {cp_if:.1f} | {_ratio(cp_if, cp_nv)} |",
        f"| stage {k2} (through {', '.join(b for b in st_if[k2]['blocks'] if b in differ) or 'the changed logic'}), ps"
        f" | {d_nv:.1f} | {d_if:.1f} | {_ratio(d_if, d_nv)} |",
        f"| sum of the datapath stages (2-{common[-1]}), ps | {sum_nv:.1f} | {sum_if:.1f} | "
        f"{_ratio(sum_if, sum_nv)} |",
    ]
    flat = [_find(data, "asic", u, "pipelined", flat=True) for u in UNITS_COMPARED]
    if all(flat):
        fa = [f["area"]["total_um2"] for f in flat]
        fc = [f["timing"]["critical_path"]["min_period_ps"] for f in flat]
        lines += [
            f"| whole design flat: clock period, ps | {fc[0]:.1f} | {fc[1]:.1f} | "
            f"{_ratio(fc[1], fc[0])} |",
            f"| whole design flat: area, um^2 | {fa[0]:,.1f} | {fa[1]:,.1f} | "
            f"{_ratio(fa[1], fa[0])} |",
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
    crit_same = bool(crit_blocks) and all(_same_rtl(nv, if4, b) for b in crit_blocks
                                          if b in nv["area"].get("rtl_sha256", {}))
    if crit_same and k2 != max(st_if, key=lambda k: st_if[k]["min_period_ps"]):
        lines.append(
            f"* With the blocks kept apart, the clock is set by the path through the "
            f"{', '.join(crit_blocks)} "
            f"({cp_if:.0f} ps for IF4, {cp_nv:.0f} ps for NVFP4), logic that is the same in "
            f"both units. IF4's extra logic lengthens stage {k2} by {_pct(d_if, d_nv)}, but "
            f"that stage keeps {cp_if - d_if:.0f} ps of slack, so in this pipeline IF4 costs "
            "area and no clock period ("
            + ("the two critical paths are identical)." if cp_if == cp_nv else
               f"{_pct(cp_if, cp_nv)}, mapping noise on the same logic: see the area "
               "tables)."))
    else:
        lines.append(
            f"* The critical path runs through {', '.join(crit_blocks) or 'registers only'}; "
            f"IF4 changes the clock period by {_pct(cp_if, cp_nv)} and stage {k2} by "
            f"{_pct(d_if, d_nv)}.")
    if all(flat):
        lines.append(
            f"* Synthesised flat, where NVFP4's narrow scaled products shrink its binary32 "
            f"datapath and IF4's do not, IF4 is {_pct(fa[1], fa[0])} in area and "
            f"{_pct(fc[1], fc[0])} in clock period over NVFP4. Clock-period differences "
            "within about 10 % are within this flow's mapping noise (docs/synthesis.md), so "
            "the area is the robust part of the answer.")
    lines += [
        "* A MAC built as fewer, longer stages carries the element decode in its latency; "
        "adding up our stage delays as a stand-in for such a design gives "
        f"{_pct(sum_if, sum_nv)}, and the identical stages' mapping noise is part of that "
        "sum. The paper's figure comes from its own pipeline, library, corner and tools, none "
        "of them open, so the two cannot be matched exactly.",
        "",
    ]
    return lines


def render(data: dict, outdir: str | Path) -> list[Path]:
    """Write ``synthesis.md``, ``synthesis.json``, ``area.png`` and ``delay.png``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    figures = _figures(data, outdir)
    B = data["block_size"]
    git = data["git"]
    commit = git.get("commit", "unknown")
    lines = [
        f"# IF4 vs NVFP4 MAC: area and delay, block size {B}",
        "",
        "Generated by `if4mac report"
        + (f" --block-size {B}" if B != 16 else "") + "` from commit "
        f"`{commit}`" + (" with local changes to hdl/, golden/ or synth/" if git.get("dirty")
                          else "") + ". Every number is in `synthesis.json`; "
        "docs/synthesis.md describes the flows.",
        "",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in data["tools"].items()) + ".",
        "",
    ]
    asic_any = next((r for r in data["runs"] if r["target"] == "asic" and not r.get("flat")),
                    None)
    ecp5_any = next((r for r in data["runs"] if r["target"] == "ecp5"), None)
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
                     "bits through an 8-bit port (a block-16 MAC has about 180 I/O bits), so it "
                     "fits the package; LUT/FF/DSP counts below are the MAC's own (Yosys, MAC "
                     "kept as its own module), Fmax is after place and route.")
    lines.append("")

    # Summary.
    lines += ["## Summary: IF4 / NVFP4", ""]
    head = "| measure |"
    sep = "|---|"
    for red in REDUCTIONS:
        head += f" NVFP4 {red} | IF4 {red} | ratio |"
        sep += "---:|---:|---:|"
    lines += [head, sep]

    def row(label, getter, fmt="{:,.1f}"):
        cells = f"| {label} |"
        for red in REDUCTIONS:
            vals = []
            for unit in UNITS_COMPARED:
                rec = _find(data, "asic" if "ASIC" in label else "ecp5", unit, red,
                            flat="flat" in label)
                vals.append(getter(rec) if rec else None)
            cells += "".join(f" {fmt.format(v) if v is not None else 'n/a'} |" for v in vals)
            cells += f" {_ratio(vals[1], vals[0])} |"
        return cells

    flat_any = any(r.get("flat") for r in data["runs"])
    if flat_any:
        lines += [
            row("ASIC area (whole design, flat), um^2", lambda r: r["area"]["total_um2"]),
            row("ASIC area (flat), NAND2 eq.", lambda r: r["area"]["total_nand2"], "{:,.0f}"),
            row("ASIC flip-flops (flat)", lambda r: r["area"]["flip_flops"], "{:,}"),
            row("ASIC critical path (flat), ps",
                lambda r: r["timing"]["critical_path"]["min_period_ps"]),
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
            row("ECP5 LUT4", lambda r: r["yosys_cells"]["LUT4"], "{:,}"),
            row("ECP5 carry cells (CCU2C)", lambda r: r["yosys_cells"]["CCU2C"], "{:,}"),
            row("ECP5 flip-flops", lambda r: r["yosys_cells"]["TRELLIS_FF"], "{:,}"),
            row("ECP5 DSP (MULT18X18D)", lambda r: r["yosys_cells"]["MULT18X18D"], "{:,}"),
            row("ECP5 Fmax, MHz", lambda r: r["fmax_mhz"], "{:.2f}"),
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

    if asic_any:
        lines += ["## ASIC area by block (blocks kept apart)", "",
                  "*RTL* says whether a block's Verilog is the same in both units. "
                  "Flip-flops are counted under *registers* wherever they sit (pipeline, lane "
                  "and tree registers); each block's row is its combinational logic. "
                  "*Control and register enables* is the top's own glue: the enable "
                  "multiplexers of the pipeline registers and the beat/segment control.", ""]
        if figures:
            lines += ["![area by block](area.png)", ""]
        for red in REDUCTIONS:
            pair = [_find(data, "asic", u, red) for u in UNITS_COMPARED]
            if any(p is None for p in pair):
                continue
            nv, if4 = pair
            lines += [f"### {red} reduction", "",
                      "| block | instances | RTL | NVFP4 um^2 | IF4 um^2 | IF4 - NVFP4 um^2 | "
                      "NVFP4 NAND2 | IF4 NAND2 | IF4 / NVFP4 |",
                      "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
            for block in _blocks_present(pair):
                a = nv["area"]["blocks_um2"].get(block, 0.0)
                b = if4["area"]["blocks_um2"].get(block, 0.0)
                n = if4["area"]["instances"].get(block, "")
                same = {True: "same", False: "**differs**", None: ""}[_same_rtl(nv, if4, block)]
                lines.append(f"| {block} | {n} | {same} | {a:,.1f} | {b:,.1f} | {b - a:+,.1f} | "
                             f"{nv['area']['blocks_nand2'].get(block, 0):,.0f} | "
                             f"{if4['area']['blocks_nand2'].get(block, 0):,.0f} | {_ratio(b, a)} |")
            ta, tb = nv["area"]["total_um2"], if4["area"]["total_um2"]
            lines.append(f"| **total** | | | **{ta:,.1f}** | **{tb:,.1f}** | **{tb - ta:+,.1f}** | "
                         f"**{nv['area']['total_nand2']:,.0f}** | **{if4['area']['total_nand2']:,.0f}**"
                         f" | **{_ratio(tb, ta)}** |")
            noise = _noise_floor(nv, if4)
            if noise:
                lines += ["", f"Blocks marked *same* are identical RTL in both units (their "
                          f"Verilog differs only in generated names); their areas still differ "
                          f"by up to {noise[0] * 100:.1f} % ({noise[1]}), because ABC's "
                          "choices depend on net names and order. Read smaller differences "
                          "than that as noise."]
            lines.append("")

        lines += ["## ASIC timing", "",
                  "Stages are numbered by register level from the inputs (1 = input "
                  "registers); each row is the worst path into that stage's registers.", ""]
        if figures:
            lines += ["![delay per stage](delay.png)", ""]
        for red in REDUCTIONS:
            pair = [_find(data, "asic", u, red) for u in UNITS_COMPARED]
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
                             f"{_ratio(b, a)} |")
            lines.append("")

    if ecp5_any:
        lines += ["## ECP5", "",
                  "| configuration | LUT4 | CCU2C | PFUMX | FF | MULT18X18D | wrapper FF | "
                  "placed COMB / FF (with wrapper) | Fmax, MHz |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for red in REDUCTIONS:
            for unit in UNITS_COMPARED:
                r = _find(data, "ecp5", unit, red)
                if r is None:
                    continue
                y, p = r["yosys_cells"], r["placed"]
                lines.append(f"| {unit.upper()} {red} | {y['LUT4']:,} | {y['CCU2C']:,} | "
                             f"{y['PFUMX']:,} | {y['TRELLIS_FF']:,} | {y['MULT18X18D']} | "
                             f"{r['wrapper_cells']['TRELLIS_FF']} | {p['TRELLIS_COMB']:,} / "
                             f"{p['TRELLIS_FF']:,} | {r['fmax_mhz']:.2f} |")
        lines.append("")

    if asic_any:
        lines += _paper_section(data)

    md = write_text(outdir / "synthesis.md", "\n".join(lines).rstrip() + "\n")
    js = write_text(outdir / "synthesis.json", json.dumps(data, indent=2) + "\n")
    return [md, js, *figures]


def generate_report(*, outdir: str | Path = "reports", **kwargs) -> list[Path]:
    """:func:`collect` then :func:`render`."""
    return render(collect(**kwargs), outdir)

