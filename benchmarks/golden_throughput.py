"""Golden-model throughput in lane-products per second (target: >= 2e7 on one core).

    python benchmarks/golden_throughput.py [--segments 1000000] [--unit if4] [--max-len 40]
                                           [--arch reference|fused-fp32|fused-exact]

Streams are generated up front (not timed) in chunks; only ``golden.run`` is timed. One
lane-product is one lane of one enabled beat: decode, product, scale, accumulate, and its
share of the tree reduction.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

# One core, as the target states: keep BLAS/OpenMP pools out of it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from if4mac.golden import random_stream  # noqa: E402
from if4mac.golden.fused import ARCHS, run_arch  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="segments per golden.run call")
    parser.add_argument("--unit", choices=("nvfp4", "if4"), default="if4")
    parser.add_argument("--max-len", type=int, default=40, help="segment lengths 1..N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arch", choices=ARCHS, default="reference",
                        help="MAC architecture (fused-exact uses its default accumulator)")
    args = parser.parse_args(argv)

    elapsed = 0.0
    lane_products = 0
    results = 0
    done = 0
    with tqdm(total=args.segments, unit="seg", desc=f"golden {args.unit} {args.arch}") as bar:
        while done < args.segments:
            n = min(args.chunk, args.segments - done)
            stream = random_stream(args.unit, n, seed=args.seed + done, max_len=args.max_len)
            start = time.perf_counter()
            out = run_arch(stream, arch=args.arch)
            elapsed += time.perf_counter() - start
            lane_products += int(stream.en.sum()) * stream.block_size
            results += len(out)
            done += n
            bar.update(n)
    assert results == args.segments, "every closed segment must produce a result"
    rate = lane_products / elapsed
    print(f"| unit | arch | segments | lane-products | golden.run time | lane-products/s |")
    print(f"|---|---|---|---|---|---|")
    print(f"| {args.unit} | {args.arch} | {args.segments:,} | {lane_products:,} | "
          f"{elapsed:.2f} s | {rate:.3g} |")
    print(f"({platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"segment lengths 1..{args.max_len}, one process)")
    return rate


if __name__ == "__main__":
    main()
