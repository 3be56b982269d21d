"""Running one proof: harness -> Verilog -> SymbiYosys (``prove``, smtbmc + Yices) -> verdict.

``prove`` mode runs two checks: a base case (no assertion fails within ``depth`` steps of
reset) and an induction step (``depth`` steps where every assertion holds are always
followed by one where they hold too). Both passing is a proof for every trace of any length.
The verdicts:

* ``PASS``: proven.
* ``FAIL``: the base case found a trace from reset that breaks an assertion: a real
  counterexample, written as a VCD and, for a MAC harness, as a stimulus file.
* ``UNKNOWN``: no counterexample within ``depth`` steps but the induction did not close
  (the property may still hold; its induction trace starts in an unreachable state).
* ``ERROR`` / ``TIMEOUT``: the tools failed or ran out of time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .tools import SOLVER, find_formal_tools

__all__ = ["ProofResult", "prove", "trace_inputs", "trace_to_stream"]

#: VCD time units per step in smtbmc's traces.
SMTBMC_STEP = 10


@dataclass
class ProofResult:
    name: str
    status: str                     # PASS, FAIL, UNKNOWN, ERROR, TIMEOUT
    seconds: float
    workdir: Path
    trace: Path | None = None       # VCD of the counterexample (FAIL) or induction trace
    stimulus: Path | None = None    # the counterexample's beats, for `if4mac golden` / `sim`
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def _sby_text(depth: int, top: str, mode: str = "prove", *, read: str | None = None,
              files=None) -> str:
    read = read or f"read_verilog -formal {top}.v"
    files = "\n".join(files or [f"{top}.v"])
    return f"""\
[options]
mode {mode}
depth {depth}
multiclock off

[engines]
smtbmc {SOLVER}

[script]
{read}
prep -top {top}

[files]
{files}
"""


def prove(name: str, harness, workdir: Path, *, depth: int = 1, cex_depth: int = 0,
          timeout: float | None = None) -> ProofResult:
    """Prove every ``Assert`` of ``harness`` (an Amaranth component) for all time.

    Writes ``workdir/harness.v`` and ``workdir/<name>.sby`` and runs sby in
    ``workdir/<name>/``. The Verilog comes from the project's path (``emit_verilog``), so the
    proof is about the netlist the Verilog flow ships. ``depth`` is the induction depth.
    When the induction does not close and ``cex_depth`` exceeds ``depth``, a bounded check
    to ``cex_depth`` steps looks for a real counterexample (then the verdict is FAIL).
    """
    from if4mac.hdl.design import emit_verilog

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    sources = getattr(harness, "sources", None)
    if sources is not None:
        # A harness written as (System)Verilog text: its files and the command that reads
        # them (e.g. read_slang), top module ``harness``.
        for file_name, text in sources.items():
            (workdir / file_name).write_text(text)
        read = dict(read=harness.read_script, files=list(sources))
    else:
        (workdir / "harness.v").write_text(emit_verilog(harness, "harness"))
        read = {}
    result = _run_sby(name, workdir, depth, "prove", start, timeout, **read)
    if result.status == "UNKNOWN" and cex_depth > depth:
        left = None if timeout is None else max(1.0, timeout - (time.monotonic() - start))
        bounded = _run_sby(f"{name}_bmc", workdir, cex_depth, "bmc", start, left, **read)
        if bounded.status == "FAIL":
            return bounded
        result.seconds = bounded.seconds
        result.detail += f"; no counterexample within {cex_depth} steps of reset"
    return result


def _run_sby(name: str, workdir: Path, depth: int, mode: str, start: float,
             timeout: float | None, read: str | None = None, files=None) -> ProofResult:
    tools = find_formal_tools()
    sby_file = workdir / f"{name}.sby"
    sby_file.write_text(_sby_text(depth, "harness", mode, read=read, files=files))
    run_dir = workdir / name
    # A session of its own, so a timeout ends sby's solvers too.
    proc = subprocess.Popen(tools.sby_command(sby_file, run_dir), cwd=workdir,
                            env=tools.environ(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate()
        return ProofResult(name, "TIMEOUT", time.monotonic() - start, run_dir,
                           detail=f"no verdict within {timeout:.0f} s")
    seconds = time.monotonic() - start
    status_file = run_dir / "status"
    status = status_file.read_text().split()[0] if status_file.is_file() else "ERROR"
    result = ProofResult(name, status, seconds, run_dir)
    if status == "FAIL":
        result.trace = _first(run_dir, "engine_*/trace.vcd")
        result.detail = _failed_assertion(log, workdir)
    elif status == "UNKNOWN":
        result.trace = _first(run_dir, "engine_*/trace_induct.vcd")
        result.detail = f"induction did not close at depth {depth}"
    elif status == "PASS" and mode == "bmc":
        result.status = "UNKNOWN"
    elif status not in ("PASS",):
        errors = [line for line in log.splitlines() if "ERROR" in line or "Error" in line]
        result.status = "ERROR"
        result.detail = errors[-1].strip() if errors else f"sby exited {proc.returncode}"
    return result


def _failed_assertion(log: str, workdir: Path) -> str:
    """The name of the first failing assertion (the harness names each check's signal)."""
    found = re.search(r"Assert failed in \S+: (harness\.s?v):(\d+)", log)
    if not found:
        return "an assertion fails"
    line = (workdir / found.group(1)).read_text().splitlines()[int(found.group(2)) - 1]
    named = re.search(r"assert\s*\(\s*\\?(\S+?)\s*\)", line)
    return f"{named.group(1)} fails" if named else line.strip()


def _first(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern))
    return found[0] if found else None


def trace_inputs(vcd_path: Path, names) -> list[dict[str, int]]:
    """The values of top-level signals ``names`` at each step of an sby trace (a VCD)."""
    from vcd.reader import TokenKind, tokenize

    ids, scope, steps, values = {}, [], [], {}
    current_time = None
    with open(vcd_path, "rb") as f:
        for token in tokenize(f):
            kind = token.kind
            if kind is TokenKind.SCOPE:
                scope.append(token.data.ident)
            elif kind is TokenKind.UPSCOPE:
                scope.pop()
            elif kind is TokenKind.VAR:
                var = token.data
                if len(scope) == 1 and var.reference in names:
                    ids[var.id_code] = var.reference
            elif kind is TokenKind.CHANGE_TIME:
                if current_time is not None and token.data != current_time:
                    steps.append((current_time, dict(values)))
                current_time = token.data
            elif kind in (TokenKind.CHANGE_SCALAR, TokenKind.CHANGE_VECTOR):
                name = ids.get(token.data.id_code)
                if name is not None:
                    raw = token.data.value
                    if isinstance(raw, str):
                        raw = int(raw.replace("x", "0").replace("z", "0"), 2) if raw else 0
                    values[name] = int(raw)
    if current_time is not None:
        steps.append((current_time, dict(values)))
    # smtbmc writes step k at time 10k (the clock's other edge at 10k + 5): one row a step.
    rows = {}
    for t, vals in steps:
        rows[t // SMTBMC_STEP] = vals
    return [rows[k] for k in sorted(rows)]


def trace_to_stream(rows: list[dict[str, int]], unit: str, block_size: int):
    """A counterexample's steps as a golden ``Stream`` (beats per spec, section 5).

    A step with ``rst_n`` low resets the MAC (its own beat is cleared with every register):
    it becomes ``reset`` on the next beat. The element codes are unpacked lane by lane.
    """
    import numpy as np

    from if4mac.golden import Stream

    beats, pending_reset = [], False
    for row in rows:
        if not row.get("rst_n", 1):
            pending_reset = True
            continue
        a = [(row.get("a_in", 0) >> (4 * i)) & 0xF for i in range(block_size)]
        w = [(row.get("w_in", 0) >> (4 * i)) & 0xF for i in range(block_size)]
        beats.append((row.get("en", 0), row.get("first", 0), a, w, row.get("a_sf", 0),
                      row.get("w_sf", 0), pending_reset))
        pending_reset = False
    n = len(beats)
    col = lambda i, dtype: np.array([b[i] for b in beats], dtype=dtype)  # noqa: E731
    return Stream(unit, col(0, bool), col(1, bool),
                  np.array([b[2] for b in beats], dtype=np.uint8).reshape(n, block_size),
                  np.array([b[3] for b in beats], dtype=np.uint8).reshape(n, block_size),
                  col(4, np.uint8), col(5, np.uint8),
                  col(6, bool) if any(b[6] for b in beats) else None)
