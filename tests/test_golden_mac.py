"""The golden MAC arithmetic against the independent scalar model and hand-derived vectors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from if4mac.golden import (
    E2M1_VALUES, E4M3_VALUES, INT4_VALUES, INT_EXPANSION, INT_EXPANSION_SQUARED, StimulusError,
    Stream, float32_bits, lane_product_table, random_stream, run, scale_product_table,
    scaled_products, stimulus_to_json, tree_reduce, closed_segments,
)
from tests import scalar_model as ref

UNITS = ("nvfp4", "if4")


def one_beat_stream(unit, a, w, a_sf, w_sf, beats=1):
    """``beats`` identical beats forming one segment, closed by a trailing first=1 beat."""
    n = beats + 1
    a = np.tile(np.asarray(a, dtype=np.uint8), (n, 1))
    w = np.tile(np.asarray(w, dtype=np.uint8), (n, 1))
    first = np.zeros(n, dtype=bool)
    first[0] = first[-1] = True
    return Stream(unit, np.ones(n, bool), first, a, w, np.full(n, a_sf, np.uint8),
                  np.full(n, w_sf, np.uint8))


# --- formats -------------------------------------------------------------------------------

def test_element_tables_match_bit_rules():
    for code in range(16):
        value, negzero = ref.e2m1(code)
        assert E2M1_VALUES[code] == value
        assert np.signbit(E2M1_VALUES[code]) == (value < 0 or negzero)
        assert INT4_VALUES[code] == ref.int4(code)[0]
    assert np.signbit(E2M1_VALUES[0x8]) and not np.signbit(E2M1_VALUES[0])


def test_e4m3_table():
    assert all(E4M3_VALUES[b] == ref.e4m3(b) for b in range(128))
    # Hand-derived: 0x38 = exp 7 man 0 = 1.0; 0x01 = 2^-9; 0x7E = 1.75 * 2^8 = 448; 0x7F too.
    assert E4M3_VALUES[0x38] == 1.0
    assert E4M3_VALUES[0x01] == 2.0 ** -9
    assert E4M3_VALUES[0x7E] == 448.0 and E4M3_VALUES[0x7F] == 448.0
    assert E4M3_VALUES[0x08] == 2.0 ** -6 and E4M3_VALUES[0x07] == 7 / 8 * 2.0 ** -6


def test_int_expansion_constants_are_correctly_rounded():
    assert Fraction(float(INT_EXPANSION)) == ref.round_binary32(Fraction(6, 7))
    assert Fraction(float(INT_EXPANSION_SQUARED)) == ref.round_binary32(Fraction(36, 49))


# --- exhaustive single-beat checks -----------------------------------------------------------

@pytest.mark.parametrize("unit", UNITS)
def test_lane_products_exhaustive(unit):
    table = lane_product_table(unit)
    for a_int in (0, 1):
        for w_int in (0, 1):
            for a in range(16):
                for w in range(16):
                    value, negzero = ref.lane_product(unit, a, w, a_int << 7, w_int << 7)
                    got = table[a_int, w_int, a, w]
                    assert got == value and np.signbit(got) == (value < 0 or negzero), \
                        (unit, a_int, w_int, a, w)


@pytest.mark.parametrize("unit", UNITS)
def test_scale_products_exhaustive(unit):
    """All 256 x 256 scale bytes (both INT flags, the 448 rule, subnormals, zero)."""
    table = float32_bits(scale_product_table(unit))
    expected = np.array([[ref.to_bits(ref.scale_product(unit, a, w)) for w in range(256)]
                         for a in range(256)], dtype=np.uint32)
    mismatches = np.argwhere(table != expected)
    assert len(mismatches) == 0, f"first mismatch at (a_sf, w_sf) = {tuple(mismatches[0])}"


@pytest.mark.parametrize("unit", UNITS)
def test_scaled_products_sample(unit):
    """m = rne32(p * sf) on a random sample of the 16.7M (a, w, a_sf, w_sf) combinations."""
    rng = np.random.default_rng(7)
    n = 20000
    a, w = rng.integers(0, 16, n), rng.integers(0, 16, n)
    a_sf, w_sf = rng.integers(0, 256, n), rng.integers(0, 256, n)
    got = float32_bits(scaled_products(unit, a[:, None], w[:, None], a_sf, w_sf)[:, 0])
    for i, (ai, wi, asf, wsf) in enumerate(zip(a.tolist(), w.tolist(), a_sf.tolist(),
                                               w_sf.tolist())):
        sf = ref.scale_product(unit, asf, wsf)
        want = ref.to_bits(ref.mul(ref.lane_product(unit, ai, wi, asf, wsf), sf))
        assert got[i] == want, (ai, wi, asf, wsf)


# --- hand-derived vectors --------------------------------------------------------------------

ONE = 0x38          # E4M3 1.0
INT_FLAG = 0x80


@pytest.mark.parametrize("unit", UNITS)
def test_hand_all_ones(unit):
    # 16 lanes of 1.0 * 1.0 (E2M1 code 2) at scales 1.0: one beat sums to 16.0 = 0x41800000.
    res = run(one_beat_stream(unit, [2] * 16, [2] * 16, ONE, ONE))
    assert res.hex() == ["0x41800000"]


def test_hand_if4_int_times_int():
    # INT4 1 * 1 at scales 1.0 with both blocks INT: each lane is f32(36/49). In [0.5, 1) the
    # ulp is 2^-24: 36/49 * 2^24 = 12326117.878 rounds up to 12326118 = 0xbc14e6, so
    # f32(36/49) = 0x3f3c14e6. The tree sum of 16 equal values is exact: 0x413c14e6.
    res = run(one_beat_stream("if4", [1] * 16, [1] * 16, ONE | INT_FLAG, ONE | INT_FLAG))
    assert res.hex() == ["0x413c14e6"]
    # NVFP4 ignores bit 7: code 1 is E2M1 0.5, 0.5 * 0.5 * 16 = 4.0.
    res = run(one_beat_stream("nvfp4", [1] * 16, [1] * 16, ONE | INT_FLAG, ONE | INT_FLAG))
    assert res.hex() == ["0x40800000"]


def test_hand_if4_mixed_blocks():
    # a INT4 7 (0x7), w E2M1 6 (0x7), scales 1.0, a INT: p = 42, sf = f32(6/7) = 0x3f5b6db7.
    # m = rne32(42 * 0.857142865657806396484375) = rne32(36.0000003576...) = 36.0 exactly?
    # 36 has ulp 2^-18 = 3.8e-6 and the excess 3.6e-7 is below half an ulp: m = 36.0.
    a = [7] + [0] * 15
    res = run(one_beat_stream("if4", a, [7] * 16, ONE | INT_FLAG, ONE))
    assert res.hex() == ["0x42100000"]


def test_hand_accumulation_rounds_each_step():
    # Lane 0: beat 0 gives 4.0 * 4.0 (code 0x6) at scales 256 (0x78) * 16 (0x58) = 2^16.
    # Beats 1 and 2 give 0.5 * 0.5 (code 0x1) at scales 1.0 * 2^-6 (0x08) = 2^-8 each, exactly
    # half an ulp of 2^16 (ulp 2^-7): each add ties to even and stays 2^16 = 0x47800000.
    # Summing exactly and rounding once would give 2^16 + 2^-7 = 0x47800001 instead.
    a = np.zeros((4, 16), np.uint8)
    w = np.zeros((4, 16), np.uint8)
    a[0, 0] = w[0, 0] = 0x6
    a[1:3, 0] = w[1:3, 0] = 0x1
    a_sf = np.array([0x78, 0x38, 0x38, 0], np.uint8)
    w_sf = np.array([0x58, 0x08, 0x08, 0], np.uint8)
    first = np.array([1, 0, 0, 1], bool)
    res = run(Stream("nvfp4", np.ones(4, bool), first, a, w, a_sf, w_sf))
    assert res.hex() == ["0x47800000"]


# --- signed zeros ----------------------------------------------------------------------------

def test_signed_zero_paths():
    # FP4 -0 (0x8) times +0.5 gives -0 in every lane; tree of -0s is -0.
    assert run(one_beat_stream("nvfp4", [0x8] * 16, [1] * 16, ONE, ONE)).hex() == ["0x80000000"]
    # A segment opened by first=1 keeps -0; a second beat of -0 keeps it (-0 + -0 = -0).
    assert run(one_beat_stream("nvfp4", [0x8] * 16, [1] * 16, ONE, ONE, beats=2)).hex() \
        == ["0x80000000"]
    # -0 in one lane, +0 in the rest: -0 + +0 = +0.
    a = [0x8] + [0] * 15
    assert run(one_beat_stream("nvfp4", a, [1] * 16, ONE, ONE)).hex() == ["0x00000000"]
    # Zero scale: sf = +0, so m = p * +0 takes p's sign: negative p gives -0.
    assert run(one_beat_stream("nvfp4", [0xA] * 16, [2] * 16, 0x00, ONE)).hex() == ["0x80000000"]
    # IF4 INT4 zero is +0: FP -0 times INT 0 is (-0)(+0) = -0; FP -0 times INT -1 is +0.
    assert run(one_beat_stream("if4", [0x8] * 16, [0] * 16, ONE, ONE | INT_FLAG)).hex() \
        == ["0x80000000"]
    assert run(one_beat_stream("if4", [0x8] * 16, [0xF] * 16, ONE, ONE | INT_FLAG)).hex() \
        == ["0x00000000"]


def test_segment_opened_without_first_adds_to_positive_zero():
    # A stream starting with first=0: the lanes hold +0 from reset, so -0 products become +0.
    s = one_beat_stream("nvfp4", [0x8] * 16, [1] * 16, ONE, ONE)
    first = s.first.copy()
    first[0] = False
    s2 = Stream("nvfp4", s.en, first, s.a, s.w, s.a_sf, s.w_sf)
    assert run(s2).hex() == ["0x00000000"]


# --- segments, bubbles, reset ----------------------------------------------------------------

def test_trailing_segment_produces_no_result():
    s = random_stream("if4", 3, seed=1, close=False)
    assert len(run(s)) == 2
    assert len(run(random_stream("if4", 3, seed=1, close=True))) == 3


def test_bubbles_change_nothing():
    dense = random_stream("if4", 40, seed=3)
    sparse = random_stream("if4", 40, seed=3, bubble_prob=0.4)
    # Same seed draws the same segment structure first; compare against the scalar model.
    assert len(sparse) > len(dense)
    beats = stimulus_to_json(sparse)["beats"]
    assert run(sparse).bits.tolist() == ref.run("if4", beats)


def test_reset_discards_open_segment():
    s = random_stream("nvfp4", 6, seed=4, max_len=5)
    reset = np.zeros(len(s), bool)
    starts = np.flatnonzero(s.first)
    reset[starts[2] + 1] = True             # mid-segment 2 (if it has 2+ beats, else opens one)
    s2 = Stream(s.unit, s.en, s.first, s.a, s.w, s.a_sf, s.w_sf, reset)
    beats = stimulus_to_json(s2)["beats"]
    got = run(s2)
    assert got.bits.tolist() == ref.run("nvfp4", beats)
    # The reset beat opens a segment of its own (from the +0 registers), so segment 2 now
    # starts at the reset beat; and segment 1, closed one row before the reset, still had its
    # result in the pipeline, which the reset clears.
    # Here that is segments 0 and 1 (closed 6 and 1 rows before it: B = 16 has latency 6).
    plain = run(s)
    r = starts[2] + 1
    lost = [int(c) for c in plain.close_beat if 0 < r - c <= 6]
    assert lost == [starts[1], starts[2]] and got.discarded_beat.tolist() == lost
    assert len(got) == len(plain) - 2
    assert got.start_beat[0] == r and plain.start_beat[2] == starts[2]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("seed", [11, 12])
def test_random_multisegment_vs_scalar(unit, seed):
    s = random_stream(unit, 60, seed=seed, max_len=40, bubble_prob=0.2)
    reset = np.random.default_rng(seed).random(len(s)) < 0.01
    s = Stream(s.unit, s.en, s.first, s.a, s.w, s.a_sf, s.w_sf, reset)
    got = run(s)
    want = ref.run(unit, stimulus_to_json(s)["beats"])
    assert got.bits.tolist() == want


def test_results_record_segment_positions():
    s = random_stream("if4", 5, seed=2, min_len=3, max_len=3)
    res = run(s)
    assert res.start_beat.tolist() == [0, 3, 6, 9, 12]
    assert res.close_beat.tolist() == [3, 6, 9, 12, 15]


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 8, 16, 32])
def test_block_sizes(block_size):
    s = random_stream("if4", 20, seed=block_size, block_size=block_size, max_len=6)
    assert run(s).bits.tolist() == ref.run("if4", stimulus_to_json(s)["beats"])


def _sum_in_order(values, order) -> np.float32:
    """binary32 sum adding ``values`` one by one in ``order``."""
    acc = np.float32(values[order[0]])
    for i in order[1:]:
        acc = np.float32(acc + np.float32(values[i]))
    return acc


def test_tree_reduce_order():
    """Pairwise (0,1), (2,3), then the pair sums; an odd lane passes up. Every case is picked
    so that the other plausible orders give a different binary32 result, and says so."""
    big = 2.0 ** 24                     # ulp 2 above it: +1 ties to even and vanishes
    cases = [
        # (2^24 + 1) + (1 + 1) = 2^24 + 2; left to right loses each 1: 2^24.
        ([big, 1.0, 1.0, 1.0], big + 2),
        # Adjacent pairs: 0 + 2 = 2; strided pairs (0,2),(1,3): 2^24 + (1 - 2^24) = 1.
        ([big, -big, 1.0, 1.0], 2.0),
        # Three lanes: (x0 + x1) + x2 = 2^24; pairing the last two first: 2^24 + 2.
        ([big, 1.0, 1.0], big),
    ]
    for values, want in cases:
        x = np.array([values], np.float32)
        assert tree_reduce(x)[0] == np.float32(want), values
    # Case 1 tells the tree from a sequential sum either way round.
    values, want = cases[0]
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        assert _sum_in_order(values, order) != np.float32(want)
    # Cases 2 and 3 tell it from strided pairs and from pairing the last two first.
    assert np.float32(np.float32(big + 1.0) + np.float32(-big + 1.0)) == 1.0
    assert np.float32(big + np.float32(1.0 + 1.0)) == big + 2


# --- strict validation -----------------------------------------------------------------------

def test_strict_rejects_int4_minus_eight():
    s = one_beat_stream("if4", [0] * 16, [0] * 5 + [0x8] + [0] * 10, ONE, ONE | INT_FLAG)
    with pytest.raises(StimulusError, match=r"beat 0, lane 5, operand w: code 0x8"):
        run(s, strict=True)
    # The total function computes it as -8.
    assert len(run(s)) == 1
    # In an FP4 block 0x8 is -0 and valid; NVFP4 never reads the INT flag.
    run(one_beat_stream("if4", [0x8] * 16, [0x8] * 16, ONE, ONE), strict=True)
    run(one_beat_stream("nvfp4", [0x8] * 16, [0x8] * 16, ONE | INT_FLAG, ONE | INT_FLAG),
        strict=True)


def test_strict_ignores_bubbles():
    s = one_beat_stream("if4", [0x8] * 16, [0] * 16, ONE | INT_FLAG, ONE)
    with pytest.raises(StimulusError):
        run(s, strict=True)
    # The same invalid codes on a bubble (en=0) are never read.
    a_sf = s.a_sf.copy()
    a_sf[1] = ONE
    run(Stream("if4", np.array([False, True]), s.first, s.a, s.w, a_sf, s.w_sf), strict=True)


def test_stream_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        Stream("if4", np.ones(2, bool), np.ones(2, bool), np.zeros((2, 16), np.uint8),
               np.zeros((2, 8), np.uint8), np.zeros(2, np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="unknown unit"):
        Stream("fp8", np.ones(1, bool), np.ones(1, bool), np.zeros((1, 16), np.uint8),
               np.zeros((1, 16), np.uint8), np.zeros(1, np.uint8), np.zeros(1, np.uint8))


# -- a reset while a result is in flight (issue 17, item 1) ------------------------------------

@pytest.mark.parametrize("reduction", ["pipelined", "shared"])
@pytest.mark.parametrize("block_size", [2, 16])
def test_reset_discards_a_result_in_flight_per_edge(block_size, reduction):
    """A reset 1 .. latency rows after a closing beat discards its result (the hardware's
    reset clears the pipeline); latency + 1 and later, the result has come out."""
    from tests.reset_streams import LATENCY, expected, reset_ladder

    latency = LATENCY[block_size]
    ks = list(range(1, latency + 3))
    stream, cases = reset_ladder("if4", block_size, ks)
    got = run(stream, reduction=reduction)
    assert got.bits.tolist() == expected(cases)
    assert got.discarded_beat.tolist() == [c["close"] for c in cases if not c["survives"]]
    assert len(got.overrun_beat) == 0
    # The independent scalar model agrees.
    assert ref.run("if4", stimulus_to_json(stream)["beats"]) == expected(cases)
    # The arithmetic of every closed segment, timing aside, is still there for cross-checks.
    every = closed_segments(stream)
    assert every.bits.tolist() == [c["bits"] for c in cases]
    assert every.close_beat.tolist() == [c["close"] for c in cases]


def test_shared_close_refused_or_discarded():
    """B = 16 shared: a close refused by the busy tree raises overrun at its tree-start edge
    (3 edges after it); a reset before that edge takes it first, and it is only discarded."""
    from tests.reset_streams import ONE

    rows = 12
    a = np.full((rows, 16), ONE, dtype=np.uint8)
    first = np.array([1, 1, 1] + [0] * 9, dtype=bool)      # closes at rows 1 and 2
    for reset_row, refused, discarded in ((3, [], [1, 2]), (5, [], [1, 2]), (6, [2], [1]),
                                          (8, [2], [])):
        reset = np.zeros(rows, dtype=bool)
        reset[reset_row] = True
        s = Stream("if4", np.ones(rows, bool), first, a, a, np.full(rows, 0x38, np.uint8),
                   np.full(rows, 0x38, np.uint8), reset)
        got = run(s, reduction="shared")
        assert got.overrun_beat.tolist() == refused, reset_row
        assert got.discarded_beat.tolist() == discarded, reset_row
