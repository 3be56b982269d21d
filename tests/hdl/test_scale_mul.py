# amaranth: UnusedElaboratable=no
"""ScaleDecode, IntExpansionRom and ScaleMul against golden and an exact-rational model here.

ScaleMul is simulated on all 65,536 scale-byte pairs for both units (about 2-3 s each in
Amaranth's simulator) and compared bit for bit with ``golden.scale_product_table`` and with
``ref_scale_product``, which decodes E4M3 from the spec's rules into ``Fraction`` values and
rounds to binary32 with its own round-half-even: no numpy float arithmetic, nothing from hdl/.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from if4mac.golden import INT_EXPANSION, INT_EXPANSION_SQUARED, scale_product_table
from if4mac.hdl.scale_mul import (
    IntExpansionRom, ScaleDecode, ScaleMul, expansion_entry, reachable_product_fractions,
)

from .conftest import module_ports

BYTES = range(256)


# -- reference model: exact rationals and a hand-written binary32 rounder -----------------------

def ref_e4m3(code: int) -> Fraction:
    """Value of scale bits [6:0] by the spec's rules."""
    exp, man = (code >> 3) & 0xF, code & 0x7
    if exp == 15 and man == 7:
        man = 6                                         # 0x7F reads as 448
    if exp == 0:
        return Fraction(man, 8) * Fraction(1, 2 ** 6)
    return (1 + Fraction(man, 8)) * Fraction(2) ** (exp - 7)


def ref_round_binary32(x: Fraction) -> int:
    """binary32 bits of a positive rational rounded to nearest, ties to even (normal range)."""
    assert x > 0
    exp = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** exp > x:                          # the bit-length guess is one too high
        exp -= 1
    assert Fraction(2) ** exp <= x < Fraction(2) ** (exp + 1)
    assert -126 <= exp <= 127, "outside binary32's normal range"
    scaled = x / Fraction(2) ** (exp - 23)              # in [2^23, 2^24)
    sig, rest = divmod(scaled.numerator, scaled.denominator)
    rest = Fraction(rest, scaled.denominator)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and sig % 2):
        sig += 1
    if sig == 1 << 24:                                  # rounding carried into the next binade
        sig, exp = sig >> 1, exp + 1
    return (exp + 127) << 23 | (sig - (1 << 23))


def ref_value(bits: int) -> Fraction:
    """Value of normal binary32 bits."""
    exp, man = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    return (1 + Fraction(man, 2 ** 23)) * Fraction(2) ** (exp - 127)


#: f32(6/7) and f32(36/49), rounded here from the exact fractions.
REF_FACTORS = (ref_value(ref_round_binary32(Fraction(6, 7))),
               ref_value(ref_round_binary32(Fraction(36, 49))))


@functools.cache
def _ref_scale_product(a7: int, w7: int, n_int: int) -> int:
    exact = ref_e4m3(a7) * ref_e4m3(w7)
    if exact == 0:
        return 0                                        # +0, whatever the flags
    if n_int == 0:
        bits = ref_round_binary32(exact)
        assert ref_value(bits) == exact, "the plain scale product must be exact"
        return bits
    return ref_round_binary32(exact * REF_FACTORS[n_int - 1])


def ref_scale_product(unit: str, a_sf: int, w_sf: int) -> int:
    n_int = (a_sf >> 7) + (w_sf >> 7) if unit == "if4" else 0
    return _ref_scale_product(a_sf & 0x7F, w_sf & 0x7F, n_int)


@functools.cache
def ref_scale_products(unit: str) -> np.ndarray:
    out = np.array([[ref_scale_product(unit, a, w) for w in BYTES] for a in BYTES],
                   dtype=np.uint32)
    out.setflags(write=False)
    return out


# -- RTL, simulated --------------------------------------------------------------------------------

@functools.cache
def rtl_scale_products(unit: str) -> np.ndarray:
    """All 65,536 (a_sf, w_sf) pairs through ScaleMul(unit); shape (256, 256) uint32."""
    dut = ScaleMul(unit)
    out = np.zeros((256, 256), dtype=np.uint32)

    async def testbench(ctx):
        for a in BYTES:
            ctx.set(dut.a_sf, a)
            for w in BYTES:
                ctx.set(dut.w_sf, w)
                out[a, w] = ctx.get(dut.sf)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    out.setflags(write=False)
    return out


def rtl_scale_decode() -> list[tuple[int, int, int]]:
    """(zero, frac, exp) of ScaleDecode for all 128 E4M3 codes."""
    dut = ScaleDecode()
    result = []

    async def testbench(ctx):
        for code in range(128):
            ctx.set(dut.code, code)
            scale = ctx.get(dut.scale)
            result.append((scale.zero, scale.frac, scale.exp))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return result


def rtl_expansion_rom(rom: IntExpansionRom) -> dict[tuple[int, int], tuple[int, int]]:
    """(man, dec) for every (squared, frac) input of the ROM."""
    result = {}

    async def testbench(ctx):
        for squared in (0, 1):
            ctx.set(rom.squared, squared)
            for frac in range(128):
                ctx.set(rom.frac, frac)
                result[squared, frac] = (ctx.get(rom.man), ctx.get(rom.dec))

    sim = Simulator(rom)
    sim.add_testbench(testbench)
    sim.run()
    return result


# -- tests --------------------------------------------------------------------------------------

def test_ref_factors_match_golden_constants():
    assert REF_FACTORS[0] == Fraction(float(INT_EXPANSION))
    assert REF_FACTORS[1] == Fraction(float(INT_EXPANSION_SQUARED))


def test_scale_decode_exhaustive():
    for code, (zero, frac, exp) in enumerate(rtl_scale_decode()):
        value = ref_e4m3(code)
        assert zero == (value == 0), f"code {code:#04x}: zero flag"
        if not zero:
            assert (1 + Fraction(frac, 8)) * Fraction(2) ** exp == value, \
                f"code {code:#04x}: 1.{frac:03b}b * 2^{exp} is not {value}"


def test_expansion_rom_exhaustive():
    """The full 128-entry table: rounded significand and exponent step, from exact rationals."""
    for (squared, frac), (man, dec) in rtl_expansion_rom(IntExpansionRom()).items():
        bits = ref_round_binary32(Fraction(128 + frac, 128) * REF_FACTORS[squared])
        assert man == bits & 0x7FFFFF, f"squared={squared} frac={frac}: mantissa"
        assert dec == 127 - (bits >> 23), f"squared={squared} frac={frac}: exponent step"


def test_pruned_rom_keeps_every_reachable_entry():
    fracs = reachable_product_fractions()
    # Brute force over the integer significands 1..15 (subnormals included, unnormalised).
    expected = set()
    for a in range(1, 16):
        for w in range(1, 16):
            p = a * w
            expected.add((p << (8 - p.bit_length())) & 0x7F)
    assert set(fracs) == expected
    got = rtl_expansion_rom(IntExpansionRom(fracs))
    for squared in (0, 1):
        for frac in fracs:
            bits = ref_round_binary32(Fraction(128 + frac, 128) * REF_FACTORS[squared])
            assert got[squared, frac] == (bits & 0x7FFFFF, 127 - (bits >> 23))


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_scale_mul_exhaustive_vs_golden(unit):
    expected = scale_product_table(unit).view(np.uint32)
    got = rtl_scale_products(unit)
    bad = np.argwhere(got != expected)
    assert not len(bad), (f"{len(bad)} mismatches, first (a_sf, w_sf) = {tuple(bad[0])}: "
                          f"rtl {got[tuple(bad[0])]:#010x}, golden {expected[tuple(bad[0])]:#010x}")


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_scale_mul_exhaustive_vs_ref(unit):
    expected = ref_scale_products(unit)
    got = rtl_scale_products(unit)
    bad = np.argwhere(got != expected)
    assert not len(bad), (f"{len(bad)} mismatches, first (a_sf, w_sf) = {tuple(bad[0])}: "
                          f"rtl {got[tuple(bad[0])]:#010x}, ref {expected[tuple(bad[0])]:#010x}")


# Hand-derived corners. 448 = 7 * 2^6, so 448^2 * 36/49 = 2^12 * 36 and 448^2 * 6/7 = 2^12 * 42:
# the rounded factor lands back on those exactly. A power of two keeps f32(36/49)'s mantissa.
EDGE_CASES = [
    # unit, a_sf, w_sf, sf
    ("nvfp4", 0x7F, 0x7F, 0x48440000),   # 448 * 448 = 200704
    ("nvfp4", 0x7E, 0x7F, 0x48440000),   # 0x7F is 0x7E
    ("nvfp4", 0x01, 0x01, 0x36800000),   # 2^-9 * 2^-9 = 2^-18
    ("nvfp4", 0x04, 0x7E, 0x40600000),   # subnormal 2^-7 * 448 = 3.5
    ("nvfp4", 0x38, 0x38, 0x3F800000),   # 1 * 1
    ("nvfp4", 0xB8, 0xB8, 0x3F800000),   # NVFP4 ignores bit 7
    ("nvfp4", 0x00, 0x7F, 0x00000000),   # zero
    ("if4", 0xB8, 0x38, 0x3F5B6DB7),     # 1 * 1 * f32(6/7)
    ("if4", 0x38, 0xB8, 0x3F5B6DB7),
    ("if4", 0xB8, 0xB8, 0x3F3C14E6),     # 1 * 1 * f32(36/49)
    ("if4", 0x81, 0x81, 0x363C14E6),     # 2^-18 * f32(36/49): mantissa kept, exponent 108
    ("if4", 0xFF, 0xFF, 0x48100000),     # 448^2 * f32(36/49) rounds to 147456
    ("if4", 0xFF, 0x7F, 0x48280000),     # 448^2 * f32(6/7) rounds to 172032
    ("if4", 0x80, 0xFF, 0x00000000),     # an INT4 block with scale 0: +0, not -0
    ("if4", 0x80, 0x80, 0x00000000),
    ("if4", 0x38, 0x38, 0x3F800000),     # no INT4 block: exact product
]


@pytest.mark.parametrize("unit,a_sf,w_sf,sf", EDGE_CASES)
def test_scale_mul_edge_cases(unit, a_sf, w_sf, sf):
    assert ref_scale_product(unit, a_sf, w_sf) == sf
    assert rtl_scale_products(unit)[a_sf, w_sf] == sf


def test_expansion_entry_rejects_bad_frac():
    with pytest.raises(ValueError, match="frac 128 is outside 0..127"):
        expansion_entry(128, INT_EXPANSION)
    with pytest.raises(ValueError, match="frac 300 is outside 0..127"):
        IntExpansionRom([0, 300])


def test_bad_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown unit 'int8'"):
        ScaleMul("int8")


def test_ports_and_latency():
    for unit in ("nvfp4", "if4"):
        dut = ScaleMul(unit)
        assert set(dut.signature.members) == {"a_sf", "w_sf", "sf"}
        assert dut.latency == 0
    assert ScaleDecode().latency == 0
    assert IntExpansionRom().latency == 0


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_emits_verilog(unit):
    text = verilog.convert(ScaleMul(unit), name=f"scale_mul_{unit}")
    # The module header, exactly: "sf" is its own 32-bit output, not a substring of "a_sf".
    assert module_ports(text, f"scale_mul_{unit}") == {
        "a_sf": ("input", 8), "w_sf": ("input", 8), "sf": ("output", 32)}
