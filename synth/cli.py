"""``if4mac synth`` and ``if4mac report``: the synthesis flows from the command line.

Registered on the main ``if4mac`` group in :mod:`if4mac.cli`. Errors a user can cause (a
bad option, a Liberty file the tools cannot use, a missing tool, an output path that cannot be
written) end with one line and exit status 2, all found before any tool starts; a tool that
fails on a valid input ends with its log's last lines.
"""

from __future__ import annotations

from pathlib import Path

import click

from if4mac.command import Command, arch_options, block_size_callback, mac_config
from if4mac.errors import UserError
from if4mac.golden import DEFAULT_BLOCK_SIZE, UNITS
from if4mac.golden.mac import REDUCTIONS
from if4mac.safe_output import check_output, check_output_dir

from .designs import DESIGN_KINDS
from .flow import (CLOCK_PS_RANGE, FREQ_MHZ_RANGE, TARGETS, TIMEOUT_S_RANGE, WIDTH_RANGE,
                   check_range, summary, synthesize, write_result)
from .libraries import LIBRARIES
from .runs import DEFAULT_ECP5_SEEDS, ECP5_CHOICES
from .tools import ToolError

__all__ = ["synth", "report", "sweep"]


class SynthError(click.ClickException):
    """A tool that failed on a valid input: its message and log tail, exit status 1."""


def _range(lo, hi, unit=""):
    """click callback: a finite number in [lo, hi] (flow.check_range), else a usage error."""
    def callback(ctx, param, value):
        try:
            return check_range(value, lo, hi, "value", unit)
        except ValueError as err:
            raise click.BadParameter(str(err).replace("value must be", "must be")) from None
    return callback


@click.command(cls=Command)
@click.option("--unit", type=click.Choice(UNITS), default="if4", show_default=True,
              help="MAC unit (and element format of --design lane_mul / scale_mul).")
@click.option("--design", type=click.Choice(DESIGN_KINDS), default="mac", show_default=True,
              help="mac: the MAC top; regmul: a registered multiplier (calibration); "
                   "lane_mul / scale_mul: one sub-block between registers.")
@click.option("--block-size", type=int, default=DEFAULT_BLOCK_SIZE, show_default=True,
              callback=block_size_callback, help="MAC lanes B.")
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="pipelined",
              show_default=True, help="Tree reduction of the MAC.")
@arch_options
@click.option("--width", type=int, default=8, show_default=True, callback=_range(*WIDTH_RANGE),
              help="Operand width of --design regmul.")
@click.option("--target", type=click.Choice(TARGETS), required=True,
              help="asic: standard cells + OpenSTA; ecp5: Lattice ECP5 + nextpnr.")
@click.option("--library", type=click.Choice(LIBRARIES), default=None,
              help="Named open library for --target asic [default: nangate45].")
@click.option("--liberty", type=click.Path(dir_okay=False), default=None,
              help="Any Liberty file for --target asic, instead of --library.")
@click.option("--clock-ps", type=float, default=None, callback=_range(*CLOCK_PS_RANGE, " ps"),
              help="STA clock period in ps (slack is against it; delays are reported "
                   "regardless) [default: 10000].")
@click.option("--abc-delay-target/--no-abc-delay-target", default=False, show_default=True,
              help="Also give --clock-ps to ABC as its delay target (abc -D).")
@click.option("--flat", is_flag=True,
              help="Flatten the whole design (--target asic): no per-block area, but "
                   "optimisation across block boundaries.")
@click.option("--freq-mhz", type=float, default=None,
              callback=_range(*FREQ_MHZ_RANGE, " MHz"),
              help="nextpnr target frequency for --target ecp5 [default: 40].")
@click.option("--workdir", type=click.Path(file_okay=False), default="build/synth",
              show_default=True, help="Where the tools run and leave their logs.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Result JSON (a .txt summary is written beside it) "
                   "[default: WORKDIR/NAME.json].")
@click.option("--timeout", type=float, default=3600, show_default=True,
              callback=_range(*TIMEOUT_S_RANGE, " s"), help="Seconds each tool may run.")
@click.option("--rtl", "rtl_files", multiple=True, type=click.Path(dir_okay=False),
              help="External Verilog/SystemVerilog file (repeat): synthesise it instead of "
                   "this project's design (needs --top).")
@click.option("--top", default=None, help="Top module of the --rtl files.")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Override a parameter of the --rtl top (repeat).")
@click.option("--define", "defines", multiple=True, metavar="K[=V]",
              help="Preprocessor macro for the --rtl files (repeat).")
@click.option("--clock", default="clk", show_default=True, help="Clock port of the --rtl top.")
@click.option("--reset", default="rst_n", show_default=True,
              help="Asynchronous reset port of the --rtl top (a false path in STA; ignored "
                   "if the top has no such port).")
@click.option("--chipware-standins", type=click.Choice(("ieee", "reduced")), default=None,
              help="Add this project's CW_fp_add / CW_fp_mult stand-ins to the --rtl files.")
def synth(unit, design, block_size, reduction, arch_options, width, target, library, liberty,
          clock_ps, abc_delay_target, flat, freq_mhz, workdir, output, timeout, rtl_files, top,
          params, defines, clock, reset, chipware_standins):
    """Synthesise one configuration; write JSON and a summary, print the summary.

    With --rtl FILE... --top NAME: any Verilog or SystemVerilog design, elaborated by
    yosys-slang and then run through exactly the same flows (docs/external.md).
    """
    rtl = _rtl_options(rtl_files, top, params, defines, clock, reset, chipware_standins)
    # The MAC's configuration, validated once (the same options as verilog and sim).
    config = mac_config(unit, block_size, reduction, arch_options)
    if config.arch != "reference" and (design != "mac" or rtl_files):
        raise UserError("--arch, --acc-width and --converter choose the MAC's architecture: "
                        "they apply to --design mac without --rtl")
    if rtl is not None:
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in
                 ("unit", "design", "block_size", "reduction", "width")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise UserError(f"{', '.join(given)}: options of this project's designs; with "
                            "--rtl use --param")
    if target == "ecp5" and (library or liberty or clock_ps or abc_delay_target or flat):
        raise UserError("--library, --liberty, --clock-ps, --abc-delay-target and --flat "
                         "apply to --target asic only")
    if target == "asic" and freq_mhz is not None:
        raise UserError("--freq-mhz applies to --target ecp5 only")
    if abc_delay_target and clock_ps is None:
        raise UserError("--abc-delay-target needs --clock-ps")
    # Every path is checked before the tools start (they may run for an hour).
    check_output_dir(workdir, option="--workdir")
    if output is not None:
        liberty_input = [("--liberty", liberty)] if liberty else []
        out = check_output(output, suffix=".json", inputs=liberty_input, create_parents=True)
        check_output(out.with_suffix(".txt"), option="--output's summary",
                     inputs=liberty_input, create_parents=True)
    kwargs = dict(target=target, design=design, unit=unit, block_size=block_size,
                  reduction=reduction, width=width, workdir=workdir, timeout=timeout, rtl=rtl)
    if config.arch != "reference":
        kwargs.update(arch=config.arch, acc_width=config.acc_width, converter=config.converter)
    if target == "asic":
        kwargs.update(library=library, liberty=liberty, clock_ps=clock_ps,
                      abc_delay_target=abc_delay_target, flat=flat)
    elif freq_mhz is not None:
        kwargs["freq_mhz"] = freq_mhz
    try:
        record = synthesize(**kwargs)
    except ToolError as err:
        raise UserError(str(err)) from None
    path = Path(output) if output else Path(workdir) / f"{record['name']}.json"
    json_path, txt_path = write_result(record, path)
    click.echo(summary(record))
    click.echo(f"-> {json_path}, {txt_path}")


def _key_values(option: str, items, *, value_required: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (value_required and not sep):
            raise UserError(f"{option} expects K=V, got {item!r}")
        out[key] = value if sep else "1"
    return out


def _rtl_options(files, top, params, defines, clock, reset, standins) -> dict | None:
    if not files:
        if top or params or defines or standins:
            raise UserError("--top, --param, --define and --chipware-standins need --rtl")
        return None
    if not top:
        raise UserError("--rtl needs --top NAME")
    return {"files": list(files), "top": top,
            "params": _key_values("--param", params, value_required=True),
            "defines": _key_values("--define", defines, value_required=False),
            "clock": clock, "reset": reset, "standins": standins}


def _csv(kind, item_type=str, choices=None):
    """A click callback parsing a comma-separated list of ``item_type`` (one-line errors)."""
    def parse(ctx, param, value):
        if value is None:
            return None
        items = [v.strip() for v in value.split(",")]
        if not items or any(v == "" for v in items):
            raise click.BadParameter(f"expected a comma-separated list of {kind}, got {value!r}")
        out = []
        for v in items:
            if choices is not None and v not in choices:
                raise click.BadParameter(f"{v!r} is not one of {', '.join(choices)}")
            try:
                x = item_type(v)
            except ValueError:
                raise click.BadParameter(f"{v!r} is not a valid {kind[:-1] if kind.endswith('s') else kind}") from None
            if item_type is not str and not x > 0:
                raise click.BadParameter(f"must be positive, got {v}")
            out.append(x)
        return tuple(dict.fromkeys(out))
    return parse


def _positive_int(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"must be a positive integer, got {value}")
    return value


@click.command(cls=Command)
@click.option("--block-size", type=int, default=DEFAULT_BLOCK_SIZE, show_default=True,
              callback=block_size_callback,
              help="MAC lanes B (the committed reports/ are B = 16; smaller is quicker).")
@click.option("--target", "targets", type=click.Choice(TARGETS), multiple=True,
              help="Repeat to choose targets [default: both].")
@click.option("--library", type=click.Choice(LIBRARIES), default=None,
              help="Named open library for the ASIC runs [default: nangate45].")
@click.option("--liberty", type=click.Path(dir_okay=False), default=None,
              help="Any Liberty file for the ASIC runs, instead of --library.")
@click.option("--output-dir", type=click.Path(file_okay=False), default="reports",
              show_default=True, help="Where the report, JSON and figures go.")
@click.option("--workdir", type=click.Path(file_okay=False), default="build/report",
              show_default=True, help="The run store (WORKDIR/store) and the tools' folders.")
@click.option("--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Dask workers (flow runs at once) on this machine.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler instead of local workers.")
@click.option("--reuse/--no-reuse", default=True, show_default=True,
              help="Reuse stored runs whose key (Verilog, flow, options, tools, library, "
                   "clock, seed) is the same; --no-reuse empties the store first.")
@click.option("--ladder-ps", default=None, callback=_csv("clock periods", float),
              help="Comma-separated clock targets of the area-delay ladder "
                   "[default: 6000,4000,3000,2500,2000,1500].")
@click.option("--noise-seeds", default="1", show_default=True,
              callback=_csv("seeds", int), help="ABC permutation seeds of the noise repeats.")
@click.option("--ecp5", "ecp5", type=click.Choice(ECP5_CHOICES), default="fused",
              show_default=True,
              help="Which designs get ECP5 place and route: the fused ones (~30 CPU-s a run), "
                   "the headline reference pair (~570 CPU-s a run), all or none.")
@click.option("--ecp5-seeds", default=",".join(map(str, DEFAULT_ECP5_SEEDS)),
              show_default=True, callback=_csv("seeds", int),
              help="nextpnr placement seeds: each ECP5 design is placed once per seed, and "
                   "the IF4 / NVFP4 Fmax ratio is printed with the spread they give.")
@click.option("--power/--no-power", default=True, show_default=True,
              help="Power of the headline pair on the example tensors.")
@click.option("--designs", default=None,
              callback=_csv("designs", choices=("reference-pipelined", "reference-shared",
                                                "fused-fp32", "fused-exact",
                                                "fused-exact-serial")),
              help="Comma-separated designs to include [default: every architecture].")
@click.option("--external", "externals", multiple=True, metavar="NAME=PATH",
              help="Add an external design's rows: fouroversix=CHECKOUT (the IF4 authors' "
                   "MAC, both units, both ChipWare stand-in variants).")
@click.option("--allow-dirty", is_flag=True,
              help="Run from a tree with local changes (the report says so).")
@click.option("--render-only", is_flag=True,
              help="Only re-render the report from OUTPUT_DIR/synthesis.json.")
@click.option("--progress/--no-progress", default=False, show_default=True)
@click.option("--timeout", type=float, default=3600, show_default=True,
              callback=_range(*TIMEOUT_S_RANGE, " s"), help="Seconds each tool may run.")
def report(block_size, targets, library, liberty, output_dir, workdir, jobs, scheduler, reuse,
           ladder_ps, noise_seeds, ecp5, ecp5_seeds, power, designs, externals, allow_dirty,
           render_only, progress, timeout):
    """Synthesise every architecture, NVFP4 and IF4, and write the report."""
    import json
    import sys
    import time

    from .external_rows import ExternalError, check_netlists, external_runs
    from .ladder import DEFAULT_LADDER_PS
    from .report import collect, render
    from .runs import DirtyTree, command_line
    from .sweep import SweepInterrupted

    check_output_dir(output_dir, option="--output-dir")
    if not render_only:
        check_output_dir(workdir, option="--workdir")
    try:
        if render_only:
            src = Path(output_dir) / "synthesis.json"
            try:
                data = json.loads(src.read_text())
            except (OSError, ValueError) as err:
                raise UserError(f"cannot read {src}: {err}") from None
        else:
            ext_specs, ext_meta, checkout = [], None, None
            for item in externals:
                name, sep, path = item.partition("=")
                if not sep or not path:
                    raise UserError(f"--external expects NAME=PATH, got {item!r}")
                ext_specs, ext_meta = external_runs(
                    name, path, block_size=block_size, library=library, liberty=liberty,
                    clock_ps=max(ladder_ps or DEFAULT_LADDER_PS), noise_seeds=noise_seeds,
                    workdir=Path(workdir) / "external", log=lambda m: click.echo(m, err=True))
                checkout = path
            data = collect(block_size=block_size, targets=tuple(targets) or TARGETS,
                           library=library, liberty=liberty, workdir=workdir, jobs=jobs,
                           scheduler=scheduler, reuse=reuse,
                           ladder_ps=ladder_ps or DEFAULT_LADDER_PS, noise_seeds=noise_seeds,
                           ecp5=ecp5, ecp5_seeds=ecp5_seeds, power=power, designs=designs,
                           external=ext_specs, external_meta=ext_meta,
                           allow_dirty=allow_dirty, command=command_line(sys.argv[1:]),
                           timeout=timeout, progress=progress,
                           log=lambda m: click.echo(m, err=True))
            if ext_specs:
                # Before any number is reported: the mapped netlists against the authors'
                # testbench and golden (a failure stops here, with one line).
                t0 = time.monotonic()
                check_netlists(data, ext_specs, checkout, Path(workdir).resolve(),
                               scheduler=scheduler, workers=jobs, progress=progress,
                               log=lambda m: click.echo(m, err=True))
                # The report's wall time includes its checks.
                data["wall_s"] = round(data["wall_s"] + time.monotonic() - t0, 1)
        files = render(data, output_dir)
    except (ToolError, DirtyTree, ExternalError) as err:
        raise UserError(str(err)) from None
    except SweepInterrupted as err:
        click.echo(f"Error: {err}", err=True)
        raise SystemExit(130) from None
    for f in files:
        click.echo(f"-> {f}")


@click.command(cls=Command)
@click.option("--units", default="nvfp4,if4", show_default=True,
              callback=_csv("units", choices=UNITS), help="Comma-separated MAC units.")
@click.option("--block-sizes", default="2", show_default=True, callback=_csv("block sizes", int),
              help="Comma-separated block sizes (lanes B).")
@click.option("--reductions", default="pipelined", show_default=True,
              callback=_csv("reductions", choices=REDUCTIONS), help="Comma-separated reductions.")
@click.option("--clock-ps", default=None, callback=_csv("clock periods", float),
              help="Comma-separated clock targets in ps (ASIC: ABC delay target and STA "
                   "clock; ECP5: nextpnr frequency) [default: the flows' defaults, no ABC "
                   "delay target].")
@click.option("--abc-delay-target/--no-abc-delay-target", default=True, show_default=True,
              help="Give each --clock-ps to ABC as its delay target (abc -D).")
@click.option("--repeats", type=int, default=1, show_default=True, callback=_positive_int,
              help="Runs per point: the extra ones permute ABC's inputs with seeds 1.. "
                   "(ASIC) or place with nextpnr seeds 2.. (ECP5): the flow's noise.")
@click.option("--repeat-at", default=None, callback=_csv("clock periods", float),
              help="Comma-separated clock targets (ps) at which --repeats applies "
                   "[default: all].")
@click.option("--target", "targets", type=click.Choice(TARGETS), multiple=True,
              help="Repeat for several [default: asic].")
@click.option("--design", type=click.Choice(("mac", "regmul")), default="mac",
              show_default=True, help="mac: the MAC tops; regmul: the 8 x 8 calibration "
                                      "multiplier (quick).")
@click.option("--library", type=click.Choice(LIBRARIES), default=None,
              help="Named open library for the ASIC runs [default: nangate45].")
@click.option("--liberty", type=click.Path(dir_okay=False), default=None,
              help="Any Liberty file for the ASIC runs, instead of --library.")
@click.option("--flat", is_flag=True, help="Flatten each ASIC design whole.")
@click.option("--power", is_flag=True,
              help="Also power (OpenSTA) from the simulated activity of the built-in "
                   "example tensors, at each run's clock.")
@click.option("--power-tensor", type=click.Path(dir_okay=False), default=None,
              help="Power from this weight tensor (.npy/.npz/.safetensors, read as "
                   "`if4mac quantize` reads it) instead of the built-in one.")
@click.option("--tensor", "tensor_name", default=None,
              help="Tensor name inside the --power-tensor .safetensors file.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler (e.g. tcp://host:8786) [default: a "
                   "LocalCluster on this machine].")
@click.option("--workers", type=int, default=2, show_default=True, callback=_positive_int,
              help="LocalCluster worker processes (ignored with --scheduler).")
@click.option("--store", type=click.Path(file_okay=False), default="build/sweep/runs",
              show_default=True, help="Content-addressed run records (reused when the key "
                                      "matches).")
@click.option("--workdir", type=click.Path(file_okay=False), default="build/sweep/work",
              show_default=True, help="Where the tools run and leave their logs.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="build/sweep/results",
              show_default=True, help="Results table prefix: writes PREFIX.json and PREFIX.csv.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also plot area vs achieved period of the ASIC runs (PNG).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--timeout", type=float, default=3600, show_default=True,
              callback=_range(*TIMEOUT_S_RANGE, " s"), help="Seconds each tool may run.")
def sweep(units, block_sizes, reductions, clock_ps, abc_delay_target, repeats, repeat_at, targets,
          design, library, liberty, flat, power, power_tensor, tensor_name, scheduler,
          workers, store, workdir, output, plot, progress, timeout):
    """Run a design-space sweep on Dask; write one results table (JSON + CSV)."""
    import time

    from .ladder import compare, plot_ladders, point
    from .libraries import resolve_library
    from .sweep import SweepInterrupted, run_sweep, sweep_specs, write_results

    targets = tuple(targets) or ("asic",)
    if "ecp5" in targets and (library or liberty or flat or power or power_tensor):
        raise UserError("--library, --liberty, --flat and --power apply to --target asic only")
    if repeat_at and not set(repeat_at) <= set(clock_ps or ()):
        raise UserError("--repeat-at must name clock targets given in --clock-ps")
    if tensor_name and not power_tensor:
        raise UserError("--tensor needs --power-tensor")
    workload = None
    if power_tensor:
        if not Path(power_tensor).is_file():
            raise UserError(f"--power-tensor: no such file: {power_tensor}")
        workload = {"path": str(Path(power_tensor).resolve()), "tensor": tensor_name}
    elif power:
        workload = "example"
    if workload is not None and design != "mac":
        raise UserError("--power needs --design mac")
    try:
        if "asic" in targets:
            resolve_library(library, liberty)   # a bad library fails here, once
        if workload is not None:
            from .store import workload_stream

            for u in units:
                for b in block_sizes:
                    workload_stream(workload, u, b)   # bad tensors / block sizes fail here
        specs = sweep_specs(units=units, block_sizes=block_sizes, reductions=reductions,
                            clocks_ps=clock_ps or (None,), repeats=repeats,
                            repeat_at=repeat_at, targets=targets,
                            abc_delay_target=abc_delay_target, library=library,
                            liberty=liberty and str(Path(liberty).resolve()), flat=flat,
                            design=design)
        click.echo(f"sweep: {len(specs)} runs on "
                   + (f"scheduler {scheduler}" if scheduler else f"a LocalCluster of {workers} "
                      f"worker{'s' if workers != 1 else ''}"), err=True)
        t0 = time.monotonic()
        records = run_sweep(specs, store=store, workdir=workdir, scheduler=scheduler,
                            workers=workers, workload=workload, timeout=timeout,
                            progress=progress,
                            # Emitted once per design, not once per run (keyed by the
                            # hdl/golden sources, so never stale).
                            verilog_cache=Path(workdir).resolve() / "verilog")
        wall = time.monotonic() - t0
    except SweepInterrupted as err:
        click.echo(f"Error: {err}", err=True)
        raise SystemExit(130) from None
    except ToolError as err:
        raise SynthError(str(err)) from None
    except OSError as err:
        if scheduler:
            raise UserError(f"cannot reach the Dask scheduler {scheduler}: {err}") from None
        raise
    jpath, cpath = write_results(records, output, wall_s=round(wall, 2),
                                 workers=None if scheduler else workers)
    reused = sum(1 for r in records if r.get("reused"))
    click.echo(f"sweep: {len(records)} runs ({reused} reused from {store}) in {wall:.1f} s")
    asic = [r for r in records if r.get("target") == "asic"]
    if asic:
        click.echo(f"{'run':<36} {'area um^2':>11} {'achieved ps':>11} {'wall s':>7}"
                   + ("  pJ/lane-product" if any('power' in r for r in asic) else ""))
        for r in asic:
            p = r.get("power")
            click.echo(f"{r['label']:<36} {r['area']['total_um2']:>11.1f} "
                       f"{r['timing']['critical_path']['min_period_ps']:>11.1f} "
                       f"{r['wall_s']:>7.1f}"
                       + (f"  {p['energy_per_lane_product_pj']:.3f}" if p else ""))
        points = [point(r) for r in asic]
        for c in compare(points):
            for row in c["iso_period"]:
                verdict = {True: "", False: "  (not distinguishable)", None: ""}[row["distinguishable"]]
                spread = (f" [{row['ratio_min']:.3f} .. {row['ratio_max']:.3f}, "
                          f"{row['spread_from']}]" if row["spread_from"] else "")
                click.echo(f"IF4/NVFP4 area at {row['period_ps']:.0f} ps (B={c['block_size']}, "
                           f"{c['reduction']}): {row['area_ratio']:.3f}{spread}{verdict}")
            click.echo(f"fastest closed period (B={c['block_size']}, {c['reduction']}): "
                       + ", ".join(f"{u.upper()} {v:.0f} ps" if v else f"{u.upper()} none"
                                   for u, v in c["fastest_closed_ps"].items()))
        if plot:
            click.echo(f"-> {plot_ladders(points, plot)}")
    click.echo(f"-> {jpath}, {cpath}")
