"""The layering of docs/architecture.md, checked on the imports: a layer imports only the
layers below it (formats < golden < hdl < sim, synth; gpu_ref on golden alone)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Folder -> the if4mac subpackages its modules may import (besides their own).
ALLOWED = {
    "golden": set(),
    "hdl": {"golden"},
    "sim": {"golden", "hdl"},
    "synth": {"golden", "hdl"},
    "gpu_ref": {"golden"},
    "formal": {"golden", "hdl"},
}
#: The support layer under every layer: the one user-error type and safe output writing
#: (if4mac/errors.py, if4mac/safe_output.py), which import nothing else of if4mac.
SUPPORT = {"errors", "safe_output"}
#: Only command-line modules use the click command classes that map errors to exit statuses.
CLI_SUPPORT = {"command"}
#: Single modules allowed one layer sideways, each for a stated reason. synth/power.py
#: simulates the mapped netlist for its switching activity with the simulation layer's drive
#: plan and plan-file testbench (the same beats as every RTL simulation, not a copy);
#: synth/gatesim.py runs the mapped netlists under that testbench and its scoreboard.
MODULE_EXTRA = {"synth/power.py": {"sim"}, "synth/gatesim.py": {"sim"}}


def _imports(path: Path) -> set[str]:
    """The if4mac subpackages a module imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "if4mac" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_layer_imports_only_layers_below(folder):
    bad = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        allowed = ALLOWED[folder] | {folder} | SUPPORT
        if path.name == "cli.py":
            allowed |= CLI_SUPPORT
        allowed |= MODULE_EXTRA.get(str(path.relative_to(ROOT)), set())
        extra = _imports(path) - allowed
        if extra:
            bad[str(path.relative_to(ROOT))] = sorted(extra)
    assert not bad, f"imports that cross the layering of docs/architecture.md: {bad}"


@pytest.mark.parametrize("module", sorted(SUPPORT))
def test_support_layer_imports_only_support(module):
    assert _imports(ROOT / "if4mac" / f"{module}.py") <= SUPPORT


def test_command_classes_import_support_and_golden_only():
    # golden for the one block-size check behind every --block-size option
    assert _imports(ROOT / "if4mac" / "command.py") <= SUPPORT | {"golden"}


def test_formats_layer_imports_nothing_of_if4mac():
    """Nothing but the support layer's error types (every layer may raise them)."""
    assert _imports(ROOT / "golden" / "formats.py") <= {"errors"}
