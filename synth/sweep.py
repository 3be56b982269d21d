"""Design-space sweeps on Dask distributed: many independent flow runs, cached by content.

:func:`sweep_specs` expands the options of ``if4mac sweep`` (units x block sizes x
reductions x clock targets x seeds x targets) into :class:`~.store.RunSpec`;
:func:`run_sweep` hands each to :func:`.store.execute` on a Dask cluster -- a
``LocalCluster`` of ``workers`` single-threaded worker processes by default, or an existing
scheduler (``scheduler="tcp://host:8786"``, e.g. one started by dask-jobqueue on SLURM/PBS,
docs/synthesis.md) -- and collects the records as they finish, with a progress bar.

Every finished run is in the :class:`~.store.RunStore` the moment it ends, so a sweep that
is interrupted (Ctrl-C, a killed job, a lost worker) and started again re-runs nothing that
finished: those come back from the store with ``reused`` true. :func:`results_table` turns
the records into one row each, written as JSON and CSV by :func:`write_results`.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from tqdm import tqdm

from if4mac.golden.formats import DEFAULT_BLOCK_SIZE

from .store import RunSpec, execute, execute_generic, generic_spec
from .tools import git_revision, tool_versions

__all__ = ["sweep_specs", "run_sweep", "open_client", "QUIET_LOCAL_CLUSTER", "results_table",
           "write_results", "TABLE_COLUMNS", "SweepInterrupted"]


class SweepInterrupted(Exception):
    """The sweep was stopped (Ctrl-C or SIGTERM); finished runs are in the store."""

    def __init__(self, finished: int, total: int):
        super().__init__(f"sweep interrupted after {finished} of {total} runs; the finished "
                         "ones are stored and a rerun resumes from there")
        self.finished, self.total = finished, total


def _sigterm_as_interrupt():
    """Make SIGTERM (a batch system's kill) interrupt like Ctrl-C, so the cluster is shut
    down; returns a function restoring the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, handler)
    # A process started in the background by a shell ignores SIGINT; take it back.
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore():
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    return restore

RESULTS_SCHEMA = "if4mac-sweep/1"


def sweep_specs(*, units=("nvfp4", "if4"), block_sizes=(2,), reductions=("pipelined",),
                clocks_ps=(None,), repeats: int = 1, repeat_at=None, targets=("asic",),
                abc_delay_target: bool = True, library: str | None = None,
                liberty: str | None = None, flat: bool = False,
                design: str = "mac", width: int = 8) -> list[RunSpec]:
    """Every run of a sweep. ``repeats`` > 1 adds runs that measure the flow's noise, at
    the clock targets in ``repeat_at`` (default: all of them): ASIC runs with ABC's inputs
    permuted by seeds 1 .. repeats-1, ECP5 runs with nextpnr placement seeds after the
    default one."""
    from .ecp5 import NEXTPNR_SEED

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    seeds = (None,) + tuple(range(1, repeats))
    pnr_seeds = (None,) + tuple(range(NEXTPNR_SEED + 1, NEXTPNR_SEED + repeats))
    if design == "regmul":
        # A calibration multiplier has no unit, block size or reduction.
        units, block_sizes, reductions = ("if4",), (DEFAULT_BLOCK_SIZE,), ("pipelined",)
    specs = []
    # Units innermost and the repeats last: runs that are compared come together, so a
    # sweep stopped early still holds comparable pairs (Dask starts tasks in the order
    # they are submitted).
    for target in targets:
        for s in (seeds if target == "asic" else pnr_seeds):
            for b in block_sizes:
                for r in reductions:
                    for c in clocks_ps:
                        if s is not None and repeat_at is not None and c not in repeat_at:
                            continue
                        for unit in units:
                            if target == "asic":
                                specs.append(RunSpec(
                                    target="asic", design=design, unit=unit, block_size=b,
                                    reduction=r, library=library, liberty=liberty,
                                    clock_ps=c, abc_delay_target=bool(abc_delay_target and c),
                                    flat=flat, abc_seed=s, width=width))
                            else:
                                specs.append(RunSpec(
                                    target="ecp5", design=design, unit=unit, block_size=b,
                                    reduction=r, freq_mhz=(1e6 / c) if c else None,
                                    width=width, pnr_seed=s))
    # The same run asked for twice (e.g. a design without a unit) is done once.
    return list(dict.fromkeys(specs))


def estimated_cpu_s(spec: RunSpec, *, generic: bool = False) -> float:
    """A rough CPU-second estimate of one job, only to order the jobs longest first (a
    schedule whose last jobs are short ends close to total CPU / workers). Figures from
    block-16 runs of this machine (docs/synthesis.md, "Run time"), scaled with the block
    size; what matters is their order, not their values."""
    scale = spec.block_size / 16 if spec.design == "mac" else 1.0
    big = spec.design == "mac" and spec.arch == "reference"
    if spec.target == "ecp5":
        # generic: Yosys's synth_ecp5, shared by a design's seeds; else nextpnr.
        return ((400.0 if big else 15.0) if generic else (600.0 if big else 35.0)) * scale
    if spec.design == "rtl":
        return 60.0
    if generic:
        return (90.0 if big else 8.0) * scale
    per_block = not spec.flat and spec.stages
    return ((120.0 if per_block else 45.0) if big else 8.0) * scale


def run_sweep(specs, *, store: str | Path, workdir: str | Path, scheduler: str | None = None,
              workers: int = 2, workload=None, timeout: float | None = 3600,
              progress: bool = True, log=None, require_commit: str | None = None,
              verilog_cache: str | Path | None = None) -> list[dict]:
    """Run ``specs`` on Dask; return their records in the order of ``specs``.

    ``scheduler`` is the address of a running Dask scheduler; without it a ``LocalCluster``
    of ``workers`` processes (one thread each: the tools are single-threaded and the
    Python around them holds the GIL) is started and closed here.

    The ASIC runs of one design (every clock target and seed, same ``flat``) share one
    generic job (:func:`.store.execute_generic`), and so do the ECP5 runs of one design
    (every nextpnr seed: Yosys's ``synth_ecp5``), submitted first; each run is its
    dependent. Jobs carry a Dask priority from :func:`estimated_cpu_s`: a reference MAC's
    ECP5 place and route first, then the generic jobs (by the work each unlocks), then the
    other runs, each longest first, so the last jobs to start are short ones.
    """
    from distributed import as_completed

    specs = list(specs)
    if not specs:
        return []
    store, workdir = Path(store).resolve(), Path(workdir).resolve()
    client, close = open_client(scheduler, workers)
    records: list[dict | None] = [None] * len(specs)
    restore = _sigterm_as_interrupt()
    futures = {}
    generic_futs = {}
    cache = None if verilog_cache is None else str(verilog_cache)
    try:
        shared: dict[RunSpec, list[RunSpec]] = {}
        for spec in specs:
            g = generic_spec(spec)
            if g is not None:
                shared.setdefault(g, []).append(spec)
        for j, (g, deps) in enumerate(shared.items()):
            # Priorities: generic jobs above every mapping run, by the work they unlock
            # (their own and their runs'), a reference MAC's ECP5 run above both (the
            # longest jobs of all).
            unlocks = estimated_cpu_s(g, generic=True) + sum(map(estimated_cpu_s, deps))
            generic_futs[g] = client.submit(
                execute_generic, g, str(store), str(workdir), timeout=timeout,
                dependents=deps, require_commit=require_commit, verilog_cache=cache,
                pure=False, retries=0, key=f"generic-{j}-{g.label()}",
                priority=int(1000 + unlocks))
        for i, spec in enumerate(specs):
            g = generic_spec(spec)
            cost = estimated_cpu_s(spec)
            # pure=False: a run is a side effect (files, the store); Dask must not
            # deduplicate or cache it on its own.
            fut = client.submit(execute, spec, str(store), str(workdir), timeout=timeout,
                                workload=workload, pure=False, retries=0,
                                require_commit=require_commit, verilog_cache=cache,
                                generic=generic_futs[g] if g is not None else None,
                                key=f"run-{i}-{spec.label()}",
                                priority=int(cost + (10_000 if spec.target == "ecp5" and cost >= 300
                                                     else 0)))
            futures[fut] = i
        bar = tqdm(total=len(specs), desc="sweep", unit="run", disable=not progress,
                   dynamic_ncols=True)
        with bar:
            for fut in as_completed(futures):
                i = futures[fut]
                rec = fut.result()   # a failed run raises here, after the others were stored
                records[i] = rec
                bar.set_postfix_str(f"{specs[i].label()} "
                                    + ("cached" if rec.get("reused") else f"{rec['wall_s']:.0f}s"))
                bar.update(1)
                if log:
                    log(f"sweep: {specs[i].label()} "
                        + ("reused" if rec.get("reused") else f"done in {rec['wall_s']:.1f} s"))
    except KeyboardInterrupt:
        client.cancel(list(futures) + list(generic_futs.values()))
        raise SweepInterrupted(sum(r is not None for r in records), len(specs)) from None
    finally:
        restore()
        close()
    return records  # type: ignore[return-value]


#: Dask settings of the LocalCluster. With Dask's defaults each process spends ~8 % of a core
#: on housekeeping while the tools run: the event loop's 20 ms tick, the worker's profiler
#: (a stack sample of the task thread every 10 ms; our tasks wait on subprocesses, which it
#: cannot see) and the 500 ms system monitor: with two workers, ~10 % of a two-core machine.
#: benchmarks/dask_overhead.py measures both settings.
QUIET_LOCAL_CLUSTER = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
}


def open_client(scheduler: str | None, workers: int, *, quiet: bool = True):
    """``(client, close)``: a Dask client of the running scheduler at ``scheduler`` (its
    workers keep their own Dask configuration), or of a ``LocalCluster`` of ``workers``
    processes with one thread each (the tools are single-threaded and the Python around them
    holds the GIL) that ``close()`` stops, started with :data:`QUIET_LOCAL_CLUSTER` unless
    ``quiet`` is false."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        return client, client.close
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    # The scheduler (in this process) and the workers (the nannies hand them this
    # configuration) read these when they start.
    with dask.config.set(QUIET_LOCAL_CLUSTER if quiet else {}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")   # any free port, no warning
        client = Client(cluster)

    def close():
        client.close()
        cluster.close()
    return client, close


#: Columns of the results table, in order.
TABLE_COLUMNS = (
    "label", "target", "unit", "block_size", "reduction", "flat", "clock_ps",
    "abc_delay_target", "abc_seed", "nextpnr_seed", "area_um2", "area_nand2", "flip_flops", "achieved_ps",
    "fmax_mhz", "met_target", "luts", "ffs", "dsps", "power_total_mw", "power_dynamic_mw",
    "power_leakage_mw", "energy_per_lane_product_pj", "wall_s", "yosys_synth_s", "abc_s",
    "yosys_other_s", "opensta_s", "activity_sim_s", "opensta_power_s", "nextpnr_s",
    "reused", "run_key", "commit", "dirty", "generic_key",
)


def _row(rec: dict) -> dict:
    spec = rec.get("spec", {})
    # The generic part's steps (its own job, shared with other runs of the design, or run
    # inline) beside the run's own: yosys_synth_s is the generic synthesis.
    gen = rec.get("generic") or {}
    steps = dict(gen.get("steps_s") or rec.get("generic_steps_s") or {})
    for k, v in (rec.get("steps_s") or {}).items():
        steps[k] = steps.get(k, 0.0) + v
    row = {c: None for c in TABLE_COLUMNS}
    row.update(label=rec.get("label"), target=rec.get("target"), unit=spec.get("unit"),
               block_size=spec.get("block_size"), reduction=spec.get("reduction"),
               flat=spec.get("flat"), clock_ps=rec["run_key"]["parts"].get("clock_ps"),
               abc_delay_target=spec.get("abc_delay_target"), abc_seed=spec.get("abc_seed"),
               nextpnr_seed=(rec["run_key"]["parts"]["options"].get("nextpnr_seed")
                             if rec.get("target") == "ecp5" else None),
               wall_s=rec.get("wall_s"), reused=bool(rec.get("reused")),
               run_key=rec["run_key"]["sha256"], commit=rec.get("git", {}).get("commit"),
               dirty=rec.get("git", {}).get("dirty"),
               yosys_synth_s=steps.get("yosys_synth", steps.get("yosys_synth_ecp5")),
               abc_s=steps.get("abc"),
               yosys_other_s=steps.get("yosys_other"), opensta_s=steps.get("opensta"),
               activity_sim_s=steps.get("activity_sim"),
               opensta_power_s=steps.get("opensta_power"), nextpnr_s=steps.get("nextpnr"),
               generic_key=gen.get("key"))
    if rec.get("target") == "asic":
        cp = rec["timing"]["critical_path"]["min_period_ps"]
        row.update(area_um2=rec["area"]["total_um2"], area_nand2=rec["area"]["total_nand2"],
                   flip_flops=rec["area"]["flip_flops"], achieved_ps=cp,
                   fmax_mhz=rec["timing"]["fmax_mhz"],
                   met_target=cp <= rec["timing"]["clock_period_ps"] + 1e-6)
        if "power" in rec:
            p = rec["power"]
            row.update(power_total_mw=p["total_w"] * 1e3, power_dynamic_mw=p["dynamic_w"] * 1e3,
                       power_leakage_mw=p["leakage_w"] * 1e3,
                       energy_per_lane_product_pj=p["energy_per_lane_product_pj"])
    else:
        y = rec.get("yosys_cells", {})
        row.update(luts=y.get("LUT4"), ffs=y.get("TRELLIS_FF"), dsps=y.get("MULT18X18D"),
                   fmax_mhz=rec.get("fmax_mhz"),
                   achieved_ps=(1e6 / rec["fmax_mhz"]) if rec.get("fmax_mhz") else None)
    return row


def results_table(records) -> list[dict]:
    """One row (:data:`TABLE_COLUMNS`) per record."""
    return [_row(r) for r in records]


def write_results(records, prefix: str | Path, *, wall_s: float | None = None,
                  workers: int | None = None) -> tuple[Path, Path]:
    """``PREFIX.json`` (rows, full records, commit, tools, sweep wall time) and
    ``PREFIX.csv`` (the rows)."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rows = results_table(records)
    jpath, cpath = prefix.with_suffix(".json"), prefix.with_suffix(".csv")
    doc = {"schema": RESULTS_SCHEMA, "git": git_revision(), "tools": tool_versions(),
           "wall_s": wall_s, "workers": workers,
           "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "columns": list(TABLE_COLUMNS), "rows": rows, "records": list(records)}
    jpath.write_text(json.dumps(doc, indent=1) + "\n")
    with open(cpath, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow(row)
    return jpath, cpath
