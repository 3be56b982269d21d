"""A real layer's dot products through the RTL, every result checked against golden.

    python benchmarks/real_layer.py [--units if4,nvfp4] [--rows 128] [--cols 128] [--k 4096]
        [--jobs 2]

Activations (Student-t with outliers, 128 x 4096) and weights (Gaussian, Hadamard-rotated,
128 x 4096) from the built-in example generators, as in ``if4mac demo``, are quantized to the
unit's format by golden and turned into the MAC stimulus of ``a @ w.T``: 16,384 dot products
of 256 beats, 4,194,305 beats per unit. They are played on the B = 16 pipelined MAC through
the native testbench (:mod:`if4mac.sim.native`, ``--jobs`` harness processes at once) and
scored against ``golden.run``.

"sim" is the harness processes' wall time (beats / s), "cpu" their CPU time added up (a
figure that load on a shared machine changes less); "wall" adds writing the plans and
scoring against golden. The load average is printed with each run: on a busy machine the
harness processes get a fraction of a core each.

To time the harness on another machine (one with more free cores, no Python environment
needed: a shell, xz and a C++ runtime), ``--export DIR`` writes each unit's compiled harness,
its pieces' plans (xz-compressed) and ``run.sh``, which plays all pieces of a unit at once and
writes the result files and its timing to the folder given to it; ``--score DIR RESULTS``
then rebuilds the same stimulus here and scores those results against golden:

    python benchmarks/real_layer.py --jobs 16 --export build/layer16
    sh build/layer16/run.sh OUT                              # on the other machine
    python benchmarks/real_layer.py --jobs 16 --score build/layer16 OUT
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import platform
import sys
import time
from pathlib import Path

from tqdm import tqdm

from if4mac.golden.quantize import quantize, stimulus_from_quantized
from if4mac.golden.tensors import example_tensor
from if4mac.sim.native import build_native, prepare_pieces, run_native, score_pieces
from if4mac.sim.runner import design_verilog, find_simulator


def layer_stream(unit: str, rows: int, cols: int, k: int):
    acts = example_tensor("student-t", (rows, k), seed=1)
    wts = example_tensor("gaussian", (cols, k), seed=2, hadamard=True)
    qa, qw = quantize(acts, unit), quantize(wts, unit)
    return stimulus_from_quantized(qa, qw, unit), qa.int_fraction, qw.int_fraction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="if4,nvfp4")
    parser.add_argument("--rows", type=int, default=128, help="activation rows (M)")
    parser.add_argument("--cols", type=int, default=128, help="weight rows (N)")
    parser.add_argument("--k", type=int, default=4096, help="the reduction length K")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="harness processes at once [default: the CPU count]")
    parser.add_argument("--export", metavar="DIR", default=None,
                        help="write harnesses, plans and run.sh to DIR instead of running")
    parser.add_argument("--score", nargs=2, metavar=("DIR", "RESULTS"), default=None,
                        help="score the results run.sh wrote to RESULTS for the export DIR")
    args = parser.parse_args(argv)
    if args.export or args.score:
        return export_or_score(args)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}; "
          f"{find_simulator('verilator')}")
    failed = False
    for unit in args.units.split(","):
        start = time.perf_counter()
        stream, a_int, w_int = layer_stream(unit, args.rows, args.cols, args.k)
        design = design_verilog(unit, 16, "pipelined")
        built = build_native(design)
        made = time.perf_counter() - start
        beats = int(stream.en.sum())
        bar = tqdm(total=args.rows * args.cols, desc=f"{unit} layer", unit="res",
                   file=sys.stderr, dynamic_ncols=True)

        def progress(done, total, bar=bar):
            bar.n = done
            bar.refresh()

        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        out = run_native(built, stream, jobs=args.jobs, progress=progress)
        wall = time.perf_counter() - start
        bar.n = len(out.results)
        bar.close()
        load_after = os.getloadavg()[0]
        verdict = "all results match golden" if out.passed else "MISMATCH"
        print(f"{unit:5} {args.rows}x{args.k} @ {args.cols}x{args.k}.T: {len(out.results)} "
              f"results, {beats} beats ({out.clock_cycles} cycles), INT4 blocks "
              f"{a_int:.0%}/{w_int:.0%}; {verdict}")
        print(f"      sim {out.sim_seconds:7.2f} s {beats / out.sim_seconds:11,.0f} beats/s | "
              f"cpu {out.cpu_seconds:7.2f} s {out.beats_per_cpu_second:11,.0f} beats/cpu-s | "
              f"wall {wall:7.2f} s {beats / wall:11,.0f} beats/s | {out.pieces} pieces, "
              f"jobs {args.jobs}, load {load_before:.1f} -> {load_after:.1f} "
              f"(stimulus + build {made:.1f} s)", flush=True)
        if not out.passed:
            print(out.report, file=sys.stderr)
            failed = True
    if failed:
        raise SystemExit(1)


_RUN_SH = """#!/bin/sh
# Plays every piece of each unit at once with the exported harness; results and timing go to
# the folder given as the argument.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
for unit in UNITS; do
  mkdir -p "$out/$unit"
  for plan in "$here/$unit"/plan*.bin.xz; do xz -dc "$plan" > "${plan%.xz}" & done
  wait
  start=$(date +%s.%N)
  for plan in "$here/$unit"/plan*.bin; do
    i=$(basename "$plan" .bin); i=${i#plan}
    "$here/$unit/native_tb" "$plan" "$out/$unit/out$i.bin" > "$out/$unit/end$i.txt" &
  done
  wait
  stop=$(date +%s.%N)
  echo "$start $stop $(nproc) $(cut -d' ' -f1 /proc/loadavg)" > "$out/$unit/time.txt"
  rm -f "$here/$unit"/plan*.bin
done
"""


def export_or_score(args) -> None:
    units = args.units.split(",")
    root = Path(args.export or args.score[0])
    failed = False
    for unit in units:
        stream, _, _ = layer_stream(unit, args.rows, args.cols, args.k)
        design = design_verilog(unit, 16, "pipelined")
        folder = root / unit
        if args.export:
            folder.mkdir(parents=True, exist_ok=True)
            built = build_native(design)
            shutil.copy2(built.executable, folder / "native_tb")
            prepare_pieces(design, stream, args.jobs, folder)
            for plan in sorted(folder.glob("plan*.bin")):
                with open(plan, "rb") as src, lzma.open(f"{plan}.xz", "wb", preset=1) as dst:
                    shutil.copyfileobj(src, dst)
                plan.unlink()
            print(f"{unit}: {len(list(folder.glob('plan*.bin.xz')))} pieces -> {folder}")
            continue
        results = Path(args.score[1]) / unit
        work = Path(f"{results}.scoring")
        work.mkdir(parents=True, exist_ok=True)
        plans, starts = prepare_pieces(design, stream, args.jobs, work)
        ends = []
        for i in range(len(plans)):
            shutil.copy2(results / f"out{i}.bin", work / f"out{i}.bin")
            ends.append((results / f"end{i}.txt").read_text())
        sb, plan, _ = score_pieces(design, stream, plans, starts, work, ends)
        shutil.rmtree(work, ignore_errors=True)
        start, stop, cpus, load = (results / "time.txt").read_text().split()
        seconds = float(stop) - float(start)
        beats = int(stream.en.sum())
        verdict = "all results match golden" if sb.passed else "MISMATCH"
        print(f"{unit:5} {len(sb.results)} results, {beats} beats ({len(plan)} cycles); "
              f"{verdict}; harness wall {seconds:.2f} s, {beats / seconds:,.0f} beats/s "
              f"({len(plans)} pieces on {cpus} CPUs, load {load} at the start)")
        if not sb.passed:
            print(sb.report(), file=sys.stderr)
            failed = True
    if args.export:
        (root / "run.sh").write_text(_RUN_SH.replace("UNITS", " ".join(units)))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
