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
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from tqdm import tqdm

from if4mac.golden.quantize import quantize, stimulus_from_quantized
from if4mac.golden.tensors import example_tensor
from if4mac.sim.native import build_native, run_native
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    main()
