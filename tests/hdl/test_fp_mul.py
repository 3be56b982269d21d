# amaranth: UnusedElaboratable=no
"""FPMul (and the operand decoder it shares with FPAdd) against independent references.

``ref_*`` are numpy float32 / float16 products and, for e5m2, the exact float64 product
cast by ml_dtypes; each reference's rounding is itself checked against the exact-fraction
IEEE model in conftest. ``rtl_*`` run the Amaranth units in pysim on the same vectors.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from if4mac.golden import lane_product_table, scale_product_table
from if4mac.hdl.fp import BINARY16, BINARY32, FloatFormat, FPDecode, FPMul, to_verilog

E5M2 = FloatFormat(5, 2)


# --- references ----------------------------------------------------------------------------

def ref_mul_f32(a_bits, b_bits) -> np.ndarray:
    a = np.asarray(a_bits, dtype=np.uint32).view(np.float32)
    b = np.asarray(b_bits, dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        return (a * b).view(np.uint32).astype(np.uint64)


def ref_mul_f16(a_bits, b_bits) -> np.ndarray:
    a = np.asarray(a_bits, dtype=np.uint16).view(np.float16)
    b = np.asarray(b_bits, dtype=np.uint16).view(np.float16)
    with np.errstate(all="ignore"):
        return (a * b).view(np.uint16).astype(np.uint64)


def ref_mul_e5m2(a_bits, b_bits) -> np.ndarray:
    # e5m2 values are 3-bit significands: their float64 product is exact, rounded once.
    a = np.asarray(a_bits, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    b = np.asarray(b_bits, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    with np.errstate(all="ignore"):
        return (a * b).astype(ml_dtypes.float8_e5m2).view(np.uint8).astype(np.uint64)


def ref_mul_f16_f32(p_bits, sf_bits) -> np.ndarray:
    """The MAC's ``m = rne32(p * sf)``: binary16 widened exactly, one binary32 multiply."""
    p = np.asarray(p_bits, dtype=np.uint16).view(np.float16).astype(np.float32)
    sf = np.asarray(sf_bits, dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        return (p * sf).view(np.uint32).astype(np.uint64)


def exact_product_f64(a_bits, b_bits, a_dtype, b_dtype) -> np.ndarray:
    """The exact product in float64 (exact for significands of up to 53 bits together)."""
    with np.errstate(all="ignore"):     # signalling NaNs raise "invalid" when widened
        a = np.asarray(a_bits).astype(a_dtype[0]).view(a_dtype[1]).astype(np.float64)
        b = np.asarray(b_bits).astype(b_dtype[0]).view(b_dtype[1]).astype(np.float64)
        return a * b


def in_reduced_domain(fmt_in: list[FloatFormat], operands, exact, result_bits, out_fmt):
    """Reduced mode's domain: zero or normal operands, product zero or >= 2**emin, finite."""
    ok = np.ones(len(result_bits), dtype=bool)
    for fmt, bits in zip(fmt_in, operands):
        bits = np.asarray(bits, dtype=np.uint64)
        field = (bits >> np.uint64(fmt.man_bits)) & np.uint64(fmt.exp_all_ones)
        man = bits & np.uint64((1 << fmt.man_bits) - 1)
        ok &= (field != fmt.exp_all_ones) & ((field != 0) | (man == 0))
    ok &= (exact == 0) | (np.abs(exact) >= 2.0 ** out_fmt.emin)
    result_field = (result_bits >> np.uint64(out_fmt.man_bits)) & np.uint64(out_fmt.exp_all_ones)
    return ok & (result_field != out_fmt.exp_all_ones)


# --- rtl -----------------------------------------------------------------------------------

def rtl_mul(fp, a_bits, b_bits, *, ieee, a_fmt=BINARY32, b_fmt=BINARY32, out_fmt=BINARY32):
    return fp.simulate(FPMul(a_fmt, b_fmt, out_fmt, ieee=ieee), a_bits, b_bits)


def rtl_decode(fmt: FloatFormat, bits, *, ieee: bool) -> list:
    dut = FPDecode(fmt, ieee=ieee)
    out = []

    async def testbench(ctx):
        for word in bits:
            ctx.set(dut.bits, int(word))
            out.append(ctx.get(dut.raw))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return out


# --- stimulus ------------------------------------------------------------------------------

def field_bits(rng, n: int, fmt: FloatFormat, fields: tuple[int, int]) -> np.ndarray:
    """Random exponent fields in the inclusive range ``fields``, in place in the packing."""
    return rng.integers(fields[0], fields[1] + 1, n).astype(np.uint64) << np.uint64(fmt.man_bits)


def tie_operands(rng, n: int, fmt: FloatFormat, fields) -> tuple[np.ndarray, np.ndarray]:
    """Operands whose exact product has ``precision + 1`` significant bits, the last one set:
    a tie wherever the product is normal. Odd factors of about half the precision each."""
    p = fmt.precision
    a_sig, b_sig = [], []
    while len(a_sig) < n:
        x = int(rng.integers(1 << (p // 2 - 1), 1 << (p // 2 + 2))) | 1
        y = int(rng.integers(1 << (p // 2 - 1), 1 << (p // 2 + 2))) | 1
        if (x * y).bit_length() == p + 1 and max(x.bit_length(), y.bit_length()) <= p:
            a_sig.append(x << (p - x.bit_length()))
            b_sig.append(y << (p - y.bit_length()))
    hidden = np.uint64(1 << fmt.man_bits)
    a_man = np.array(a_sig, dtype=np.uint64) - hidden
    b_man = np.array(b_sig, dtype=np.uint64) - hidden
    sign = np.uint64(1 << (fmt.width - 1))
    a = field_bits(rng, n, fmt, fields[0]) | a_man
    b = field_bits(rng, n, fmt, fields[1]) | b_man
    a |= rng.integers(0, 2, n).astype(np.uint64) * sign
    b |= rng.integers(0, 2, n).astype(np.uint64) * sign
    return a, b


def carry_operands(rng, n: int, fmt: FloatFormat, fields) -> tuple[np.ndarray, np.ndarray]:
    """Significands just under 2 times just over 1 (and under 1 x under 1): products that sit
    next to a power of two, where rounding often carries into the next binade."""
    top = (1 << fmt.man_bits) - 1
    near_top = rng.integers(max(0, top - 40), top + 1, n).astype(np.uint64)
    near_one = rng.integers(0, min(40, top) + 1, n).astype(np.uint64)
    swap = rng.random(n) < 0.5
    a_man = np.where(swap, near_one, near_top)
    b_man = np.where(swap, near_top, near_one)
    both_top = rng.random(n) < 0.3
    b_man[both_top] = near_top[both_top]
    a = field_bits(rng, n, fmt, fields[0]) | a_man
    b = field_bits(rng, n, fmt, fields[1]) | b_man
    return a, b


def binary32_ieee_vectors(fp, rng) -> tuple[np.ndarray, np.ndarray]:
    special = fp.special_bits(8, 23)
    pairs_a, pairs_b = np.meshgrid(special, special)
    groups = [
        (pairs_a.ravel(), pairs_b.ravel()),
        (fp.random_bits(rng, 3000, 8, 23), fp.random_bits(rng, 3000, 8, 23)),
        # Exponent sums around emin: subnormal results, underflow to zero, ties among them.
        tuple(fp.random_bits(rng, 1500, 8, 23, fields=(1, 60)) for _ in range(2)),
        # Subnormal times normal, both ways.
        (fp.random_bits(rng, 800, 8, 23, fields=(0, 0)),
         fp.random_bits(rng, 800, 8, 23, fields=(100, 254))),
        # Exponent sums around emax: overflow to infinity.
        tuple(fp.random_bits(rng, 800, 8, 23, fields=(190, 254)) for _ in range(2)),
        tie_operands(rng, 800, BINARY32, [(60, 190), (60, 190)]),
        tie_operands(rng, 400, BINARY32, [(1, 40), (60, 120)]),      # ties in the subnormal range
        carry_operands(rng, 800, BINARY32, [(60, 190), (60, 190)]),
        carry_operands(rng, 300, BINARY32, [(254, 254), (127, 127)]),  # carry at emax: overflow
    ]
    return (np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups]))


# --- parameters and emission ---------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: FloatFormat(1, 4), "exp_bits"),
    (lambda: FloatFormat(8, 0), "man_bits"),
    (lambda: FloatFormat(8.0, 23), "exp_bits"),
    (lambda: FPMul("binary32"), "a_fmt"),
    (lambda: FPMul(out_fmt=None), "out_fmt"),
    (lambda: FPMul(ieee=1), "ieee"),
    (lambda: FPDecode(BINARY16.tag, ieee=True), "fmt"),
])
def test_bad_parameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("args, ieee, name", [
    ((), True, "fp_mul_e8m23_e8m23_to_e8m23"),
    ((), False, "fp_mul_e8m23_e8m23_to_e8m23_reduced"),
    ((BINARY16, BINARY32, BINARY32), False, "fp_mul_e5m10_e8m23_to_e8m23_reduced"),
    ((BINARY16, BINARY32, BINARY32), True, "fp_mul_e5m10_e8m23_to_e8m23"),
    ((E5M2, E5M2, E5M2), True, "fp_mul_e5m2_e5m2_to_e5m2"),
])
def test_verilog_emits(args, ieee, name):
    dut = FPMul(*args, ieee=ieee)
    assert dut.name == name and dut.latency == 0
    text = to_verilog(dut)
    header = re.search(rf"^module {name}\((.*)\);", text, re.M)
    assert header and sorted(header.group(1).split(", ")) == ["a", "b", "result"]
    for port, fmt in (("a", dut.a_fmt), ("b", dut.b_fmt), ("result", dut.out_fmt)):
        assert f"put [{fmt.width - 1}:0] {port};" in text


def test_significand_multiplier_is_only_as_wide_as_its_operands():
    # binary16 x binary32 needs an 11x24 multiplier, not 24x24: look at the $mul cell.
    text = rtlil.convert(FPMul(BINARY16, BINARY32, BINARY32, ieee=False))
    cells = re.findall(r"cell \$mul \S+\n(.*?)\n  end", text, re.S)
    widths = [tuple(int(w) for w in re.findall(r"parameter \\[AB]_WIDTH (\d+)", c)) for c in cells]
    assert widths == [(11, 24)]


# --- decode --------------------------------------------------------------------------------

@pytest.mark.parametrize("ieee", [True, False])
def test_decode_e5m2_exhaustive(fp, ieee):
    exact = fp.ExactIEEE(5, 2)
    codes = range(256)
    for code, raw in zip(codes, rtl_decode(E5M2, codes, ieee=ieee)):
        sign, value = exact.decode(code)
        field = (code >> 2) & 31
        assert raw.sign == sign
        if ieee:
            flags = (raw.is_nan, raw.is_inf, raw.is_zero, raw.is_subnormal)
            want = (value == "nan", value == "inf", value == 0,
                    field == 0 and value != 0)
            assert flags == want, f"{code:#04x}: flags {flags}, want {want}"
            if value == 0:
                assert raw.sig == 0, f"{code:#04x}"
        else:
            assert raw.is_zero == (field == 0), f"{code:#04x}"
            if field == 0:       # zero, or (out of domain) a subnormal read as 0.f * 2**(emin-1)
                assert (raw.sig, raw.exp) == (code & 3, E5M2.emin - 1), f"{code:#04x}"
                continue
            if field == 31:      # out of domain: documented as the finite 1.f * 2**16
                value = (1 + (code & 3) / 4) * 2.0 ** 16
        if isinstance(value, str) or value == 0:
            continue
        # Finite nonzero: value == sig * 2**(exp - 2), sig normalised to 0b1xx.
        assert raw.sig >> 2 == 1, f"{code:#04x}: sig {raw.sig:#b} not normalised"
        assert raw.sig * 2.0 ** (raw.exp - 2) == float(value), f"{code:#04x}"


# --- small format, exhaustive --------------------------------------------------------------

def test_ml_dtypes_e5m2_reference_rounds_correctly(fp):
    """Before trusting ref_mul_e5m2 for the sweep: it equals the exact model everywhere."""
    exact = fp.ExactIEEE(5, 2)
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    want = np.array([exact.mul(x, y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.uint64)
    got = ref_mul_e5m2(a, b)
    ok = (got == want) | (exact.is_nan(got) & exact.is_nan(want))
    assert ok.all()


def test_e5m2_ieee_exhaustive(fp):
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    fp.assert_same_bits(fp.ExactIEEE(5, 2), rtl_mul(fp, a, b, ieee=True, a_fmt=E5M2,
                                                    b_fmt=E5M2, out_fmt=E5M2),
                        ref_mul_e5m2(a, b), a, b)


def test_e5m2_reduced_exhaustive_over_its_domain(fp):
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    want = ref_mul_e5m2(a, b)
    dtype = (np.uint8, ml_dtypes.float8_e5m2)
    domain = in_reduced_domain([E5M2, E5M2], [a, b], exact_product_f64(a, b, dtype, dtype),
                               want, E5M2)
    assert domain.sum() > 25_000
    a, b, want = a[domain], b[domain], want[domain]
    got = rtl_mul(fp, a, b, ieee=False, a_fmt=E5M2, b_fmt=E5M2, out_fmt=E5M2)
    fp.assert_same_bits(fp.ExactIEEE(5, 2), got, want, a, b)


# --- binary16 -------------------------------------------------------------------------------

def test_binary16_ieee_against_numpy(fp):
    rng = np.random.default_rng(16)
    special = fp.special_bits(5, 10)
    sa, sb = (x.ravel() for x in np.meshgrid(special, special))
    ta, tb = tie_operands(rng, 600, BINARY16, [(5, 26), (5, 26)])
    ca, cb = carry_operands(rng, 600, BINARY16, [(5, 26), (5, 26)])
    a = np.concatenate([sa, ta, ca, fp.random_bits(rng, 10000, 5, 10),
                        fp.random_bits(rng, 1500, 5, 10, fields=(0, 12))])
    b = np.concatenate([sb, tb, cb, fp.random_bits(rng, 10000, 5, 10),
                        fp.random_bits(rng, 1500, 5, 10, fields=(0, 12))])
    exact = fp.ExactIEEE(5, 10)
    want = ref_mul_f16(a, b)
    # numpy's float16 multiply (float32 product, rounded to half) is what the exact model says.
    model = np.array([exact.mul(x, y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.uint64)
    assert ((model == want) | (exact.is_nan(model) & exact.is_nan(want))).all()
    fp.assert_same_bits(exact, rtl_mul(fp, a, b, ieee=True, a_fmt=BINARY16, b_fmt=BINARY16,
                                       out_fmt=BINARY16), want, a, b)


# --- binary32 -------------------------------------------------------------------------------

def test_binary32_ieee_against_numpy(fp):
    rng = np.random.default_rng(32)
    a, b = binary32_ieee_vectors(fp, rng)
    want = ref_mul_f32(a, b)
    exact = fp.ExactIEEE(8, 23)
    # The edge groups must really hold what they claim.
    finite = ~(exact.is_nan(a) | exact.is_nan(b)
               | ((a & 0x7FFFFFFF) == 0x7F800000) | ((b & 0x7FFFFFFF) == 0x7F800000))
    products = [exact.exact(x) * exact.exact(y)
                for x, y in zip(a[finite].tolist(), b[finite].tolist())]
    ties = sum(p != 0 and exact.rest(p) == 0.5 for p in products)
    carries = sum(exact.carries(p) for p in products)
    field = (want >> np.uint64(23)) & np.uint64(0xFF)
    assert ties >= 800 and carries >= 300, (ties, carries)
    assert ((field == 0) & ((want & 0x7FFFFF) != 0)).sum() >= 500       # subnormal results
    assert ((want & 0x7FFFFFFF) == 0x7F800000).sum() >= 500              # infinities
    assert exact.is_nan(want).sum() >= 200
    fp.assert_same_bits(exact, rtl_mul(fp, a, b, ieee=True), want, a, b)


def test_binary32_reduced_against_numpy(fp):
    rng = np.random.default_rng(320)
    special = fp.special_bits(8, 23)
    sa, sb = (x.ravel() for x in np.meshgrid(special, special))
    ta, tb = tie_operands(rng, 800, BINARY32, [(64, 190), (64, 190)])
    ca, cb = carry_operands(rng, 800, BINARY32, [(64, 190), (64, 190)])
    # Edges of the domain: products just above 2**emin and just below overflow.
    la, lb = (fp.random_bits(rng, 1000, 8, 23, fields=(1, 70)) for _ in range(2))
    ha, hb = (fp.random_bits(rng, 1000, 8, 23, fields=(180, 254)) for _ in range(2))
    ra, rb = (fp.random_bits(rng, 4000, 8, 23, fields=(40, 214), zero_fraction=0.1)
              for _ in range(2))
    a = np.concatenate([sa, ta, ca, la, ha, ra])
    b = np.concatenate([sb, tb, cb, lb, hb, rb])
    want = ref_mul_f32(a, b)
    dtype = (np.uint32, np.float32)
    domain = in_reduced_domain([BINARY32, BINARY32], [a, b],
                               exact_product_f64(a, b, dtype, dtype), want, BINARY32)
    a, b, want = a[domain], b[domain], want[domain]
    assert len(a) > 5500
    assert (want & 0x7FFFFFFF == 0).sum() >= 300                      # signed zero products
    assert ((want >> np.uint64(23)) & np.uint64(0xFF) == 1).sum() >= 50   # smallest binade
    assert ((want >> np.uint64(23)) & np.uint64(0xFF) == 254).sum() >= 50  # largest binade
    fp.assert_same_bits(fp.ExactIEEE(8, 23), rtl_mul(fp, a, b, ieee=False), want, a, b)


# --- the MAC's mixed multiply: binary16 x binary32 -> binary32 ------------------------------

def test_mixed_reduced_on_the_mac_datapath(fp):
    """m = rne32(p * sf) for every reachable (p, sf) pair: each distinct lane product of
    either unit against each distinct scale product of either unit, 81 x 2,524 = 204,444
    pairs, exhaustively (about 15 s of pysim)."""
    p_all = np.concatenate([lane_product_table(u).ravel() for u in ("nvfp4", "if4")])
    sf_all = np.concatenate([scale_product_table(u).ravel() for u in ("nvfp4", "if4")])
    p_codes = np.unique(p_all.view(np.uint16))
    sf_codes = np.unique(sf_all.view(np.uint32))
    p, sf = (x.ravel().astype(np.uint64) for x in np.meshgrid(p_codes, sf_codes, indexing="ij"))
    # The count is derived from the tables above, and pinned so a shrinking table is noticed.
    assert (len(p_codes), len(sf_codes), len(p)) == (81, 2524, 204_444)
    want = ref_mul_f16_f32(p, sf)
    got = rtl_mul(fp, p, sf, ieee=False, a_fmt=BINARY16, b_fmt=BINARY32, out_fmt=BINARY32)
    fp.assert_same_bits(fp.ExactIEEE(8, 23), got, want, p, sf)


def test_mixed_reduced_against_numpy(fp):
    rng = np.random.default_rng(1633)
    p = fp.random_bits(rng, 5000, 5, 10, fields=(1, 30), zero_fraction=0.05)
    sf = fp.random_bits(rng, 5000, 8, 23, fields=(1, 254), zero_fraction=0.05)
    want = ref_mul_f16_f32(p, sf)
    domain = in_reduced_domain([BINARY16, BINARY32], [p, sf],
                               exact_product_f64(p, sf, (np.uint16, np.float16),
                                                 (np.uint32, np.float32)), want, BINARY32)
    p, sf, want = p[domain], sf[domain], want[domain]
    assert len(p) > 4500
    got = rtl_mul(fp, p, sf, ieee=False, a_fmt=BINARY16, b_fmt=BINARY32, out_fmt=BINARY32)
    fp.assert_same_bits(fp.ExactIEEE(8, 23), got, want, p, sf)


def test_mixed_ieee_against_numpy(fp):
    rng = np.random.default_rng(1634)
    s16, s32 = fp.special_bits(5, 10), fp.special_bits(8, 23)
    sp, ssf = (x.ravel() for x in np.meshgrid(s16, s32))
    p = np.concatenate([sp, fp.random_bits(rng, 3000, 5, 10),
                        fp.random_bits(rng, 1000, 5, 10, fields=(0, 3))])
    sf = np.concatenate([ssf, fp.random_bits(rng, 3000, 8, 23),
                         fp.random_bits(rng, 1000, 8, 23, fields=(1, 20))])
    want = ref_mul_f16_f32(p, sf)
    got = rtl_mul(fp, p, sf, ieee=True, a_fmt=BINARY16, b_fmt=BINARY32, out_fmt=BINARY32)
    fp.assert_same_bits(fp.ExactIEEE(8, 23), got, want, p, sf)
