"""External designs as rows of ``if4mac report`` (``--external NAME=PATH``).

One source so far: ``fouroversix=CHECKOUT``, the IF4 authors' MAC (github.com/mit-han-lab/
fouroversix, ``if4_mac/``; docs/external.md): both units, each with both ChipWare stand-in
variants (:mod:`if4mac.hdl.chipware`), synthesised flat by the ASIC flow at the report's
relaxed clock target through ``if4mac synth --rtl``'s path (:func:`.flow.external_design`).
Their RTL is read from the user's checkout and never copied into this project; the report
names the checkout's commit.

Before a design is measured, the authors' own testbench (``if4_mac/tb``: block 16, three
accumulated results per unit) runs in Icarus on their RTL with the stand-ins; a failure
stops the report. At other block sizes the vectors do not apply, and the row says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .store import RunSpec

__all__ = ["external_runs", "fouroversix_files", "fouroversix_spec", "check_authors_testbench",
           "check_netlists", "check_netlist", "golden_check_stream", "SOURCES", "ExternalError",
           "GOLDEN_SEGMENTS"]

SOURCES = ("fouroversix",)
#: The authors' RTL files of one unit, in elaboration order (docs/external.md).
FOUROVERSIX_FILES = ("w_a_multiplier.sv", "scale_factors_multiplier.sv", "wa_sf_multiplier.sv")
#: Block size of the authors' testbench vectors (``localparam BLOCK_SIZE = 16``).
TB_BLOCK_SIZE = 16


class ExternalError(ValueError):
    """A checkout that is not what ``--external`` names, or a design that fails its tests."""


def fouroversix_files(checkout: Path, unit: str) -> list[Path]:
    rtl = checkout / "if4_mac" / "rtl" / f"{unit}_mac"
    files = [rtl / f for f in FOUROVERSIX_FILES] + [rtl / f"{unit}_mac.sv"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ExternalError(f"--external fouroversix: not a fouroversix checkout (missing "
                            f"{missing[0]})")
    return files


def _commit(checkout: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def check_authors_testbench(checkout: Path, unit: str, variant: str, workdir: Path, *,
                            timeout: float = 900) -> str:
    """Run the authors' testbench of ``unit`` on their RTL with the ``variant`` stand-ins
    (Icarus); return its PASS line, raise :class:`ExternalError` on a failure."""
    from if4mac.hdl.chipware import chipware_standins

    # Absolute: Icarus runs inside this folder and gets the stand-ins' path.
    workdir = Path(workdir).resolve() / f"tb_{unit}_{variant}"
    workdir.mkdir(parents=True, exist_ok=True)
    cw = workdir / f"cw_{variant}.v"
    cw.write_text(chipware_standins(variant))
    tbdir = checkout / "if4_mac" / "tb"
    tb = tbdir / f"tb_{unit}_mac.sv"
    exe = workdir / "tb.vvp"
    cmd = ["iverilog", "-g2012", "-I", str(tbdir), "-o", str(exe), str(cw),
           *map(str, fouroversix_files(checkout, unit)), str(tb)]
    comp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if comp.returncode != 0:
        raise ExternalError(f"the authors' {unit} testbench does not compile with the "
                            f"{variant} stand-ins: {(comp.stderr or comp.stdout).strip()[:300]}")
    run = subprocess.run(["vvp", "-n", str(exe)], capture_output=True, text=True,
                         timeout=timeout, cwd=workdir)
    passed = [ln for ln in run.stdout.splitlines() if ln.startswith("PASS: tb_")]
    if run.returncode != 0 or not passed or "FATAL" in run.stdout.upper():
        tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
        raise ExternalError(f"the authors' {unit} testbench fails with the {variant} "
                            f"stand-ins: {' / '.join(tail)}")
    results = sum(1 for ln in run.stdout.splitlines() if ln.startswith("PASS: result["))
    expected = _tb_expected(tb)
    if results != expected:
        raise ExternalError(f"the authors' {unit} testbench passes {results} of {expected} "
                            f"results with the {variant} stand-ins")
    return f"RTL: authors' tb {results}/{expected}"


def fouroversix_spec(checkout: Path, unit: str, variant: str, *, block_size: int,
                     library: str | None, liberty: str | None, clock_ps: float,
                     abc_seed: int | None = None) -> RunSpec:
    """The flat ASIC run of the authors' ``unit`` MAC with the ``variant`` stand-ins
    (``abc_seed``: a noise repeat, ABC's inputs permuted as in the report's noise points)."""
    rtl = {"files": [str(f) for f in fouroversix_files(checkout, unit)], "top": f"{unit}_mac",
           "params": {"BLOCK_SIZE": str(block_size)}, "defines": {},
           "clock": "clk", "reset": "rst_n", "standins": variant,
           "label": _label(unit, variant), "unit": unit}
    return RunSpec(target="asic", design="rtl", unit=unit, block_size=block_size,
                   library=library, liberty=liberty, clock_ps=float(clock_ps),
                   abc_delay_target=True, flat=True, abc_seed=abc_seed,
                   rtl=json.dumps(rtl, sort_keys=True))


def _label(unit: str, variant: str) -> str:
    return f"authors {unit}_mac, {variant} stand-ins"


#: The stand-in variant whose runs are repeated with the report's ABC seeds (the noise of
#: the authors' rows): one variant only, each block-16 run costs minutes of CPU.
NOISE_VARIANT = "reduced"


def external_runs(name: str, path, *, block_size: int, library: str | None,
                  liberty: str | None, clock_ps: float, workdir: Path, noise_seeds=(),
                  log=print):
    """(specs, meta) of the external design ``name`` at ``path`` for the report: the four
    runs, then the :data:`NOISE_VARIANT` pair again with each of ``noise_seeds``."""
    if name not in SOURCES:
        raise ExternalError(f"unknown --external source {name!r}: expected one of "
                            f"{', '.join(SOURCES)}")
    checkout = Path(path).resolve()
    if not checkout.is_dir():
        raise ExternalError(f"--external {name}: no such folder: {path}")
    if shutil.which("iverilog") is None:
        raise ExternalError("--external needs Icarus Verilog (iverilog) for the authors' "
                            "testbench")
    specs, verified = [], {}
    for unit in ("nvfp4", "if4"):
        fouroversix_files(checkout, unit)
        for variant in ("reduced", "ieee"):
            label = _label(unit, variant)
            if block_size == TB_BLOCK_SIZE:
                log(f"report: {label}: running the authors' testbench ...")
                verified[label] = check_authors_testbench(checkout, unit, variant,
                                                          Path(workdir))
            else:
                verified[label] = (f"not checked: the authors' vectors are block "
                                   f"{TB_BLOCK_SIZE}")
            specs.append(fouroversix_spec(checkout, unit, variant, block_size=block_size,
                                          library=library, liberty=liberty,
                                          clock_ps=clock_ps))
    for seed in noise_seeds:
        for unit in ("nvfp4", "if4"):
            specs.append(fouroversix_spec(checkout, unit, NOISE_VARIANT, block_size=block_size,
                                          library=library, liberty=liberty,
                                          clock_ps=clock_ps, abc_seed=int(seed)))
    commit = _commit(checkout)
    # "checkout_commit": the user's checkout of their repository, not a run of this one.
    meta = {"name": name, "checkout_commit": commit, "verified": verified,
            "intro": (f"The authors' published MAC (fouroversix `if4_mac/`, commit "
                      f"`{(commit or 'unknown')[:7]}`, MIT licence; read from the user's "
                      "checkout, not copied here) through the same flat ASIC flow at the "
                      "relaxed target, with this project's ChipWare-compatible stand-ins for "
                      "their closed FP blocks (docs/external.md). Their design has no input "
                      "registers, so its input-to-register stage is a real pipeline stage; "
                      "*every path* includes it.")}
    return specs, meta


# --- The synthesized netlists, checked before their numbers are reported ----------------------

#: Segments of the golden stream played on each mapped netlist. The block-16 flat netlist
#: (about 55,000 cells) runs at roughly 10 clock cycles per CPU second in Icarus with the
#: cell models (docs/external.md), so 300 segments of 5-8 beats (with bubbles: ~2,100
#: cycles) cost a few CPU minutes per netlist, about a block-16 synthesis run's worth for the
#: four; smaller blocks simulate proportionally faster.
GOLDEN_SEGMENTS = 300
#: Seed of that stream (fixed: the check is part of a reproducible report).
GOLDEN_SEED = 18
#: Version of the check (its cache key): bump when what is simulated or judged changes.
_CHECK_RECIPE = 1


def golden_check_stream(unit: str, block_size: int, segments: int = GOLDEN_SEGMENTS):
    """The random stream a netlist must reproduce: every element code, random INT flags,
    scales at the decode's edges on about 30 % of the beats, 10 % bubbles with garbage.

    The authors' reduction tree takes a new segment only ``tree_levels(B)`` cycles after the
    last one it accepted and drops one closing sooner without a flag (this project's shared
    tree refuses for one cycle less and raises ``overrun``); so every segment spans at least
    ``tree_levels(B) + 1`` rows, where the pipelined and shared reductions and their design
    all give every result.
    """
    from if4mac.golden.mac import tree_levels

    from .gatesim import edge_scale_stream

    shortest = max(1, tree_levels(block_size)) + 1
    return edge_scale_stream(unit, segments, block_size=block_size, seed=GOLDEN_SEED,
                             min_len=shortest, max_len=shortest + 3)


def _netlist_path(rec: dict, workdir: Path) -> Path:
    """Where :func:`.store.execute` left the record's mapped netlist (under the report's
    ``WORKDIR/work/<key[:16]>``)."""
    return (Path(workdir) / "work" / rec["run_key"]["sha256"][:16] / rec["name"]
            / f"{rec['design']['top']}.netlist.v")


def check_netlist(rec: dict, spec: RunSpec, checkout: Path, workdir: Path, *,
                  segments: int = GOLDEN_SEGMENTS, log=print) -> dict:
    """Simulate the mapped netlist of the external run ``rec`` (Icarus, Nangate cell models,
    zero delay): the authors' testbench of its unit (block 16 only: their vectors) through a
    :func:`~.gatesim.reference_shim`, and :func:`golden_check_stream` against golden,
    result for result, value and cycle, at golden's latency (their design's, checked).

    Returns ``{"tb": (passed, expected) or None, "golden": (passed, results), "beats",
    "cycles", "cpu_s", "cached"}``; raises :class:`ExternalError` (one line) on any failure.
    The outcome is cached under ``WORKDIR/checks`` by the netlist's SHA-256 and the check's
    inputs, so a report that reuses a run does not simulate it again.
    """
    from if4mac.golden import latency

    from .gatesim import netlist_mac_design, netlist_testbench, play_netlist

    rtl = spec.rtl_dict()
    unit, top, label = rtl["unit"], rtl["top"], rtl.get("label") or rtl["top"]
    block = spec.block_size
    path = _netlist_path(rec, workdir)
    if not path.is_file():
        # A record reused from the store whose work folder is gone: map it again.
        from .flow import synthesize

        log(f"report: {label}: netlist missing, synthesising it again for the check ...")
        synthesize(workdir=path.parent.parent, **spec.synth_kwargs())
    netlist = path.read_text()
    tb = checkout / "if4_mac" / "tb" / f"tb_{unit}_mac.sv"
    if block == TB_BLOCK_SIZE and not tb.is_file():
        raise ExternalError(f"--external fouroversix: not a fouroversix checkout (missing {tb})")
    stream = golden_check_stream(unit, block, segments)
    h = hashlib.sha256()
    for part in (str(_CHECK_RECIPE), netlist, str(block), str(segments),
                 tb.read_text() if block == TB_BLOCK_SIZE else "",
                 (tb.parent / f"{unit}_mac_golden_ref.svh").read_text()
                 if block == TB_BLOCK_SIZE else ""):
        h.update(hashlib.sha256(part.encode()).digest())
    cache = Path(workdir) / "checks" / f"{h.hexdigest()}.json"
    if cache.is_file():
        return {**json.loads(cache.read_text()), "cached": True}
    cache.parent.mkdir(parents=True, exist_ok=True)
    # A folder of its own: two Dask workers may check byte-identical netlists at once.
    work = Path(tempfile.mkdtemp(prefix=h.hexdigest()[:16] + "-", dir=cache.parent))
    c0 = _cpu_s()
    tb_result = None
    if block == TB_BLOCK_SIZE:
        log(f"report: {label}: the authors' testbench on the mapped netlist ...")
        run = netlist_testbench(netlist, top, block, tb, work / "tb", include_dirs=[tb.parent])
        passed = sum(1 for ln in run.stdout.splitlines() if ln.startswith("PASS: result["))
        expected = _tb_expected(tb)
        if run.returncode != 0 or f"PASS: tb_{unit}_mac" not in run.stdout \
                or "FATAL" in run.stdout.upper() or passed != expected:
            tail = (run.stdout + run.stderr).strip().splitlines()[-2:]
            raise ExternalError(f"{label}: the mapped netlist fails the authors' testbench "
                                f"({passed}/{expected} results): {' / '.join(tail)}")
        tb_result = (passed, expected)
    log(f"report: {label}: golden stream ({segments} segments) on the mapped netlist ...")
    design = netlist_mac_design(netlist, top, unit, block, latency(block))
    out = play_netlist(design, stream, work / "golden")
    results = len(out.results)
    if not out.passed:
        first = out.report.strip().splitlines()
        raise ExternalError(f"{label}: the mapped netlist disagrees with golden: "
                            f"{first[0] if first else 'no report'}")
    outcome = {"tb": tb_result, "golden": (results, segments), "beats": out.beats,
               "cycles": out.clock_cycles, "cpu_s": round(_cpu_s() - c0, 1),
               "sim_wall_s": round(out.sim_seconds, 1), "netlist": str(path)}
    part = work / "outcome.json"
    part.write_text(json.dumps(outcome))
    os.replace(part, cache)   # atomic: a reader sees the whole outcome or none
    shutil.rmtree(work, ignore_errors=True)
    return {**outcome, "cached": False}


def _tb_expected(tb: Path) -> int:
    """The number of results the authors' testbench expects (its ``NUM_EXPECTED``)."""
    mt = re.search(r"NUM_EXPECTED\s*=\s*(\d+)", tb.read_text())
    if not mt:
        raise ExternalError(f"{tb}: no NUM_EXPECTED; not the authors' testbench layout")
    return int(mt.group(1))


def _cpu_s() -> float:
    """CPU seconds of the finished children (iverilog, vvp) and this process."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def check_netlists(data: dict, specs, checkout, workdir: Path, *,
                   segments: int = GOLDEN_SEGMENTS, scheduler: str | None = None,
                   workers: int = 2, progress: bool = False, log=print) -> None:
    """Check every external run's netlist (:func:`check_netlist`) of the report ``data``
    (noise repeats included: each is a netlist of its own) and write what passed into
    ``data["external"]["verified"]`` (per label) and ``["netlist_checks"]`` (per run).

    The checks are independent single-threaded simulations, so they run as Dask tasks like
    the flow runs: on ``scheduler``, or on a ``LocalCluster`` of ``workers`` processes
    started and closed here. The first failure raises its :class:`ExternalError` (one line)
    once the running checks are cancelled.
    """
    from distributed import as_completed
    from tqdm import tqdm

    from .sweep import open_client

    by_label = {spec.label(): spec for spec in specs}
    meta = data.get("external") or {}
    recs = [rec for rec in data["runs"] if rec.get("role") == "external"]
    if not recs:
        return
    client, close = open_client(scheduler, workers)
    checks: dict[str, dict] = {}
    try:
        futures = {}
        for i, rec in enumerate(recs):
            # Workers do not print (their output would interleave): the outcome is logged here.
            # Largest netlist first (a check's time grows with its cells), so the last
            # checks to start are short ones.
            fut = client.submit(_timed_check, rec, by_label[rec["label"]], str(checkout),
                                str(workdir), segments, pure=False, retries=0,
                                key=f"check-{i}-{rec['label']}",
                                priority=int(rec["area"].get("cells") or 0))
            futures[fut] = rec["label"]
        with tqdm(total=len(futures), desc="netlist checks", unit="netlist",
                  disable=not progress, dynamic_ncols=True) as bar:
            for fut in as_completed(futures):
                label = futures[fut]
                try:
                    c = fut.result()
                except BaseException:
                    client.cancel(list(futures))
                    raise
                checks[label] = c
                bar.update(1)
                log(f"report: {label}: netlist checked "
                    + ("(cached)" if c["cached"] else f"in {c['wall_s']:.0f} s")
                    + (f": authors' tb {c['tb'][0]}/{c['tb'][1]}" if c["tb"] else ":")
                    + f" golden stream {c['golden'][0]}/{c['golden'][1]}")
    finally:
        close()
    for rec in recs:   # in the report's order, whatever order the checks finished in
        spec, c = by_label[rec["label"]], checks[rec["label"]]
        if spec.abc_seed is None:
            label = spec.rtl_dict().get("label")
            netlist = (f"netlist: authors' tb {c['tb'][0]}/{c['tb'][1]}, " if c["tb"] else
                       "netlist: ") + (f"golden stream {c['golden'][0]}/{c['golden'][1]} "
                                       f"({c['beats']:,} beats)")
            rtl = meta.get("verified", {}).get(label, "")
            meta.setdefault("verified", {})[label] = (f"{rtl}; {netlist}" if rtl else netlist)
    meta["netlist_checks"] = {rec["label"]: checks[rec["label"]] for rec in recs}
    data["external"] = meta


def _timed_check(rec: dict, spec: RunSpec, checkout: str, workdir: str, segments: int) -> dict:
    """One Dask task of :func:`check_netlists`: :func:`check_netlist` and its wall time."""
    t0 = time.monotonic()
    c = check_netlist(rec, spec, Path(checkout), Path(workdir), segments=segments,
                      log=lambda m: None)
    c["wall_s"] = round(time.monotonic() - t0, 1)
    return c
