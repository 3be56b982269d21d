"""The fused architectures in golden (fused-fp32, fused-exact) against the independent scalar
model (tests/scalar_model.py, exact Fractions and its own rounding) and hand-derived vectors."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from if4mac.golden import Stream, random_stream, stimulus_to_json
from if4mac.golden import run as run_reference
from if4mac.golden.fused import (
    ARCHS, EXACT_LSB_EXP, QNAN_BITS, FusedResults, block_dots, exact_acc_width, exact_beat_bound,
    exact_max_segment, exact_to_binary32,
)
from if4mac.golden.fused import run_arch as run
from tests import scalar_model as ref

UNITS = ("nvfp4", "if4")
FUSED = ("fused-fp32", "fused-exact")
ONE = 0x38           # E4M3 1.0
INT = 0x80
EDGE_SCALES = np.array([0x00, 0x80, 0x01, 0x81, 0x07, 0x08, 0x7E, 0x7F, 0xFE, 0xFF], np.uint8)


def segments(unit, beats_per_segment, block_size=16):
    """A stream from a list of segments, each a list of (a, w, a_sf, w_sf) beats with a and w
    lists of codes (padded with 0 to the block size), closed by a trailing first=1 beat."""
    rows = []
    for seg in beats_per_segment:
        for k, (a, w, a_sf, w_sf) in enumerate(seg):
            rows.append((k == 0, list(a) + [0] * (block_size - len(a)),
                         list(w) + [0] * (block_size - len(w)), a_sf, w_sf))
    rows.append((True, [0] * block_size, [0] * block_size, ONE, ONE))
    n = len(rows)
    def col(i, dtype):
        return np.array([r[i] for r in rows], dtype)

    return Stream(unit, np.ones(n, bool), col(0, bool), col(1, np.uint8), col(2, np.uint8),
                  col(3, np.uint8), col(4, np.uint8))


def scalar(arch, stream, acc_width=None):
    beats = stimulus_to_json(stream)["beats"]
    if arch == "fused-exact" and acc_width is None:
        acc_width = exact_acc_width(stream.unit, stream.block_size)
    return [f"0x{b:08x}" for b in ref.run_fused(arch, stream.unit, beats, acc_width=acc_width)]


def edge_stream(unit, block_size, *, seed, n_segments, max_len, reset_prob=0.02):
    stream = random_stream(unit, n_segments, seed=seed, max_len=max_len, block_size=block_size,
                           bubble_prob=0.2)
    rng = np.random.default_rng(seed + 1)
    n = len(stream)
    scales = {}
    for name in ("a_sf", "w_sf"):
        values = np.array(getattr(stream, name), np.uint8)
        pick = rng.random(n) < 0.3
        values[pick] = rng.choice(EDGE_SCALES, int(pick.sum()))
        scales[name] = values
    reset = rng.random(n) < reset_prob
    first_only = rng.random(n) < 0.02          # segments opened by a first=0 beat after reset
    first = np.array(stream.first) & ~(reset & first_only)
    return dataclasses.replace(stream, reset=reset, first=first, **scales)


# -- hand-derived vectors ---------------------------------------------------------------------

@pytest.mark.parametrize("unit", UNITS)
def test_hand_448_and_subnormal_scales(unit):
    # 16 lanes of 1.0 * 1.0 at 0x7F (read as 448) x 1.0: 7168 = 1.75 * 2^12 = 0x45e00000.
    # 16 lanes of 0.5 * 0.5 at 0x01 x 0x01 (2^-9 each): 16 * 2^-2 * 2^-18 = 2^-16 = 0x37800000.
    stream = segments(unit, [[([2] * 16, [2] * 16, 0x7F, ONE)], [([1] * 16, [1] * 16, 0x01, 0x01)]])
    for arch in ARCHS:
        assert run(stream, arch=arch).hex() == ["0x45e00000", "0x37800000"], arch


def test_hand_rne_ties_and_late_rounding():
    # NVFP4, 16 lanes of 4.0 * 4.0 at scales 2^8 * 2^8 (0x78): exactly 2^24. Then beats of
    # one lane 1.0 * 1.0 at scale 1.0 add 1 each. 2^24 + 1 is a tie -> even 2^24 (0x4b800000);
    # 2^24 + 3 is a tie -> 2^24 + 4 (0x4b800002). fused-fp32 rounds after every beat, so
    # 2^24 + 1 + 1 stays 2^24, while fused-exact rounds 2^24 + 2 once: 0x4b800001.
    big = ([6] * 16, [6] * 16, 0x78, 0x78)
    one = ([2], [2], ONE, ONE)
    three = ([2, 2, 2], [2, 2, 2], ONE, ONE)
    stream = segments("nvfp4", [[big, one], [big, three], [big, one, one]])
    assert run(stream, arch="fused-exact").hex() == ["0x4b800000", "0x4b800002", "0x4b800001"]
    assert run(stream, arch="fused-fp32").hex() == ["0x4b800000", "0x4b800002", "0x4b800000"]


@pytest.mark.parametrize("unit", UNITS)
def test_exact_cancellation_gives_plus_zero(unit):
    # 3.0 * 1.5 in lane 0 then -3.0 * 1.5 (code 0xD is -3): the exact sum is 0 -> +0; so is
    # fused-fp32's 4.5 + -4.5. A block of -0 codes (0x8) times 1.0: S = 0 is +0 in both.
    stream = segments(unit, [[([5], [3], ONE, ONE), ([0xD], [3], ONE, ONE)],
                             [([0x8] * 16, [2] * 16, ONE, ONE)]])
    for arch in FUSED:
        assert run(stream, arch=arch).hex() == ["0x00000000", "0x00000000"], arch


def test_zero_scale_signs():
    # S = 16 * (-1.0 * 1.0) = -16 (k-scaled) at a zero scale: fused-fp32 multiplies -16 * +0 =
    # -0 (IEEE), and a segment of it stays -0; fused-exact's exact zero is +0.
    stream = segments("nvfp4", [[([0xA] * 16, [2] * 16, 0x00, ONE)] * 2])
    assert run(stream, arch="fused-fp32").hex() == ["0x80000000"]
    assert run(stream, arch="fused-exact").hex() == ["0x00000000"]


def test_int4_is_exactly_six_sevenths_in_fused_exact():
    # IF4 INT.INT, 16 lanes of (-8) * (-8) (0x8 decodes to -8) at scales 1.0: 1024 * 36/49
    # = 752.3265306..., in [512, 1024) the ulp is 2^-14: 752.3265306 * 2^14 = 12326117.877
    # -> 12326118 -> 0x443c14e6 in every architecture (f32(36/49) = 0x3f3c14e6 times 2^10
    # is exact). One lane of INT4 5 * 1: fused-exact rounds 180/49 = 3.6734693877...;
    # * 2^22 = 15407647.347 -> 15407647 -> 0x406b1a1f. fused-fp32 multiplies 5 by f32(36/49)
    # = 0xbc14e6 * 2^-24: 5 * 0xbc14e6 * 2^-2 = 15407647.5, a tie -> even 15407648 -> 0x406b1a20.
    stream = segments("if4", [[([8] * 16, [8] * 16, ONE | INT, ONE | INT)],
                              [([5], [1], ONE | INT, ONE | INT)]])
    assert run(stream, arch="fused-exact").hex() == ["0x443c14e6", "0x406b1a1f"]
    assert run(stream, arch="fused-fp32").hex() == ["0x443c14e6", "0x406b1a20"]


def test_block_dots_kinds():
    # FP.FP: q = 2 * value; FP.INT and INT.INT use the INT4 integer. Lane 0 only.
    a = np.array([[7] + [0] * 15] * 3, np.uint8)     # E2M1 6.0 (q 12) or INT4 7
    w = np.array([[0xF] + [0] * 15] * 3, np.uint8)   # E2M1 -6.0 (q -12) or INT4 -1
    got = block_dots("if4", a, w, np.array([ONE, ONE | INT, ONE | INT]),
                     np.array([ONE, ONE, ONE | INT]))
    assert got.tolist() == [-144, 7 * -12, -7]
    flagged = np.array([ONE | INT] * 3)
    assert block_dots("nvfp4", a, w, flagged, flagged).tolist() == [-144] * 3


# -- the accumulator bound and overflow -------------------------------------------------------

@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("block_size", [1, 2, 16, 64])
def test_accumulator_bounds(unit, block_size):
    width = exact_acc_width(unit, block_size)
    limit = exact_max_segment(unit, block_size, width)
    assert limit == ref.exact_max_segment(unit, block_size, width) >= 4096
    # The default is the narrowest that takes 4096 beats.
    assert exact_max_segment(unit, block_size, width - 1) < 4096
    bound = exact_beat_bound(unit, block_size)
    assert limit * bound <= (1 << (width - 1)) - 1 < (limit + 1) * bound
    # The bound is reached: every lane at its largest product, at 448 * 448.
    worst = {"nvfp4": (0x7, 0x7, 0x7F, 0x7F), "if4": (0x8, 0x8, 0xFF, 0xFF)}[unit]
    value = ref.fused_exact_beat(unit, [worst[0]] * block_size, [worst[1]] * block_size,
                                 worst[2], worst[3])
    assert value / ref.exact_lsb(unit) == bound


@pytest.mark.parametrize("unit", UNITS)
def test_overflow_at_small_accumulator(unit):
    width = exact_beat_bound(unit, 4).bit_length() + 3
    limit = exact_max_segment(unit, 4, width)
    assert 4 <= limit <= 8
    rng = np.random.default_rng(3)
    lengths = [limit, limit + 1, 1, limit + 3, 2]
    beats = [[(rng.integers(0, 16, 4), rng.integers(0, 16, 4), 0xFE, 0xFF)
              for _ in range(n)] for n in lengths]
    stream = segments(unit, beats, block_size=4)
    res = run(stream, arch="fused-exact", acc_width=width)
    assert isinstance(res, FusedResults) and res.overflow
    starts = np.cumsum([0] + lengths[:-1])
    assert res.overflow_beat.tolist() == [starts[1] + limit, starts[3] + limit]
    bits = res.bits.tolist()
    assert [b == QNAN_BITS for b in bits] == [False, True, False, True, False]
    assert res.hex() == scalar("fused-exact", stream, acc_width=width)
    # The default accumulator takes all of these.
    assert not run(stream, arch="fused-exact").overflow
    # An open trailing segment that overflows still raises overflow (no result).
    tail = segments(unit, [beats[1]], block_size=4)
    tail = dataclasses.replace(tail, first=np.array(tail.first))
    tail.first[-1] = False
    res = run(tail, arch="fused-exact", acc_width=width)
    assert len(res) == 0 and res.overflow_beat.tolist() == [limit]


# -- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "fused"}, "unknown arch 'fused'"),
    ({"arch": "fused-exact", "reduction": "shared"}, "applies only to arch 'reference'"),
    ({"arch": "fused-exact", "reduction": "tree"}, "unknown reduction 'tree'"),
    ({"arch": "fused-fp32", "acc_width": 70}, "acc_width applies only to arch 'fused-exact'"),
    ({"acc_width": 70}, "acc_width applies only to the fused architectures"),
    ({"converter": "serial"}, "converter applies only to the fused architectures"),
    ({"arch": "fused-fp32", "converter": "serial"}, "converter applies only to arch 'fused-exact'"),
    ({"arch": "fused-exact", "converter": "slow"}, "unknown converter 'slow'"),
    ({"arch": "fused-exact", "width": 70}, "unknown option width"),
    ({"arch": "fused-exact", "acc_width": 20}, "acc_width 20 cannot hold one beat"),
    ({"arch": "fused-exact", "acc_width": 70.0}, "acc_width must be an integer"),
])
def test_bad_parameters(kwargs, message):
    stream = random_stream("if4", 2, seed=0)
    with pytest.raises(ValueError, match=message):
        run(stream, **kwargs)


def test_serial_converter_rejects_nvfp4():
    with pytest.raises(ValueError, match="NVFP4 has no division"):
        run(random_stream("nvfp4", 2, seed=0), arch="fused-exact", converter="serial")


def test_serial_converter_drops_close_results():
    """Closing beats 1..8 cycles after an accepted one are refused (busy 8 cycles); 9 apart
    are accepted. The values are the pipelined ones."""
    rows = [0, 3, 9, 17, 18, 20, 30, 31]       # first=1 rows; every row is a beat
    n = 33
    first = np.zeros(n, bool)
    first[rows] = True
    reset = np.zeros(n, bool)
    reset[31] = True                            # 31 follows 30 but reset comes between, and
                                                # discards 30's result in flight
    rng = np.random.default_rng(8)
    stream = Stream("if4", np.ones(n, bool), first, rng.integers(0, 16, (n, 16), dtype=np.uint8),
                    rng.integers(0, 16, (n, 16), dtype=np.uint8), np.full(n, 0xB8, np.uint8),
                    np.full(n, 0x38, np.uint8), reset)
    pipelined = run(stream, arch="fused-exact")
    serial = run(stream, arch="fused-exact", converter="serial")
    # Closes at 3, 9, 17, 18, 20, 30 (31 is preceded by reset: no close). Accepted: 3; 9 is 6
    # after 3 (refused); 17 is 14 after 3 (accepted); 18, 20 within 8 of 17 (refused);
    # 30 is 13 after 17 (accepted), but the reset one row later discards it (latency 12).
    assert pipelined.close_beat.tolist() == [3, 9, 17, 18, 20]
    assert pipelined.discarded_beat.tolist() == [30]
    assert serial.close_beat.tolist() == [3, 17]
    assert serial.overrun_beat.tolist() == [9, 18, 20] and serial.overrun
    assert serial.discarded_beat.tolist() == [30]
    assert serial.bits.tolist() == pipelined.bits[[0, 2]].tolist()


def test_default_arch_is_reference():
    stream = random_stream("if4", 50, seed=4)
    assert run(stream).hex() == run(stream, arch="reference").hex() == \
        run_reference(stream).hex()
    shared = run(stream, reduction="shared")
    reference = run_reference(stream, reduction="shared")
    assert shared.overrun_beat.tolist() == reference.overrun_beat.tolist()
    assert type(run(stream)).__name__ == "Results"


# -- the final conversion on its own, far past what streams reach ---------------------------

def _exact_bits(value: Fraction) -> int:
    return ref.to_bits((ref.round_binary32(value), False)) if value else 0


@pytest.mark.parametrize("divisor", [1, 49])
def test_exact_to_binary32_random_and_ties(divisor):
    rng = np.random.default_rng(divisor)
    n = 3000
    hi = rng.integers(-(1 << 60), 1 << 60, n) >> rng.integers(0, 60, n)
    lo = rng.integers(-(1 << 61), 1 << 61, n) >> rng.integers(0, 61, n)
    # Ties: lo's multiples of divisor * (2^k + 2^(k-24)) around 2^k land exactly half-way.
    k = rng.integers(24, 40, 200)
    tie = divisor * ((np.int64(1) << k) + (np.int64(1) << (k - 24)) * rng.integers(1, 64, 200) // 2)
    hi = np.concatenate([hi, np.zeros(200, np.int64), [0, 5, -5]])
    lo = np.concatenate([lo, tie * rng.choice([-1, 1], 200), [0, -5 << 16, 5 << 16]])
    got = exact_to_binary32(hi, lo, divisor)
    scale = Fraction(2) ** EXACT_LSB_EXP / divisor
    want = [_exact_bits((int(h) * (1 << 16) + int(l)) * scale) for h, l in zip(hi, lo)]
    bad = np.flatnonzero(got != np.array(want, np.uint32))
    assert len(bad) == 0, f"first mismatch hi={hi[bad[0]]} lo={lo[bad[0]]}"
    assert got[-3] == 0


# -- against the scalar model ----------------------------------------------------------------

@pytest.mark.parametrize("arch", FUSED)
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("block_size", [1, 2, 16])
def test_random_against_scalar_model(arch, unit, block_size):
    stream = edge_stream(unit, block_size, seed=17 * block_size + len(unit),
                         n_segments=150, max_len=12)
    assert run(stream, arch=arch).hex() == scalar(arch, stream)


@pytest.mark.parametrize("unit", UNITS)
def test_every_kind_against_scalar_model(unit):
    """FP.FP, FP.INT, INT.FP and INT.INT beats mixed in segments, all scale edges."""
    stream = edge_stream(unit, 16, seed=99, n_segments=120, max_len=6, reset_prob=0)
    n = len(stream)
    kinds = np.arange(n) % 4
    a_sf = (np.array(stream.a_sf) & 0x7F) | np.where(kinds & 1, INT, 0).astype(np.uint8)
    w_sf = (np.array(stream.w_sf) & 0x7F) | np.where(kinds & 2, INT, 0).astype(np.uint8)
    stream = dataclasses.replace(stream, a_sf=a_sf, w_sf=w_sf)
    for arch in FUSED:
        assert run(stream, arch=arch).hex() == scalar(arch, stream), arch


@pytest.mark.parametrize("unit", UNITS)
def test_long_segment_against_scalar_model(unit):
    """A 1000-beat segment (K = 16000) with mixed signs against the exact sum."""
    stream = random_stream(unit, 2, seed=5, min_len=1000, max_len=1000)
    for arch in FUSED:
        assert run(stream, arch=arch).hex() == scalar(arch, stream), arch
