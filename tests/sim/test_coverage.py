"""Functional coverage (``if4mac.sim.coverage``): the accumulator-event detector against exact
rational arithmetic, the classes of a hand-made stream, and the coverage-checked regression:
every built-in scenario plus long segments through the native testbench against golden, a
coverage report written (to ``$IF4MAC_COVERAGE_REPORT`` or a temporary folder), failing if
any bin is empty.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from if4mac.golden import Stream, random_stream
from if4mac.sim.coverage import _add_events, bins_for, classify, collect, write_report
from if4mac.sim.native import build_native, run_native
from if4mac.sim.runner import design_verilog
from if4mac.sim.scenarios import SCENARIOS, make_scenario

from .conftest import BUILD_ROOT
from .test_sim_cli import if4mac
from .test_sim_native import concatenated


def regression_stream(unit: str) -> Stream:
    """Every built-in scenario (seed 5) and a dozen segments of 64 to 300 beats, which no
    scenario has (coverage found the gap: their segments stop at 40 beats)."""
    parts = [make_scenario(name, unit, 16, 5, 1.0) for name in SCENARIOS]
    parts.append(random_stream(unit, 12, seed=5, min_len=64, max_len=300, bubble_prob=0.02))
    return concatenated(parts)


# -- the detector -------------------------------------------------------------------------

def _exact_events(a: np.float32, b: np.float32) -> set[str]:
    """The events of one add, from exact rationals (an independent statement of each)."""
    exact = Fraction(float(a)) + Fraction(float(b))
    s = np.float32(a + b)
    events = set()
    if exact == 0 and a != 0:
        events.add("exact cancellation")
    if Fraction(float(s)) != exact:
        toward = np.float32(np.inf) if exact > Fraction(float(s)) else np.float32(-np.inf)
        neighbour = np.nextafter(s, toward)
        if Fraction(float(s)) + Fraction(float(neighbour)) == 2 * exact:
            events.add("RNE tie")
    if a != 0 and b != 0 and (a > 0) == (b > 0):
        if math.frexp(float(s))[1] > max(math.frexp(float(a))[1], math.frexp(float(b))[1]):
            events.add("carry-out")
    return events


def test_add_events_match_exact_arithmetic():
    rng = np.random.default_rng(11)
    n = 4000
    # Operands with 24-bit significands a few binades apart, so that ties, carries and
    # cancellations all occur; normal numbers only (the carry is about normalisation).
    m1 = rng.integers(2**23, 2**24, n)
    m2 = np.where(rng.random(n) < 0.3, m1, rng.integers(1, 2**24, n))
    d = rng.integers(0, 27, n)
    e = rng.integers(-60, 60, n)
    a = (m1 * np.exp2(e.astype(np.float64) - 23)).astype(np.float32)
    b = (m2 * np.exp2((e - d).astype(np.float64) - 23)).astype(np.float32)
    b = np.where(rng.random(n) < 0.5, -b, b).astype(np.float32)
    got = _add_events(a, b)
    counts = dict.fromkeys(got, 0)
    for i in range(n):
        want = _exact_events(a[i], b[i])
        for name, hits in got.items():
            assert bool(hits[i]) == (name in want), (name, a[i], b[i])
            counts[name] += name in want
    assert all(c >= 10 for c in counts.values()), counts


def test_classes_of_a_hand_made_stream():
    z = np.zeros(16, np.uint8)
    one = np.full(16, 0x2, np.uint8)                 # E2M1 1.0 in every lane
    rows = [  # (en, first, reset, a, a_sf, w_sf)
        (1, 0, 0, one, 0x38, 0x38),     # opens the first segment without first=1
        (0, 0, 0, z, 0, 0),             # a bubble inside it
        (1, 0, 0, one, 0x38, 0x38),     # 1.0 + 1.0 in every lane: a carry-out
        (1, 1, 0, one, 0x00, 0x7F),     # closes it (2 beats); zero and clamp scales
        (1, 1, 0, one, 0x01, 0xB8),     # closes a 1-beat segment: back-to-back closes
        (1, 0, 1, one, 0x38, 0x38),     # reset discarding the open segment; opens without first
        (1, 1, 0, z, 0x38, 0x38),       # closes; zero elements
    ]
    en, first, reset, a, a_sf, w_sf = (np.array(c) for c in zip(*rows))
    s = Stream("if4", en.astype(bool), first.astype(bool), np.stack(a), np.stack(a),
               a_sf.astype(np.uint8), w_sf.astype(np.uint8), reset.astype(bool))
    c = classify(s)
    assert [b[:3] for b in c.beats] == [("FP.FP", "normal", "normal"),
                                        ("FP.FP", "normal", "normal"),
                                        ("FP.FP", "zero", "0x7F clamp"),
                                        ("FP.INT", "subnormal", "normal"),
                                        ("FP.FP", "normal", "normal"),
                                        ("FP.FP", "normal", "normal")]
    assert c.control == [frozenset({"segment opened without first"}),
                         frozenset({"bubble", "bubble inside a segment"}),
                         frozenset({"back-to-back closes"}),
                         frozenset({"reset", "reset discarding a segment",
                                    "segment opened without first"})]
    assert [seg[0] for seg in c.segments] == ["2-4", "1", "1"]
    # 16 lanes of 1.0 + 1.0: every lane carries out; the tree adds equal powers of two.
    assert c.beats[1][4] == frozenset({"lane: carry-out"}) and c.beats[0][4] == frozenset()
    assert c.segments[0][1] == frozenset({"tree: carry-out"})
    assert c.beats[-1][3] == frozenset({"zero"}) and c.beats[2][3] == frozenset()


def test_an_unexercised_bin_is_reported_empty():
    s = random_stream("if4", 30, seed=1)      # no bubbles, resets or long segments
    result = collect(s, "if4")
    assert {"control: bubble", "control: reset", "segment.length: >=64"} <= set(result.empty)
    assert "empty: " in result.summary()


# -- the coverage-checked regression --------------------------------------------------------

@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    where = os.environ.get("IF4MAC_COVERAGE_REPORT")
    return Path(where) if where else tmp_path_factory.mktemp("coverage") / "coverage.yml"


def test_coverage_regression(report_path):
    unit = "if4"
    stream = regression_stream(unit)
    built = build_native(design_verilog(unit, 16, "pipelined", BUILD_ROOT), build_root=BUILD_ROOT)
    out = run_native(built, stream, jobs=2)
    assert out.passed, out.report
    result = collect(stream, unit)
    write_report(report_path)
    print(f"{result.summary()}; report {report_path}")
    text = report_path.read_text()
    for point, bins in bins_for(unit).items():
        assert f"if4mac.{unit}.{point}" in text
        for name in bins:
            assert name in text
    assert not result.empty, f"empty coverage bins: {result.empty} (report {report_path})"


def test_cli_writes_a_coverage_report(tmp_path):
    s = make_scenario("reset_mid_segment", "if4", 16, 2, 0.3)
    from if4mac.golden import save_stimulus

    save_stimulus(s, tmp_path / "stim.json")
    report = tmp_path / "out" / "cov.xml"
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(tmp_path / "stim.json"),
                 "--testbench", "native", "--coverage", str(report))
    assert out.returncode == 0, out.stderr
    assert "coverage if4:" in out.stderr and "empty: " in out.stderr
    assert report.read_text().startswith("<")
