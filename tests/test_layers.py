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
}


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
        extra = _imports(path) - ALLOWED[folder] - {folder}
        if extra:
            bad[str(path.relative_to(ROOT))] = sorted(extra)
    assert not bad, f"imports that cross the layering of docs/architecture.md: {bad}"


def test_formats_layer_imports_nothing_of_if4mac():
    assert _imports(ROOT / "golden" / "formats.py") == set()
