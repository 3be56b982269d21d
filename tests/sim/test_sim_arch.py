"""Every simulation path for every architecture (issue 13, "Simulation"; issue 17 item 1 for
the fused tops): the cocotb testbench's scenarios, the plain Verilog testbench and the native
harness on Icarus and Verilator, scored against golden.run(arch=...), with fused-exact's
``overflow`` and the serial converter's ``overrun`` compared edge for edge, and a reset
1..latency + 2 cycles after a close.

Block size 2 and short streams throughout: a fused top at B = 2 builds in seconds with Icarus
and in well under a minute with Verilator.
"""

from __future__ import annotations

import numpy as np
import pytest

from if4mac.golden import MacConfig, run
from if4mac.golden.fused import exact_beat_bound
from if4mac.sim.arch import SimArch
from if4mac.sim.fast import build_fast, run_fast, score
from if4mac.sim.plan import drive_plan
from if4mac.sim.runner import build, design_verilog, run_job
from tests.hdl.test_mac import edge_stream
from tests.reset_streams import expected, ladder_latency, reset_ladder

from .conftest import BUILD_ROOT

#: A small fused-exact accumulator (a few beats at B = 2) so that overflow happens.
SMALL = {u: exact_beat_bound(u, 2).bit_length() + 3 for u in ("nvfp4", "if4")}

#: One configuration per architecture and option, by id.
CONFIGS = {
    "fp32-nvfp4": MacConfig("nvfp4", 2, arch="fused-fp32"),
    "fp32-if4": MacConfig("if4", 2, arch="fused-fp32"),
    "exact-nvfp4": MacConfig("nvfp4", 2, arch="fused-exact", acc_width=SMALL["nvfp4"]),
    "exact-if4": MacConfig("if4", 2, arch="fused-exact", acc_width=SMALL["if4"]),
    "exact-if4-serial": MacConfig("if4", 2, arch="fused-exact", acc_width=SMALL["if4"],
                                  converter="serial"),
}
IDS = list(CONFIGS)


def _builds():
    cache = {}

    def get(config, kind, simulator):
        key = (config, kind, simulator)
        if key not in cache:
            design = design_verilog(config, build_root=BUILD_ROOT)
            if kind == "sv":
                cache[key] = build_fast(design, simulator, build_root=BUILD_ROOT)
            elif kind == "native":
                from if4mac.sim.native import build_native

                cache[key] = build_native(design, build_root=BUILD_ROOT)
            else:
                cache[key] = build(design, simulator, build_root=BUILD_ROOT)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def built():
    return _builds()


def stream_for(config: MacConfig, seed: int):
    """Random segments (1..12 beats: some longer than the small accumulator takes), bubbles,
    resets; for the serial converter closes both closer and farther than 9 cycles."""
    max_len = 14 if config.converter == "serial" else 12
    return edge_stream(config.unit, 2, seed=seed, segments=40, max_len=max_len,
                       reset_prob=0.04)


def check_stream_covers(config: MacConfig, stream):
    """The stream exercises what the config can do wrong (so the flag checks are not empty)."""
    results = run(stream, arch=config.arch, **config.options)
    assert len(results) >= 10
    if config.arch == "fused-exact":
        assert len(results.overflow_beat) >= 1
    if config.converter == "serial":
        assert len(results.overrun_beat) >= 1
    return results


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_sv_random_stream(built, name, simulator):
    """The plain Verilog testbench on a random stream with bubbles and resets: every result,
    its cycle and every change of the sticky flags as golden says."""
    config = CONFIGS[name]
    stream = stream_for(config, seed=11 + IDS.index(name))
    want = check_stream_covers(config, stream)
    out = run_fast(built(config, "sv", simulator), stream)
    assert out.passed, out.report
    assert out.results == want.hex()
    assert out.lost_results == len(want.overrun_beat)


@pytest.mark.parametrize("name", IDS)
def test_cocotb_random_stream(built, name):
    """The cocotb testbench (Icarus): monitors, model and scoreboard per architecture."""
    config = CONFIGS[name]
    stream = stream_for(config, seed=31 + IDS.index(name))
    want = check_stream_covers(config, stream)
    out = run_job(built(config, "cocotb", "icarus"), stimulus=stream)["run_stimulus"]
    assert out.passed, out.report or out.message
    assert out.results == want.hex()
    assert out.lost_results == len(want.overrun_beat)


#: Icarus runs every configuration; Verilator builds cost about a minute each, so it runs
#: one per fused architecture.
COCOTB_CASES = ([(name, "icarus") for name in IDS]
                + [(name, "verilator") for name in ("fp32-if4", "exact-if4-serial")])
#: The native harness (Verilator): one build per architecture and option.
NATIVE_CASES = ("exact-if4", "exact-if4-serial", "fp32-nvfp4")


@pytest.mark.parametrize("name, simulator", COCOTB_CASES)
def test_cocotb_scenarios(built, name, simulator):
    """Every built-in scenario, small, with random gaps (none for the serial converter, whose
    refusals depend on the exact spacing): all pass, scoreboard empty at the end."""
    config = CONFIGS[name]
    outcomes = run_job(built(config, "cocotb", simulator), scenarios=("all",), scale=0.02,
                       seed=3, gap_prob=0.2)
    assert len(outcomes) >= 10
    failed = {k: v.report or v.message for k, v in outcomes.items() if not v.passed}
    assert not failed


@pytest.mark.parametrize("name", NATIVE_CASES)
def test_native_random_stream(built, name):
    """The native harness (Verilator): results and the sticky flags at the end."""
    config = CONFIGS[name]
    from if4mac.sim.native import run_native

    stream = stream_for(config, seed=51 + IDS.index(name))
    want = check_stream_covers(config, stream)
    out = run_native(built(config, "native", "verilator"), stream)
    assert out.passed, out.report
    assert out.results == want.hex()


@pytest.mark.parametrize("name", ["exact-if4"])
def test_native_pieces(built, name):
    """Played in pieces (jobs=3): every result once, each piece's overflow as golden's."""
    from if4mac.sim.native import run_native

    config = CONFIGS[name]
    stream = stream_for(config, seed=71)
    want = check_stream_covers(config, stream)
    out = run_native(built(config, "native", "verilator"), stream, jobs=3)
    assert out.pieces > 1
    assert out.passed, out.report
    assert out.results == want.hex()


# -- reset with a result in flight ------------------------------------------------------------

def ladder(config: MacConfig):
    latency = ladder_latency(config.unit, 2, config.arch, config.converter)
    assert SimArch(config).latency == latency
    return reset_ladder(config.unit, 2, range(1, latency + 3), latency)


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("kind", ["cocotb", "sv"])
def test_reset_in_flight(built, name, kind):
    """rst_n 1..latency + 2 cycles after a closing beat, nothing drained: the results a
    reset catches in flight do not come out (hand-worked, tests/reset_streams.py), and the
    testbench's scoreboard agrees cycle for cycle."""
    config = CONFIGS[name]
    stream, cases = ladder(config)
    if kind == "cocotb":
        out = run_job(built(config, "cocotb", "icarus"), stimulus=stream)["run_stimulus"]
        assert out.passed, out.report or out.message
    else:
        out = run_fast(built(config, "sv", "icarus"), stream)
        assert out.passed, out.report
    assert out.results == [f"0x{b:08x}" for b in expected(cases)]


# -- the flag checks can fail -----------------------------------------------------------------

def test_flag_checks_catch_a_wrong_overflow_and_overrun():
    """The scorer of the plain Verilog testbench's output, fed golden's own port trace, passes;
    with an overflow change moved by one cycle, or an overrun that never rose, it fails."""
    config = CONFIGS["exact-if4-serial"]
    stream = stream_for(config, seed=11 + IDS.index("exact-if4-serial"))
    want = check_stream_covers(config, stream)
    arch = SimArch(config)
    plan = drive_plan(stream, arch.latency)
    from if4mac.sim.arch import flag_changes

    lines = [f"{int(plan.cycle_of_row[c]) + arch.latency} {b:08x}"
             for c, b in zip(want.close_beat, want.bits)]
    flags = {f: flag_changes(plan, arch.flag_rows(want, f), arch.flag_edge(f))
             for f in arch.flags}
    last_reset = int(np.flatnonzero(stream.reset)[-1])
    ends = [int(any(r >= last_reset for r in arch.flag_rows(want, f))) for f in arch.flags]

    def output(overflow, overrun):
        text = lines + [f"v {c} {v}" for c, v in overflow] + [f"o {c} {v}" for c, v in overrun]
        return "\n".join(text + [f"end {len(plan)} {ends[0]} {ends[1]}"])

    sb, _ = score(stream, plan, config, output(flags["overflow"], flags["overrun"]))
    assert sb.passed, sb.report()
    moved = [(c + 1, v) if i == 0 else (c, v) for i, (c, v) in enumerate(flags["overflow"])]
    sb, _ = score(stream, plan, config, output(moved, flags["overrun"]))
    assert not sb.passed and "overflow change 0" in sb.report()
    sb, _ = score(stream, plan, config, output(flags["overflow"], []))
    assert not sb.passed and "overrun change 0" in sb.report()


def test_a_fused_result_in_flight_let_through_is_caught():
    """A result that a reset should have discarded, reported by the testbench anyway, is an
    unexpected result for the scoreboard (fused-fp32, latency 3, reset 2 cycles after)."""
    config = CONFIGS["fp32-if4"]
    stream, cases = ladder(config)
    arch = SimArch(config)
    plan = drive_plan(stream, arch.latency)
    every = [f"{int(plan.cycle_of_row[c['close']]) + arch.latency} {c['bits']:08x}"
             for c in cases]                        # the discarded ones included
    sb, _ = score(stream, plan, config, "\n".join(every + [f"end {len(plan)} 0 0"]))
    assert not sb.passed and "unexpected" in sb.report()


def test_serial_stream_has_no_gaps_added():
    """The serial converter's refusals depend on the exact spacing: the cocotb bench plays
    such a design without random gaps, as the shared tree."""
    assert SimArch(CONFIGS["exact-if4-serial"]).keeps_rows
    assert not SimArch(CONFIGS["exact-if4"]).keeps_rows
    assert SimArch(MacConfig("if4", 2, "shared")).keeps_rows


def test_design_config_round_trip():
    for config in CONFIGS.values():
        design = design_verilog(config, build_root=BUILD_ROOT)
        assert SimArch.of(design).config == config
        assert design.latency == SimArch(config).latency


@pytest.mark.parametrize("name", IDS)
def test_model_per_arch_matches_golden_and_the_hand_ladder(name):
    """The cocotb bench's input-monitor model for a fused config, fed the plan cycle by cycle
    (no simulator): on the reset ladder exactly the hand-derived survivors; on a random
    stream with gaps exactly golden.run(arch=...) of the stream, refusals included."""
    from if4mac.sim.scoreboard import SegmentModel
    from tests.sim.test_sim_infra import feed

    config = CONFIGS[name]
    stream, cases = ladder(config)
    plan = drive_plan(stream, SimArch(config).latency, gap_prob=0.5, seed=4)
    got = []
    model = SegmentModel(config.unit, 2, got.append, config=config, batch=3)
    feed(model, stream, plan)
    assert [e.bits for e in got] == expected(cases)
    assert [int(plan.row[c]) for c in model.discarded] == \
        [c["close"] for c in cases if not c["survives"]]
    stream = stream_for(config, seed=91)
    want = check_stream_covers(config, stream)
    plan = drive_plan(stream, SimArch(config).latency)      # no gaps: refusals as golden's
    got = []
    model = SegmentModel(config.unit, 2, got.append, config=config, batch=4)
    feed(model, stream, plan)
    assert [e.bits for e in got] == want.bits.tolist()
    assert [int(plan.row[c]) for c in model.refused] == want.overrun_beat.tolist()
