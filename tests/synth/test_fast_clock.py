"""ABC's clock shim (synth/fast_clock.c, :func:`~if4mac.synth.tools.fast_clock_library`):
CPU-time clock reads answered from the monotonic clock, and the flow's netlists the same
byte for byte with it as without it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from if4mac.synth.asic import synth_asic, synth_generic
from if4mac.synth.designs import make_design
from if4mac.synth.libraries import resolve_library
from if4mac.synth.profile import strip_stamps
from if4mac.synth.tools import FAST_CLOCK_ENV, fast_clock_library

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="LD_PRELOAD is Linux's")

#: A sleeping thread uses no CPU time; through the shim its CPU clock follows the
#: monotonic clock, so it advances by the sleep.
_SLEEP_S = 0.5
_THREAD_TIME_DURING_SLEEP = ("import time; t = time.thread_time(); time.sleep(%g); "
                             "print(time.thread_time() - t)" % _SLEEP_S)


def _thread_time_during_sleep(env=None) -> float:
    out = subprocess.run([sys.executable, "-c", _THREAD_TIME_DURING_SLEEP], env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    return float(out.stdout)


def test_the_shim_answers_cpu_clocks_from_the_monotonic_clock():
    lib = fast_clock_library()
    assert lib is not None and lib.is_file(), "scripts/setup.sh installs a C compiler"
    assert _thread_time_during_sleep() < _SLEEP_S / 5
    shimmed = _thread_time_during_sleep({**os.environ, "LD_PRELOAD": str(lib)})
    assert shimmed == pytest.approx(_SLEEP_S, abs=_SLEEP_S / 2)


def test_no_shim_when_switched_off_or_without_a_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv(FAST_CLOCK_ENV, "0")
    assert fast_clock_library() is None
    monkeypatch.delenv(FAST_CLOCK_ENV)
    # A fresh cache and no compiler: nothing to preload, and no error.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "if4mac-no-such-compiler")
    assert fast_clock_library() is None
    assert not any(tmp_path.rglob("*.so"))


@pytest.mark.parametrize("arch", ["reference", "fused-exact"])
def test_same_netlist_with_and_without_the_shim(tmp_path, monkeypatch, arch):
    """ABC at a delay target it cannot meet (its hardest-working mode), both ways, from one
    generic RTLIL: the same netlist file, statistics and timing."""
    assert fast_clock_library() is not None
    design = make_design("mac", unit="if4", block_size=2, arch=arch)
    lib = resolve_library("nangate45", None)
    generic = synth_generic(design, tmp_path / "generic", flat=True)["rtlil"]
    kw = dict(clock_ps=1000.0, abc_delay_target=True, flat=True, stages=False,
              generic=generic)
    runs = {}
    for mode in ("1", "0"):
        monkeypatch.setenv(FAST_CLOCK_ENV, mode)
        runs[mode] = synth_asic(design, lib, tmp_path / mode, **kw)
    netlist = f"{design.name}.netlist.v"
    shimmed, plain = ((tmp_path / m / netlist).read_bytes() for m in ("1", "0"))
    assert len(plain) > 10_000 and shimmed == plain
    # ``tee`` copies the log's time stamps into the statistics: compared without them.
    stats = [strip_stamps((tmp_path / m / "yosys_stat.json").read_text()) for m in ("1", "0")]
    assert stats[0] == stats[1]
    assert runs["1"]["area"] == runs["0"]["area"]
    assert runs["1"]["timing"]["critical_path"] == runs["0"]["timing"]["critical_path"]
