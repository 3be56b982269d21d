"""The simulation infrastructure without a simulator: lane packing, drive plans, the golden
model fed beat by beat, the scoreboard's verdicts and reports, the built-in scenarios and the
fast path's plan file and scoring.

The references here are written in the tests: bit arithmetic for the packing, the plan's
rules stated as counts, and hand-made pin traces for the scoreboard.
"""

from __future__ import annotations

import numpy as np
import pytest

from if4mac.golden import Stream, random_stream, run
from if4mac.sim.fast import score, sv_testbench, write_plan
from if4mac.sim.plan import DRAIN_MARGIN, drive_plan, pack_lanes, unpack_lanes
from if4mac.sim.runner import Design
from if4mac.sim.scenarios import (MAX_SCALES, RANDOM_BEATS, SCENARIOS, make_scenario,
                                  scenario_names)
from if4mac.sim.scoreboard import Expected, Scoreboard, SegmentModel, format_bits

LATENCY = 6


# -- packing -------------------------------------------------------------------------------------

def ref_pack(row) -> int:
    return sum(int(code) << (4 * i) for i, code in enumerate(row))


@pytest.mark.parametrize("block_size", [1, 2, 3, 16, 17, 32])
def test_pack_lanes_matches_bit_layout(block_size):
    codes = np.random.default_rng(block_size).integers(0, 16, size=(50, block_size),
                                                        dtype=np.uint8)
    packed = pack_lanes(codes)
    assert packed == [ref_pack(row) for row in codes]
    assert np.array_equal(unpack_lanes(packed, block_size), codes)


def test_pack_lanes_rejects_bad_codes():
    with pytest.raises(ValueError, match="0..15"):
        pack_lanes(np.array([[16]]))
    with pytest.raises(ValueError, match="shape"):
        pack_lanes(np.array([1, 2]))
    with pytest.raises(ValueError, match="wider"):
        unpack_lanes([1 << 8], 1)


# -- drive plans ---------------------------------------------------------------------------------

def test_plan_without_resets_is_the_stream_plus_power_up_and_drain():
    s = random_stream("if4", 20, seed=1, bubble_prob=0.2)
    plan = drive_plan(s, LATENCY)
    n = len(s)
    assert len(plan) == 1 + n + LATENCY + DRAIN_MARGIN
    assert plan.rst_n.tolist() == [False] + [True] * (len(plan) - 1)
    assert plan.cycle_of_row.tolist() == list(range(1, n + 1))
    rows = plan.cycle_of_row
    assert np.array_equal(plan.en[rows], s.en) and np.array_equal(plan.a[rows], s.a)
    assert np.array_equal(plan.first[rows], s.first) and np.array_equal(plan.w_sf[rows], s.w_sf)
    assert not plan.en[n + 1:].any()


def test_plan_resets_without_draining():
    s = random_stream("nvfp4", 10, seed=2)
    reset = np.zeros(len(s), dtype=bool)
    reset[[5, 6, 20]] = True
    s = Stream(s.unit, s.en, s.first, s.a, s.w, s.a_sf, s.w_sf, reset)
    plan = drive_plan(s, LATENCY)
    for r in (5, 6, 20):
        c = int(plan.cycle_of_row[r])
        prev = int(plan.cycle_of_row[r - 1])
        # The reset cycle right after the previous row, then row r: no drain.
        assert c - prev == 2
        assert not plan.rst_n[c - 1] and not plan.en[c - 1]
    assert (~plan.rst_n).sum() == 4          # power-up and three pulses


def test_plan_gaps_keep_clear_of_resets():
    """Random gaps never fall in the latency rows that end at a reset row, so a closing beat
    there is exactly as many cycles before the reset as golden counts rows."""
    s = random_stream("if4", 80, seed=6, max_len=4)
    reset = np.random.default_rng(7).random(len(s)) < 0.1
    reset[:LATENCY] = False
    s = Stream(s.unit, s.en, s.first, s.a, s.w, s.a_sf, s.w_sf, reset)
    plan = drive_plan(s, LATENCY, gap_prob=0.6, seed=3)
    rows = plan.cycle_of_row
    assert (np.diff(rows) > 2).sum() > 20, "the plan must have gaps elsewhere"
    for r in np.flatnonzero(reset):
        # The rows, plus one reset cycle for each reset among them.
        assert rows[r] - rows[r - LATENCY] == LATENCY + reset[r - LATENCY + 1:r + 1].sum()


def test_plan_gaps_are_idle_and_keep_the_rows():
    s = random_stream("if4", 30, seed=3)
    plan = drive_plan(s, LATENCY, gap_prob=0.5, seed=9)
    assert len(plan) > len(s) + 10
    inserted = plan.row < 0
    assert not plan.en[inserted].any()
    assert np.array_equal(plan.row[plan.cycle_of_row], np.arange(len(s)))
    # Garbage, not zeros, on idle cycles: the hardware must ignore them.
    assert plan.a[inserted].any() and plan.first[inserted].any()


@pytest.mark.parametrize("bad", [dict(latency=0), dict(latency=True), dict(gap_prob=1.0)])
def test_plan_rejects_bad_arguments(bad):
    s = random_stream("if4", 2, seed=1)
    kw = {"latency": LATENCY, **bad}
    latency = kw.pop("latency")
    with pytest.raises(ValueError):
        drive_plan(s, latency, **kw)


# -- the model fed by the input monitor ----------------------------------------------------------

def feed(model: SegmentModel, stream: Stream, plan):
    """Play the plan's cycles into the model as the input monitor would."""
    a_in, w_in = pack_lanes(plan.a), pack_lanes(plan.w)
    for c in range(len(plan)):
        if not plan.rst_n[c]:
            model.reset(c)
        elif plan.en[c]:
            model.beat(c, bool(plan.first[c]), a_in[c], w_in[c], int(plan.a_sf[c]),
                       int(plan.w_sf[c]))
    model.flush()


def with_resets(stream: Stream, seed: int) -> Stream:
    reset = np.random.default_rng(seed).random(len(stream)) < 0.05
    first = stream.first.copy()
    first[np.flatnonzero(reset)[::2]] = False      # some segments open without first=1
    return Stream(stream.unit, stream.en, first, stream.a, stream.w, stream.a_sf, stream.w_sf,
                  reset)


@pytest.mark.parametrize("batch", [1, 5, 32])
@pytest.mark.parametrize("reduction", ["pipelined", "shared"])
@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_model_predicts_what_golden_computes_for_the_whole_stream(unit, reduction, batch):
    s = with_resets(random_stream(unit, 150, seed=4, max_len=6, bubble_prob=0.2), seed=5)
    plan = drive_plan(s, LATENCY)           # no gaps: cycles and rows keep their spacing
    got: list[Expected] = []
    model = SegmentModel(unit, 16, got.append, row_of_cycle=lambda c: int(plan.row[c]),
                         reduction=reduction, batch=batch)
    feed(model, s, plan)
    want = run(s, reduction=reduction)
    assert [e.bits for e in got] == want.bits.tolist()
    assert [e.start_row for e in got] == want.start_beat.tolist()
    assert [e.close_row for e in got] == want.close_beat.tolist()
    assert [e.index for e in got] == list(range(len(want)))
    if reduction == "shared":
        assert len(want.overrun_beat) > 0, "the stream must exercise the shared tree's refusals"
        assert [int(plan.row[c]) for c in model.refused] == want.overrun_beat.tolist()


# -- the scoreboard ------------------------------------------------------------------------------

def expected(index, bits, close_cycle):
    return Expected(index, bits, close_cycle - 3, close_cycle, 10 + index, 13 + index, 3)


def test_scoreboard_passes_matching_results_in_order():
    sb = Scoreboard(LATENCY)
    sb.expect(expected(0, 0x41800000, 10))
    sb.observe(0x41800000, 16)
    sb.observe(0x80000000, 17)              # a result may arrive before its prediction
    sb.expect(expected(1, 0x80000000, 11))
    sb.finish()
    assert sb.passed and sb.report() == "" and sb.checked == 2
    sb.check()


def test_scoreboard_reports_the_first_value_mismatch_with_context():
    sb = Scoreboard(LATENCY)
    sb.expect(expected(0, 0x41800000, 10))
    sb.expect(expected(1, 0x3f800000, 11))
    sb.observe(0x41800000, 16)
    sb.observe(0x3f800001, 17)
    sb.finish()
    report = sb.report()
    assert not sb.passed
    assert "segment 1 (stimulus beats 11..13, closed by beat 14, 3 enabled beats)" in report
    assert "expected 0x3f800000 (1.0), got 0x3f800001 (1.0000001192092896)" in report
    with pytest.raises(AssertionError, match="segment 1"):
        sb.check()


def test_scoreboard_checks_latency_missing_and_unexpected_results():
    sb = Scoreboard(LATENCY)
    sb.expect(expected(0, 1, 10))
    sb.observe(1, 17)                      # one cycle late
    sb.finish()
    assert [m.kind for m in sb.mismatches] == ["latency"]
    assert "came 7 cycles after the closing beat" in sb.report()

    sb = Scoreboard(LATENCY)
    sb.expect(expected(0, 1, 10))
    sb.finish()
    assert [m.kind for m in sb.mismatches] == ["missing"]

    sb = Scoreboard(LATENCY)
    sb.observe(5, 30)
    sb.finish()
    assert [m.kind for m in sb.mismatches] == ["unexpected"]
    assert "unexpected result 0x00000005" in sb.report()


def test_format_bits_shows_hex_and_float():
    assert format_bits(0xC0C00000) == "0xc0c00000 (-6.0)"
    assert format_bits(0x80000000) == "0x80000000 (-0.0)"


# -- scenarios -----------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_scenarios_cover_what_the_issue_lists(unit):
    names = scenario_names(16)
    assert set(names) == set(SCENARIOS)
    streams = {n: make_scenario(n, unit) for n in names}
    big = streams["random"]
    assert big.en.sum() >= RANDOM_BEATS and not big.en.all()
    lengths = np.diff(run(big).start_beat)
    assert lengths.min() >= 1
    assert (streams["all_int4"].a_sf[streams["all_int4"].en] >= 0x80).all()
    assert (streams["all_fp4"].a_sf[streams["all_fp4"].en] < 0x80).all()
    flags = {(a >= 0x80, w >= 0x80) for a, w in zip(streams["mixed_blocks"].a_sf,
                                                    streams["mixed_blocks"].w_sf)}
    assert len(flags) == 4
    assert set(streams["max_scales"].a_sf.tolist()) == set(MAX_SCALES.tolist())
    zero = streams["zero_scales"]
    assert ((zero.a_sf & 0x7F) == 0).any() and ((zero.w_sf & 0x7F) == 0).any()
    results = run(streams["signed_zeros"]).bits
    assert (results == 0x80000000).any() and (results == 0).any()
    assert streams["reset_mid_segment"].reset.sum() >= 3
    assert not streams["reset_mid_segment"].first[0]
    assert (streams["invalid_codes"].a == 0x8).any()
    for name in names:
        if name.startswith("quantized"):
            s = streams[name]
            assert len(run(s, strict=True)) == 30      # valid codes only, 6 x 5 outputs
    if unit == "if4":
        q = streams["quantized_student_t"]
        assert (q.a_sf >= 0x80).any(), "IF4 quantization should pick some INT4 blocks"


def test_scenarios_at_other_block_sizes_and_scales():
    assert "quantized_gaussian" not in scenario_names(8)
    with pytest.raises(ValueError, match="needs block size 16"):
        make_scenario("quantized_gaussian", "if4", block_size=8)
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario("nope", "if4")
    small = make_scenario("random", "if4", 5, scale=0.1)
    assert small.block_size == 5 and 1000 <= small.en.sum() < 2000


# -- the fast path's plan file and scoring -------------------------------------------------------

def test_plan_words_hold_the_fields_in_order(tmp_path):
    s = random_stream("if4", 3, seed=6, block_size=3)
    plan = drive_plan(s, LATENCY)
    write_plan(plan, tmp_path / "p.hex")
    words = [int(line, 16) for line in (tmp_path / "p.hex").read_text().split()]
    assert len(words) == len(plan)
    for c, word in enumerate(words):
        w_in = word & 0xFFF
        a_in = (word >> 12) & 0xFFF
        w_sf = (word >> 24) & 0xFF
        a_sf = (word >> 32) & 0xFF
        first, en, rst_n = (word >> 40) & 1, (word >> 41) & 1, (word >> 42) & 1
        assert (rst_n, en, first) == (plan.rst_n[c], plan.en[c], plan.first[c])
        assert (a_sf, w_sf) == (plan.a_sf[c], plan.w_sf[c])
        assert (a_in, w_in) == (ref_pack(plan.a[c]), ref_pack(plan.w[c]))


def test_testbench_text_names_the_design():
    d = Design("if4", 3, "shared", "if4_mac_b3_shared", 4, "")
    text = sv_testbench(d, with_overrun=True)
    assert "if4_mac_b3_shared dut" in text and ".overrun(overrun)" in text
    assert "localparam B = 3;" in text


def fake_output(stream, plan, *, corrupt=None, shift=0):
    want = run(stream)
    lines = []
    for i, (bits, close) in enumerate(zip(want.bits, want.close_beat)):
        bits = int(bits) ^ (1 if i == corrupt else 0)
        lines.append(f"{int(plan.cycle_of_row[close]) + LATENCY + shift} {bits:08x}")
    return "\n".join(lines + [f"end {len(plan)} 0"])


def test_score_accepts_the_right_output_and_names_a_wrong_one():
    s = random_stream("nvfp4", 12, seed=7, bubble_prob=0.1)
    plan = drive_plan(s, LATENCY)
    sb, overrun = score(s, plan, "pipelined", fake_output(s, plan))
    assert sb.passed and not overrun and len(sb.results) == 12
    sb, _ = score(s, plan, "pipelined", fake_output(s, plan, corrupt=4))
    want = run(s)
    assert not sb.passed
    where = f"segment 4 (stimulus beats {want.start_beat[4]}..{want.close_beat[4] - 1}"
    assert where in sb.report()
    sb, _ = score(s, plan, "pipelined", fake_output(s, plan, shift=1))
    assert {m.kind for m in sb.mismatches} == {"latency"}
    sb, _ = score(s, plan, "pipelined", "")
    assert {m.kind for m in sb.mismatches} == {"stream", "missing"}


# -- where the test sessions cache builds -------------------------------------------------------

def test_builds_are_cached_outside_the_repository():
    """Issue 17, item 8: the suite must not write build caches into the working tree."""
    from .conftest import BUILD_ROOT, REPO

    assert not BUILD_ROOT.resolve().is_relative_to(REPO.resolve()), BUILD_ROOT


def test_build_key_names_the_cocotb_installation(monkeypatch, tmp_path):
    """A Verilator build links to cocotb's VPI library by a run path into the environment it
    was made from: a build made from another environment (a removed virtual environment,
    another clone's) is keyed apart, so it is never reused where that path is gone."""
    import cocotb

    from if4mac.sim import runner

    design = runner.Design(unit=None, block_size=None, reduction=None, toplevel="top",
                           latency=None, verilog="module top; endmodule\n")
    here = runner._build_key(design, "verilator", "5.0", False)
    assert here == runner._build_key(design, "verilator", "5.0", False)
    monkeypatch.setattr(cocotb, "__file__", str(tmp_path / "elsewhere" / "cocotb" / "__init__.py"))
    assert runner._build_key(design, "verilator", "5.0", False) != here


@pytest.mark.parametrize("reduction", ["pipelined", "shared"])
@pytest.mark.parametrize("block_size", [2, 16])
def test_model_discards_results_in_flight_at_reset(block_size, reduction):
    """The input-monitor model, fed the plan cycle by cycle, predicts exactly the results that
    survive a reset 1 .. latency + 2 cycles after their closing beat (hand-derived)."""
    from tests.reset_streams import LATENCY, expected, reset_ladder

    latency = LATENCY[block_size]
    s, cases = reset_ladder("if4", block_size, range(1, latency + 3))
    plan = drive_plan(s, latency, gap_prob=0.5, seed=4)
    got: list[Expected] = []
    model = SegmentModel("if4", block_size, got.append, reduction=reduction, batch=3)
    feed(model, s, plan)
    assert [e.bits for e in got] == expected(cases)
    assert [e.index for e in got] == list(range(len(got)))
    lost = [c["close"] for c in cases if not c["survives"]]
    assert [int(plan.row[c]) for c in model.discarded] == lost
    assert not model.refused and not model.overrun


def test_a_monitor_without_sample_cannot_be_built():
    """PinMonitor is abstract: a subclass that forgets ``sample`` fails when it is built,
    not silently at the first clock edge of a simulation."""
    from if4mac.sim.beats import PinMonitor, ResultMonitor

    class Forgetful(PinMonitor):
        pass

    with pytest.raises(TypeError, match="sample"):
        Forgetful(None, None, ("done",), "rising")
    assert not getattr(ResultMonitor, "__abstractmethods__", None)
