"""The scale-product unit: sf = dec(a_sf) * dec(w_sf) in binary32, with IF4's INT4 factors.

Three pieces, one arithmetic idea each:

* :class:`ScaleDecode` -- an E4M3 scale (bits [6:0] of the scale byte) to a normalised raw
  float ``1.frac * 2^exp`` plus a zero flag. Subnormals are normalised here, and the 448 rule
  (exp=15/man=7 reads as man=6) is applied here, so nothing downstream sees either.
* :class:`IntExpansionRom` -- ``rne32(1.f * c)`` for c = f32(6/7) or f32(36/49), as a table of
  rounded significands. Both factors lie in (1/2, 1), so the product is 1.f * c in [1/2, 2)
  and the table stores its 23 mantissa bits plus one bit saying the exponent dropped by one.
* :class:`ScaleMul` -- the product of two decoded scales and the choice of factor.

Why a table instead of a multiplier and a rounder: the product of two 4-bit significands has 8
bits, so after normalisation it is one of at most 128 fractions (33 are reachable), and
``rne32(x * c)`` depends only on x's significand, because every result here is a normal
binary32 number (|sf| lies in [2^-19, 2^18)) and scaling by a power of two commutes with
rounding. The table is generated at elaboration time with numpy binary32 multiplies, which
round to nearest even, exactly as the spec's rne32. Measured with Yosys (synth, abc to simple
gates) the table version of the IF4 unit is ~760 cells, against ~970 for an 8 x 24-bit
constant multiply with a round-to-nearest-even stage.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden.formats import (
    BINARY32, E4M3_BIAS, E4M3_EXP_BITS, E4M3_MAN_BITS, E4M3_WIDTH, INT_EXPANSION,
    INT_EXPANSION_SQUARED, INT_FLAG_BIT, SCALE_WIDTH, unit_spec,
)

from .lane_mul import UnitComponent, leading_zeros

__all__ = [
    "SCALE_WIDTH", "INT_FLAG_BIT", "E4M3_WIDTH", "E4M3_MAN_WIDTH", "E4M3_BIAS",
    "RAW_SCALE_EXP_WIDTH", "PROD_WIDTH", "PROD_FRAC_WIDTH", "RawScaleLayout",
    "ScaleDecode", "IntExpansionRom", "ScaleMul", "expansion_entry", "reachable_product_fractions",
    "e4m3_significand",
]

#: The scale byte's fields (SCALE_WIDTH, INT_FLAG_BIT, E4M3_*) come from the formats layer.
E4M3_MAN_WIDTH = E4M3_MAN_BITS
E4M3_EXP_WIDTH = E4M3_EXP_BITS
#: E4M3's significand with its hidden bit; the subnormals' leading one sits up to 3 bits lower.
E4M3_SIG_WIDTH = E4M3_MAN_WIDTH + 1
#: Unbiased exponent of a normalised scale: 2^-9 (subnormal 0x01) to 2^8 (448), signed 5 bits.
RAW_SCALE_EXP_WIDTH = 5
#: The product of two normalised significands 1.fff * 1.fff, both in [8, 16) as integers.
PROD_WIDTH = 2 * E4M3_SIG_WIDTH
#: Bits below the leading one of that product once a carry into bit 7 is shifted out.
PROD_FRAC_WIDTH = PROD_WIDTH - 1
#: binary32 fields (IEEE 754), from the formats layer.
F32_MAN_WIDTH = BINARY32.man_bits
F32_BIAS = BINARY32.bias

#: The two IF4 factors, in ROM select order: exactly one INT4 block, both INT4 blocks.
_FACTORS = (INT_EXPANSION, INT_EXPANSION_SQUARED)


class RawScaleLayout(data.StructLayout):
    """A decoded scale: ``1.frac * 2^exp`` (exp unbiased), or 0 when ``zero`` is set.

    ``zero`` takes precedence: with it set, ``frac`` and ``exp`` mean nothing.
    """

    def __init__(self):
        super().__init__({"frac": E4M3_MAN_WIDTH, "exp": signed(RAW_SCALE_EXP_WIDTH), "zero": 1})


def expansion_entry(frac: int, factor: np.float32) -> tuple[int, int]:
    """``(mantissa, dec)`` of rne32((1 + frac/2^7) * factor), computed in numpy binary32.

    ``dec`` is 1 when the rounded product is below 1 (its exponent is one lower than x's).
    """
    if not 0 <= frac < 1 << PROD_FRAC_WIDTH:
        raise ValueError(f"frac {frac} is outside 0..{(1 << PROD_FRAC_WIDTH) - 1}")
    # 1.f has 8 significant bits, so the binary32 conversion below is exact.
    x = np.float32((1 << PROD_FRAC_WIDTH) + frac) / np.float32(1 << PROD_FRAC_WIDTH)
    bits = int(np.float32(x * np.float32(factor)).view(np.uint32))
    dec = F32_BIAS - (bits >> F32_MAN_WIDTH)
    if dec not in (0, 1):
        raise ValueError(f"factor {factor!r} takes 1.f out of [1/2, 2)")
    return bits & ((1 << F32_MAN_WIDTH) - 1), dec


def e4m3_significand(code):
    """An E4M3 code's significand with its hidden bit explicit (0..15: a subnormal keeps its
    leading zeros) and its biased exponent field, the 448 rule applied: the one reading of the
    scale's fields that :class:`ScaleDecode` and the fused front end share."""
    man = code[:E4M3_MAN_WIDTH]
    exp = code[E4M3_MAN_WIDTH:]
    # The 448 rule: E4M3 (fn) has no inf, and its would-be NaN code reads as 0x7E.
    man_448 = Mux((exp == (1 << E4M3_EXP_WIDTH) - 1) & (man == (1 << E4M3_MAN_WIDTH) - 1),
                  (1 << E4M3_MAN_WIDTH) - 2, man)
    return Cat(man_448, exp != 0), exp


def reachable_product_fractions() -> tuple[int, ...]:
    """The fractions (below the leading one) that a product of two E4M3 significands can have.

    Subnormal scales are normalised first, so every significand is 1.fff with fff in 0..7.
    """
    fracs = set()
    for fa in range(1 << E4M3_MAN_WIDTH):
        for fw in range(1 << E4M3_MAN_WIDTH):
            prod = ((1 << E4M3_MAN_WIDTH) + fa) * ((1 << E4M3_MAN_WIDTH) + fw)
            carry = prod >> (PROD_WIDTH - 1)
            fracs.add((prod << (1 - carry)) & ((1 << PROD_FRAC_WIDTH) - 1))
    return tuple(sorted(fracs))


class ScaleDecode(wiring.Component):
    """Decode an unsigned E4M3 scale into a normalised raw float with a zero flag.

    Combinational: latency 0, throughput one scale per cycle.

    Ports
    -----
    code : In(7)
        Bits [6:0] of a scale byte (bias 7; exp=0 is subnormal, man/8 * 2^-6; exp=15/man=7
        reads as 448).
    scale : Out(RawScaleLayout())
        ``zero`` (highest precedence: the code is 0), else ``1.frac * 2^exp``.
    """

    def __init__(self):
        super().__init__({"code": In(E4M3_WIDTH), "scale": Out(RawScaleLayout())})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        sig_value, exp = e4m3_significand(self.code)
        sig = Signal(E4M3_SIG_WIDTH)
        m.d.comb += sig.eq(sig_value)
        # 0 for normals; 1..3 moves a subnormal's leading one up to the hidden-bit position.
        lz = leading_zeros(m, sig, E4M3_SIG_WIDTH)
        norm = Signal(E4M3_SIG_WIDTH)
        m.d.comb += norm.eq(sig << lz)
        # Subnormals share exponent 1 with the smallest normals before normalisation.
        m.d.comb += [
            self.scale.zero.eq(sig == 0),
            self.scale.frac.eq(norm[:E4M3_MAN_WIDTH]),
            self.scale.exp.eq(Mux(exp == 0, 1, exp) - lz - E4M3_BIAS),
        ]
        return m


class IntExpansionRom(wiring.Component):
    """``rne32(1.frac * c)`` for c = f32(6/7) (``squared`` = 0) or f32(36/49) (``squared`` = 1).

    Combinational: latency 0, throughput one lookup per cycle.

    Parameters
    ----------
    fracs : iterable of int, optional
        The 7-bit fractions to tabulate (default: all 128). Others read as mantissa 0, dec 0;
        leaving out the ones a caller can never present lets synthesis drop their logic.

    Ports
    -----
    frac : In(7)
    squared : In(1)
    man : Out(23)
        The rounded product's mantissa field.
    dec : Out(1)
        1 when the rounded product is below 1, so its exponent is one lower than 1.frac's.
    """

    def __init__(self, fracs=None):
        if fracs is None:
            fracs = range(1 << PROD_FRAC_WIDTH)
        self._fracs = tuple(sorted(set(int(f) for f in fracs)))
        # expansion_entry validates the range; build the table once, here.
        self._table = {
            (squared, frac): expansion_entry(frac, factor)
            for squared, factor in enumerate(_FACTORS)
            for frac in self._fracs
        }
        super().__init__({
            "frac": In(PROD_FRAC_WIDTH),
            "squared": In(1),
            "man": Out(F32_MAN_WIDTH),
            "dec": Out(1),
        })

    @property
    def fracs(self) -> tuple[int, ...]:
        return self._fracs

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        with m.Switch(Cat(self.frac, self.squared)):
            for (squared, frac), (man, dec) in self._table.items():
                with m.Case(frac | squared << PROD_FRAC_WIDTH):
                    m.d.comb += [self.man.eq(man), self.dec.eq(dec)]
        return m


class ScaleMul(UnitComponent):
    """The block-scale product ``sf`` in binary32 (IEEE packing), exact or rounded once.

    ``sf = dec(a_sf) * dec(w_sf)``, exact (4-bit by 4-bit significands), and +0 when either
    decoded scale is 0. For ``unit="if4"``, bit 7 of each scale byte marks an INT4 block: with
    exactly one set, ``sf = rne32(sf * f32(6/7))``; with both, ``rne32(sf * f32(36/49))``.
    NVFP4 ignores bit 7.

    Combinational: latency 0, throughput one scale pair per cycle (the MAC top places the
    pipeline registers).

    Parameters
    ----------
    unit : "nvfp4" or "if4" (or its :class:`~if4mac.golden.formats.Unit`)

    Ports
    -----
    a_sf, w_sf : In(8)
        Scale bytes.
    sf : Out(32)
        binary32 bits; always +0 or a positive normal number.
    """

    def __init__(self, unit: str):
        super().__init__(unit_spec(unit), {
            "a_sf": In(SCALE_WIDTH),
            "w_sf": In(SCALE_WIDTH),
            "sf": Out(BINARY32.width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec_a = dec_a = ScaleDecode()
        m.submodules.dec_w = dec_w = ScaleDecode()
        m.d.comb += [dec_a.code.eq(self.a_sf[:E4M3_WIDTH]), dec_w.code.eq(self.w_sf[:E4M3_WIDTH])]
        a, w = dec_a.scale, dec_w.scale

        prod = Signal(PROD_WIDTH)
        m.d.comb += prod.eq(Cat(a.frac, 1) * Cat(w.frac, 1))
        # 1.fff * 1.fff is in [1, 4): the top bit says whether it carried past 2.
        carry = prod[-1]
        frac = Signal(PROD_FRAC_WIDTH)
        m.d.comb += frac.eq(Mux(carry, prod[:PROD_FRAC_WIDTH], prod[:PROD_FRAC_WIDTH - 1] << 1))
        # Unbiased exponent of 1.frac: -18 (0x01 * 0x01) up to 17 (448 * 448).
        exp = Signal(signed(RAW_SCALE_EXP_WIDTH + 1))
        m.d.comb += exp.eq(a.exp + w.exp + carry)

        sf = data.View(BINARY32.layout, self.sf)
        # Scales are unsigned, so the sign is + and a zero scale gives +0: the bypass is
        # simply "leave sf at 0".
        m.d.comb += sf.eq(0)
        with m.If(~a.zero & ~w.zero):
            m.d.comb += [
                sf.man.eq(frac << (F32_MAN_WIDTH - PROD_FRAC_WIDTH)),
                sf.exp.eq(F32_BIAS + exp),
            ]
            if self._spec.reads_int_flag:
                a_int = self.a_sf[INT_FLAG_BIT]
                w_int = self.w_sf[INT_FLAG_BIT]
                m.submodules.rom = rom = IntExpansionRom(reachable_product_fractions())
                m.d.comb += [rom.frac.eq(frac), rom.squared.eq(a_int & w_int)]
                # Any INT4 block replaces the exact product by its rounded, expanded one.
                with m.If(a_int | w_int):
                    m.d.comb += [sf.man.eq(rom.man), sf.exp.eq(F32_BIAS + exp - rom.dec)]
        return m
