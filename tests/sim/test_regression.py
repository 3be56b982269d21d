"""The cocotb regressions: every built-in scenario on both units and both simulators, and
other block sizes and the shared reduction tree on Icarus.

One simulator run per (unit, simulator, configuration) plays all its scenarios (cached by the
``regression`` fixture); each test below reads one scenario's verdict. A scenario passes when
the scoreboard matched every RTL result with golden bit for bit, at exactly the design's
latency, with nothing missing or extra, and the results equal ``golden.run`` of the whole
stimulus.
"""

from __future__ import annotations

import pytest

from if4mac.golden import UNITS, run
from if4mac.sim.scenarios import RANDOM_BEATS, make_scenario, scenario_names

from .conftest import ICARUS_SCALE

SIMULATORS = ["verilator", "icarus"]


def check(outcomes, scenario):
    name = f"run_scenario-{scenario}"
    assert name in outcomes, f"{name} did not run; ran {sorted(outcomes)}"
    out = outcomes[name]
    assert out.passed, out.report or out.message
    return out


@pytest.mark.parametrize("scenario", scenario_names(16))
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("unit", UNITS)
def test_scenario(regression, unit, simulator, scenario):
    out = check(regression(unit, simulator), scenario)
    # The verdict is about the stream the scenario defines: same size, same results.
    scale = ICARUS_SCALE if simulator == "icarus" else 1.0
    stream = make_scenario(scenario, unit, 16, 1, scale)
    assert out.beats == int(stream.en.sum())
    assert out.results == run(stream).hex()


@pytest.mark.parametrize("unit", UNITS)
def test_random_regression_is_long_enough_on_verilator(regression, unit):
    out = check(regression(unit, "verilator"), "random")
    assert out.beats >= RANDOM_BEATS


OTHER_SIZES = ["random", "reset_mid_segment", "single_beat_segments", "signed_zeros",
               "max_scales"]


# IF4's datapath contains NVFP4's (NVFP4 only never sets the INT flags): the NVFP4 variants of
# the extra configurations add a minute of Icarus time for little, so they are marked slow.
BOTH_UNITS = ["if4", pytest.param("nvfp4", marks=pytest.mark.slow)]


@pytest.mark.parametrize("block_size", [1, 3, 8])
@pytest.mark.parametrize("unit", BOTH_UNITS)
def test_other_block_sizes_on_icarus(regression, unit, block_size):
    outcomes = regression(unit, "icarus", OTHER_SIZES, block_size=block_size, scale=0.1)
    for scenario in OTHER_SIZES:
        check(outcomes, scenario)


SHARED = ["random", "reset_mid_segment", "single_beat_segments", "mixed_blocks"]


@pytest.mark.parametrize("block_size", [16, 5])
@pytest.mark.parametrize("unit", BOTH_UNITS)
def test_shared_reduction_on_icarus(regression, unit, block_size):
    outcomes = regression(unit, "icarus", SHARED, block_size=block_size,
                          reduction="shared", scale=0.1)
    for scenario in SHARED:
        out = check(outcomes, scenario)
        stream = make_scenario(scenario, unit, block_size, 1, 0.1)
        assert out.results == run(stream, reduction="shared").hex()
        # The Python API reports every refused result (issue 15).
        assert out.lost_results == len(run(stream, reduction="shared").overrun_beat)
    # Back-to-back one-beat segments must overflow the shared tree, and the RTL agreed.
    assert outcomes["run_scenario-single_beat_segments"].detail["overrun"]
