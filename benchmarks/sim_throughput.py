"""RTL simulation throughput in simulated beats per second, per simulator and testbench.

    python benchmarks/sim_throughput.py [--beats 100000] [--unit if4]
        [--simulators verilator,icarus] [--testbenches cocotb,sv,native]

One random stream (segment lengths 1..40, 5% bubbles, every code, scale and INT/FP mix) of at
least ``--beats`` enabled beats is played on the MAC top and scored against golden, on each
(simulator, testbench) pair:

* ``cocotb``: the cocotb testbench (driver, two monitors, golden model, scoreboard), through
  ``cocotb_tools.runner``. "loop" times the driver's loop inside the simulator (the Python
  work per cycle); "wall" adds the simulator's start-up and the stimulus hand-over.
* ``sv``: the plain Verilog testbench of :mod:`if4mac.sim.fast`, scored afterwards. "loop" is
  the simulator process; "wall" adds writing the plan and scoring with golden.
* ``native`` (Verilator only): the C++ harness of :mod:`if4mac.sim.native`, one process,
  timed like sv.

For sv and native, "cpu" is the simulator process' CPU time (user + system): on a machine
shared with other jobs it says more about the testbench than the wall-clock figures.

Builds are cached (build/sim) and not timed; the first run of a configuration compiles it
(Verilator: about a minute). Every run must pass its scoreboard, or the numbers mean nothing.
Icarus simulates the MAC at a few hundred beats per second: 10^5 beats there take minutes.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np

from if4mac.golden import random_stream
from if4mac.sim.fast import build_fast, run_fast
from if4mac.sim.native import build_native, run_native
from if4mac.sim.runner import build, design_verilog, find_simulator, run_job


def stream_of(unit: str, beats: int, seed: int):
    segments = beats // 20 + 1
    while True:
        s = random_stream(unit, segments, seed=seed, bubble_prob=0.05)
        if s.en.sum() >= beats:
            return s
        segments += max(1, segments // 20)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=100_000)
    parser.add_argument("--unit", choices=("nvfp4", "if4"), default="if4")
    parser.add_argument("--simulators", default="verilator,icarus")
    parser.add_argument("--testbenches", default="cocotb,sv,native")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    stream = stream_of(args.unit, args.beats, args.seed)
    beats = int(np.asarray(stream.en).sum())
    design = design_verilog(args.unit)
    print(f"{args.unit} MAC {design.toplevel}, latency {design.latency}; {beats} beats "
          f"({len(stream)} rows); {platform.processor() or platform.machine()}, "
          f"{platform.python_implementation()} {platform.python_version()}")
    for simulator in args.simulators.split(","):
        print(f"{simulator}: {find_simulator(simulator)}")
        for testbench in args.testbenches.split(","):
            cpu = None
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            if testbench == "native" and simulator != "verilator":
                continue
            if testbench == "cocotb":
                built = build(design, simulator)
                start = time.perf_counter()
                out = run_job(built, stimulus=stream)["run_stimulus"]
                wall = time.perf_counter() - start
                loop, passed, report = out.seconds, out.passed, out.report or out.message
            elif testbench == "sv":
                built = build_fast(design, simulator)
                start = time.perf_counter()
                out = run_fast(built, stream)
                wall = time.perf_counter() - start
                loop, passed, report = out.sim_seconds, out.passed, out.report
            elif testbench == "native":
                built = build_native(design)
                start = time.perf_counter()
                out = run_native(built, stream)
                wall = time.perf_counter() - start
                loop, passed, report = out.sim_seconds, out.passed, out.report
            else:
                parser.error(f"unknown testbench {testbench!r}: expected cocotb, sv or native")
            if testbench != "cocotb":
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if not passed:
                raise SystemExit(f"{simulator}/{testbench}: RTL and golden disagree:\n{report}")
            extra = f"   cpu {cpu:6.2f} s {beats / cpu:10.0f} beats/cpu-s" if cpu else ""
            print(f"{simulator:9} {testbench:6} loop {loop:8.2f} s  {beats / loop:10.0f} beats/s"
                  f"   wall {wall:8.2f} s  {beats / wall:10.0f} beats/s{extra}", flush=True)


if __name__ == "__main__":
    main()
