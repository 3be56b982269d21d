"""Element decode and the lane multiplier: one 4-bit x 4-bit element product, exact in binary16.

An element is decoded once into a small raw float, ``(-1)^sign * sig * 2^(exp - 1)``:

* E2M1 code ``s e1 e0 m``: ``sig = {e != 0, m}`` (hidden bit and mantissa bit), and
  ``exp = max(e - 1, 0)`` -- the subnormal (e = 0) shares exp 0 with e = 1, which is what
  makes 0.5 = 1 * 2^-1 and 1 = 2 * 2^-1 line up.
* INT4 code (two's complement): ``sig = |v|`` (0..8; code 0x8 is -8), ``exp = 1`` so the
  value is the integer itself.

The sign is bit 3 of the code in both formats, which gives the zero rules for free: E2M1 0x8
is -0, INT4 0 is +0, and a zero product carries sign(a) xor sign(w).

The product of two raw elements is the integer product of the significands (at most 7 bits,
so it always fits binary16's 10 mantissa bits exactly), normalised with a small leading-zero
count. Zero is the only special case (E2M1 and INT4 have no inf/NaN), handled as a bypass.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden.formats import (
    BINARY16, E2M1_EXP_BITS, E2M1_MAN_BITS, ELEMENT_SIGN_BIT, ELEMENT_WIDTH, unit_spec,
)

from .fp import LeadingZeroCounter, unsigned_width

__all__ = [
    "ELEMENT_WIDTH", "RAW_EXP_WIDTH", "RAW_EXP_BIAS", "E2M1_SIG_WIDTH", "INT4_SIG_WIDTH",
    "RawElementLayout", "UnitComponent", "ElementDecode", "LaneMul", "leading_zeros",
]

#: E2M1's exponent field, and after folding the subnormal into exp 0 it spans 0..2.
RAW_EXP_WIDTH = E2M1_EXP_BITS
#: A raw element is sig * 2^(exp - 1): the bias that puts E2M1's smallest step (0.5) at exp 0.
RAW_EXP_BIAS = 1
#: E2M1 significand: the hidden bit plus E2M1's mantissa bit (values 0..3).
E2M1_SIG_WIDTH = E2M1_MAN_BITS + 1
#: INT4 significand: |v| reaches 8 (code 0x8 decodes to -8), which needs 4 bits.
INT4_SIG_WIDTH = unsigned_width(1 << ELEMENT_SIGN_BIT)


class RawElementLayout(data.StructLayout):
    """A decoded element: value = (-1)^sign * sig * 2^(exp - RAW_EXP_BIAS)."""

    def __init__(self, sig_width: int):
        super().__init__({"sig": sig_width, "exp": RAW_EXP_WIDTH, "sign": 1})


def _sig_width(spec) -> int:
    # A unit without INT4 elements never sees |-8|, so its significands stay 2 bits wide.
    return unsigned_width(spec.element_sig_max)


def leading_zeros(m: Module, value, width: int) -> Signal:
    """Add the shared leading-zero counter to ``m`` as submodule ``lzc`` (one per module):
    zeros above ``value[:width]``'s top one, ``width`` if it is 0."""
    lzc = LeadingZeroCounter(width)
    m.submodules.lzc = lzc
    m.d.comb += lzc.value.eq(value[:width])
    return lzc.count


class UnitComponent(wiring.Component):
    """A combinational piece of a MAC unit (latency 0): holds the unit's
    :class:`~if4mac.golden.formats.Unit` object, which decides its ports and logic."""

    def __init__(self, spec, members: dict):
        self._spec = spec
        self._unit = spec.name
        super().__init__(members)

    @property
    def unit(self) -> str:
        return self._unit

    @property
    def latency(self) -> int:
        return 0


class ElementDecode(UnitComponent):
    """Decode one 4-bit element code into a raw float (sign, significand, exponent).

    Combinational: latency 0, throughput one element per cycle.

    Parameters
    ----------
    unit : "nvfp4" or "if4" (or its :class:`~if4mac.golden.formats.Unit`)
        ``"nvfp4"``: the code is always E2M1, and ``elem.sig`` is 2 bits wide.
        ``"if4"``: the 1-bit input ``is_int`` selects INT4 (1) or E2M1 (0); ``elem.sig`` is
        4 bits wide to hold |INT4| up to 8.

    Ports
    -----
    code : In(4)
    is_int : In(1), IF4 only
    elem : Out(RawElementLayout(sig_width)); value = (-1)^sign * sig * 2^(exp - 1).
        Zero is ``sig == 0`` (sign kept: E2M1 0x8 is -0); there are no other special values.
    """

    def __init__(self, unit: str):
        spec = unit_spec(unit)
        ports = {"code": In(ELEMENT_WIDTH)}
        if spec.reads_int_flag:
            ports["is_int"] = In(1)
        ports["elem"] = Out(RawElementLayout(_sig_width(spec)))
        super().__init__(spec, ports)

    def elaborate(self, platform):
        m = Module()
        code = self.code
        e = code[E2M1_MAN_BITS:E2M1_MAN_BITS + E2M1_EXP_BITS]
        e2m1_sig = Cat(code[:E2M1_MAN_BITS], e != 0)
        e2m1_exp = Mux(e == 0, 0, e - 1)
        # Both formats keep the sign in bit 3; for INT4 this makes code 0 a +0.
        sign = code[ELEMENT_SIGN_BIT]
        m.d.comb += self.elem.sign.eq(sign)
        if self._spec.reads_int_flag:
            # Two's-complement magnitude truncated to 4 bits: 0x8 gives 8, as the spec asks.
            int_sig = Mux(sign, -code, code)[:INT4_SIG_WIDTH]
            # The integer's own value is sig * 2^0, i.e. raw exp = RAW_EXP_BIAS.
            m.d.comb += [
                self.elem.sig.eq(Mux(self.is_int, int_sig, e2m1_sig)),
                self.elem.exp.eq(Mux(self.is_int, RAW_EXP_BIAS, e2m1_exp)),
            ]
        else:
            m.d.comb += [
                self.elem.sig.eq(e2m1_sig),
                self.elem.exp.eq(e2m1_exp),
            ]
        return m


class LaneMul(UnitComponent):
    """One lane's element product ``p = a * w``, exact in binary16 (IEEE packing).

    Combinational: latency 0, throughput one product per cycle (the MAC top places the
    pipeline registers).

    Parameters
    ----------
    unit : "nvfp4" or "if4" (or its :class:`~if4mac.golden.formats.Unit`)
        ``"nvfp4"``: E2M1 x E2M1. ``"if4"``: each operand is E2M1 or INT4 as selected by
        ``a_int`` / ``w_int`` (the scale bytes' bit 7).

    Ports
    -----
    a, w : In(4)
        Element codes.
    a_int, w_int : In(1), IF4 only
        1 selects INT4 for that operand's block.
    p : Out(16)
        The exact product as binary16 bits. A zero product is +-0 with sign(a) xor sign(w).
    """

    def __init__(self, unit: str):
        spec = unit_spec(unit)
        ports = {"a": In(ELEMENT_WIDTH), "w": In(ELEMENT_WIDTH)}
        if spec.reads_int_flag:
            ports["a_int"] = In(1)
            ports["w_int"] = In(1)
        ports["p"] = Out(BINARY16.width)
        super().__init__(spec, ports)

    def elaborate(self, platform):
        m = Module()
        # The significand product's width: enough for the largest one (3*3 = 9 for NVFP4,
        # |-8| * |-8| = 64 for IF4), so the leading-zero count scans no dead bits.
        prod_width = unsigned_width(self._spec.element_sig_max ** 2)
        # The fraction below the leading one must fit binary16's mantissa, or p is not exact.
        assert prod_width - 1 <= BINARY16.man_bits

        m.submodules.dec_a = dec_a = ElementDecode(self._spec)
        m.submodules.dec_w = dec_w = ElementDecode(self._spec)
        m.d.comb += [dec_a.code.eq(self.a), dec_w.code.eq(self.w)]
        if self._spec.reads_int_flag:
            m.d.comb += [dec_a.is_int.eq(self.a_int), dec_w.is_int.eq(self.w_int)]
        a, w = dec_a.elem, dec_w.elem

        prod = Signal(prod_width)
        m.d.comb += prod.eq(a.sig * w.sig)
        lz = leading_zeros(m, prod, prod_width)
        # Shifting the leading one to the top leaves the fraction in the bits below it.
        norm = Signal(prod_width)
        m.d.comb += norm.eq(prod << lz)

        # value = prod * 2^(ea + ew - 2*bias) and prod = 1.f * 2^(prod_width - 1 - lz), so
        # the biased binary16 exponent is exp_offset + ea + ew - lz; it spans 13 (0.25) to
        # 21 (64), always normal.
        exp_offset = BINARY16.bias - 2 * RAW_EXP_BIAS + prod_width - 1
        p = data.View(BINARY16.layout, self.p)
        m.d.comb += p.sign.eq(a.sign ^ w.sign)
        with m.If(prod == 0):
            # Bypass: +-0, the sign already set above (E2M1 0x8 is -0, INT4 0 is +0).
            m.d.comb += [p.exp.eq(0), p.man.eq(0)]
        with m.Else():
            m.d.comb += [
                p.exp.eq(exp_offset + a.exp + w.exp - lz),
                p.man.eq(norm[:prod_width - 1] << (BINARY16.man_bits - (prod_width - 1))),
            ]
        return m
