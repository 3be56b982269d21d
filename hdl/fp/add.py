"""Floating-point adder (single path: swap, align with sticky, add, normalise, round once)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .format import BINARY32, FloatFormat, unsigned_width
from ._signals import wire
from .lzc import LeadingZeroCounter
from .raw import FPDecode
from .round import FPRound

__all__ = ["FPAdd"]


class FPAdd(wiring.Component):
    """``result = round(a + b)`` in ``fmt``, round to nearest, ties to even.

    Purely combinational: ``latency = 0``, throughput one sum per cycle; the parent places
    any pipeline registers. Both operands are decoded once (:class:`FPDecode`) and ordered
    by magnitude (an unsigned compare of their packed bits), so the difference of
    significands is never negative. The smaller one is aligned with guard, round and sticky
    bits, added or subtracted in one adder, normalised by a leading-zero count and handed to
    the shared :class:`FPRound`.

    ``ieee=True``: IEEE 754 behaviour, as numpy's float32 (for binary32): subnormal inputs
    and outputs, ``x + (-x) = +0``, ``-0 + -0 = -0``, ``inf - inf`` and any NaN operand give
    the canonical quiet NaN, overflow gives infinity.

    ``ieee=False`` (reduced, for the MAC datapath): the domain is zero and normal operands
    whose sum rounds to zero or a normal number. There the result is bit-exact, zero signs
    included (``x + (-x) = +0``, ``-0 + -0 = -0``, ``+0 + -0 = +0``). Outside it: a
    subnormal operand counts as ``0.f * 2**(emin - 1)`` (half its value), an all-ones
    exponent field as the finite ``1.f * 2**(emax + 1)``, and a result exponent outside
    ``emin..emax`` wraps modulo ``2**exp_bits`` (see :class:`FPRound`): garbage, but no
    special-value logic is spent on it.

    Parameters
    ----------
    fmt : FloatFormat
        Operand and result format, default binary32.
    ieee : bool
        Full IEEE 754 (default) or the reduced datapath mode.

    Ports
    -----
    a, b : In(fmt.width)
    result : Out(fmt.width)
        All in IEEE packing.
    """

    def __init__(self, fmt: FloatFormat = BINARY32, *, ieee: bool = True):
        if not isinstance(fmt, FloatFormat):
            raise ParameterTypeError(f"FPAdd fmt must be a FloatFormat, got {fmt!r}")
        if not isinstance(ieee, bool):
            raise ParameterTypeError(f"FPAdd ieee must be a bool, got {ieee!r}")
        self._fmt = fmt
        self._ieee = ieee
        super().__init__({
            "a": In(fmt.width),
            "b": In(fmt.width),
            "result": Out(fmt.width),
        })

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    @property
    def ieee(self) -> bool:
        return self._ieee

    @property
    def latency(self) -> int:
        """Cycles from operands to result: 0 (combinational)."""
        return 0

    @property
    def name(self) -> str:
        """Module name carrying the widths, e.g. ``fp_add_e8_m23``."""
        return (f"fp_add_e{self._fmt.exp_bits}_m{self._fmt.man_bits}"
                + ("" if self._ieee else "_reduced"))

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        ieee = self._ieee
        P = fmt.precision
        # Guard, round and sticky: enough for RNE even after a one-place cancellation.
        GRS = 3
        # One more on top for the carry of an effective addition.
        SUM_W = 1 + P + GRS
        # A shift this far leaves the whole smaller significand in the sticky bit.
        ALIGN_CAP = P + GRS - 1

        m.submodules.decode_a = dec_a = FPDecode(fmt, ieee=ieee)
        m.submodules.decode_b = dec_b = FPDecode(fmt, ieee=ieee)
        a, b = dec_a.raw, dec_b.raw
        exp_lo, exp_hi = dec_a.exp_bounds

        # Magnitude order is the order of the packed bits without the sign, for zeros,
        # subnormals and normals alike; it also orders the decoded exponents.
        a_smaller = wire(m, "a_smaller", self.a[:fmt.width - 1] < self.b[:fmt.width - 1])
        big_sign = Mux(a_smaller, b.sign, a.sign)
        big_exp = wire(m, "big_exp", Mux(a_smaller, b.exp, a.exp))
        big_sig = Mux(a_smaller, b.sig, a.sig)
        small_exp = Mux(a_smaller, a.exp, b.exp)
        small_sig = Mux(a_smaller, a.sig, b.sig)

        distance = wire(m, "distance", big_exp - small_exp)   # never negative: the ordering
        shift = Mux(distance > ALIGN_CAP, ALIGN_CAP, distance)[:unsigned_width(ALIGN_CAP)]
        # The small significand on the GRS grid, with ALIGN_CAP bits of room below for what
        # the shift pushes out; all of that collapses into the sticky (grid bit 0).
        spread = wire(m, "align_spread", Cat(Const(0, ALIGN_CAP + GRS), small_sig) >> shift)
        aligned = wire(m, "aligned", Cat(spread[:ALIGN_CAP + 1] != 0,
                                          spread[ALIGN_CAP + 1:ALIGN_CAP + GRS + P]))

        effective_sub = wire(m, "effective_sub", a.sign ^ b.sign)
        big_grid = Cat(Const(0, GRS), big_sig)
        # One adder: subtraction as addition of the complement with carry in.
        addend = Mux(effective_sub, ~aligned, aligned)[:SUM_W - 1]
        total = wire(m, "total", (big_grid + Cat(addend, effective_sub) + effective_sub)[:SUM_W])

        m.submodules.lzc = lzc = LeadingZeroCounter(SUM_W)
        # The sum's top bit weighs 2**(big_exp + 1); normalising by `count` lowers that.
        exp_bounds = (exp_lo + 1 - SUM_W, exp_hi + 1)
        m.submodules.round = rnd = FPRound(fmt, sig_width=SUM_W, exp_bounds=exp_bounds,
                                           ieee=ieee)
        exact_zero = lzc.zero
        m.d.comb += [
            dec_a.bits.eq(self.a),
            dec_b.bits.eq(self.b),
            lzc.value.eq(total),
            rnd.raw.sig.eq((total << lzc.count)[:SUM_W]),
            rnd.raw.exp.eq(big_exp + 1 - lzc.count),
            # An exact zero is +0 in RNE unless both operands are -0 (x + (-x), -0 + -0).
            rnd.raw.sign.eq(Mux(exact_zero, a.sign & b.sign, big_sign)),
            rnd.raw.is_zero.eq(exact_zero),
            self.result.eq(rnd.result),
        ]
        if ieee:
            m.d.comb += [
                # An infinity always wins the magnitude order, so `big_sign` is its sign.
                rnd.raw.is_inf.eq(a.is_inf | b.is_inf),
                rnd.raw.is_nan.eq(a.is_nan | b.is_nan | (a.is_inf & b.is_inf & effective_sub)),
            ]
        return m
