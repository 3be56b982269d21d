"""The golden quantizers (golden/quantize.py) and tensor sources (golden/tensors.py).

Expected values come from the recipe, by hand (vectors below, each with its arithmetic), or
from ``ref_quantize``: a plain scalar model written here, block by block and element by
element, with np.float32 scalars for the binary32 steps and its own rounding (nearest
candidate with exact comparisons, Python's half-even ``round``), sharing no code with the
quantizer beyond the format tables.
"""

from __future__ import annotations

import bisect
import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from if4mac.golden.formats import E2M1_VALUES, INT4_VALUES, float32_from_bits
from if4mac.golden.mac import run
from if4mac.golden.quantize import (
    FORMATS, Quantized, block_error_sum, dequantize, dot_product_scale, e2m1_codes,
    error_stats, int4_codes, quantize, round_scale_e4m3, stimulus_from_quantized,
)
from if4mac.golden.tensors import example_tensor, hadamard_16, load_tensor

F = np.float32

# --------------------------------------------------------------------------------------------
# The reference model
# --------------------------------------------------------------------------------------------

#: The reference's constants, as literals (f32 of each).
REF_INT_GAIN = F(1.16666666)
REF_INT_EXPANSION = F(0.8571428571)


def _ref_e4m3_grid():
    """(value, code) for every finite E4M3 code, straight from the format's definition."""
    grid = []
    for code in range(0x7F):                       # 0x7F is NaN in float8_e4m3fn
        e, m = code >> 3, code & 7
        if e == 0:
            value = Fraction(m, 8) * Fraction(1, 64)
        else:
            value = (1 + Fraction(m, 8)) * Fraction(2) ** (e - 7)
        grid.append((value, code))
    return grid


REF_E4M3 = _ref_e4m3_grid()
REF_E4M3_VALUES = [v for v, _ in REF_E4M3]


def ref_round_e4m3(v: np.float32) -> int:
    """Nearest E4M3 code of v >= 0 (ties: even code); above 464 it is NaN, 0x7F."""
    fv = Fraction(float(v))
    if fv > 464:
        return 0x7F
    i = bisect.bisect_left(REF_E4M3_VALUES, fv)
    cands = [REF_E4M3[j] for j in (i - 1, i) if 0 <= j < len(REF_E4M3)]
    return min(cands, key=lambda vc: (abs(vc[0] - fv), vc[1] & 1))[1]


REF_E2M1_MAGS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def ref_e2m1_code(x_s: np.float32) -> int:
    # |x_s| - c is exact in float64 whenever it matters: both are binary32 values within a
    # factor 2^28 of each other, or |x_s| < 2^-25 and 0 is the clear winner.
    a = abs(float(x_s))
    dist = [abs(a - c) for c in REF_E2M1_MAGS]
    best = min(dist)
    index = [i for i, d in enumerate(dist) if d == best]
    index = index[0] if len(index) == 1 else next(i for i in index if i % 2 == 0)
    return index | (0x8 if x_s < 0 else 0)


def ref_int4(v: np.float32) -> int:
    return round(max(-7.0, min(7.0, float(v))))     # Python's round: half to even, exact


def ref_error_sum(terms) -> np.float32:
    """torch's CPU order for 16 floats: lane i gets t_i + t_(i+8), then the lanes in order."""
    lanes = [terms[i] + terms[i + 8] for i in range(8)]
    acc = F(0)
    for t in lanes:
        acc = acc + t
    return acc


def ref_sequential_sum(terms) -> np.float32:
    acc = F(0)
    for t in terms:
        acc = acc + t
    return acc


def ref_if4_errors(block, s, amax, *, error_sum=ref_error_sum, expansion_last=False):
    """IF4's two candidates for one block (scaled by s) and their errors (e_fp, e_int).

    ``error_sum`` and ``expansion_last`` (6/7 applied after the division by 2688) are there
    to show what a different order would have chosen.
    """
    divisor = F(2688)
    xs = [v * (F(1) / ((F(1) / (divisor / amax)) * s)) if s != 0 else F(0) for v in block]
    fp = [ref_e2m1_code(v) for v in xs]
    it = [ref_int4(v * REF_INT_GAIN) for v in xs]
    d_fp = [((F(E2M1_VALUES[c]) * s) * amax) / divisor for c in fp]
    if expansion_last:
        d_int = [(((F(q) * s) * amax) / divisor) * REF_INT_EXPANSION for q in it]
    else:
        d_int = [(((F(q) * s) * amax) * REF_INT_EXPANSION) / divisor for q in it]
    e_fp = error_sum([(d - v) * (d - v) for d, v in zip(d_fp, block)])
    e_int = error_sum([(d - v) * (d - v) for d, v in zip(d_int, block)])
    return e_fp, e_int, fp, it


def ref_quantize(x, fmt):
    """(codes, scales, amax) by the recipe, one scalar at a time."""
    x = np.asarray(x).astype(np.float32)
    m = F(7) if fmt == "nvint4" else F(6)
    divisor = F(3136) if fmt == "nvint4" else F(2688)
    flat = x.reshape(-1, 16)
    amax = F(0)
    for v in x.reshape(-1):
        amax = max(amax, abs(v))
    codes = np.zeros(flat.shape, np.uint8)
    scales = np.zeros(len(flat), np.uint8)
    if amax == 0:
        return codes.reshape(x.shape), scales.reshape(x.shape[:-1] + (-1,)), amax
    encode = divisor / amax
    decode = F(1) / encode
    for b, block in enumerate(flat):
        bmax = F(0)
        for v in block:
            bmax = max(bmax, abs(v))
        scode = ref_round_e4m3(bmax / m * encode)
        s = F(REF_E4M3[scode][0])
        xs = [v * (F(1) / (decode * s)) if s != 0 else F(0) for v in block]
        if fmt == "nvfp4":
            codes[b] = [ref_e2m1_code(v) for v in xs]
        elif fmt == "nvint4":
            codes[b] = [ref_int4(v) & 0xF for v in xs]
        else:
            e_fp, e_int, fp, it = ref_if4_errors(block, s, amax)
            if e_int < e_fp:
                codes[b] = [q & 0xF for q in it]
                scode |= 0x80
            else:
                codes[b] = fp
        scales[b] = scode
    return codes.reshape(x.shape), scales.reshape(x.shape[:-1] + (-1,)), amax


def assert_same(q: Quantized, ref):
    codes, scales, amax = ref
    assert q.amax.dtype == np.float32 and q.amax.tobytes() == F(amax).tobytes()
    bad = np.argwhere(q.scales != scales)
    assert not len(bad), f"scale mismatch at {bad[:5].tolist()}: {q.scales[tuple(bad[0])]:#x} " \
                         f"vs ref {scales[tuple(bad[0])]:#x}"
    bad = np.argwhere(q.codes != codes)
    assert not len(bad), f"code mismatch at {bad[:5].tolist()}"


# --------------------------------------------------------------------------------------------
# Constants and the rounding helpers
# --------------------------------------------------------------------------------------------

def test_reference_constants_are_the_rationals_rounded_once():
    # The reference's decimal literals land on the same binary32 as 7/6 and 6/7.
    assert REF_INT_GAIN == F(7 / 6)
    assert REF_INT_EXPANSION == F(6 / 7)
    for lit, exact in ((REF_INT_GAIN, Fraction(7, 6)), (REF_INT_EXPANSION, Fraction(6, 7))):
        ulp = Fraction(float(np.spacing(lit)))
        assert abs(Fraction(float(lit)) - exact) <= ulp / 2


def test_e4m3_rounding_edges_match_the_candidate_model():
    values = []
    for (lo, _), (hi, _) in zip(REF_E4M3, REF_E4M3[1:]):
        mid = F((lo + hi) / 2)                       # exact: E4M3 midpoints fit binary32
        values += [mid, np.nextafter(mid, F(0)), np.nextafter(mid, F(1000)), F(lo), F(hi)]
    values += [F(448), F(450), F(464), np.nextafter(F(464), F(1000)), F(479), F(1e9), F(0),
               F(2.0 ** -10), np.nextafter(F(2.0 ** -10), F(1)), F(1e-30)]
    values = np.array(values, np.float32)
    got = round_scale_e4m3(values)
    want = np.array([ref_round_e4m3(v) for v in values], np.uint8)
    assert np.array_equal(got, want)
    # The documented overflow rule: (448, 464] -> 448 (0x7E), above 464 -> NaN (0x7F).
    assert list(round_scale_e4m3(np.float32([450, 464, 465, 1e9]))) == [0x7E, 0x7E, 0x7F, 0x7F]
    # Ties to even: 1.0625 -> 1.0 (0x38), 1.1875 -> 1.25 (0x3A), 2^-10 -> 0, 1.5*2^-9 -> 2^-8.
    assert list(round_scale_e4m3(np.float32([1.0625, 1.1875, 2.0 ** -10, 1.5 * 2.0 ** -9]))) \
        == [0x38, 0x3A, 0x00, 0x02]


def test_e2m1_ties_signs_and_saturation():
    x = np.float32([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 5.5, 6.0, 6.5, 100.0,
                    0.2499, 0.2501, -0.1, -0.25, -0.0, 0.0, -3.0, -5.0, -1e-30])
    want = [0x0, 0x2, 0x2, 0x4, 0x4, 0x6, 0x6, 0x7, 0x7, 0x7, 0x7,
            0x0, 0x1, 0x8, 0x8, 0x0, 0x0, 0xD, 0xE, 0x8]
    assert e2m1_codes(x).tolist() == want
    assert [ref_e2m1_code(v) for v in x] == want


def test_int4_half_even_and_clamp():
    x = np.float32([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 6.5, 7.0, 7.4, 100, -6.5, -7.49, -100,
                    -0.0, -0.4])
    want = [0x0, 0x2, 0x2, 0x0, 0xE, 0xE, 0x6, 0x7, 0x7, 0x7, 0xA, 0x9, 0x9, 0x0, 0x0]
    assert int4_codes(x).tolist() == want
    assert [ref_int4(v) & 0xF for v in x] == want


def test_block_error_sum_order():
    # 2^24 + 1 + 1: the order decides whether the ones survive. Lanes: t1 + t9 = 2, and
    # 2^24 + 2 is exact. Left to right, each 2^24 + 1 is a tie that rounds back to 2^24.
    t = np.zeros(16, np.float32)
    t[0], t[1], t[9] = 2.0 ** 24, 1.0, 1.0
    assert block_error_sum(t) == F(2.0 ** 24 + 2)
    assert ref_error_sum(list(t)) == F(2.0 ** 24 + 2)
    assert ref_sequential_sum(list(t)) == F(2.0 ** 24)
    with pytest.raises(ValueError, match="last axis of 16"):
        block_error_sum(np.zeros(8, np.float32))


# --------------------------------------------------------------------------------------------
# Hand-derived vectors
# --------------------------------------------------------------------------------------------

def _carrier(fmt_divisor: float, rows: list[list[float]]) -> np.ndarray:
    """A tensor whose first block holds only amax = M*448, so encode = decode = 1.

    Each further block b then has s = e4m3(block_amax / M), and x_s = x / s exactly whenever
    s is a power of two.
    """
    x = np.zeros((1, 16 * (1 + len(rows))), np.float32)
    x[0, 0] = fmt_divisor
    for i, r in enumerate(rows):
        x[0, 16 * (i + 1):16 * (i + 1) + len(r)] = r
    return x


def test_nvfp4_hand_vectors():
    block = [6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 5.5, -0.1, -0.0, 0.0, -3, -6, 4.75, 1]
    # Block max 6 -> s_hp = 6/6 * 1 = 1 -> s = 1 (0x38), x_s = x.
    sat = [6.375, -6.375, 3]
    # 6.375/6 = 1.0625, an E4M3 tie -> 1.0 (even), so x_s = 6.375 > 6: saturates to 6.
    tiny = [8.25 * 2.0 ** -9, -8.25 * 2.0 ** -9, 2.0 ** -9]
    # s_hp = 1.375 * 2^-9 -> subnormal s = 2^-9 (0x01); x_s = 8.25 (> 7: the reference's
    # invalid code; saturates here), -8.25, 1.
    zero_scale = [6 * 2.0 ** -10, -3 * 2.0 ** -10]
    # s_hp = 2^-10: a tie between 0 and 2^-9 -> 0: the whole block is code 0, scale 0.
    x = _carrier(2688, [block, sat, tiny, zero_scale, []])
    q = quantize(x, "nvfp4")
    assert q.amax == F(2688)
    # Carrier block: s_hp = 2688/6 = 448 (0x7E), 2688 * (1/448) rounds to 6 or a neighbour.
    assert q.scales.tolist() == [[0x7E, 0x38, 0x38, 0x01, 0x00, 0x00]]
    c = q.codes[0].reshape(-1, 16)
    assert c[0, 0] == 0x7
    assert c[1].tolist() == [0x7, 0x0, 0x2, 0x2, 0x4, 0x4, 0x6, 0x6, 0x7, 0x8, 0x0, 0x0,
                             0xD, 0xF, 0x6, 0x2]
    assert c[2, :3].tolist() == [0x7, 0xF, 0x5]
    assert c[3, :3].tolist() == [0x7, 0xF, 0x2]
    assert not c[4].any() and not c[5].any()
    assert_same(q, ref_quantize(x, "nvfp4"))
    d = dequantize(q)[0]
    assert d[16:32].tolist() == [6, 0, 1, 1, 2, 2, 4, 4, 6, -0.0, 0, 0, -3, -6, 4, 1]
    assert np.signbit(d[16 + 9])                     # code 0x8 dequantizes to -0.0
    assert d[32:35].tolist() == [6, -6, 3]


def test_nvint4_hand_vectors():
    # nvint4: M = 7, carrier 3136 -> encode 1; block max 7 -> s = 1, x_s = x.
    block = [7, 0.5, 1.5, 2.5, -0.5, -1.5, 6.5, -7, 3.25, -0.0, 0.49]
    clamp = [7.4375, -7.4375]      # 7.4375/7 = 1.0625 -> s = 1 (tie to even); clamp to +-7
    x = _carrier(3136, [block, clamp])
    q = quantize(x, "nvint4")
    assert q.scales.tolist() == [[0x7E, 0x38, 0x38]]
    c = q.codes[0].reshape(-1, 16)
    assert c[1, :11].tolist() == [0x7, 0x0, 0x2, 0x2, 0x0, 0xE, 0x6, 0x9, 0x3, 0x0, 0x0]
    assert c[2, :2].tolist() == [0x7, 0x9]
    assert_same(q, ref_quantize(x, "nvint4"))
    assert dequantize(q)[0, 16:27].tolist() == [7, 0, 2, 2, 0, -2, 6, -7, 3, 0, 0]


def test_if4_choice_hand_vectors():
    k = np.arange(8)
    int_block = list((k * F(6 / 7)).astype(np.float32)) + list(-(k[1:] * F(6 / 7)).astype(
        np.float32))
    # Multiples of 6/7: the INT candidate hits each nearly exactly (k * 6/7 * 7/6 -> k), while
    # E2M1 is off by up to 0.86 (5.14 -> 6): INT wins. Block max 6 -> s = 1.
    fp_block = [6, 0.5, -1.5, 3, 4, -0.5, 2, 1]
    # On the E2M1 grid: e_fp = 0, and nothing is < 0, so FP stays.
    tie_block = [6, -6]
    # Both exact: FP 6 is 6; INT: 6 * 7/6 -> 7 and ((7 * 1) * 2688) * f32(6/7) = 16128.0002 ->
    # rounds to 16128 (ulp 2^-10), / 2688 = 6 exactly. e_int = e_fp = 0: the tie keeps FP.
    x = _carrier(2688, [int_block, fp_block, tie_block, []])
    q = quantize(x, "if4")
    assert q.scales.tolist() == [[0x7E, 0x38 | 0x80, 0x38, 0x38, 0x00]]
    c = q.codes[0].reshape(-1, 16)
    assert c[1].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0xF, 0xE, 0xD, 0xC, 0xB, 0xA, 0x9]  + [0]
    assert c[2, :8].tolist() == [0x7, 0x1, 0xB, 0x5, 0x6, 0x9, 0x4, 0x2]
    assert c[3, :2].tolist() == [0x7, 0xF]
    assert_same(q, ref_quantize(x, "if4"))
    assert q.int_fraction == pytest.approx(1 / 5)
    d = dequantize(q)[0]
    # INT block: code k -> ((k * 1) * 2688 * f32(6/7)) / 2688, within an ulp or two of 6k/7.
    assert np.allclose(d[16:24], k * 6 / 7, rtol=3e-7, atol=0)
    assert d[48:50].tolist() == [6, -6]


#: Near-tie elements where a shortcut in the scaling changes the code. Each: tensor amax A
#: (alone in block 0), the element's block max b and the element x (both in block 1), the
#: recipe's x_s = x * (1 / (decode * s)) in binary32, its code, and the shortcut.
LEAK_VECTORS = [
    # amax 2 and x = 0.8333333730697632, the binary32 just above 5/6: encode = 1344, s = 448,
    # x_s = 2.5 exactly -> tie -> 2.0. Exactly (or in float64) x_s = 3x = 2.50000012 -> 3.0.
    pytest.param(2.0, 2.0, 0.8333333730697632, 2.5, 0x4,
                 lambda a, s, x: float(x) * (1.0 / ((1.0 / (2688.0 / a)) * float(s))),
                 id="float64 x_s rounded to E2M1"),
    # s = 352: x_s = 0.74999994 -> 0.5; computed in float64 and then rounded to binary32 it
    # becomes 0.75, a tie -> 1.0.
    pytest.param(18.0, 14.60179328918457, 1.7678570747375488, 0.7499999403953552, 0x1,
                 lambda a, s, x: F(float(x) * (1.0 / ((1.0 / (2688.0 / a)) * float(s)))),
                 id="float64 x_s rounded to binary32"),
    # s = 448: x_s = 1.7499999 -> 1.5; x * encode / s gives 1.75 -> tie -> 2.0.
    pytest.param(16.75, 16.75, 4.885416507720947, 1.7499998807907104, 0x3,
                 lambda a, s, x: x * (F(2688) / F(a)) / s, id="x * encode / s"),
    # s = 88: x_s = 2.5000002 -> 3.0; x * (encode / s) gives 2.5 -> tie -> 2.0.
    pytest.param(31.0, 6.254310607910156, 2.5372023582458496, 2.500000238418579, 0x5,
                 lambda a, s, x: x * ((F(2688) / F(a)) / s), id="x * (encode / s)"),
]


@pytest.mark.parametrize("amax, bmax, x, x_s, code, shortcut", LEAK_VECTORS)
def test_scaling_is_binary32_in_recipe_order(amax, bmax, x, x_s, code, shortcut):
    t = np.zeros((1, 32), np.float32)
    t[0, 0], t[0, 16], t[0, 17], t[0, 18] = amax, bmax, x, -x
    q = quantize(t, "nvfp4")
    assert_same(q, ref_quantize(t, "nvfp4"))
    assert q.codes[0, 17:19].tolist() == [code, code | 0x8]
    s = F(REF_E4M3[q.scales[0, 1]][0])
    encode = F(2688) / F(amax)
    assert F(x) * (F(1) / ((F(1) / encode) * s)) == F(x_s)
    assert ref_e2m1_code(F(x_s)) == code
    assert ref_e2m1_code(shortcut(amax, s, F(x))) != code     # the shortcut would differ


def test_int_candidate_scaling_is_binary32():
    # x = 2.142857313156128: x * f32(7/6) is exactly 2.5 in binary32 -> INT 2 (half to even),
    # while x * 7/6 is 2.50000020 -> 3. Likewise 5.5714287757873535 -> 6.5 -> 6 (exactly: 7).
    # The block is otherwise multiples of 6/7, so INT wins; carrier amax 2688, s = 1, x_s = x.
    k = np.arange(1, 7)
    mult = (k * F(6 / 7)).astype(np.float32)
    block = [6, 2.142857313156128, 5.5714287757873535] + list(mult) + list(-mult) + [0]
    for v, q32, q_exact in ((block[1], 2, 3), (block[2], 6, 7)):
        assert F(v) * REF_INT_GAIN == F(q32 + 0.5)
        assert round(Fraction(float(F(v))) * Fraction(7, 6)) == q_exact
    x = _carrier(2688, [block])
    q = quantize(x, "if4")
    assert q.scales[0, 1] == 0x38 | 0x80
    assert q.codes[0, 16:].tolist() == [7, 2, 6, 1, 2, 3, 4, 5, 6, 0xF, 0xE, 0xD, 0xC, 0xB,
                                        0xA, 0]
    assert_same(q, ref_quantize(x, "if4"))


#: Two IF4 near-tie blocks out of example_tensor("student-t", (4096, 256), seed=2), whose
#: amax 204.13880920410156 sits in a block of its own here. In the first, summing the errors
#: left to right instead of in torch's CPU order flips FP4 to INT4; in the second, applying
#: 6/7 after the division by 2688 instead of before it does.
NEAR_TIE_AMAX = 204.13880920410156
ORDER_SENSITIVE_BLOCK = [
    -0.294687420129776, 0.5163405537605286, 0.6262965798377991, 1.8373342752456665,
    0.8050894737243652, -0.8189854621887207, -1.6712868213653564, -0.15660220384597778,
    -47.280296325683594, 0.4910658597946167, 1.8408360481262207, -0.7350710034370422,
    0.034823816269636154, -0.039773423224687576, -1.511910319328308, 0.18018817901611328]
EXPANSION_ORDER_SENSITIVE_BLOCK = [
    -1.7592562437057495, -0.9160953760147095, 0.06422344595193863, -0.1226940006017685,
    -0.8314837217330933, 0.15768741071224213, -1.8768941164016724, -0.2932301163673401,
    -1.820992112159729, 0.0329846516251564, -61.42898178100586, 0.24024507403373718,
    0.11711005121469498, -0.19090114533901215, -0.5883527994155884, 0.4773518443107605]


@pytest.mark.parametrize("block, variant", [
    (ORDER_SENSITIVE_BLOCK, {"error_sum": ref_sequential_sum}),
    (EXPANSION_ORDER_SENSITIVE_BLOCK, {"expansion_last": True}),
])
def test_if4_near_tie_blocks(block, variant):
    x = np.zeros((1, 32), np.float32)
    x[0, 0] = NEAR_TIE_AMAX
    x[0, 16:] = block
    q = quantize(x, "if4")
    assert_same(q, ref_quantize(x, "if4"))
    amax = F(NEAR_TIE_AMAX)
    s = F(REF_E4M3[q.scales[0, 1] & 0x7F][0])
    e_fp, e_int, _, _ = ref_if4_errors(x[0, 16:], s, amax)
    alt_fp, alt_int, _, _ = ref_if4_errors(x[0, 16:], s, amax, **variant)
    assert not e_int < e_fp and alt_int < alt_fp         # the recipe keeps FP4, the variant not
    assert q.scales[0, 1] & 0x80 == 0


def test_signed_zeros_all_zero_blocks_and_tensors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no division warnings anywhere
        for fmt in FORMATS:
            for z in (np.zeros((3, 32), np.float32), -np.zeros((2, 16), np.float32)):
                q = quantize(z, fmt)
                assert q.amax == 0 and not q.codes.any() and not q.scales.any()
                d = dequantize(q)
                assert d.dtype == np.float32 and not d.any() and np.all(np.isfinite(d))
            x = np.zeros((1, 48), np.float32)
            x[0, 16:32] = 1.0                       # blocks 0 and 2 are all zero (one -0.0)
            x[0, 40] = -0.0
            q = quantize(x, fmt)
            assert q.scales[0, 0] == 0 and q.scales[0, 2] == 0
            assert not q.codes[0, :16].any() and not q.codes[0, 32:].any()
            assert_same(q, ref_quantize(x, fmt))


def test_subnormal_block_scales():
    # Blocks far below the tensor's amax get E4M3 subnormal scales (or 0); still bit-exact.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 256)).astype(np.float32).reshape(4, 16, 16)
    x *= np.exp2(-rng.integers(0, 26, (4, 16, 1))).astype(np.float32)
    x[0, 0, 0] = 50.0
    x = x.reshape(4, 256)
    for fmt in FORMATS:
        q = quantize(x, fmt)
        s = q.scales & 0x7F
        assert np.any((s > 0) & (s < 8)), "no subnormal scale exercised"
        assert np.any(s == 0)
        assert_same(q, ref_quantize(x, fmt))


# --------------------------------------------------------------------------------------------
# Random tensors against the scalar model
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["gaussian", "laplace", "student-t"])
@pytest.mark.parametrize("hadamard", [False, True])
def test_matches_scalar_model(fmt, kind, hadamard):
    x = example_tensor(kind, (16, 512), seed=11, hadamard=hadamard)
    q = quantize(x, fmt)
    assert q.codes.shape == x.shape and q.scales.shape == (16, 32)
    assert_same(q, ref_quantize(x, fmt))
    if fmt == "if4":
        assert 0 < q.int_fraction < 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_matches_scalar_model_on_ties(fmt):
    # Half-integers and E2M1 grid values everywhere: many exact element ties and IF4 error ties.
    rng = np.random.default_rng(3)
    x = (rng.integers(-12, 13, (4, 256)) * F(0.5)).astype(np.float32)
    assert_same(quantize(x, fmt), ref_quantize(x, fmt))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64])
def test_other_input_dtypes(dtype):
    # float16 and bfloat16 widen exactly; float64 is rounded to binary32 first (the reference
    # does the same with .float()), so extra low bits must not matter beyond that rounding.
    x = example_tensor("student-t", (4, 128), seed=5).astype(dtype)
    if dtype == np.float64:
        x = x * (1 + 1e-12)
        assert not np.array_equal(x, x.astype(np.float32))
    x32 = x.astype(np.float32)
    for fmt in FORMATS:
        q = quantize(x, fmt)
        q32 = quantize(x32, fmt)
        assert np.array_equal(q.codes, q32.codes) and np.array_equal(q.scales, q32.scales)
        assert q.amax == q32.amax
        assert_same(q, ref_quantize(x, fmt))


# --------------------------------------------------------------------------------------------
# Round trips and error statistics
# --------------------------------------------------------------------------------------------

#: Worst |x - dequantized| over a block's amax, in blocks with a normal scale (s >= 2^-6):
#: the scale's rounding error (< 2^-4) stretches the grid step by at most 1/(1 - 2^-4) = 16/15;
#: E2M1's half-gap is at most 1 (4..6) in units of block_amax/6, INT4's 0.5 of block_amax/7,
#: and clamping or saturating costs less than either.
ROUND_TRIP_BOUND = {"nvfp4": (1 / 6) * 16 / 15, "nvint4": (0.5 / 7) * 16 / 15}


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "student-t"])
def test_round_trip_bounds(kind):
    x = example_tensor(kind, (32, 512), seed=2)
    blocks = x.reshape(32, -1, 16)
    bmax = np.abs(blocks).max(axis=-1, keepdims=True).astype(np.float64)
    for fmt, bound in ROUND_TRIP_BOUND.items():
        q = quantize(x, fmt)
        normal = (q.scales & 0x7F) >= 8
        err = np.abs(dequantize(q).reshape(blocks.shape).astype(np.float64) - blocks)
        ratio = (err / np.where(bmax > 0, bmax, 1))[normal]
        assert ratio.max() <= bound * (1 + 1e-5), (fmt, ratio.max())
    # IF4 never does worse than NVFP4 on a block, in its own binary32 error measure: the two
    # share the scale and the FP candidate, and IF4 only switches when INT is strictly better.
    fp, if4 = quantize(x, "nvfp4"), quantize(x, "if4")
    assert np.array_equal(fp.scales, if4.scales & 0x7F)
    e_fp = block_error_sum(np.square(dequantize(fp).reshape(blocks.shape) - blocks))
    e_if = block_error_sum(np.square(dequantize(if4).reshape(blocks.shape) - blocks))
    assert np.all(e_if <= e_fp)
    assert np.all((e_if < e_fp) == ((if4.scales & 0x80) != 0))
    assert error_stats(x, dequantize(if4))["snr_db"] > error_stats(x, dequantize(fp))["snr_db"]


@pytest.mark.parametrize("fmt", ["nvfp4", "nvint4"])
def test_requantizing_is_stable(fmt):
    # Quantizing a dequantized tensor gives the same codes back wherever the block's scale is
    # normal and its largest code is the top one (6 or 7), apart from -0 (0x8) turning into +0:
    # the scale then comes back within a few ulps of a grid point, and every x_s within a few
    # ulps of its grid value.
    x = example_tensor("laplace", (32, 512), seed=4)
    q = quantize(x, fmt)
    q2 = quantize(dequantize(q), fmt)
    codes = q.codes.reshape(32, -1, 16)
    if fmt == "nvfp4":
        top = np.abs(E2M1_VALUES[codes]).max(axis=-1) == 6
        codes = np.where(codes == 0x8, 0, codes)
    else:
        top = np.abs(INT4_VALUES[codes]).max(axis=-1) == 7
    stable = ((q.scales & 0x7F) >= 8) & top
    assert stable.mean() > 0.9
    assert np.array_equal(codes[stable], q2.codes.reshape(32, -1, 16)[stable])
    assert np.array_equal(q.scales[stable], q2.scales[stable])


def test_requantizing_if4_keeps_values():
    # IF4 may flip a block between two candidates that both represent it almost exactly, so
    # the codes need not come back, but the values do (to a few ulps).
    x = example_tensor("gaussian", (16, 512), seed=6)
    d1 = dequantize(quantize(x, "if4"))
    d2 = dequantize(quantize(d1, "if4"))
    assert np.allclose(d2, d1, rtol=2e-6, atol=1e-7 * float(np.abs(x).max()))


def test_error_stats():
    x = np.float32([1, -2, 3, 0] * 4)
    s = error_stats(x, x)
    assert s["mse"] == 0 and s["snr_db"] == float("inf") and s["max_abs_error"] == 0
    s = error_stats(x, x + F(0.5))
    assert s["mse"] == pytest.approx(0.25)
    assert s["snr_db"] == pytest.approx(10 * np.log10((1 + 4 + 9) / 4 / 0.25))
    assert s["max_abs_error"] == 0.5
    assert error_stats(np.zeros(4), np.ones(4))["snr_db"] == float("-inf")
    with pytest.raises(ValueError, match="differ in shape"):
        error_stats(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        error_stats(np.float32([np.nan]), np.zeros(1))


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, fmt, match", [
    (np.zeros((2, 16), np.float32), "mxfp4", "unknown format 'mxfp4'"),
    (np.zeros((2, 24), np.float32), "nvfp4", "not a multiple of the block size 16"),
    (np.float32(1.0), "nvfp4", "at least one axis"),
    (np.zeros((3, 0), np.float32), "nvfp4", "non-empty"),
    (np.arange(16), "nvfp4", "dtype int64"),
    (np.float32([np.nan] + [0] * 15), "if4", "NaN/inf"),
    (np.float32([[0] * 16, [0] * 5 + [-np.inf] + [0] * 10]), "nvint4", r"index \(1, 5\)"),
    (np.float64([1e39] + [0] * 15), "nvfp4", "NaN/inf"),
    (np.float32([1e-37] + [0] * 15), "nvfp4", "too small"),
    (np.float32([1e-44] + [0] * 15), "if4", "too small"),
    (np.float32([1e-34] + [0] * 15 + [1e-39] + [0] * 15), "nvfp4", r"1/\(decode\*scale\)"),
])
def test_bad_input(x, fmt, match):
    with pytest.raises(ValueError, match=match):
        quantize(x, fmt)


def test_power_of_two_scaling_changes_only_amax():
    # Every step scales exactly by 2^k (or by 2^2k for the squared errors) while nothing
    # leaves binary32's normal range, so codes and scales, IF4's choice included, stay put.
    x = example_tensor("laplace", (8, 256), seed=12)
    for fmt in FORMATS:
        q = quantize(x, fmt)
        for k in (-40, -7, 1, 13, 40):
            qk = quantize(x * F(2.0 ** k), fmt)
            assert qk.amax == q.amax * F(2.0 ** k)
            assert np.array_equal(qk.codes, q.codes) and np.array_equal(qk.scales, q.scales)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_tiny_and_huge_tensors():
    # amax = 1e-30 keeps every quantizer step finite; 1e30 too. IF4's squared errors
    # underflow (1e-30) or overflow (1e30) there, the errors tie, and every block stays FP4.
    x = example_tensor("gaussian", (4, 64), seed=1)
    assert quantize(x, "if4").int_fraction > 0
    for scale in (1e-30, 1e30):
        xs = (x * F(scale)).astype(np.float32)
        for fmt in FORMATS:
            q = quantize(xs, fmt)
            assert_same(q, ref_quantize(xs, fmt))
            d = dequantize(q)
            assert np.all(np.isfinite(d))
            assert error_stats(xs, d)["snr_db"] > 15
        assert quantize(xs, "if4").int_fraction == 0


def test_quantized_validation():
    codes = np.zeros((2, 32), np.uint8)
    scales = np.zeros((2, 2), np.uint8)
    q = Quantized("nvfp4", codes, scales, 1.0)
    assert q.amax.dtype == np.float32 and q.int_fraction == 0.0
    with pytest.raises(ValueError, match="unknown format"):
        Quantized("fp8", codes, scales, 1.0)
    with pytest.raises(ValueError, match="shape"):
        Quantized("nvfp4", codes, np.zeros((2, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="uint8"):
        Quantized("nvfp4", codes.astype(np.int64), scales, 1.0)
    with pytest.raises(ValueError, match="4-bit"):
        Quantized("nvfp4", codes + 16, scales, 1.0)
    with pytest.raises(ValueError, match="INT4 flag"):
        Quantized("nvfp4", codes, scales | 0x80, 1.0)
    with pytest.raises(ValueError, match="amax"):
        Quantized("if4", codes, scales, -1.0)
    with pytest.raises(ValueError, match="positive multiple"):
        Quantized("if4", np.zeros((2, 0), np.uint8), np.zeros((2, 0), np.uint8), 1.0)
    with pytest.raises(ValueError, match="needs a Quantized"):
        dequantize(codes)


# --------------------------------------------------------------------------------------------
# MAC stimulus
# --------------------------------------------------------------------------------------------

def test_stream_structure():
    a = quantize(example_tensor("gaussian", (3, 64), seed=1), "if4")
    w = quantize(example_tensor("laplace", (2, 64), seed=2), "if4")
    s = stimulus_from_quantized(a, w, "if4")
    nb = 4
    assert len(s) == 3 * 2 * nb + 1 and s.block_size == 16 and s.unit == "if4"
    assert s.en.all() and s.reset is None
    assert np.flatnonzero(s.first).tolist() == list(range(0, 3 * 2 * nb + 1, nb))
    for m in range(3):
        for n in range(2):
            for j in range(nb):
                beat = (m * 2 + n) * nb + j
                assert np.array_equal(s.a[beat], a.codes[m, 16 * j:16 * j + 16])
                assert np.array_equal(s.w[beat], w.codes[n, 16 * j:16 * j + 16])
                assert s.a_sf[beat] == a.scales[m, j] and s.w_sf[beat] == w.scales[n, j]
    assert not s.a[-1].any() and not s.w[-1].any() and s.a_sf[-1] == 0 and s.w_sf[-1] == 0
    res = run(s, strict=True)
    assert len(res) == 6
    assert res.start_beat.tolist() == list(range(0, 24, 4))
    assert res.close_beat.tolist() == list(range(4, 28, 4))


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
@pytest.mark.parametrize("kind", ["gaussian", "student-t"])
def test_mac_results_match_dequantized_matmul(unit, kind):
    a = quantize(example_tensor(kind, (6, 256), seed=8, hadamard=True), unit)
    w = quantize(example_tensor(kind, (5, 256), seed=9), unit)
    res = run(stimulus_from_quantized(a, w, unit), strict=True)
    mac = float32_from_bits(res.bits).astype(np.float64).reshape(6, 5)
    da = dequantize(a).astype(np.float64)
    dw = dequantize(w).astype(np.float64)
    want = da @ dw.T
    # Error budget in units of u = 2^-24 of sum|a_i w_i|, to first order: the MAC rounds each
    # product (1) and its INT scale factor (1), each of the 16 beats' lane adds (16) and the
    # 4 tree levels (4); dequantize rounds 3 times per operand (6, and f32(6/7)^2 is not
    # f32(36/49): 2 more). 29u; the bound allows 32u.
    magnitude = np.abs(da) @ np.abs(dw).T
    got = mac * dot_product_scale(a, w)
    assert np.all(np.abs(got - want) <= 32 * 2.0 ** -24 * magnitude)
    assert np.abs(want).min() > 0


def test_stream_errors():
    fp = quantize(np.ones((2, 32), np.float32), "nvfp4")
    i4 = quantize(np.ones((2, 32), np.float32), "if4")
    n4 = quantize(np.ones((2, 32), np.float32), "nvint4")
    with pytest.raises(ValueError, match="unknown unit 'nvint4'"):
        stimulus_from_quantized(n4, n4, "nvint4")
    with pytest.raises(ValueError, match="w is 'nvfp4'"):
        stimulus_from_quantized(i4, fp, "if4")
    with pytest.raises(ValueError, match="a is 'if4'"):
        stimulus_from_quantized(i4, fp, "nvfp4")
    with pytest.raises(ValueError, match="share K"):
        stimulus_from_quantized(fp, quantize(np.ones((2, 48), np.float32), "nvfp4"), "nvfp4")
    with pytest.raises(ValueError, match="2-D"):
        stimulus_from_quantized(quantize(np.ones((2, 2, 32), np.float32), "nvfp4"), fp, "nvfp4")
    with pytest.raises(ValueError, match="must be a Quantized"):
        stimulus_from_quantized(np.ones((2, 32)), fp, "nvfp4")


def test_dot_product_scale():
    a = quantize(np.full((1, 16), 3.0, np.float32), "nvfp4")
    w = quantize(np.full((1, 16), 7.0, np.float32), "nvint4")
    assert dot_product_scale(a, w) == pytest.approx((3 / 2688) * (7 / 3136), rel=1e-15)


# --------------------------------------------------------------------------------------------
# Tensor sources
# --------------------------------------------------------------------------------------------

def test_load_npy_and_npz(tmp_path):
    x = example_tensor("gaussian", (4, 32), seed=0)
    np.save(tmp_path / "x.npy", x)
    assert np.array_equal(load_tensor(tmp_path / "x.npy"), x)
    np.savez(tmp_path / "one.npz", only=x)
    assert np.array_equal(load_tensor(str(tmp_path / "one.npz")), x)
    np.savez(tmp_path / "two.npz", a=x, b=2 * x)
    assert np.array_equal(load_tensor(tmp_path / "two.npz", key="b"), 2 * x)
    with pytest.raises(ValueError, match="holds 2 arrays; pass key= one of: 'a', 'b'"):
        load_tensor(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="no array 'c' in two.npz; available: 'a', 'b'"):
        load_tensor(tmp_path / "two.npz", key="c")
    with pytest.raises(ValueError, match="use key="):
        load_tensor(tmp_path / "two.npz", tensor="a")
    with pytest.raises(ValueError, match="key= names an array in a .npz file"):
        load_tensor(tmp_path / "x.npy", key="a")


def test_load_safetensors(tmp_path):
    from safetensors.numpy import save_file

    x = example_tensor("laplace", (3, 48), seed=0)
    save_file({"w32": x, "w16": x.astype(np.float16), "wbf": x.astype(ml_dtypes.bfloat16)},
              tmp_path / "m.safetensors")
    p = tmp_path / "m.safetensors"
    got = load_tensor(p, tensor="w32")
    assert got.dtype == np.float32 and np.array_equal(got, x)
    got = load_tensor(p, tensor="w16")
    assert got.dtype == np.float16 and np.array_equal(got, x.astype(np.float16))
    got = load_tensor(p, tensor="wbf")
    assert got.dtype == ml_dtypes.bfloat16 and got.shape == (3, 48)
    assert np.array_equal(got.view(np.uint16), x.astype(ml_dtypes.bfloat16).view(np.uint16))
    assert np.array_equal(quantize(got, "if4").codes,
                          quantize(got.astype(np.float32), "if4").codes)
    with pytest.raises(ValueError, match="holds 3 tensors; pass tensor= one of"):
        load_tensor(p)
    with pytest.raises(ValueError, match="no tensor 'nope' in m.safetensors; available: 'w"):
        load_tensor(p, tensor="nope")
    with pytest.raises(ValueError, match="use tensor="):
        load_tensor(p, key="w32")
    save_file({"only": x}, tmp_path / "one.safetensors")
    assert np.array_equal(load_tensor(tmp_path / "one.safetensors"), x)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_tensor(tmp_path / "missing.npy")
    (tmp_path / "x.pt").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="unknown tensor file extension '.pt'"):
        load_tensor(tmp_path / "x.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_tensor(tmp_path / "bad.safetensors")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_tensor(tmp_path / "bad.npz")


def test_example_tensors():
    for kind in ("gaussian", "laplace", "student-t"):
        x = example_tensor(kind, (64, 128), seed=3)
        assert x.dtype == np.float32 and x.shape == (64, 128)
        assert np.array_equal(x, example_tensor(kind, (64, 128), seed=3))
        assert not np.array_equal(x, example_tensor(kind, (64, 128), seed=4))
        h = example_tensor(kind, (64, 128), seed=3, hadamard=True)
        # An orthonormal rotation per block keeps each block's energy.
        e0 = np.sum(x.reshape(64, 8, 16).astype(np.float64) ** 2, axis=-1)
        e1 = np.sum(h.reshape(64, 8, 16).astype(np.float64) ** 2, axis=-1)
        assert np.allclose(e0, e1, rtol=1e-5)
        assert np.allclose(h.reshape(64, 8, 16) @ hadamard_16(), x.reshape(64, 8, 16),
                           rtol=0, atol=1e-6 * np.abs(x).max())
    assert 0.9 < np.std(example_tensor("laplace", 1 << 16, seed=0)) < 1.1
    t = example_tensor("student-t", (64, 128), seed=3)
    assert np.abs(t).max() > 20 * np.sqrt(3)            # the planted outliers set the amax
    h = hadamard_16()
    assert np.allclose(h @ h.T, np.eye(16)) and set(np.unique(np.abs(h))) == {0.25}
    with pytest.raises(ValueError, match="unknown example kind 'cauchy'"):
        example_tensor("cauchy", (4, 16))
    with pytest.raises(ValueError, match="multiple of 16"):
        example_tensor("gaussian", (4, 24), hadamard=True)
    with pytest.raises(ValueError, match="positive integers"):
        example_tensor("gaussian", (4, 0))
