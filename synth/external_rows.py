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

import json
import shutil
import subprocess
from pathlib import Path

from .store import RunSpec

__all__ = ["external_runs", "fouroversix_files", "check_authors_testbench", "SOURCES",
           "ExternalError"]

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

    workdir = Path(workdir) / f"tb_{unit}_{variant}"
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
    return f"authors' testbench: {results} results pass (RTL + {variant} stand-ins, Icarus)"


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
    meta = {"name": name, "commit": commit, "verified": verified,
            "intro": (f"The authors' published MAC (fouroversix `if4_mac/`, commit "
                      f"`{(commit or 'unknown')[:7]}`, MIT licence; read from the user's "
                      "checkout, not copied here) through the same flat ASIC flow at the "
                      "relaxed target, with this project's ChipWare-compatible stand-ins for "
                      "their closed FP blocks (docs/external.md). Their design has no input "
                      "registers, so its input-to-register stage is a real pipeline stage; "
                      "*every path* includes it.")}
    return specs, meta
