"""Session-wide caches for the RTL simulation tests: one build per (design, simulator) and one
simulator run per regression, shared by the tests that read its verdicts.

Builds go to a per-user cache outside the repository (``$IF4MAC_TEST_CACHE``, else
``$XDG_CACHE_HOME/if4mac/tests``, else ``~/.cache/if4mac/tests``; a temporary folder if none
of those can be written) and are keyed by a hash of the Verilog, so a later session reuses
them until the RTL changes; a Verilator build of a 16-lane MAC takes about a minute on two
cores, an Icarus one a second. The tests write nothing into the working tree.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from if4mac.sim.runner import build, design_verilog, run_job

REPO = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """Where the test sessions keep their simulator builds: never inside the repository."""
    explicit = os.environ.get("IF4MAC_TEST_CACHE")
    if explicit:
        return Path(explicit).absolute()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for root in (base / "if4mac" / "tests",
                 Path(tempfile.gettempdir()) / f"if4mac-tests-{os.getuid()}"):
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK):
            return root
    raise RuntimeError("no writable cache folder for the simulation builds: set "
                       "IF4MAC_TEST_CACHE")


BUILD_ROOT = cache_root() / "sim"
#: Icarus runs the MAC about a hundred times slower than Verilator: it gets each scenario at
#: this fraction of the size (the same mix of cases), Verilator the full size.
ICARUS_SCALE = 0.15


@pytest.fixture(scope="session")
def sim_build():
    """``sim_build(unit, simulator, block_size=16, reduction="pipelined", waves=False)``."""
    cache = {}

    def get(unit, simulator, block_size=16, reduction="pipelined", waves=False):
        key = (unit, simulator, block_size, reduction, waves)
        if key not in cache:
            design = design_verilog(unit, block_size, reduction, BUILD_ROOT)
            cache[key] = build(design, simulator, waves=waves, build_root=BUILD_ROOT)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def regression(sim_build):
    """``regression(unit, simulator, scenarios, block_size=16, reduction=..., scale=...)``:
    the outcomes (by test name) of one simulator run over the scenarios, run once."""
    cache = {}

    def get(unit, simulator, scenarios="all", block_size=16, reduction="pipelined",
            scale=None):
        if scale is None:
            scale = ICARUS_SCALE if simulator == "icarus" else 1.0
        names = ("all",) if scenarios == "all" else tuple(scenarios)
        key = (unit, simulator, names, block_size, reduction, scale)
        if key not in cache:
            built = sim_build(unit, simulator, block_size, reduction)
            cache[key] = run_job(built, scenarios=names, scale=scale, seed=1)
        return cache[key]

    return get
