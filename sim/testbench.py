"""cocotb tests for the MAC tops (``if4mac.hdl.mac``), scored against golden.

The structure is the usual cocotb one (as in cocotb's ``matrix_multiplier`` example)::

    BeatDriver --> DUT pins --> BeatMonitor --> SegmentModel (golden) --> Scoreboard
                                  ResultMonitor ------------------------->   (in order)

The driver plays a :class:`~.plan.DrivePlan` (stimulus rows, random idle gaps, drains and reset
pulses); the input monitor reports every beat and reset it sees on the pins, the model
predicts each closed segment's result with golden (the design's architecture), and the
scoreboard checks every RTL result in order, bit for bit and cycle for cycle, and must be
empty at the end. As a second, coarser check the RTL results must equal ``golden.run`` of the
whole stimulus (which catches a driver that plays something other than the stimulus). A
flag monitor records every change of the sticky flags (``overrun``, fused-exact's
``overflow``), compared edge for edge with the rows golden lists for them.

This module runs inside the simulator; :mod:`if4mac.sim.runner` builds the design and starts
it with a job file (``IF4MAC_SIM_JOB``) that names the unit, block size, reduction and
latency, and either a stimulus file (test ``run_stimulus``) or built-in scenarios (tests
``run_scenario/scenario=...``). Each test writes its RTL results and the scoreboard's report
to ``<out_dir>/<test name>.json``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from if4mac.golden import MacConfig, Stream, load_stream_npz
from if4mac.hdl.interface import MacSignature

from .arch import SimArch
from .beats import BeatDriver, BeatMonitor, Clocking, FlagMonitor, ResultMonitor, read_uint
from .fast import check_flags
from .plan import drive_plan
from .scenarios import make_scenario, scenario_names
from .scoreboard import Mismatch, Scoreboard, ScoreboardError, SegmentModel

JOB_ENV = "IF4MAC_SIM_JOB"


@dataclass(frozen=True)
class Job:
    """What the runner asks the testbench to do (see :func:`if4mac.sim.runner.run_job`)."""

    unit: str
    block_size: int
    reduction: str
    latency: int
    out_dir: str
    arch: str = "reference"
    options: dict = field(default_factory=dict)   # the architecture's (MacConfig.options)
    stimulus: str | None = None       # .npz written by :func:`if4mac.golden.save_stream_npz`
    scenarios: tuple = ()
    seed: int = 1
    scale: float = 1.0                # scenario size, see scenarios.make_scenario
    gap_prob: float = 0.05
    progress: str | None = None       # file the driver writes "cycles_done cycles_total" to

    @classmethod
    def from_env(cls) -> Job | None:
        path = os.environ.get(JOB_ENV)
        if not path:
            return None
        doc = json.loads(Path(path).read_text())
        doc["scenarios"] = tuple(doc.get("scenarios", ()))
        return cls(**doc)

    @property
    def config(self) -> MacConfig:
        return MacConfig(self.unit, self.block_size, self.reduction, self.arch, **self.options)


class MacTestbench:
    """Driver, monitors, model and scoreboard for one stream on one MAC top."""

    def __init__(self, dut, job: Job, stream: Stream, *, gap_prob: float, seed: int,
                 progress_file: str | None = None):
        self.dut = dut
        self.job = job
        self.stream = stream
        self._check_dut()
        self.plan = drive_plan(stream, job.latency, gap_prob=gap_prob, seed=seed)
        self.clocking = Clocking(dut.clk)
        self.scoreboard = Scoreboard(job.latency, self.plan.describe_cycle)
        row_of = self.plan.row
        self.arch = SimArch(job.config)
        self.model = SegmentModel(
            job.unit, job.block_size, self.scoreboard.expect,
            row_of_cycle=lambda c: int(row_of[c]) if 0 <= c < len(row_of) else -1,
            reduction=job.reduction, config=job.config)
        self.input_monitor = BeatMonitor(
            dut, self.clocking, on_beat=lambda b: self.model.beat(
                b.cycle, b.first, b.a_in, b.w_in, b.a_sf, b.w_sf),
            on_reset=self.model.reset)
        self.output_monitor = ResultMonitor(dut, self.clocking, self.scoreboard.observe)
        self.flag_monitor = FlagMonitor(dut, self.clocking, self.arch.flags)
        total = len(self.plan)
        self.driver = BeatDriver(
            dut, self.plan,
            on_progress=(lambda k: Path(progress_file).write_text(f"{k} {total}\n"))
            if progress_file else None,
            progress_every=256)

    def _check_dut(self) -> None:
        # The widths come from the one declaration of the interface, not restated here.
        for name, width in MacSignature(self.job.config).port_widths.items():
            handle = getattr(self.dut, name, None)
            if handle is None:
                raise ValueError(f"the design has no port {name!r}")
            if len(handle) != width:
                raise ValueError(f"port {name} is {len(handle)} bits wide, expected {width} "
                                 f"(unit {self.job.unit}, block size {self.job.block_size})")

    async def run(self) -> dict:
        start = time.perf_counter()
        self.driver.apply_first()
        await self.clocking.start()
        monitors = (self.input_monitor, self.output_monitor, self.flag_monitor)
        for monitor in monitors:
            monitor.start()
        await self.driver.run(self.clocking)
        # The monitors sample at the driver's last falling edge too; let them have it.
        await FallingEdge(self.clocking.clk)
        for monitor in monitors:
            monitor.stop()
        elapsed = time.perf_counter() - start
        sb = self.scoreboard
        self.model.flush()
        sb.finish()
        # The coarse check: the whole stimulus through golden at once.
        whole = self.arch.run(self.stream)
        # Every sticky flag, edge for edge, against golden's listed rows.
        check_flags(sb, self.arch, whole, self.plan, self.stream, self.flag_monitor.changes,
                    None)
        if "overrun" in self.arch.flags:
            got = bool(read_uint(self.dut.overrun))
            if got != self.model.overrun:
                sb.mismatches.append(Mismatch(
                    "overrun", f"overrun is {int(got)} at the end of the run, expected "
                    f"{int(self.model.overrun)} (refused closing beats at cycles "
                    f"{self.model.refused[:5]})"))
        rtl = [bits for bits, _ in sb.results]
        if sb.passed and rtl != [int(b) for b in whole.bits]:
            sb.mismatches.append(Mismatch(
                "stream", f"the RTL results match the monitored beats but not golden.run of "
                f"the stimulus ({len(rtl)} vs {len(whole)} results): the driver did not play "
                f"the stimulus"))
        return {
            "results": [f"0x{b:08x}" for b in rtl],
            "cycles": [c for _, c in sb.results],
            "report": sb.report(),
            "passed": sb.passed,
            "beats": int(np.asarray(self.stream.en).sum()),
            "rows": len(self.stream),
            "clock_cycles": len(self.plan),
            "seconds": elapsed,
            "overrun": bool(self.model.overrun),
            "lost_results": len(self.model.refused),
        }


def _write_outcome(job: Job, name: str, outcome: dict) -> None:
    Path(job.out_dir, f"{name}.json").write_text(json.dumps(outcome))


async def _check(dut, job: Job, name: str, stream: Stream, *, gap_prob: float,
                 progress: str | None = None) -> None:
    tb = MacTestbench(dut, job, stream, gap_prob=gap_prob, seed=job.seed,
                      progress_file=progress)
    outcome = await tb.run()
    _write_outcome(job, name, outcome)
    dut._log.info("%s: %d beats, %d results in %.1f s (%.0f beats/s)", name, outcome["beats"],
                  len(outcome["results"]), outcome["seconds"],
                  outcome["beats"] / max(outcome["seconds"], 1e-9))
    if not outcome["passed"]:
        raise ScoreboardError(outcome["report"])


JOB = Job.from_env()
# Random idle gaps change which results the shared tree (or the serial converter) refuses,
# so a stimulus meant for it is played exactly as written.
_GAPS = 0.0 if JOB is None or SimArch(JOB.config).keeps_rows else JOB.gap_prob
_SCENARIOS = [] if JOB is None else [
    s for s in (scenario_names(JOB.block_size) if JOB.scenarios == ("all",) else JOB.scenarios)]


@cocotb.test(skip=JOB is None or JOB.stimulus is None)
async def run_stimulus(dut):
    """The job's stimulus file, played as written (no extra gaps), scored against golden."""
    stream = load_stream_npz(JOB.stimulus)
    await _check(dut, JOB, "run_stimulus", stream, gap_prob=0.0, progress=JOB.progress)


@cocotb.test(skip=not _SCENARIOS)
@cocotb.parametrize(scenario=[cocotb.Param(s, s) for s in _SCENARIOS] or ["none"])
async def run_scenario(dut, scenario):
    """A built-in scenario (:mod:`if4mac.sim.scenarios`) with random idle gaps."""
    stream = make_scenario(scenario, JOB.unit, JOB.block_size, JOB.seed, JOB.scale)
    await _check(dut, JOB, f"run_scenario-{scenario}", stream, gap_prob=_GAPS)


__all__ = ["Job", "JOB_ENV", "MacTestbench"]
