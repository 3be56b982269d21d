"""Dask's own CPU use while the flow tools run: a LocalCluster from ``open_client`` with Dask's
defaults and with ``QUIET_LOCAL_CLUSTER``, each running one ``sleep`` subprocess per worker
(a stand-in for Yosys, ABC or nextpnr: the worker only waits), and the CPU seconds the
worker processes and this process (the scheduler, the client) spend meanwhile.

    .venv/bin/python benchmarks/dask_overhead.py [--workers 2] [--seconds 40]

The saving is per process and per second of waiting, so it scales with a sweep's length.
"""

from __future__ import annotations

import argparse
import os
import subprocess

import psutil  # comes with distributed (its system monitor uses it)

from if4mac.synth.sweep import open_client


def wait_on_a_tool(seconds: float) -> None:
    subprocess.run(["sleep", str(seconds)], check=True)


def cpu_s(process: psutil.Process) -> float:
    t = process.cpu_times()
    return t.user + t.system


def measure(workers: int, seconds: float, quiet: bool) -> tuple[list[float], float]:
    client, close = open_client(None, workers, quiet=quiet)
    try:
        procs = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        me = psutil.Process()
        before = [cpu_s(p) for p in procs], cpu_s(me)
        # One task per worker: each sits in a subprocess for the whole measurement.
        client.gather(client.map(wait_on_a_tool, [seconds] * workers, pure=False))
        after = [cpu_s(p) for p in procs], cpu_s(me)
    finally:
        close()
    return [b - a for a, b in zip(before[0], after[0])], after[1] - before[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    print(f"{args.workers} workers, each waiting {args.seconds:g} s on a subprocess")
    print("| settings | worker CPU s (each) | scheduler + client CPU s | % of a core, all |")
    print("|---|---|---:|---:|")
    for quiet in (False, True):
        per_worker, main_s = measure(args.workers, args.seconds, quiet)
        share = 100 * (sum(per_worker) + main_s) / args.seconds
        name = "QUIET_LOCAL_CLUSTER" if quiet else "Dask defaults"
        print(f"| {name} | {', '.join(f'{w:.2f}' for w in per_worker)} | {main_s:.2f} | "
              f"{share:.1f} |", flush=True)


if __name__ == "__main__":
    main()
