"""Run the GPU jobs from a bare checkout, where the ``if4mac`` package is not installed.

The package maps its subpackages onto top-level folders (pyproject's ``package-dir``), so a plain
``sys.path`` entry cannot import it. This script installs an import hook built from that same
table and then runs one job::

    python3 gpu_ref/bootstrap.py gpu-check [options]    # if4mac gpu-check
    python3 gpu_ref/bootstrap.py bench [options]        # python -m if4mac.gpu_ref.bench
    python3 gpu_ref/bootstrap.py accuracy [options]     # python -m if4mac.gpu_ref.accuracy

The hook is installed at import time, outside the ``__main__`` guard, so that worker processes
started with the "spawn" method (which re-import this file) can import the package too.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class PackageDirFinder(importlib.abc.MetaPathFinder):
    """Finds ``if4mac`` and its mapped subpackages in their folders; defers everything else."""

    def __init__(self, root: Path, package_dir: dict[str, str]):
        self.folders = {name: root / folder for name, folder in package_dir.items()}

    def find_spec(self, fullname, path=None, target=None):
        folder = self.folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def install(root: Path = ROOT) -> None:
    """Make ``import if4mac.*`` work from the checkout at ``root`` (no-op if already importable)."""
    if importlib.util.find_spec("if4mac") is not None:
        return
    table = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir = table["tool"]["setuptools"]["package-dir"]
    sys.meta_path.insert(0, PackageDirFinder(root, package_dir))


install()

JOBS = {"gpu-check": ("if4mac.gpu_ref.cli", "gpu_check"),
        "bench": ("if4mac.gpu_ref.bench", "main"),
        "accuracy": ("if4mac.gpu_ref.accuracy", "main")}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 gpu_ref/bootstrap.py {{{'|'.join(JOBS)}}} [options]")
    module_name, attr = JOBS[sys.argv[1]]
    command = getattr(importlib.import_module(module_name), attr)    # a click command
    command.main(args=sys.argv[2:], prog_name=sys.argv[1])
