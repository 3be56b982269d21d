# amaranth: UnusedElaboratable=no
"""ElementDecode and LaneMul against golden's lane-product table and a scalar model written here.

Every input is covered: 16 x 16 code pairs x 4 INT flag combinations for IF4, 256 pairs for
NVFP4. ``ref_*`` functions decode codes from the spec's bit rules in plain Python; ``rtl_*``
functions run the Amaranth simulator on the same inputs.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from if4mac.golden import lane_product_table
from if4mac.hdl.lane_mul import RAW_EXP_BIAS, ElementDecode, LaneMul

from .conftest import module_ports

CODES = range(16)


# -- reference model: the spec's rules, nothing taken from golden/ or hdl/ ---------------------

def ref_element(code: int, is_int: bool) -> tuple[float, bool]:
    """(value, negative) of an element code; ``negative`` carries the sign of a zero."""
    if is_int:
        value = code - 16 if code >= 8 else code      # two's complement; 0x8 computes as -8
        return float(value), value < 0
    negative = bool(code & 0x8)
    exp, man = (code >> 1) & 3, code & 1
    mag = man / 2 if exp == 0 else (1 + man / 2) * 2.0 ** (exp - 1)
    return (-mag if negative else mag), negative


def ref_lane_product(a: int, w: int, a_int: bool, w_int: bool) -> int:
    """binary16 bits of the exact product; a zero product gets sign(a) xor sign(w)."""
    av, a_neg = ref_element(a, a_int)
    wv, w_neg = ref_element(w, w_int)
    mag = abs(av) * abs(wv)                            # exact: small dyadic numbers
    value = math.copysign(mag, -1.0 if a_neg != w_neg else 1.0)
    half = np.float16(value)
    assert float(half) == value, "the product must be exact in binary16"
    return int(half.view(np.uint16))


def ref_lane_products(unit: str) -> np.ndarray:
    """Shape (2, 2, 16, 16) [a_int, w_int, a, w] uint16; NVFP4 ignores the flags."""
    out = np.zeros((2, 2, 16, 16), dtype=np.uint16)
    for a_int in (0, 1):
        for w_int in (0, 1):
            for a in CODES:
                for w in CODES:
                    use = unit == "if4"
                    out[a_int, w_int, a, w] = ref_lane_product(a, w, use and a_int, use and w_int)
    return out


# -- RTL, simulated ------------------------------------------------------------------------------

@functools.cache
def rtl_lane_products(unit: str) -> np.ndarray:
    """Every input of LaneMul(unit), simulated; NVFP4's flag planes repeat its one table."""
    dut = LaneMul(unit)
    flags = [(0, 0), (0, 1), (1, 0), (1, 1)] if unit == "if4" else [(0, 0)]
    out = np.zeros((2, 2, 16, 16), dtype=np.uint16)

    async def testbench(ctx):
        for a_int, w_int in flags:
            if unit == "if4":
                ctx.set(dut.a_int, a_int)
                ctx.set(dut.w_int, w_int)
            for a in CODES:
                for w in CODES:
                    ctx.set(dut.a, a)
                    ctx.set(dut.w, w)
                    out[a_int, w_int, a, w] = ctx.get(dut.p)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    if unit == "nvfp4":
        out[:] = out[0, 0]
    out.setflags(write=False)
    return out


def rtl_element_decode(unit: str) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(sign, sig, exp) for every (is_int, code) of ElementDecode(unit)."""
    dut = ElementDecode(unit)
    result = {}

    async def testbench(ctx):
        for is_int in ((0, 1) if unit == "if4" else (0,)):
            if unit == "if4":
                ctx.set(dut.is_int, is_int)
            for code in CODES:
                ctx.set(dut.code, code)
                elem = ctx.get(dut.elem)
                result[is_int, code] = (elem.sign, elem.sig, elem.exp)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return result


# -- tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_element_decode_exhaustive(unit):
    for (is_int, code), (sign, sig, exp) in rtl_element_decode(unit).items():
        value, negative = ref_element(code, bool(is_int))
        assert sign == negative, f"{unit} is_int={is_int} code {code:#x}: sign"
        assert (-1) ** sign * sig * 2.0 ** (exp - RAW_EXP_BIAS) == value, \
            f"{unit} is_int={is_int} code {code:#x}: sig {sig} exp {exp} is not {value}"


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_lane_mul_exhaustive_vs_golden(unit):
    expected = lane_product_table(unit).view(np.uint16)
    got = rtl_lane_products(unit)
    bad = np.argwhere(got != expected)
    assert not len(bad), (f"{len(bad)} mismatches, first [a_int, w_int, a, w] = {bad[0]}: "
                          f"rtl {got[tuple(bad[0])]:#06x}, golden {expected[tuple(bad[0])]:#06x}")


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_lane_mul_exhaustive_vs_ref(unit):
    expected = ref_lane_products(unit)
    got = rtl_lane_products(unit)
    bad = np.argwhere(got != expected)
    assert not len(bad), (f"{len(bad)} mismatches, first [a_int, w_int, a, w] = {bad[0]}: "
                          f"rtl {got[tuple(bad[0])]:#06x}, ref {expected[tuple(bad[0])]:#06x}")


# Hand-derived binary16 bit patterns for the corners: signed zeros, -8, the largest products.
EDGE_CASES = [
    # unit, a_int, w_int, a, w, p
    ("nvfp4", 0, 0, 0x0, 0x0, 0x0000),   # +0 * +0
    ("nvfp4", 0, 0, 0x8, 0x0, 0x8000),   # -0 * +0 = -0
    ("nvfp4", 0, 0, 0x8, 0x8, 0x0000),   # -0 * -0 = +0
    ("nvfp4", 0, 0, 0x8, 0x7, 0x8000),   # -0 * 6 = -0
    ("nvfp4", 0, 0, 0x1, 0x1, 0x3400),   # 0.5 * 0.5 = 0.25
    ("nvfp4", 0, 0, 0x7, 0xF, 0xD080),   # 6 * -6 = -36
    ("nvfp4", 0, 0, 0x3, 0x5, 0x4480),   # 1.5 * 3 = 4.5
    ("if4", 1, 1, 0x8, 0x8, 0x5400),     # -8 * -8 = 64
    ("if4", 1, 1, 0x8, 0x7, 0xD300),     # -8 * 7 = -56
    ("if4", 1, 0, 0x0, 0x8, 0x8000),     # INT +0 * E2M1 -0 = -0
    ("if4", 0, 1, 0x8, 0x0, 0x8000),     # E2M1 -0 * INT +0 = -0
    ("if4", 1, 0, 0xF, 0x8, 0x0000),     # INT -1 * E2M1 -0 = +0
    ("if4", 1, 0, 0x8, 0x7, 0xD200),     # INT -8 * E2M1 6 = -48
    ("if4", 0, 1, 0x1, 0x1, 0x3800),     # E2M1 0.5 * INT 1 = 0.5
    ("if4", 0, 0, 0x8, 0x0, 0x8000),     # both E2M1 in IF4: -0 * +0 = -0
]


@pytest.mark.parametrize("unit,a_int,w_int,a,w,p", EDGE_CASES)
def test_lane_mul_edge_cases(unit, a_int, w_int, a, w, p):
    assert ref_lane_product(a, w, bool(a_int), bool(w_int)) == p
    assert rtl_lane_products(unit)[a_int, w_int, a, w] == p


def test_nvfp4_has_no_int_ports():
    assert not hasattr(LaneMul("nvfp4"), "a_int")
    assert not hasattr(ElementDecode("nvfp4"), "is_int")
    assert set(LaneMul("if4").signature.members) == {"a", "w", "a_int", "w_int", "p"}


@pytest.mark.parametrize("cls", [LaneMul, ElementDecode])
def test_bad_unit_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="unknown unit 'fp8'"):
        cls("fp8")


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_combinational(unit):
    assert LaneMul(unit).latency == 0
    assert ElementDecode(unit).latency == 0


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_emits_verilog(unit):
    dut = LaneMul(unit)
    text = verilog.convert(dut, name=f"lane_mul_{unit}")
    # The module header, exactly: ports, directions and widths.
    want = {"a": ("input", 4), "w": ("input", 4), "p": ("output", 16)}
    if unit == "if4":
        want.update(a_int=("input", 1), w_int=("input", 1))
    assert module_ports(text, f"lane_mul_{unit}") == want
