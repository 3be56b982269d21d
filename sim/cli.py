"""``if4mac sim``: run a stimulus file on the RTL and check every result against golden."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import click

from if4mac.golden import REDUCTIONS, UNITS, load_stimulus

from .runner import SIMULATORS

__all__ = ["sim"]


class SimUsageError(click.ClickException):
    """A problem with the user's input: one line, exit status 2 (as the rest of the CLI)."""

    exit_code = 2


class SimMismatch(click.ClickException):
    """RTL and golden disagree: the report, exit status 1."""

    exit_code = 1

    def show(self, file=None):
        click.echo(self.message, err=True)


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


@click.command()
@click.option("--unit", required=True, type=click.Choice(UNITS),
              help="The MAC unit to simulate; must match the stimulus file's unit.")
@click.option("--stimulus", "stimulus_path", required=True, type=click.Path(dir_okay=False),
              help="Stimulus JSON file (as written by `if4mac stimulus`).")
@click.option("--simulator", type=click.Choice(SIMULATORS), default="verilator",
              show_default=True)
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="pipelined",
              show_default=True, help="The MAC's reduction tree (golden is run with the same).")
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
def sim(unit, stimulus_path, simulator, reduction, testbench, jobs, waves, coverage_path,
        build_dir):
    """Simulate a stimulus on the RTL; print the results JSON, exit 1 if golden disagrees.

    The results are printed in the format of `if4mac golden` (a JSON list of binary32 bit
    patterns). On a mismatch the scoreboard's report (the first mismatch with its segment,
    beats, expected and actual values) goes to stderr and the exit status is 1.
    """
    from .runner import SimulatorNotFound, build, design_verilog, find_simulator, run_job

    try:
        stream = load_stimulus(stimulus_path)
    except ValueError as err:
        raise SimUsageError(str(err)) from None
    if stream.unit != unit:
        raise SimUsageError(f"{stimulus_path} is a {stream.unit} stimulus, but --unit is {unit}")
    if waves is not None:
        if testbench != "cocotb":
            raise SimUsageError("--waves needs the cocotb testbench")
        if Path(waves).suffix != ".fst":
            raise SimUsageError(f"--waves writes FST: name the file *.fst, not {waves}")
    if testbench == "native" and simulator != "verilator":
        raise SimUsageError("--testbench native needs --simulator verilator")
    if jobs > 1 and testbench != "native":
        raise SimUsageError("--jobs needs --testbench native")
    if jobs > 1 and reduction != "pipelined":
        raise SimUsageError("--jobs needs --reduction pipelined: the shared tree's refusals "
                            "depend on the closes before a cut")
    try:
        find_simulator(simulator)
    except SimulatorNotFound as err:
        raise SimUsageError(str(err)) from None
    root = Path(build_dir).absolute() if build_dir else None

    _status(f"sim: generating Verilog for {unit}, block size {stream.block_size}, "
            f"{reduction} reduction")
    design = design_verilog(unit, stream.block_size, reduction, root)
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
    except SimulatorNotFound as err:
        raise SimUsageError(str(err)) from None
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    except ValueError as err:           # a design the testbench cannot drive
        raise SimUsageError(str(err)) from None
    finally:
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
        else:
            outcomes = run_job(built, stimulus=stream, waves=Path(waves) if waves else None,
                               progress=progress)
            out = outcomes["run_stimulus"]
            results, report, passed = out.results, out.report, out.passed
            if not passed and not report:
                report = f"the cocotb test failed: {out.message}"
    except (RuntimeError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        progress.close()
    click.echo(json.dumps(results))
    if coverage_path is not None:
        from .coverage import collect, write_report

        cov = collect(stream, unit, reduction)
        write_report(coverage_path)
        _status(f"sim: {cov.summary()} -> {coverage_path}")
    if not passed:
        raise SimMismatch(report)
    if waves:
        _status(f"sim: waves in {waves}")
