"""``if4mac sim``: run a stimulus file on the RTL and check every result against golden.

Exit status: 0 every result matched golden; 1 the RTL disagreed with golden (the report goes
to stderr) or a tool failed; 2 a user error, found before the simulation starts (paths
included); 3 the shared reduction tree lost results (overrun) and ``--allow-overrun`` was not
given. The results JSON is printed whenever the simulation ran, whatever the status.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import click

from if4mac.command import Command, arch_options, mac_config
from if4mac.errors import UserError
from if4mac.golden import REDUCTIONS, UNITS, load_stimulus
from if4mac.safe_output import atomic_path, check_output, check_output_dir

from .runner import SIMULATORS

__all__ = ["sim", "EXIT_OVERRUN"]

#: Exit status when the shared tree lost results and the user did not allow it.
EXIT_OVERRUN = 3


class SimMismatch(click.ClickException):
    """RTL and golden disagree: the report, exit status 1."""

    exit_code = 1

    def show(self, file=None):
        click.echo(self.message, err=True)


class SimOverrun(click.ClickException):
    """The shared reduction tree refused results (sticky ``overrun``): exit status 3."""

    exit_code = EXIT_OVERRUN


def _status(message: str) -> None:
    click.echo(message, err=True)


class _Progress:
    """A tqdm bar on stderr that appears only once a run has taken a few seconds."""

    def __init__(self, desc: str, unit: str):
        from tqdm import tqdm

        self.bar = tqdm(total=1, desc=desc, unit=unit, delay=3, file=sys.stderr,
                        leave=False, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@click.command(cls=Command)
@click.option("--unit", required=True, type=click.Choice(UNITS),
              help="The MAC unit to simulate; must match the stimulus file's unit.")
@click.option("--stimulus", "stimulus_path", required=True, type=click.Path(dir_okay=False),
              help="Stimulus JSON file (as written by `if4mac stimulus`).")
@click.option("--simulator", type=click.Choice(SIMULATORS), default="verilator",
              show_default=True)
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="pipelined",
              show_default=True, help="The MAC's reduction tree (golden is run with the same).")
@arch_options
@click.option("--testbench", type=click.Choice(("cocotb", "sv", "native")), default="cocotb",
              show_default=True,
              help="cocotb: driver, monitors and scoreboard in Python; sv: the plain Verilog "
                   "testbench, scored afterwards (many times faster on long stimuli); native: "
                   "a compiled C++ harness around the Verilated model (Verilator only; the "
                   "fastest, for real-tensor volume).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="native testbench, pipelined tree: play the stimulus in this many pieces "
                   "at once (cut at segment starts).")
@click.option("--waves", type=click.Path(dir_okay=False), default=None,
              help="Write an FST waveform of the run here (cocotb testbench).")
@click.option("--coverage", "coverage_path", type=click.Path(dir_okay=False), default=None,
              help="Write the stimulus' functional coverage here (cocotb-coverage YAML, or "
                   "XML for *.xml) and print a summary with the bins left empty.")
@click.option("--build-dir", type=click.Path(file_okay=False), default=None,
              help="Where compiled designs are cached [default: build/sim, or $IF4MAC_SIM_BUILD].")
@click.option("--allow-overrun", is_flag=True,
              help="With --reduction shared: exit 0 even if the shared tree lost results "
                   "(they are still reported on stderr).")
def sim(unit, stimulus_path, simulator, reduction, arch_options, testbench, jobs, waves,
        coverage_path, build_dir, allow_overrun):
    """Simulate a stimulus on the RTL; print the results JSON, exit 1 if golden disagrees.

    The results are printed in the format of `if4mac golden` (a JSON list of binary32 bit
    patterns). On a mismatch the scoreboard's report (the first mismatch with its segment,
    beats, expected and actual values) goes to stderr and the exit status is 1. With
    --reduction shared (or --arch fused-exact --converter serial), results the shared tree
    (converter) refused (its sticky overrun) are reported on stderr and the exit status is 3
    unless --allow-overrun is given. --arch picks the architecture: the RTL and golden's
    arithmetic both follow it, and fused-exact's sticky overflow is checked against golden.
    """
    from .arch import SimArch
    from .runner import build, default_build_root, design_verilog, find_simulator, run_job

    # Every option and path is checked before the (possibly long) build and run.
    if waves is not None:
        if testbench != "cocotb":
            raise UserError("--waves needs the cocotb testbench")
        if Path(waves).suffix != ".fst":
            raise UserError(f"--waves writes FST: name the file *.fst, not {waves}")
        check_output(waves, option="--waves", inputs=[("--stimulus", stimulus_path)])
    if coverage_path is not None:
        check_output(coverage_path, option="--coverage", create_parents=True,
                     inputs=[("--stimulus", stimulus_path)] + ([("--waves", waves)] if waves
                                                               else []))
    if testbench == "native" and simulator != "verilator":
        raise UserError("--testbench native needs --simulator verilator")
    if jobs > 1 and testbench != "native":
        raise UserError("--jobs needs --testbench native")
    root = Path(build_dir).absolute() if build_dir else None
    check_output_dir(root or default_build_root(),
                     option="--build-dir" if build_dir else "the build folder ($IF4MAC_SIM_BUILD)")
    stream = load_stimulus(stimulus_path)
    if stream.unit != unit:
        raise UserError(f"{stimulus_path} is a {stream.unit} stimulus, but --unit is {unit}")
    # The block size is the stimulus'; the configuration is validated once, here.
    config = mac_config(unit, stream.block_size, reduction, arch_options)
    if jobs > 1 and SimArch(config).keeps_rows:
        raise UserError("--jobs needs --reduction pipelined (and no --converter serial): "
                        "the shared tree's or serial converter's refusals depend on the "
                        "closes before a cut")
    find_simulator(simulator)

    what = (f"{reduction} reduction" if config.arch == "reference" else config.arch)
    _status(f"sim: generating Verilog for {unit}, block size {stream.block_size}, {what}")
    design = design_verilog(config, stream.block_size, reduction, root)
    start = time.perf_counter()
    # Say so when the build is not cached (Verilator takes about a minute), not otherwise.
    notice = threading.Timer(2.0, _status, [f"sim: compiling {design.toplevel} for {simulator} "
                                            f"(cached for later runs)"])
    notice.start()
    try:
        if testbench == "sv":
            from .fast import build_fast, run_fast

            built = build_fast(design, simulator, build_root=root)
        elif testbench == "native":
            from .native import build_native, run_native

            built = build_native(design, build_root=root)
        else:
            built = build(design, simulator, waves=waves is not None, build_root=root)
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    finally:                        # a ValueError (a design the testbench cannot drive): exit 2
        notice.cancel()
    if time.perf_counter() - start > 2:
        _status(f"sim: built {design.toplevel} for {simulator} in "
                f"{time.perf_counter() - start:.0f} s (cached in {built.directory})")

    progress = _Progress(f"{simulator} {unit}", "cyc" if testbench == "cocotb" else "res")
    try:
        if testbench in ("sv", "native"):
            outcome = (run_fast(built, stream, progress=progress) if testbench == "sv"
                       else run_native(built, stream, jobs=jobs, progress=progress))
            results, report, passed = outcome.results, outcome.report, outcome.passed
            lost = outcome.lost_results
        else:
            outcomes = run_job(built, stimulus=stream, waves=Path(waves) if waves else None,
                               progress=progress)
            out = outcomes["run_stimulus"]
            results, report, passed = out.results, out.report, out.passed
            lost = out.lost_results
            if not passed and not report:
                report = f"the cocotb test failed: {out.message}"
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    finally:
        progress.close()
    click.echo(json.dumps(results))
    if coverage_path is not None:
        from .coverage import collect, write_report

        cov = collect(stream, unit, reduction)
        Path(coverage_path).parent.mkdir(parents=True, exist_ok=True)
        # cocotb-coverage writes the file itself: to a temporary path, renamed into place.
        with atomic_path(coverage_path) as tmp:
            staged = tmp.with_suffix(Path(coverage_path).suffix)    # its format from the suffix
            try:
                write_report(staged)
                staged.replace(tmp)
            finally:
                staged.unlink(missing_ok=True)
        _status(f"sim: {cov.summary()} -> {coverage_path}")
    if waves:
        _status(f"sim: waves in {waves}")
    if not passed:
        raise SimMismatch(report)
    if lost:
        busy = ("the shared reduction tree", "the tree", "--reduction pipelined") \
            if config.reduction == "shared" else \
            ("the serial converter", "the converter", "--converter pipelined")
        message = (f"overrun: {busy[0]} lost {lost} of {lost + len(results)} segment results "
                   f"(a segment closed while {busy[1]} was still busy with the previous one; "
                   f"{busy[2]} keeps them all)")
        if not allow_overrun:
            raise SimOverrun(message + "; pass --allow-overrun to accept")
        _status(f"sim: {message}")
