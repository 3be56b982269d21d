"""The simulators' build cache: where compiled designs live, and how they are kept and pruned.

Builds go under ``build/sim`` of the current directory unless ``IF4MAC_SIM_BUILD`` or a
``build_root`` argument says otherwise. A build folder is named after the design, the
simulator and a hash of everything that goes into the build, so a design is compiled once and
reused (across test sessions too) until its Verilog changes; concurrent builds of one key are
serialised with a lock file (:func:`locked`), and only the :data:`KEEP_BUILDS` most recently
used builds of a design are kept (:func:`prune`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["default_build_root", "build_root", "locked", "build_folder", "drop_intermediates",
           "prune", "KEEP_BUILDS", "compile_in"]

#: Verilator's object files and precompiled headers: over 100 MB a build, unused once linked.
_INTERMEDIATES = ("*.o", "*.a", "*.gch", "*.cpp", "*.d", "*__ALL*")
#: Builds kept per design name and simulator; older ones (earlier RTL) are removed.
KEEP_BUILDS = 3


def default_build_root() -> Path:
    return Path(os.environ.get("IF4MAC_SIM_BUILD", "build/sim")).absolute()


def build_root(root: Path | None) -> Path:
    """``root`` if given, else :func:`default_build_root`."""
    return Path(root) if root is not None else default_build_root()


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def build_folder(root: Path, name: str, version: str):
    """The build folder ``root/name``, locked for the ``with`` block: yields
    ``(directory, fresh)``. A ``fresh`` folder (no finished build there) has been emptied for
    the caller to build in; when the block ends normally it is marked finished (recording
    ``version``) and older builds of the same design are pruned. A finished folder is
    reused as it is, and marked as just used."""
    directory = root / name
    done = directory / "built.ok"
    with locked(root / f".{name}.lock"):
        fresh = not done.exists()
        if fresh:
            if directory.exists():
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
        yield directory, fresh
        if fresh:
            done.write_text(version + "\n")
            prune(root, directory)
        done.touch()


def compile_in(directory: Path, cmd: list[str], what: str) -> None:
    """Run a build command in ``directory`` (output to ``build.log`` there), raise a
    ``RuntimeError`` with the log's tail if it fails, and drop Verilator's intermediates from
    ``directory/obj``. ``what`` names the build in the error ("icarus build of X")."""
    with open(directory / "build.log", "w") as log:
        proc = subprocess.run(cmd, cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join((directory / "build.log").read_text(errors="replace")
                         .splitlines()[-30:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    drop_intermediates(directory / "obj")


def drop_intermediates(directory: Path) -> None:
    """Delete a finished Verilator build's intermediate files."""
    for pattern in _INTERMEDIATES:
        for path in directory.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()


def prune(root: Path, current: Path) -> None:
    """Remove all but the KEEP_BUILDS most recently used builds like ``current``."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    siblings = [d for d in root.iterdir() if d.is_dir() and d.name.startswith(prefix)
                and d.name.rsplit("-", 1)[0] + "-" == prefix and (d / "built.ok").exists()]
    siblings.sort(key=lambda d: (d / "built.ok").stat().st_mtime, reverse=True)
    for old in siblings[KEEP_BUILDS:]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
