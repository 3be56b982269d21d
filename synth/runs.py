"""The report's runs: which configurations it compares, and running or reusing each one.

:func:`plan` lists every run of a report as :class:`~.store.RunSpec` with its *role*;
:func:`collect` runs them on Dask through :func:`.sweep.run_sweep` (so every run is a
content-addressed record of :mod:`.store`, reused only when its key -- Verilog, flow text,
options, tools, Liberty, clock, ABC seed -- is the same) and returns the report data.

No run is done twice: a design's headline numbers are its ladder point at the relaxed
target, the power analyses read the netlists of ladder points, and the noise repeats are
the only extra ASIC runs besides the per-block (hierarchical) runs of the headline pair.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from if4mac.golden import DEFAULT_BLOCK_SIZE, UNITS

from .ecp5 import check_nextpnr_seed
from .ladder import DEFAULT_LADDER_PS
from .store import RunSpec
from .tools import git_revision, tool_versions

__all__ = ["UNITS_COMPARED", "REPORT_SCHEMA", "DESIGNS", "plan", "collect", "DirtyTree",
           "design_id", "ECP5_CHOICES", "DEFAULT_ECP5_SEEDS"]

#: Baseline first: every ratio is IF4 / NVFP4 (the formats layer lists NVFP4 first).
UNITS_COMPARED = UNITS
REPORT_SCHEMA = "if4mac-report/2"

#: Every architecture on main, as (id, RunSpec fields, units). The reference architecture
#: with both trees; the fused ones with their defaults; fused-exact's serial converter
#: (IF4 only: NVFP4 has no /49 to share).
DESIGNS = (
    ("reference-pipelined", {"arch": "reference", "reduction": "pipelined"}, UNITS),
    ("reference-shared", {"arch": "reference", "reduction": "shared"}, UNITS),
    ("fused-fp32", {"arch": "fused-fp32"}, UNITS),
    ("fused-exact", {"arch": "fused-exact"}, UNITS),
    ("fused-exact-serial", {"arch": "fused-exact", "converter": "serial"}, ("if4",)),
)
#: The pair whose blocks and stages the report opens up, and that carries the power
#: analysis (the paper compares this kind of MAC).
HEADLINE = "reference-pipelined"
#: Which designs get ECP5 place and route: ``fused`` (every fused design), ``headline``
#: (the reference pipelined pair), ``all`` or ``none``. A reference MAC's place and route
#: takes ~570 CPU-s (one-thread WebAssembly nextpnr), a fused one's ~30 (docs/synthesis.md):
#: by default the fused designs, each with several seeds, so the FPGA ratio has a spread.
ECP5_CHOICES = ("fused", "headline", "all", "none")
#: nextpnr placement seeds of each ECP5 design: an ECP5 Fmax moves by several percent with
#: the seed, so one run says little about a few-percent IF4 / NVFP4 difference.
DEFAULT_ECP5_SEEDS = (1, 2, 3)


class DirtyTree(ValueError):
    """The tree has local changes and the report was not told to allow them."""


def design_id(spec_or_rec) -> str:
    """The :data:`DESIGNS` id of a spec or record (its arch, reduction and converter)."""
    s = spec_or_rec if isinstance(spec_or_rec, dict) else asdict(spec_or_rec)
    s = s.get("spec", s)
    arch = s.get("arch") or "reference"
    if arch == "reference":
        return f"reference-{s.get('reduction', 'pipelined')}"
    return arch + ("-serial" if s.get("converter") == "serial" else "")


def plan(*, block_size: int = DEFAULT_BLOCK_SIZE, ladder_ps=DEFAULT_LADDER_PS, noise_seeds=(1,),
         noise_at_ps: float | None = None, targets=("asic", "ecp5"), ecp5: str = "fused",
         ecp5_seeds=DEFAULT_ECP5_SEEDS, library: str | None = None,
         liberty: str | None = None, designs=None, blocks: bool = True,
         external=None) -> list[tuple[str, RunSpec]]:
    """(role, spec) of every run of a report. Roles: ``ladder`` (flat, ABC delay target =
    clock, every design at every ``ladder_ps``), ``noise`` (the same at ``noise_at_ps``
    with ABC's inputs permuted by each of ``noise_seeds``), ``blocks`` (the headline pair
    kept hierarchical at the relaxed target: area per block, delay per stage), ``ecp5``
    (the designs ``ecp5`` chooses, once per nextpnr seed of ``ecp5_seeds``), ``external``
    (the specs in ``external``, see :mod:`.external_rows`). Only the ``blocks`` runs get
    OpenSTA's per-stage analysis: no other run's stages are printed. Every ASIC run of one
    design and ``flat`` maps from one shared generic job (:func:`.store.execute_generic`)."""
    ladder_ps = tuple(float(c) for c in ladder_ps)
    if len(ladder_ps) < 1:
        raise ValueError("the report needs at least one clock target")
    if ecp5 not in ECP5_CHOICES:
        raise ValueError(f"unknown ECP5 choice {ecp5!r}: expected one of {', '.join(ECP5_CHOICES)}")
    ecp5_seeds = tuple(dict.fromkeys(ecp5_seeds))
    if not ecp5_seeds:
        raise ValueError("the ECP5 runs need at least one nextpnr seed")
    for s in ecp5_seeds:
        if s is None:
            raise ValueError("nextpnr seed must be an integer in 0..2147483647, got None")
        check_nextpnr_seed(s)
    relaxed = max(ladder_ps)
    noise_at = _noise_at(ladder_ps, noise_at_ps)
    chosen = [d for d in DESIGNS if designs is None or d[0] in designs]
    out: list[tuple[str, RunSpec]] = []
    common = dict(target="asic", block_size=block_size, library=library, liberty=liberty)
    if "ecp5" in targets and ecp5 != "none":
        # First: the longest runs start first, so they do not finish last alone.
        for s in ecp5_seeds:
            for did, fields, units in chosen:
                if (ecp5 == "all" or (ecp5 == "headline" and did == HEADLINE)
                        or (ecp5 == "fused" and fields.get("arch", "reference") != "reference")):
                    for u in units:
                        out.append(("ecp5", RunSpec(target="ecp5", unit=u,
                                                    block_size=block_size, pnr_seed=s,
                                                    **fields)))
    if "asic" in targets:
        for did, fields, units in chosen:
            if blocks and did == HEADLINE:
                for u in units:
                    out.append(("blocks", RunSpec(**common, unit=u, clock_ps=relaxed,
                                                  abc_delay_target=True, **fields)))
        for c in sorted(ladder_ps, reverse=True):
            for did, fields, units in chosen:
                # A design without an IF4/NVFP4 counterpart is measured at the relaxed
                # target only: it has no iso-period comparison to feed.
                if len(units) < 2 and c != relaxed:
                    continue
                for u in units:
                    out.append(("ladder", RunSpec(**common, unit=u, clock_ps=c, flat=True,
                                                  abc_delay_target=True, stages=False,
                                                  **fields)))
        for s in noise_seeds:
            for did, fields, units in chosen:
                if len(units) < 2:
                    continue
                for u in units:
                    out.append(("noise", RunSpec(**common, unit=u, clock_ps=noise_at, flat=True,
                                                 abc_delay_target=True, abc_seed=s,
                                                 stages=False, **fields)))
        for spec in external or ():
            # Their rows print the critical and I/O paths, not stages.
            out.append(("external", replace(spec, stages=False)))
    return out


def _noise_at(ladder_ps, noise_at_ps=None) -> float:
    """The clock of the noise repeats and the power analyses: the ladder's middle target."""
    if noise_at_ps:
        return float(noise_at_ps)
    ladder = sorted({float(c) for c in ladder_ps})
    return ladder[len(ladder) // 2]


def command_line(argv=None) -> str:
    """The command as the report's header states it."""
    import shlex
    import sys

    argv = sys.argv[1:] if argv is None else argv
    return "if4mac " + " ".join(shlex.quote(a) for a in argv)


def collect(*, block_size: int = DEFAULT_BLOCK_SIZE, targets=("asic", "ecp5"), library: str | None = None,
            liberty: str | None = None, workdir: str | Path = "build/report", jobs: int = 2,
            reuse: bool = True, ladder_ps=DEFAULT_LADDER_PS, noise_seeds=(1,),
            noise_at_ps: float | None = None, ecp5: str = "fused",
            ecp5_seeds=DEFAULT_ECP5_SEEDS, power: bool = True,
            designs=None, external=None, external_meta=None, allow_dirty: bool = False,
            scheduler: str | None = None, command: str | None = None,
            timeout: float | None = 3600, log=print, progress: bool = False) -> dict:
    """Run (or reuse) every run of :func:`plan`; return the report data.

    ``reuse`` False starts from an empty store. A tree with local changes to tracked files
    is refused (:class:`DirtyTree`) unless ``allow_dirty``; the data then says so.
    """
    from . import store as store_mod
    from .sweep import run_sweep

    git = git_revision()
    if git.get("dirty") and not allow_dirty:
        raise DirtyTree("the tree has local changes: commit them (a report names the commit "
                        "it came from) or pass --allow-dirty, which the report then states")
    workdir = Path(workdir).resolve()
    store = workdir / "store"
    if not reuse and store.exists():
        import shutil

        shutil.rmtree(store)
    store_mod.VERILOG_CACHE = workdir / "verilog"
    roles = plan(block_size=block_size, ladder_ps=ladder_ps, noise_seeds=noise_seeds,
                 noise_at_ps=noise_at_ps, targets=targets, ecp5=ecp5,
                 ecp5_seeds=ecp5_seeds, library=library,
                 liberty=liberty, designs=designs, external=external)
    specs = list(dict.fromkeys(s for _, s in roles))
    log(f"report: {len(specs)} flow runs (ASIC ladder, noise repeats, per-block, ECP5, "
        f"external) on {'scheduler ' + scheduler if scheduler else f'{jobs} workers'}")
    # From a clean tree, only this commit's records are reused: a report is one commit's.
    same = None if git.get("dirty") else git.get("commit")
    t0 = time.monotonic()
    records = run_sweep(specs, store=store, workdir=workdir / "work", scheduler=scheduler,
                        workers=jobs, timeout=timeout, progress=progress, require_commit=same,
                        verilog_cache=store_mod.VERILOG_CACHE,
                        log=lambda m: log("report: " + m.removeprefix("sweep: ")))
    by_spec = dict(zip(specs, records))
    power_recs = []
    if power and "asic" in targets:
        # The headline pair at the noise clock: the ladder points' own netlists.
        at = _noise_at(ladder_ps, noise_at_ps)
        pspecs = [s for r, s in roles if r == "ladder" and design_id(s) == HEADLINE
                  and s.clock_ps == at]
        power_recs = run_sweep(pspecs, store=store, workdir=workdir / "work",
                               scheduler=scheduler, workers=jobs, timeout=timeout,
                               workload="example", progress=progress, require_commit=same,
                               verilog_cache=store_mod.VERILOG_CACHE,
                               log=lambda m: log("report: power " + m.removeprefix("sweep: ")))
    wall = time.monotonic() - t0
    runs = []
    for role, spec in roles:
        rec = dict(by_spec[spec])
        rec["role"] = role
        runs.append(_slim(rec))
    from if4mac.hdl.design import source_digest

    return {
        "schema": REPORT_SCHEMA,
        "block_size": block_size,
        # What the staleness check compares before emitting any design again.
        "source_digest": source_digest(),
        "targets": list(targets),
        "command": command or "if4mac report",
        "git": git,
        "allow_dirty": bool(allow_dirty),
        "tools": tool_versions(),
        "plan": {"ladder_ps": sorted({float(c) for c in ladder_ps}, reverse=True),
                 "noise_seeds": list(noise_seeds), "ecp5": ecp5,
                 "ecp5_seeds": list(dict.fromkeys(ecp5_seeds)),
                 "noise_at_ps": _noise_at(ladder_ps, noise_at_ps),
                 "designs": [d for d, _, _ in DESIGNS if designs is None or d in designs],
                 "workers": jobs},
        "external": external_meta,
        "wall_s": round(wall, 1),
        "runs": runs,
        "power": [_slim(dict(r, role="power")) for r in power_recs],
    }


def _slim(rec: dict) -> dict:
    """A record as the report keeps it (the per-cell power listing is left in the store)."""
    rec = json.loads(json.dumps(rec))
    p = rec.get("power")
    if isinstance(p, dict):
        for k in ("cells", "per_cell"):
            p.pop(k, None)
    return rec
