"""The report's runs: which configurations it compares, and running or reusing each one.

:func:`collect` runs (or reuses) every configuration -- the units of
:data:`~if4mac.golden.formats.UNITS` x the reductions x the targets, plus flat ASIC runs --
and returns the report data. A run is reused from the work directory only when its record
matches the design's Verilog (by hash), the library file and the tool versions, so a report
can never mix stale numbers with fresh ones. The designs come from the one emitter's
on-disk cache, so checking a run does not elaborate the MAC again.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from if4mac.golden import DEFAULT_BLOCK_SIZE, UNITS
from if4mac.golden.mac import REDUCTIONS

from if4mac.golden import MacConfig
from if4mac.hdl.design import mac_design

from .designs import ARCH_OPTIONS, fpga_design
from .flow import SCHEMA, run_name, synthesize, write_result
from .libraries import resolve_library
from .tools import git_revision, tool_versions

__all__ = ["UNITS_COMPARED", "REPORT_SCHEMA", "collect"]

#: Baseline first: every ratio is IF4 / NVFP4 (the formats layer lists NVFP4 first).
UNITS_COMPARED = UNITS
REPORT_SCHEMA = "if4mac-report/1"


def _configs(block_size: int, targets, reductions=REDUCTIONS, flat: bool = True):
    for target in targets:
        for flat_run in ((False, True) if target == "asic" and flat else (False,)):
            for reduction in reductions:
                for unit in UNITS_COMPARED:
                    cfg = {"target": target, "unit": unit, "block_size": block_size,
                           "reduction": reduction}
                    if flat_run:
                        cfg["flat"] = True
                    yield cfg


def _cached(path: Path, cfg: dict, library_path: str | None,
            verilog_cache: Path | None = None) -> dict | None:
    """The saved record at ``path`` if it still describes this configuration exactly."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("schema") != SCHEMA:
        return None
    if bool(rec.get("flat", rec.get("name", "").endswith("-flat"))) != bool(cfg.get("flat")):
        return None
    kind = "mac"
    config = _config_of(cfg)
    # The ASIC design comes from the emitter's disk cache: no elaboration when it is current.
    des = (mac_design(config, cache_dir=verilog_cache) if cfg["target"] == "asic" else
           fpga_design(kind, unit=config))
    if rec.get("verilog_sha256") != des.sha256:
        return None
    if library_path and rec.get("target") == "asic":
        # The record names its library; the file's content must still be the same one.
        if rec.get("library_sha256") not in (None, _file_sha256(library_path)):
            return None
    versions = tool_versions()
    if any(versions.get(k) != v for k, v in rec.get("tools", {}).items()):
        return None
    rec.setdefault("flat", bool(cfg.get("flat")))
    if rec.get("target") == "asic" and "rtl_sha256" not in rec["area"]:
        # Records from before fingerprints: they follow from the (matching) Verilog alone.
        rtl: dict[str, set[str]] = {}
        for child in des.child_modules():
            inst = child[len(des.name) + 1:]
            rtl.setdefault(des.category(inst), set()).add(des.fingerprint(inst))
        rec["area"]["rtl_sha256"] = {k: sorted(v) for k, v in rtl.items()}
    return rec


def _config_of(cfg: dict) -> MacConfig:
    """The MAC configuration of a run's ``cfg`` (its architecture keys are optional)."""
    return MacConfig(cfg["unit"], cfg["block_size"], cfg["reduction"],
                     **{k: cfg[k] for k in ARCH_OPTIONS if k in cfg})


def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def collect(*, block_size: int = DEFAULT_BLOCK_SIZE, targets=("asic", "ecp5"),
            library: str | None = None, liberty: str | None = None,
            workdir: str | Path = "build/report", jobs: int = 2, reuse: bool = True,
            flat: bool = True,
            timeout: float | None = 3600, log=print) -> dict:
    """Run (or reuse) every configuration; return the report data.

    ``flat`` adds, for the ASIC, a synthesis of each whole design flattened: the per-block
    runs keep block boundaries (so area can be read per block), which also stops constants
    and narrow values from crossing them; the flat runs give each design's true total.
    """
    workdir = Path(workdir)
    lib = resolve_library(library, liberty) if "asic" in targets else None
    configs = list(_configs(block_size, targets, flat=flat))
    runs_dir = workdir / "runs"

    def one(cfg):
        name = run_name("mac", cfg["target"], unit=_config_of(cfg),
                        library=lib.key if lib else None) \
            + ("-flat" if cfg.get("flat") else "")
        path = runs_dir / f"{name}.json"
        if reuse:
            rec = _cached(path, cfg, lib.path if lib and cfg["target"] == "asic" else None,
                          workdir / "verilog")
            if rec is not None:
                log(f"report: reusing {name}")
                return rec
        log(f"report: synthesising {name} ...")
        extra = ({"library": library, "liberty": liberty} if cfg["target"] == "asic" else {})
        rec = synthesize(workdir=workdir / "work", timeout=timeout, **cfg, **extra)
        if cfg["target"] == "asic":
            rec["library_sha256"] = _file_sha256(lib.path)
        write_result(rec, path)
        log(f"report: {name} done")
        return rec

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        records = list(pool.map(one, configs))
    return {
        "schema": REPORT_SCHEMA,
        "block_size": block_size,
        "targets": list(targets),
        "git": git_revision(),
        "tools": tool_versions(),
        "runs": [{k: v for k, v in r.items() if k != "runtime_s"} for r in records],
    }
