# amaranth: UnusedElaboratable=no
"""FPAdd, the shared rounder and the leading-zero counter against independent references.

``ref_*`` are numpy float32 / float16 sums and, for e5m2, the exact float64 sum cast by
ml_dtypes; each reference's rounding is itself checked against the exact-fraction IEEE model
in conftest. ``rtl_*`` run the Amaranth units in pysim on the same vectors.
"""

from __future__ import annotations

import re
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from amaranth.sim import Simulator

from if4mac.hdl.fp import (
    BINARY16, BINARY32, FloatFormat, FPAdd, FPRound, LeadingZeroCounter, to_verilog,
)

E5M2 = FloatFormat(5, 2)


# --- references ----------------------------------------------------------------------------

def ref_add_f32(a_bits, b_bits) -> np.ndarray:
    a = np.asarray(a_bits, dtype=np.uint32).view(np.float32)
    b = np.asarray(b_bits, dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        return (a + b).view(np.uint32).astype(np.uint64)


def ref_add_f16(a_bits, b_bits) -> np.ndarray:
    a = np.asarray(a_bits, dtype=np.uint16).view(np.float16)
    b = np.asarray(b_bits, dtype=np.uint16).view(np.float16)
    with np.errstate(all="ignore"):
        return (a + b).view(np.uint16).astype(np.uint64)


def ref_add_e5m2(a_bits, b_bits) -> np.ndarray:
    # e5m2 values span 2**-16 .. 2**15 with 3-bit significands: their float64 sum is exact.
    a = np.asarray(a_bits, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    b = np.asarray(b_bits, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    with np.errstate(all="ignore"):
        return (a + b).astype(ml_dtypes.float8_e5m2).view(np.uint8).astype(np.uint64)


def in_reduced_domain(fmt: FloatFormat, a_bits, b_bits, result_bits) -> np.ndarray:
    """Zero or normal operands whose sum rounds to zero or a finite normal. (A sum below
    2**emin is exact, so a normal or zero result means the exact sum was in range.)"""
    ok = np.ones(len(result_bits), dtype=bool)
    man_mask = np.uint64((1 << fmt.man_bits) - 1)
    for bits in (a_bits, b_bits, result_bits):
        bits = np.asarray(bits, dtype=np.uint64)
        field = (bits >> np.uint64(fmt.man_bits)) & np.uint64(fmt.exp_all_ones)
        ok &= (field != fmt.exp_all_ones) & ((field != 0) | ((bits & man_mask) == 0))
    return ok


# --- rtl -----------------------------------------------------------------------------------

def rtl_add(fp, a_bits, b_bits, *, ieee, fmt=BINARY32):
    return fp.simulate(FPAdd(fmt, ieee=ieee), a_bits, b_bits)


def rtl_lzc(width: int, values) -> list[int]:
    dut = LeadingZeroCounter(width)
    out = []

    async def testbench(ctx):
        for value in values:
            ctx.set(dut.value, value)
            out.append((ctx.get(dut.count), ctx.get(dut.zero)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return out


def rtl_round(dut: FPRound, raws: list[dict]) -> list[int]:
    out = []

    async def testbench(ctx):
        for raw in raws:
            ctx.set(dut.raw, raw)
            out.append(ctx.get(dut.result))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return out


# --- stimulus ------------------------------------------------------------------------------

def pack(fmt: FloatFormat, sign, field, man) -> np.ndarray:
    return ((np.asarray(sign, dtype=np.uint64) << np.uint64(fmt.width - 1))
            | (np.asarray(field, dtype=np.uint64) << np.uint64(fmt.man_bits))
            | np.asarray(man, dtype=np.uint64))


def edge_operands(fp, rng, fmt: FloatFormat, n: int, *, normal_only: bool = False):
    """Classes of addends where adders go wrong, ``n`` pairs per class (fields clipped to
    the normal range when ``normal_only``)."""
    e, m, p = fmt.exp_bits, fmt.man_bits, fmt.precision
    top_field = fmt.exp_all_ones - 1
    lo_field = 1 if normal_only else 0

    def fields(lo, hi, size=n):
        return rng.integers(max(lo, lo_field), min(hi, top_field) + 1, size)

    def mans(size=n):
        return rng.integers(0, 1 << m, size, dtype=np.uint64)

    def signs(size=n):
        return rng.integers(0, 2, size)

    groups = []
    # Massive cancellation: opposite signs, same or adjacent exponent, fractions that differ
    # in a few low bits (or not at all: x + (-x)).
    fa = fields(2, top_field)
    sa, ma = signs(), mans()
    flip = rng.integers(0, 1 << rng.integers(0, m + 1, n), dtype=np.uint64)
    fb = fa - (rng.random(n) < 0.3)
    groups.append((pack(fmt, sa, fa, ma), pack(fmt, 1 - sa, fb, ma ^ flip)))
    # Exponent differences around and beyond the significand width: sticky bits.
    d = np.minimum(rng.integers(p - 3, p + 41, n), top_field - 1)
    fa = d + rng.integers(1, top_field - d + 1)
    fb = fa - d
    groups.append((pack(fmt, signs(), fa, mans()), pack(fmt, signs(), fb, mans())))
    # Exact ties: the smaller addend's bits below the larger's last place are 100...0.
    fa = fields(p + 2, top_field)
    d = rng.integers(1, p + 1, n)
    big_sig = rng.integers(1 << m, 1 << p, n, dtype=np.uint64)
    du = d.astype(np.uint64)
    tie_sig = ((big_sig >> du) << du) | (np.uint64(1) << (du - np.uint64(1)))
    tie_sig |= np.uint64(1 << m)
    groups.append((pack(fmt, signs(), fa, mans()),
                   pack(fmt, signs(), fa - d, tie_sig & np.uint64((1 << m) - 1))))
    # Carries out of rounding: a fraction of all ones plus a same-sign addend worth half to
    # one of its last places always carries; around that (more ones cleared, other
    # distances) it may or may not.
    fa = fields(p + 3, top_field)
    sa = signs()
    exact_class = rng.random(n) < 0.7
    k = np.where(exact_class, 0, rng.integers(0, 4, n)).astype(np.uint64)
    d = np.where(exact_class, p, rng.integers(p - 2, p + 3, n))
    groups.append((pack(fmt, sa, fa, np.uint64((1 << m) - 1) - k), pack(fmt, sa, fa - d, mans())))
    # Signed zeros: x + (-x), ±0 + ±0, ±0 + y.
    fa, ma, sa = fields(1, top_field), mans(), signs()
    zero_sign = signs()
    groups.append((np.concatenate([pack(fmt, sa, fa, ma), pack(fmt, sa, 0, 0),
                                   pack(fmt, sa, 0, 0)]),
                   np.concatenate([pack(fmt, 1 - sa, fa, ma), pack(fmt, zero_sign, 0, 0),
                                   pack(fmt, zero_sign, fa, ma)])))
    # The top of the range: largest binade, overflow in ieee mode.
    groups.append((pack(fmt, signs(), fields(top_field - 1, top_field), mans()),
                   pack(fmt, signs(), fields(top_field - 2, top_field), mans())))
    # The bottom: subnormals, smallest normals, and their cancellations.
    groups.append((pack(fmt, signs(), fields(0, 2), mans()),
                   pack(fmt, signs(), fields(0, 3), mans())))
    return (np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups]))


def count_classes(exact, a, b) -> dict:
    """How many finite pairs are exact ties, carry, or cancel massively (>= 2 places)."""
    counts = {"tie": 0, "carry": 0, "cancel": 0}
    for x, y in zip(a.tolist(), b.tolist()):
        sx, vx = exact.decode(x)
        sy, vy = exact.decode(y)
        if not (isinstance(vx, Fraction) and isinstance(vy, Fraction)) or vx == 0 or vy == 0:
            continue
        total = exact.exact(x) + exact.exact(y)
        larger = max(exact.binade(vx), exact.binade(vy))
        if total == 0 or sx != sy and exact.binade(total) <= larger - 2:
            counts["cancel"] += 1
        if total != 0:
            counts["tie"] += exact.rest(total) == Fraction(1, 2)
            counts["carry"] += exact.carries(total)
    return counts


# --- parameters and emission ---------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: FPAdd(BINARY32.tag), "fmt"),
    (lambda: FPAdd(ieee="yes"), "ieee"),
    (lambda: FPRound(BINARY32, sig_width=0, exp_bounds=(0, 1), ieee=True), "sig_width"),
    (lambda: FPRound(BINARY32, sig_width=8, exp_bounds=(3, 1), ieee=True), "exp_bounds"),
    (lambda: LeadingZeroCounter(0), "width"),
])
def test_bad_parameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("fmt, ieee, name", [
    (BINARY32, True, "fp_add_e8_m23"),
    (BINARY32, False, "fp_add_e8_m23_reduced"),
    (BINARY16, True, "fp_add_e5_m10"),
    (E5M2, False, "fp_add_e5_m2_reduced"),
])
def test_verilog_emits(fmt, ieee, name):
    dut = FPAdd(fmt, ieee=ieee)
    assert dut.name == name and dut.latency == 0
    text = to_verilog(dut)
    header = re.search(rf"^module {name}\((.*)\);", text, re.M)
    assert header and sorted(header.group(1).split(", ")) == ["a", "b", "result"]
    for port in ("a", "b", "result"):
        assert f"put [{fmt.width - 1}:0] {port};" in text


def test_reduced_mode_has_no_special_value_logic():
    text = to_verilog(FPAdd(ieee=False))
    assert not re.search(r"is_(nan|inf|subnormal)|denorm|tiny", text)
    assert re.search(r"is_(nan|inf|subnormal)", to_verilog(FPAdd(ieee=True)))


# --- building blocks -----------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 8, 9])
def test_leading_zero_counter_exhaustive(width):
    values = range(1 << width)
    for value, (count, zero) in zip(values, rtl_lzc(width, values)):
        assert count == width - value.bit_length() and zero == (value == 0), (width, value)


@pytest.mark.parametrize("ieee", [True, False])
def test_rounder_alone_e5m2(fp, ieee):
    """FPRound fed random normalised 8-bit significands at exponents across (and, in ieee
    mode, far beyond) the format's range, against the exact model."""
    exact = fp.ExactIEEE(5, 2)
    rng = np.random.default_rng(7)
    sig_width = 8
    bounds = (-40, 40) if ieee else (E5M2.emin, E5M2.emax)
    dut = FPRound(E5M2, sig_width=sig_width, exp_bounds=bounds, ieee=ieee)
    raws, want = [], []
    for _ in range(3000):
        sig = int(rng.integers(1 << (sig_width - 1), 1 << sig_width))
        exp = int(rng.integers(bounds[0], bounds[1] + 1))
        sign = int(rng.integers(0, 2))
        value = Fraction(sig) * Fraction(2) ** (exp - (sig_width - 1)) * (-1) ** sign
        bits = exact.round(value)
        raws.append({"sig": sig, "exp": exp, "sign": sign, "is_zero": 0})
        want.append(bits)
    for sign in (0, 1):
        raws.append({"sig": int(rng.integers(0, 256)), "exp": 3, "sign": sign, "is_zero": 1})
        want.append(sign << 7)
        if ieee:
            raws.append({"sig": 0x80, "exp": 0, "sign": sign, "is_zero": 1, "is_inf": 1})
            want.append((sign << 7) | 0x7C)
            raws.append({"sig": 0x80, "exp": 0, "sign": sign, "is_zero": 1, "is_inf": 1,
                         "is_nan": 1})
            want.append(0x7E)
    got = np.array(rtl_round(dut, raws), dtype=np.uint64)
    fp.assert_same_bits(exact, got, np.array(want, dtype=np.uint64))


# --- small format, exhaustive --------------------------------------------------------------

def test_ml_dtypes_e5m2_reference_rounds_correctly(fp):
    """Before trusting ref_add_e5m2 for the sweep: it equals the exact model everywhere."""
    exact = fp.ExactIEEE(5, 2)
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    want = np.array([exact.add(x, y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.uint64)
    got = ref_add_e5m2(a, b)
    assert ((got == want) | (exact.is_nan(got) & exact.is_nan(want))).all()


def test_e5m2_ieee_exhaustive(fp):
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    fp.assert_same_bits(fp.ExactIEEE(5, 2), rtl_add(fp, a, b, ieee=True, fmt=E5M2),
                        ref_add_e5m2(a, b), a, b)


def test_e5m2_reduced_exhaustive_over_its_domain(fp):
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    want = ref_add_e5m2(a, b)
    domain = in_reduced_domain(E5M2, a, b, want)
    assert domain.sum() > 40_000
    a, b, want = a[domain], b[domain], want[domain]
    assert (want == 0).sum() >= 200 and (want == 0x80).sum() == 1      # only -0 + -0 is -0
    fp.assert_same_bits(fp.ExactIEEE(5, 2), rtl_add(fp, a, b, ieee=False, fmt=E5M2), want, a, b)


# --- binary16 -------------------------------------------------------------------------------

def test_binary16_ieee_against_numpy(fp):
    rng = np.random.default_rng(16)
    special = fp.special_bits(5, 10)
    sa, sb = (x.ravel() for x in np.meshgrid(special, special))
    ea, eb = edge_operands(fp, rng, BINARY16, 500)
    a = np.concatenate([sa, ea, fp.random_bits(rng, 10000, 5, 10)])
    b = np.concatenate([sb, eb, fp.random_bits(rng, 10000, 5, 10)])
    exact = fp.ExactIEEE(5, 10)
    want = ref_add_f16(a, b)
    # numpy's float16 add goes through float32 (24 >= 2*11 + 2 bits: the double rounding is
    # innocuous); the exact model confirms it on every vector used here.
    model = np.array([exact.add(x, y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.uint64)
    assert ((model == want) | (exact.is_nan(model) & exact.is_nan(want))).all()
    fp.assert_same_bits(exact, rtl_add(fp, a, b, ieee=True, fmt=BINARY16), want, a, b)


# --- binary32 -------------------------------------------------------------------------------

def test_binary32_ieee_against_numpy(fp):
    rng = np.random.default_rng(32)
    special = fp.special_bits(8, 23)
    sa, sb = (x.ravel() for x in np.meshgrid(special, special))
    ea, eb = edge_operands(fp, rng, BINARY32, 1200)
    a = np.concatenate([sa, ea, fp.random_bits(rng, 4000, 8, 23)])
    b = np.concatenate([sb, eb, fp.random_bits(rng, 4000, 8, 23)])
    want = ref_add_f32(a, b)
    exact = fp.ExactIEEE(8, 23)
    counts = count_classes(exact, a, b)
    assert counts["tie"] >= 600 and counts["carry"] >= 600 and counts["cancel"] >= 600, counts
    field = (want >> np.uint64(23)) & np.uint64(0xFF)
    assert ((field == 0) & ((want & 0x7FFFFF) != 0)).sum() >= 400          # subnormal sums
    assert ((want & 0x7FFFFFFF) == 0x7F800000).sum() >= 300                 # infinities
    assert exact.is_nan(want).sum() >= 150
    fp.assert_same_bits(exact, rtl_add(fp, a, b, ieee=True), want, a, b)


def test_binary32_reduced_against_numpy(fp):
    rng = np.random.default_rng(320)
    special = fp.special_bits(8, 23)
    sa, sb = (x.ravel() for x in np.meshgrid(special, special))
    ea, eb = edge_operands(fp, rng, BINARY32, 1200, normal_only=True)
    ra, rb = (fp.random_bits(rng, 4000, 8, 23, fields=(1, 254), zero_fraction=0.1)
              for _ in range(2))
    # Random operands rarely meet: also pairs within a few binades of each other.
    na = fp.random_bits(rng, 3000, 8, 23, fields=(1, 254), zero_fraction=0.05)
    nb = na ^ (fp.random_bits(rng, 3000, 8, 23, fields=(0, 3)) & np.uint64(0x81FFFFFF))
    a = np.concatenate([sa, ea, ra, na])
    b = np.concatenate([sb, eb, rb, nb])
    want = ref_add_f32(a, b)
    domain = in_reduced_domain(BINARY32, a, b, want)
    a, b, want = a[domain], b[domain], want[domain]
    assert len(a) > 12_000
    counts = count_classes(fp.ExactIEEE(8, 23), a, b)
    assert counts["tie"] >= 600 and counts["carry"] >= 600 and counts["cancel"] >= 600, counts
    assert (want == 0).sum() >= 300 and (want == 0x80000000).sum() >= 10   # +0 and -0
    fp.assert_same_bits(fp.ExactIEEE(8, 23), rtl_add(fp, a, b, ieee=False), want, a, b)
