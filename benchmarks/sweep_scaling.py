"""Sweep engine scaling: the same sweep on a LocalCluster of 1 and of 2 workers, each from an
empty run store (so every run is done), wall time of each and the speed-up.

    .venv/bin/python benchmarks/sweep_scaling.py                      # 8 x 8 multiplier ladder
    .venv/bin/python benchmarks/sweep_scaling.py --design mac --block-size 2 --clock-ps 8000,3000

On a machine shared with other jobs the speed-up is a lower bound.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from if4mac.synth.sweep import run_sweep, sweep_specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", choices=("regmul", "mac"), default="regmul")
    ap.add_argument("--block-size", type=int, default=2)
    ap.add_argument("--clock-ps", default="3000,2000,1500,1200,1000,800,600,500")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    clocks = tuple(float(c) for c in args.clock_ps.split(","))
    specs = sweep_specs(units=("nvfp4", "if4"), block_sizes=(args.block_size,),
                        clocks_ps=clocks, design=args.design)
    walls = {}
    for n in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
            t0 = time.monotonic()
            recs = run_sweep(specs, store=Path(tmp) / "runs", workdir=Path(tmp) / "work",
                             workers=n, progress=False)
            walls[n] = time.monotonic() - t0
            assert not any(r["reused"] for r in recs)
            print(f"{len(specs)} runs on {n} worker{'s' if n > 1 else ''}: {walls[n]:.1f} s "
                  f"(sum of run wall times {sum(r['wall_s'] for r in recs):.1f} s)", flush=True)
    if 1 in walls:
        for n, w in walls.items():
            if n != 1:
                print(f"speed-up {n} vs 1 worker: {walls[1] / w:.2f}x")


if __name__ == "__main__":
    main()
